"""The life of one call, as a state machine with no IO (h11-style).

A machine takes *outcomes* -- answer bytes, a failure (and whether the
request may have left the client), the result of a connect or a login -- and
returns the next *action*: ``SEND`` the request, ``DIAL`` (wait for the first
connection), ``LOGIN``, ``SLEEP`` before a retry, ``PROBE`` the compact
revision, or ``RAISE`` :attr:`error`. The executors (``etcdfast._sync``,
``etcdfast.aio``) are short loops that perform actions over grpcio or
grpc.aio and feed the outcomes back, so the rules below exist once:

* **Retries** follow Go's clientv3: a *repeatable* call (a read, or a write
  whose repetition cannot change anything twice) is retried on
  ``UNAVAILABLE``; any other only when the request provably never left the
  client (no connection could be made). Retries back off with jitter and
  stop at ``max_retries`` or the call's deadline.
* **Tokens**: a call refused for a stale token ("invalid auth token", "auth
  revision is old") was not executed; the machine asks for a new login and
  repeats it once, whatever the call is.
* **What is known** when a call fails: an error raised after the request may
  have reached the server carries :class:`~etcdfast.errors.OutcomeUnknownError`
  (``ConnectionLostError``, ``ClosedDuringCallError``, ``Timeout``...); an
  error without it means the request was not executed.
* **Secrets**: a call whose payload holds a password raises its error with
  no ``__cause__`` and its payload wiped, so no frame reachable from the
  error holds the secret.

:class:`Call` is a unary call; :class:`StreamCall` a server-streaming one
(snapshots, one-shot keep-alives, the compact probe).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Optional

from .. import _codec
from ..api.request import NO_DEADLINE, Request
from ..errors import (
    AuthOldRevisionError,
    ClientClosedError,
    ClosedDuringCallError,
    CompactedError,
    ConnectionLostError,
    EtcdError,
    OldClusterError,
    OutcomeUnknownError,
    ProtocolError,
    Unavailable,
)
from .backoff import Backoff
from .observe import CallInfo, peer_of

if TYPE_CHECKING:
    from .state import ClientState

__all__ = [
    "SEND", "DIAL", "LOGIN", "SLEEP", "PROBE", "RAISE", "CHECK",
    "Call", "StreamCall", "never_sent", "outcome_unknown", "compact_probe", "compact_revision_of",
    "PROBE_ANSWERS", "DIAL_METHOD",
]

log = logging.getLogger("etcdfast.call")

#: Actions. Small ints: the executors compare them on every call.
SEND, DIAL, LOGIN, SLEEP, PROBE, RAISE, CHECK = 1, 2, 3, 4, 5, 6, 7

RANGE = "/etcdserverpb.KV/Range"
WATCH = "/etcdserverpb.Watch/Watch"
#: Called once per channel to wait for the first connection (``dial_timeout``):
#: no server has this method, so any server answers UNIMPLEMENTED at once,
#: without doing any work, and a failure to connect says why (refused, TLS).
DIAL_METHOD = "/etcdfast.Dial/Ping"

#: How long the version check waits for a connection when no dial timeout is set.
DIAL_WAIT_FOR_CHECK = 5.0

# grpc-core's words for "no connection, nothing was sent" (the call failed
# while choosing a connection: pick_first says the first, round_robin -- several
# endpoints -- the second), and Go's own equivalents.
_NEVER_SENT = (
    "failed to connect to all addresses",
    "connections to all backends failing",
    "connection refused",
    "there is no address available",
    "there is no connection available",
    "dns resolution failed",
)


def never_sent(error: EtcdError) -> bool:
    """True when an UNAVAILABLE error proves the request never reached a server."""
    if error.code != "UNAVAILABLE":
        return False
    details = (error.details or str(error)).lower()
    return any(marker in details for marker in _NEVER_SENT)


def outcome_unknown(error: BaseException) -> bool:
    """Whether a write that failed with ``error`` (as a call raises it) may
    nevertheless have been applied: the error says so, or it is a malformed
    answer (the request ran), or it is not one of ours (assume the worst)."""
    if not isinstance(error, EtcdError) or type(error) is EtcdError:
        return True
    return isinstance(error, (OutcomeUnknownError, ProtocolError))


def _with_outcome(error: EtcdError, sent: bool) -> EtcdError:
    """``error``, upgraded to say "may have been applied" when the request was sent
    and the error itself does not tell (a bare UNAVAILABLE from the transport)."""
    if sent and type(error) is Unavailable:
        lost = ConnectionLostError(
            f"{error} (after the request was sent: it may or may not have been applied)",
            code=error.code, details=error.details, endpoint=error.endpoint,
        )
        return lost
    return error


class _Machine:
    """What unary and streaming calls share: opening, deadlines, login, raising."""

    __slots__ = ("request", "state", "timeout", "started_at", "error", "cause", "relogged",
                 "attempt", "backoff", "delay")

    def __init__(self, request: Request[Any], state: "ClientState") -> None:
        self.request = request
        self.state = state
        timeout = request.timeout
        if timeout is None:
            timeout = request.default_timeout or state._timeout
        #: The whole call's budget in seconds (NO_DEADLINE: none).
        self.timeout = timeout
        self.started_at = state._clock()
        self.error: Optional[EtcdError] = None
        self.cause: Optional[BaseException] = None
        self.relogged = False
        self.attempt = 0
        self.backoff: Optional[Backoff] = None
        self.delay = 0.0

    # -- actions the executor asks about --

    def start(self) -> int:
        """The first action."""
        if self.state._closed:
            return self._raise(self.state._closed_error())
        return self._next()

    def _next(self) -> int:
        state = self.state
        endpoint = self.request.endpoint
        if not (state._dialed if endpoint is None else state._pinned_dialed(endpoint)):
            return DIAL
        if state._needs_login and not self.request.anonymous:
            return LOGIN
        return SEND

    def time_left(self) -> Optional[float]:
        """The deadline to give grpc for the next attempt (None: none)."""
        timeout = self.timeout
        if timeout == NO_DEADLINE:
            return None
        left = timeout - (self.state._clock() - self.started_at)
        return left if left > 0.001 else 0.001

    def dial_wait(self) -> float:
        """How long to wait for the first connection: ``dial_timeout``, or less if
        the call's deadline comes first (without a dial timeout -- a DIAL for
        the version check only -- the call's deadline, or the default dial timeout)."""
        dial = self.state._dial_timeout
        left = self.time_left()
        if dial is None:
            return DIAL_WAIT_FOR_CHECK if left is None else min(DIAL_WAIT_FOR_CHECK, left)
        return dial if left is None else min(dial, left)

    # -- outcomes --

    def dialed(self, failure: Optional[BaseException], waited: float) -> int:
        """The connection probe (a call to :data:`DIAL_METHOD`, which any gRPC
        server refuses at once) ended: with no failure or any answer of a
        server, the channel is connected; a deadline means nobody answered
        within the dial timeout (give up); any other failure (refused, TLS)
        is the call's own, never sent, judged by the retry rules."""
        if failure is not None:
            code = self.state._error_of(failure).code
            if code == "DEADLINE_EXCEEDED":
                where = self.state._where()
                return self._raise(Unavailable(
                    f"no connection to {where} within {waited:.3g} s (dial_timeout): "
                    "the endpoints accept no gRPC connection",
                    endpoint=where,
                ))
            if code == "UNAVAILABLE" or self.state._closed:
                return self.failed(failure, started=False)
        if self.request.endpoint is None and not self.state._version_checked:
            return CHECK  # reject_old_cluster: the members' versions first
        log.debug("connected to %s", self.request.endpoint or self.state._where())
        self.state._mark_dialed(self.request.endpoint)
        if self.state._needs_login and not self.request.anonymous:
            return LOGIN
        return SEND

    def checked(self, failure: Optional[BaseException]) -> int:
        """The version check (``reject_old_cluster``) ended: ``failure`` is an
        :class:`~etcdfast.errors.OldClusterError`, a member that could not be
        asked (the call's own failure, never sent), or None: all are recent."""
        if isinstance(failure, OldClusterError):
            return self._raise(failure)
        if failure is not None:
            return self.failed(failure, started=False)
        self.state._version_checked = True
        return self.dialed(None, 0.0)

    def failed(self, exc: BaseException, started: bool = True) -> int:  # pragma: no cover
        raise NotImplementedError

    def logged_in(self) -> int:
        return SEND

    def slept(self) -> int:
        return self._next()

    def info(self, error: Optional[BaseException], kind: str = "unary", result: Any = None) -> CallInfo:
        """What the ``on_call`` hook is told about this call, now that it ended
        (``result``: its answer, whose header names the member that served it)."""
        state = self.state
        peer = self.request.endpoint
        if peer is None and error is not None:
            cause = error.__cause__
            debug = getattr(cause, "debug_error_string", None)
            peer = peer_of(debug() if callable(debug) else None)
        if peer is None and len(state._endpoints) == 1:
            peer = state._endpoints[0].address
        if error is None:
            code = "OK"
        else:
            code = getattr(error, "code", None) or "CLIENT"
        header = getattr(result, "header", None)
        member = int(getattr(header, "member_id", 0) or 0)
        return CallInfo(self.request.method, peer, state._clock() - self.started_at, code, error,
                        self.attempt + self.relogged, kind, member)

    def _raise(self, error: EtcdError, cause: Optional[BaseException] = None) -> int:
        if self.request.secret:
            # No frame reachable from the error may hold the password: no
            # cause (grpc's frames hold the payload), and the payload wiped.
            self.request.payload = b""
        elif cause is not None and cause is not error:
            error.__cause__ = cause
        self.error = error
        return RAISE

    def _closed_error(self, sent: bool) -> EtcdError:
        if sent:
            return ClosedDuringCallError(
                "the client was closed while the call was in flight: "
                "it may or may not have been applied"
            )
        return ClientClosedError("the client was closed before the call was sent")

    def _translate(self, exc: BaseException, started: bool) -> "tuple[EtcdError, bool]":
        error = self.state._error_of(exc)
        return error, started and not never_sent(error)


class Call(_Machine):
    """One unary call.

    The executor performs :meth:`start`'s action and each action after it;
    ``SEND`` ends with :meth:`answered` (the decoded result) or
    :meth:`failed` (the next action).
    """

    __slots__ = ()

    def answered(self, raw: bytes) -> Any:
        """The decoded result of the answer bytes (ProtocolError if malformed)."""
        request = self.request
        if request.secret:
            request.payload = b""
        return request.decode(raw, self.state._revisions)

    def failed(self, exc: BaseException, started: bool = True) -> int:
        """A send failed with ``exc``; ``started`` is False when grpc refused to
        start the call at all (e.g. the channel was already closed)."""
        error, sent = self._translate(exc, started)
        state = self.state
        if state._closed:
            return self._raise(self._closed_error(sent), exc)
        if not self.relogged and not self.request.anonymous and state._drop_stale_token(error):
            # Refused before running: log in again and repeat it once.
            log.info("%s: auth token refused (%s); logging in again", self.request.method, error)
            self.relogged = True
            return LOGIN
        # "auth revision is old" refuses a call before it runs (the auth store
        # changed under it). A client without a password (TLS common-name
        # auth) has no token to refresh: Go's clientv3 just repeats the call.
        refused = isinstance(error, AuthOldRevisionError) and state._user is None
        if ((refused or error.code == "UNAVAILABLE" and (self.request.repeatable or not sent))
                and self.attempt < state.max_retries):
            if self.backoff is None:
                self.backoff = Backoff(*state._retry_backoff)
            delay = self.backoff.next_delay()
            left = self.time_left()
            if left is None or left > delay:
                self.delay = delay
                self.attempt += 1
                if log.isEnabledFor(logging.INFO):
                    debug = getattr(exc, "debug_error_string", None)
                    where = peer_of(debug() if callable(debug) else None) or state._where()
                    log.info("%s failed on %s (%s); retry %d of %d in %.0f ms%s", self.request.method,
                             where, error.details or error, self.attempt, state.max_retries, delay * 1000,
                             " on the next member" if len(state._endpoints) > 1 else "")
                return SLEEP
        if isinstance(error, CompactedError) and self.request.method == RANGE:
            # etcd's error lacks the compact revision: the executor probes it.
            self.error, self.cause = error, exc
            return PROBE
        return self._raise(_with_outcome(error, sent), exc)

    def probed(self, compact_revision: Optional[int]) -> int:
        """The compact probe's answer (None: unknown)."""
        assert isinstance(self.error, CompactedError)
        self.error.compact_revision = compact_revision
        return self._raise(self.error, self.cause)


class StreamCall(_Machine):
    """One server-streaming call: the executor yields its answers.

    A stale token refused before the first answer logs in again and reopens
    once; any other failure ends the stream with its typed error.
    """

    __slots__ = ("received",)

    def __init__(self, request: Request[Any], state: "ClientState") -> None:
        super().__init__(request, state)
        #: An answer arrived: from then on nothing is repeated.
        self.received = False

    def failed(self, exc: BaseException, started: bool = True) -> int:
        error, sent = self._translate(exc, started)
        state = self.state
        if state._closed:
            return self._raise(self._closed_error(sent), exc)
        if not self.received and not self.relogged and state._drop_stale_token(error):
            self.relogged = True
            return LOGIN
        return self._raise(error, exc)


# -- the compact probe ---------------------------------------------------------
# etcd's "required revision has been compacted" error lacks the compact
# revision. A watch from revision 1 on an unused key is cancelled at once with
# the current compact revision: one cheap stream, only on that error path.

_PROBE_KEY = b"\x00etcdfast-compact-probe"
#: The answers read at most: the cancel comes first or second.
PROBE_ANSWERS = 2
PROBE_TIMEOUT = 2.0


def compact_probe() -> "Request[None]":
    """The Watch request whose answer carries the compact revision."""
    payload = _codec.watch.encode_watch_create(_PROBE_KEY, b"", 1, False, False, False, False, 0, False)
    return Request(WATCH, payload, _no_decode, repeatable=True, timeout=PROBE_TIMEOUT)


def _no_decode(data: bytes, tracker: object) -> None:  # pragma: no cover - streams yield raw bytes
    return None


def compact_revision_of(raw: bytes) -> Optional[int]:
    """The compact revision in a probe answer, if it carries one."""
    return _codec.watch.decode_watch(raw, None).compact_revision or None

