"""etcdfast: a fast, complete etcd v3 client, sync and asyncio.

::

    import etcdfast

    with etcdfast.Client("127.0.0.1:2379") as client:
        client.put("/greeting", "hello")
        print(client.get("/greeting").kvs[0].value)   # b'hello'

``etcdfast.IMPLEMENTATION`` says which codec twin is active: ``"fast"`` (the
compiled Cython extension) or ``"pure"`` (pure Python; forced with
``ETCDFAST_PURE=1``). Both behave identically.
"""

from ._codec import IMPLEMENTATION
from .aio import AsyncClient
from .client import Client
from .errors import (
    AuthError,
    BulkWriteError,
    ClientClosedError,
    ClusterError,
    CompactedError,
    DuplicateKeyError,
    EmptyKeyError,
    EtcdError,
    FutureRevisionError,
    InvalidArgumentError,
    LeaseExpiredError,
    LeaseNotFoundError,
    NoLeaderError,
    OutcomeUnknownError,
    PermissionDeniedError,
    ProtocolError,
    RequestTooLargeError,
    ResponseTooLargeError,
    SnapshotIntegrityError,
    Timeout,
    TLSError,
    TooManyOpsError,
    Unavailable,
)
from .txn import Compare, Comparison, Op
from .types import (
    Alarm,
    AlarmType,
    AuthStatus,
    BulkResult,
    CompactResult,
    DefragmentResult,
    DeleteResult,
    Event,
    EventType,
    GetResult,
    HashKVResult,
    HashResult,
    KeyValue,
    LeaseGrant,
    LeaseKeepAlive,
    LeaseTimeToLive,
    Member,
    MemberAddResult,
    MemberListResult,
    MoveLeaderResult,
    Permission,
    PermissionType,
    Progress,
    PutResult,
    ResponseHeader,
    Role,
    SnapshotResult,
    SortOrder,
    SortTarget,
    StatusResult,
    TxnResult,
    WatchResponse,
)

__version__ = "0.1.0"

__all__ = [
    "IMPLEMENTATION",
    "Client",
    "AsyncClient",
    "Compare",
    "Comparison",
    "Op",
    "KeyValue",
    "ResponseHeader",
    "GetResult",
    "PutResult",
    "DeleteResult",
    "TxnResult",
    "CompactResult",
    "BulkResult",
    "SortOrder",
    "SortTarget",
    "Member",
    "MemberListResult",
    "MemberAddResult",
    "StatusResult",
    "AlarmType",
    "Alarm",
    "HashResult",
    "HashKVResult",
    "DefragmentResult",
    "MoveLeaderResult",
    "SnapshotResult",
    "EtcdError",
    "ProtocolError",
    "ClientClosedError",
    "InvalidArgumentError",
    "EmptyKeyError",
    "TooManyOpsError",
    "DuplicateKeyError",
    "RequestTooLargeError",
    "ResponseTooLargeError",
    "CompactedError",
    "FutureRevisionError",
    "LeaseNotFoundError",
    "PermissionDeniedError",
    "AuthError",
    "NoLeaderError",
    "Unavailable",
    "Timeout",
    "BulkWriteError",
    "ClusterError",
    "SnapshotIntegrityError",
    "AuthStatus",
    "Event",
    "EventType",
    "LeaseGrant",
    "LeaseKeepAlive",
    "LeaseTimeToLive",
    "Permission",
    "PermissionType",
    "Progress",
    "Role",
    "WatchResponse",
    "LeaseExpiredError",
    "OutcomeUnknownError",
    "TLSError",
]
