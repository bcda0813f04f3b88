"""A small terminal progress bar: count, rate and ETA on one redrawn line.

::

    with ProgressBar(total=100_000, label="load", unit="keys") as bar:
        for batch in batches:
            write(batch)
            bar.advance(len(batch))

It draws only when the stream is a terminal (``enabled=None`` asks
``stream.isatty()``), so piped or redirected output never gets ``\\r``
artefacts; ``enabled=False`` forces it off (``--no-progress``). Redraws are
rate-limited to ``max_rate`` per second (10 by default), so calling
:meth:`ProgressBar.advance` once per key costs a counter increment and a clock
read. It is thread-safe: bulk writers report from their worker threads.
"""

from __future__ import annotations

import collections
import shutil
import sys
import threading
import time
from types import TracebackType
from typing import Callable, Deque, Optional, TextIO, Tuple, Type

__all__ = ["ProgressBar", "format_duration", "format_count", "format_bytes"]

# Seconds of recent history the rate (and so the ETA) is measured over.
_RATE_WINDOW = 3.0
_BAR_WIDTH = 25


def format_count(n: float) -> str:
    """``1234567`` -> ``'1.23M'``; small numbers stay exact."""
    n = float(n)
    if abs(n) < 10_000:
        return f"{n:.0f}" if n == int(n) else f"{n:.1f}"
    for unit, scale in (("k", 1e3), ("M", 1e6), ("G", 1e9)):
        scaled = n / scale
        if abs(scaled) < 999.5 or unit == "G":
            break
    return f"{scaled:.3g}{unit}"


def format_bytes(n: float) -> str:
    """``1536000`` -> ``'1.5 MB'`` (SI units, as etcdctl prints sizes)."""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 999.5 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.3g} {unit}"
        n /= 1000.0
    return f"{n:.3g} TB"  # pragma: no cover - the loop always returns


def format_duration(seconds: Optional[float]) -> str:
    """``75`` -> ``'1:15'``, ``3700`` -> ``'1:01:40'``; ``None`` -> ``'--:--'``."""
    if seconds is None or seconds != seconds or seconds < 0 or seconds > 360000:
        return "--:--"
    whole = int(seconds + 0.5)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class ProgressBar:
    """One progress line on ``stream`` (default: ``sys.stderr``).

    ``total`` may be ``None`` (unknown: no bar, no ETA, just count and rate).
    """

    def __init__(
        self,
        total: Optional[int] = None,
        *,
        label: str = "",
        unit: str = "",
        stream: Optional[TextIO] = None,
        enabled: Optional[bool] = None,
        max_rate: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream: TextIO = stream if stream is not None else sys.stderr
        if enabled is None:
            isatty = getattr(self.stream, "isatty", None)
            enabled = bool(isatty()) if isatty is not None else False
        self.enabled = enabled
        self.total = total
        self.label = label
        self.unit = unit
        self.done = 0
        self._clock = clock
        self._interval = 1.0 / max_rate if max_rate > 0 else 0.0
        self._start = clock()
        self._last_draw = float("-inf")
        self._samples: Deque[Tuple[float, int]] = collections.deque([(self._start, 0)])
        self._rate: Optional[float] = None
        self._width = 0  # characters drawn on the current line
        self._lock = threading.Lock()
        self._closed = False

    # -- reporting -----------------------------------------------------------

    def advance(self, n: int = 1) -> None:
        """Count ``n`` more units done."""
        with self._lock:
            self.done += n
            self._maybe_draw()

    def update(self, done: int) -> None:
        """Set the number of units done (for callers that report totals)."""
        with self._lock:
            self.done = done
            self._maybe_draw()

    def _maybe_draw(self) -> None:
        if not self.enabled or self._closed:
            return
        now = self._clock()
        if now - self._last_draw < self._interval:
            return
        self._sample(now)
        self._draw(now)

    def _sample(self, now: float) -> None:
        # The rate is measured over the last _RATE_WINDOW seconds (samples are
        # taken at each redraw), so it follows a change of speed without the
        # lag of an average over the whole run.
        samples = self._samples
        samples.append((now, self.done))
        while len(samples) > 2 and now - samples[1][0] >= _RATE_WINDOW:
            samples.popleft()
        first_time, first_done = samples[0]
        if now > first_time:
            self._rate = (self.done - first_done) / (now - first_time)

    # -- rendering -----------------------------------------------------------

    @property
    def elapsed(self) -> float:
        return self._clock() - self._start

    def rate(self) -> Optional[float]:
        """Units per second: the recent (smoothed) rate, or the average so far."""
        if self._rate is not None:
            return self._rate
        elapsed = self.elapsed
        return self.done / elapsed if elapsed > 0 else None

    def eta(self) -> Optional[float]:
        """Seconds left at the current rate, or ``None`` when unknown."""
        rate = self.rate()
        if self.total is None or not rate or rate <= 0:
            return None
        return max(0.0, (self.total - self.done) / rate)

    def _amount(self, n: float) -> str:
        if self.unit == "B":  # bytes: 1.5 MB, as humans read sizes
            return format_bytes(n)
        return f"{n:,.0f}"

    def render(self, width: int = 80) -> str:
        """The progress line, at most ``width`` characters."""
        unit = f" {self.unit}" if self.unit and self.unit != "B" else ""
        rate = self.rate()
        if self.unit == "B":
            rate_text = f"{format_bytes(rate)}/s" if rate is not None else "- B/s"
        else:
            rate_text = f"{format_count(rate)}{unit}/s" if rate is not None else f"-{unit}/s"
        label = f"{self.label} " if self.label else ""
        if self.total:
            fraction = min(1.0, self.done / self.total)
            counts = f"{self._amount(self.done)}/{self._amount(self.total)}{unit}"
            tail = f" {fraction * 100:3.0f}% {counts} {rate_text} ETA {format_duration(self.eta())}"
            room = width - len(label) - len(tail) - 2
            if room >= _BAR_WIDTH:
                bar_width = _BAR_WIDTH  # fixed, so the bar does not jump as numbers grow
                filled = int(bar_width * fraction)
                return f"{label}[{'#' * filled}{'.' * (bar_width - filled)}]{tail}"[:width]
            return f"{label}{tail.lstrip()}"[:width]
        return f"{label}{self._amount(self.done)}{unit} {rate_text} {format_duration(self.elapsed)}"[:width]

    def _draw(self, now: float) -> None:
        self._last_draw = now
        width = max(20, shutil.get_terminal_size((80, 24)).columns - 1)
        line = self.render(width)
        pad = " " * max(0, self._width - len(line))
        try:
            self.stream.write(f"\r{line}{pad}")
            self.stream.flush()
        except (OSError, ValueError):  # terminal gone: stop drawing, keep counting
            self.enabled = False
            return
        self._width = len(line)

    def close(self, clear: bool = False) -> None:
        """Draw the final state and end the line (or erase it with ``clear=True``)."""
        with self._lock:
            if self._closed:
                return
            if self.enabled:
                now = self._clock()
                self._sample(now)
                if clear:
                    try:
                        self.stream.write("\r" + " " * self._width + "\r")
                        self.stream.flush()
                    except (OSError, ValueError):
                        pass
                else:
                    # The final line shows the average rate over the whole run.
                    self._rate = None
                    elapsed = now - self._start
                    if elapsed > 0:
                        self._rate = self.done / elapsed
                    self._draw(now)
                    try:
                        self.stream.write("\n")
                        self.stream.flush()
                    except (OSError, ValueError):
                        pass
            self._closed = True

    def __enter__(self) -> "ProgressBar":
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        # On an error the line is left as it was (it shows where things stopped).
        self.close()
