"""The asyncio client: the method table of :class:`etcdfast.Client`, awaited."""

from __future__ import annotations

import asyncio
import inspect
import logging
from typing import Any, AsyncIterator, List, Optional, Type, TypeVar

from .._core.endpoints import synced_endpoints
from .._core.methods import async_method, async_unary, sync_method
from .._core.snapshot import SnapshotWriter
from .._core.state import ClientState
from ..api import auth as _auth
from ..api import bulk as _bulk
from ..api import cluster as _cluster
from ..api import maintenance as _maint
from ..api import services as _services
from ..api.request import Request
from ..errors import ClientClosedError, EtcdError
from ..types import KeyValue, SnapshotResult
from . import bulk as _aio_bulk
from .executor import AsyncExecutor
from .kv import AsyncKV
from .lease import AsyncKeepAliveStream, AsyncLease
from .plans import run_plan
from .watch import AsyncWatchStream

__all__ = ["AsyncClient"]

T = TypeVar("T")
L = TypeVar("L", bound=AsyncLease)

log = logging.getLogger("etcdfast")


async def _observe(client: "AsyncClient", request: Request[KeyValue]) -> AsyncIterator[KeyValue]:
    async for raw in client._executor.stream(request):
        yield request.decode(raw, client._revisions)


async def _save_snapshot(client: "AsyncClient", plan: _maint.SnapshotPlan) -> SnapshotResult:
    writer = SnapshotWriter(plan.path, plan.progress)
    stream = client._executor.stream(plan.request)
    try:
        async for raw in stream:
            outcome = writer.write(raw)
            if inspect.isawaitable(outcome):
                await outcome
    except BaseException:
        writer.abort()
        raise
    finally:
        await stream.aclose()  # type: ignore[attr-defined]
    # The final fsync runs in a worker thread: the event loop is not blocked by the disk.
    return await asyncio.get_running_loop().run_in_executor(None, writer.finish)


class AsyncClient(ClientState, AsyncKV):
    """An asyncio etcd v3 client (grpc.aio) with the same API as ``Client``.

    ::

        async with etcdfast.AsyncClient("127.0.0.1:2379") as client:
            await client.put("/app/config", "v1")
            print(await client.get_value("/app/config"))

    The options are those of :class:`etcdfast.Client` (see ``__init__``). The
    channel is opened on first use inside the running event loop; use the
    client from that loop only.
    """

    def _started(self) -> None:
        self._executor = AsyncExecutor(self, on_open=self._start_auto_sync)
        #: Executes one Request (the method table's verb).
        self._run = self._executor.run
        self._sync_task: "Optional[asyncio.Task[None]]" = None
        self._watch_stream: Optional[AsyncWatchStream] = None
        self._other_watch_stream: Optional[AsyncWatchStream] = None  # the other require_leader
        self._keepalive_stream: Optional[AsyncKeepAliveStream] = None
        self._callback_tasks: "set[asyncio.Task[None]]" = set()

    # -- bulk ------------------------------------------------------------------

    # (KV's methods are in aio.kv: the views share them)

    put_many = async_method(_bulk.put_many, _aio_bulk.put_many, returns="BulkResult")

    def _keepalive(self) -> AsyncKeepAliveStream:
        self._check_open()
        if self._keepalive_stream is None:
            self._keepalive_stream = AsyncKeepAliveStream(self._executor)
        return self._keepalive_stream

    def _watches(self, require_leader: Optional[bool] = None) -> AsyncWatchStream:
        """The watch stream (made on first use); a watch whose ``require_leader``
        differs from the client's goes on a second one: metadata is per stream."""
        self._check_open()
        if require_leader is not None and bool(require_leader) != self._require_leader:
            if self._other_watch_stream is None:
                self._other_watch_stream = AsyncWatchStream(
                    self._executor, authenticated=self._user is not None, require_leader=require_leader)
            return self._other_watch_stream
        if self._watch_stream is None:
            self._watch_stream = AsyncWatchStream(self._executor, authenticated=self._user is not None)
        return self._watch_stream

    # -- etcd's server-side Lock and Election services (v3lock, v3election)
    lock = async_unary(_services.lock)
    unlock = async_unary(_services.unlock)
    election_campaign = async_unary(_services.election_campaign)
    election_proclaim = async_unary(_services.election_proclaim)
    election_leader = async_unary(_services.election_leader)
    election_resign = async_unary(_services.election_resign)
    election_observe = sync_method(_services.election_observe, _observe,
                                   returns="AsyncIterator[KeyValue]")

    # -- Cluster -----------------------------------------------------------------

    member_list = async_unary(_cluster.member_list)
    member_add = async_unary(_cluster.member_add)
    member_remove = async_unary(_cluster.member_remove)
    member_update = async_unary(_cluster.member_update)
    member_promote = async_unary(_cluster.member_promote)

    # -- Maintenance -------------------------------------------------------------

    status = async_unary(_maint.status)
    defragment = async_unary(_maint.defragment)
    alarms = async_unary(_maint.alarms)
    alarm_activate = async_unary(_maint.alarm_activate)
    alarm_disarm = async_method(_maint.alarm_disarm, run_plan, returns="List[Alarm]")
    hash = async_unary(_maint.hash)
    hash_kv = async_unary(_maint.hash_kv)
    move_leader = async_unary(_maint.move_leader)
    snapshot = async_method(_maint.snapshot, _save_snapshot, returns="SnapshotResult")

    # -- Auth --------------------------------------------------------------------

    auth_enable = async_unary(_auth.auth_enable)
    auth_disable = async_unary(_auth.auth_disable)
    auth_status = async_unary(_auth.auth_status)
    user_add = async_unary(_auth.user_add, secret=True)
    user_get = async_unary(_auth.user_get)
    user_list = async_unary(_auth.user_list)
    user_delete = async_unary(_auth.user_delete)
    user_change_password = async_unary(_auth.user_change_password, secret=True)
    user_grant_role = async_unary(_auth.user_grant_role)
    user_revoke_role = async_unary(_auth.user_revoke_role)
    role_add = async_unary(_auth.role_add)
    role_get = async_unary(_auth.role_get)
    role_list = async_unary(_auth.role_list)
    role_delete = async_unary(_auth.role_delete)
    role_grant_permission = async_unary(_auth.role_grant_permission)
    role_revoke_permission = async_unary(_auth.role_revoke_permission)

    # -- endpoints -------------------------------------------------------------

    async def sync_endpoints(self) -> List[str]:
        """Refresh the endpoints from the member list; see :meth:`etcdfast.Client.sync_endpoints`."""
        new = synced_endpoints((await self.member_list()).members, self._endpoints)
        if new is not None:
            self._executor.use_endpoints(new)
        return self.endpoints

    def _start_auto_sync(self) -> None:
        # Started with the first call, inside the caller's running loop.
        if self.auto_sync_interval is None or self._sync_task is not None:
            return
        interval = self.auto_sync_interval

        async def run() -> None:
            while True:
                await asyncio.sleep(interval)
                try:
                    await self.sync_endpoints()
                except ClientClosedError:
                    return
                except EtcdError as exc:
                    log.debug("endpoint sync failed: %s", exc)

        self._sync_task = asyncio.get_running_loop().create_task(run(), name="etcdfast-autosync")

    # -- lifecycle -----------------------------------------------------------

    async def close(self) -> None:
        """Stop watches and keep-alives, close the channel. Idempotent; later
        calls raise ClientClosedError, calls in flight ClosedDuringCallError."""
        if self._closed:
            return
        self._closed = True
        if self._forked:  # the channel and tasks are the parent's: leave them alone
            return
        if self._sync_task is not None:
            self._sync_task.cancel()
            await asyncio.gather(self._sync_task, return_exceptions=True)
        for stream in (self._watch_stream, self._other_watch_stream, self._keepalive_stream):
            if stream is not None:
                await stream.close()
        for task in list(self._callback_tasks):
            task.cancel()
        if self._callback_tasks:
            await asyncio.gather(*self._callback_tasks, return_exceptions=True)
        await self._executor.close()

    def _watch_streams(self) -> "List[Any]":
        return [s for s in (self._watch_stream, self._other_watch_stream) if s is not None]

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, exc_type: Optional[Type[BaseException]], *exc: object) -> None:
        await self.close()
