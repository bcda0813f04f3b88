"""Revision bookkeeping (pure-Python twin of ``_fast/revision.pyx``).

A client remembers the highest store revision any response header carried.
Watches resume from it and ordered reads compare against it, so it must only
ever move forward, even when responses arrive out of order on several threads.
"""

from __future__ import annotations

import threading

__all__ = ["RevisionTracker"]


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
