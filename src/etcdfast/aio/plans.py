"""The asyncio plan runner: performs a plan's steps (see ``etcdfast.api.plan``)."""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any, AsyncIterator, List, Optional, TypeVar

from ..api.plan import Apply, CloseWatch, Emit, NextEvents, OpenWatch, Plan, PlanRun
from ..api.request import Request
from ..errors import EtcdError

if TYPE_CHECKING:
    from .client import AsyncClient
    from .watch import AsyncWatch

__all__ = ["run_plan", "iterate_plan"]

T = TypeVar("T")


async def run_plan(client: "AsyncClient", plan: "Plan[T]") -> T:
    """Run a plan to its result."""
    result: List[Any] = []
    async for value in iterate_plan(client, plan, result):
        raise TypeError(f"a plan run for its result emitted {value!r}")
    return result[0]  # type: ignore[no-any-return]


async def iterate_plan(client: "AsyncClient", plan: "Plan[Any]",
                       result: Optional[List[Any]] = None) -> AsyncIterator[Any]:
    """Run a plan, yielding what it emits; its result goes to ``result``. A
    cancelled task cleans up as any failure does, then stays cancelled."""
    run = PlanRun(plan, client._clock)
    watches: List[Any] = []
    try:
        while (step := run.next_step()) is not None:
            if type(step) is Emit:
                yield step.value
                continue
            try:
                run.answered(await _perform(client, step, run.time_left(), watches))
            except BaseException as exc:  # noqa: B036 - into the plan, which cleans up and re-raises
                run.failed(exc)
        if result is not None:
            result.append(run.result)
    finally:
        run.close()
        for watch in watches:
            await watch.cancel()


async def _perform(client: "AsyncClient", step: Any, left: Optional[float],
                   watches: List["AsyncWatch[Any]"]) -> Any:
    if isinstance(step, Request):
        if left is not None and (step.timeout is None or step.timeout > left):
            step.timeout = left
        return await client._run(step)
    if type(step) is NextEvents:
        events = await step.watch.get(timeout=left)
        if not events:
            raise EtcdError("a watch of the operation ended")
        return events
    if type(step) is OpenWatch:
        watch = await client.watch(step.key, range_end=step.range_end or None,
                                   start_revision=step.start_revision, timeout=left)
        watches.append(watch)
        return watch
    if type(step) is CloseWatch:
        watches.remove(step.watch)
        await step.watch.cancel()
        return None
    if type(step) is Apply:
        outcome = step.function(step.argument)
        return await outcome if inspect.isawaitable(outcome) else outcome
    raise TypeError(f"not a plan step: {step!r}")
