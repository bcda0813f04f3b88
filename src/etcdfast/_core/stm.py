"""Software transactional memory over etcd: Go's ``concurrency.STM``, no IO.

The user's function reads and writes through an STM object; reads are
recorded (the read set), writes buffered (the write set), and at the end one
Txn commits the writes if nothing read changed meanwhile -- else the function
runs again. The isolation levels are Go's:

* ``serializable_snapshot`` (the default): reads at the revision of the first
  one, and the commit also fails if a written key changed after that
  revision: a serializable history. (After a failed commit, the keys it
  brought back start the next run at their newer revision; a run that then
  reads other keys too may see two revisions, and its commit fails -- Go's
  behaviour.)
* ``serializable``: reads at one revision (same note); the commit checks the
  read keys.
* ``repeatable_reads``: each key read once (serializable reads, no revision
  pinned); the commit checks the read keys.
* ``read_committed``: reads as they come; the commit checks nothing (writes
  are atomic, not isolated).

A failed serializable commit brings back the read keys' current values with
it (the Txn's else branch), so the next run starts with them prefetched.
"""

from __future__ import annotations

from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

from .. import _codec
from ..api import kv
from ..api.args import INT64_MAX
from ..api.concurrency import Isolation
from ..api.kv import KeyLike, LeaseLike
from ..api.plan import Apply, Plan, Steps
from ..api.request import Request
from ..api.txn import Compare, Comparison, Op, txn
from ..types import GetResult, TxnResult

__all__ = ["StmState", "StmWrites"]


class StmState:
    """The read and write sets of one STM, and the requests it needs.

    A face reads with :meth:`read` (a Request to run, or None when the answer
    is known), :meth:`record` (the Txn's answer) and :meth:`value`; writes
    with :meth:`put`/:meth:`delete`; :meth:`plan` runs the user's function
    and commits until a commit succeeds.
    """

    def __init__(self, level: Isolation = Isolation.SERIALIZABLE_SNAPSHOT,
                 prefetch: Tuple[bytes, ...] = ()) -> None:
        self.isolation = level
        self.prefetch = prefetch
        #: Serializable levels pin their reads to the first read's revision.
        self._snapshot = self.isolation in (Isolation.SERIALIZABLE_SNAPSHOT, Isolation.SERIALIZABLE)
        self._rset: Dict[bytes, GetResult] = {}
        self._wset: Dict[bytes, Tuple[Optional[bytes], Request[object]]] = {}
        self._prefetched: Dict[bytes, GetResult] = {}
        self._read_revision = 0
        self._read_serializable = not self._snapshot  # Go reads the non-snapshot levels serializable
        self._first_read = False
        self._fetching: List[bytes] = []

    @staticmethod
    def keys(key: KeyLike, more: Iterable[KeyLike] = ()) -> Tuple[bytes, ...]:
        return tuple(_codec.keys.to_bytes(k) for k in (key, *more))

    # -- reads --

    def read(self, keys: Sequence[bytes], *, for_revision: bool = False) -> Optional[Request[TxnResult]]:
        """What must be fetched to read ``keys[0]`` -- the other keys are fetched
        in the same call if they have not been read yet (a prefetch) -- or None
        when the read set or the write set answers."""
        first = keys[0]
        if not for_revision and first in self._wset:
            return None
        if self._snapshot:
            self._first_read = not self._rset
            for key in keys:
                if key in self._prefetched:
                    self._rset[key] = self._prefetched.pop(key)
        if first in self._rset:
            return None
        self._fetching = [key for key in dict.fromkeys(keys) if key not in self._rset]
        return txn(success=[kv.get(key, revision=self._read_revision, serializable=self._read_serializable)
                            for key in self._fetching])

    def record(self, result: TxnResult, keys: Optional[Sequence[bytes]] = None) -> None:
        """Take a fetch's answer (of the keys :meth:`read` asked for, or ``keys``)."""
        for index, key in enumerate(self._fetching if keys is None else keys):
            self._rset[key] = result.get_result(index)

    def _response(self, key: bytes) -> GetResult:
        response = self._rset[key]
        if self._snapshot and self._first_read:
            # Every later read is of the store as the first one saw it.
            self._first_read = False
            self._read_revision, self._read_serializable = response.header.revision, True
        return response

    def value(self, keys: Sequence[bytes]) -> Optional[bytes]:
        """The value of ``keys[0]``: as written in this run, else as read (None: no such key)."""
        first = keys[0]
        if first in self._wset:
            return self._wset[first][0]
        return self._response(first).value

    def mod_revision(self, key: bytes) -> int:
        """The mod revision read for ``key`` (0 if it does not exist)."""
        response = self._response(key)
        return response.kvs[0].mod_revision if response.kvs else 0

    # -- writes --

    def put(self, key: KeyLike, value: KeyLike, lease: LeaseLike = 0) -> None:
        request = Op.put(key, value, lease=lease)  # validates, and encodes once
        self._wset[_codec.keys.to_bytes(key)] = (_codec.keys.to_bytes(value), request)

    def delete(self, key: KeyLike) -> None:
        request = Op.delete(key)
        self._wset[_codec.keys.to_bytes(key)] = (None, request)

    # -- the commit --

    def reset(self) -> None:
        self._rset, self._wset = {}, {}

    def _conflicts(self) -> List[Comparison]:
        if self.isolation == Isolation.READ_COMMITTED:
            return []
        compares = [Compare.mod_revision(key) == (r.kvs[0].mod_revision if r.kvs else 0)
                    for key, r in self._rset.items()]
        if self.isolation == Isolation.SERIALIZABLE_SNAPSHOT:
            # Nothing written may have changed since the snapshot was read.
            first = min((r.header.revision for r in self._rset.values()), default=INT64_MAX - 1)
            compares += [Compare.mod_revision(key) < first + 1 for key in self._wset]
        return compares

    def _commit(self) -> "Steps[Optional[TxnResult]]":
        reads = list(self._rset)
        writes = [op for _, op in self._wset.values()]
        if not self._snapshot:
            result: TxnResult = yield txn(compare=self._conflicts(), success=writes)
            return result if result.succeeded else None
        result = yield txn(compare=self._conflicts(), success=writes,
                           failure=[kv.get(key) for key in reads])
        if result.succeeded:
            return result
        # The current values came back with the failure: the next run starts with them.
        self.record(result, reads)
        self._prefetched = dict(self._rset)
        self._read_revision, self._read_serializable = 0, False
        return None

    def _steps(self, run_apply: Apply) -> "Steps[TxnResult]":
        while True:
            self.reset()
            if self.prefetch:  # one call for them all, before apply reads one by one
                fetch = self.read(self.prefetch)
                if fetch is not None:
                    self.record((yield fetch))
                self.value(self.prefetch)  # a first read pins the snapshot revision
            yield run_apply
            committed = yield from self._commit()
            if committed is not None:
                return committed

    def plan(self, run_apply: Apply, timeout: Optional[float] = None) -> "Plan[TxnResult]":
        """Run the user's function (``run_apply``) and commit, again until a commit
        succeeds (at most ``timeout`` seconds in all)."""
        return Plan(self._steps(run_apply), timeout)


class StmWrites:
    """What the sync and asyncio STM objects share: the buffered writes (their
    reads, which may call etcd, are each face's own)."""

    def __init__(self, client: Any, state: StmState) -> None:
        self._client = client
        self._state = state

    def put(self, key: KeyLike, value: KeyLike, *, lease: LeaseLike = 0) -> None:
        """Write ``value`` at commit."""
        self._state.put(key, value, lease)

    def delete(self, key: KeyLike) -> None:
        """Delete ``key`` at commit."""
        self._state.delete(key)
