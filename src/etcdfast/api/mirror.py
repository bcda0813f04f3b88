"""Mirroring a prefix, with no IO: Go's ``mirror.Syncer`` and make-mirror's ops.

A mirror reads everything under a prefix at one revision (the *base*, in
pages, as ``iter_range_pages`` reads) and then watches from the next
revision (the *updates*), so no change is missed and none is applied twice.
``client.mirror(prefix)`` gives a syncer (``_sync.kv``/``aio.kv`` faces);
:func:`update_txns` turns watched events into the transactions that apply
them elsewhere (``etcdfast make-mirror``), one revision per transaction --
etcd applied each revision atomically, and so does the copy.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, List, Optional

from ..errors import InvalidArgumentError
from ..types import Event, EventType, KeyValue, TxnResult
from . import kv as _kv
from . import txn as _txn
from .args import non_negative
from .request import Request

__all__ = [
    "SyncerState", "CopyProgress", "COPY_POLL_S", "rename", "update_txns", "renamed_items",
    "DEFAULT_MAX_TXN_OPS",
]

#: etcdctl's ``--max-txn-ops`` default: etcd's own limit on ops per txn.
DEFAULT_MAX_TXN_OPS = 128
#: How often a copy checks ``stop`` while no update comes.
COPY_POLL_S = 0.5

#: ``copy_to``'s ``progress(copied, revision)``: keys and events copied so far,
#: and the source revision copied up to (what ``--rev`` resumes from).
CopyProgress = Callable[[int, int], Any]


class SyncerState:
    """Where a syncer is: its prefix and the revision its base was read at.

    ``revision=0`` reads the base at the current revision; a revision given
    resumes a mirror (the base at that revision, then updates after it).
    """

    __slots__ = ("prefix", "revision")

    def __init__(self, prefix: bytes, revision: int = 0) -> None:
        self.prefix = prefix
        self.revision = non_negative("revision", revision)

    def base_done(self, revision: int) -> None:
        """The base was read completely at ``revision``."""
        self.revision = revision

    def applied(self, events: "List[Event]") -> None:
        """Updates up to the last of ``events`` were copied: a mirror resumes after it."""
        if events:
            self.revision = max(self.revision, events[-1].kv.mod_revision)

    def updates_from(self) -> int:
        """The revision the updates' watch starts at (the base's + 1)."""
        if not self.revision:
            raise InvalidArgumentError(
                "updates() needs the revision of a base: read base() to the end first, "
                "or give the syncer a revision to resume from"
            )
        return self.revision + 1

    def __repr__(self) -> str:
        return f"<Syncer {self.prefix!r} at revision {self.revision}>"


def rename(key: bytes, source_prefix: bytes, dest_prefix: bytes) -> bytes:
    """``key`` with ``source_prefix`` replaced by ``dest_prefix`` (make-mirror's
    ``--dest-prefix``; an empty ``dest_prefix`` is ``--no-dest-prefix``)."""
    if source_prefix and key.startswith(source_prefix):
        return dest_prefix + key[len(source_prefix):]
    return dest_prefix + key if not source_prefix else key


def update_txns(
    events: Iterable[Event],
    source_prefix: bytes,
    dest_prefix: bytes,
    max_txn_ops: int = DEFAULT_MAX_TXN_OPS,
) -> List["Request[TxnResult]"]:
    """The transactions that apply ``events`` at the destination: the events
    of one revision in one txn (split every ``max_txn_ops`` ops), in order."""
    if isinstance(max_txn_ops, bool) or not isinstance(max_txn_ops, int) or max_txn_ops < 1:
        raise InvalidArgumentError(f"max_txn_ops must be an int >= 1, got {max_txn_ops!r}")
    txns: List[Request[TxnResult]] = []
    ops: List[Request[object]] = []
    last: Optional[int] = None
    for event in events:
        revision = event.kv.mod_revision
        if ops and (revision != last or len(ops) >= max_txn_ops):
            txns.append(_txn.txn(success=ops))
            ops = []
        last = revision
        key = rename(event.kv.key, source_prefix, dest_prefix)
        if event.type == EventType.PUT:
            ops.append(_kv.put(key, event.kv.value))
        else:
            ops.append(_kv.delete(key))
    if ops:
        txns.append(_txn.txn(success=ops))
    return txns


def renamed_items(
    kvs: Iterable[KeyValue], source_prefix: bytes, dest_prefix: bytes
) -> List["tuple[bytes, bytes]"]:
    """``(key, value)`` pairs of a base page, renamed for the destination (for ``put_many``)."""
    return [(rename(kv.key, source_prefix, dest_prefix), kv.value) for kv in kvs]
