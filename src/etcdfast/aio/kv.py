"""What an :class:`~etcdfast.AsyncClient` shares with its views: the asyncio
face of ``etcdfast._sync.kv`` (same methods, same hooks, awaited)."""

from __future__ import annotations

from typing import (
    TYPE_CHECKING,
    Any,
    AsyncIterator,
    Awaitable,
    Callable,
    Optional,
    Sequence,
    Type,
    TypeVar,
    Union,
)

from .. import _codec
from .._core.methods import async_method, async_unary, sync_method
from .._core.watch_hub import WatchItem
from ..api import bulk as _bulk
from ..api import concurrency as _concurrency
from ..api import kv as _kv
from ..api import lease as _lease
from ..api import txn as _txn
from ..api.kv import KeyLike
from ..api.mirror import (
    COPY_POLL_S,
    DEFAULT_MAX_TXN_OPS,
    CopyProgress,
    SyncerState,
    renamed_items,
    update_txns,
)
from ..api.plan import Plan
from ..api.request import Request
from ..api.views import Namespace, Ordering, ViolationHandler
from ..api.watch import WatchSpec, watch_spec
from ..errors import Timeout
from ..types import KeyValue
from . import bulk as _aio_bulk
from .concurrency import AsyncBarrier, AsyncPriorityQueue, AsyncQueue, AsyncSession, run_stm
from .lease import AsyncLease
from .plans import run_plan
from .watch import AsyncWatch, start_callback_task, watch_method

if TYPE_CHECKING:
    import asyncio

    from .client import AsyncClient
    from .lease import AsyncKeepAliveStream
    from .watch import AsyncWatchStream

__all__ = ["AsyncKV", "AsyncNamespaceView", "AsyncOrderedView", "AsyncSyncer"]

T = TypeVar("T")
L = TypeVar("L", bound=AsyncLease)


async def _first_answer(client: Any, request: Request[T]) -> T:
    return await client._executor.first(request)  # type: ignore[no-any-return]


def _lease_handle(client: Any, spec: _lease.LeaseSpec) -> AsyncLease:
    return AsyncLease(client, spec.ttl, spec.id, keep_alive=spec.keep_alive, on_lost=spec.on_lost)


async def _adopt(client: Any, spec: _lease.LeaseSpec, kind: Type[L]) -> L:
    """A handle of an existing lease, kept alive (its TTL read from the server:
    LeaseNotFoundError if it is gone)."""
    ttl = (await client.time_to_live(spec.id)).granted_ttl
    handle = kind(client, ttl, spec.id, on_lost=spec.on_lost)
    handle.granted = True
    client._keepalive().add(handle)
    return handle


async def _adopt_lease(client: Any, spec: _lease.LeaseSpec) -> AsyncLease:
    return await _adopt(client, spec, AsyncLease)


async def _open_session(client: Any, spec: _lease.LeaseSpec) -> AsyncSession:
    if spec.id:
        return await _adopt(client, spec, AsyncSession)
    return await AsyncSession(client, spec.ttl, on_lost=spec.on_lost).grant()


class AsyncKV:
    """KV, txn, lease, watch and recipe coroutine methods (see ``_sync.kv``)."""

    _run: Callable[[Request[Any]], Awaitable[Any]]
    _callback_tasks: "set[Any]"

    def _watches(  # pragma: no cover - each class's own
        self, require_leader: Optional[bool] = None
    ) -> "AsyncWatchStream":
        raise NotImplementedError

    def _keepalive(self) -> "AsyncKeepAliveStream":  # pragma: no cover - each class's own
        raise NotImplementedError

    # -- KV ------------------------------------------------------------------

    get = async_unary(_kv.get)
    get_value = async_unary(_kv.get_value)
    put = async_unary(_kv.put)
    delete = async_unary(_kv.delete)
    compact = async_unary(_kv.compact)
    txn = async_unary(_txn.txn)

    # -- streaming reads -------------------------------------------------------

    iter_range_pages = sync_method(_bulk.range_pager, _aio_bulk.AsyncRangePages,
                                   returns="AsyncRangePages", doc=_bulk.ITER_RANGE_PAGES_DOC)
    iter_range = sync_method(_bulk.range_pager, _aio_bulk.iter_range,
                             returns="AsyncRangeIterator", doc=_bulk.ITER_RANGE_DOC)
    get_all = async_method(_bulk.range_pager, _aio_bulk.get_all,
                           returns="List[KeyValue]", doc=_bulk.GET_ALL_DOC)
    count = async_unary(_bulk.count)
    delete_many = async_unary(_bulk.delete_many)

    # -- Lease ---------------------------------------------------------------

    grant = async_unary(_lease.grant)
    revoke = async_unary(_lease.revoke)
    time_to_live = async_unary(_lease.time_to_live)
    leases = async_unary(_lease.leases)
    keep_alive_once = async_method(_lease.keep_alive_once, _first_answer, returns="LeaseKeepAlive")
    lease = sync_method(_lease.lease, _lease_handle, returns="AsyncLease")
    keep_alive = async_method(_lease.keep_alive, _adopt_lease, returns="AsyncLease")

    # -- Watch ---------------------------------------------------------------

    watch = watch_method(watch_spec)

    async def add_watch_callback(
        self,
        key: Union[str, bytes],
        callback: Callable[[WatchItem], Any],
        *,
        on_error: Optional[Callable[[BaseException], Any]] = None,
        **options: Any,
    ) -> "AsyncWatch[Any]":
        """Like :meth:`watch` (same options), but push each event to ``callback``
        (plain or async) from a task.

        A callback that raises cancels the watch; the exception goes to
        ``watch.error`` and ``on_error``.
        """
        handle: AsyncWatch[Any] = await self.watch(key, **options)
        task = start_callback_task(handle, callback, on_error)
        self._callback_tasks.add(task)
        task.add_done_callback(self._callback_tasks.discard)
        return handle

    def request_progress(self) -> None:
        """Ask for a progress notification on every watch of this client."""
        self._watches().request_progress()

    # -- Concurrency (Go's clientv3/concurrency, etcd's contrib/recipes) ----------

    session = async_method(_concurrency.session, _open_session, returns="AsyncSession")
    stm = async_method(_concurrency.stm, run_stm, returns="TxnResult")

    async def _run_plan(self, plan: "Plan[T]") -> T:
        return await run_plan(self, plan)  # type: ignore[arg-type]

    def barrier(self, key: KeyLike) -> AsyncBarrier:
        """A barrier on ``key`` (contrib/recipes' ``Barrier``): ``await hold()``,
        ``await wait()`` (until released), ``await release()``."""
        return AsyncBarrier(self, key)

    def queue(self, prefix: KeyLike) -> AsyncQueue:
        """A FIFO queue under ``prefix`` (contrib/recipes' ``Queue``)."""
        return AsyncQueue(self, prefix)

    def priority_queue(self, prefix: KeyLike) -> AsyncPriorityQueue:
        """A priority queue under ``prefix`` (contrib/recipes' ``PriorityQueue``)."""
        return AsyncPriorityQueue(self, prefix)


    def mirror(self, prefix: KeyLike = b"", revision: int = 0) -> "AsyncSyncer":
        """A syncer of everything under ``prefix``: see :meth:`etcdfast.Client.mirror`
        (``async for page in syncer.base()``, ``await syncer.updates()``)."""
        return AsyncSyncer(self, SyncerState(_codec.keys.to_bytes(prefix), revision))

    # -- views ----------------------------------------------------------------

    def namespace(self, prefix: KeyLike) -> "AsyncNamespaceView":
        """A view whose every key lives under ``prefix``: see :meth:`etcdfast.Client.namespace`."""
        return AsyncNamespaceView(self, Namespace(_codec.keys.to_bytes(prefix)))

    def ordered(self, on_violation: Optional[ViolationHandler] = None) -> "AsyncOrderedView":
        """A view that never returns a read older than one it already returned:
        see :meth:`etcdfast.Client.ordered` (``on_violation`` may be a coroutine function)."""
        return AsyncOrderedView(self, on_violation)


class AsyncSyncer:
    """``client.mirror(prefix)`` of an AsyncClient."""

    def __init__(self, client: AsyncKV, state: SyncerState) -> None:
        self._client = client
        self._state = state

    @property
    def prefix(self) -> bytes:
        return self._state.prefix

    @property
    def revision(self) -> int:
        """The revision of the base (0 until ``base()`` was read, unless resuming)."""
        return self._state.revision

    async def base(self, page_size: Optional[int] = None) -> AsyncIterator[Sequence[KeyValue]]:
        """The pages of everything under the prefix, all at one revision."""
        pages = self._client.iter_range_pages(self._state.prefix, prefix=True, page_size=page_size,
                                              revision=self._state.revision)
        async for page in pages:
            yield page
        self._state.base_done(pages.revision)

    async def updates(self, **watch_options: Any) -> "AsyncWatch[Any]":
        """A watch of the prefix from the revision after the base's."""
        watch: AsyncWatch[Any] = await self._client.watch(
            self._state.prefix, prefix=True, start_revision=self._state.updates_from(), **watch_options)
        return watch

    async def copy_to(
        self,
        dest: "AsyncClient",
        *,
        dest_prefix: Optional[KeyLike] = None,
        max_txn_ops: int = DEFAULT_MAX_TXN_OPS,
        progress: Optional[CopyProgress] = None,
        stop: Optional[asyncio.Event] = None,
    ) -> int:
        """Mirror the prefix into ``dest``: see :meth:`etcdfast.Syncer.copy_to`."""
        target = self._state.prefix if dest_prefix is None else _codec.keys.to_bytes(dest_prefix)
        copied = 0
        if not self._state.revision:
            async for page in self.base():
                await dest.put_many(renamed_items(page, self._state.prefix, target))
                copied += len(page)
                if progress is not None:
                    progress(copied, self._state.revision)
        async with await self.updates() as watch:
            while stop is None or not stop.is_set():
                try:
                    events = await watch.get(timeout=COPY_POLL_S)
                except Timeout:
                    continue
                if not events:  # the watch ended (cancelled)
                    break
                for txn in update_txns(events, self._state.prefix, target, max_txn_ops):
                    await dest._run(txn)
                self._state.applied(events)
                copied += len(events)
                if progress is not None:
                    progress(copied, self._state.revision)
        return self._state.revision

    def __repr__(self) -> str:
        return repr(self._state)


class _AsyncView(AsyncKV):
    """A view runs its calls, streams and plans on the client it is made from."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._executor = client._executor
        self._clock = client._clock
        self._revisions = client._revisions
        self._callback_tasks = client._callback_tasks

    @property
    def closed(self) -> bool:
        return self._client.closed  # type: ignore[no-any-return]

    @property
    def endpoints(self) -> "list[str]":
        return self._client.endpoints  # type: ignore[no-any-return]

    def _check_open(self) -> None:
        self._client._check_open()

    def _keepalive(self) -> "AsyncKeepAliveStream":
        return self._client._keepalive()  # type: ignore[no-any-return]

    def _watches(self, require_leader: Optional[bool] = None) -> "AsyncWatchStream":
        return self._client._watches(require_leader)  # type: ignore[no-any-return]


class _AsyncNamespacedWatches:
    """The client's watch stream, with each new watch moved into the namespace."""

    def __init__(self, stream: "AsyncWatchStream", namespace: Namespace) -> None:
        self._stream = stream
        self._namespace = namespace

    async def watch(self, spec: "WatchSpec[Any]") -> "AsyncWatch[Any]":
        return await self._stream.watch(self._namespace.watch_spec(spec))

    def request_progress(self) -> None:
        self._stream.request_progress()


class AsyncNamespaceView(_AsyncView):
    """``client.namespace(prefix)`` of an AsyncClient."""

    def __init__(self, client: Any, namespace: Namespace) -> None:
        super().__init__(client)
        self._namespace = namespace

    @property
    def prefix(self) -> bytes:
        return self._namespace.prefix

    async def _run(self, request: Request[T]) -> T:
        return await self._client._run(self._namespace.request(request))  # type: ignore[no-any-return]

    def _watches(self, require_leader: Optional[bool] = None) -> "AsyncWatchStream":
        return _AsyncNamespacedWatches(self._client._watches(require_leader), self._namespace)  # type: ignore[return-value]

    def namespace(self, prefix: KeyLike) -> "AsyncNamespaceView":
        """The namespace ``prefix`` inside this one (one view: the prefixes joined)."""
        return AsyncNamespaceView(self._client, self._namespace.nested(_codec.keys.to_bytes(prefix)))

    def __repr__(self) -> str:
        return f"<AsyncNamespaceView {self.prefix!r} of {self._client!r}>"


class AsyncOrderedView(_AsyncView):
    """``client.ordered()`` of an AsyncClient."""

    def __init__(self, client: Any, on_violation: Optional[ViolationHandler] = None) -> None:
        super().__init__(client)
        self._ordering = Ordering(len(self.endpoints), on_violation)

    @property
    def revision(self) -> int:
        """The newest store revision a read through this view returned."""
        return self._ordering.seen

    async def _run(self, request: Request[T]) -> T:
        if not self._ordering.checks(request):
            return await self._client._run(request)  # type: ignore[no-any-return]
        return await self._client._run_plan(self._ordering.plan(request))  # type: ignore[no-any-return]

    def __repr__(self) -> str:
        return f"<AsyncOrderedView at revision {self.revision} of {self._client!r}>"
