"""Leader election with Go's key layout and algorithm, as plans (no IO).

A candidate puts ``name/<lease id in hex>`` (attached to its session's lease,
holding its value) and leads once every key created before its own is gone:
the leader is the key with the lowest create revision, as in Go's
``concurrency.Election`` and ``etcdctl elect NAME``, so Go and Python
processes take part in the same election. ``observe`` follows the leader:
it emits the leader's key-value whenever the leader or its value changes.
"""

from __future__ import annotations

from typing import Any, Optional

from .. import _codec
from ..api import kv
from ..api.kv import KeyLike
from ..api.plan import (
    CloseWatch,
    Emit,
    NextEvents,
    OpenWatch,
    Plan,
    Steps,
    prefix_end,
    wait_events,
)
from ..api.txn import Compare, Op, txn
from ..errors import ElectionNoLeaderError, ElectionNotLeaderError, EtcdError
from ..types import EventType, KeyValue, ResponseHeader, TxnResult
from .handles import OnSession
from .mutex import lock_prefix, wait_turn

__all__ = ["ElectionState"]


class ElectionState(OnSession):
    """What an election handle knows, and its plans.

    ``key``/``revision`` given (Go's ``ResumeElection``): the handle leads
    with that key already (e.g. after a restart of a process whose session
    lease lives on).
    """

    def __init__(self, session: Any, name: KeyLike, *, key: Optional[KeyLike] = None,
                 revision: int = 0) -> None:
        super().__init__(session)
        self.prefix = lock_prefix(name)
        #: The key this handle campaigns or leads with (None: neither).
        self.key: Optional[bytes] = None if key is None else _codec.keys.to_bytes(key)
        self._leading = key is not None
        #: Its create revision (0: none).
        self.revision = revision if key is not None else 0
        self.header: Optional[ResponseHeader] = None

    @property
    def rev(self) -> int:
        """The leader key's create revision (Go's ``Election.Rev``); 0 if none."""
        return self.revision

    @property
    def leading(self) -> bool:
        """Whether this handle won its campaign and was not told it lost since
        (see :meth:`proclaim`); False while the campaign still waits."""
        return self._leading and self.key is not None

    def _campaign_steps(self, value: bytes) -> "Steps[None]":
        key = self.prefix + b"%x" % self._lease
        try:
            # Known before the put is sent: a put whose answer is lost (a
            # timeout in flight) must be cleaned up too.
            self.key, self._leading = key, False
            result: TxnResult = yield txn(
                compare=[Compare.create_revision(key) == 0],
                success=[Op.put(key, value, lease=self._lease)],
                failure=[Op.get(key)],
            )
            self.revision = result.header.revision
            if not result.succeeded:
                mine = result.get_result(0).kvs[0]
                self.revision = mine.create_revision
                if mine.value != value:
                    yield from self._proclaim_steps(value)
            yield from wait_turn(self.prefix, key, self.revision)
        except GeneratorExit:  # closed by its consumer: nothing to clean
            raise
        except BaseException:
            # Timeout, Ctrl-C, a cancelled task...: no candidacy left behind.
            # The key holds our lease id: only we write it, so delete it as is.
            self.key, self._leading = None, False
            try:
                yield kv.delete(key)
            except EtcdError:
                pass  # the key goes with the session's lease anyway
            raise
        self.header = result.header
        self._leading = True

    def _proclaim_steps(self, value: bytes) -> "Steps[None]":
        if self.key is None:  # (a campaign proclaims its value while it waits, as Go's does)
            raise ElectionNotLeaderError("not the leader: campaign first")
        result: TxnResult = yield txn(
            compare=[Compare.create_revision(self.key) == self.revision],
            success=[Op.put(self.key, value, lease=self._lease)],
        )
        if not result.succeeded:
            self.key = None
            raise ElectionNotLeaderError("no longer the leader: the leader key is gone")
        self.header = result.header

    def _resign_steps(self) -> "Steps[None]":
        if self.key is None:
            return
        key, self.key, self._leading = self.key, None, False
        result: TxnResult = yield txn(
            compare=[Compare.create_revision(key) == self.revision], success=[Op.delete(key)],
        )
        self.header = result.header

    def _leader_steps(self) -> "Steps[KeyValue]":
        result = yield kv.get(self.prefix, prefix=True, sort_target="create", sort_order="ascend", limit=1)
        if not result.kvs:
            raise ElectionNoLeaderError(f"election {self.prefix[:-1]!r} has no leader")
        return result.kvs[0]  # type: ignore[no-any-return]

    def _observe_steps(self) -> "Steps[None]":
        while True:
            first = yield kv.get(self.prefix, prefix=True, sort_target="create", sort_order="ascend",
                                 limit=1)
            if first.kvs:
                leader, revision = first.kvs[0], first.header.revision
            else:  # no leader now: the first put under the prefix is the next one
                put = yield from wait_events(self.prefix, prefix_end(self.prefix), first.header.revision,
                                             (EventType.PUT,))
                leader, revision = put.kv, put.kv.mod_revision
            yield Emit(leader)
            watch = yield OpenWatch(leader.key, b"", revision + 1)
            deleted = False
            while not deleted:
                for event in (yield NextEvents(watch)):
                    if event.type == EventType.DELETE:
                        deleted = True
                        break
                    yield Emit(event.kv)  # the same leader, a new value
            yield CloseWatch(watch)

    def campaign_plan(self, value: KeyLike, timeout: Optional[float] = None) -> "Plan[None]":
        """Become the leader with ``value`` (waiting as long as others lead, at
        most ``timeout`` seconds: Timeout, and no candidacy left behind)."""
        return Plan(self._campaign_steps(_codec.keys.to_bytes(value)), timeout)

    def proclaim_plan(self, value: KeyLike) -> "Plan[None]":
        """Change the leader's value (ElectionNotLeaderError if this handle does not lead)."""
        return Plan(self._proclaim_steps(_codec.keys.to_bytes(value)))

    def resign_plan(self) -> "Plan[None]":
        """Give up leadership (nothing happens if this handle does not lead)."""
        return Plan(self._resign_steps())

    def leader_plan(self) -> "Plan[KeyValue]":
        """The current leader's key-value (ElectionNoLeaderError if none)."""
        return Plan(self._leader_steps())

    def observe_plan(self) -> "Plan[None]":
        """The leader's key-value now, then at each change of leader or value."""
        return Plan(self._observe_steps())

    def __repr__(self) -> str:
        state = f"leading with {self.key!r} rev={self.revision}" if self.leading else "not leading"
        return f"<{type(self).__name__} {self.prefix!r} {state}>"
