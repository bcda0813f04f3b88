"""Client methods made from request builders: the method table of both clients.

A builder (``api.kv.get``...) validates the caller's arguments and returns
what to execute; a *verb* of the client's executor executes it. The methods
below glue the two, copying the builder's name, docstring and signature, so
``help(client.get)`` and IDEs show the real options and every option is
written once -- in the builder -- for ``Client`` and ``AsyncClient`` alike.

* :func:`sync_unary` / :func:`async_unary`: the builder returns a Request;
  the client's ``_run`` executes it (the common case).
* :func:`sync_method` / :func:`async_method`: any builder and any verb
  (streams, pagers, plans of several calls...).

``secret=True`` is for calls whose arguments hold a password: the method lets
go of its arguments before executing and wipes the payload once the call
ended, so no frame of a traceback the call raises (as captured with locals by
error trackers) holds it.
"""

from __future__ import annotations

import functools
import inspect
import sys
from typing import Any, Awaitable, Callable, Optional, TypeVar

from ..api.plan import Plan
from ..api.request import Request

if sys.version_info >= (3, 10):
    from typing import Concatenate, ParamSpec
else:  # pragma: no cover - Python 3.9
    from typing_extensions import Concatenate, ParamSpec

__all__ = [
    "sync_unary", "async_unary", "sync_method", "async_method", "sync_plan", "async_plan",
    "bind_signature", "P", "Concatenate",
]

P = ParamSpec("P")
T = TypeVar("T")
B = TypeVar("B")
S = TypeVar("S")


def bind_signature(build: Callable[..., Any], method: Callable[..., Any], returns: str,
          doc: Optional[str]) -> None:
    # Present the builder's own name, docs and signature (plus ``self``).
    functools.update_wrapper(method, build)
    del method.__wrapped__  # type: ignore[attr-defined]
    if doc is not None:
        method.__doc__ = doc
    sig = inspect.signature(build)
    self_param = inspect.Parameter("self", inspect.Parameter.POSITIONAL_ONLY)
    method.__signature__ = sig.replace(  # type: ignore[attr-defined]
        parameters=[self_param, *sig.parameters.values()], return_annotation=returns
    )


def _result_name(build: Callable[..., Any]) -> str:
    # "Request[GetResult]" -> "GetResult", for the signature shown to users.
    annotation = str(inspect.signature(build).return_annotation)
    if annotation.startswith("Request[") and annotation.endswith("]"):
        return annotation[len("Request["):-1]
    return annotation


def sync_unary(
    build: Callable[P, Request[T]], *, secret: bool = False
) -> Callable[Concatenate[Any, P], T]:
    """A ``Client`` method: build the Request, run it, return its result."""

    def method(self: Any, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return self._run(build(*args, **kwargs))  # type: ignore[no-any-return]

    def secret_method(self: Any, /, *args: P.args, **kwargs: P.kwargs) -> T:
        request = build(*args, **kwargs)
        del args, kwargs
        try:
            return self._run(request)  # type: ignore[no-any-return]
        finally:
            request.payload = b""

    chosen = secret_method if secret else method
    bind_signature(build, chosen, _result_name(build), None)
    return chosen


def async_unary(
    build: Callable[P, Request[T]], *, secret: bool = False
) -> Callable[Concatenate[Any, P], Awaitable[T]]:
    """An ``AsyncClient`` coroutine method: build the Request, await its result."""

    async def method(self: Any, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return await self._run(build(*args, **kwargs))  # type: ignore[no-any-return]

    async def secret_method(self: Any, /, *args: P.args, **kwargs: P.kwargs) -> T:
        request = build(*args, **kwargs)
        del args, kwargs
        try:
            return await self._run(request)  # type: ignore[no-any-return]
        finally:
            request.payload = b""

    chosen = secret_method if secret else method
    bind_signature(build, chosen, f"Awaitable[{_result_name(build)}]", None)
    return chosen


def sync_method(
    build: Callable[P, B], verb: Callable[[Any, B], T], *, returns: str, doc: Optional[str] = None
) -> Callable[Concatenate[Any, P], T]:
    """A ``Client`` method: ``verb(self, build(...))``."""

    def method(self: Any, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return verb(self, build(*args, **kwargs))

    bind_signature(build, method, returns, doc)
    return method


def async_method(
    build: Callable[P, B], verb: Callable[[Any, B], Awaitable[T]], *, returns: str,
    doc: Optional[str] = None,
) -> Callable[Concatenate[Any, P], Awaitable[T]]:
    """An ``AsyncClient`` coroutine method: ``await verb(self, build(...))``."""

    async def method(self: Any, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return await verb(self, build(*args, **kwargs))

    bind_signature(build, method, f"Awaitable[{returns}]", doc)
    return method


def sync_plan(plan: Callable[Concatenate[S, P], "Plan[T]"]) -> Callable[Concatenate[S, P], T]:
    """A method of a recipe handle (a Mutex...): the plan its state makes, run
    by the handle's client (``self._client``)."""

    def method(self: Any, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return self._client._run_plan(plan(self, *args, **kwargs))  # type: ignore[no-any-return]

    _bind_plan(plan, method, _plan_result(plan))
    return method


def async_plan(plan: Callable[Concatenate[S, P], "Plan[T]"]) -> Callable[Concatenate[S, P], Awaitable[T]]:
    """The asyncio :func:`sync_plan`: a coroutine method."""

    async def method(self: Any, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return await self._client._run_plan(plan(self, *args, **kwargs))  # type: ignore[no-any-return]

    _bind_plan(plan, method, f"Awaitable[{_plan_result(plan)}]")
    return method


def _bind_plan(plan: Callable[..., Any], method: Callable[..., Any], returns: str) -> None:
    # ``MutexState.lock_plan`` becomes ``Mutex.lock``: same docs and parameters
    # (its own ``self`` included), named without the suffix.
    functools.update_wrapper(method, plan)
    del method.__wrapped__  # type: ignore[attr-defined]
    method.__name__ = plan.__name__.removesuffix("_plan")
    method.__qualname__ = method.__qualname__.removesuffix("_plan")
    method.__signature__ = inspect.signature(plan).replace(  # type: ignore[attr-defined]
        return_annotation=returns)


def _plan_result(plan: Callable[..., Any]) -> str:
    annotation = str(inspect.signature(plan).return_annotation).strip("'\"")
    if annotation.startswith("Plan[") and annotation.endswith("]"):
        return annotation[len("Plan["):-1]
    return annotation
