"""etcdfast: a fast, complete etcd v3 client, sync and asyncio.

::

    import etcdfast

    with etcdfast.Client("127.0.0.1:2379") as client:
        client.put("/greeting", "hello")
        print(client.get("/greeting").kvs[0].value)   # b'hello'

``etcdfast.IMPLEMENTATION`` says which codec twin is active: ``"fast"`` (the
compiled Cython extension) or ``"pure"`` (pure Python; forced with
``ETCDFAST_PURE=1``). Both behave identically.

Importing etcdfast is cheap: the clients (and grpc, asyncio, the codec) are
imported on first use of their names, so the pytest plugin and the command
line pay only for what they use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, List

from .errors import (
    AuthError,
    BulkWriteError,
    ClientClosedError,
    ClosedDuringCallError,
    ClusterError,
    CompactedError,
    ConcurrencyError,
    ConnectionLostError,
    DuplicateKeyError,
    ElectionNoLeaderError,
    ElectionNotLeaderError,
    EmptyKeyError,
    EtcdError,
    ForkedClientError,
    FutureRevisionError,
    InvalidArgumentError,
    LeaseExpiredError,
    LeaseNotFoundError,
    NoLeaderError,
    OldClusterError,
    OutcomeUnknownError,
    PermissionDeniedError,
    ProtocolError,
    RequestTooLargeError,
    ResponseTooLargeError,
    SnapshotIntegrityError,
    StaleReadError,
    Timeout,
    TLSError,
    TooManyOpsError,
    Unavailable,
)
from .types import (
    Alarm,
    AlarmType,
    AuthStatus,
    BulkResult,
    CampaignResult,
    CompactResult,
    DefragmentResult,
    DeleteResult,
    Event,
    EventType,
    GetResult,
    HashKVResult,
    HashResult,
    KeyValue,
    LeaderKey,
    LeaseGrant,
    LeaseKeepAlive,
    LeaseTimeToLive,
    LockResult,
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

if TYPE_CHECKING:
    from ._codec import IMPLEMENTATION
    from ._core.observe import CallInfo
    from ._sync import Client, Lease, Watch
    from ._sync.concurrency import Election, Mutex, Session
    from ._sync.kv import NamespaceView, OrderedView, Syncer
    from .aio import AsyncClient, AsyncLease, AsyncWatch
    from .aio.concurrency import AsyncElection, AsyncMutex, AsyncSession
    from .aio.kv import AsyncNamespaceView, AsyncOrderedView, AsyncSyncer
    from .api.concurrency import Isolation
    from .api.txn import Compare, Comparison, Op
    from .discovery import srv_endpoints

__version__ = "0.1.0"

#: Names imported on first use, and the module that defines each.
_LAZY = {
    "IMPLEMENTATION": "._codec",
    "Client": "._sync",
    "Lease": "._sync",
    "Watch": "._sync",
    "AsyncClient": ".aio",
    "AsyncLease": ".aio",
    "AsyncWatch": ".aio",
    "Session": "._sync.concurrency",
    "Mutex": "._sync.concurrency",
    "Election": "._sync.concurrency",
    "AsyncSession": ".aio.concurrency",
    "AsyncMutex": ".aio.concurrency",
    "AsyncElection": ".aio.concurrency",
    "Isolation": ".api.concurrency",
    "Compare": ".api.txn",
    "Comparison": ".api.txn",
    "Op": ".api.txn",
    "CallInfo": "._core.observe",
    "NamespaceView": "._sync.kv",
    "OrderedView": "._sync.kv",
    "Syncer": "._sync.kv",
    "AsyncNamespaceView": ".aio.kv",
    "AsyncOrderedView": ".aio.kv",
    "AsyncSyncer": ".aio.kv",
    "srv_endpoints": ".discovery",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value  # the next lookup is a plain attribute
    return value


def __dir__() -> List[str]:
    return sorted(set(globals()) | set(_LAZY))

__all__ = [
    "IMPLEMENTATION",
    "Client",
    "AsyncClient",
    "Watch",
    "AsyncWatch",
    "Lease",
    "AsyncLease",
    "NamespaceView",
    "OrderedView",
    "Syncer",
    "AsyncNamespaceView",
    "AsyncOrderedView",
    "AsyncSyncer",
    "CallInfo",
    "srv_endpoints",
    "Session",
    "Mutex",
    "Election",
    "AsyncSession",
    "AsyncMutex",
    "AsyncElection",
    "Isolation",
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
    "LockResult",
    "LeaderKey",
    "CampaignResult",
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
    "ConcurrencyError",
    "ElectionNotLeaderError",
    "ElectionNoLeaderError",
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
    "ConnectionLostError",
    "ClosedDuringCallError",
    "TLSError",
    "ForkedClientError",
    "OldClusterError",
    "StaleReadError",
]
