"""Watches: the multiplexing logic (no IO) and the thread-based driver.

All watches of a client share one bidirectional ``Watch`` stream, as in
etcd's Go client; creating 1,000 watches sends 1,000 create requests on that
one stream, not 1,000 streams.

:class:`WatchHub` is the protocol with no IO: it encodes create/cancel
requests, routes each decoded ``WatchResponse`` to its watch, merges
fragments, and keeps each watch's :class:`WatchCursor` (from the codec's
revision twin) so that after a broken stream every watch is re-created at
*its last delivered revision + 1*: no event lost, none repeated, order kept.
If that revision has been compacted meanwhile, the watch ends with
:class:`~etcdfast.errors.CompactedError` carrying the compact revision.

The sync driver (:class:`WatchStream` + :class:`Watch`) reads the stream
leader/follower style: a consumer iterating its watch reads the gRPC stream
itself while it waits, so a busy watch's responses go from grpc's receive
straight to the thread that uses them. A background thread reads whenever no
consumer does (other watches keep flowing while a consumer is busy) and owns
reconnecting. ``etcdfast.aio.watch`` runs the same hub on a task.
"""

from __future__ import annotations

import collections
import itertools
import logging
import queue
import threading
import time
from typing import (
    Any,
    Callable,
    Deque,
    Dict,
    Iterator,
    List,
    NamedTuple,
    Optional,
    Protocol,
    Tuple,
    Union,
)

import grpc

from . import _codec
from ._backoff import Backoff
from .errors import (
    AuthOldRevisionError,
    CancelledError,
    ClientClosedError,
    CompactedError,
    EtcdError,
    InvalidAuthTokenError,
    NoLeaderError,
    PermissionDeniedError,
    ReauthenticatingError,
    Timeout,
    Unavailable,
    classify,
)
from .types import Event, Progress, WatchResponse

__all__ = ["Watch", "WatchSpec", "WatchHub", "WatchStream", "watch_spec", "WatchItem"]

log = logging.getLogger("etcdfast.watch")

WATCH = "/etcdserverpb.Watch/Watch"

#: What a watch delivers to its consumer: events, progress notifications, or
#: the whole response (``Watch.batches()``).
WatchItem = Union[Event, Progress]


class WatchSpec(NamedTuple):
    """What to watch, resolved to wire values (see :func:`watch_spec`)."""

    key: bytes
    range_end: bytes
    start_revision: int
    prev_kv: bool
    no_put: bool
    no_delete: bool
    progress_notify: bool
    fragment: bool


def watch_spec(
    key: Union[str, bytes],
    *,
    prefix: bool = False,
    range_end: Union[str, bytes, None] = None,
    from_key: bool = False,
    start_revision: int = 0,
    prev_kv: bool = False,
    no_put: bool = False,
    no_delete: bool = False,
    progress_notify: bool = False,
    fragment: bool = False,
) -> WatchSpec:
    """Validate the watch options (shared by both clients)."""
    k, end = _codec.keys.resolve_range(key, range_end, prefix, from_key)
    if isinstance(start_revision, bool) or not isinstance(start_revision, int):
        raise TypeError(f"start_revision must be an int, not {type(start_revision).__name__}")
    if start_revision < 0:
        raise ValueError(f"start_revision must be >= 0, got {start_revision}")
    return WatchSpec(k, end, start_revision, bool(prev_kv), bool(no_put), bool(no_delete),
                     bool(progress_notify), bool(fragment))


class Sink(Protocol):
    """Where the hub delivers a watch's items (a queue in each driver)."""

    def deliver(self, item: object) -> None: ...


#: Delivered once when the server confirms a watch's (first) creation.
CREATED = object()
#: Delivered when a watch ends because its owner cancelled it.
END = object()


class WatchState:
    """One watch inside the hub."""

    __slots__ = ("spec", "sink", "cursor", "watch_id", "fragments", "cancelling", "confirmed",
                 "retried_login")

    def __init__(self, spec: WatchSpec, sink: Sink) -> None:
        self.spec = spec
        self.sink = sink
        self.cursor = _codec.revision.WatchCursor(spec.start_revision)
        self.watch_id: Optional[int] = None
        self.fragments: List[Event] = []
        self.cancelling = False
        self.confirmed = False  # the server created it at least once
        self.retried_login = False


class WatchHub:
    """The watch protocol of one client, independent of threads or asyncio.

    Creates are answered in the order they were sent (etcd handles a stream's
    requests one by one), so pending creates wait in a FIFO and the next
    ``created`` answer belongs to the oldest one -- even when it is a failure
    carrying watch ID -1.
    """

    def __init__(self, authenticated: bool = False) -> None:
        self._pending: Deque[WatchState] = collections.deque()
        self._active: Dict[int, WatchState] = {}
        #: The client logs in with a password (its stream token can expire).
        self.authenticated = authenticated

    def __len__(self) -> int:
        return len(self._pending) + len(self._active)

    def states(self) -> List[WatchState]:
        return [*self._pending, *self._active.values()]

    # -- requests ------------------------------------------------------------

    def add(self, state: WatchState) -> bytes:
        """Register a new watch; returns its create request."""
        self._pending.append(state)
        return self._create_request(state)

    @staticmethod
    def _create_request(state: WatchState) -> bytes:
        spec = state.spec
        # Resume where delivery stopped; before the first creation, honour
        # the caller's start revision (0: from now).
        start = state.cursor.next_revision or spec.start_revision
        return _codec.watch.encode_watch_create(
            spec.key, spec.range_end, start, spec.progress_notify, spec.no_put,
            spec.no_delete, spec.prev_kv, 0, spec.fragment,
        )

    def cancel(self, state: WatchState) -> Optional[bytes]:
        """Cancel a watch; returns the cancel request to send, if one is needed."""
        if state.cancelling:
            return None
        state.cancelling = True
        if state.watch_id is not None and self._active.get(state.watch_id) is state:
            return _codec.watch.encode_watch_cancel(state.watch_id)
        # Still waiting for its creation: it is cancelled when that arrives.
        return None

    def restart(self) -> List[bytes]:
        """After the stream broke: re-create every live watch at its resume revision."""
        live = [s for s in self.states() if not s.cancelling]
        for state in self.states():
            if state.cancelling:
                state.sink.deliver(END)
        self._pending.clear()
        self._active.clear()
        requests = []
        for state in live:
            state.watch_id = None
            state.fragments = []  # the server re-sends whole responses
            requests.append(self.add(state))
        return requests

    def fail(self, error: EtcdError, only_unconfirmed: bool = False) -> None:
        """End watches with ``error``: all of them, or those never created yet."""
        for state in self.states():
            if only_unconfirmed and state.confirmed:
                continue
            self._remove(state)
            state.sink.deliver(error)

    def stream_broke(self, error: Optional[EtcdError], down_for: float, reconnect_timeout: float) -> bool:
        """Apply the reconnect policy after the stream broke; True if reconnecting is worth it.

        Availability problems are retried (watches resume where they were)
        for ``reconnect_timeout`` seconds of continuous failure; watches never
        created yet fail at once, since they have nothing to resume. Any
        other error (permission denied...), and NoLeaderError, ends every watch.
        """
        if error is None:
            error = Unavailable("watch stream closed by the server")
        if isinstance(error, ReauthenticatingError) or error.code == "CANCELLED":
            # Nothing is wrong with the watches themselves: a new login, or
            # the channel was retired after an endpoint sync. Reconnect.
            return len(self) > 0
        if not isinstance(error, (Unavailable, Timeout)) or isinstance(error, NoLeaderError):
            # NoLeaderError comes only with require_leader=True: the member lost
            # its leader, which the caller asked to hear about. Reconnecting
            # would only retry the same refusal for reconnect_timeout; end the
            # watches as Go's clientv3 does -- a re-watch from watch.revision
            # resumes where they stopped, on a member that has a leader.
            self.fail(error)
        else:
            self.fail(error, only_unconfirmed=True)
            if down_for > reconnect_timeout:
                self.fail(Unavailable(
                    f"watch stream down for over {reconnect_timeout:.0f} s: {error}",
                    endpoint=getattr(error, "endpoint", None),
                ))
        return len(self) > 0

    def _remove(self, state: WatchState) -> None:
        if state.watch_id is not None and self._active.get(state.watch_id) is state:
            del self._active[state.watch_id]
        try:
            self._pending.remove(state)
        except ValueError:
            pass

    # -- responses -----------------------------------------------------------

    def handle(self, raw: bytes, tracker: Any = None) -> List[bytes]:
        """Route one raw ``WatchResponse``; returns requests to send in reply."""
        response: WatchResponse = _codec.watch.decode_watch(raw, tracker)
        if response.created:
            return self._created(response)
        state = self._active.get(response.watch_id)
        if state is None:
            if response.watch_id == -1 and not response.canceled:
                self._broadcast_progress(response.header.revision)
            # else: a late answer for a watch already gone.
            return []
        if response.canceled or response.compact_revision:
            self._canceled(state, response)
            return []
        if response.fragment:
            state.fragments.extend(response.events)
            return []
        events = response.events
        if state.fragments:
            events = state.fragments + events
            state.fragments = []
        if events:
            accepted = state.cursor.accept(events)
            if accepted:
                if accepted is not response.events:
                    response = response._replace(events=accepted, fragment=False)
                state.sink.deliver(response)
        else:  # a progress notification for this watch
            state.cursor.progress(response.header.revision)
            if state.spec.progress_notify:
                state.sink.deliver(Progress(response.header.revision))
        return []

    def _created(self, response: WatchResponse) -> List[bytes]:
        if not self._pending:
            log.warning("unexpected watch creation answer: %r", response)
            return []
        state = self._pending.popleft()
        if response.canceled:  # creation refused (e.g. permission denied)
            cls, message = classify("UNKNOWN", response.cancel_reason or "watch creation refused")
            stale = issubclass(cls, (InvalidAuthTokenError, AuthOldRevisionError))
            # etcd checks a watch's permission with the token the stream was
            # opened with; once that token expires it answers "permission
            # denied". With credentials, log in again and retry once before
            # believing it.
            if stale or (self.authenticated and issubclass(cls, PermissionDeniedError)
                         and not state.retried_login):
                state.retried_login = True
                self._pending.appendleft(state)
                # The driver logs in again and re-creates every watch, this one too.
                raise InvalidAuthTokenError(message, details=response.cancel_reason)
            state.sink.deliver(cls(message, details=response.cancel_reason))
            return []
        state.watch_id = response.watch_id
        state.retried_login = False
        self._active[response.watch_id] = state
        state.cursor.created(response.header.revision)
        if not state.confirmed:
            state.confirmed = True
            state.sink.deliver(CREATED)
        if state.cancelling:
            return [_codec.watch.encode_watch_cancel(response.watch_id)]
        return []

    def _canceled(self, state: WatchState, response: WatchResponse) -> None:
        self._remove(state)
        if response.compact_revision:
            state.cursor.compacted(response.compact_revision)
            state.sink.deliver(CompactedError(
                f"watch on {state.spec.key!r} cannot continue: revision "
                f"{state.cursor.next_revision or state.spec.start_revision} has been compacted",
                compact_revision=response.compact_revision,
            ))
        elif state.cancelling:
            state.sink.deliver(END)
        else:
            reason = response.cancel_reason or "watch canceled by the server"
            cls, message = classify("UNKNOWN", reason)
            state.sink.deliver(cls(message, details=reason))

    def _broadcast_progress(self, revision: int) -> None:
        # A progress answer to request_progress() is for the whole stream.
        for state in self._active.values():
            state.cursor.progress(revision)
            if state.spec.progress_notify:
                state.sink.deliver(Progress(revision))


# -- the sync driver -------------------------------------------------------------


class Watch:
    """A running watch: iterate it for events; a context manager; cancellable.

    ::

        with client.watch("/config/", prefix=True) as watch:
            for event in watch:
                print(event.type.name, event.key, event.value)

    Iteration yields :class:`~etcdfast.types.Event` (and
    :class:`~etcdfast.types.Progress` when ``progress_notify=True``);
    :meth:`batches` yields whole :class:`~etcdfast.types.WatchResponse`
    objects instead. Iteration ends after :meth:`cancel`; it raises when the
    watch cannot continue (``CompactedError``, ``Unavailable`` after the
    reconnect window, ``NoLeaderError`` with ``require_leader=True`` when the
    member lost its leader -- re-watch from :attr:`revision` --,
    ``ClientClosedError``...), never stalls silently.
    """

    def __init__(self, stream: "WatchStream", spec: WatchSpec) -> None:
        self.spec = spec
        self._stream = stream
        self._queue: "queue.SimpleQueue[object]" = queue.SimpleQueue()
        self._created = threading.Event()
        self._state = WatchState(spec, self)
        self._done = False
        #: The exception that ended the watch, if any.
        self.error: Optional[BaseException] = None

    # called by the hub, on whichever thread holds the read role
    def deliver(self, item: object) -> None:
        if item is CREATED:
            self._created.set()
            return
        if item is END or isinstance(item, BaseException):
            self._created.set()  # wake a creator still waiting
        self._queue.put(item)

    @property
    def revision(self) -> int:
        """The revision the watch would resume from (last delivered + 1)."""
        return int(self._state.cursor.next_revision)

    @property
    def compact_revision(self) -> int:
        return int(self._state.cursor.compact_revision)

    @property
    def progress_revision(self) -> int:
        return int(self._state.cursor.progress_revision)

    def _next(self, timeout: Optional[float]) -> object:
        if self._done:
            raise StopIteration
        if timeout is None:
            item = self._stream._next_for(self)
        else:
            item = self._stream._next_within(self, timeout)
        if item is END:
            self._done = True
            raise StopIteration
        if isinstance(item, BaseException):
            self._done = True
            self.error = item
            raise item
        return item

    def batches(self, timeout: Optional[float] = None) -> Iterator[Union[WatchResponse, Progress]]:
        """Yield whole responses (one per etcd revision batch) instead of single events."""
        while True:
            try:
                yield self._next(timeout)  # type: ignore[misc]
            except StopIteration:
                return

    def __iter__(self) -> Iterator[WatchItem]:
        # chain.from_iterable walks each batch's event list in C: the Python
        # generator below runs once per response, not once per event.
        return itertools.chain.from_iterable(self._item_lists())

    def _item_lists(self) -> Iterator[List[WatchItem]]:
        while True:
            try:
                item = self._next(None)
            except StopIteration:
                return
            yield [item] if isinstance(item, Progress) else item.events  # type: ignore[attr-defined]

    def get(self, timeout: Optional[float] = None) -> List[WatchItem]:
        """The next batch of items, waiting at most ``timeout`` seconds (Timeout if none)."""
        try:
            item = self._next(timeout)
        except StopIteration:
            return []
        return [item] if isinstance(item, Progress) else list(item.events)  # type: ignore[attr-defined]

    def cancel(self) -> None:
        """Stop the watch; iteration ends after the items already received."""
        self._stream.cancel(self)

    def __enter__(self) -> "Watch":
        return self

    def __exit__(self, *exc: object) -> None:
        self.cancel()

    def __repr__(self) -> str:
        return f"<Watch {self.spec.key!r} next_revision={self.revision}>"


#: Who reads the stream (``WatchStream._reader``) when no consumer does.
_BACKGROUND = "background"

#: How long the read role must sit unused before the background thread takes
#: it back from consumers: the most a busy consumer (one running user code
#: between batches) can delay the other watches of its stream. Consumers that
#: keep reading release and retake the role far more often than this.
_IDLE_ROLE_S = 0.01

#: The same, while the stream carries one watch and nobody waits on it: its
#: own consumer is then the only one a late take-over could delay, and it reads
#: the stream itself when it comes back. Checking every 10 ms costs a
#: single-watch stream ~2.5 ms of CPU per 100,000 events (one wake-up and GIL
#: round trip per check); every 100 ms, a tenth of that.
_SOLO_IDLE_ROLE_S = 0.1


class WatchStream:
    """One ``Watch`` stream per sync client, opened on first use.

    Responses reach the :class:`WatchHub` leader/follower style. Exactly one
    thread at a time holds the *read role* and calls ``next()`` on the gRPC
    call: preferably a consumer that iterates its watch and has nothing
    queued, which then gets its own events without a thread hand-off; else
    the background thread, so that watches nobody is iterating right now
    still drain the stream. The background thread hands the role to a waiting
    consumer as soon as that consumer has something to wake up for, and takes
    it back after the role has been unused for ``_IDLE_ROLE_S`` (longer while
    the stream carries a single watch nobody is waiting on).

    The background thread alone reconnects: a consumer that sees the stream
    fail passes the error to it. When the stream breaks it reconnects with
    jittered backoff and re-creates every watch at its resume revision.
    Watches never created yet fail at once (a dead endpoint raises, it does
    not hang); created ones are retried for ``reconnect_timeout`` seconds,
    then end with ``Unavailable``.
    """

    def __init__(
        self,
        open_stream: Callable[[Iterator[bytes]], Any],
        tracker: Any,
        error_of: Callable[[Exception], EtcdError],
        reconnect_timeout: float = 60.0,
        authenticated: bool = False,
    ) -> None:
        self._open_stream = open_stream
        self._tracker = tracker
        self._error_of = error_of
        self.reconnect_timeout = reconnect_timeout
        self._hub = WatchHub(authenticated)
        self._lock = threading.Lock()
        self._requests: Optional["queue.SimpleQueue[Optional[bytes]]"] = None
        self._call: Any = None
        self._thread: Optional[threading.Thread] = None
        self._wake = threading.Event()
        self._closed = False
        # The read role (see the class docstring); all under self._lock.
        self._reader: object = None  # None, _BACKGROUND or the leading Watch
        self._role_changed = threading.Condition(self._lock)
        self._releases = 0  # role releases by consumers (and hand-overs)
        self._background_asleep = False  # waiting without a timeout
        self._background_dozing = False  # waiting _SOLO_IDLE_ROLE_S
        self._timed_waiters = 0  # consumers in get(timeout): they never read themselves
        self._handed_error: Optional[BaseException] = None  # a consumer's read failure
        self._waiting: "set[Watch]" = set()  # consumers blocked on their queue

    def watch(self, spec: WatchSpec, timeout: Optional[float]) -> Watch:
        """Create a watch and wait until the server confirms it."""
        handle = Watch(self, spec)
        with self._lock:
            if self._closed:
                raise ClientClosedError("the client is closed")
            request = self._hub.add(handle._state)
            self._wake_dozing()
            if self._thread is None:
                self._start()
            elif self._requests is not None:
                self._requests.put(request)
            # else: the reader is reconnecting and will send it with the rest.
        if not handle._created.wait(timeout):
            self.cancel(handle)
            raise Timeout(f"watch on {spec.key!r} not created within {timeout} s")
        if not handle._queue.empty() and handle._state.watch_id is None:
            handle._next(0)  # creation failed: raise its error here
        return handle

    def request_progress(self) -> None:
        """Ask the server for a progress notification on this stream."""
        with self._lock:
            if self._requests is not None:
                self._requests.put(_codec.watch.encode_watch_progress())

    def cancel(self, handle: Watch) -> None:
        with self._lock:
            request = self._hub.cancel(handle._state)
            if request is not None and self._requests is not None:
                self._requests.put(request)
            elif request is None and handle._state.watch_id is None:
                # never reached the server (or the stream is down): end locally
                self._hub._remove(handle._state)
                handle.deliver(END)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._wake.set()
            self._role_changed.notify_all()
            call, thread = self._call, self._thread
            if self._requests is not None:
                self._requests.put(None)
            self._hub.fail(ClientClosedError("the client was closed"))
        if call is not None:
            call.cancel()
        if thread is not None and thread is not threading.current_thread():
            thread.join(10)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # -- consumers reading --------------------------------------------------------

    def _next_for(self, handle: Watch) -> object:
        """The next item of ``handle``'s queue, reading the stream while it waits."""
        queue_ = handle._queue
        while True:
            try:
                return queue_.get_nowait()
            except queue.Empty:
                pass
            with self._lock:
                call = self._call
                if (self._reader is not None or call is None or self._closed
                        or self._handed_error is not None):
                    # Someone else reads (or the stream is down): it delivers
                    # our items and, if it is the background thread, hands
                    # us the role when it wakes us.
                    self._waiting.add(handle)
                    waiting = True
                else:
                    self._reader = handle
                    waiting = False
            if waiting:
                try:
                    return queue_.get()
                finally:
                    with self._lock:
                        self._waiting.discard(handle)
            handed: Optional[Exception] = None
            try:
                handed = self._read_once(call)
            except BaseException:
                # KeyboardInterrupt and the like, raised inside grpc's wait, are
                # the consumer's own: they propagate. grpc leaves that receive
                # half done and the call unusable (a later read or the
                # channel's close would hang on it), so give the call up: the
                # background thread reconnects and every watch resumes after
                # its last delivered revision.
                call.cancel()
                handed = CancelledError("watch stream left by an interrupted consumer")
                raise
            finally:
                # Always let go: a role never released would stall every watch.
                self._release(handed)

    def _next_within(self, handle: Watch, timeout: float) -> object:
        """The next item of ``handle``'s queue within ``timeout`` seconds; others read."""
        with self._lock:
            self._timed_waiters += 1
            self._wake_dozing()
        try:
            return handle._queue.get(timeout=timeout)
        except queue.Empty:
            raise Timeout(f"no watch event within {timeout} s") from None
        finally:
            with self._lock:
                self._timed_waiters -= 1

    def _read_once(self, call: Any) -> Optional[Exception]:
        """Read and route one response as the role holder.

        Returns the failure to hand to the background thread, which alone
        reconnects: the call's end (StopIteration, RpcError...), a malformed
        response, a stale token.
        """
        try:
            raw = next(call)
        except Exception as exc:
            return exc
        with self._lock:
            try:
                replies = self._hub.handle(raw, self._tracker)
            except Exception as exc:
                return exc
            if self._requests is not None:
                for reply in replies:
                    self._requests.put(reply)
        return None

    def _release(self, handed: Optional[BaseException]) -> None:
        with self._lock:
            self._reader = None
            self._releases += 1
            if handed is not None:
                self._handed_error = handed
            if handed is not None or self._background_asleep:
                self._background_asleep = False
                self._role_changed.notify()

    # -- background thread ----------------------------------------------------------

    def _start(self) -> None:
        self._reader = _BACKGROUND
        self._thread = threading.Thread(target=self._run, name="etcdfast-watch", daemon=True)
        self._thread.start()

    def _take_role(self) -> None:
        """Block the background thread until it holds the read role.

        Raises a consumer's read failure, as if the background thread had
        read it, so that the one reconnect path handles every failure.
        """
        with self._lock:
            seen = -1
            while True:
                if self._closed:
                    raise ClientClosedError("the client was closed")
                if self._handed_error is not None:
                    error, self._handed_error = self._handed_error, None
                    self._reader = _BACKGROUND
                    raise error
                if self._reader is _BACKGROUND:
                    return
                if self._reader is None and self._releases == seen:
                    self._reader = _BACKGROUND  # unused for a whole period
                    return
                if self._reader is not None and self._releases == seen:
                    # A consumer has been waiting in next() for a whole
                    # period (a quiet stream): sleep until it lets go.
                    self._background_asleep = True
                    self._role_changed.wait()
                else:
                    seen = self._releases
                    solo = len(self._hub) <= 1 and not self._waiting and not self._timed_waiters
                    self._background_dozing = solo
                    self._role_changed.wait(_SOLO_IDLE_ROLE_S if solo else _IDLE_ROLE_S)
                    self._background_dozing = False

    def _wake_dozing(self) -> None:
        """Under the lock: a second watch, or a consumer waiting in get(timeout)
        (it never reads the stream itself), needs the background thread on its
        short period again."""
        if self._background_dozing:
            self._background_dozing = False
            self._role_changed.notify()

    def _hand_over(self) -> None:
        """After routing a response: let a waiting consumer read, if one has cause to wake."""
        if any(not handle._queue.empty() for handle in self._waiting):
            self._reader = None
            self._releases += 1

    @staticmethod
    def _iterate(requests: "queue.SimpleQueue[Optional[bytes]]") -> Iterator[bytes]:
        while True:
            item = requests.get()
            if item is None:
                return
            yield item

    def _connect(self) -> Tuple[Any, "queue.SimpleQueue[Optional[bytes]]"]:
        requests: "queue.SimpleQueue[Optional[bytes]]" = queue.SimpleQueue()
        with self._lock:
            for request in self._hub.restart():
                requests.put(request)
            self._requests = requests
            self._call = self._open_stream(self._iterate(requests))
            return self._call, requests

    def _run(self) -> None:
        backoff = Backoff()
        failing_since: Optional[float] = None
        while True:
            error: Optional[EtcdError] = None
            requests = None
            try:
                call, requests = self._connect()
                while True:
                    self._take_role()
                    raw = next(call)
                    failing_since = None
                    backoff.reset()
                    with self._lock:
                        replies = self._hub.handle(raw, self._tracker)
                        for reply in replies:
                            requests.put(reply)
                        self._hand_over()
            except StopIteration:
                pass  # the server ended the stream: stream_broke() treats None as Unavailable
            except grpc.RpcError as exc:
                error = self._error_of(exc)
            except EtcdError as exc:  # a malformed response, a stale token...
                error = self._error_of(exc)
            except Exception as exc:  # the channel closed under us, etc.
                error = Unavailable(f"watch stream failed: {exc!r}")
            with self._lock:
                if requests is not None:
                    requests.put(None)
                self._requests = None
                self._call = None
                if self._closed:
                    self._thread = self._reader = None
                    return
                failing_since = failing_since or time.monotonic()
                down_for = time.monotonic() - failing_since
                if not self._hub.stream_broke(error, down_for, self.reconnect_timeout):
                    self._thread = self._reader = None  # the next watch() starts a new reader
                    return
            log.debug("watch stream broke (%s); reconnecting", error)
            self._wake.wait(backoff.next_delay())  # close() cuts the wait short


def start_callback_thread(
    watch: Watch,
    callback: Callable[[WatchItem], object],
    on_error: Optional[Callable[[BaseException], object]] = None,
) -> threading.Thread:
    """Push each item of ``watch`` to ``callback`` on a thread of its own.

    A callback that raises ends its watch (the exception is kept in
    ``watch.error``, logged, and passed to ``on_error``): continuing after a
    failed callback would silently skip the event it failed on. One thread
    per callback watch keeps a slow callback from delaying other watches.
    """

    def run() -> None:
        try:
            for item in watch:
                callback(item)
        except BaseException as exc:  # noqa: B036 - reported, never swallowed
            watch.error = exc
            if not isinstance(exc, EtcdError):
                log.exception("watch callback raised; the watch on %r is cancelled", watch.spec.key)
                watch.cancel()
            if on_error is not None:
                try:
                    on_error(exc)
                except Exception:
                    log.exception("watch on_error callback raised")

    thread = threading.Thread(target=run, name="etcdfast-watch-callback", daemon=True)
    thread.start()
    return thread
