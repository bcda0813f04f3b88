"""Endpoints, channel options and the driver-independent half of a client.

``ClientCore`` holds everything the sync ``Client`` and the ``AsyncClient``
share: endpoint parsing, gRPC channel options, the deadline policy, the
method-handle cache, revision bookkeeping and error translation. The drivers
add only the IO.
"""

from __future__ import annotations

import ipaddress
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union
from urllib.parse import urlsplit

from . import _schema
from ._request import check_timeout, tracker
from .errors import CompactedError, EtcdError, from_rpc_error

__all__ = ["Endpoint", "parse_endpoints", "ClientCore", "DEFAULT_TIMEOUT"]

#: Default deadline of a unary call, in seconds (``timeout=None`` disables it).
DEFAULT_TIMEOUT = 30.0
#: grpcio refuses responses over 4 MiB by default; a 100k-key range is ~16 MB.
#: etcd's Go client accepts up to 2 GiB - 1, and so do we.
DEFAULT_MAX_RECEIVE = 2**31 - 1
#: Go's default: a little above etcd's 1.5 MiB --max-request-bytes, so the
#: server's own "request is too large" answer is what most callers see.
DEFAULT_MAX_SEND = 2 * 1024 * 1024

WATCH = "/etcdserverpb.Watch/Watch"
RANGE = "/etcdserverpb.KV/Range"

EndpointsLike = Union[str, Sequence[str]]


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


def channel_target(endpoints: Sequence[Endpoint]) -> Tuple[str, List[Tuple[str, Any]]]:
    """The gRPC target string and extra options for a set of endpoints.

    Several IP endpoints become one ``ipv4:``/``ipv6:`` target balanced
    round-robin by grpc itself, with per-call failover between the members
    it is connected to.
    """
    if len(endpoints) == 1:
        return endpoints[0].address, []
    if all(_is_ip(e.host) for e in endpoints):
        family = {ipaddress.ip_address(e.host).version for e in endpoints}
        if len(family) == 1:
            scheme = "ipv4" if family == {4} else "ipv6"
            target = f"{scheme}:" + ",".join(e.address for e in endpoints)
            return target, [("grpc.lb_policy_name", "round_robin")]
    # Hostnames: grpc's dns resolver cannot take a list; use the first one.
    return endpoints[0].address, []


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
    ) -> None:
        self._endpoints = parse_endpoints(endpoints)
        if any(e.secure for e in self._endpoints):
            raise NotImplementedError("https:// endpoints (TLS) are not supported yet")
        self._timeout = check_timeout(timeout)
        self._target, lb_options = channel_target(self._endpoints)
        self._options: List[Tuple[str, Any]] = [
            ("grpc.max_receive_message_length", int(max_receive_message_length)),
            ("grpc.max_send_message_length", int(max_send_message_length)),
            ("grpc.primary_user_agent", "etcdfast"),
            *lb_options,
            *grpc_options,
        ]
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
        return f"<{type(self).__name__} {','.join(self.endpoints)} {state}>"

    # -- for the drivers -----------------------------------------------------

    def _deadline(self, timeout: Optional[float]) -> Optional[float]:
        return timeout if timeout is not None else self._timeout

    def _error(self, exc: Any) -> EtcdError:
        return from_rpc_error(exc, self.endpoints)

    @staticmethod
    def _wants_compact_revision(method: str, error: EtcdError) -> bool:
        return method == RANGE and isinstance(error, CompactedError)


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
