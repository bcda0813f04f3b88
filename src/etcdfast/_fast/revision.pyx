"""Revision bookkeeping (Cython twin of ``_pure/revision.py``)."""

from cpython.list cimport PyList_GET_SIZE
from cpython.long cimport PyLong_AsLongLongAndOverflow, PyLong_CheckExact
from cpython.tuple cimport PyTuple_GET_ITEM, PyTuple_GET_SIZE
from libc.stdint cimport INT64_MAX, int64_t

from .buffer cimport as_int64
from .records cimport Events

from ..types import Event, KeyValue, Records

__all__ = ["RevisionTracker", "WatchCursor"]


cdef class RevisionTracker:
    """Highest header revision seen; ``observe`` never moves it backwards."""

    def __init__(self, int64_t start=0):
        self._last = start

    cpdef void observe(self, int64_t revision):
        """Record a header revision."""
        # Atomic under the GIL: no Python code runs between compare and store.
        if revision > self._last:
            self._last = revision

    @property
    def last(self):
        """The highest revision observed so far (0 before any response)."""
        return self._last

    def __repr__(self):
        return f"RevisionTracker(last={self._last})"


cdef enum:
    EVENT_KV = 1          # Event.kv
    KV_MOD_REVISION = 2   # KeyValue.mod_revision


cdef object _revision_of(object event):
    """``event.kv.mod_revision``: straight from the tuples for our own records,
    by attribute for anything else (what the pure twin's attrgetter does)."""
    cdef object kv
    if type(event) is Event and PyTuple_GET_SIZE(event) > EVENT_KV:
        kv = <object>PyTuple_GET_ITEM(event, EVENT_KV)
        if type(kv) is KeyValue and PyTuple_GET_SIZE(kv) > KV_MOD_REVISION:
            return <object>PyTuple_GET_ITEM(kv, KV_MOD_REVISION)
    return event.kv.mod_revision


cdef int _before(object revision, int64_t first) except -1:
    """``revision < first`` with Python's semantics, in C for exact ints."""
    cdef int overflow
    cdef long long value
    if PyLong_CheckExact(revision):
        value = PyLong_AsLongLongAndOverflow(revision, &overflow)
        if overflow != 0:  # beyond int64: below any int64 iff negative
            return overflow < 0
        return value < first
    if revision < first:  # truthiness, as ``not ...`` and ``any()`` in the pure twin
        return True
    return False


cdef inline int64_t _plus_one(int64_t revision) except? -1:
    if revision == INT64_MAX:
        raise OverflowError("value out of int64 range")
    return revision + 1


cdef class WatchCursor:
    """Where one watch stands: the revision to resume from, and what is known.

    Fed by the watch stream's reader, one call per response. Revisions are
    int64, as in etcd: arguments outside that range raise OverflowError.
    """

    def __init__(self, start_revision=0):
        self._next = as_int64(start_revision)

    @property
    def next_revision(self):
        """The revision a resumed watch must start from (0: from now, not known yet)."""
        return self._next

    @property
    def compact_revision(self):
        """The compact revision the server reported for this watch (0 if none)."""
        return self._compact

    @property
    def progress_revision(self):
        """The highest revision known to be completely delivered (0 if none)."""
        return self._progress

    def created(self, header_revision):
        """The server confirmed the watch at ``header_revision``.

        A watch that started "now" has seen everything up to that revision,
        so it resumes after it.
        """
        cdef int64_t revision = as_int64(header_revision)
        if self._next == 0:
            self._next = _plus_one(revision)

    def accept(self, events):
        """The events of one (merged) response that are new to this watch.

        ``events`` is a list of events or a response's ``Events``. After a
        resume the server may send again what was already delivered: once
        ``next_revision`` is known, events below it are dropped. The same
        object comes back when nothing was dropped (the usual case: no copy on
        the hot path); else a new one of its kind. The cursor then moves past
        the last event delivered; it never moves backwards.
        """
        if type(events) is Events:
            return self._accept_records(<Events>events)
        if isinstance(events, Records):  # the other twin's: as the list of its events
            events = list(events)
        if type(events) is not list:
            raise TypeError(f"expected list, got {type(events).__name__}")
        return self._accept_list(<list>events)

    cdef object _accept_records(self, Events events):
        # The revisions are in the index: no record is built here.
        cdef int64_t first = self._next
        cdef Py_ssize_t i, n = events._n
        if n == 0:
            return events
        if first > 0:
            for i in range(n):
                if events._revisions[i] < first:
                    events = events.since(first)
                    n = events._n
                    if n == 0:
                        return events
                    break
        cdef int64_t resume = _plus_one(events._revisions[n - 1])
        if resume > self._next:
            self._next = resume
        if resume - 1 > self._progress:
            self._progress = resume - 1
        return events

    cdef object _accept_list(self, list events):
        cdef int64_t first = self._next
        cdef object event
        if PyList_GET_SIZE(events) == 0:
            return events
        if first > 0:
            # Cython's list loop re-reads the size and owns each item, so
            # attribute lookups on foreign objects cannot pull items away.
            for event in events:
                if _before(_revision_of(event), first):
                    events = [event for event in events if not _before(_revision_of(event), first)]
                    break
        cdef Py_ssize_t n = PyList_GET_SIZE(events)
        if n == 0:
            return events
        # Through Python arithmetic, as the pure twin: a non-int revision is a
        # TypeError, one past int64 an OverflowError, before any state changes.
        cdef int64_t resume = as_int64(_revision_of(events[n - 1]) + 1)
        if resume > self._next:
            self._next = resume
        if resume - 1 > self._progress:
            self._progress = resume - 1
        return events

    def progress(self, header_revision):
        """A progress notification: everything up to ``header_revision`` was sent."""
        cdef int64_t revision = as_int64(header_revision)
        cdef int64_t resume = _plus_one(revision)
        if revision > self._progress:
            self._progress = revision
        if resume > self._next:
            self._next = resume

    def compacted(self, compact_revision):
        """The server cancelled the watch: revisions before ``compact_revision`` are gone."""
        self._compact = as_int64(compact_revision)

    def __repr__(self):
        return (
            f"WatchCursor(next_revision={self._next}, progress_revision={self._progress}, "
            f"compact_revision={self._compact})"
        )
