"""Plans: several calls and watches, as one sans-IO generator.

A recipe that needs more than one call -- a lock waits for the key before
it to go, an election watches its leader, a queue claims its first item --
is written once as a generator that *yields steps* and receives their
results. The clients' plan runners (``_sync.plans``, ``aio.plans``) perform
the steps with their executor and watches:

* a :class:`~etcdfast.api.request.Request` -> its decoded result;
* :class:`OpenWatch` -> an opaque watch token; :class:`NextEvents` -> the
  next events of that watch (blocking until some come);
  :class:`CloseWatch` -> None (the runner also closes, at the end, any watch
  a plan left open);
* :class:`Emit` -> None: hands a value to the consumer of a streaming plan
  (``Election.observe``) and resumes when the next one is wanted;
* :class:`Apply` -> None: runs the user's function (the STM's ``apply``).

Failures go *into* the plan: a step that raises (a call's error, the plan's
``timeout`` running out, Ctrl-C, a cancelled task) is thrown into the
generator at its ``yield``, so the plan can clean up -- a lock waiter deletes
its key -- with further steps, which then run without the plan's deadline,
before the error goes on to the caller. A plan never yields from a
``finally:`` or while handling ``GeneratorExit`` (a streaming plan is closed
when its consumer stops): watches it leaves open, the runner closes.
"""

from __future__ import annotations

from typing import Any, Callable, Generator, Generic, NamedTuple, Optional, Sequence, TypeVar

from .. import _codec
from ..errors import Timeout
from ..types import Event, EventType
from .request import NO_DEADLINE, check_timeout

__all__ = [
    "Plan", "Steps", "OpenWatch", "NextEvents", "CloseWatch", "Emit", "Apply",
    "wait_events", "prefix_end", "PlanRun",
]

T = TypeVar("T")

#: The generator of a plan: yields steps, receives their results, returns T.
Steps = Generator[Any, Any, T]


class Plan(Generic[T]):
    """Steps and the budget of the whole plan (``timeout`` seconds; None: each
    step has its own deadline, as any call)."""

    __slots__ = ("steps", "timeout")

    def __init__(self, steps: "Steps[T]", timeout: Optional[float] = None) -> None:
        self.steps = steps
        self.timeout = check_timeout(timeout)

    def deadline(self, now: float) -> Optional[float]:
        """When the plan's budget ends, for a plan started ``now`` (None: no budget)."""
        if self.timeout is None or self.timeout == NO_DEADLINE:
            return None
        return now + self.timeout


class PlanRun:
    """One run of a plan: the stepping both runners share.

    A runner loops: :meth:`next_step` (None once the plan returned: its value
    is :attr:`result`), performs the step -- inside a ``try`` that hands any
    failure to :meth:`failed`, and asks :meth:`time_left` there too -- and
    gives its result to :meth:`answered`; :meth:`close` at the end.
    """

    def __init__(self, plan: "Plan[Any]", clock: Callable[[], float]) -> None:
        self._steps = plan.steps
        self._clock = clock
        self._deadline = plan.deadline(clock())
        self._value: Any = None
        self._error: Optional[BaseException] = None
        self.result: Any = None

    def next_step(self) -> Any:
        """The plan's next step, or None when it returned."""
        try:
            if self._error is not None:
                step = self._steps.throw(self._error)
            else:
                step = self._steps.send(self._value)
        except StopIteration as done:
            self.result = done.value
            return None
        self._value = self._error = None
        return step

    def answered(self, value: Any) -> None:
        self._value = value

    def failed(self, error: BaseException) -> None:
        """A step failed: the error goes into the plan, and the clean-up steps
        it yields then run without the plan's deadline."""
        self._error, self._deadline = error, None

    def time_left(self) -> Optional[float]:
        """Seconds left of the plan's budget for the next step (None: no budget);
        Timeout once it ran out."""
        if self._deadline is None:
            return None
        left = self._deadline - self._clock()
        if left <= 0:
            raise Timeout("the operation's timeout ran out")
        return left

    def close(self) -> None:
        self._steps.close()


class OpenWatch(NamedTuple):
    """Watch ``[key, range_end)`` from ``start_revision`` (0: from now)."""

    key: bytes
    range_end: bytes = b""
    start_revision: int = 0


class NextEvents(NamedTuple):
    """The next batch of events of an open watch (a non-empty list)."""

    watch: Any


class CloseWatch(NamedTuple):
    watch: Any


class Emit(NamedTuple):
    """A value for the consumer of a streaming plan."""

    value: Any


class Apply(NamedTuple):
    """Run a user's function (the STM's ``apply``) on ``argument``; an asyncio
    runner awaits what it returns if that is awaitable."""

    function: Callable[[Any], Any]
    argument: Any


def wait_events(key: bytes, range_end: bytes, revision: int,
                types: Sequence[EventType]) -> "Steps[Event]":
    """Watch from ``revision`` until events of ``types`` have come in that order
    (contrib/recipes' ``WaitEvents``); returns the last one."""
    watch = yield OpenWatch(key, range_end, revision)
    matched = 0
    while True:
        for event in (yield NextEvents(watch)):
            if event.type == types[matched]:
                matched += 1
                if matched == len(types):
                    yield CloseWatch(watch)
                    return event  # type: ignore[no-any-return]


def prefix_end(prefix: bytes) -> bytes:
    """The range end of a prefix (the codec's rule, shared with ``prefix=True``)."""
    return _codec.keys.resolve_range(prefix, None, True, False)[1]

