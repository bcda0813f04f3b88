"""Endpoints, channel options and the driver-independent half of a client.

``ClientCore`` holds everything the sync ``Client`` and the ``AsyncClient``
share: endpoint parsing, gRPC channel options, the deadline policy, the
method-handle cache, revision bookkeeping and error translation. The drivers
add only the IO.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union
from urllib.parse import urlsplit

from . import _schema
from ._backoff import Backoff
from ._request import Request, check_timeout, tracker
from .errors import (
    AuthOldRevisionError,
    CompactedError,
    EtcdError,
    InvalidAuthTokenError,
    ReauthenticatingError,
    from_rpc_error,
)

__all__ = ["Endpoint", "parse_endpoints", "ClientCore", "DEFAULT_TIMEOUT"]

#: Default deadline of a unary call, in seconds (``timeout=None`` disables it).
DEFAULT_TIMEOUT = 30.0
#: grpcio refuses responses over 4 MiB by default; a 100k-key range is ~16 MB.
#: etcd's Go client accepts up to 2 GiB - 1, and so do we.
DEFAULT_MAX_RECEIVE = 2**31 - 1
#: How long a channel replaced by an endpoint sync keeps serving the calls
#: and streams already on it before it is closed (streams then resume).
RETIRE_CHANNEL_AFTER = 30.0
#: Attempts after the first for calls that are safe to retry (see ClientCore._retry_delay).
DEFAULT_MAX_RETRIES = 3
#: HTTP/2 keepalive pings: every 10 s, a connection silent for 10 s more is dead.
DEFAULT_KEEPALIVE_TIME = 10.0
DEFAULT_KEEPALIVE_TIMEOUT = 10.0
#: Go's default: a little above etcd's 1.5 MiB --max-request-bytes, so the
#: server's own "request is too large" answer is what most callers see.
DEFAULT_MAX_SEND = 2 * 1024 * 1024

WATCH = "/etcdserverpb.Watch/Watch"
RANGE = "/etcdserverpb.KV/Range"

EndpointsLike = Union[str, Sequence[str]]
#: A PEM file's path, or its content as bytes.
PathOrBytes = Union[str, "os.PathLike[str]", bytes]

AUTHENTICATE = "/etcdserverpb.Auth/Authenticate"
_decode_authenticate = _schema.decoder("etcdserverpb.AuthenticateResponse", lambda m: str(m.token))


def _pem(value: Optional[PathOrBytes], what: str) -> Optional[bytes]:
    if value is None or isinstance(value, bytes):
        return value
    try:
        with open(value, "rb") as f:
            return f.read()
    except OSError as exc:
        raise FileNotFoundError(f"cannot read the {what} file {os.fspath(value)!r}: {exc.strerror}") from None


def tls_credentials(
    ca_cert: Optional[PathOrBytes], cert: Optional[PathOrBytes], key: Optional[PathOrBytes]
) -> Any:
    """grpc channel credentials: server verified by ``ca_cert`` (default: system roots),
    and a client certificate for mTLS when ``cert``/``key`` are given."""
    import grpc

    return grpc.ssl_channel_credentials(
        root_certificates=_pem(ca_cert, "CA certificate"),
        private_key=_pem(key, "client key"),
        certificate_chain=_pem(cert, "client certificate"),
    )


class Endpoint:
    """One etcd member address: ``host:port``, ``http://host:port`` or ``https://...``."""

    __slots__ = ("host", "port", "secure")

    def __init__(self, host: str, port: int, secure: bool = False) -> None:
        self.host = host
        self.port = port
        self.secure = secure

    @classmethod
    def parse(cls, text: str) -> "Endpoint":
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"endpoint must be a non-empty 'host:port' string, got {text!r}")
        raw = text.strip()
        secure = False
        if "://" in raw:
            parts = urlsplit(raw)
            if parts.scheme not in ("http", "https"):
                raise ValueError(f"endpoint {text!r}: scheme must be http or https")
            secure = parts.scheme == "https"
            if parts.path not in ("", "/"):
                raise ValueError(f"endpoint {text!r}: a path is not allowed")
            raw = parts.netloc
        host, sep, port_text = raw.rpartition(":")
        if not sep or not host or not port_text.isdigit():
            raise ValueError(f"endpoint {text!r} is not 'host:port'")
        port = int(port_text)
        if not 0 < port < 65536:
            raise ValueError(f"endpoint {text!r}: port out of range")
        return cls(host.strip("[]"), port, secure)

    @property
    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def __str__(self) -> str:
        return ("https://" if self.secure else "") + self.address

    def __repr__(self) -> str:
        return f"Endpoint({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Endpoint) and str(self) == str(other)

    def __hash__(self) -> int:
        return hash(str(self))


def parse_endpoints(endpoints: EndpointsLike) -> List[Endpoint]:
    """Accept one endpoint or a list (a comma-separated string works too)."""
    items = endpoints.split(",") if isinstance(endpoints, str) else list(endpoints)
    parsed = [Endpoint.parse(item) for item in items]
    if not parsed:
        raise ValueError("at least one endpoint is needed")
    if len({e.secure for e in parsed}) > 1:
        raise ValueError("endpoints mix http and https")
    return parsed


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _resolve(endpoint: Endpoint) -> Optional[Endpoint]:
    """The endpoint with its host name resolved to one IP address (None if it does not resolve)."""
    if _is_ip(endpoint.host):
        return endpoint
    try:
        infos = socket.getaddrinfo(endpoint.host, endpoint.port, type=socket.SOCK_STREAM)
    except OSError:
        return None
    # Prefer IPv4: one balanced target cannot mix address families.
    infos.sort(key=lambda info: info[0] != socket.AF_INET)
    return Endpoint(str(infos[0][4][0]), endpoint.port, endpoint.secure) if infos else None


def channel_target(endpoints: Sequence[Endpoint]) -> Tuple[str, List[Tuple[str, Any]]]:
    """The gRPC target string and extra options for a set of endpoints.

    Several endpoints become one ``ipv4:``/``ipv6:`` target balanced
    round-robin by grpc itself, with per-call failover between the members
    it is connected to. Host names are resolved once here (grpc's dns
    resolver takes a single name); TLS then checks certificates against the
    first host name, which every member's certificate should carry.
    """
    if len(endpoints) == 1:
        return endpoints[0].address, []
    resolved = [_resolve(e) for e in endpoints]
    usable = [e for e in resolved if e is not None]
    family = {ipaddress.ip_address(e.host).version for e in usable}
    if len(family) != 1:
        return endpoints[0].address, []  # nothing to balance over
    scheme = "ipv4" if family == {4} else "ipv6"
    target = f"{scheme}:" + ",".join(e.address for e in usable)
    options: List[Tuple[str, Any]] = [("grpc.lb_policy_name", "round_robin")]
    names = [e for e, r in zip(endpoints, resolved) if r is not None and not _is_ip(e.host)]
    # The authority -- with TLS, the name certificates are checked against --
    # is the first endpoint, as in Go. Left alone, grpc uses the whole
    # "a:1,b:2,..." address list, which no certificate names.
    options.append(("grpc.default_authority", (names or usable)[0].address))
    return target, options


class ClientCore:
    """State and policy shared by :class:`etcdfast.Client` and :class:`etcdfast.AsyncClient`."""

    def __init__(
        self,
        endpoints: EndpointsLike = "127.0.0.1:2379",
        *,
        timeout: Optional[float] = DEFAULT_TIMEOUT,
        max_receive_message_length: int = DEFAULT_MAX_RECEIVE,
        max_send_message_length: int = DEFAULT_MAX_SEND,
        grpc_options: Sequence[Tuple[str, Any]] = (),
        max_retries: int = DEFAULT_MAX_RETRIES,
        keepalive_time: Optional[float] = DEFAULT_KEEPALIVE_TIME,
        keepalive_timeout: float = DEFAULT_KEEPALIVE_TIMEOUT,
        keepalive_permit_without_calls: bool = False,
        require_leader: bool = False,
        user: Optional[str] = None,
        password: Optional[str] = None,
        ca_cert: Optional[PathOrBytes] = None,
        cert: Optional[PathOrBytes] = None,
        key: Optional[PathOrBytes] = None,
        server_name: Optional[str] = None,
        auto_sync_interval: Optional[float] = None,
    ) -> None:
        self._endpoints = parse_endpoints(endpoints)
        secure = any(e.secure for e in self._endpoints) or ca_cert is not None or cert is not None
        if (cert is None) != (key is None):
            raise ValueError("a client certificate needs both cert= and key=")
        # Read the files now, so a wrong path fails here and not at the first call.
        self._credentials = tls_credentials(ca_cert, cert, key) if secure else None
        if (user is None) != (password is None):
            raise ValueError("user= and password= go together")
        self._user = user
        # Name-mangled and never printed: see __repr__ and _login.
        self.__password = password
        self._token: Optional[str] = None
        self._timeout = check_timeout(timeout)
        options: List[Tuple[str, Any]] = [
            ("grpc.max_receive_message_length", int(max_receive_message_length)),
            ("grpc.max_send_message_length", int(max_send_message_length)),
            ("grpc.primary_user_agent", "etcdfast"),
            # Retries follow Go's rules in ClientCore._retry_delay; grpc's own
            # transparent retries would only add ~4 % CPU per call (measured,
            # bench/grpc_settings.py) and a second, unaligned policy.
            ("grpc.enable_retries", 0),
        ]
        self._common_options = options
        if keepalive_time is not None:
            # Pings find a dead connection (a member cut off by the network)
            # within keepalive_time + keepalive_timeout while calls or streams
            # are open. Not without any: etcd's default enforcement policy
            # (PermitWithoutStream=false) answers such pings with GOAWAY
            # "too_many_pings" and drops an idle client after ~40 s.
            options += [
                ("grpc.keepalive_time_ms", int(keepalive_time * 1000)),
                ("grpc.keepalive_timeout_ms", int(keepalive_timeout * 1000)),
                ("grpc.keepalive_permit_without_calls", int(keepalive_permit_without_calls)),
                ("grpc.http2.max_pings_without_data", 0),
            ]
        if server_name is not None:
            # The name the server certificate must carry, when it differs
            # from the host in the endpoint (e.g. connecting by IP).
            options.append(("grpc.ssl_target_name_override", server_name))
        self._extra_options = list(grpc_options)  # the caller's word is final
        self._target: str = ""
        self._options: List[Tuple[str, Any]] = []
        self._use_endpoints(self._endpoints)
        if auto_sync_interval is not None and not auto_sync_interval > 0:
            raise ValueError("auto_sync_interval must be > 0 seconds")
        self.auto_sync_interval = auto_sync_interval
        self.max_retries = max_retries
        # "hasleader" makes the member refuse calls (NoLeaderError) instead of
        # stalling while it is cut off from its leader: etcd's WithRequireLeader.
        self._base_metadata: Tuple[Tuple[str, str], ...] = (
            (("hasleader", "true"),) if require_leader else ()
        )
        self._metadata: Optional[Tuple[Tuple[str, str], ...]] = self._base_metadata or None
        #: True while calls must first authenticate (user given, no token yet).
        self._needs_login = user is not None
        self._handles: Dict[str, Any] = {}
        self._revisions = tracker()
        self._closed = False

    # -- public, shared ------------------------------------------------------

    @property
    def endpoints(self) -> List[str]:
        """The endpoints this client talks to."""
        return [str(e) for e in self._endpoints]

    @property
    def last_revision(self) -> int:
        """The highest store revision seen in any response header (0 before any)."""
        return self._revisions.last

    @property
    def closed(self) -> bool:
        return self._closed

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        who = f" user={self._user!r}" if self._user is not None else ""
        return f"<{type(self).__name__} {','.join(self.endpoints)}{who} {state}>"

    # -- for the drivers -----------------------------------------------------

    def _use_endpoints(self, endpoints: List[Endpoint]) -> None:
        """Point the *next* channel at ``endpoints`` (grpc balances and fails over between them)."""
        self._endpoints = endpoints
        self._target, lb_options = channel_target(endpoints)
        self._options = [*self._common_options, *lb_options, *self._extra_options]

    def _synced_endpoints(self, members: Any) -> Optional[List[Endpoint]]:
        """Endpoints from a member list, or None when nothing changed (or nothing usable).

        Learners are left out: they refuse most requests. The scheme of the
        configured endpoints is kept (TLS stays TLS).
        """
        secure = self._endpoints[0].secure
        found: List[Endpoint] = []
        for member in members:
            if member.is_learner:
                continue
            for url in member.client_urls:
                try:
                    endpoint = Endpoint.parse(url)
                except ValueError:
                    continue
                endpoint.secure = secure
                if endpoint not in found:
                    found.append(endpoint)
        if not found or set(found) == set(self._endpoints):
            return None
        return found

    def _new_channel(self, grpc_module: Any) -> Any:
        """A channel from ``grpc`` or ``grpc.aio``, with TLS when configured."""
        if self._credentials is not None:
            return grpc_module.secure_channel(self._target, self._credentials, options=self._options)
        return grpc_module.insecure_channel(self._target, options=self._options)

    def _login_request(self) -> bytes:
        message = _schema.message("etcdserverpb.AuthenticateRequest")
        return message(name=self._user, password=self.__password).SerializeToString()  # type: ignore[no-any-return]

    def _set_token(self, raw_response: bytes) -> None:
        token = _decode_authenticate(raw_response, self._revisions)
        self._token = token
        self._metadata = (*self._base_metadata, ("token", token))
        self._needs_login = False

    def _forget_token(self) -> None:
        """After "invalid auth token"/"auth revision is old": log in again before the next call."""
        if self._user is not None:
            self._token = None
            self._metadata = self._base_metadata or None
            self._needs_login = True

    def _drop_stale_token(self, error: EtcdError) -> bool:
        """True if ``error`` says our token is stale ("invalid auth token",
        "auth revision is old"): the server refused the call before running
        it, so it may be repeated. The token is then forgotten, and the next
        call logs in again first."""
        if self._user is None or not isinstance(error, (InvalidAuthTokenError, AuthOldRevisionError)):
            return False
        self._forget_token()
        return True

    def _stream_error(self, exc: Exception) -> EtcdError:
        """Errors of the watch/keep-alive streams: a stale token means "log in and reconnect"."""
        error = exc if isinstance(exc, EtcdError) else self._error(exc)
        if self._drop_stale_token(error):
            return ReauthenticatingError(f"auth token refreshed after: {error}")
        return error

    def _deadline(self, timeout: Optional[float]) -> Optional[float]:
        return timeout if timeout is not None else self._timeout

    def _error(self, exc: Any) -> EtcdError:
        return from_rpc_error(exc, self.endpoints)

    def _retry_delay(self, request: Request[Any], error: EtcdError, attempt: int,
                     backoff: Backoff, deadline: Optional[float]) -> Optional[float]:
        """Seconds to wait before retrying ``request`` after ``error``, or None: give up.

        Go's clientv3 rules: a *repeatable* call (a read, or a write whose
        repetition cannot change anything twice) is retried on UNAVAILABLE; a
        *non-repeatable* one only when the request provably never left the
        client (no connection could be made). UNAVAILABLE alone does not mean
        "not executed" -- retrying a put on it could apply it twice.
        """
        if attempt >= self.max_retries or error.code != "UNAVAILABLE":
            return None
        if not request.repeatable and not never_sent(error):
            return None
        delay = backoff.next_delay()
        if deadline is not None and time.monotonic() + delay >= deadline:
            return None
        return delay

    @staticmethod
    def _wants_compact_revision(method: str, error: EtcdError) -> bool:
        return method == RANGE and isinstance(error, CompactedError)


# grpc-core's words for "no connection, nothing was sent" (the call failed
# while choosing a connection), and Go's own equivalents.
_NEVER_SENT = (
    "failed to connect to all addresses",
    "connection refused",
    "there is no address available",
    "there is no connection available",
    "dns resolution failed",
)


def never_sent(error: EtcdError) -> bool:
    """True when an UNAVAILABLE error proves the request never reached a server."""
    details = (error.details or str(error)).lower()
    return any(marker in details for marker in _NEVER_SENT)


# The compact revision is not part of etcd's "required revision has been
# compacted" error. A watch from revision 1 on an unused key is cancelled at
# once with the current compact revision, which the drivers use to fill in
# CompactedError.compact_revision (one cheap stream, only on that error path).
_PROBE_KEY = b"\x00etcdfast-compact-probe"


def compact_probe_request() -> bytes:
    request = _schema.message("etcdserverpb.WatchRequest")()
    request.create_request.key = _PROBE_KEY
    request.create_request.start_revision = 1
    return request.SerializeToString()  # type: ignore[no-any-return]


def compact_probe_answer(data: bytes) -> Optional[int]:
    """The compact revision carried by a watch response, if it carries one."""
    response = _schema.message("etcdserverpb.WatchResponse").FromString(data)
    return response.compact_revision or None
