"""etcd's contrib recipes as plans (no IO): RWMutex, Barrier, DoubleBarrier,
Queue, PriorityQueue -- the key layouts and algorithms of etcd's
``contrib/recipes``, so Go and Python processes can share them.

One deliberate difference: contrib's ``Barrier.Wait`` watches from the
revision of its read for a PUT and then a DELETE of the barrier key, which
never completes when the key was put before that revision; here ``wait``
watches for the DELETE only, after the read.
"""

from __future__ import annotations

import time
from typing import Any, List, Optional

from .. import _codec
from ..api import kv
from ..api.kv import KeyLike
from ..api.plan import Plan, Steps, prefix_end, wait_events
from ..api.txn import Compare, Op, txn
from ..errors import EtcdError, RecipeKeyExistsError, TooManyClientsError, show_key
from ..types import Event, EventType, GetResult, KeyValue, TxnResult
from .handles import OnClient, OnSession
from .mutex import lock_prefix

__all__ = ["RWMutexState", "BarrierState", "DoubleBarrierState", "QueueState", "PriorityQueueState"]

PUT, DELETE = EventType.PUT, EventType.DELETE


def _put_new(key: bytes, value: bytes, lease: int = 0) -> "Steps[int]":
    """Create ``key`` (it must not exist: RecipeKeyExistsError); its revision."""
    result: TxnResult = yield txn(compare=[Compare.version(key) == 0],
                                  success=[Op.put(key, value, lease=lease)])
    if not result.succeeded:
        raise RecipeKeyExistsError(f"{show_key(key)} exists already")
    return result.header.revision


def _put_unique(prefix: bytes, value: bytes, lease: int = 0,
                sent: Optional[List[bytes]] = None) -> "Steps[KeyValue]":
    """A new key ``prefix/<nanoseconds>`` (contrib's ``newUniqueKV``); its
    key-value. Each key tried is appended to ``sent`` before its put goes out,
    so a caller can delete it if the put's answer is lost."""
    while True:
        key = prefix + b"/%d" % time.time_ns()
        if sent is not None:
            sent.append(key)
        try:
            revision = yield from _put_new(key, value, lease)
        except RecipeKeyExistsError:
            continue
        return KeyValue(key, revision, revision, 1, value, lease)


def _delete_quietly(keys: List[bytes]) -> "Steps[None]":
    """Clean-up after a failure: delete keys this process may have created."""
    for key in keys:
        try:
            yield kv.delete(key)
        except EtcdError:
            pass  # they go with the session's lease anyway


def _delete_if_unchanged(key: bytes, mod_revision: int) -> "Steps[bool]":
    result: TxnResult = yield txn(compare=[Compare.mod_revision(key) == mod_revision],
                                  success=[Op.delete(key)])
    return result.succeeded


class RWMutexState(OnSession):
    """A readers-writer lock on a session: readers share it, a writer has it alone.

    Each holder or waiter puts an ephemeral ``name/read/<ns>`` or
    ``name/write/<ns>`` key; a reader waits for the writers before it, a
    writer for everyone before it (contrib's ``RWMutex``).
    """

    def __init__(self, session: Any, name: KeyLike) -> None:
        super().__init__(session)
        self.prefix = lock_prefix(name)
        self.key: Optional[KeyValue] = None

    def _wait_on_last(self, prefix: bytes) -> "Steps[bool]":
        assert self.key is not None
        last = yield kv.get(prefix, prefix=True, sort_target="mod", sort_order="descend", limit=1,
                            max_mod_revision=self.key.mod_revision - 1)
        if not last.kvs:
            return True
        yield from wait_events(last.kvs[0].key, b"", self.key.mod_revision, (DELETE,))
        return False

    def _lock_steps(self, mine: bytes, before: bytes) -> "Steps[None]":
        sent: List[bytes] = []
        try:
            self.key = yield from _put_unique(self.prefix + mine, b"", self._lease, sent)
            while not (yield from self._wait_on_last(before)):
                pass
        except GeneratorExit:  # closed by its consumer: nothing to clean
            raise
        except BaseException:
            self.key = None
            yield from _delete_quietly(sent)
            raise

    def _unlock_steps(self) -> "Steps[None]":
        key, self.key = self.key, None
        if key is not None:
            yield kv.delete(key.key)

    def rlock_plan(self, timeout: Optional[float] = None) -> "Plan[None]":
        """Take a read lock (shared with other readers, never with a writer)."""
        return Plan(self._lock_steps(b"read", self.prefix + b"write"), timeout)

    def lock_plan(self, timeout: Optional[float] = None) -> "Plan[None]":
        """Take the write lock (alone)."""
        return Plan(self._lock_steps(b"write", self.prefix), timeout)

    def unlock_plan(self) -> "Plan[None]":
        """Release the read or write lock this handle holds."""
        return Plan(self._unlock_steps())


class BarrierState(OnClient):
    """A barrier: ``hold`` it (create the key), ``wait`` until it is released
    (deleted), ``release`` it."""

    def __init__(self, client: Any, key: KeyLike) -> None:
        super().__init__(client)
        self.key: bytes = _codec.keys.to_bytes(key)

    def _hold_steps(self) -> "Steps[None]":
        yield from _put_new(self.key, b"")

    def _release_steps(self) -> "Steps[None]":
        yield kv.delete(self.key)

    def _wait_steps(self) -> "Steps[None]":
        now = yield kv.get(self.key)
        if now.kvs:
            yield from wait_events(self.key, b"", now.header.revision + 1, (DELETE,))

    def hold_plan(self) -> "Plan[None]":
        """Hold the barrier (RecipeKeyExistsError if someone holds it)."""
        return Plan(self._hold_steps())

    def release_plan(self) -> "Plan[None]":
        return Plan(self._release_steps())

    def wait_plan(self, timeout: Optional[float] = None) -> "Plan[None]":
        """Return once the barrier is not held."""
        return Plan(self._wait_steps(), timeout)


class DoubleBarrierState(OnSession):
    """``count`` processes ``enter`` together and ``leave`` together
    (contrib's ``DoubleBarrier``: ephemeral ``key/waiters/<ns>`` keys and a
    ``key/ready`` flag)."""

    def __init__(self, session: Any, key: KeyLike, count: int) -> None:
        super().__init__(session)
        self.key: bytes = _codec.keys.to_bytes(key)
        if count < 1:
            raise ValueError(f"count must be >= 1, got {count}")
        self.count = count
        self.mine: Optional[KeyValue] = None
        self._waiters = self.key + b"/waiters"
        self._ready = self.key + b"/ready"

    def _enter_steps(self) -> "Steps[None]":
        sent: List[bytes] = []
        try:
            self.mine = yield from _put_unique(self._waiters, b"", self._lease, sent)
            waiting = yield kv.get(self._waiters, prefix=True)
            if len(waiting.kvs) > self.count:
                raise TooManyClientsError(
                    f"more than {self.count} processes at the barrier {show_key(self.key)}")
            if len(waiting.kvs) == self.count:
                yield kv.put(self._ready, b"")
                return
            yield from wait_events(self._ready, b"", self.mine.mod_revision, (PUT,))
        except GeneratorExit:  # closed by its consumer: nothing to clean
            raise
        except BaseException:
            # A timeout, Ctrl-C, too many clients...: a waiter key left behind
            # would count as a process at the barrier.
            self.mine = None
            yield from _delete_quietly(sent)
            raise

    def _leave_steps(self) -> "Steps[None]":
        assert self.mine is not None, "leave() needs enter() first"
        while True:
            waiting = yield kv.get(self._waiters, prefix=True)
            if not waiting.kvs:
                return
            lowest = min(waiting.kvs, key=lambda k: k.mod_revision)
            highest = max(waiting.kvs, key=lambda k: k.mod_revision)
            if len(waiting.kvs) == 1:
                yield kv.delete(self._ready)
                yield kv.delete(self.mine.key)
                return
            if lowest.key == self.mine.key:
                # The lowest leaves last: wait for the highest to go, then look again.
                yield from wait_events(highest.key, b"", highest.mod_revision, (DELETE,))
                continue
            yield kv.delete(self.mine.key)
            yield from wait_events(lowest.key, b"", lowest.mod_revision, (DELETE,))

    def enter_plan(self, timeout: Optional[float] = None) -> "Plan[None]":
        """Wait until ``count`` processes have entered."""
        return Plan(self._enter_steps(), timeout)

    def leave_plan(self, timeout: Optional[float] = None) -> "Plan[None]":
        """Wait until every process has left."""
        return Plan(self._leave_steps(), timeout)


class QueueState(OnClient):
    """A FIFO queue under a prefix (contrib's ``Queue``): items are keys
    ``prefix/<ns>``; ``dequeue`` claims the oldest with a compare-and-delete,
    waiting for one if the queue is empty."""

    #: How the next item to claim is chosen.
    _order = "mod"

    def __init__(self, client: Any, prefix: KeyLike) -> None:
        super().__init__(client)
        self.prefix: bytes = _codec.keys.to_bytes(prefix)

    def _scan_prefix(self) -> bytes:
        return self.prefix

    def _dequeue_steps(self) -> "Steps[bytes]":
        scan = self._scan_prefix()
        while True:
            first: GetResult = yield kv.get(scan, prefix=True, sort_target=self._order,
                                            sort_order="ascend", limit=1)
            for item in first.kvs:
                if (yield from _delete_if_unchanged(item.key, item.mod_revision)):
                    return item.value
            if first.more or first.kvs:
                continue  # someone else took it: look again
            put: Event = yield from wait_events(scan, prefix_end(scan), first.header.revision, (PUT,))
            if (yield from _delete_if_unchanged(put.kv.key, put.kv.mod_revision)):
                value: bytes = put.kv.value
                return value

    def _enqueue_steps(self, value: bytes) -> "Steps[None]":
        yield from _put_unique(self.prefix, value)

    def enqueue_plan(self, value: KeyLike) -> "Plan[None]":
        """Append ``value``."""
        return Plan(self._enqueue_steps(_codec.keys.to_bytes(value)))

    def dequeue_plan(self, timeout: Optional[float] = None) -> "Plan[bytes]":
        """Remove and return the oldest value, waiting for one if the queue is empty."""
        return Plan(self._dequeue_steps(), timeout)


class PriorityQueueState(QueueState):
    """A priority queue (contrib's ``PriorityQueue``): items are keys
    ``key/<priority, 5 digits>/<sequence, 16 digits>``; the lowest priority
    number, then the oldest, is dequeued first."""

    _order = "key"

    def _scan_prefix(self) -> bytes:
        return self.prefix + b"/"

    def _enqueue_priority_steps(self, value: bytes, priority: int) -> "Steps[None]":
        prefix = self.prefix + b"/%05d" % priority
        while True:  # contrib's newSequentialKV
            last = yield kv.get(prefix, prefix=True, sort_target="key", sort_order="descend", limit=1)
            number = int(last.kvs[0].key.rsplit(b"/", 1)[-1]) + 1 if last.kvs else 0
            base = b"__" + prefix
            result: TxnResult = yield txn(
                compare=[Compare.mod_revision(base) < last.header.revision + 1],
                success=[Op.put(base, b""), Op.put(prefix + b"/%016d" % number, value)],
            )
            if result.succeeded:
                return

    def enqueue_plan(self, value: KeyLike, priority: int = 0) -> "Plan[None]":
        """Add ``value`` with ``priority`` (0-65535; lower numbers first)."""
        if isinstance(priority, bool) or not isinstance(priority, int) or not 0 <= priority <= 0xFFFF:
            raise ValueError(f"priority must be an int from 0 to 65535, got {priority!r}")
        return Plan(self._enqueue_priority_steps(_codec.keys.to_bytes(value), priority))
