"""Bounded, jittered exponential backoff for stream reconnects."""

from __future__ import annotations

import random

__all__ = ["Backoff"]


class Backoff:
    """Delays of ``initial * 2**n`` seconds, capped at ``maximum``, each drawn
    at random from its upper half (``[c/2, c]``: "equal jitter").

    Jitter spreads the reconnects of many clients after a server restart, so
    they do not all hit the new leader in the same millisecond; the lower
    bound keeps a backoff from collapsing to nothing.
    """

    __slots__ = ("initial", "maximum", "_attempt")

    def __init__(self, initial: float = 0.05, maximum: float = 2.0) -> None:
        self.initial = initial
        self.maximum = maximum
        self._attempt = 0

    def next_delay(self) -> float:
        """The delay before the next attempt; grows until :meth:`reset`."""
        ceiling = min(self.maximum, self.initial * (2 ** min(self._attempt, 30)))
        self._attempt += 1
        return random.uniform(ceiling / 2, ceiling)

    def reset(self) -> None:
        """Call after a success: the next failure starts from ``initial`` again."""
        self._attempt = 0
