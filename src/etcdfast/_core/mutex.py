"""A distributed lock with Go's key layout and algorithm, as plans (no IO).

Each holder or waiter of the lock ``name`` owns one key, ``name/<lease id in
lowercase hex>``, attached to its session's lease (exactly what Go's
``concurrency.Mutex`` and ``etcdctl lock NAME`` write, so Go and Python
processes exclude each other). The lock belongs to the key with the lowest
create revision. A waiter watches the deletion of the key just before its
own -- the newest one created before it -- not the whole prefix, so a
release wakes one waiter, not all of them.

Fencing: :attr:`MutexState.key` and :attr:`MutexState.revision` (the key's
create revision) identify this hold; :meth:`MutexState.is_owner` is a Txn
compare that holds only while this process still owns the lock, so a write
guarded by it can never land after the lock passed on (a paused process
whose lease expired, say).
"""

from __future__ import annotations

from typing import Any, Optional

from .. import _codec
from ..api import kv
from ..api.kv import KeyLike
from ..api.plan import CloseWatch, NextEvents, OpenWatch, Plan, Steps
from ..api.request import Request
from ..api.txn import TXN, Compare, Comparison, Op, txn
from ..errors import EmptyKeyError, EtcdError, LeaseExpiredError, show_key
from ..types import EventType, ResponseHeader, TxnResult
from .handles import OnSession

__all__ = ["MutexState", "lock_prefix", "wait_turn"]


def lock_prefix(name: KeyLike) -> bytes:
    """``name`` + ``/``: the prefix under which a lock's or an election's keys live."""
    key: bytes = _codec.keys.to_bytes(name)
    if not key:
        raise EmptyKeyError("the name must not be empty")
    return key + b"/"


def wait_turn(prefix: bytes, key: bytes, revision: int) -> "Steps[ResponseHeader]":
    """Wait until no key under ``prefix`` created before ``revision`` is left --
    the lock is then ours -- watching only the newest such key each time.

    Go's algorithm (``waitDeletes``), with changes that keep the hand-off short:

    * the watch starts *now*, which etcd serves at once (a watch from a past
      revision waits for its catch-up loop, every 100 ms), and a read after
      it makes sure the key did not go in between;
    * the re-check after a deletion and the check that ``key`` itself still
      exists are one Txn, and a *serializable* one (answered by the member
      from its own state, no quorum round): keys before ours are never
      created again (create revisions only grow), so a member that has
      applied the deletion -- its answer's revision says so; if not, the
      quorum is asked -- cannot show fewer of them than there are;
    * when that key is the *only* one before ours (the range read's ``more``
      says so: etcd sets it when keys beyond the limit matched its filters),
      its deletion makes the lock ours at once -- create revisions only grow,
      so no earlier key can appear -- and nothing is read again: the
      hand-off costs the deletion event alone. Our own key is then watched
      in the same range, so a lost session is still noticed;
    * if the session's lease was lost meanwhile (``key`` is gone) nothing is
      held: LeaseExpiredError, as Go 3.5's ``ErrSessionExpired``.
    """
    def check(serializable: bool) -> bytes:
        return txn(success=[
            Op.get(prefix, prefix=True, sort_target="create", sort_order="descend", limit=1,
                   max_create_revision=revision - 1, serializable=serializable),
            Op.get(key, keys_only=True, serializable=serializable),
        ]).payload

    quorum_check, local_check = check(False), check(True)
    deleted_at = 0  # the revision of the deletion that woke us (0: none yet)
    while True:
        turn: TxnResult = yield Request(TXN, local_check if deleted_at else quorum_check,
                                        _codec.wire.decode_txn, repeatable=True)
        if turn.header.revision < deleted_at:
            # A member that has not applied the deletion yet answered: ask the quorum.
            turn = yield Request(TXN, quorum_check, _codec.wire.decode_txn, repeatable=True)
        if not turn.get_result(1).kvs:
            raise _lost(key)
        ahead = turn.get_result(0)
        if not ahead.kvs:
            return turn.header
        last = ahead.kvs[0]
        alone = not ahead.more
        if alone:  # one watch on both keys: the predecessor's deletion and ours
            low, high = sorted((last.key, key))
            watch = yield OpenWatch(low, high + b"\x00")
        else:
            watch = yield OpenWatch(last.key)
        now: TxnResult = yield txn(success=[Op.get(last.key, keys_only=True), Op.get(key, keys_only=True)])
        still = now.get_result(0).kvs
        if not now.get_result(1).kvs:
            yield CloseWatch(watch)
            raise _lost(key)
        if still and still[0].create_revision == last.create_revision:
            while True:
                events = yield NextEvents(watch)
                if any(e.type == EventType.DELETE and e.kv.key == key for e in events):
                    yield CloseWatch(watch)
                    raise _lost(key)
                deleted = [e for e in events if e.type == EventType.DELETE and e.kv.key == last.key]
                if deleted:
                    break
            deleted_at = deleted[0].kv.mod_revision
            if alone:
                yield CloseWatch(watch)
                return now.header._replace(revision=deleted_at)
        yield CloseWatch(watch)


def _lost(key: bytes) -> LeaseExpiredError:
    return LeaseExpiredError(f"the session's lease was lost while waiting ({show_key(key)} is gone)")


class MutexState(OnSession):
    """What a lock handle knows, and the plans that lock and unlock it."""

    def __init__(self, session: Any, name: KeyLike) -> None:
        super().__init__(session)
        self.prefix = lock_prefix(name)
        self._my_key = self.prefix + b"%x" % self._lease
        # The same for every lock() of this handle: encoded once (it is most
        # of the Python work of an uncontended lock).
        owner = Op.get(self.prefix, prefix=True, sort_target="create", sort_order="ascend", limit=1)
        self._acquire_payload = txn(
            compare=[Compare.create_revision(self._my_key) == 0],
            success=[Op.put(self._my_key, b"", lease=self._lease), owner],
            failure=[Op.get(self._my_key), owner],
        ).payload
        #: This process's key while it holds or waits for the lock (None otherwise).
        self.key: Optional[bytes] = None
        #: The key's create revision: the fencing token of this hold (-1: none).
        self.revision = -1
        #: The header of the answer that gave this process the lock.
        self.header: Optional[ResponseHeader] = None

    @property
    def locked(self) -> bool:
        """Whether this handle holds the lock (as far as it knows: see :meth:`is_owner`)."""
        return self.header is not None

    def is_owner(self) -> Comparison:
        """A Txn compare that holds only while this hold is the owner's:
        ``txn(compare=[mutex.is_owner()], success=[...])`` never writes after
        the lock passed on."""
        return Compare.create_revision(self.key or b"\x00") == self.revision

    def _acquire(self) -> "Steps[bool]":
        """Put my key (or find it, if this session already has one) and read
        the owner: one Txn for the uncontended path. True if I own the lock."""
        self.key = self._my_key
        result: TxnResult = yield Request(TXN, self._acquire_payload, _codec.wire.decode_txn)
        self.revision = (result.header.revision if result.succeeded
                         else result.get_result(0).kvs[0].create_revision)
        holders = result.get_result(1).kvs
        if not holders or holders[0].create_revision == self.revision:
            self.header = result.header
            return True
        return False

    def _lock_steps(self) -> "Steps[None]":
        try:
            if (yield from self._acquire()):
                return
            self.header = yield from wait_turn(self.prefix, self._my_key, self.revision)
        except GeneratorExit:  # closed by its consumer: nothing to clean
            raise
        except BaseException:
            # A timeout, Ctrl-C, a cancelled task, a failed call: leave no key
            # behind (the next waiter would wait on it until the lease expires).
            yield from self._release_quietly()
            raise

    def _release_quietly(self) -> "Steps[None]":
        try:
            yield from self._unlock_steps()
        except EtcdError:
            pass  # the key goes with the session's lease anyway

    def _try_lock_steps(self) -> "Steps[bool]":
        try:
            owned = yield from self._acquire()
        except GeneratorExit:  # closed by its consumer: nothing to clean
            raise
        except BaseException:
            yield from self._release_quietly()
            raise
        if not owned:
            yield from self._unlock_steps()
        return owned

    def _unlock_steps(self) -> "Steps[None]":
        key = self.key
        if key is not None:
            yield kv.delete(key)
        self.key, self.revision, self.header = None, -1, None

    def lock_plan(self, timeout: Optional[float] = None) -> "Plan[None]":
        """Wait until this process holds the lock (at most ``timeout`` seconds:
        Timeout, and no key left behind)."""
        return Plan(self._lock_steps(), timeout)

    def try_lock_plan(self) -> "Plan[bool]":
        """Take the lock if it is free now; False (and no key left) if not."""
        return Plan(self._try_lock_steps())

    def unlock_plan(self) -> "Plan[None]":
        """Release the lock (delete this process's key)."""
        return Plan(self._unlock_steps())

    def __repr__(self) -> str:
        state = f"held rev={self.revision}" if self.locked else "not held"
        return f"<{type(self).__name__} {self.prefix!r} {state}>"
