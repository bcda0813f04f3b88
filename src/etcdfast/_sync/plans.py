"""The sync plan runner: performs a plan's steps (see ``etcdfast.api.plan``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterator, List, Optional, TypeVar

from ..api.plan import Apply, CloseWatch, Emit, NextEvents, OpenWatch, Plan, PlanRun
from ..api.request import Request
from ..errors import EtcdError

if TYPE_CHECKING:
    from .client import Client
    from .watch import Watch

__all__ = ["run_plan", "iterate_plan"]

T = TypeVar("T")


def run_plan(client: "Client", plan: "Plan[T]") -> T:
    """Run a plan to its result."""
    result: List[Any] = []
    for value in iterate_plan(client, plan, result):
        raise TypeError(f"a plan run for its result emitted {value!r}")
    return result[0]  # type: ignore[no-any-return]


def iterate_plan(client: "Client", plan: "Plan[Any]", result: Optional[List[Any]] = None) -> Iterator[Any]:
    """Run a plan, yielding what it emits; its result goes to ``result``."""
    run = PlanRun(plan, client._clock)
    watches: List[Any] = []
    try:
        while (step := run.next_step()) is not None:
            if type(step) is Emit:
                yield step.value
                continue
            try:
                run.answered(_perform(client, step, run.time_left(), watches))
            except BaseException as exc:  # noqa: B036 - into the plan, which cleans up and re-raises
                run.failed(exc)
        if result is not None:
            result.append(run.result)
    finally:
        run.close()
        for watch in watches:
            watch.cancel()


def _perform(client: "Client", step: Any, left: Optional[float], watches: List["Watch[Any]"]) -> Any:
    if isinstance(step, Request):
        if left is not None and (step.timeout is None or step.timeout > left):
            step.timeout = left
        return client._run(step)
    if type(step) is NextEvents:
        events = step.watch.get(timeout=left)
        if not events:
            raise EtcdError("a watch of the operation ended")
        return events
    if type(step) is OpenWatch:
        watch = client.watch(step.key, range_end=step.range_end or None,
                             start_revision=step.start_revision, timeout=left)
        watches.append(watch)
        return watch
    if type(step) is CloseWatch:
        watches.remove(step.watch)
        step.watch.cancel()
        return None
    if type(step) is Apply:
        return step.function(step.argument)
    raise TypeError(f"not a plan step: {step!r}")
