"""Locks, elections, STM and recipes: Go's clientv3/concurrency and etcd's contrib/recipes.

Made from a client (``client.session()``, ``client.stm()``, ``client.queue()``...)
or a session (``session.mutex(name)``, ``session.election(name)``...); the
classes are here for annotations. The sync ones run on :class:`etcdfast.Client`,
the ``Async*`` ones on :class:`etcdfast.AsyncClient`.
"""

from ._sync.concurrency import (
    Barrier,
    DoubleBarrier,
    Election,
    Mutex,
    PriorityQueue,
    Queue,
    RWMutex,
    Session,
    Stm,
)
from .aio.concurrency import (
    AsyncBarrier,
    AsyncDoubleBarrier,
    AsyncElection,
    AsyncMutex,
    AsyncPriorityQueue,
    AsyncQueue,
    AsyncRWMutex,
    AsyncSession,
    AsyncStm,
)
from .api.concurrency import DEFAULT_SESSION_TTL, Isolation

__all__ = [
    "Session", "Mutex", "Election", "RWMutex", "Barrier", "DoubleBarrier", "Queue", "PriorityQueue", "Stm",
    "AsyncSession", "AsyncMutex", "AsyncElection", "AsyncRWMutex", "AsyncBarrier", "AsyncDoubleBarrier",
    "AsyncQueue", "AsyncPriorityQueue", "AsyncStm", "Isolation", "DEFAULT_SESSION_TTL",
]
