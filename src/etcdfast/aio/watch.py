"""The asyncio watch driver: the same :class:`~etcdfast.watch.WatchHub`, on a task."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, AsyncIterator, Awaitable, Callable, List, Optional, Union

import grpc
import grpc.aio

from .. import _codec
from .._backoff import Backoff
from ..errors import ClientClosedError, EtcdError, Timeout, Unavailable
from ..types import Progress, WatchResponse
from ..watch import CREATED, END, WatchHub, WatchItem, WatchSpec, WatchState

__all__ = ["AsyncWatch", "AsyncWatchStream"]

log = logging.getLogger("etcdfast.watch")


class AsyncWatch:
    """A running watch for asyncio: ``async for event in watch``.

    Same contract as :class:`etcdfast.watch.Watch`: events (and
    :class:`~etcdfast.types.Progress` with ``progress_notify``), whole
    responses from :meth:`batches`, ``async with`` cancels on exit, and the
    iteration raises when the watch cannot continue.

    ``async for`` costs ~150 ns per event in asyncio's iteration protocol
    alone; a consumer of very busy watches can iterate :meth:`batches` and
    loop over each response's ``events`` to pay that once per response.
    """

    def __init__(self, stream: "AsyncWatchStream", spec: WatchSpec) -> None:
        self.spec = spec
        self._stream = stream
        self._queue: "asyncio.Queue[object]" = asyncio.Queue()
        self._created = asyncio.Event()
        self._state = WatchState(spec, self)
        self._done = False
        self.error: Optional[BaseException] = None

    def deliver(self, item: object) -> None:
        if item is CREATED:
            self._created.set()
            return
        if item is END or isinstance(item, BaseException):
            self._created.set()
        self._queue.put_nowait(item)

    @property
    def revision(self) -> int:
        return int(self._state.cursor.next_revision)

    @property
    def compact_revision(self) -> int:
        return int(self._state.cursor.compact_revision)

    @property
    def progress_revision(self) -> int:
        return int(self._state.cursor.progress_revision)

    async def _next(self, timeout: Optional[float] = None) -> object:
        if self._done:
            raise StopAsyncIteration
        try:
            # get_nowait first: wait_for(..., 0) gives up before get() even runs.
            item = self._queue.get_nowait()
        except asyncio.QueueEmpty:
            try:
                item = await asyncio.wait_for(self._queue.get(), timeout)
            except asyncio.TimeoutError:
                raise Timeout(f"no watch event within {timeout} s") from None
        if item is END:
            self._done = True
            raise StopAsyncIteration
        if isinstance(item, BaseException):
            self._done = True
            self.error = item
            raise item
        return item

    async def batches(self, timeout: Optional[float] = None) -> AsyncIterator[Union[WatchResponse, Progress]]:
        """Yield whole responses instead of single events."""
        while True:
            try:
                yield await self._next(timeout)  # type: ignore[misc]
            except StopAsyncIteration:
                return

    async def __aiter__(self) -> AsyncIterator[WatchItem]:
        while True:
            try:
                item = await self._next()
            except StopAsyncIteration:
                return
            if isinstance(item, Progress):
                yield item
            else:
                for event in item.events:  # type: ignore[attr-defined]
                    yield event

    async def get(self, timeout: Optional[float] = None) -> List[WatchItem]:
        """The next batch of items, waiting at most ``timeout`` seconds."""
        try:
            item = await self._next(timeout)
        except StopAsyncIteration:
            return []
        return [item] if isinstance(item, Progress) else list(item.events)  # type: ignore[attr-defined]

    async def cancel(self) -> None:
        self._stream.cancel(self)

    async def __aenter__(self) -> "AsyncWatch":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.cancel()

    def __repr__(self) -> str:
        return f"<AsyncWatch {self.spec.key!r} next_revision={self.revision}>"


class AsyncWatchStream:
    """One ``Watch`` stream per AsyncClient; a reader task drives the hub.

    Reconnect policy as in the sync :class:`~etcdfast.watch.WatchStream`.
    """

    def __init__(
        self,
        open_stream: Callable[[AsyncIterator[bytes]], Awaitable[Any]],
        tracker: Any,
        error_of: Callable[[Exception], EtcdError],
        reconnect_timeout: float = 60.0,
        authenticated: bool = False,
    ) -> None:
        self._open_stream = open_stream
        self._tracker = tracker
        self._error_of = error_of
        self.reconnect_timeout = reconnect_timeout
        self._hub = WatchHub(authenticated)
        self._requests: Optional["asyncio.Queue[Optional[bytes]]"] = None
        self._call: Any = None
        self._task: Optional["asyncio.Task[None]"] = None
        self._closed = False

    async def watch(self, spec: WatchSpec, timeout: Optional[float]) -> AsyncWatch:
        if self._closed:
            raise ClientClosedError("the client is closed")
        handle = AsyncWatch(self, spec)
        request = self._hub.add(handle._state)
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="etcdfast-watch")
        elif self._requests is not None:
            self._requests.put_nowait(request)
        try:
            await asyncio.wait_for(handle._created.wait(), timeout)
        except asyncio.TimeoutError:
            self.cancel(handle)
            raise Timeout(f"watch on {spec.key!r} not created within {timeout} s") from None
        if not handle._queue.empty() and handle._state.watch_id is None:
            await handle._next(0)  # creation failed: raise its error here
        return handle

    def request_progress(self) -> None:
        if self._requests is not None:
            self._requests.put_nowait(_codec.watch.encode_watch_progress())

    def cancel(self, handle: AsyncWatch) -> None:
        request = self._hub.cancel(handle._state)
        if request is not None and self._requests is not None:
            self._requests.put_nowait(request)
        elif request is None and handle._state.watch_id is None:
            self._hub._remove(handle._state)
            handle.deliver(END)

    async def close(self) -> None:
        self._closed = True
        if self._requests is not None:
            self._requests.put_nowait(None)
        self._hub.fail(ClientClosedError("the client was closed"))
        if self._call is not None:
            self._call.cancel()
        task, self._task = self._task, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            try:
                await task
            except (asyncio.CancelledError, Exception):
                pass

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    @staticmethod
    async def _iterate(requests: "asyncio.Queue[Optional[bytes]]") -> AsyncIterator[bytes]:
        while True:
            item = await requests.get()
            if item is None:
                return
            yield item

    async def _run(self) -> None:
        backoff = Backoff()
        failing_since: Optional[float] = None
        while True:
            error: Optional[EtcdError] = None
            requests: "asyncio.Queue[Optional[bytes]]" = asyncio.Queue()
            for request in self._hub.restart():
                requests.put_nowait(request)
            self._requests = requests
            try:
                self._call = call = await self._open_stream(self._iterate(requests))
                async for raw in call:
                    failing_since = None
                    backoff.reset()
                    for reply in self._hub.handle(raw, self._tracker):
                        requests.put_nowait(reply)
            except grpc.RpcError as exc:
                error = self._error_of(exc)
            except EtcdError as exc:  # a malformed response, a stale token...
                error = self._error_of(exc)
            except asyncio.CancelledError:
                if self._closed:
                    return
                raise
            except Exception as exc:
                error = Unavailable(f"watch stream failed: {exc!r}")
            requests.put_nowait(None)
            self._requests = None
            self._call = None
            if self._closed:
                return
            failing_since = failing_since or time.monotonic()
            if not self._hub.stream_broke(error, time.monotonic() - failing_since, self.reconnect_timeout):
                self._task = None
                return
            log.debug("watch stream broke (%s); reconnecting", error)
            await asyncio.sleep(backoff.next_delay())
