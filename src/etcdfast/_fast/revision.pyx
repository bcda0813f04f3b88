"""Revision bookkeeping (Cython twin of ``_pure/revision.py``)."""

from libc.stdint cimport int64_t

__all__ = ["RevisionTracker"]


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
