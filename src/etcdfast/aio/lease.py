"""Leases for the asyncio client: the same :class:`~etcdfast._core.keepalive.KeepAliveSchedule`, on a task."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any, AsyncIterator, Callable, Optional, TypeVar

from .._core.keepalive import KeepAliveSchedule, LeaseHandle, report_lost
from .._core.observe import StreamSession
from ..api.lease import KEEPALIVE
from ..errors import LeaseNotFoundError
from ..types import LeaseKeepAlive, LeaseTimeToLive
from .executor import stop_stream

if TYPE_CHECKING:
    from .client import AsyncClient
    from .executor import AsyncExecutor

__all__ = ["AsyncLease", "AsyncKeepAliveStream"]

L = TypeVar("L", bound="AsyncLease")

log = logging.getLogger("etcdfast.lease")


class AsyncLease(LeaseHandle):
    """The asyncio :class:`~etcdfast.Lease`: ``async with client.lease(10) as lease``.

    Same contract: lost (expired, or revoked elsewhere) is reported through
    ``on_lost``, ``lost`` and :meth:`wait`; revoking it yourself ends it
    without calling ``on_lost``.
    """

    def __init__(
        self,
        client: "AsyncClient",
        ttl: int,
        id: int = 0,
        *,
        keep_alive: bool = True,
        on_lost: Optional[Callable[["AsyncLease"], None]] = None,
    ) -> None:
        super().__init__(ttl, id, on_lost)
        self._client = client
        self._keep_alive = keep_alive
        self._ended: Optional[asyncio.Event] = None  # made in the loop, on first use

    async def grant(self: L, *, timeout: Optional[float] = None) -> L:
        """Grant the lease (once) and start keeping it alive if asked to."""
        if not self.granted:
            self._granted(await self._client.grant(self.ttl, self.id, timeout=timeout))
            if self._keep_alive:
                self._client._keepalive().add(self)
        return self

    async def revoke(self, *, timeout: Optional[float] = None) -> None:
        """Stop keeping it alive and revoke it; a lease already gone is not an error."""
        self._client._keepalive().remove(self.id)
        try:
            await self._client.revoke(self.id, timeout=timeout)
        except LeaseNotFoundError:
            pass
        self._mark_revoked()

    async def time_to_live(self, keys: bool = False, *, timeout: Optional[float] = None) -> LeaseTimeToLive:
        return await self._client.time_to_live(self.id, keys, timeout=timeout)

    async def keep_alive_once(self, *, timeout: Optional[float] = None) -> LeaseKeepAlive:
        return await self._client.keep_alive_once(self.id, timeout=timeout)

    @property
    def done(self) -> asyncio.Event:
        """Set once the lease ends, lost or revoked here (a session's: Go's
        ``Session.Done``); made in the running loop on first use."""
        if self._ended is None:
            self._ended = asyncio.Event()
            if not self.alive:
                self._ended.set()
        return self._ended

    async def wait(self, timeout: Optional[float] = None) -> bool:
        """Wait until the lease ends -- lost, or revoked here -- (True) or
        ``timeout`` passes (False)."""
        done = self.done
        if done.is_set():
            # Python 3.11's wait_for(timeout=0) gives up before a new task
            # runs even once, so an ended lease would read as "not yet".
            return True
        try:
            await asyncio.wait_for(done.wait(), timeout)
        except asyncio.TimeoutError:
            return False
        return True

    def _signal_ended(self) -> None:
        if self._ended is not None:
            self._ended.set()

    async def __aenter__(self: L) -> L:
        return await self.grant()

    async def __aexit__(self, *exc: object) -> None:
        if not self._client.closed:
            await self.revoke()


class AsyncKeepAliveStream:
    """One ``LeaseKeepAlive`` stream for all of an AsyncClient's leases.

    As in the sync driver, the request iterator is the scheduler; a task
    reads the answers and reconnects with backoff after a break.
    """

    def __init__(self, executor: "AsyncExecutor") -> None:
        self._executor = executor
        self._clock = executor.state._clock
        self._schedule = KeepAliveSchedule()
        self._wake = asyncio.Event()
        self._task: Optional["asyncio.Task[None]"] = None
        self._call: Any = None
        self._attempt = 0
        self._closed = False

    def add(self, handle: LeaseHandle) -> None:
        if self._closed:
            return
        self._schedule.add(handle, self._clock())
        self._wake.set()
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="etcdfast-keepalive")

    def remove(self, lease_id: int) -> None:
        self._schedule.remove(lease_id)
        self._wake.set()

    async def close(self) -> None:
        self._closed = True
        self._wake.set()
        task, self._task = self._task, None
        await stop_stream(self._call, task)

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def _sleep(self, seconds: float) -> None:
        self._wake.clear()
        try:
            await asyncio.wait_for(self._wake.wait(), seconds)
        except asyncio.TimeoutError:
            pass

    async def _requests(self, attempt: int) -> AsyncIterator[bytes]:
        while not (self._closed or attempt != self._attempt or not self._schedule):
            lost, requests, wait = self._schedule.tick(self._clock())
            report_lost(lost, expired=True)
            for request in requests:
                yield request
            if not requests:
                await self._sleep(wait)

    async def _run(self) -> None:
        while not (self._closed or not self._schedule):
            self._attempt += 1
            session = StreamSession(self._executor.state, KEEPALIVE)
            failure: Optional[BaseException] = None
            try:
                await self._executor.login_if_needed()
                self._call = call = self._executor.open_stream(KEEPALIVE, self._requests(self._attempt))
                async for raw in call:
                    gone = self._schedule.answer(raw, self._clock())
                    if gone is not None:
                        report_lost([gone], expired=False)
                    self._wake.set()
            except asyncio.CancelledError as exc:
                session.end(exc)
                if self._closed:
                    return
                raise
            except Exception as exc:  # grpc's error, a failed login, a malformed answer: start over
                failure = exc
                log.debug("keep-alive stream broke: %s", self._executor.state._stream_error(exc))
            session.end(failure)
            self._attempt += 1
            self._call = None
            lost, delay = self._schedule.broke(self._clock())
            report_lost(lost, expired=True)
            if not self._closed and self._schedule:
                await self._sleep(delay)
        self._task = None
