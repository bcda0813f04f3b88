"""The synchronous client: the method table over the grpcio executor."""

from __future__ import annotations

import logging
import threading
from typing import Any, Iterator, List, Optional, Type, TypeVar

from .._core.endpoints import synced_endpoints
from .._core.methods import sync_method, sync_unary
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
from . import bulk as _sync_bulk
from .executor import Executor
from .kv import KV
from .lease import KeepAliveStream, Lease
from .plans import run_plan
from .watch import WatchStream

__all__ = ["Client"]

T = TypeVar("T")
L = TypeVar("L", bound=Lease)

log = logging.getLogger("etcdfast")


def _observe(client: "Client", request: Request[KeyValue]) -> Iterator[KeyValue]:
    for raw in client._executor.stream(request):
        yield request.decode(raw, client._revisions)


def _save_snapshot(client: "Client", plan: _maint.SnapshotPlan) -> SnapshotResult:
    writer = SnapshotWriter(plan.path, plan.progress)
    stream = client._executor.stream(plan.request)
    try:
        for raw in stream:
            writer.write(raw)
    except BaseException:
        writer.abort()
        raise
    finally:
        stream.close()  # type: ignore[attr-defined]
    return writer.finish()


class Client(ClientState, KV):
    """A thread-safe etcd v3 client over one gRPC channel.

    ::

        with etcdfast.Client("127.0.0.1:2379") as client:
            client.put("/app/config", "v1")
            print(client.get_value("/app/config"))

    Use one client per process and share it between threads: grpc multiplexes
    every call over the same HTTP/2 connection. The options are described in
    :meth:`__init__`; every method takes ``timeout=`` (seconds) for itself.
    """

    def _started(self) -> None:
        self._executor = Executor(self)
        #: Executes one Request (the method table's verb).
        self._run = self._executor.run
        self._lock = threading.Lock()
        self._watch_stream: Optional[WatchStream] = None
        self._other_watch_stream: Optional[WatchStream] = None  # the other require_leader
        self._keepalive_stream: Optional[KeepAliveStream] = None
        self._stop_sync = threading.Event()
        if self.auto_sync_interval is not None:
            threading.Thread(target=self._auto_sync, name="etcdfast-autosync", daemon=True).start()

    # -- bulk (KV's methods are in _sync.kv: the views share them) -------------

    put_many = sync_method(_bulk.put_many, _sync_bulk.put_many, returns="BulkResult")

    def _keepalive(self) -> KeepAliveStream:
        with self._lock:
            self._check_open()
            if self._keepalive_stream is None:
                self._keepalive_stream = KeepAliveStream(self._executor)
            return self._keepalive_stream

    def _watches(self, require_leader: Optional[bool] = None) -> WatchStream:
        """The watch stream (made on first use); a watch whose ``require_leader``
        differs from the client's goes on a second one: metadata is per stream."""
        with self._lock:
            self._check_open()
            if require_leader is not None and bool(require_leader) != self._require_leader:
                if self._other_watch_stream is None:
                    self._other_watch_stream = WatchStream(
                        self._executor, authenticated=self._user is not None, require_leader=require_leader)
                return self._other_watch_stream
            if self._watch_stream is None:
                self._watch_stream = WatchStream(self._executor, authenticated=self._user is not None)
            return self._watch_stream

    # -- etcd's server-side Lock and Election services (v3lock, v3election)
    lock = sync_unary(_services.lock)
    unlock = sync_unary(_services.unlock)
    election_campaign = sync_unary(_services.election_campaign)
    election_proclaim = sync_unary(_services.election_proclaim)
    election_leader = sync_unary(_services.election_leader)
    election_resign = sync_unary(_services.election_resign)
    election_observe = sync_method(_services.election_observe, _observe,
                                   returns="Iterator[KeyValue]")

    # -- Cluster -----------------------------------------------------------------

    member_list = sync_unary(_cluster.member_list)
    member_add = sync_unary(_cluster.member_add)
    member_remove = sync_unary(_cluster.member_remove)
    member_update = sync_unary(_cluster.member_update)
    member_promote = sync_unary(_cluster.member_promote)

    # -- Maintenance -------------------------------------------------------------

    status = sync_unary(_maint.status)
    defragment = sync_unary(_maint.defragment)
    alarms = sync_unary(_maint.alarms)
    alarm_activate = sync_unary(_maint.alarm_activate)
    alarm_disarm = sync_method(_maint.alarm_disarm, run_plan, returns="List[Alarm]")
    hash = sync_unary(_maint.hash)
    hash_kv = sync_unary(_maint.hash_kv)
    move_leader = sync_unary(_maint.move_leader)

    snapshot = sync_method(_maint.snapshot, _save_snapshot, returns="SnapshotResult")

    # -- Auth --------------------------------------------------------------------

    auth_enable = sync_unary(_auth.auth_enable)
    auth_disable = sync_unary(_auth.auth_disable)
    auth_status = sync_unary(_auth.auth_status)
    user_add = sync_unary(_auth.user_add, secret=True)
    user_get = sync_unary(_auth.user_get)
    user_list = sync_unary(_auth.user_list)
    user_delete = sync_unary(_auth.user_delete)
    user_change_password = sync_unary(_auth.user_change_password, secret=True)
    user_grant_role = sync_unary(_auth.user_grant_role)
    user_revoke_role = sync_unary(_auth.user_revoke_role)
    role_add = sync_unary(_auth.role_add)
    role_get = sync_unary(_auth.role_get)
    role_list = sync_unary(_auth.role_list)
    role_delete = sync_unary(_auth.role_delete)
    role_grant_permission = sync_unary(_auth.role_grant_permission)
    role_revoke_permission = sync_unary(_auth.role_revoke_permission)

    # -- endpoints -------------------------------------------------------------

    def sync_endpoints(self) -> List[str]:
        """Refresh the endpoints from the cluster's member list (Go's ``Sync``).

        Voting members' client URLs replace the configured endpoints; new
        calls go to the new set at once, calls and streams already running
        finish on the old connection, which is closed after 30 s (watches
        then resume on the new one). Returns the endpoints now in use. With
        ``auto_sync_interval=`` this runs in the background.
        """
        new = synced_endpoints(self.member_list().members, self._endpoints)
        if new is not None:
            self._executor.use_endpoints(new)
        return self.endpoints

    def _auto_sync(self) -> None:
        assert self.auto_sync_interval is not None
        while not self._stop_sync.wait(self.auto_sync_interval):
            try:
                self.sync_endpoints()
            except ClientClosedError:
                return
            except EtcdError as exc:  # the cluster is unreachable now; try next time
                log.debug("endpoint sync failed: %s", exc)

    # -- lifecycle -----------------------------------------------------------

    def close(self) -> None:
        """Stop watches and keep-alives, close the channel. Idempotent; later
        calls raise ClientClosedError, calls in flight ClosedDuringCallError."""
        if self._forked:  # the channel is the parent's: leave it alone
            self._closed = True
            return
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._stop_sync.set()
            streams = (self._watch_stream, self._other_watch_stream, self._keepalive_stream)
        for stream in streams:
            if stream is not None:
                stream.close()
        self._executor.close()

    def _watch_streams(self) -> "List[Any]":
        return [s for s in (self._watch_stream, self._other_watch_stream) if s is not None]

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, exc_type: Optional[Type[BaseException]], *exc: object) -> None:
        self.close()
