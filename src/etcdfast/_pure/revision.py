"""Revision bookkeeping (pure-Python twin of ``_fast/revision.pyx``).

A client remembers the highest store revision any response header carried.
Watches resume from it and ordered reads compare against it, so it must only
ever move forward, even when responses arrive out of order on several threads.
Each watch also keeps its own cursor (:class:`WatchCursor`): where to resume
so that no event is lost or delivered twice.
"""

from __future__ import annotations

import threading
from itertools import compress, repeat
from operator import attrgetter, index, lt
from typing import Any, Sequence

from ..types import Event, Records
from .records import Events

__all__ = ["RevisionTracker", "WatchCursor"]

_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1


def _int64(value: Any) -> int:
    # Same contract as a C int64_t argument in the Cython twin (as_int64 in
    # buffer.pxd): integers only (a float is a TypeError), and in range.
    value = index(value)
    if not _INT64_MIN <= value <= _INT64_MAX:
        raise OverflowError("value out of int64 range")
    return value  # type: ignore[no-any-return]


class RevisionTracker:
    """Highest header revision seen; ``observe`` never moves it backwards."""

    __slots__ = ("_last", "_lock")

    def __init__(self, start: int = 0) -> None:
        self._last = start
        # The compare-and-set below is two bytecodes; without the lock two
        # threads could interleave and store the smaller revision last.
        self._lock = threading.Lock()

    def observe(self, revision: int) -> None:
        """Record a header revision."""
        if revision > self._last:
            with self._lock:
                if revision > self._last:
                    self._last = revision

    @property
    def last(self) -> int:
        """The highest revision observed so far (0 before any response)."""
        return self._last

    def __repr__(self) -> str:
        return f"RevisionTracker(last={self._last})"


_revision_of = attrgetter("kv.mod_revision")


class WatchCursor:
    """Where one watch stands: the revision to resume from, and what is known.

    Fed by the watch stream's reader, one call per response, so it needs no
    lock (a watch's responses are handled by one reader at a time). Revisions
    are int64, as in etcd: arguments outside that range raise OverflowError.
    """

    __slots__ = ("_next", "_compact", "_progress")

    def __init__(self, start_revision: int = 0) -> None:
        self._next = _int64(start_revision)
        self._compact = 0
        self._progress = 0

    @property
    def next_revision(self) -> int:
        """The revision a resumed watch must start from (0: from now, not known yet)."""
        return self._next

    @property
    def compact_revision(self) -> int:
        """The compact revision the server reported for this watch (0 if none)."""
        return self._compact

    @property
    def progress_revision(self) -> int:
        """The highest revision known to be completely delivered (0 if none)."""
        return self._progress

    def created(self, header_revision: int) -> None:
        """The server confirmed the watch at ``header_revision``.

        A watch that started "now" has seen everything up to that revision,
        so it resumes after it.
        """
        header_revision = _int64(header_revision)
        if self._next == 0:
            self._next = _int64(header_revision + 1)

    def accept(self, events: Sequence[Event]) -> Sequence[Event]:
        """The events of one (merged) response that are new to this watch.

        ``events`` is a list of events or a response's ``Events``. After a
        resume the server may send again what was already delivered: once
        ``next_revision`` is known, events below it are dropped. The same
        object comes back when nothing was dropped (the usual case: no copy on
        the hot path); else a new one of its kind. The cursor then moves past
        the last event delivered; it never moves backwards.
        """
        if isinstance(events, Records) and type(events) is not Events:
            events = list(events)  # the other twin's
        if type(events) is Events:
            revisions = list(map(_revision_of, events._all()))
        elif type(events) is list:
            revisions = list(map(_revision_of, events))
        else:
            raise TypeError(f"expected list, got {type(events).__name__}")
        if not revisions:
            return events
        first = self._next
        # Per event, the same test as the Cython twin (revision < first), as
        # C-level map calls: cheap enough to run on every response.
        if first > 0 and any(map(lt, revisions, repeat(first))):
            kept = [not revision < first for revision in revisions]
            if type(events) is Events:
                events = Events(list(compress(events._messages, kept)))  # rebuilt on access
            else:
                events = list(compress(events, kept))
            revisions = list(compress(revisions, kept))
            if not revisions:
                return events
        resume = _int64(revisions[-1] + 1)
        if resume > self._next:
            self._next = resume
        if resume - 1 > self._progress:
            self._progress = resume - 1
        return events

    def progress(self, header_revision: int) -> None:
        """A progress notification: everything up to ``header_revision`` was sent."""
        header_revision = _int64(header_revision)
        resume = _int64(header_revision + 1)
        if header_revision > self._progress:
            self._progress = header_revision
        if resume > self._next:
            self._next = resume

    def compacted(self, compact_revision: int) -> None:
        """The server cancelled the watch: revisions before ``compact_revision`` are gone."""
        self._compact = _int64(compact_revision)

    def __repr__(self) -> str:
        return (
            f"WatchCursor(next_revision={self._next}, progress_revision={self._progress}, "
            f"compact_revision={self._compact})"
        )
