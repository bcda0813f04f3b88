"""Locks, elections, STM and recipes for the asyncio client.

The same states and plans as ``etcdfast._sync.concurrency``, run with
``async_plan``: every method that talks to etcd is a coroutine.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, AsyncIterator, Optional

from .._core.election import ElectionState
from .._core.methods import async_plan
from .._core.mutex import MutexState
from .._core.recipes import (
    BarrierState,
    DoubleBarrierState,
    PriorityQueueState,
    QueueState,
    RWMutexState,
)
from .._core.stm import StmState, StmWrites
from ..api.concurrency import StmSpec
from ..api.kv import KeyLike
from ..api.plan import Apply
from ..types import KeyValue, TxnResult
from .lease import AsyncLease
from .plans import iterate_plan

if TYPE_CHECKING:
    from .client import AsyncClient

__all__ = ["AsyncSession", "AsyncMutex", "AsyncElection", "AsyncRWMutex", "AsyncBarrier",
           "AsyncDoubleBarrier", "AsyncQueue", "AsyncPriorityQueue", "AsyncStm", "run_stm"]


class AsyncSession(AsyncLease):
    """A lease kept alive for the locks, elections and recipes made from it.

    ``async with await client.session(ttl=10) as session:`` -- granted at once, kept alive
    in the background, revoked when the block ends (or by :meth:`close`),
    which releases every lock and candidacy made from it. If the lease is lost
    (expired: the process was stopped past the TTL, or the cluster was
    unreachable that long) ``lost`` is set, ``on_lost`` is called and
    :meth:`wait` returns: whatever was locked with it is no longer held.
    """

    async def close(self) -> None:
        """Revoke the session's lease (Go's ``Session.Close``)."""
        await self.revoke()

    def mutex(self, name: KeyLike) -> "AsyncMutex":
        """A lock named ``name`` (``etcdctl lock NAME`` takes the same one)."""
        return AsyncMutex(self, name)

    def election(self, name: KeyLike) -> "AsyncElection":
        """A candidacy in the election ``name`` (``etcdctl elect NAME`` takes part in the same one)."""
        return AsyncElection(self, name)

    def resume_election(self, name: KeyLike, key: KeyLike, revision: int) -> "AsyncElection":
        """The election ``name`` led with ``key`` created at ``revision`` (Go's ``ResumeElection``)."""
        return AsyncElection(self, name, key=key, revision=revision)

    def rwmutex(self, name: KeyLike) -> "AsyncRWMutex":
        """A readers-writer lock named ``name`` (contrib/recipes' layout)."""
        return AsyncRWMutex(self, name)

    def double_barrier(self, key: KeyLike, count: int) -> "AsyncDoubleBarrier":
        """A double barrier for ``count`` processes."""
        return AsyncDoubleBarrier(self, key, count)


class AsyncMutex(MutexState):
    """A distributed lock (see ``etcdfast._core.mutex``): ``with session.mutex("name"):``.

    ``key`` and ``revision`` are the fencing token of the current hold;
    ``is_owner()`` is a compare that guards a write with it.
    """

    lock = async_plan(MutexState.lock_plan)
    try_lock = async_plan(MutexState.try_lock_plan)
    unlock = async_plan(MutexState.unlock_plan)

    async def __aenter__(self) -> "AsyncMutex":
        await self.lock()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.unlock()


class AsyncElection(ElectionState):
    """A candidacy in an election (see ``etcdfast._core.election``)."""

    campaign = async_plan(ElectionState.campaign_plan)
    proclaim = async_plan(ElectionState.proclaim_plan)
    resign = async_plan(ElectionState.resign_plan)
    leader = async_plan(ElectionState.leader_plan)

    def observe(self) -> AsyncIterator[KeyValue]:
        """The leader's key-value now (waiting for one if nobody leads), then
        again at every change of leader or value: ``async for kv in election.observe()``."""
        return iterate_plan(self._client, self.observe_plan())


class AsyncRWMutex(RWMutexState):
    """A readers-writer lock (contrib/recipes' ``RWMutex``)."""

    rlock = async_plan(RWMutexState.rlock_plan)
    lock = async_plan(RWMutexState.lock_plan)
    unlock = async_plan(RWMutexState.unlock_plan)


class AsyncBarrier(BarrierState):
    """A barrier (contrib/recipes' ``Barrier``)."""

    hold = async_plan(BarrierState.hold_plan)
    release = async_plan(BarrierState.release_plan)
    wait = async_plan(BarrierState.wait_plan)


class AsyncDoubleBarrier(DoubleBarrierState):
    """A double barrier (contrib/recipes' ``DoubleBarrier``)."""

    enter = async_plan(DoubleBarrierState.enter_plan)
    leave = async_plan(DoubleBarrierState.leave_plan)


class AsyncQueue(QueueState):
    """A FIFO queue (contrib/recipes' ``Queue``)."""

    enqueue = async_plan(QueueState.enqueue_plan)
    dequeue = async_plan(QueueState.dequeue_plan)


class AsyncPriorityQueue(PriorityQueueState):
    """A priority queue (contrib/recipes' ``PriorityQueue``)."""

    enqueue = async_plan(PriorityQueueState.enqueue_plan)
    dequeue = async_plan(PriorityQueueState.dequeue_plan)


class AsyncStm(StmWrites):
    """What ``apply`` gets in ``await client.stm(apply)``: awaited reads, buffered writes."""

    async def get(self, key: KeyLike, *more: KeyLike) -> Optional[bytes]:
        """The value of ``key`` (None if it does not exist); ``more`` keys not read
        yet are fetched in the same call, for later ``get``s."""
        keys = self._state.keys(key, more)
        request = self._state.read(keys)
        if request is not None:
            self._state.record(await self._client._run(request))
        return self._state.value(keys)

    async def rev(self, key: KeyLike) -> int:
        """The mod revision of ``key`` as read (0 if it does not exist)."""
        keys = self._state.keys(key)
        request = self._state.read(keys, for_revision=True)
        if request is not None:
            self._state.record(await self._client._run(request))
        return self._state.mod_revision(keys[0])



async def run_stm(client: "AsyncClient", spec: StmSpec) -> TxnResult:
    """``AsyncClient.stm``: see :func:`etcdfast.api.concurrency.stm`."""
    state = StmState(spec.isolation, spec.prefetch)
    return await client._run_plan(state.plan(Apply(spec.apply, AsyncStm(client, state)), spec.timeout))
