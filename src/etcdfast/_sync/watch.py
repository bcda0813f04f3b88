"""The thread-based watch driver: :class:`Watch` and :class:`WatchStream`.

The protocol (multiplexing, fragments, resume revisions, the reconnect
policy) is :class:`etcdfast._core.watch_hub.WatchHub`; this module only moves
its bytes over grpcio and hands each watch's items to its consumer.

The stream is read leader/follower style: a consumer iterating its watch
reads the gRPC stream itself while it waits, so a busy watch's responses go
from grpc's receive straight to the thread that uses them. A background
thread reads whenever no consumer does (other watches keep flowing while a
consumer is busy) and owns reconnecting. ``etcdfast.aio.watch`` drives the
same hub on a task.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
from typing import TYPE_CHECKING, Any, Callable, Iterator, List, Optional, Tuple, Union

from .. import _codec
from .._core.methods import Concatenate, P, bind_signature
from .._core.observe import StreamSession
from .._core.watch_hub import ItemT, WatchHandle, WatchHub, WatchItem
from ..api.watch import WatchSpec
from ..errors import CancelledError, ClientClosedError, EtcdError, Timeout, show_key
from ..types import Progress, WatchResponse
from .executor import stop_stream

if TYPE_CHECKING:
    from .executor import Executor

__all__ = ["Watch", "WatchStream", "start_callback_thread", "watch_method"]

log = logging.getLogger("etcdfast.watch")

WATCH = "/etcdserverpb.Watch/Watch"


class Watch(WatchHandle[ItemT]):
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

    def __init__(self, stream: "WatchStream", spec: WatchSpec[ItemT]) -> None:
        super().__init__(spec)
        self._stream = stream
        self._queue: "queue.SimpleQueue[object]" = queue.SimpleQueue()
        self._created = threading.Event()
        # Called by the hub, on whichever thread holds the read role.
        self._enqueue = self._queue.put  # type: ignore[method-assign]

    def _next(self, timeout: Optional[float]) -> Union[WatchResponse, Progress]:
        if self._done:
            raise StopIteration
        if timeout is None:
            item = self._stream._next_for(self)
        else:
            item = self._stream._next_within(self, timeout)
        taken = self._take(item)
        if taken is None:
            raise StopIteration
        return taken

    def batches(self, timeout: Optional[float] = None) -> Iterator[Union[WatchResponse, Progress]]:
        """Yield whole responses (one per etcd revision batch) instead of single events."""
        while True:
            try:
                yield self._next(timeout)
            except StopIteration:
                return

    def __iter__(self) -> Iterator[ItemT]:
        # chain.from_iterable walks each batch's event list in C: the Python
        # generator below runs once per response, not once per event.
        return itertools.chain.from_iterable(self._item_lists())

    def _item_lists(self) -> Iterator[List[ItemT]]:
        while True:
            try:
                item = self._next(None)
            except StopIteration:
                return
            yield self._items(item)

    def get(self, timeout: Optional[float] = None) -> List[ItemT]:
        """The next batch of items, waiting at most ``timeout`` seconds (Timeout if none)."""
        try:
            item = self._next(timeout)
        except StopIteration:
            return []
        return list(self._items(item))

    def cancel(self) -> None:
        """Stop the watch; iteration ends after the items already received."""
        self._stream.cancel(self)

    def __enter__(self) -> "Watch[ItemT]":
        return self

    def __exit__(self, *exc: object) -> None:
        self.cancel()


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
        self, executor: "Executor", authenticated: bool = False, require_leader: Optional[bool] = None
    ) -> None:
        self._executor = executor
        #: This stream's "hasleader" choice (None: the client's; see ``Request.require_leader``).
        self._require_leader = require_leader
        self._tracker = executor.state._revisions
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
        self._waiting: "set[Watch[Any]]" = set()  # consumers blocked on their queue

    @property
    def reconnect_timeout(self) -> float:
        """Seconds a broken stream is retried before its watches end with Unavailable."""
        return self._hub.reconnect_timeout

    @reconnect_timeout.setter
    def reconnect_timeout(self, seconds: float) -> None:
        self._hub.reconnect_timeout = seconds

    def watch(self, spec: WatchSpec[ItemT]) -> "Watch[ItemT]":
        """Create a watch and wait until the server confirms it."""
        state = self._executor.state
        timeout = state._grpc_timeout(state._deadline_for(spec.timeout))
        handle: Watch[ItemT] = Watch(self, spec)
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
            # Cancelled, not forgotten: the hub keeps the create in line
            # until the server answers it, then cancels it there.
            self.cancel(handle)
            raise Timeout(f"watch on {show_key(spec.key)} not created within {timeout} s")
        if handle._created_error():
            handle._next(0)  # creation failed: raise its error here
        return handle

    def _abandon(self, error: BaseException) -> None:
        """In a forked child (one thread, no reader): end every watch with
        ``error`` and never touch the parent's gRPC call. Takes no lock: a
        thread of the parent may have held it at the fork."""
        self._closed = True  # its gRPC call stays referenced: never finalized in the child
        self._hub.fail(error)  # type: ignore[arg-type]

    def request_progress(self) -> None:
        """Ask the server for a progress notification on this stream."""
        with self._lock:
            if self._requests is not None:
                self._requests.put(_codec.watch.encode_watch_progress())

    def cancel(self, handle: "Watch[Any]") -> None:
        with self._lock:
            request = self._hub.cancel(handle._state)
            # With the stream down the cancel need not be sent: the new
            # stream re-creates only the watches still wanted.
            if request is not None and self._requests is not None:
                self._requests.put(request)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._wake.set()
            self._role_changed.notify_all()
            call, thread = self._call, self._thread
            if self._requests is not None:
                self._requests.put(None)
            self._hub.fail(ClientClosedError("the client was closed"))
        stop_stream(call, thread)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # -- consumers reading --------------------------------------------------------

    def _next_for(self, handle: "Watch[Any]") -> object:
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

    def _next_within(self, handle: "Watch[Any]", timeout: float) -> object:
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
        self._executor.login_if_needed()  # before the lock: it is a network call
        requests: "queue.SimpleQueue[Optional[bytes]]" = queue.SimpleQueue()
        with self._lock:
            for request in self._hub.connect():
                requests.put(request)
            self._requests = requests
            self._call = self._executor.open_stream(WATCH, self._iterate(requests), self._require_leader)
            return self._call, requests

    def _run(self) -> None:
        while True:
            failure: Optional[BaseException] = None
            requests = None
            session = StreamSession(self._executor.state, WATCH)
            try:
                call, requests = self._connect()
                while True:
                    self._take_role()
                    raw = next(call)
                    with self._lock:
                        for reply in self._hub.handle(raw, self._tracker):
                            requests.put(reply)
                        self._hand_over()
            except StopIteration:
                pass  # the server ended the stream
            except Exception as exc:  # grpc's error, a malformed response, a stale token...
                failure = exc
            session.end(failure)
            with self._lock:
                if requests is not None:
                    requests.put(None)
                self._requests = None
                self._call = None
                if self._closed:
                    self._thread = self._reader = None
                    return
                state = self._executor.state
                delay = self._hub.broke(state._stream_error(failure), state._clock())
                if delay is None:
                    self._thread = self._reader = None  # the next watch() starts a new reader
                    return
            self._wake.wait(delay)  # close() cuts the wait short


def start_callback_thread(
    watch: "Watch[Any]",
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


def watch_method(build: Callable[P, WatchSpec[ItemT]]) -> Callable[Concatenate[Any, P], Watch[ItemT]]:
    """``Client.watch``: the options of ``api.watch.watch_spec``, answered with a :class:`Watch`."""

    def method(self: Any, /, *args: P.args, **kwargs: P.kwargs) -> Watch[ItemT]:
        spec = build(*args, **kwargs)
        return self._watches(spec.require_leader).watch(spec)  # type: ignore[no-any-return]

    bind_signature(build, method, "Watch", None)
    return method
