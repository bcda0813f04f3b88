"""The watch protocol of one client, with no IO: :class:`WatchHub`.

All watches of a client share one bidirectional ``Watch`` stream, as in
etcd's Go client; creating 1,000 watches sends 1,000 create requests on that
one stream, not 1,000 streams.

The hub encodes create/cancel requests, routes each decoded ``WatchResponse``
to its watch, merges fragments, and keeps each watch's ``WatchCursor`` (from
the codec's revision twin) so that after a broken stream every watch is
re-created at *its last delivered revision + 1*: no event lost, none
repeated, order kept. If that revision has been compacted meanwhile, the
watch ends with :class:`~etcdfast.errors.CompactedError` carrying the compact
revision. It also holds the reconnect policy (:meth:`WatchHub.broke`).

The drivers (``_sync.watch``, ``aio.watch``) move bytes between the hub and
the stream and hand each watch's items to its consumer; :class:`WatchHandle`
is what their ``Watch`` classes share.
"""

from __future__ import annotations

import collections
import logging
from typing import Any, Deque, Dict, Generic, List, Optional, Protocol, Union

from .. import _codec
from ..api.watch import ItemT, WatchItem, WatchSpec
from ..errors import (
    AuthOldRevisionError,
    CompactedError,
    EtcdError,
    InvalidAuthTokenError,
    NoLeaderError,
    PermissionDeniedError,
    ReauthenticatingError,
    Timeout,
    Unavailable,
    classify,
    show_key,
)
from ..types import Event, Progress, WatchResponse
from .backoff import Backoff

__all__ = [
    "WatchHub", "WatchState", "WatchHandle", "WatchItem", "ItemT", "CREATED", "END", "RECONNECT_TIMEOUT",
]

log = logging.getLogger("etcdfast.watch")

#: Delivered once when the server confirms a watch's (first) creation.
CREATED = object()
#: Delivered when a watch ends because its owner cancelled it.
END = object()

#: How long a broken stream is retried before its watches end with Unavailable.
RECONNECT_TIMEOUT = 60.0


class Sink(Protocol):
    """Where the hub delivers a watch's items (a queue in each driver)."""

    def deliver(self, item: object) -> None: ...


class WatchState:
    """One watch inside the hub."""

    __slots__ = ("spec", "sink", "cursor", "watch_id", "fragments", "cancelling", "confirmed",
                 "retried_login", "ended")

    def __init__(self, spec: WatchSpec[Any], sink: Sink) -> None:
        self.spec = spec
        self.sink = sink
        self.cursor = _codec.revision.WatchCursor(spec.start_revision)
        self.watch_id: Optional[int] = None
        self.fragments: List[Event] = []
        self.cancelling = False
        self.confirmed = False  # the server created it at least once
        self.retried_login = False
        self.ended = False  # END or an error was delivered

    def finish(self, item: object) -> None:
        """Deliver the watch's last item (END or an error), once."""
        if not self.ended:
            self.ended = True
            self.sink.deliver(item)


class WatchHub:
    """The watch protocol of one client, independent of threads or asyncio.

    Creates are answered in the order they were sent (etcd handles a stream's
    requests one by one), so pending creates wait in a FIFO and the next
    ``created`` answer belongs to the oldest one -- even when it is a failure
    carrying watch ID -1. A create is never taken out of that FIFO before
    its answer arrives (a creation that timed out or was cancelled stays, and
    is cancelled on the server when its answer comes): taking it out would
    hand its answer, and its events, to the next watch.
    """

    def __init__(self, authenticated: bool = False, reconnect_timeout: float = RECONNECT_TIMEOUT) -> None:
        self._pending: Deque[WatchState] = collections.deque()
        self._active: Dict[int, WatchState] = {}
        #: The client logs in with a password (its stream token can expire).
        self.authenticated = authenticated
        self.reconnect_timeout = reconnect_timeout
        self._backoff = Backoff()
        self._failing_since: Optional[float] = None

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
        """Cancel a watch; returns the cancel request to send, if one is needed now.

        A created watch ends when the server confirms the cancel. One whose
        creation is still unanswered ends at once for its consumer and is
        cancelled on the server when that answer arrives (or dropped if the
        stream breaks first).
        """
        if state.cancelling or state.ended:
            return None
        state.cancelling = True
        if state.watch_id is not None and self._active.get(state.watch_id) is state:
            return _codec.watch.encode_watch_cancel(state.watch_id)
        state.finish(END)
        if state not in self._pending:  # never registered, or already gone
            self._remove(state)
        return None

    def connect(self) -> List[bytes]:
        """A new stream is opening: the create requests to send first, one per
        live watch, each at its resume revision. Cancelled watches are dropped."""
        live = [s for s in self.states() if not s.cancelling]
        for state in self.states():
            if state.cancelling:
                state.finish(END)
        self._pending.clear()
        self._active.clear()
        requests = []
        for state in live:
            state.watch_id = None
            state.fragments = []  # the server re-sends whole responses
            requests.append(self.add(state))
            if state.confirmed:
                log.debug("resuming the watch on %r from revision %d",
                          state.spec.key, state.cursor.next_revision or state.spec.start_revision)
        resumed = sum(s.confirmed for s in live)
        if resumed:
            log.info("watch stream reopened: resuming %d watch(es) where they stopped", resumed)
        return requests

    def fail(self, error: EtcdError, only_unconfirmed: bool = False) -> None:
        """End watches with ``error`` (a cancelled one just ends): all, or those never created yet."""
        for state in self.states():
            if only_unconfirmed and state.confirmed:
                continue
            self._remove(state)
            state.finish(END if state.cancelling else error)

    def broke(self, error: EtcdError, now: float) -> Optional[float]:
        """The stream broke with ``error``: seconds to wait before reconnecting,
        or None when no watch is left to resume.

        Availability problems are retried (watches resume where they were)
        for ``reconnect_timeout`` seconds of continuous failure; watches never
        created yet fail at once, since they have nothing to resume. Any
        other error (permission denied...), and NoLeaderError, ends every watch.
        """
        if self._failing_since is None:
            self._failing_since = now
        down_for = now - self._failing_since
        # A watch being cancelled has nothing to resume: its server side died
        # with the stream. End it now rather than after a reconnect.
        for state in self.states():
            if state.cancelling:
                self._remove(state)
                state.finish(END)
        if isinstance(error, ReauthenticatingError) or error.code == "CANCELLED":
            # Nothing is wrong with the watches themselves: a new login, or
            # the channel was retired after an endpoint sync. Reconnect.
            pass
        elif not isinstance(error, (Unavailable, Timeout)) or isinstance(error, NoLeaderError):
            # NoLeaderError comes only with require_leader=True: the member lost
            # its leader, which the caller asked to hear about. Reconnecting
            # would only retry the same refusal for reconnect_timeout; end the
            # watches as Go's clientv3 does -- a re-watch from watch.revision
            # resumes where they stopped, on a member that has a leader.
            self.fail(error)
        else:
            self.fail(error, only_unconfirmed=True)
            if down_for > self.reconnect_timeout:
                self.fail(Unavailable(
                    f"watch stream down for over {self.reconnect_timeout:.0f} s: {error}",
                    endpoint=getattr(error, "endpoint", None),
                ))
        if not len(self):
            self._failing_since = None
            self._backoff.reset()
            return None
        log.debug("watch stream broke (%s); reconnecting", error)
        return self._backoff.next_delay()

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
        if self._failing_since is not None:  # the stream works again
            self._failing_since = None
            self._backoff.reset()
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
        if state.ended:  # cancelled by its owner, who has its END: drop what still comes
            return []
        if response.fragment:
            state.fragments.extend(response.events)
            return []
        events = response.events
        if state.fragments:  # rare: the fragments' records, built, then this part's
            events = [*state.fragments, *events]
            state.fragments = []
        if events:
            accepted = state.cursor.accept(events)
            if accepted:
                if accepted is not response.events:
                    response = response._replace(events=accepted, fragment=False)
                if state.spec.transform is not None:  # a view's (a namespace strips its prefix)
                    response = state.spec.transform(response)
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
            if not state.cancelling and not state.retried_login and (
                    stale or (self.authenticated and issubclass(cls, PermissionDeniedError))):
                state.retried_login = True
                self._pending.appendleft(state)
                # The driver logs in again and re-creates every watch, this one too.
                raise InvalidAuthTokenError(message, details=response.cancel_reason)
            state.finish(END if state.cancelling else cls(message, details=response.cancel_reason))
            return []
        state.watch_id = response.watch_id
        state.retried_login = False
        self._active[response.watch_id] = state
        state.cursor.created(response.header.revision)
        if not state.confirmed:
            state.confirmed = True
            if not state.ended:
                state.sink.deliver(CREATED)
        if state.cancelling:
            return [_codec.watch.encode_watch_cancel(response.watch_id)]
        return []

    def _canceled(self, state: WatchState, response: WatchResponse) -> None:
        self._remove(state)
        if state.cancelling:  # what its owner asked for, whatever the reason given
            state.finish(END)
        elif response.compact_revision:
            state.cursor.compacted(response.compact_revision)
            state.finish(CompactedError(
                f"watch on {show_key(state.spec.key)} cannot continue: revision "
                f"{state.cursor.next_revision or state.spec.start_revision} has been compacted",
                compact_revision=response.compact_revision,
            ))
        else:
            reason = response.cancel_reason or "watch canceled by the server"
            cls, message = classify("UNKNOWN", reason)
            state.finish(cls(message, details=reason))

    def _broadcast_progress(self, revision: int) -> None:
        # A progress answer to request_progress() is for the whole stream.
        for state in self._active.values():
            state.cursor.progress(revision)
            if state.spec.progress_notify:
                state.sink.deliver(Progress(revision))


class WatchHandle(Generic[ItemT]):
    """What the sync ``Watch`` and the ``AsyncWatch`` share: the hub state and
    the meaning of the items a consumer takes from its queue.

    ``ItemT`` is what iterating yields: :class:`~etcdfast.types.Event`, or
    ``Event | Progress`` for a watch made with ``progress_notify=True``.
    """

    def __init__(self, spec: WatchSpec[ItemT]) -> None:
        self.spec = spec
        self._state = WatchState(spec, self)
        self._done = False
        #: The exception that ended the watch, if any.
        self.error: Optional[BaseException] = None

    #: Set when the server confirmed the creation, or the watch ended first
    #: (a threading.Event or an asyncio.Event: each driver's own).
    _created: Any

    def _enqueue(self, item: object) -> None:  # pragma: no cover - each driver's queue
        raise NotImplementedError

    def deliver(self, item: object) -> None:
        """The hub's delivery: a response, a progress, END or the error that ends the watch."""
        if item is CREATED:
            self._created.set()
            return
        if item is END or isinstance(item, BaseException):
            self._created.set()  # wake a creator still waiting
        self._enqueue(item)

    @property
    def revision(self) -> int:
        """The revision the watch would resume from (last delivered + 1)."""
        return int(self._state.cursor.next_revision)

    @property
    def compact_revision(self) -> int:
        """The compact revision the server reported (0 if none)."""
        return int(self._state.cursor.compact_revision)

    @property
    def progress_revision(self) -> int:
        """The highest revision known to be completely delivered (0 if none)."""
        return int(self._state.cursor.progress_revision)

    def _take(self, item: object) -> Optional[Union[WatchResponse, Progress]]:
        """A queue item for the consumer: a response or a progress; None at the
        end; an error that ended the watch is raised (and kept in ``error``)."""
        if item is END:
            self._done = True
            return None
        if isinstance(item, BaseException):
            self._done = True
            self.error = item
            raise item
        return item  # type: ignore[return-value]

    @staticmethod
    def _items(item: Union[WatchResponse, Progress]) -> List[ItemT]:
        """The consumer-facing items of one queue item."""
        if isinstance(item, Progress):
            return [item]  # type: ignore[list-item]
        return item.events  # type: ignore[return-value]

    def _created_error(self) -> bool:
        """After the creation wait: True if the creation failed (its error is queued)."""
        return self._state.watch_id is None and self._state.ended

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.spec.key!r} next_revision={self.revision}>"
