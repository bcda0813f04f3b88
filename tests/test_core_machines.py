"""The sans-IO machines of ``etcdfast._core``, with no server, no network and no sleeps.

Each machine is fed what its executor would feed it -- gRPC failures, answer
bytes built with the protobuf schema (``etcdfast._schema``), a fake clock --
and the test reads the action, error or delivery it decides. Tables list the
situations (one ``pytest.param`` per case, with an id saying which).

* ``_core.calls``: ``Call`` / ``StreamCall`` (start, dialed, failed, retries,
  deadlines, stale tokens, the compact probe, secrets).
* ``_core.watch_hub``: ``WatchHub`` fed ``WatchResponse`` bytes; its requests
  are decoded back to check what it would send. Every hub test runs under
  both codec twins (the ``twin`` fixture).
* ``_core.keepalive``: ``KeepAliveSchedule`` on a fake clock, ``LeaseHandle``.
* ``_core.bulk``: ``BulkLoad`` (batches, waits, the ledger) and ``RangePager``,
  also under both twins (their packer and decoders are the codec's).
* ``_core.methods``: the generated client methods.

The ``ClientState`` of the call tests is the real base class of both clients
(its ``_started()`` hook is a no-op there, so no channel is made); the tests
set ``_dialed``, ``_needs_login``, ``_metadata`` and ``_closed`` as the
executors would.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import math
from typing import Any, Callable, Iterable, List, Optional, Tuple

import pytest

import etcdfast
from etcdfast import _codec, _schema
from etcdfast._core import backoff as backoff_module
from etcdfast._core.bulk import BulkLoad, RangePager
from etcdfast._core.calls import (
    DIAL,
    LOGIN,
    PROBE,
    RAISE,
    SEND,
    SLEEP,
    Call,
    StreamCall,
    compact_probe,
    compact_revision_of,
    outcome_unknown,
)
from etcdfast._core.keepalive import KeepAliveSchedule, LeaseHandle, report_lost
from etcdfast._core.methods import async_method, async_unary, sync_method, sync_unary
from etcdfast._core.state import DEFAULT_RETRY_BACKOFF as RETRY_BACKOFF
from etcdfast._core.state import ClientState
from etcdfast._core.watch_hub import CREATED, END, WatchHub, WatchState
from etcdfast.api import auth, bulk, kv, lease
from etcdfast.api import txn as txn_api
from etcdfast.api.bulk import DEFAULT_PAGE_SIZE, MAX_PAGE_KEYS, MIN_PAGE_KEYS, PAGE_BYTES
from etcdfast.api.request import Request
from etcdfast.api.watch import watch_spec
from etcdfast.errors import (
    AuthOldRevisionError,
    BulkWriteError,
    CancelledError,
    ClientClosedError,
    ClosedDuringCallError,
    CompactedError,
    ConnectionLostError,
    EmptyKeyError,
    EtcdError,
    InternalError,
    InvalidArgumentError,
    InvalidAuthTokenError,
    LeaderChangedError,
    LeaseExpiredError,
    NoLeaderError,
    PermissionDeniedError,
    ProtocolError,
    ReauthenticatingError,
    RequestTimedOutError,
    RequestTooLargeError,
    Timeout,
    Unavailable,
)
from etcdfast.types import BulkResult, GetResult, Progress, WatchResponse

ENDPOINT = "127.0.0.1:1"  # never dialled: nothing here opens a socket


# -- fakes ---------------------------------------------------------------------


class FakeClock:
    """``ClientState._clock`` and the schedules' ``now``: time moves only when told."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class FakeStatusCode:
    """Stands in for a ``grpc.StatusCode`` member: only its ``.name`` is read."""

    def __init__(self, name: str) -> None:
        self.name = name


class FakeRpcError(Exception):
    """Stands in for what grpcio (``grpc.RpcError``) and grpc.aio (``AioRpcError``)
    raise when a call fails. ``errors.from_rpc_error`` (through
    ``ClientState._error_of``) duck-types ``code()`` and ``details()``, so the
    machines get exactly what the executors would hand them, with no grpc."""

    def __init__(self, code: str, details: str) -> None:
        super().__init__(f"{code}: {details}")
        self._code = FakeStatusCode(code)
        self._details = details

    def code(self) -> FakeStatusCode:
        return self._code

    def details(self) -> str:
        return self._details


#: What the executors see, by name: (status code, details) as grpc-core and etcd word them.
RPC_ERRORS = {
    # grpc-core found no connection: nothing was sent.
    "refused": ("UNAVAILABLE", "failed to connect to all addresses; last error: UNAVAILABLE: "
                               "ipv4:127.0.0.1:1: Connection refused"),
    "refused-go": ("UNAVAILABLE", 'connection error: desc = "transport: Error while dialing: '
                                  'dial tcp 127.0.0.1:1: connect: connection refused"'),
    "no-address": ("UNAVAILABLE", "there is no address available"),
    # round_robin (several endpoints) words it differently.
    "all-backends": ("UNAVAILABLE", "connections to all backends failing; last error: UNKNOWN: "
                                    "ipv4:127.0.0.1:1: Failed to connect to remote host: "
                                    "getsockopt(SO_ERROR): Connection reset by peer"),
    # The connection broke with the request on it.
    "socket-closed": ("UNAVAILABLE", "Socket closed"),
    "deadline": ("DEADLINE_EXCEEDED", "Deadline Exceeded"),
    "unimplemented": ("UNIMPLEMENTED", "Method not found: etcdfast.Dial/Ping"),
    "cancelled": ("CANCELLED", "Channel closed!"),
    # etcd's own answers (rpctypes), with the codes etcd sends them with.
    "empty-key": ("INVALID_ARGUMENT", "etcdserver: key is not provided"),
    "bad-token": ("UNAUTHENTICATED", "etcdserver: invalid auth token"),
    "old-auth": ("INVALID_ARGUMENT", "etcdserver: revision of auth store is old"),
    "auth-failed": ("INVALID_ARGUMENT", "etcdserver: authentication failed, invalid user ID or password"),
    "denied": ("PERMISSION_DENIED", "etcdserver: permission denied"),
    "compacted": ("OUT_OF_RANGE", "etcdserver: mvcc: required revision has been compacted"),
    "no-leader": ("UNAVAILABLE", "etcdserver: no leader"),
    "leader-changed": ("UNAVAILABLE", "etcdserver: leader changed"),
}


def rpc(name: str) -> BaseException:
    """A failure as an executor catches it; ``"runtime"``: grpc refusing to start
    a call at all (it raises ValueError on a closed channel)."""
    if name == "runtime":
        return ValueError("Cannot invoke RPC on closed channel!")
    return FakeRpcError(*RPC_ERRORS[name])


class Jitter:
    """Replaces the ``random`` module of ``_core.backoff``: always one end of the range."""

    def __init__(self, pick: str) -> None:
        self.pick = pick
        self.ranges: List[Tuple[float, float]] = []

    def uniform(self, low: float, high: float) -> float:
        self.ranges.append((low, high))
        return low if self.pick == "low" else high


def assert_backoff(delays: List[float], initial: float, maximum: float) -> None:
    """Delay n is within [c/2, c] for c = min(maximum, initial * 2**n)."""
    for n, delay in enumerate(delays):
        ceiling = min(maximum, initial * 2**n)
        assert ceiling / 2 <= delay <= ceiling, (n, delay, ceiling)


# == _core.calls ================================================================


def make_state(
    *,
    user: bool = False,
    token: bool = True,
    dialed: Optional[bool] = True,
    closed: bool = False,
    timeout: float = 30.0,
    dial_timeout: Optional[float] = 5.0,
    max_retries: int = 3,
    clock: Optional[FakeClock] = None,
) -> ClientState:
    """A client's state as the executors leave it; ``dialed=None`` keeps the constructor's."""
    state = ClientState(
        ENDPOINT, timeout=timeout, dial_timeout=dial_timeout, max_retries=max_retries,
        user="alice" if user else None, password="alice-pw" if user else None,
    )
    state._clock = clock or FakeClock()
    if dialed is not None:
        state._dialed = dialed
    if user and token:  # as the executor's login leaves it
        state._metadata = (("token", "token-1"),)
        state._needs_login = False
    state._closed = closed
    return state


def make_request(kind: str, state: ClientState) -> Request[Any]:
    if kind == "read":  # repeatable
        return kv.get("k")
    if kind == "write":  # not repeatable
        return kv.put("k", "v")
    if kind == "txn":  # a Txn holding a Range: not a Range call itself
        return txn_api.txn(success=[kv.get("k", revision=1)])
    if kind == "secret":  # SecretRequest
        return auth.user_add("bob", password="hunter2")
    if kind == "login":  # LoginRequest: secret and anonymous
        return state._login_request()
    raise AssertionError(kind)


def case(id: str, kind: str, error: str, action: int, raised: Optional[type] = None,
         unknown: bool = False, *, started: bool = True, user: bool = False, closed: bool = False,
         retries: int = 3) -> Any:
    return pytest.param(kind, error, started, user, closed, retries, action, raised, unknown, id=id)


#: Call.failed: (request, failure) -> action, and the error raised with whether
#: it says "may have been applied" (OutcomeUnknownError).
FAILED = [
    # No connection could be made: never sent, so retried whatever the call.
    case("read/refused", "read", "refused", SLEEP),
    case("write/refused", "write", "refused", SLEEP),
    case("write/refused-go-words", "write", "refused-go", SLEEP),
    case("write/no-address", "write", "no-address", SLEEP),
    case("write/all-backends-failing", "write", "all-backends", SLEEP),
    case("write/socket-closed/not-started", "write", "socket-closed", SLEEP, started=False),
    case("write/grpc-refused-to-start", "write", "runtime", SLEEP, started=False),
    case("secret/refused", "secret", "refused", SLEEP),
    # UNAVAILABLE after sending: only repeatable calls are retried.
    case("read/socket-closed", "read", "socket-closed", SLEEP),
    case("read/no-leader", "read", "no-leader", SLEEP),
    case("read/leader-changed", "read", "leader-changed", SLEEP),
    case("write/socket-closed", "write", "socket-closed", RAISE, ConnectionLostError, True),
    case("secret/socket-closed", "secret", "socket-closed", RAISE, ConnectionLostError, True),
    case("write/leader-changed", "write", "leader-changed", RAISE, LeaderChangedError, True),
    case("write/no-leader", "write", "no-leader", RAISE, NoLeaderError, False),
    # Out of retries.
    case("read/refused/max-retries-0", "read", "refused", RAISE, Unavailable, False, retries=0),
    case("write/refused/max-retries-0", "write", "refused", RAISE, Unavailable, False, retries=0),
    case("read/socket-closed/max-retries-0", "read", "socket-closed", RAISE, ConnectionLostError, True,
         retries=0),
    # Deadlines: never retried, outcome unknown.
    case("read/deadline", "read", "deadline", RAISE, Timeout, True),
    case("write/deadline", "write", "deadline", RAISE, Timeout, True),
    # etcd refused the request: not executed, never retried.
    case("read/empty-key", "read", "empty-key", RAISE, EmptyKeyError, False),
    case("write/empty-key", "write", "empty-key", RAISE, EmptyKeyError, False),
    case("write/permission-denied", "write", "denied", RAISE, PermissionDeniedError, False),
    # A stale token: log in again (only a client with a user can).
    case("write/invalid-token/user", "write", "bad-token", LOGIN, user=True),
    case("read/old-auth-revision/user", "read", "old-auth", LOGIN, user=True),
    case("secret/invalid-token/user", "secret", "bad-token", LOGIN, user=True),
    case("write/invalid-token/no-user", "write", "bad-token", RAISE, InvalidAuthTokenError, False),
    # "auth revision is old" without a password (TLS common-name auth): nothing to
    # refresh, the call was refused before running: repeated, as Go's clientv3 does.
    case("read/old-auth-revision/no-user", "read", "old-auth", SLEEP),
    case("write/old-auth-revision/no-user", "write", "old-auth", SLEEP),
    case("write/old-auth-revision/no-user/no-retries", "write", "old-auth", RAISE, AuthOldRevisionError,
         False, retries=0),
    # Compaction: a Range probes the compact revision; anything else raises as is.
    case("read/compacted", "read", "compacted", PROBE),
    case("txn/compacted", "txn", "compacted", RAISE, CompactedError, False),
    # The client was closed meanwhile: sent or not decides the error.
    case("closed/write/sent", "write", "socket-closed", RAISE, ClosedDuringCallError, True, closed=True),
    case("closed/read/deadline", "read", "deadline", RAISE, ClosedDuringCallError, True, closed=True),
    case("closed/write/never-sent", "write", "refused", RAISE, ClientClosedError, False, closed=True),
    case("closed/write/not-started", "write", "runtime", RAISE, ClientClosedError, False,
         started=False, closed=True),
    case("closed/write/stale-token", "write", "bad-token", RAISE, ClosedDuringCallError, True,
         user=True, closed=True),
]


@pytest.mark.parametrize("kind, error, started, user, closed, retries, action, raised, unknown", FAILED)
def test_call_failed(kind: str, error: str, started: bool, user: bool, closed: bool, retries: int,
                     action: int, raised: Optional[type], unknown: bool) -> None:
    state = make_state(user=user, max_retries=retries)
    call = Call(make_request(kind, state), state)
    assert call.start() == SEND
    state._closed = closed  # closed while the call was in flight
    exc = rpc(error)
    assert call.failed(exc, started=started) == action
    if action == RAISE:
        assert type(call.error) is raised
        assert outcome_unknown(call.error) is unknown
        if isinstance(call.error, Unavailable):
            assert call.error.endpoint == ENDPOINT
    elif action == SLEEP:
        assert call.error is None and call.attempt == 1
        assert RETRY_BACKOFF[0] / 2 <= call.delay <= RETRY_BACKOFF[0]
        assert call.slept() == SEND
    elif action == LOGIN:
        assert call.error is None and call.relogged
        assert state._needs_login and state._metadata is None  # the stale token is forgotten
        assert call.logged_in() == SEND
    else:
        assert action == PROBE and type(call.error) is CompactedError


#: The first action of a fresh call, for both machines.
START = [
    pytest.param({"dialed": False}, "read", DIAL, id="not-dialed"),
    pytest.param({"dialed": None, "dial_timeout": None}, "read", SEND, id="no-dial-timeout"),
    pytest.param({"dialed": False, "user": True, "token": False}, "write", DIAL, id="dial-before-login"),
    pytest.param({"user": True, "token": False}, "write", LOGIN, id="user-without-token"),
    pytest.param({"user": True}, "write", SEND, id="user-with-token"),
    pytest.param({}, "write", SEND, id="no-user"),
    pytest.param({"user": True, "token": False}, "login", SEND, id="login-is-anonymous"),
    pytest.param({"closed": True}, "read", RAISE, id="closed"),
]


@pytest.mark.parametrize("machine", [Call, StreamCall])
@pytest.mark.parametrize("options, kind, action", START)
def test_call_start(machine: type, options: dict, kind: str, action: int) -> None:
    state = make_state(**options)
    call = machine(make_request(kind, state), state)
    assert call.start() == action
    if action == RAISE:
        assert type(call.error) is ClientClosedError
    else:
        assert call.error is None


#: Call.dialed: the connection probe's failure -> action (and the state's _dialed after it).
DIALED = [
    pytest.param(None, {}, "write", SEND, True, None, id="answered"),
    pytest.param("unimplemented", {}, "write", SEND, True, None, id="unimplemented-is-connected"),
    pytest.param("unimplemented", {"user": True, "token": False}, "write", LOGIN, True, None,
                 id="connected-then-login"),
    pytest.param("unimplemented", {"user": True, "token": False}, "login", SEND, True, None,
                 id="connected-login-call"),
    pytest.param("deadline", {}, "write", RAISE, False, Unavailable, id="deadline-is-unavailable"),
    pytest.param("refused", {}, "write", SLEEP, False, None, id="refused-retried"),
    pytest.param("socket-closed", {}, "write", SLEEP, False, None, id="probe-failure-never-sent"),
    pytest.param("refused", {"max_retries": 0}, "write", RAISE, False, Unavailable, id="refused-no-retries"),
    pytest.param("runtime", {"closed": True}, "write", RAISE, False, ClientClosedError,
                 id="closed-channel"),
    pytest.param("cancelled", {"closed": True}, "write", RAISE, False, ClientClosedError,
                 id="closed-cancelled"),
]


@pytest.mark.parametrize("failure, options, kind, action, dialed, raised", DIALED)
def test_call_dialed(failure: Optional[str], options: dict, kind: str, action: int, dialed: bool,
                     raised: Optional[type]) -> None:
    state = make_state(dialed=False, **options)
    call = Call(make_request(kind, state), state)
    if not state._closed:
        assert call.start() == DIAL
    assert call.dialed(None if failure is None else rpc(failure), 5.0) == action
    assert state._dialed is dialed
    if raised is not None:
        assert type(call.error) is raised and not outcome_unknown(call.error)
    if failure == "deadline":
        message = str(call.error)
        assert call.error.endpoint == ENDPOINT and ENDPOINT in message and "dial_timeout" in message
    if action == SLEEP:
        assert call.slept() == DIAL  # still not connected: probe again


@pytest.mark.parametrize("dial_timeout, timeout, elapsed, wait", [
    pytest.param(5.0, 30.0, 0.0, 5.0, id="dial-timeout"),
    pytest.param(5.0, 2.0, 0.0, 2.0, id="call-deadline-first"),
    pytest.param(5.0, math.inf, 0.0, 5.0, id="no-deadline"),
    pytest.param(5.0, 30.0, 28.0, 2.0, id="deadline-nearly-spent"),
])
def test_call_dial_wait(dial_timeout: float, timeout: float, elapsed: float, wait: float) -> None:
    clock = FakeClock()
    state = make_state(dialed=False, dial_timeout=dial_timeout, timeout=timeout, clock=clock)
    call = Call(kv.get("k"), state)
    clock.advance(elapsed)
    assert call.dial_wait() == pytest.approx(wait)


@pytest.mark.parametrize("max_retries", [0, 1, 3, 8])
@pytest.mark.parametrize("kind, error, final", [
    pytest.param("read", "socket-closed", ConnectionLostError, id="read-after-sending"),
    pytest.param("write", "refused", Unavailable, id="write-never-sent"),
])
def test_call_retries_stop_at_max_retries(kind: str, error: str, final: type, max_retries: int) -> None:
    clock = FakeClock()
    state = make_state(max_retries=max_retries, timeout=math.inf, clock=clock)
    call = Call(make_request(kind, state), state)
    action = call.start()
    delays = []
    for _ in range(max_retries + 2):  # bounded: one more than allowed
        assert action == SEND
        action = call.failed(rpc(error))
        if action != SLEEP:
            break
        delays.append(call.delay)
        clock.advance(call.delay)  # the executor sleeps
        action = call.slept()
    assert action == RAISE and type(call.error) is final
    assert len(delays) == max_retries
    assert_backoff(delays, *RETRY_BACKOFF)


@pytest.mark.parametrize("pick, sleeps", [("low", 3), ("high", 2)])
def test_call_retries_stop_at_the_deadline(monkeypatch: pytest.MonkeyPatch, pick: str, sleeps: int) -> None:
    # timeout 0.1 s; delays (low end) 12.5, 25, 50 ms fit and the next 100 ms
    # does not; (high end) 25, 50 ms fit, 100 ms does not.
    jitter = Jitter(pick)
    monkeypatch.setattr(backoff_module, "random", jitter)
    clock = FakeClock()
    state = make_state(timeout=0.1, max_retries=100, clock=clock)
    call = Call(kv.get("k"), state)
    assert call.start() == SEND
    slept = []
    for _ in range(10):
        action = call.failed(rpc("socket-closed"))
        if action != SLEEP:
            break
        slept.append(call.delay)
        clock.advance(call.delay)
        assert call.slept() == SEND
    assert action == RAISE and type(call.error) is ConnectionLostError
    assert len(slept) == sleeps and sum(slept) < 0.1
    refused = jitter.ranges[-1][0 if pick == "low" else 1]
    assert call.time_left() <= refused  # the delay it did not take would overrun the deadline


def test_call_deadline_already_spent_raises_at_once() -> None:
    clock = FakeClock()
    state = make_state(timeout=30.0, clock=clock)
    call = Call(kv.get("k"), state)
    assert call.start() == SEND
    clock.advance(31.0)  # the attempt itself used up the deadline
    assert call.time_left() == 0.001  # grpc still gets a (tiny) deadline, never 0 or negative
    assert call.failed(rpc("socket-closed")) == RAISE
    assert type(call.error) is ConnectionLostError and call.attempt == 0


def test_call_stale_token_is_retried_once() -> None:
    state = make_state(user=True)
    call = Call(kv.put("k", "v"), state)
    assert call.start() == SEND
    assert call.failed(rpc("bad-token")) == LOGIN
    assert state._needs_login and state._metadata is None
    state._metadata, state._needs_login = (("token", "token-2"),), False  # the executor logged in
    assert call.logged_in() == SEND
    assert call.failed(rpc("bad-token")) == RAISE  # refused again: believed
    assert type(call.error) is InvalidAuthTokenError and not outcome_unknown(call.error)
    assert state._metadata == (("token", "token-2"),) and not state._needs_login  # not dropped twice
    # The limit is per call: the next call may log in again.
    other = Call(kv.put("k", "v"), state)
    assert other.start() == SEND
    assert other.failed(rpc("old-auth")) == LOGIN


@pytest.mark.parametrize("probed", [7, None])
def test_call_compacted_range_probes_the_compact_revision(probed: Optional[int]) -> None:
    state = make_state()
    call = Call(kv.get("k", revision=3), state)
    assert call.start() == SEND
    exc = rpc("compacted")
    assert call.failed(exc) == PROBE
    assert call.probed(probed) == RAISE
    assert type(call.error) is CompactedError and call.error.compact_revision == probed
    assert call.error.__cause__ is exc
    assert ("compact revision 7" in str(call.error)) is (probed == 7)


def test_compact_probe_request_and_answer() -> None:
    request = compact_probe()
    create = _schema.message("etcdserverpb.WatchRequest").FromString(request.payload).create_request
    assert create.start_revision == 1 and create.key == b"\x00etcdfast-compact-probe"
    assert request.repeatable and request.method == "/etcdserverpb.Watch/Watch"
    message = _schema.message("etcdserverpb.WatchResponse")
    cancelled = message(header={"revision": 50}, created=True, canceled=True, compact_revision=42)
    assert compact_revision_of(cancelled.SerializeToString()) == 42
    assert compact_revision_of(message(header={"revision": 50}, created=True).SerializeToString()) is None


#: StreamCall.failed: no retries; a stale token is retried only before any answer.
STREAM = [
    pytest.param("bad-token", True, False, True, LOGIN, None, id="stale-before-an-answer"),
    pytest.param("bad-token", True, True, True, RAISE, InvalidAuthTokenError, id="stale-after-an-answer"),
    pytest.param("bad-token", False, False, True, RAISE, InvalidAuthTokenError, id="stale-no-user"),
    pytest.param("socket-closed", False, False, True, RAISE, Unavailable, id="unavailable-not-retried"),
    pytest.param("refused", False, False, True, RAISE, Unavailable, id="refused-not-retried"),
    pytest.param("deadline", False, True, True, RAISE, Timeout, id="deadline"),
    pytest.param("socket-closed", False, True, True, RAISE, ClosedDuringCallError, id="closed-sent"),
    pytest.param("runtime", False, False, False, RAISE, ClientClosedError, id="closed-not-started"),
]


@pytest.mark.parametrize("error, user, received, started, action, raised", STREAM)
def test_stream_call_failed(error: str, user: bool, received: bool, started: bool, action: int,
                            raised: Optional[type]) -> None:
    state = make_state(user=user)
    call = StreamCall(kv.get("k"), state)
    assert call.start() == SEND
    call.received = received
    if raised in (ClosedDuringCallError, ClientClosedError):
        state._closed = True
    exc = rpc(error)
    assert call.failed(exc, started=started) == action
    if action == RAISE:
        assert type(call.error) is raised and call.error.__cause__ is exc
    if user and received:
        assert not state._needs_login  # after an answer the token is not even dropped


def test_stream_call_stale_token_logs_in_once() -> None:
    state = make_state(user=True)
    call = StreamCall(kv.get("k"), state)
    assert call.start() == SEND
    assert call.failed(rpc("bad-token")) == LOGIN
    state._metadata, state._needs_login = (("token", "token-2"),), False
    assert call.logged_in() == SEND
    assert call.failed(rpc("bad-token")) == RAISE
    assert type(call.error) is InvalidAuthTokenError


@pytest.mark.parametrize("kind, secret", [
    pytest.param("write", False, id="Request"),
    pytest.param("secret", True, id="SecretRequest"),
    pytest.param("login", True, id="LoginRequest"),
])
@pytest.mark.parametrize("path", ["server-refused", "closed", "out-of-retries", "dial-deadline"])
def test_call_secrets_leave_no_payload_or_cause(kind: str, secret: bool, path: str) -> None:
    state = make_state(user=True, max_retries=0)
    request = make_request(kind, state)
    payload = request.payload
    assert payload
    call = Call(request, state)
    exc: Optional[BaseException] = None
    if path == "dial-deadline":
        state._dialed = False
        assert call.start() == DIAL
        action = call.dialed(rpc("deadline"), 5.0)
    else:
        assert call.start() == SEND
        exc = rpc({"server-refused": "auth-failed", "closed": "socket-closed",
                   "out-of-retries": "refused"}[path])
        state._closed = path == "closed"
        action = call.failed(exc)
    assert action == RAISE
    if secret:
        assert request.payload == b"" and call.error.__cause__ is None
    else:
        assert request.payload == payload
        assert call.error.__cause__ is exc  # a plain request keeps grpc's error as the cause


@pytest.mark.parametrize("kind, response, fields, wiped", [
    pytest.param("write", "PutResponse", {}, False, id="Request"),
    pytest.param("secret", "AuthUserAddResponse", {}, True, id="SecretRequest"),
    pytest.param("login", "AuthenticateResponse", {"token": "token-9"}, True, id="LoginRequest"),
])
def test_call_answered_wipes_secret_payloads(kind: str, response: str, fields: dict, wiped: bool) -> None:
    state = make_state(user=True)
    request = make_request(kind, state)
    payload = request.payload
    call = Call(request, state)
    assert call.start() == SEND
    raw = _schema.message(f"etcdserverpb.{response}")(header={"revision": 9}, **fields).SerializeToString()
    result = call.answered(raw)
    assert request.payload == (b"" if wiped else payload)
    if kind == "login":
        assert result == "token-9"


# == _core.watch_hub =============================================================

WatchRequestMessage = _schema.message("etcdserverpb.WatchRequest")
WatchResponseMessage = _schema.message("etcdserverpb.WatchResponse")


def event(key: str, revision: int, *, delete: bool = False) -> dict:
    kv_fields = {"key": key.encode(), "mod_revision": revision, "create_revision": revision, "version": 1}
    if not delete:
        kv_fields["value"] = b"v%d" % revision
    return {"type": 1 if delete else 0, "kv": kv_fields}


def answer(watch_id: int, revision: int, *events: dict, **fields: Any) -> bytes:
    """WatchResponse bytes, as etcd sends them."""
    return WatchResponseMessage(
        header={"revision": revision}, watch_id=watch_id, events=list(events), **fields
    ).SerializeToString()


def created(watch_id: int, revision: int = 10) -> bytes:
    return answer(watch_id, revision, created=True)


def refused(reason: str) -> bytes:
    """A creation the server refused: created and cancelled at once, watch ID -1."""
    return answer(-1, 10, created=True, canceled=True, cancel_reason=reason)


def sent(request: bytes) -> Any:
    """A request the hub would send, decoded."""
    return WatchRequestMessage.FromString(request)


class Consumer:
    """A watch's sink: what the driver's queue would receive."""

    def __init__(self) -> None:
        self.items: List[object] = []

    def deliver(self, item: object) -> None:
        self.items.append(item)

    def events(self) -> List[Tuple[str, int]]:
        return [(e.kv.key.decode(), e.kv.mod_revision)
                for item in self.items if isinstance(item, WatchResponse) for e in item.events]

    def errors(self) -> List[BaseException]:
        return [item for item in self.items if isinstance(item, BaseException)]


def open_watch(hub: WatchHub, key: str, **options: Any) -> Tuple[WatchState, Consumer, Any]:
    """Register a watch; its state, its consumer and the create request it sent."""
    consumer = Consumer()
    state = WatchState(watch_spec(key, **options), consumer)
    return state, consumer, sent(hub.add(state))


def unavailable() -> Unavailable:
    return Unavailable("stream reset", endpoint=ENDPOINT)


@pytest.mark.usefixtures("twin")
class TestWatchHub:
    def test_creates_are_answered_in_fifo_order(self) -> None:
        hub = WatchHub()
        a, ca, ra = open_watch(hub, "a")
        b, cb, rb = open_watch(hub, "b", start_revision=5)
        c, cc, rc = open_watch(hub, "c", prefix=True, prev_kv=True)
        assert [r.create_request.key for r in (ra, rb, rc)] == [b"a", b"b", b"c"]
        assert (rb.create_request.start_revision, rc.create_request.range_end) == (5, b"d")
        assert rc.create_request.prev_kv and not ra.create_request.prev_kv
        for watch_id in (0, 1, 2):  # etcd numbers a stream's watches from 0
            assert hub.handle(created(watch_id)) == []
        assert (a.watch_id, b.watch_id, c.watch_id) == (0, 1, 2)
        assert ca.items == cb.items == cc.items == [CREATED]
        hub.handle(answer(1, 11, event("b", 11)))
        assert cb.events() == [("b", 11)] and ca.items == cc.items == [CREATED]

    @pytest.mark.parametrize("reason, error", [
        pytest.param("etcdserver: permission denied", PermissionDeniedError, id="permission-denied"),
        pytest.param("rpc error: code = PermissionDenied desc = etcdserver: permission denied",
                     PermissionDeniedError, id="go-status-text"),
        pytest.param("mvcc: watcher range is empty", InvalidArgumentError, id="empty-range"),
        pytest.param("etcdserver: no leader", NoLeaderError, id="no-leader"),
        pytest.param("something new", EtcdError, id="unknown-reason"),
        pytest.param("", EtcdError, id="no-reason"),
    ])
    def test_a_refused_creation_goes_to_the_oldest_pending(self, reason: str, error: type) -> None:
        hub = WatchHub()
        first, c_first, _ = open_watch(hub, "first")
        second, c_second, _ = open_watch(hub, "second")
        assert hub.handle(refused(reason)) == []
        [failure] = c_first.items
        assert type(failure) is error
        assert first.ended and c_second.items == [] and len(hub) == 1
        hub.handle(created(4))
        assert second.watch_id == 4 and c_second.items == [CREATED]

    def test_cancel_of_a_pending_watch_keeps_its_place_in_the_fifo(self) -> None:
        # The regression: taking a cancelled create out of the FIFO handed its
        # answer (and its events) to the next watch.
        hub = WatchHub()
        old, c_old, _ = open_watch(hub, "old")
        assert hub.cancel(old) is None  # nothing to cancel on the server yet
        assert c_old.items == [END]  # its consumer ends at once
        assert len(hub) == 1  # but its create stays in line
        new, c_new, r_new = open_watch(hub, "new")
        replies = hub.handle(created(7))  # the answer to the cancelled create
        assert [sent(r).cancel_request.watch_id for r in replies] == [7]  # cancelled on the server now
        assert new.watch_id is None and c_new.items == []
        hub.handle(answer(7, 11, event("old", 11)))  # before the server took the cancel
        assert hub.handle(created(8)) == []
        assert new.watch_id == 8 and c_new.items == [CREATED]
        hub.handle(answer(7, 12, canceled=True))
        hub.handle(answer(8, 13, event("new", 13)))
        assert c_new.events() == [("new", 13)] and r_new.create_request.key == b"new"
        assert c_old.items[0] is END and not c_old.errors()
        assert len(hub) == 1 and hub.cancel(old) is None

    def test_cancel_of_an_active_watch(self) -> None:
        hub = WatchHub()
        w, c, _ = open_watch(hub, "k")
        hub.handle(created(3))
        assert sent(hub.cancel(w)).cancel_request.watch_id == 3
        assert hub.cancel(w) is None  # sent once
        assert c.items == [CREATED]  # it ends when the server confirms
        hub.handle(answer(3, 11, event("k", 11)))  # already in flight: still delivered
        hub.handle(answer(3, 11, canceled=True))
        assert c.items[-1] is END and c.events() == [("k", 11)] and len(hub) == 0

    def test_fragments_are_merged(self) -> None:
        hub = WatchHub()
        w, c, r = open_watch(hub, "k", prefix=True, fragment=True)
        assert r.create_request.fragment
        hub.handle(created(0))
        hub.handle(answer(0, 20, event("k1", 20), event("k2", 20), fragment=True))
        hub.handle(answer(0, 20, event("k3", 20), fragment=True))
        assert c.items == [CREATED]
        hub.handle(answer(0, 20, event("k4", 20)))
        [_, response] = c.items
        assert [e.kv.key for e in response.events] == [b"k1", b"k2", b"k3", b"k4"]
        assert not response.fragment and w.cursor.next_revision == 21

    @pytest.mark.parametrize("target, notify, delivered", [
        pytest.param("own", True, (True, False), id="own-notify"),
        pytest.param("own", False, (False, False), id="own-silent"),
        pytest.param("broadcast", True, (True, True), id="broadcast-notify"),
        pytest.param("broadcast", False, (False, True), id="broadcast-silent"),
    ])
    def test_progress_notifications(self, target: str, notify: bool, delivered: Tuple[bool, bool]) -> None:
        hub = WatchHub()
        w1, c1, r1 = open_watch(hub, "a", progress_notify=notify)
        w2, c2, _ = open_watch(hub, "b", progress_notify=True)
        hub.handle(created(0))
        hub.handle(created(1))
        w3, c3, _ = open_watch(hub, "c", progress_notify=True)  # still pending
        assert r1.create_request.progress_notify is notify
        assert hub.handle(answer(0 if target == "own" else -1, 20)) == []
        for state, consumer, gets in ((w1, c1, delivered[0]), (w2, c2, delivered[1])):
            assert (consumer.items == [CREATED, Progress(20)]) is gets
            # Every watch the notification is for moves its cursor, silent or not.
            moved = state is w1 or target == "broadcast"
            assert (state.cursor.progress_revision, state.cursor.next_revision) == (
                (20, 21) if moved else (0, 11))
        assert c3.items == [] and w3.cursor.next_revision == 0

    def test_resume_drops_what_was_already_delivered(self) -> None:
        hub = WatchHub()
        w, c, _ = open_watch(hub, "k", prefix=True)
        hub.handle(created(0, revision=10))
        hub.handle(answer(0, 12, event("k1", 11), event("k2", 12)))
        assert w.cursor.next_revision == 13
        assert hub.broke(unavailable(), now=0.0) is not None
        [request] = hub.connect()
        assert sent(request).create_request.start_revision == 13  # resumes after the last event
        hub.handle(created(5, revision=14))
        hub.handle(answer(5, 14, event("k2", 12), event("k3", 13), event("k4", 14)))
        hub.handle(answer(5, 14, event("k4", 14)))  # a whole response seen already
        assert c.events() == [("k1", 11), ("k2", 12), ("k3", 13), ("k4", 14)]
        assert c.items.count(CREATED) == 1  # confirmed once, not once per stream
        assert sum(isinstance(item, WatchResponse) for item in c.items) == 2

    @pytest.mark.parametrize("canceled", [True, False])
    def test_compaction_ends_the_watch(self, canceled: bool) -> None:
        hub = WatchHub()
        w, c, r = open_watch(hub, "k", start_revision=3)
        assert r.create_request.start_revision == 3
        hub.handle(created(0, revision=20))
        hub.handle(answer(0, 20, canceled=canceled, compact_revision=9))
        [error] = c.errors()
        assert type(error) is CompactedError and error.compact_revision == 9
        assert str(error).startswith('watch on "k" cannot continue: revision 3 has been compacted')
        assert w.cursor.compact_revision == 9 and len(hub) == 0

    def test_connect_recreates_live_watches_and_drops_cancelled_ones(self) -> None:
        hub = WatchHub()
        live, c_live, _ = open_watch(hub, "live")
        hub.handle(created(0, revision=10))
        hub.handle(answer(0, 12, event("live", 12)))
        going, c_going, _ = open_watch(hub, "going")
        hub.handle(created(1, revision=12))
        assert hub.cancel(going) is not None  # cancel sent, never confirmed
        dropped, c_dropped, _ = open_watch(hub, "dropped")
        assert hub.cancel(dropped) is None  # pending, cancelled
        waiting, c_waiting, _ = open_watch(hub, "waiting", start_revision=4)
        requests = [sent(r).create_request for r in hub.connect()]
        assert [(r.key, r.start_revision) for r in requests] == [(b"waiting", 4), (b"live", 13)]
        assert c_going.items == [CREATED, END] and c_dropped.items == [END]
        assert len(hub) == 2 and live.watch_id is None and c_waiting.items == []
        hub.handle(created(0, revision=20))  # the new stream answers in the new order
        hub.handle(created(1, revision=20))
        assert (waiting.watch_id, live.watch_id) == (0, 1)
        assert c_live.items.count(CREATED) == 1 and c_waiting.items == [CREATED]

    #: broke(): the error -> what the confirmed and the unconfirmed watch end with
    #: (None: kept), and whether the hub reconnects.
    BROKE = [
        pytest.param(unavailable, None, Unavailable, True, id="unavailable"),
        pytest.param(lambda: ConnectionLostError("lost"), None, ConnectionLostError, True,
                     id="connection-lost"),
        pytest.param(lambda: Timeout("slow"), None, Timeout, True, id="timeout"),
        pytest.param(lambda: make_state()._stream_error(None), None, Unavailable, True,
                     id="server-ended-the-stream"),
        pytest.param(lambda: NoLeaderError("etcdserver: no leader"), NoLeaderError, NoLeaderError, False,
                     id="no-leader"),
        pytest.param(lambda: PermissionDeniedError("denied"), PermissionDeniedError,
                     PermissionDeniedError, False, id="permission-denied"),
        pytest.param(lambda: ReauthenticatingError("new token"), None, None, True, id="reauthenticating"),
        pytest.param(lambda: CancelledError("channel retired"), None, None, True, id="cancelled"),
    ]

    @pytest.mark.parametrize("make_error, confirmed_fate, unconfirmed_fate, reconnects", BROKE)
    def test_broke_policy(self, make_error: Callable[[], EtcdError], confirmed_fate: Optional[type],
                          unconfirmed_fate: Optional[type], reconnects: bool) -> None:
        hub = WatchHub()
        _, c_confirmed, _ = open_watch(hub, "confirmed")
        hub.handle(created(0))
        _, c_unconfirmed, _ = open_watch(hub, "unconfirmed")
        error = make_error()
        delay = hub.broke(error, now=0.0)
        for consumer, fate in ((c_confirmed, confirmed_fate), (c_unconfirmed, unconfirmed_fate)):
            if fate is None:
                assert consumer.errors() == [] and END not in consumer.items
            else:
                assert consumer.errors() == [error] and type(error) is fate
        if reconnects:
            assert delay is not None
            assert_backoff([delay], backoff_module.Backoff().initial, backoff_module.Backoff().maximum)
        else:
            assert delay is None and len(hub) == 0

    def test_broke_gives_up_after_reconnect_timeout(self) -> None:
        hub = WatchHub(reconnect_timeout=60.0)
        _, c, _ = open_watch(hub, "k")
        hub.handle(created(0))
        assert hub.broke(unavailable(), now=100.0) is not None
        assert hub.broke(unavailable(), now=160.0) is not None  # 60 s: still trying
        assert c.errors() == []
        assert hub.broke(unavailable(), now=160.5) is None
        [error] = c.errors()
        assert type(error) is Unavailable and "over 60 s" in str(error) and error.endpoint == ENDPOINT
        assert len(hub) == 0

    def test_an_answer_restarts_the_outage_clock_and_the_backoff(self) -> None:
        hub = WatchHub(reconnect_timeout=60.0)
        _, c, _ = open_watch(hub, "k")
        hub.handle(created(0))
        delays = [hub.broke(unavailable(), now=float(n)) for n in range(8)]
        assert_backoff(delays, backoff_module.Backoff().initial, backoff_module.Backoff().maximum)
        hub.connect()
        hub.handle(created(1))  # the stream works again
        delay = hub.broke(unavailable(), now=1000.0)  # long after the first failure
        assert delay is not None and delay <= backoff_module.Backoff().initial
        assert c.errors() == []

    def test_broke_with_nothing_left_returns_none(self) -> None:
        hub = WatchHub()
        assert hub.broke(unavailable(), now=0.0) is None
        _, c, _ = open_watch(hub, "k")  # never created: nothing to resume
        assert hub.broke(unavailable(), now=1.0) is None
        assert [type(e) for e in c.errors()] == [Unavailable]

    def test_broke_ends_watches_being_cancelled(self) -> None:
        # A watch whose cancel was sent but not yet confirmed has nothing to
        # resume when the stream breaks (its server side died with it): it
        # ends at once, and with nothing else open there is no reconnect.
        hub = WatchHub()
        w, c, _ = open_watch(hub, "k")
        hub.handle(created(0))
        assert hub.cancel(w) is not None
        assert hub.broke(unavailable(), now=0.0) is None
        assert c.items == [CREATED, END]

    def test_fail_on_close_ends_cancelled_watches_cleanly(self) -> None:
        hub = WatchHub()
        _, c_active, _ = open_watch(hub, "active")
        hub.handle(created(0))
        going, c_going, _ = open_watch(hub, "going")
        hub.handle(created(1))
        hub.cancel(going)
        _, c_pending, _ = open_watch(hub, "pending")
        dropped, c_dropped, _ = open_watch(hub, "dropped")
        hub.cancel(dropped)
        closed = ClientClosedError("the client was closed")
        hub.fail(closed)
        assert c_active.items == [CREATED, closed] and c_pending.items == [closed]
        assert c_going.items == [CREATED, END] and c_dropped.items == [END]  # END, not the error
        assert len(hub) == 0

    @pytest.mark.parametrize("authenticated, reason, cancel_first, outcome", [
        pytest.param(True, "etcdserver: permission denied", False, "relogin",
                     id="permission-denied/authenticated"),
        pytest.param(False, "etcdserver: permission denied", False, PermissionDeniedError,
                     id="permission-denied/anonymous"),
        pytest.param(True, "etcdserver: invalid auth token", False, "relogin", id="invalid-token"),
        pytest.param(True, "etcdserver: revision of auth store is old", False, "relogin",
                     id="old-auth-revision"),
        pytest.param(True, "etcdserver: permission denied", True, END, id="cancelled-meanwhile"),
    ])
    def test_stale_token_refusals(self, authenticated: bool, reason: str, cancel_first: bool,
                                  outcome: object) -> None:
        hub = WatchHub(authenticated=authenticated)
        w, c, _ = open_watch(hub, "k")
        _, c_next, _ = open_watch(hub, "next")
        if cancel_first:
            hub.cancel(w)
        if outcome == "relogin":
            with pytest.raises(InvalidAuthTokenError):
                hub.handle(refused(reason))
            assert c.items == [] and len(hub) == 2
            # first in line again: the driver logs in and re-creates every watch
            assert [sent(r).create_request.key for r in hub.connect()] == [b"k", b"next"]
        else:
            assert hub.handle(refused(reason)) == []
            [item] = c.items
            assert item is END if outcome is END else type(item) is outcome
            hub.handle(created(3))
            assert c_next.items == [CREATED]

    def test_permission_denied_is_believed_after_one_new_login(self) -> None:
        state = make_state(user=True)
        hub = WatchHub(authenticated=True)
        _, c, _ = open_watch(hub, "k")
        with pytest.raises(InvalidAuthTokenError) as raised:
            hub.handle(refused("etcdserver: permission denied"))
        # The driver's path: the stream error means "log in and reconnect" and fails no watch.
        error = state._stream_error(raised.value)
        assert type(error) is ReauthenticatingError and state._needs_login
        assert hub.broke(error, now=0.0) is not None and c.items == []
        [request] = hub.connect()
        assert sent(request).create_request.key == b"k"
        assert hub.handle(refused("etcdserver: permission denied")) == []  # refused again
        assert [type(item) for item in c.items] == [PermissionDeniedError] and len(hub) == 0

    def test_unexpected_and_late_answers_are_ignored(self, caplog: pytest.LogCaptureFixture) -> None:
        hub = WatchHub()
        with caplog.at_level(logging.WARNING, logger="etcdfast.watch"):
            assert hub.handle(created(4)) == []
        assert "unexpected watch creation answer" in caplog.text
        assert hub.handle(answer(9, 11, event("k", 11))) == []  # a watch already gone
        assert hub.handle(answer(9, 11, canceled=True)) == []
        assert hub.handle(answer(-1, 11, canceled=True)) == []
        assert len(hub) == 0


# == _core.keepalive ==============================================================

KeepAliveRequestMessage = _schema.message("etcdserverpb.LeaseKeepAliveRequest")
KeepAliveResponseMessage = _schema.message("etcdserverpb.LeaseKeepAliveResponse")


def keepalive_answer(lease_id: int, ttl: int) -> bytes:
    return KeepAliveResponseMessage(header={"revision": 1}, ID=lease_id, TTL=ttl).SerializeToString()


def refreshed(requests: Iterable[bytes]) -> List[int]:
    """The lease IDs of keep-alive requests, decoded."""
    return [KeepAliveRequestMessage.FromString(r).ID for r in requests]


class Handle(LeaseHandle):
    """A LeaseHandle whose driver event is a counter."""

    def __init__(self, ttl: int, id: int, on_lost: Optional[Callable[[Any], None]] = None) -> None:
        super().__init__(ttl, id, on_lost)
        self.signals = 0

    def _signal_ended(self) -> None:
        self.signals += 1


@pytest.mark.parametrize("ttl, period", [(30, 10.0), (9, 3.0), (1, 1 / 3)])
def test_keepalive_refreshes_at_once_then_every_third_of_the_ttl(ttl: int, period: float) -> None:
    schedule = KeepAliveSchedule()
    schedule.add(Handle(ttl, 0x10), now=0.0)
    lost, requests, wait = schedule.tick(0.0)
    assert lost == [] and refreshed(requests) == [0x10]
    assert wait == pytest.approx(min(KeepAliveSchedule.MAX_WAIT, period))
    assert refreshed(schedule.tick(period * 0.99)[1]) == []
    assert refreshed(schedule.tick(period)[1]) == [0x10]  # unanswered: again a third later


def test_keepalive_leases_keep_their_own_schedules() -> None:
    schedule = KeepAliveSchedule()
    schedule.add(Handle(30, 1), now=0.0)
    schedule.add(Handle(9, 2), now=5.0)
    assert refreshed(schedule.tick(0.0)[1]) == [1]
    assert refreshed(schedule.tick(5.0)[1]) == [2]
    assert refreshed(schedule.tick(8.0)[1]) == [2]
    assert refreshed(schedule.tick(10.0)[1]) == [1]


@pytest.mark.parametrize("ttl", [30, 12])
def test_keepalive_answer_moves_the_deadline_from_the_send_time(ttl: int) -> None:
    schedule = KeepAliveSchedule()
    handle = Handle(30, 7)
    schedule.add(handle, now=0.0)
    schedule.tick(0.0)  # sent at 0
    assert schedule.answer(keepalive_answer(7, ttl), now=2.0) is None  # answered at 2
    assert (handle.remaining_ttl, handle.refreshed_at) == (ttl, 0.0)
    assert refreshed(schedule.tick(ttl / 3 - 0.01)[1]) == []
    assert refreshed(schedule.tick(ttl / 3)[1]) == [7]  # send time + ttl/3, not answer time
    assert schedule.tick(ttl - 0.01)[0] == []
    assert schedule.tick(float(ttl))[0] == [handle]  # send time + ttl: certainly gone
    assert 7 not in schedule


def test_keepalive_answers_go_to_the_oldest_refresh_in_flight() -> None:
    # Two refreshes in flight (the first one's answer is slow): etcd answers in
    # order, so the first answer is for the refresh sent at 0, and the TTL runs
    # from then -- crediting it to the later send would be optimistic by ttl/3.
    schedule = KeepAliveSchedule()
    handle = Handle(30, 7)
    schedule.add(handle, now=0.0)
    assert refreshed(schedule.tick(0.0)[1]) == [7]
    assert refreshed(schedule.tick(10.0)[1]) == [7]  # no answer yet: sent again
    schedule.answer(keepalive_answer(7, 30), now=11.0)
    assert handle.refreshed_at == 0.0
    assert schedule.tick(29.9)[0] == [] and 7 in schedule
    schedule.answer(keepalive_answer(7, 30), now=12.0)
    assert handle.refreshed_at == 10.0
    assert schedule.tick(39.9)[0] == []
    assert schedule.tick(40.0)[0] == [handle]


@pytest.mark.parametrize("ttl", [0, -1])
def test_keepalive_answer_without_ttl_means_lost_not_expired(ttl: int) -> None:
    schedule = KeepAliveSchedule()
    calls: List[object] = []
    handle = Handle(30, 7, on_lost=calls.append)
    schedule.add(handle, now=0.0)
    schedule.tick(0.0)
    gone = schedule.answer(keepalive_answer(7, ttl), now=1.0)
    assert gone is handle and len(schedule) == 0
    report_lost([gone], expired=False)  # as the drivers report it
    assert type(handle.lost) is LeaseExpiredError and "is gone" in str(handle.lost)
    assert calls == [handle] and not handle.alive


def test_keepalive_answer_for_an_unknown_lease_is_ignored() -> None:
    schedule = KeepAliveSchedule()
    schedule.add(Handle(30, 1), now=0.0)
    assert schedule.answer(keepalive_answer(99, 30), now=1.0) is None
    assert len(schedule) == 1


def test_keepalive_no_answer_past_the_deadline_is_expired() -> None:
    schedule = KeepAliveSchedule()
    calls: List[object] = []
    handle = Handle(3, 5, on_lost=calls.append)
    schedule.add(handle, now=0.0)
    for now in (0.0, 1.0, 2.0, 2.99):
        assert schedule.tick(now)[0] == []
    lost, requests, _ = schedule.tick(3.0)
    assert lost == [handle] and requests == [] and 5 not in schedule
    report_lost(lost, expired=True)
    assert "no keep-alive reached the server" in str(handle.lost) and calls == [handle]


def test_keepalive_broke_makes_unanswered_refreshes_due_at_once() -> None:
    schedule = KeepAliveSchedule()
    schedule.add(Handle(30, 1), now=0.0)
    schedule.add(Handle(30, 2), now=0.0)
    assert refreshed(schedule.tick(0.0)[1]) == [1, 2]
    schedule.answer(keepalive_answer(1, 30), now=1.0)
    lost, _ = schedule.broke(2.0)
    assert lost == []
    assert refreshed(schedule.tick(2.0)[1]) == [2]  # its refresh was lost with the stream
    assert refreshed(schedule.tick(10.0)[1]) == [1]  # the answered one keeps its time


def test_keepalive_broke_reports_leases_past_their_deadline() -> None:
    schedule = KeepAliveSchedule()
    handle = Handle(3, 1)
    schedule.add(handle, now=0.0)
    schedule.tick(0.0)
    assert schedule.broke(2.0)[0] == []
    assert schedule.broke(3.5)[0] == [handle]


def test_keepalive_broke_delays_grow_capped_and_reset_after_an_answer() -> None:
    schedule = KeepAliveSchedule()
    schedule.add(Handle(30, 1), now=0.0)
    schedule.tick(0.0)
    delays = [schedule.broke(float(n))[1] for n in range(8)]
    assert_backoff(delays, 0.05, KeepAliveSchedule.RECONNECT_MAX)
    assert max(delays) <= KeepAliveSchedule.RECONNECT_MAX
    schedule.answer(keepalive_answer(1, 30), now=8.0)
    assert schedule.broke(9.0)[1] <= 0.05


@pytest.mark.parametrize("steps, alive, lost, revoked, calls", [
    pytest.param((), True, False, False, 0, id="fresh"),
    pytest.param(("lost",), False, True, False, 1, id="lost"),
    pytest.param(("lost", "lost"), False, True, False, 1, id="lost-twice"),
    pytest.param(("revoked",), False, False, True, 0, id="revoked"),
    pytest.param(("revoked", "lost"), False, False, True, 0, id="revoked-then-lost"),
    pytest.param(("lost", "revoked"), False, True, False, 1, id="lost-then-revoked"),
])
def test_lease_handle_states(steps: Tuple[str, ...], alive: bool, lost: bool, revoked: bool,
                             calls: int) -> None:
    seen: List[object] = []
    handle = Handle(10, 0xABC, on_lost=seen.append)
    for step in steps:
        if step == "lost":
            handle._mark_lost(LeaseExpiredError("gone"))
        else:
            handle._mark_revoked()
    assert handle.alive is alive and (handle.lost is not None) is lost and handle.revoked is revoked
    assert len(seen) == calls and handle.signals == (0 if alive else 1)
    word = "alive" if alive else "lost:" if lost else "revoked"
    assert word in repr(handle)


def test_lease_handle_raising_on_lost_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    def on_lost(handle: object) -> None:
        raise RuntimeError("callback failed")

    first, second = Handle(10, 0xABC, on_lost=on_lost), Handle(10, 0xDEF, on_lost=on_lost)
    with caplog.at_level(logging.ERROR, logger="etcdfast.lease"):
        report_lost([first, second], expired=True)
    assert first.lost is not None and second.lost is not None  # the first did not stop the second
    assert (first.signals, second.signals) == (1, 1)
    assert "on_lost callback of lease 0xabc raised" in caplog.text
    assert all(record.exc_info for record in caplog.records)


# == _core.bulk =================================================================

TxnRequestMessage = _schema.message("etcdserverpb.TxnRequest")
TxnResponseMessage = _schema.message("etcdserverpb.TxnResponse")
RangeRequestMessage = _schema.message("etcdserverpb.RangeRequest")
RangeResponseMessage = _schema.message("etcdserverpb.RangeResponse")

VALUE = b"x" * 10


def items(n: int) -> List[Tuple[bytes, bytes]]:
    return [(b"k%02d" % i, VALUE) for i in range(n)]


def drain(load: BulkLoad, source: Iterable[Any]) -> List[Any]:
    """Every batch of ``source``, cut as the sync driver's loop cuts them."""
    iterator, batches = iter(source), []
    for _ in range(1000):
        batch = load.fill(iterator)
        if batch is None:
            return batches
        batches.append(batch)
    raise AssertionError("the load never ended")


def put_ops(payload: bytes) -> List[Tuple[bytes, bytes]]:
    txn = TxnRequestMessage.FromString(payload)
    assert not txn.compare and not txn.failure
    return [(op.request_put.key, op.request_put.value) for op in txn.success]


#: Outcomes of a batch for the ledger tables.
BATCH_ERRORS = {
    "timeout": lambda: Timeout("deadline exceeded"),
    "lost": lambda: ConnectionLostError("Socket closed"),
    "never-sent": lambda: Unavailable("failed to connect to all addresses"),
    "denied": lambda: PermissionDeniedError("etcdserver: permission denied"),
}


@pytest.mark.usefixtures("twin")
class TestBulkLoad:
    @pytest.mark.parametrize("n, batch_ops, item_budget, expected", [
        pytest.param(10, 3, None, [(0, 3), (3, 6), (6, 9), (9, 10)], id="batch-ops"),
        pytest.param(6, 128, 2.5, [(0, 2), (2, 4), (4, 6)], id="max-batch-bytes"),
        pytest.param(7, 2, 5, [(0, 2), (2, 4), (4, 6), (6, 7)], id="ops-before-bytes"),
        pytest.param(3, 128, 1, [(0, 1), (1, 2), (2, 3)], id="one-item-per-budget"),
        pytest.param(4, 4, None, [(0, 4)], id="one-batch"),
        pytest.param(0, 4, None, [], id="no-input"),
    ])
    def test_batches_are_cut_by_ops_and_bytes(self, n: int, batch_ops: int, item_budget: Optional[float],
                                              expected: List[Tuple[int, int]]) -> None:
        size = _codec.batch.BatchPacker(1, 1 << 20, 0).item_size(b"k00", VALUE)
        max_bytes = None if item_budget is None else int(size * item_budget)
        load = BulkLoad(bulk.put_many(items(n), batch_ops=batch_ops, max_batch_bytes=max_bytes))
        batches = drain(load, items(n))
        assert [(b.start, b.stop) for b in batches] == expected
        for batch in batches:
            assert put_ops(load.request(batch).payload) == items(n)[batch.start:batch.stop]
            assert max_bytes is None or len(batch.payload) <= max_bytes
        assert load.exhausted and load.fill(iter(items(3))) is None

    @pytest.mark.parametrize("keys, batch_ops, expected", [
        pytest.param("aba", 10, [(0, 2, -1), (2, 3, 0)], id="same-batch"),
        pytest.param("abca", 2, [(0, 2, -1), (2, 4, 0)], id="next-batch"),
        pytest.param("abcda", 2, [(0, 2, -1), (2, 4, -1), (4, 5, 0)], id="two-batches-back"),
        pytest.param("abcb", 2, [(0, 2, -1), (2, 4, 0)], id="second-key"),
        pytest.param("abcd", 2, [(0, 2, -1), (2, 4, -1)], id="no-repeat"),
    ])
    def test_a_repeated_key_waits_for_the_earlier_batch(self, keys: str, batch_ops: int,
                                                         expected: List[Tuple[int, int, int]]) -> None:
        pairs = [(k, f"{k}{i}") for i, k in enumerate(keys)]
        load = BulkLoad(bulk.put_many(pairs, batch_ops=batch_ops))
        batches = drain(load, pairs)
        assert [(b.start, b.stop, b.after) for b in batches] == expected
        for batch in batches:  # sent in order, as the drivers do
            if batch.after >= 0:
                assert load.must_wait(batch)  # the earlier write is still in flight
                load.completed(batch.after, 100 + batch.after)
            assert not load.must_wait(batch)
            load.sent(batch)

    def test_must_wait_for_a_free_slot(self) -> None:
        load = BulkLoad(bulk.put_many(items(8), batch_ops=2, concurrency=2))
        b0, b1, b2, b3 = drain(load, items(8))
        load.sent(b0)
        assert not load.must_wait(b1)
        load.sent(b1)
        assert load.must_wait(b2)
        load.completed(b1.seq, 11)
        assert not load.must_wait(b2)
        load.sent(b2)
        load.failed(b0.seq, Timeout("slow"))
        assert load.stopped and not load.must_wait(b3)  # stopped: nothing left to wait for

    def test_a_batch_request_is_a_txn_whose_result_is_its_revision(self) -> None:
        load = BulkLoad(bulk.put_many(items(3), lease=0x1234, timeout=5))
        [batch] = drain(load, items(3))
        request = load.request(batch)
        assert request.method == kv.TXN and not request.repeatable and request.timeout == 5.0
        txn = TxnRequestMessage.FromString(request.payload)
        assert [op.request_put.lease for op in txn.success] == [0x1234] * 3
        raw = TxnResponseMessage(
            header={"revision": 77}, succeeded=True,
            responses=[{"response_put": {"header": {"revision": 77}}}] * 3,
        ).SerializeToString()
        tracker = _codec.revision.RevisionTracker()
        assert request.decode(raw, tracker) == 77 and tracker.last == 77

    #: Outcomes in arrival order (batch seq, "ok" or an error) -> the committed
    #: prefix, progress calls, uncertain and committed-after item ranges, cause.
    FOLD = [
        pytest.param([(0, "ok"), (1, "ok"), (2, "ok"), (3, "ok")], 12, [3, 6, 9, 12], [], [], None,
                     id="in-order"),
        pytest.param([(3, "ok"), (2, "ok"), (1, "ok"), (0, "ok")], 12, [3, 6, 9, 12], [], [], None,
                     id="reversed"),
        pytest.param([(2, "ok"), (0, "ok"), (3, "ok"), (1, "ok")], 12, [3, 6, 9, 12], [], [], None,
                     id="shuffled"),
        pytest.param([(0, "ok"), (1, "timeout"), (2, "ok"), (3, "ok")], 3, [3], [(3, 6)], [(6, 12)],
                     Timeout, id="timeout-in-the-middle"),
        pytest.param([(0, "ok"), (1, "never-sent"), (2, "ok"), (3, "ok")], 3, [3], [], [(6, 12)],
                     Unavailable, id="never-sent-in-the-middle"),
        pytest.param([(3, "ok"), (2, "timeout"), (1, "ok"), (0, "denied")], 0, [], [(6, 9)],
                     [(3, 6), (9, 12)], PermissionDeniedError, id="first-batch-fails-last"),
        pytest.param([(0, "ok"), (2, "timeout"), (1, "lost"), (3, "ok")], 3, [3], [(3, 9)], [(9, 12)],
                     ConnectionLostError, id="uncertain-ranges-merged"),
    ]

    @pytest.mark.parametrize("outcomes, committed, progress, uncertain, after, cause", FOLD)
    def test_outcomes_fold_into_the_committed_prefix(
        self, outcomes: List[Tuple[int, str]], committed: int, progress: List[int],
        uncertain: List[Tuple[int, int]], after: List[Tuple[int, int]], cause: Optional[type],
    ) -> None:
        seen: List[int] = []
        load = BulkLoad(bulk.put_many(items(12), batch_ops=3, progress=seen.append))
        for batch in drain(load, items(12)):
            load.sent(batch)
        for seq, outcome in outcomes:
            if outcome == "ok":
                load.completed(seq, 100 + seq)
            else:
                load.failed(seq, BATCH_ERRORS[outcome]())
        assert load.ledger.committed == committed and seen == progress
        if cause is None:
            assert load.result(0.5) == BulkResult(12, 4, 100, 103, 0.5)
            return
        with pytest.raises(BulkWriteError) as raised:
            load.result(0.5)
        error = raised.value
        assert (error.committed, error.committed_batches) == (committed, committed // 3)
        assert type(error.cause) is cause and error.__cause__ is error.cause
        assert (error.uncertain, error.committed_after) == (uncertain, after)
        assert f"resume from item {committed}" in str(error)

    @pytest.mark.parametrize("error, uncertain", [
        (Timeout, True), (ConnectionLostError, True), (ClosedDuringCallError, True),
        (LeaderChangedError, True), (RequestTimedOutError, True), (InternalError, True),
        (CancelledError, True), (ProtocolError, True), (EtcdError, True), (RuntimeError, True),
        (Unavailable, False), (NoLeaderError, False), (ClientClosedError, False),
        (PermissionDeniedError, False), (RequestTooLargeError, False), (InvalidAuthTokenError, False),
    ], ids=lambda value: value.__name__ if isinstance(value, type) else str(value))
    def test_a_failed_batch_is_uncertain_only_if_it_may_have_been_applied(
        self, error: type, uncertain: bool
    ) -> None:
        load = BulkLoad(bulk.put_many(items(2), batch_ops=1))
        b0, b1 = drain(load, items(2))
        load.sent(b0)
        load.sent(b1)
        cause = error("boom")
        load.failed(b0.seq, cause)
        load.completed(b1.seq, 5)
        with pytest.raises(BulkWriteError) as raised:
            load.result(1.0)
        assert raised.value.cause is cause and raised.value.committed == 0
        assert raised.value.uncertain == ([(0, 1)] if uncertain else [])
        assert raised.value.committed_after == [(1, 2)]

    def test_a_raising_progress_callback_stops_the_load(self) -> None:
        seen: List[int] = []

        def progress(committed: int) -> None:
            seen.append(committed)
            if committed >= 6:
                raise ValueError("progress failed")

        load = BulkLoad(bulk.put_many(items(12), batch_ops=3, progress=progress))
        batches = drain(load, items(12))
        for batch in batches[:3]:
            load.sent(batch)
        load.completed(0, 100)
        assert not load.stopped
        load.completed(1, 101)
        assert load.stopped and not load.must_wait(batches[3])  # no new batch
        load.completed(2, 102)  # in flight: still folded, the callback is not called again
        assert seen == [3, 6]
        with pytest.raises(BulkWriteError) as raised:
            load.result(1.0)
        assert type(raised.value.cause) is ValueError
        assert (raised.value.committed, raised.value.committed_batches) == (9, 3)

    def test_a_bad_item_ends_the_input_there(self) -> None:
        source = [(b"a", b"1"), (b"b", b"2"), 42, (b"c", b"3")]
        load = BulkLoad(bulk.put_many(source))
        [batch] = drain(load, source)
        assert (batch.start, batch.stop) == (0, 2) and load.exhausted
        load.sent(batch)
        load.completed(batch.seq, 9)
        with pytest.raises(BulkWriteError) as raised:
            load.result(1.0)
        assert raised.value.committed == 2 and type(raised.value.cause) is TypeError
        assert "item 2" in str(raised.value.cause)


def range_page(revision: int, keys: List[bytes], *, more: bool, value: bytes = b"v") -> GetResult:
    """A page as the client's decoder returns it, from RangeResponse bytes."""
    raw = RangeResponseMessage(
        header={"revision": revision},
        kvs=[{"key": k, "value": value, "mod_revision": 2, "create_revision": 2, "version": 1} for k in keys],
        more=more, count=len(keys) + (5 if more else 0),
    ).SerializeToString()
    return _codec.wire.decode_range(raw, None)


def range_sent(pager: RangePager) -> Any:
    return RangeRequestMessage.FromString(pager.request().payload)


@pytest.mark.usefixtures("twin")
class TestRangePager:
    def test_pages_at_one_revision_past_the_last_key(self) -> None:
        pager = RangePager(bulk.range_pager("a/", prefix=True, page_size=2))
        first = range_sent(pager)
        assert (first.key, first.range_end, first.limit, first.revision) == (b"a/", b"a0", 2, 0)
        kvs = pager.feed(range_page(50, [b"a/1", b"a/2"], more=True))
        assert [kv.key for kv in kvs] == [b"a/1", b"a/2"]
        assert pager.revision == 50 and not pager.done
        second = range_sent(pager)
        assert (second.key, second.range_end, second.limit, second.revision) == (b"a/2\x00", b"a0", 2, 50)
        assert [kv.key for kv in pager.feed(range_page(57, [b"a/3"], more=False))] == [b"a/3"]
        assert pager.done and pager.revision == 50  # pinned: a later header does not move it

    @pytest.mark.parametrize("options, field, value", [
        pytest.param({"revision": 40}, "revision", 40, id="revision-given"),
        pytest.param({"keys_only": True}, "keys_only", True, id="keys-only"),
        pytest.param({"serializable": True}, "serializable", True, id="serializable"),
        pytest.param({"from_key": True}, "range_end", b"\x00", id="from-key"),
        pytest.param({"range_end": "k9"}, "range_end", b"k9", id="range-end"),
    ])
    def test_options_hold_for_every_page(self, options: dict, field: str, value: object) -> None:
        pager = RangePager(bulk.range_pager("k", page_size=1, **options))
        assert getattr(range_sent(pager), field) == value
        pager.feed(range_page(50, [b"k1"], more=True))
        assert getattr(range_sent(pager), field) == value
        assert pager.revision == options.get("revision", 50)

    def test_more_without_keys_ends(self) -> None:
        pager = RangePager(bulk.range_pager("k", prefix=True, page_size=2))
        assert pager.feed(range_page(50, [], more=True)) == [] and pager.done

    @pytest.mark.parametrize("value_len, expected", [
        pytest.param(10, MAX_PAGE_KEYS, id="small-pairs"),
        pytest.param(1000, PAGE_BYTES // (6 + 1000), id="kilobyte-pairs"),
        pytest.param(200_000, MIN_PAGE_KEYS, id="large-values"),
    ])
    def test_adaptive_page_sizes(self, value_len: int, expected: int) -> None:
        pager = RangePager(bulk.range_pager("k", prefix=True))
        assert pager.adaptive and range_sent(pager).limit == DEFAULT_PAGE_SIZE
        pager.feed(range_page(9, [b"k%05d" % i for i in range(3)], more=True, value=b"x" * value_len))
        assert pager.page_size == expected and range_sent(pager).limit == expected

    def test_a_fixed_page_size_stays(self) -> None:
        pager = RangePager(bulk.range_pager("k", prefix=True, page_size=7))
        pager.feed(range_page(9, [b"k1"], more=True, value=b"x" * 200_000))
        assert not pager.adaptive and range_sent(pager).limit == 7


# == _core.methods ===============================================================


def assert_builder_face(method: Any, build: Any, returns: str, doc: Optional[str]) -> None:
    """``method`` shows ``build``'s name, docs and parameters, plus a positional-only self."""
    signature = inspect.signature(method)
    self_param, *params = signature.parameters.values()
    assert self_param.name == "self" and self_param.kind is inspect.Parameter.POSITIONAL_ONLY
    assert params == list(inspect.signature(build).parameters.values())
    assert signature.return_annotation == returns
    assert (method.__name__, method.__qualname__, method.__module__) == (
        build.__name__, build.__qualname__, build.__module__)
    assert method.__doc__ == doc and doc
    assert not hasattr(method, "__wrapped__")


UNARY_BUILDERS = [
    pytest.param(kv.get, "GetResult", id="get"),
    pytest.param(kv.put, "PutResult", id="put"),
    pytest.param(bulk.count, "int", id="count"),
    pytest.param(lease.grant, "LeaseGrant", id="grant"),
    pytest.param(auth.user_add, "ResponseHeader", id="user_add"),
]


@pytest.mark.parametrize("factory, is_async, returns", [
    pytest.param(sync_unary, False, "{}", id="sync_unary"),
    pytest.param(async_unary, True, "Awaitable[{}]", id="async_unary"),
])
@pytest.mark.parametrize("build, result", UNARY_BUILDERS)
@pytest.mark.parametrize("secret", [False, True])
def test_unary_methods_wear_the_builders_face(factory: Any, is_async: bool, returns: str, build: Any,
                                              result: str, secret: bool) -> None:
    method = factory(build, secret=secret)
    assert_builder_face(method, build, returns.format(result), build.__doc__)
    assert inspect.iscoroutinefunction(method) is is_async


def _verb(client: Any, spec: Any) -> Any:
    return ("verb", client, spec)


async def _async_verb(client: Any, spec: Any) -> Any:
    return ("verb", client, spec)


@pytest.mark.parametrize("factory, verb, is_async", [
    pytest.param(sync_method, _verb, False, id="sync_method"),
    pytest.param(async_method, _async_verb, True, id="async_method"),
])
@pytest.mark.parametrize("doc", [None, "Pages, as a custom doc says."])
def test_verb_methods_wear_the_builders_face(factory: Any, verb: Any, is_async: bool,
                                             doc: Optional[str]) -> None:
    method = factory(bulk.range_pager, verb, returns="Pages", doc=doc)
    assert_builder_face(method, bulk.range_pager, "Awaitable[Pages]" if is_async else "Pages",
                        doc or bulk.range_pager.__doc__)
    assert inspect.iscoroutinefunction(method) is is_async
    client = object()
    outcome = method(client, "k", prefix=True, page_size=3)
    tag, got_client, spec = asyncio.run(outcome) if is_async else outcome
    assert (tag, got_client) == ("verb", client)
    assert (spec.key, spec.range_end, spec.page_size) == (b"k", b"l", 3)


#: The method tables of both clients: name -> builder, doc, whether AsyncClient's is a coroutine.
CLIENT_METHODS = [
    ("get", kv.get, None, True),
    ("put", kv.put, None, True),
    ("txn", txn_api.txn, None, True),
    ("count", bulk.count, None, True),
    ("delete_many", bulk.delete_many, None, True),
    ("grant", lease.grant, None, True),
    ("keep_alive_once", lease.keep_alive_once, None, True),
    ("user_add", auth.user_add, None, True),
    ("user_change_password", auth.user_change_password, None, True),
    ("put_many", bulk.put_many, None, True),
    ("get_all", bulk.range_pager, bulk.GET_ALL_DOC, True),
    ("iter_range", bulk.range_pager, bulk.ITER_RANGE_DOC, False),  # an async iterator, not a coroutine
]


@pytest.mark.parametrize("client_class", [etcdfast.Client, etcdfast.AsyncClient],
                         ids=["Client", "AsyncClient"])
@pytest.mark.parametrize("name, build, doc, async_in_aio", CLIENT_METHODS,
                         ids=[row[0] for row in CLIENT_METHODS])
def test_client_methods_have_the_builders_signatures(client_class: type, name: str, build: Any,
                                                     doc: Optional[str], async_in_aio: bool) -> None:
    method = getattr(client_class, name)
    self_param, *params = inspect.signature(method).parameters.values()
    assert self_param.name == "self"
    assert params == list(inspect.signature(build).parameters.values())
    assert method.__name__ == build.__name__ and method.__doc__ == (doc or build.__doc__)
    assert inspect.iscoroutinefunction(method) is (client_class is etcdfast.AsyncClient and async_in_aio)


class FakeClient:
    """All the generated unary methods use of a client: its ``_run`` verb."""

    def __init__(self, outcome: object) -> None:
        self.outcome = outcome
        self.requests: List[Request[Any]] = []

    def _run(self, request: Request[Any]) -> object:
        self.requests.append(request)
        if isinstance(self.outcome, BaseException):
            raise self.outcome
        return self.outcome


class AsyncFakeClient(FakeClient):
    async def _run(self, request: Request[Any]) -> object:
        return FakeClient._run(self, request)


@pytest.mark.parametrize("raises", [True, False], ids=["call-raises", "call-answers"])
@pytest.mark.parametrize("method, args, is_async, wiped", [
    pytest.param(sync_unary(auth.user_add, secret=True), ("bob",), False, True, id="sync_unary-secret"),
    pytest.param(async_unary(auth.user_add, secret=True), ("bob",), True, True, id="async_unary-secret"),
    pytest.param(etcdfast.Client.user_add, ("bob",), False, True, id="Client.user_add"),
    pytest.param(etcdfast.AsyncClient.user_add, ("bob",), True, True, id="AsyncClient.user_add"),
    pytest.param(etcdfast.Client.user_change_password, ("bob", "hunter2"), False, True,
                 id="Client.user_change_password"),
    pytest.param(etcdfast.AsyncClient.user_change_password, ("bob", "hunter2"), True, True,
                 id="AsyncClient.user_change_password"),
    pytest.param(sync_unary(auth.user_add), ("bob",), False, False, id="not-secret-keeps-it"),
])
def test_secret_methods_wipe_the_payload(method: Any, args: Tuple[str, ...], is_async: bool, wiped: bool,
                                         raises: bool) -> None:
    fake = (AsyncFakeClient if is_async else FakeClient)(Unavailable("down") if raises else "answer")
    kwargs = {} if len(args) == 2 else {"password": "hunter2"}

    def call() -> object:
        outcome = method(fake, *args, **kwargs)
        return asyncio.run(outcome) if is_async else outcome

    if raises:
        with pytest.raises(Unavailable):
            call()
    else:
        assert call() == "answer"
    [request] = fake.requests
    assert (request.payload == b"") is wiped
    assert (b"hunter2" in request.payload) is not wiped


def test_unary_methods_build_the_request_from_the_callers_arguments() -> None:
    fake = FakeClient("result")
    assert etcdfast.Client.get(fake, "a/", prefix=True, limit=5, timeout=2) == "result"
    [request] = fake.requests
    sent_range = RangeRequestMessage.FromString(request.payload)
    assert (sent_range.key, sent_range.range_end, sent_range.limit) == (b"a/", b"a0", 5)
    assert request.timeout == 2.0 and request.repeatable
    with pytest.raises(InvalidArgumentError):  # checked before any call
        etcdfast.Client.get(fake, "a", limit=-1)
    assert len(fake.requests) == 1


@pytest.mark.parametrize("option", ["limit", "revision", "min_mod_revision", "max_create_revision"])
@pytest.mark.parametrize("value, error", [
    (-1, InvalidArgumentError), (1 << 63, InvalidArgumentError), (True, TypeError), (False, TypeError),
    (0.0, TypeError), ("1", TypeError),
])
def test_get_checks_its_integers_past_the_common_case(option: str, value: Any, error: type) -> None:
    # The builders take plain in-range ints on a short path; everything else
    # (bools and floats too, whatever they equal) still meets the full check.
    with pytest.raises(error, match=option):
        kv.get("k", **{option: value})


def test_get_defaults_encode_as_the_explicit_options() -> None:
    explicit = kv.get("k", limit=0, revision=0, sort_order="none", sort_target="key")
    assert kv.get("k").payload == explicit.payload
    assert RangeRequestMessage.FromString(kv.get("k", limit=(1 << 63) - 1).payload).limit == (1 << 63) - 1
    assert RangeRequestMessage.FromString(kv.get("k", sort_target="mod").payload).sort_order == 1



def test_error_messages_show_text_keys_as_text():
    from etcdfast.errors import show_key

    assert show_key(b"/w/1") == '"/w/1"'
    assert show_key(b"\x00k") == "b'\\x00k'" and show_key(b"\xff") == "b'\\xff'"
