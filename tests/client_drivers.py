"""Run one test body against both ``Client`` and ``AsyncClient``.

:class:`Driver` gives the async client a blocking face. The client lives on
the driver's own event loop, running on a thread of its own for the client's
whole life (one loop, as grpc.aio requires; running, so the client's tasks --
the watch reader, keep-alives, callbacks -- work while the test sleeps or
waits, as the sync client's threads do). Every call is made on that loop and
waited for; what the async client hands back is adapted the same way:

* an ``AsyncWatch`` / ``AsyncLease`` / async range iterator becomes a
  :class:`Facade`: its coroutine methods block, ``async with`` becomes
  ``with``, ``async for`` becomes ``for`` (``next()`` for async iterators),
  its attributes (``revision``, ``error``, ``alive``...) read through;
* an ``on_lost`` callback receives the façade the test holds, not the handle
  behind it.

The façades only adapt: each step is one call of the async object, on its
loop, in the order the test makes them. Tests then read the same for both
clients and cannot drift apart.

Use a Driver as a context manager: leaving it closes the client and (async)
stops its loop as ``asyncio.run`` would.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import threading
from typing import Any, AsyncIterator, Callable, Dict, Iterator, Optional, Set

import pytest

import etcdfast
from etcdfast.aio.bulk import AsyncRangeIterator, AsyncRangePages
from etcdfast.aio.lease import AsyncLease
from etcdfast.aio.watch import AsyncWatch

KINDS = ("sync", "async")

#: How long one blocking step may take before the test fails instead of hanging.
HANG_GUARD_S = 300.0

_ADAPTED = (AsyncWatch, AsyncLease, AsyncRangeIterator, AsyncRangePages)


class Driver:
    """A sync or async etcdfast client behind one blocking interface."""

    def __init__(self, kind: str, endpoint: str, **options: Any) -> None:
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
        self.kind = kind
        self.loop: Optional[asyncio.AbstractEventLoop] = None
        self._thread: Optional[threading.Thread] = None
        self._facades: Dict[int, "Facade"] = {}
        if kind == "sync":
            self.client: Any = etcdfast.Client(endpoint, **options)
            return
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="driver-loop", daemon=True)
        self._thread.start()
        try:
            self.client = self.call(etcdfast.AsyncClient, endpoint, **options)
        except BaseException:
            self._stop_loop()
            raise

    # -- the adapter -------------------------------------------------------------

    def call(self, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``function(*args, **kwargs)``, awaited if it answers an awaitable: on
        the driver's loop (async) or here (sync). Adapts what it answers."""
        if self.loop is None:
            return function(*args, **kwargs)
        assert threading.current_thread() is not self._thread, "a blocking call from the loop itself"

        async def step() -> Any:
            result = function(*args, **kwargs)
            if inspect.isawaitable(result):
                result = await result
            return result

        future = asyncio.run_coroutine_threadsafe(step(), self.loop)
        # Not future.result(timeout): etcdfast.Timeout is a TimeoutError too.
        if not concurrent.futures.wait([future], HANG_GUARD_S).done:
            future.cancel()
            pytest.fail(f"{function!r} did not return within {HANG_GUARD_S} s")
        return self._adapt(future.result())

    def run(self, value: Any) -> Any:
        """Await ``value`` on the driver's loop if it is awaitable."""
        if self.loop is not None and inspect.isawaitable(value):
            return self.call(lambda: value)
        return value

    def _adapt(self, value: Any) -> Any:
        if isinstance(value, AsyncIterator) and not isinstance(value, _ADAPTED):
            return Facade(self, value)  # an async generator: batches(), __aiter__()
        if not isinstance(value, _ADAPTED):
            return value
        facade = self._facades.get(id(value))
        if facade is None:
            facade = self._facades[id(value)] = Facade(self, value)  # the façade keeps it alive
        return facade

    def __getattr__(self, name: str) -> Any:
        if name == "client":  # not made (yet): no recursion
            raise AttributeError(name)
        attribute = getattr(self.client, name)
        if not callable(attribute):
            return attribute

        def method(*args: Any, **kwargs: Any) -> Any:
            on_lost = kwargs.get("on_lost")
            if self.loop is not None and on_lost is not None:
                kwargs["on_lost"] = lambda handle: on_lost(self._adapt(handle))
            return self.call(attribute, *args, **kwargs)

        return method

    def view(self, view: Any) -> "Driver":
        """A Driver face on ``view`` -- a view of this driver's client
        (``client.namespace(...)``, ``client.ordered()``) -- on the same
        loop. Closing it closes nothing: the view belongs to the client."""
        return _ViewDriver(self, view)

    # -- what differs by design ----------------------------------------------------

    def calling_thread(self) -> int:
        """The ident of the thread the client's methods run on: the caller's
        (sync), the event loop's (async)."""
        if self._thread is not None:
            return self._thread.ident  # type: ignore[return-value]
        return threading.get_ident()

    def workers(self) -> Set[Any]:
        """The client library's background workers running now: ``etcdfast-*``
        threads of the whole process (sync), ``etcdfast-*`` tasks on the
        driver's loop (async)."""
        if self.loop is None:
            return {t for t in threading.enumerate() if t.name.startswith("etcdfast-")}

        async def tasks() -> Set[Any]:
            return {t for t in asyncio.all_tasks() if t.get_name().startswith("etcdfast-")}

        return self.call(tasks)  # type: ignore[no-any-return]

    # -- lifecycle -------------------------------------------------------------------

    def close(self) -> None:
        """Close the client (idempotent, like the client's own ``close``)."""
        self.call(self.client.close)

    def _stop_loop(self) -> None:
        loop, thread = self.loop, self._thread
        if loop is None or thread is None or loop.is_closed():
            return

        async def shutdown() -> None:  # as asyncio.run ends
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await loop.shutdown_asyncgens()
            await loop.shutdown_default_executor()

        asyncio.run_coroutine_threadsafe(shutdown(), loop).result(HANG_GUARD_S)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(HANG_GUARD_S)
        loop.close()

    def __enter__(self) -> "Driver":
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.close()
        finally:
            self._stop_loop()

    def __repr__(self) -> str:
        return f"<Driver {self.kind} {self.client!r}>"


class _ViewDriver(Driver):
    """See :meth:`Driver.view`."""

    def __init__(self, parent: Driver, view: Any) -> None:  # no super(): no client of its own
        self.kind = parent.kind
        self.loop = parent.loop
        self._thread = parent._thread
        self._facades = parent._facades
        self.client = view

    def close(self) -> None:
        pass

    def _stop_loop(self) -> None:
        pass


class Facade:
    """An async handle of the driver's client (watch, lease, range iterator)
    behind the blocking interface of its sync twin."""

    def __init__(self, driver: Driver, handle: Any) -> None:
        self._driver = driver
        self._handle = handle

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._handle, name)
        if not callable(attribute):
            return attribute
        return lambda *args, **kwargs: self._driver.call(attribute, *args, **kwargs)

    def __iter__(self) -> Iterator[Any]:
        if hasattr(self._handle, "__anext__"):
            return self  # type: ignore[return-value]
        return self._driver.call(self._handle.__aiter__)  # type: ignore[no-any-return]

    def __next__(self) -> Any:
        try:
            return self._driver.call(self._handle.__anext__)
        except StopAsyncIteration:
            raise StopIteration from None

    def __enter__(self) -> Any:
        return self._driver.call(self._handle.__aenter__)

    def __exit__(self, *exc: object) -> Any:
        return self._driver.call(self._handle.__aexit__, *exc)

    def __repr__(self) -> str:
        return f"<Facade {self._handle!r}>"


def unwrap(value: Any) -> Any:
    """The async object behind a façade (anything else as it is)."""
    return value._handle if isinstance(value, Facade) else value
