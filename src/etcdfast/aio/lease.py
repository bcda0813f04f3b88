"""The asyncio lease driver: the same :class:`~etcdfast.lease.KeepAliveSchedule`, on tasks."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any, AsyncIterator, Awaitable, Callable, List, Optional

import grpc

from .._backoff import Backoff
from ..errors import EtcdError, LeaseNotFoundError
from ..lease import (
    KeepAliveSchedule,
    LeaseHandle,
    _decode_keepalive,
    keepalive_request,
    lost_error,
)
from ..types import LeaseKeepAlive, LeaseTimeToLive

if TYPE_CHECKING:
    from .client import AsyncClient

__all__ = ["AsyncLease", "AsyncKeepAliveStream"]

log = logging.getLogger("etcdfast.lease")


class AsyncLease(LeaseHandle):
    """The asyncio :class:`~etcdfast.lease.Lease`: ``async with client.lease(10) as lease``."""

    def __init__(
        self,
        client: "AsyncClient",
        ttl: int,
        id: int = 0,
        *,
        keep_alive: bool = True,
        on_lost: Optional[Callable[[LeaseHandle], None]] = None,
    ) -> None:
        super().__init__(ttl, id, on_lost)
        self._client = client
        self._keep_alive = keep_alive
        self._lost_event: Optional[asyncio.Event] = None  # made in the loop, on first use
        self.granted = False

    async def grant(self, *, timeout: Optional[float] = None) -> "AsyncLease":
        if not self.granted:
            answer = await self._client.grant(self.ttl, self.id, timeout=timeout)
            self.id, self.ttl, self.remaining_ttl = answer.id, answer.ttl, answer.ttl
            self.granted = True
            if self._keep_alive:
                self._client._keepalive().add(self)
        return self

    async def revoke(self, *, timeout: Optional[float] = None) -> None:
        self._client._keepalive().remove(self.id)
        try:
            await self._client.revoke(self.id, timeout=timeout)
        except LeaseNotFoundError:
            pass
        self._mark_lost(LeaseNotFoundError(f"lease {self.id:#x} was revoked"))

    async def time_to_live(self, keys: bool = False, *, timeout: Optional[float] = None) -> LeaseTimeToLive:
        return await self._client.time_to_live(self.id, keys, timeout=timeout)

    async def keep_alive_once(self, *, timeout: Optional[float] = None) -> LeaseKeepAlive:
        return await self._client.keep_alive_once(self.id, timeout=timeout)

    async def wait(self, timeout: Optional[float] = None) -> bool:
        """Wait until the lease is lost (True) or ``timeout`` passes (False)."""
        if self.lost is not None:
            return True
        if self._lost_event is None:
            self._lost_event = asyncio.Event()
        try:
            await asyncio.wait_for(self._lost_event.wait(), timeout)
        except asyncio.TimeoutError:
            return False
        return True

    def _signal_lost(self) -> None:
        if self._lost_event is not None:
            self._lost_event.set()

    async def __aenter__(self) -> "AsyncLease":
        return await self.grant()

    async def __aexit__(self, *exc: object) -> None:
        if not self._client.closed:
            await self.revoke()


class AsyncKeepAliveStream:
    """One ``LeaseKeepAlive`` stream for all of an AsyncClient's leases.

    As in the sync driver, the request iterator is the scheduler; a task
    reads the answers and reconnects with backoff after a break.
    """

    def __init__(
        self,
        open_stream: Callable[[AsyncIterator[bytes]], Awaitable[Any]],
        error_of: Optional[Callable[[grpc.RpcError], EtcdError]] = None,
    ) -> None:
        self._open_stream = open_stream
        self._error_of = error_of  # also lets the client drop a stale auth token
        self._schedule = KeepAliveSchedule()
        self._wake = asyncio.Event()
        self._task: Optional["asyncio.Task[None]"] = None
        self._call: Any = None
        self._attempt = 0
        self._closed = False

    def add(self, handle: LeaseHandle) -> None:
        if self._closed:
            return
        self._schedule.add(handle, time.monotonic())
        self._wake.set()
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="etcdfast-keepalive")

    def remove(self, lease_id: int) -> None:
        self._schedule.remove(lease_id)
        self._wake.set()

    async def close(self) -> None:
        self._closed = True
        self._wake.set()
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
    def _report(handles: List[LeaseHandle], expired: bool) -> None:
        for handle in handles:
            handle._mark_lost(lost_error(handle, expired))

    async def _sleep(self, seconds: float) -> None:
        self._wake.clear()
        try:
            await asyncio.wait_for(self._wake.wait(), seconds)
        except asyncio.TimeoutError:
            pass

    async def _requests(self, attempt: int) -> AsyncIterator[bytes]:
        while not (self._closed or attempt != self._attempt or not self._schedule):
            now = time.monotonic()
            self._report(self._schedule.expired(now), expired=True)
            ready, wait = self._schedule.due(now)
            for lease_id in ready:
                yield keepalive_request(lease_id)
            if not ready:
                await self._sleep(wait)

    async def _run(self) -> None:
        backoff = Backoff(maximum=KeepAliveSchedule.RECONNECT_MAX)
        while not (self._closed or not self._schedule):
            self._attempt += 1
            try:
                self._call = call = await self._open_stream(self._requests(self._attempt))
                async for raw in call:
                    backoff.reset()
                    answer = _decode_keepalive(raw, None)
                    gone = self._schedule.answered(answer.id, answer.ttl, time.monotonic())
                    if gone is not None:
                        self._report([gone], expired=False)
                    self._wake.set()
            except asyncio.CancelledError:
                if self._closed:
                    return
                raise
            except grpc.RpcError as exc:
                log.debug("keep-alive stream broke: %r", self._error_of(exc) if self._error_of else exc)
            except EtcdError as exc:
                log.debug("keep-alive stream broke: %r", exc)
            except Exception as exc:
                log.debug("keep-alive stream failed: %r", exc)
            self._attempt += 1
            self._call = None
            self._schedule.stream_broke(time.monotonic())
            self._report(self._schedule.expired(time.monotonic()), expired=True)
            if not self._closed and self._schedule:
                await self._sleep(backoff.next_delay())
        self._task = None
