"""Result types returned by every etcdfast call.

All results are small immutable ``NamedTuple`` classes, defined once here and
returned by both codec twins. Tuples are the cheapest Python object to build
from C (the Cython twin allocates them directly, see ``_fast/records.h``), they
compare by value and need no ``__dict__``. Keys and values are always
``bytes``; the ``*_text`` helpers decode them when you know they are text.

The many-record fields (``GetResult.kvs``, ``DeleteResult.prev_kvs``,
``WatchResponse.events``) are :class:`Records`: read-only sequences that keep
the response and build each record when it is indexed or iterated.
"""

from __future__ import annotations

from enum import IntEnum
from operator import attrgetter
from typing import Any, List, NamedTuple, Optional, Sequence, Union

__all__ = [
    "Records",
    "ResponseHeader",
    "KeyValue",
    "GetResult",
    "PutResult",
    "DeleteResult",
    "TxnResult",
    "CompactResult",
    "BulkResult",
    "OpResult",
    "SortOrder",
    "SortTarget",
    "EventType",
    "Event",
    "WatchResponse",
    "Progress",
    "LeaseGrant",
    "LeaseTimeToLive",
    "LeaseKeepAlive",
    "AuthStatus",
    "PermissionType",
    "Permission",
    "Role",
    "Member",
    "MemberListResult",
    "MemberAddResult",
    "AlarmType",
    "Alarm",
    "StatusResult",
    "HashResult",
    "HashKVResult",
    "DefragmentResult",
    "MoveLeaderResult",
    "SnapshotResult",
    "SnapshotChunk",
]


class Records(Sequence[Any]):
    """The read-only sequences of records in results: ``GetResult.kvs``,
    ``DeleteResult.prev_kvs``, ``WatchResponse.events``.

    An abstract class: each codec twin's ``KeyValues``/``Events`` registers
    here, so ``isinstance(x, Records)`` recognises them. They keep the
    response and build a record when it is first indexed or iterated (an equal
    tuple on each access); they behave as read-only lists -- ``len``,
    indexing, slices (plain lists), iteration, ``in``, ``index``, ``count``,
    ``+``, equality with lists -- and pickle as lists. The records own their
    data and outlive the sequence.
    """

    __slots__ = ()


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


def _summary(kvs: Sequence[KeyValue]) -> str:
    # A 100k-key range must not print 100k keys in a traceback or a REPL.
    if len(kvs) <= 3:
        return repr(kvs)
    return f"[{kvs[0]!r}, ... {len(kvs) - 2} more ..., {kvs[-1]!r}]"


class GetResult(NamedTuple):
    """Answer to a range read: ``kvs`` in range order, ``count`` of all matches."""

    header: ResponseHeader
    kvs: Sequence[KeyValue]
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
    prev_kvs: Sequence[KeyValue]

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

    def get_result(self, index: int) -> GetResult:
        """``responses[index]`` as the :class:`GetResult` it must be (TypeError
        if that op was not a get): typed access for type checkers."""
        result = self.responses[index]
        if not isinstance(result, GetResult):
            raise TypeError(f"op {index} of the txn answered {type(result).__name__}, not GetResult")
        return result


class CompactResult(NamedTuple):
    """Answer to a compaction."""

    header: ResponseHeader


class BulkResult(NamedTuple):
    """Summary of a completed ``put_many``.

    ``keys`` items were written in ``batches`` atomic Txns; every key of one
    batch carries the same ``mod_revision``, and the batches' revisions run
    from ``first_revision`` to ``last_revision`` (both 0 for empty input).
    ``elapsed`` is the wall time in seconds.
    """

    keys: int
    batches: int
    first_revision: int
    last_revision: int
    elapsed: float


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
        """The changed key (``kv.key``)."""
        return self.kv.key

    @property
    def value(self) -> bytes:
        """The value written (``kv.value``; empty for a ``DELETE``)."""
        return self.kv.value

    @property
    def is_put(self) -> bool:
        return self.type == EventType.PUT

    @property
    def is_delete(self) -> bool:
        return self.type == EventType.DELETE


def _lookup_in_c(cls: type, name: str, path: str) -> None:
    """Replace the property ``cls.name`` by one that follows ``path`` with attrgetter.

    The Python body stays the typed, documented spelling; the replacement
    does the same attribute lookups in C. Watch consumers read ``event.key``
    once per event: a property with a Python body costs ~75 ns there, one
    built on attrgetter ~50 ns (2.5 ms per 100,000 events).
    """
    spelled: property = cls.__dict__[name]
    setattr(cls, name, property(attrgetter(path), doc=spelled.__doc__))


_lookup_in_c(Event, "revision", "kv.mod_revision")
_lookup_in_c(Event, "key", "kv.key")
_lookup_in_c(Event, "value", "kv.value")


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
    events: Sequence[Event]

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


class Progress(NamedTuple):
    """A progress notification: every change up to ``revision`` has been delivered.

    Yielded by watches created with ``progress_notify=True`` (periodically, or
    after ``request_progress()``), interleaved with their :class:`Event` items.
    """

    revision: int


class LeaseGrant(NamedTuple):
    """Answer to a lease grant: the lease ``id`` and the ``ttl`` the server chose."""

    header: ResponseHeader
    id: int
    ttl: int


class LeaseTimeToLive(NamedTuple):
    """A lease's remaining ``ttl`` (seconds), its ``granted_ttl`` and, if asked, its ``keys``."""

    header: ResponseHeader
    id: int
    ttl: int
    granted_ttl: int
    keys: List[bytes]


class LeaseKeepAlive(NamedTuple):
    """Answer to one keep-alive: the lease's renewed ``ttl`` (<= 0: the lease is gone)."""

    header: ResponseHeader
    id: int
    ttl: int


# -- cluster and maintenance (etcdfast.cluster, etcdfast.maintenance) ----------
# Member IDs are 64-bit numbers that etcd and etcdctl print in hex; the reprs
# below do the same so they can be compared with etcdctl's output by eye.


class Member(NamedTuple):
    """One cluster member. ``name`` and ``client_urls`` are empty until a member
    added with ``member_add`` has started and joined."""

    id: int
    name: str
    peer_urls: List[str]
    client_urls: List[str]
    is_learner: bool

    @property
    def started(self) -> bool:
        """False for a member that was added but has not joined yet (etcdctl's "unstarted")."""
        return bool(self.name)

    def __repr__(self) -> str:
        return (
            f"Member(id={self.id:#x}, name={self.name!r}, peer_urls={self.peer_urls!r}, "
            f"client_urls={self.client_urls!r}, is_learner={self.is_learner})"
        )


class MemberListResult(NamedTuple):
    """The cluster's members (after the change, for add/remove/update/promote)."""

    header: ResponseHeader
    members: List[Member]

    def get(self, member_id: int) -> Optional[Member]:
        """The member with this ID, or ``None``."""
        for member in self.members:
            if member.id == member_id:
                return member
        return None


class MemberAddResult(NamedTuple):
    """Answer to ``member_add``: the new ``member`` (not started yet) and all ``members``."""

    header: ResponseHeader
    member: Member
    members: List[Member]


class AlarmType(IntEnum):
    """An etcd alarm (etcd ``AlarmType``). ``NONE`` in a request means "any"."""

    NONE = 0
    NOSPACE = 1  # the backend quota is exhausted: writes are refused
    CORRUPT = 2  # a data-corruption check failed


class Alarm(NamedTuple):
    """An active alarm raised on one member."""

    member_id: int
    alarm: AlarmType

    def __repr__(self) -> str:
        return f"Alarm(member_id={self.member_id:#x}, alarm={self.alarm.name})"


class StatusResult(NamedTuple):
    """Status of the member that answered (``header.member_id``).

    ``leader`` is the leader's member ID (0: no leader); ``db_size`` is the
    backend file size and ``db_size_in_use`` the part holding live data (the
    gap is what ``defragment`` gives back); ``errors`` lists the member's
    problems (active alarms, "no leader").
    """

    header: ResponseHeader
    version: str
    db_size: int
    leader: int
    raft_index: int
    raft_term: int
    raft_applied_index: int
    errors: List[str]
    db_size_in_use: int
    is_learner: bool

    @property
    def is_leader(self) -> bool:
        """True when the answering member is the leader."""
        return self.leader != 0 and self.leader == self.header.member_id

    def __repr__(self) -> str:
        return (
            f"StatusResult(member_id={self.header.member_id:#x}, version={self.version!r}, "
            f"leader={self.leader:#x}, db_size={self.db_size}, db_size_in_use={self.db_size_in_use}, "
            f"raft_index={self.raft_index}, raft_term={self.raft_term}, "
            f"raft_applied_index={self.raft_applied_index}, errors={self.errors!r}, "
            f"is_learner={self.is_learner}, header={self.header!r})"
        )


class HashResult(NamedTuple):
    """Hash of the member's whole backend (``header.revision``: the revision it covers).
    Differs between members even when their data agree; use ``hash_kv`` to compare."""

    header: ResponseHeader
    hash: int


class HashKVResult(NamedTuple):
    """Hash of the MVCC key-value history up to a revision: equal on every healthy
    member for the same revision and ``compact_revision``."""

    header: ResponseHeader
    hash: int
    compact_revision: int


class DefragmentResult(NamedTuple):
    """Answer to ``defragment`` (of the member that answered)."""

    header: ResponseHeader


class MoveLeaderResult(NamedTuple):
    """Answer to ``move_leader``: leadership has moved to the target."""

    header: ResponseHeader


class SnapshotResult(NamedTuple):
    """A snapshot saved by ``snapshot(path)``, its checksum verified.

    ``size`` is the file's size in bytes, including the 32-byte SHA-256
    checksum etcd appends to the database (``etcdutl snapshot restore``
    expects the file exactly so); ``sha256`` is that checksum in hex.
    ``revision`` is the newest store revision in the snapshot, read back from
    the saved database (``None`` if it could not be read); ``version`` is the
    server's storage version (etcd >= 3.6 sends it; empty before).
    """

    path: str
    size: int
    sha256: str
    revision: Optional[int]
    version: str


class SnapshotChunk(NamedTuple):
    """One ``SnapshotResponse``: a piece of the database (``blob``) and how many
    bytes are still to come (``remaining_bytes``, 0 on the last data chunk and
    on the checksum chunk that follows it).

    ``blob`` is a view into the response bytes, not a copy; ``version`` is the
    server's storage version (etcd >= 3.6 sends it, older servers do not: empty).
    """

    remaining_bytes: int
    blob: memoryview
    version: str


class AuthStatus(NamedTuple):
    """Whether authentication is on, and the auth store's revision."""

    header: ResponseHeader
    enabled: bool
    auth_revision: int


class PermissionType(IntEnum):
    """What a role may do with a key range (etcd ``authpb.Permission.Type``)."""

    READ = 0
    WRITE = 1
    READWRITE = 2


class Permission(NamedTuple):
    """``type`` access to ``[key, range_end)`` (empty ``range_end``: the key alone;
    ``b"\\0"``: every key from ``key`` on)."""

    type: PermissionType
    key: bytes
    range_end: bytes


class Role(NamedTuple):
    """A role and the permissions it grants."""

    name: str
    permissions: List[Permission]


class LockResult(NamedTuple):
    """Answer of etcd's Lock service: the key that holds the lock (give it to ``unlock``)."""

    header: ResponseHeader
    key: bytes


class LeaderKey(NamedTuple):
    """A leadership won through etcd's Election service (give it to
    ``election_proclaim``/``election_resign``)."""

    name: bytes
    key: bytes
    rev: int
    lease: int


class CampaignResult(NamedTuple):
    """Answer of the Election service's Campaign: the leadership won."""

    header: ResponseHeader
    leader: LeaderKey
