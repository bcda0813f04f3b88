"""Locks, elections, STM and recipes for the sync client.

The logic is in ``etcdfast._core`` (``mutex``, ``election``, ``stm``,
``recipes``) as plans; each class here is its state plus a method table that
runs those plans with the client (``sync_plan``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterator, Optional

from .._core.election import ElectionState
from .._core.methods import sync_plan
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
from .lease import Lease
from .plans import iterate_plan

if TYPE_CHECKING:
    from .client import Client

__all__ = ["Session", "Mutex", "Election", "RWMutex", "Barrier", "DoubleBarrier", "Queue",
           "PriorityQueue", "Stm", "run_stm"]


class Session(Lease):
    """A lease kept alive for the locks, elections and recipes made from it.

    ``with client.session(ttl=10) as session:`` -- granted at once, kept alive
    in the background, revoked when the block ends (or by :meth:`close`),
    which releases every lock and candidacy made from it. If the lease is lost
    (expired: the process was stopped past the TTL, or the cluster was
    unreachable that long) ``lost`` is set, ``on_lost`` is called and
    :meth:`wait` returns: whatever was locked with it is no longer held.
    """

    def close(self) -> None:
        """Revoke the session's lease (Go's ``Session.Close``)."""
        self.revoke()

    def mutex(self, name: KeyLike) -> "Mutex":
        """A lock named ``name`` (``etcdctl lock NAME`` takes the same one)."""
        return Mutex(self, name)

    def election(self, name: KeyLike) -> "Election":
        """A candidacy in the election ``name`` (``etcdctl elect NAME`` takes part in the same one)."""
        return Election(self, name)

    def resume_election(self, name: KeyLike, key: KeyLike, revision: int) -> "Election":
        """The election ``name`` led with ``key`` created at ``revision`` (Go's ``ResumeElection``)."""
        return Election(self, name, key=key, revision=revision)

    def rwmutex(self, name: KeyLike) -> "RWMutex":
        """A readers-writer lock named ``name`` (contrib/recipes' layout)."""
        return RWMutex(self, name)

    def double_barrier(self, key: KeyLike, count: int) -> "DoubleBarrier":
        """A double barrier for ``count`` processes."""
        return DoubleBarrier(self, key, count)


class Mutex(MutexState):
    """A distributed lock (see ``etcdfast._core.mutex``): ``with session.mutex("name"):``.

    ``key`` and ``revision`` are the fencing token of the current hold;
    ``is_owner()`` is a compare that guards a write with it.
    """

    lock = sync_plan(MutexState.lock_plan)
    try_lock = sync_plan(MutexState.try_lock_plan)
    unlock = sync_plan(MutexState.unlock_plan)

    def __enter__(self) -> "Mutex":
        self.lock()
        return self

    def __exit__(self, *exc: object) -> None:
        self.unlock()


class Election(ElectionState):
    """A candidacy in an election (see ``etcdfast._core.election``)."""

    campaign = sync_plan(ElectionState.campaign_plan)
    proclaim = sync_plan(ElectionState.proclaim_plan)
    resign = sync_plan(ElectionState.resign_plan)
    leader = sync_plan(ElectionState.leader_plan)

    def observe(self) -> Iterator[KeyValue]:
        """The leader's key-value now (waiting for one if nobody leads), then
        again at every change of leader or value; ``close()`` the iterator to stop."""
        return iterate_plan(self._client, self.observe_plan())


class RWMutex(RWMutexState):
    """A readers-writer lock (contrib/recipes' ``RWMutex``)."""

    rlock = sync_plan(RWMutexState.rlock_plan)
    lock = sync_plan(RWMutexState.lock_plan)
    unlock = sync_plan(RWMutexState.unlock_plan)


class Barrier(BarrierState):
    """A barrier (contrib/recipes' ``Barrier``)."""

    hold = sync_plan(BarrierState.hold_plan)
    release = sync_plan(BarrierState.release_plan)
    wait = sync_plan(BarrierState.wait_plan)


class DoubleBarrier(DoubleBarrierState):
    """A double barrier (contrib/recipes' ``DoubleBarrier``)."""

    enter = sync_plan(DoubleBarrierState.enter_plan)
    leave = sync_plan(DoubleBarrierState.leave_plan)


class Queue(QueueState):
    """A FIFO queue (contrib/recipes' ``Queue``)."""

    enqueue = sync_plan(QueueState.enqueue_plan)
    dequeue = sync_plan(QueueState.dequeue_plan)


class PriorityQueue(PriorityQueueState):
    """A priority queue (contrib/recipes' ``PriorityQueue``)."""

    enqueue = sync_plan(PriorityQueueState.enqueue_plan)
    dequeue = sync_plan(PriorityQueueState.dequeue_plan)


class Stm(StmWrites):
    """What ``apply`` gets in ``client.stm(apply)``: reads and buffered writes."""

    def get(self, key: KeyLike, *more: KeyLike) -> Optional[bytes]:
        """The value of ``key`` (None if it does not exist); ``more`` keys not read
        yet are fetched in the same call, for later ``get``s."""
        keys = self._state.keys(key, more)
        request = self._state.read(keys)
        if request is not None:
            self._state.record(self._client._run(request))
        return self._state.value(keys)

    def rev(self, key: KeyLike) -> int:
        """The mod revision of ``key`` as read (0 if it does not exist)."""
        keys = self._state.keys(key)
        request = self._state.read(keys, for_revision=True)
        if request is not None:
            self._state.record(self._client._run(request))
        return self._state.mod_revision(keys[0])



def run_stm(client: "Client", spec: StmSpec) -> TxnResult:
    """``Client.stm``: see :func:`etcdfast.api.concurrency.stm`."""
    state = StmState(spec.isolation, spec.prefetch)
    return client._run_plan(state.plan(Apply(spec.apply, Stm(client, state)), spec.timeout))
