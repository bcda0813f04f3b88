"""What a client knows, whatever drives it: options, endpoints, token, revisions.

:class:`ClientState` is the base of :class:`etcdfast.Client` and
:class:`etcdfast.AsyncClient`: it validates the constructor's options once,
holds the auth token and the gRPC metadata every call carries, the revision
tracker, and translates failures into etcdfast's errors. The call and stream
machines (``_core.calls``, ``_core.watch_hub``...) read it; the executors
(``_sync``, ``aio``) add the channel and the IO.
"""

from __future__ import annotations

import gc
import logging
import math
import os
import time
import weakref
from typing import Any, Callable, Generator, List, Optional, Sequence, Tuple, Union

from .. import _codec
from ..api import auth as _auth
from ..api import maintenance as _maintenance
from ..api.request import NO_DEADLINE, LoginRequest, Observer, Request, check_seconds, check_timeout
from ..errors import (
    AuthOldRevisionError,
    ClientClosedError,
    EtcdError,
    ForkedClientError,
    InvalidAuthTokenError,
    OldClusterError,
    ReauthenticatingError,
    Unavailable,
    from_rpc_error,
)
from .endpoints import Endpoint, EndpointsLike, channel_target, parse_endpoints
from .observe import CallHook, debug_from_environment

__all__ = [
    "ClientState",
    "PathOrBytes",
    "DEFAULT_TIMEOUT",
    "DEFAULT_DIAL_TIMEOUT",
    "DEFAULT_MAX_RETRIES",
    "RETIRE_CHANNEL_AFTER",
]

#: Default deadline of a unary call, in seconds.
DEFAULT_TIMEOUT = 30.0
#: How long the first connection may take before calls fail (Go's ``DialTimeout``).
DEFAULT_DIAL_TIMEOUT = 5.0
#: grpcio refuses responses over 4 MiB by default; a 100k-key range is ~16 MB.
#: etcd's Go client accepts up to 2 GiB - 1, and so do we.
DEFAULT_MAX_RECEIVE = 2**31 - 1
#: Go's default: a little above etcd's 1.5 MiB --max-request-bytes, so the
#: server's own "request is too large" answer is what most callers see.
DEFAULT_MAX_SEND = 2 * 1024 * 1024
#: Attempts after the first for calls that are safe to retry (see ``_core.calls``).
DEFAULT_MAX_RETRIES = 3
#: HTTP/2 keepalive pings: every 10 s, a connection silent for 10 s more is dead.
DEFAULT_KEEPALIVE_TIME = 10.0
DEFAULT_KEEPALIVE_TIMEOUT = 10.0
#: How long a channel replaced by an endpoint sync keeps serving the calls
#: and streams already on it before it is closed (streams then resume).
RETIRE_CHANNEL_AFTER = 30.0

#: Retries wait 12.5-25 ms, then twice as long each time, up to 0.5-1 s.
DEFAULT_RETRY_BACKOFF = (0.025, 1.0)
#: ``reject_old_cluster=True`` refuses members older than this.
MIN_CLUSTER_VERSION = (3, 4)

log = logging.getLogger("etcdfast.client")

#: A PEM file's path, or its content as bytes.
PathOrBytes = Union[str, "os.PathLike[str]", bytes]

AUTHENTICATE = "/etcdserverpb.Auth/Authenticate"

Metadata = Optional[Tuple[Tuple[str, str], ...]]


#: Every client alive in this process, for the fork handler below.
_LIVE: "weakref.WeakSet[ClientState]" = weakref.WeakSet()


def _after_fork_in_child() -> None:
    # The child has one thread and a copy of every client: none may touch its
    # (the parent's) gRPC channel. Each refuses calls from now on; what it
    # must also end -- watches waiting on a reader thread the child lacks --
    # its _after_fork does without taking locks (no other thread runs).
    for state in list(_LIVE):
        state._after_fork()


def _before_fork() -> None:
    # gRPC's objects (channels, calls) must never be finalized in a child: the
    # core's locks there may be held by a thread that did not come along, and
    # a collection of the parent's garbage would crash the child. Frozen
    # objects are never collected (CPython's own advice for fork); the child
    # keeps them frozen, the parent collects as before.
    if _LIVE:
        gc.freeze()


def _after_fork_in_parent() -> None:
    if _LIVE:
        gc.unfreeze()


if hasattr(os, "register_at_fork"):  # POSIX
    os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_in_parent,
                        after_in_child=_after_fork_in_child)


def _min_version(reject: Union[bool, Tuple[int, int]]) -> Optional[Tuple[int, int]]:
    if reject is True:
        return MIN_CLUSTER_VERSION
    if reject is False or reject is None:
        return None
    if (not isinstance(reject, tuple) or len(reject) != 2
            or not all(isinstance(n, int) and not isinstance(n, bool) for n in reject)):
        raise TypeError(f"reject_old_cluster must be a bool or a (major, minor) tuple, not {reject!r}")
    return reject


def _pem(value: Optional[PathOrBytes], what: str) -> Optional[bytes]:
    if value is None or isinstance(value, bytes):
        return value
    try:
        with open(value, "rb") as f:
            return f.read()
    except OSError as exc:
        raise FileNotFoundError(f"cannot read the {what} file {os.fspath(value)!r}: {exc.strerror}") from None


class ClientState:
    """Options and state shared by :class:`etcdfast.Client` and :class:`etcdfast.AsyncClient`."""

    def __init__(
        self,
        endpoints: EndpointsLike = "127.0.0.1:2379",
        *,
        timeout: Optional[float] = DEFAULT_TIMEOUT,
        dial_timeout: Optional[float] = DEFAULT_DIAL_TIMEOUT,
        user: Optional[str] = None,
        password: Optional[str] = None,
        ca_cert: Optional[PathOrBytes] = None,
        cert: Optional[PathOrBytes] = None,
        key: Optional[PathOrBytes] = None,
        server_name: Optional[str] = None,
        require_leader: bool = False,
        max_retries: int = DEFAULT_MAX_RETRIES,
        auto_sync_interval: Optional[float] = None,
        keepalive_time: Optional[float] = DEFAULT_KEEPALIVE_TIME,
        keepalive_timeout: float = DEFAULT_KEEPALIVE_TIMEOUT,
        keepalive_permit_without_calls: bool = False,
        max_receive_message_length: int = DEFAULT_MAX_RECEIVE,
        max_send_message_length: int = DEFAULT_MAX_SEND,
        grpc_options: Sequence[Tuple[str, Any]] = (),
        insecure_skip_verify: bool = False,
        discovery_srv: Optional[str] = None,
        discovery_srv_name: str = "",
        insecure_discovery: bool = False,
        retry_backoff: Tuple[float, float] = DEFAULT_RETRY_BACKOFF,
        reject_old_cluster: Union[bool, Tuple[int, int]] = False,
        on_call: Optional[CallHook] = None,
    ) -> None:
        """Connect to etcd (lazily: nothing is sent before the first call).

        ``endpoints``
            ``"host:port"``, ``"http(s)://host:port"``, a comma-separated string
            or a list of them. Several endpoints are balanced round-robin, and
            every call fails over between them.
        ``timeout``
            Default deadline of each call, in seconds (``None`` or ``math.inf``:
            no deadline). A call's own ``timeout=`` overrides it.
        ``dial_timeout``
            How long the first connection may take (Go's ``DialTimeout``): a
            member that accepts TCP and never answers fails the first call
            after this many seconds with :class:`~etcdfast.Unavailable` naming
            the endpoints; a refused connection fails at once (after the usual
            retries). ``None``: no separate wait, grpc's own connection timeout
            (~20 s) applies.
        ``user``, ``password``
            Password authentication; the token is refreshed transparently.
        ``ca_cert``, ``cert``, ``key``
            TLS: the CA that signs the server certificates (default: the system
            roots), and a client certificate for mTLS. Paths or PEM bytes; files
            are read here, so a wrong path fails at once. ``https://``
            endpoints turn TLS on too.
        ``server_name``
            The name the server certificate must carry, when it differs from
            the endpoint's host (e.g. connecting by IP).
        ``require_leader``
            Calls on a member cut off from its leader fail at once with
            :class:`~etcdfast.NoLeaderError` instead of stalling (etcd's
            ``WithRequireLeader``); watches end with it.
        ``max_retries``
            Retries of a call that failed with ``UNAVAILABLE`` when repeating it
            is safe (Go's rules: reads and idempotent calls; writes only when
            they provably never left the client).
        ``auto_sync_interval``
            Seconds between refreshes of the endpoints from the member list
            (:meth:`sync_endpoints`); ``None``: never.
        ``keepalive_time``, ``keepalive_timeout``, ``keepalive_permit_without_calls``
            HTTP/2 pings that detect a dead connection while calls or streams
            are open (``None`` turns them off).
        ``max_receive_message_length``, ``max_send_message_length``
            gRPC's message size limits (receive: 2 GiB - 1, so large ranges
            work; send: 2 MiB, above etcd's 1.5 MiB request limit).
        ``grpc_options``
            Extra ``(name, value)`` channel options, applied last.
        ``insecure_skip_verify``
            TLS without checking the server's certificate chain or name
            (etcdctl's ``--insecure-skip-tls-verify``; for tests and
            emergencies): the certificate each member presents is fetched
            and trusted as it is. Implies TLS.
        ``discovery_srv``, ``discovery_srv_name``, ``insecure_discovery``
            Find the endpoints in DNS SRV records of this domain instead of
            ``endpoints`` (etcdctl's ``--discovery-srv``; see
            :mod:`etcdfast.discovery`); plaintext ones only with
            ``insecure_discovery=True``. Over TLS the domain is the name the
            certificates must carry, unless ``server_name`` says otherwise.
        ``retry_backoff``
            ``(first, cap)``: seconds before the first retry, doubled on each
            next one up to ``cap`` (each drawn from the upper half: jitter).
        ``reject_old_cluster``
            Before the first call, check every endpoint's etcd version and
            refuse (:class:`~etcdfast.errors.OldClusterError`) one older than
            3.4, or than the ``(major, minor)`` given (Go's ``RejectOldCluster``).
        ``on_call``
            Called with a :class:`~etcdfast.CallInfo` after every call and
            stream (method, endpoint, duration, outcome, retries): for metrics
            and tracing. See :mod:`etcdfast._core.observe`. Set
            ``ETCD_CLIENT_DEBUG=1`` or configure the ``etcdfast`` loggers for logs.
        """
        debug_from_environment()
        if discovery_srv is not None:
            from ..discovery import srv_endpoints  # DNS only when asked for

            endpoints = srv_endpoints(discovery_srv, discovery_srv_name, insecure=insecure_discovery)
            if server_name is None and not insecure_discovery:
                server_name = discovery_srv.strip(".")
            log.info("discovered endpoints %s for %r", ",".join(endpoints), discovery_srv)
        self._endpoints = parse_endpoints(endpoints)
        secure = (any(e.secure for e in self._endpoints) or ca_cert is not None or cert is not None
                  or bool(insecure_skip_verify))
        #: Trust whatever certificate each member presents (see _trust).
        self._skip_verify = bool(insecure_skip_verify)
        if (cert is None) != (key is None):
            raise ValueError("a client certificate needs both cert= and key=")
        #: PEM bytes for the executors' TLS credentials (None: plaintext).
        self._tls: Optional[Tuple[Optional[bytes], Optional[bytes], Optional[bytes]]] = (
            (_pem(ca_cert, "CA certificate"), _pem(key, "client key"), _pem(cert, "client certificate"))
            if secure else None
        )
        if (user is None) != (password is None):
            raise ValueError("user= and password= go together")
        if user is not None and not isinstance(user, str):
            raise TypeError(f"user must be a str, not {type(user).__name__}")
        self._user = user
        # Name-mangled and never printed: see __repr__ and login_request().
        self.__password = password
        #: Default deadline of a call; NO_DEADLINE for none.
        self._timeout = check_timeout(timeout) or NO_DEADLINE
        self._dial_timeout = None if dial_timeout is None else check_seconds("dial_timeout", dial_timeout)
        #: The members that calls pinned to one endpoint (``endpoint=``) reached once.
        self._dialed_pins: "set[str]" = set()
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise ValueError(f"max_retries must be an int >= 0, got {max_retries!r}")
        self.max_retries = max_retries
        first, cap = retry_backoff
        self._retry_backoff = (check_seconds("retry_backoff", first), check_seconds("retry_backoff", cap))
        if first > cap:
            raise ValueError(f"retry_backoff's first delay {first} exceeds its cap {cap}")
        #: The oldest etcd (major, minor) accepted; None: no check.
        self._min_version: Optional[Tuple[int, int]] = _min_version(reject_old_cluster)
        self._reset_dial()
        if on_call is not None and not callable(on_call):
            raise TypeError(f"on_call must be callable, not {type(on_call).__name__}")
        self._on_call: Optional[CallHook] = on_call
        #: How many sessions each bidirectional stream had (see observe.StreamSession).
        self._stream_sessions: "dict[str, int]" = {}
        self.auto_sync_interval = (
            None if auto_sync_interval is None else check_seconds("auto_sync_interval", auto_sync_interval)
        )
        options: List[Tuple[str, Any]] = [
            ("grpc.max_receive_message_length", int(max_receive_message_length)),
            ("grpc.max_send_message_length", int(max_send_message_length)),
            ("grpc.primary_user_agent", "etcdfast"),
            # Retries follow Go's rules in _core.calls; grpc's own transparent
            # retries would only add ~4 % CPU per call (measured,
            # bench/grpc_settings.py) and a second, unaligned policy.
            ("grpc.enable_retries", 0),
        ]
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
            options.append(("grpc.ssl_target_name_override", server_name))
        self._common_options = options
        self._extra_options = list(grpc_options)  # the caller's word is final
        self._target = ""
        self._options: List[Tuple[str, Any]] = []
        self._use_endpoints(self._endpoints)
        # "hasleader" makes the member refuse calls (NoLeaderError) instead of
        # stalling while it is cut off from its leader: etcd's WithRequireLeader.
        self._base_metadata: Tuple[Tuple[str, str], ...] = (
            (("hasleader", "true"),) if require_leader else ()
        )
        #: The metadata every call and stream carries (token included).
        self._metadata: Metadata = self._base_metadata or None
        self._require_leader = bool(require_leader)
        #: True while calls must first authenticate (user given, no token yet).
        self._needs_login = user is not None
        self._revisions: Observer = _codec.revision.RevisionTracker()
        self._closed = False
        #: The process that made the client: after os.fork() it cannot be used (ForkedClientError).
        self._pid = os.getpid()
        _LIVE.add(self)
        #: The clock of every deadline and schedule (tests may replace it).
        self._clock: Callable[[], float] = time.monotonic
        self._started()

    def _started(self) -> None:
        """Called at the end of ``__init__``: the client adds its executor."""

    # -- public, shared ------------------------------------------------------

    @property
    def endpoints(self) -> List[str]:
        """The endpoints this client talks to."""
        return [str(e) for e in self._endpoints]

    @property
    def last_revision(self) -> int:
        """The highest store revision seen in any response header (0 before any)."""
        return int(self._revisions.last)  # type: ignore[attr-defined]

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called."""
        return self._closed

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        who = f" user={self._user!r}" if self._user is not None else ""
        return f"<{type(self).__name__} {','.join(self.endpoints)}{who} {state}>"

    # -- for the machines and executors ----------------------------------------

    def _use_endpoints(self, endpoints: List[Endpoint]) -> None:
        """Point the *next* channel at ``endpoints`` (grpc balances and fails over between them)."""
        if self._target:  # not the first: a change
            log.info("endpoints changed: %s -> %s", self._where(), ",".join(map(str, endpoints)))
        self._endpoints = endpoints
        self._target, lb_options = channel_target(endpoints)
        self._options = [*self._common_options, *lb_options, *self._extra_options]

    def _reset_dial(self) -> None:
        """A new channel: calls first wait for its connection (``dial_timeout``)
        and check its members' versions (``reject_old_cluster``), if asked to."""
        #: The version check (reject_old_cluster) has passed.
        self._version_checked = self._min_version is None
        #: The current channel has connected once (or no dial wait is wanted).
        self._dialed = self._dial_timeout is None and self._version_checked

    def _version_check(self) -> Generator["Request[Any]", Any, Optional[OldClusterError]]:
        """``reject_old_cluster``: yields a status call to each endpoint and
        receives its answer; returns the refusal of the first one too old."""
        for endpoint in self._endpoints:
            request = _maintenance.status()
            request.endpoint = endpoint.address
            answer = yield request
            error = self._version_error(endpoint, answer.version)
            if error is not None:
                return error
        return None

    def _version_error(self, endpoint: Endpoint, version: str) -> Optional[OldClusterError]:
        """The refusal of a member that reported ``version``, if it is too old."""
        assert self._min_version is not None
        try:
            found = tuple(int(part) for part in version.split(".")[:2])
        except ValueError:
            found = (0, 0)
        if found >= self._min_version:
            return None
        wanted = ".".join(map(str, self._min_version))
        return OldClusterError(
            f"etcd {version or '(no version)'} at {endpoint} is older than {wanted} (reject_old_cluster)",
            version=version, endpoint=str(endpoint),
        )

    def _pinned_dialed(self, endpoint: str) -> bool:
        """Whether calls pinned to ``endpoint`` may skip the first-connection wait."""
        return self._dial_timeout is None or endpoint in self._dialed_pins

    def _mark_dialed(self, endpoint: Optional[str]) -> None:
        """The channel of ``endpoint`` (None: the balanced one) has connected."""
        if endpoint is None:
            self._dialed = True
        else:
            self._dialed_pins.add(endpoint)

    def _pinned_channel_args(self, endpoint: str) -> Tuple[str, List[Tuple[str, Any]]]:
        """The gRPC target and options of a channel to one member (``endpoint=`` calls)."""
        return endpoint, [*self._common_options, *self._extra_options]

    def _where(self) -> str:
        return ",".join(self.endpoints)

    def _deadline_for(self, timeout: Optional[float], default: Optional[float] = None) -> float:
        """A call's timeout in seconds (NO_DEADLINE: none), from its own, its kind's or the client's."""
        if timeout is not None:
            return timeout
        return default if default is not None else self._timeout

    def _login_request(self) -> "LoginRequest[str]":
        user, password = self._user, self.__password
        assert user is not None and password is not None, "a login needs user= and password="
        payload = _auth.login_payload(user, password)
        return LoginRequest(AUTHENTICATE, payload, _codec.wire.decode_authenticate, repeatable=True)

    def _metadata_of(self, require_leader: Optional[bool]) -> Metadata:
        """The metadata of a call that overrides the client's ``require_leader``."""
        if require_leader is None or bool(require_leader) == self._require_leader:
            return self._metadata
        token = tuple(item for item in self._metadata or () if item[0] == "token")
        return ((("hasleader", "true"),) + token if require_leader else token) or None

    def _set_token(self, token: str) -> None:
        log.debug("authenticated as %r: new auth token", self._user)
        self._metadata = (*self._base_metadata, ("token", token))
        self._needs_login = False

    def _drop_stale_token(self, error: EtcdError) -> bool:
        """True if ``error`` says our token is stale ("invalid auth token",
        "auth revision is old"): the server refused the call before running
        it, so it may be repeated. The token is then forgotten, and the next
        call logs in again first."""
        if self._user is None or not isinstance(error, (InvalidAuthTokenError, AuthOldRevisionError)):
            return False
        self._metadata = self._base_metadata or None
        self._needs_login = True
        return True

    def _error_of(self, exc: BaseException) -> EtcdError:
        """The etcdfast error for anything a call or stream failed with.

        A gRPC error (anything with ``code()``/``details()``, from grpcio or
        grpc.aio) maps through :func:`~etcdfast.errors.from_rpc_error`; our own
        errors pass through; anything else (grpc refusing to start a call on
        a closed channel...) becomes ClientClosedError or Unavailable.
        """
        if isinstance(exc, EtcdError):
            return exc
        if callable(getattr(exc, "code", None)) and callable(getattr(exc, "details", None)):
            return from_rpc_error(exc, self.endpoints)
        if self._closed:
            return self._closed_error()
        return Unavailable(f"call to {self._where()} failed: {exc!r}", endpoint=self._where())

    def _stream_error(self, exc: Optional[BaseException]) -> EtcdError:
        """Errors of the watch/keep-alive streams: a stale token means "log in and reconnect";
        ``None`` (the server ended the stream) is Unavailable."""
        if exc is None:
            return Unavailable("stream closed by the server", endpoint=self._where())
        error = self._error_of(exc)
        if self._drop_stale_token(error):
            return ReauthenticatingError(f"auth token refreshed after: {error}")
        return error

    def _check_open(self) -> None:
        if self._closed:
            raise self._closed_error()

    def _closed_error(self) -> ClientClosedError:
        """Why calls fail now: closed, or made in the parent of a fork."""
        if self._pid != os.getpid():
            return ForkedClientError(
                f"this etcdfast client was made in process {self._pid} and cannot be used in "
                f"process {os.getpid()}, a child made by os.fork(): gRPC channels and the "
                "client's threads do not survive a fork. Make a new client in the child "
                "(the parent's client is unaffected) -- gRPC forks cleanly only while no call "
                "of the parent is in flight: with watches or calls running at the fork, start "
                "children with multiprocessing's 'spawn' or 'forkserver' method."
            )
        return ClientClosedError("the client is closed")

    @property
    def _forked(self) -> bool:
        return self._pid != os.getpid()

    def _after_fork(self) -> None:
        """In a forked child: refuse every call (never touch the parent's channel),
        and end the watches waiting on a reader the child does not have."""
        self._closed = True
        error = self._closed_error()
        for stream in self._watch_streams():
            stream._abandon(error)

    def _watch_streams(self) -> List[Any]:
        """The client's watch streams (each client class has its own)."""
        return []

    def _grpc_timeout(self, seconds: float) -> Optional[float]:
        """A deadline as grpc takes it: None for no deadline."""
        return None if seconds == math.inf else seconds
