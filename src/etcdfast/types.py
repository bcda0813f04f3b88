"""Result types returned by every etcdfast call.

All results are small immutable ``NamedTuple`` classes, defined once here and
returned by both codec twins. Tuples are the cheapest Python object to build
from C (the Cython twin allocates them directly, see ``_fast/records.h``), they
compare by value and need no ``__dict__``. Keys and values are always
``bytes``; the ``*_text`` helpers decode them when you know they are text.
"""

from __future__ import annotations

from enum import IntEnum
from typing import List, NamedTuple, Optional, Union

__all__ = [
    "ResponseHeader",
    "KeyValue",
    "GetResult",
    "PutResult",
    "DeleteResult",
    "TxnResult",
    "CompactResult",
    "OpResult",
    "SortOrder",
    "SortTarget",
    "EventType",
    "Event",
    "WatchResponse",
]


class SortOrder(IntEnum):
    """Order of a range result (etcd ``RangeRequest.SortOrder``)."""

    NONE = 0
    ASCEND = 1
    DESCEND = 2


class SortTarget(IntEnum):
    """Field a range result is sorted by (etcd ``RangeRequest.SortTarget``)."""

    KEY = 0
    VERSION = 1
    CREATE = 2
    MOD = 3
    VALUE = 4


class ResponseHeader(NamedTuple):
    """Who answered and at which store revision."""

    cluster_id: int
    member_id: int
    revision: int
    raft_term: int


class KeyValue(NamedTuple):
    """One key with its value and MVCC metadata."""

    key: bytes
    create_revision: int
    mod_revision: int
    version: int
    value: bytes
    lease: int

    @property
    def key_text(self) -> str:
        """The key decoded as UTF-8 (raises ``UnicodeDecodeError`` if it is not)."""
        return self.key.decode()

    @property
    def value_text(self) -> str:
        """The value decoded as UTF-8 (raises ``UnicodeDecodeError`` if it is not)."""
        return self.value.decode()


def _summary(kvs: List[KeyValue]) -> str:
    # A 100k-key range must not print 100k keys in a traceback or a REPL.
    if len(kvs) <= 3:
        return repr(kvs)
    return f"[{kvs[0]!r}, ... {len(kvs) - 2} more ..., {kvs[-1]!r}]"


class GetResult(NamedTuple):
    """Answer to a range read: ``kvs`` in range order, ``count`` of all matches."""

    header: ResponseHeader
    kvs: List[KeyValue]
    more: bool
    count: int  # type: ignore[assignment]  # shadows tuple.count, by design

    @property
    def value(self) -> Optional[bytes]:
        """Value of the first key, or ``None`` when nothing matched."""
        return self.kvs[0].value if self.kvs else None

    def __repr__(self) -> str:
        return (
            f"GetResult(count={self.count}, more={self.more}, "
            f"kvs={_summary(self.kvs)}, header={self.header!r})"
        )


class PutResult(NamedTuple):
    """Answer to a put; ``prev_kv`` is set only when asked for and the key existed."""

    header: ResponseHeader
    prev_kv: Optional[KeyValue]


class DeleteResult(NamedTuple):
    """Answer to a delete: how many keys went, and their last values if asked for."""

    header: ResponseHeader
    deleted: int
    prev_kvs: List[KeyValue]

    def __repr__(self) -> str:
        return (
            f"DeleteResult(deleted={self.deleted}, prev_kvs={_summary(self.prev_kvs)}, "
            f"header={self.header!r})"
        )


class TxnResult(NamedTuple):
    """Answer to a transaction: which branch ran and one result per op of it.

    ``responses[i]`` is a :class:`GetResult`, :class:`PutResult`,
    :class:`DeleteResult` or nested :class:`TxnResult`, matching the i-th op
    of the branch that ran (``None`` only if the server sent an empty op).
    """

    header: ResponseHeader
    succeeded: bool
    responses: List[Optional["OpResult"]]


class CompactResult(NamedTuple):
    """Answer to a compaction."""

    header: ResponseHeader


OpResult = Union[GetResult, PutResult, DeleteResult, TxnResult]


class EventType(IntEnum):
    """Kind of a watch event (etcd ``mvccpb.Event.EventType``)."""

    PUT = 0
    DELETE = 1


class Event(NamedTuple):
    """One change seen by a watch.

    For a ``PUT``, ``kv`` is the key as written; for a ``DELETE``, ``kv`` holds
    only the key and the deletion's ``mod_revision``. ``prev_kv`` is the key
    before the change, when the watch asked for it and the key existed.
    """

    type: EventType
    kv: KeyValue
    prev_kv: Optional[KeyValue]

    @property
    def revision(self) -> int:
        """The store revision of the change."""
        return self.kv.mod_revision

    @property
    def key(self) -> bytes:
        return self.kv.key

    @property
    def value(self) -> bytes:
        return self.kv.value

    @property
    def is_put(self) -> bool:
        return self.type == EventType.PUT

    @property
    def is_delete(self) -> bool:
        return self.type == EventType.DELETE


class WatchResponse(NamedTuple):
    """One decoded ``WatchResponse``: a batch of events for one watch, or a
    control message (created, canceled, compacted, progress).

    A progress notification has no events and not ``created``/``canceled``;
    its ``header.revision`` says every change up to that revision was sent.
    """

    header: ResponseHeader
    watch_id: int
    created: bool
    canceled: bool
    compact_revision: int
    cancel_reason: str
    fragment: bool
    events: List[Event]

    @property
    def is_progress_notify(self) -> bool:
        return not (self.events or self.created or self.canceled or self.compact_revision)

    def __repr__(self) -> str:
        flags = [name for name in ("created", "canceled", "fragment") if getattr(self, name)]
        if self.compact_revision:
            flags.append(f"compact_revision={self.compact_revision}")
        if self.cancel_reason:
            flags.append(f"cancel_reason={self.cancel_reason!r}")
        events = repr(self.events) if len(self.events) <= 3 else (
            f"[{self.events[0]!r}, ... {len(self.events) - 1} more]"
        )
        return (f"WatchResponse(watch_id={self.watch_id}, {', '.join(flags + [f'events={events}'])}, "
                f"header={self.header!r})")
