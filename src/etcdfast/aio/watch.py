"""The asyncio watch driver: the same :class:`~etcdfast._core.watch_hub.WatchHub`, on a task."""

from __future__ import annotations

import asyncio
import inspect
import logging
from typing import TYPE_CHECKING, Any, AsyncIterator, Awaitable, Callable, List, Optional, Union

from .. import _codec
from .._core.methods import Concatenate, P, bind_signature
from .._core.observe import StreamSession
from .._core.watch_hub import ItemT, WatchHandle, WatchHub, WatchItem
from ..api.watch import WatchSpec
from ..errors import ClientClosedError, EtcdError, Timeout, show_key
from ..types import Progress, WatchResponse
from .executor import RACED_REOPENS, raced_stream_end, stop_stream

if TYPE_CHECKING:
    from .executor import AsyncExecutor

__all__ = ["AsyncWatch", "AsyncWatchStream", "watch_method", "start_callback_task"]

log = logging.getLogger("etcdfast.watch")

WATCH = "/etcdserverpb.Watch/Watch"


class AsyncWatch(WatchHandle[ItemT]):
    """A running watch for asyncio: ``async for event in watch``.

    Same contract as :class:`etcdfast.Watch`: events (and
    :class:`~etcdfast.types.Progress` with ``progress_notify``), whole
    responses from :meth:`batches`, ``async with`` cancels on exit, and the
    iteration raises when the watch cannot continue.

    ``async for`` costs ~150 ns per event in asyncio's iteration protocol
    alone; a consumer of very busy watches can iterate :meth:`batches` and
    loop over each response's ``events`` to pay that once per response.
    """

    def __init__(self, stream: "AsyncWatchStream", spec: WatchSpec[ItemT]) -> None:
        super().__init__(spec)
        self._stream = stream
        self._queue: "asyncio.Queue[object]" = asyncio.Queue()
        self._created = asyncio.Event()
        self._enqueue = self._queue.put_nowait  # type: ignore[method-assign]

    async def _next(self, timeout: Optional[float] = None) -> Union[WatchResponse, Progress]:
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
        taken = self._take(item)
        if taken is None:
            raise StopAsyncIteration
        return taken

    async def batches(self, timeout: Optional[float] = None) -> AsyncIterator[Union[WatchResponse, Progress]]:
        """Yield whole responses instead of single events."""
        while True:
            try:
                yield await self._next(timeout)
            except StopAsyncIteration:
                return

    async def __aiter__(self) -> AsyncIterator[ItemT]:
        while True:
            try:
                item = await self._next()
            except StopAsyncIteration:
                return
            for event in self._items(item):
                yield event

    async def get(self, timeout: Optional[float] = None) -> List[ItemT]:
        """The next batch of items, waiting at most ``timeout`` seconds (Timeout if none)."""
        try:
            item = await self._next(timeout)
        except StopAsyncIteration:
            return []
        return list(self._items(item))

    async def cancel(self) -> None:
        """Stop the watch; iteration ends after the items already received."""
        self._stream.cancel(self)

    async def __aenter__(self) -> "AsyncWatch[ItemT]":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.cancel()


class AsyncWatchStream:
    """One ``Watch`` stream per AsyncClient; a reader task drives the hub
    (reconnect policy: :meth:`WatchHub.broke`)."""

    def __init__(
        self, executor: "AsyncExecutor", authenticated: bool = False, require_leader: Optional[bool] = None
    ) -> None:
        self._executor = executor
        #: This stream's "hasleader" choice (None: the client's; see ``Request.require_leader``).
        self._require_leader = require_leader
        self._tracker = executor.state._revisions
        self._hub = WatchHub(authenticated)
        self._requests: Optional["asyncio.Queue[Optional[bytes]]"] = None
        self._call: Any = None
        self._task: Optional["asyncio.Task[None]"] = None
        self._closed = False

    @property
    def reconnect_timeout(self) -> float:
        return self._hub.reconnect_timeout

    @reconnect_timeout.setter
    def reconnect_timeout(self, seconds: float) -> None:
        self._hub.reconnect_timeout = seconds

    async def watch(self, spec: WatchSpec[ItemT]) -> AsyncWatch[ItemT]:
        """Create a watch and wait until the server confirms it."""
        if self._closed:
            raise ClientClosedError("the client is closed")
        state = self._executor.state
        timeout = state._grpc_timeout(state._deadline_for(spec.timeout))
        handle: AsyncWatch[ItemT] = AsyncWatch(self, spec)
        request = self._hub.add(handle._state)
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="etcdfast-watch")
        elif self._requests is not None:
            self._requests.put_nowait(request)
        try:
            await asyncio.wait_for(handle._created.wait(), timeout)
        except asyncio.TimeoutError:
            # Cancelled, not forgotten: see WatchHub.cancel.
            self.cancel(handle)
            raise Timeout(f"watch on {show_key(spec.key)} not created within {timeout} s") from None
        if handle._created_error():
            await handle._next(0)  # creation failed: raise its error here
        return handle

    def _abandon(self, error: BaseException) -> None:
        """In a forked child (one thread, no reader): end every watch with
        ``error`` and never touch the parent's gRPC call. Takes no lock: a
        thread of the parent may have held it at the fork."""
        self._closed = True  # its gRPC call stays referenced: never finalized in the child
        self._hub.fail(error)  # type: ignore[arg-type]

    def request_progress(self) -> None:
        if self._requests is not None:
            self._requests.put_nowait(_codec.watch.encode_watch_progress())

    def cancel(self, handle: "AsyncWatch[Any]") -> None:
        request = self._hub.cancel(handle._state)
        if request is not None and self._requests is not None:
            self._requests.put_nowait(request)

    async def close(self) -> None:
        self._closed = True
        if self._requests is not None:
            self._requests.put_nowait(None)
        self._hub.fail(ClientClosedError("the client was closed"))
        task, self._task = self._task, None
        await stop_stream(self._call, task)

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
        raced = 0  # streams in a row whose end grpc.aio reported as its own error
        while True:
            failure: Optional[BaseException] = None
            requests: "asyncio.Queue[Optional[bytes]]" = asyncio.Queue()
            session = StreamSession(self._executor.state, WATCH)
            try:
                await self._executor.login_if_needed()
                for request in self._hub.connect():
                    requests.put_nowait(request)
                self._requests = requests
                self._call = call = self._executor.open_stream(
                    WATCH, self._iterate(requests), self._require_leader)
                async for raw in call:
                    for reply in self._hub.handle(raw, self._tracker):
                        requests.put_nowait(reply)
            except asyncio.CancelledError as exc:
                session.end(exc)
                if self._closed:
                    return
                raise
            except Exception as exc:  # grpc's error, a malformed response, a stale token...
                failure = exc
            session.end(failure)
            requests.put_nowait(None)
            self._requests = None
            self._call = None
            if self._closed:
                return
            if failure is not None and raced_stream_end(failure) and raced < RACED_REOPENS:
                raced += 1
                continue  # the server's own word (NoLeaderError...) comes on the next stream
            raced = 0
            state = self._executor.state
            delay = self._hub.broke(state._stream_error(failure), state._clock())
            if delay is None:
                self._task = None
                return
            await asyncio.sleep(delay)


def watch_method(
    build: Callable[P, WatchSpec[ItemT]]
) -> Callable[Concatenate[Any, P], Awaitable[AsyncWatch[ItemT]]]:
    """``AsyncClient.watch``: the options of ``api.watch.watch_spec``, answering an :class:`AsyncWatch`."""

    async def method(self: Any, /, *args: P.args, **kwargs: P.kwargs) -> AsyncWatch[ItemT]:
        spec = build(*args, **kwargs)
        return await self._watches(spec.require_leader).watch(spec)  # type: ignore[no-any-return]

    bind_signature(build, method, "Awaitable[AsyncWatch]", None)
    return method


def start_callback_task(
    watch: "AsyncWatch[Any]",
    callback: Callable[[WatchItem], Any],
    on_error: Optional[Callable[[BaseException], Any]] = None,
) -> "asyncio.Task[None]":
    """Push each item of ``watch`` to ``callback`` (plain or async) from a task.

    A callback that raises cancels the watch; the exception goes to
    ``watch.error`` and ``on_error``.
    """

    async def run() -> None:
        try:
            async for item in watch:
                result = callback(item)
                if inspect.isawaitable(result):
                    await result
        except Exception as exc:
            watch.error = exc
            if not isinstance(exc, EtcdError):
                log.exception("watch callback raised; the watch on %r is cancelled", watch.spec.key)
                await watch.cancel()
            if on_error is not None:
                outcome = on_error(exc)
                if inspect.isawaitable(outcome):
                    await outcome

    return asyncio.get_running_loop().create_task(run(), name="etcdfast-watch-callback")
