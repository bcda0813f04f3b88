"""Run one test body against both ``Client`` and ``AsyncClient``.

:class:`Driver` gives the async client a blocking face: every coroutine
method is run to completion on the driver's own event loop (the same loop
for the client's whole life, as grpc.aio requires). Tests then read the same
for both clients and cannot drift apart.
"""

from __future__ import annotations

import asyncio
import inspect
from typing import Any, Callable, Optional

import etcdfast


class Driver:
    """A sync or async etcdfast client behind one blocking interface."""

    def __init__(self, kind: str, endpoint: str, **options: Any) -> None:
        self.kind = kind
        self.loop: Optional[asyncio.AbstractEventLoop] = None
        if kind == "sync":
            self.client: Any = etcdfast.Client(endpoint, **options)
        else:
            self.loop = asyncio.new_event_loop()
            self.client = etcdfast.AsyncClient(endpoint, **options)

    def run(self, value: Any) -> Any:
        """Await ``value`` on the driver's loop if it is awaitable."""
        if self.loop is not None and inspect.isawaitable(value):
            return self.loop.run_until_complete(value)
        return value

    def __getattr__(self, name: str) -> Callable[..., Any]:
        attribute = getattr(self.client, name)
        if not callable(attribute):
            return attribute  # type: ignore[no-any-return]

        def call(*args: Any, **kwargs: Any) -> Any:
            return self.run(attribute(*args, **kwargs))

        return call

    def close(self) -> None:
        self.run(self.client.close())
        if self.loop is not None:
            self.loop.close()

    def __enter__(self) -> "Driver":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Driver {self.kind} {self.client!r}>"
