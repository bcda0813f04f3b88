"""The synchronous client: the method table over the grpcio executor."""

from __future__ import annotations

import logging
import threading
from typing import Any, Callable, Iterator, List, Optional, Type, TypeVar, Union

from .._core.endpoints import synced_endpoints
from .._core.methods import sync_method, sync_unary
from .._core.snapshot import SnapshotWriter
from .._core.state import ClientState
from .._core.watch_hub import WatchItem
from ..api import auth as _auth
from ..api import bulk as _bulk
from ..api import cluster as _cluster
from ..api import concurrency as _concurrency
from ..api import kv as _kv
from ..api import lease as _lease
from ..api import maintenance as _maint
from ..api import services as _services
from ..api import txn as _txn
from ..api.kv import KeyLike
from ..api.plan import Plan
from ..api.request import Request
from ..api.watch import watch_spec
from ..errors import ClientClosedError, EtcdError
from ..types import KeyValue, SnapshotResult
from . import bulk as _sync_bulk
from .concurrency import Barrier, PriorityQueue, Queue, Session, run_stm
from .executor import Executor
from .lease import KeepAliveStream, Lease
from .plans import run_plan
from .watch import Watch, WatchStream, start_callback_thread, watch_method

__all__ = ["Client"]

T = TypeVar("T")
L = TypeVar("L", bound=Lease)

log = logging.getLogger("etcdfast")


def _first_answer(client: "Client", request: Request[T]) -> T:
    return client._executor.first(request)


def _observe(client: "Client", request: Request[KeyValue]) -> Iterator[KeyValue]:
    for raw in client._executor.stream(request):
        yield request.decode(raw, client._revisions)


def _lease_handle(client: "Client", spec: _lease.LeaseSpec) -> Lease:
    return Lease(client, spec.ttl, spec.id, keep_alive=spec.keep_alive, on_lost=spec.on_lost)


def _adopt(client: "Client", spec: _lease.LeaseSpec, kind: Type[L]) -> L:
    """A handle of an existing lease, kept alive (its TTL read from the server:
    LeaseNotFoundError if it is gone)."""
    handle = kind(client, client.time_to_live(spec.id).granted_ttl, spec.id, on_lost=spec.on_lost)
    handle.granted = True
    client._keepalive().add(handle)
    return handle


def _adopt_lease(client: "Client", spec: _lease.LeaseSpec) -> Lease:
    return _adopt(client, spec, Lease)


def _open_session(client: "Client", spec: _lease.LeaseSpec) -> Session:
    if spec.id:
        return _adopt(client, spec, Session)
    return Session(client, spec.ttl, on_lost=spec.on_lost).grant()


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


class Client(ClientState):
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
        self._keepalive_stream: Optional[KeepAliveStream] = None
        self._stop_sync = threading.Event()
        if self.auto_sync_interval is not None:
            threading.Thread(target=self._auto_sync, name="etcdfast-autosync", daemon=True).start()

    # -- KV ------------------------------------------------------------------

    get = sync_unary(_kv.get)
    get_value = sync_unary(_kv.get_value)
    put = sync_unary(_kv.put)
    delete = sync_unary(_kv.delete)
    compact = sync_unary(_kv.compact)
    txn = sync_unary(_txn.txn)

    # -- bulk ------------------------------------------------------------------

    put_many = sync_method(_bulk.put_many, _sync_bulk.put_many, returns="BulkResult")
    iter_range_pages = sync_method(_bulk.range_pager, _sync_bulk.RangePages,
                                   returns="RangePages", doc=_bulk.ITER_RANGE_PAGES_DOC)
    iter_range = sync_method(_bulk.range_pager, _sync_bulk.iter_range,
                             returns="RangeIterator", doc=_bulk.ITER_RANGE_DOC)
    get_all = sync_method(_bulk.range_pager, _sync_bulk.get_all,
                          returns="List[KeyValue]", doc=_bulk.GET_ALL_DOC)
    count = sync_unary(_bulk.count)
    delete_many = sync_unary(_bulk.delete_many)

    # -- Lease ---------------------------------------------------------------

    grant = sync_unary(_lease.grant)
    revoke = sync_unary(_lease.revoke)
    time_to_live = sync_unary(_lease.time_to_live)
    leases = sync_unary(_lease.leases)
    keep_alive_once = sync_method(_lease.keep_alive_once, _first_answer, returns="LeaseKeepAlive")
    lease = sync_method(_lease.lease, _lease_handle, returns="Lease")
    keep_alive = sync_method(_lease.keep_alive, _adopt_lease, returns="Lease")

    def _keepalive(self) -> KeepAliveStream:
        with self._lock:
            self._check_open()
            if self._keepalive_stream is None:
                self._keepalive_stream = KeepAliveStream(self._executor)
            return self._keepalive_stream

    # -- Watch ---------------------------------------------------------------

    watch = watch_method(watch_spec)

    def add_watch_callback(
        self,
        key: Union[str, bytes],
        callback: Callable[[WatchItem], object],
        *,
        on_error: Optional[Callable[[BaseException], object]] = None,
        **options: Any,
    ) -> "Watch[Any]":
        """Like :meth:`watch` (same options), but push each event to ``callback`` on a thread.

        If the callback raises, the watch is cancelled and the exception is in
        ``watch.error`` (and passed to ``on_error``). Cancel with ``watch.cancel()``.
        """
        handle: Watch[Any] = self.watch(key, **options)
        start_callback_thread(handle, callback, on_error)
        return handle

    def request_progress(self) -> None:
        """Ask for a progress notification on every watch of this client."""
        self._watches().request_progress()

    def _watches(self) -> WatchStream:
        with self._lock:
            self._check_open()
            if self._watch_stream is None:
                self._watch_stream = WatchStream(self._executor, authenticated=self._user is not None)
            return self._watch_stream

    # -- Concurrency (Go's clientv3/concurrency, etcd's contrib/recipes) ----------

    session = sync_method(_concurrency.session, _open_session, returns="Session")
    stm = sync_method(_concurrency.stm, run_stm, returns="TxnResult")

    def _run_plan(self, plan: "Plan[T]") -> T:
        return run_plan(self, plan)

    def barrier(self, key: KeyLike) -> Barrier:
        """A barrier on ``key`` (contrib/recipes' ``Barrier``): ``hold()``,
        ``wait()`` (until released), ``release()``."""
        return Barrier(self, key)

    def queue(self, prefix: KeyLike) -> Queue:
        """A FIFO queue under ``prefix`` (contrib/recipes' ``Queue``)."""
        return Queue(self, prefix)

    def priority_queue(self, prefix: KeyLike) -> PriorityQueue:
        """A priority queue under ``prefix`` (contrib/recipes' ``PriorityQueue``)."""
        return PriorityQueue(self, prefix)

    # etcd's server-side Lock and Election services (v3lock, v3election)
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
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._stop_sync.set()
            streams = (self._watch_stream, self._keepalive_stream)
        for stream in streams:
            if stream is not None:
                stream.close()
        self._executor.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, exc_type: Optional[Type[BaseException]], *exc: object) -> None:
        self.close()
