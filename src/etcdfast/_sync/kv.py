"""What a sync :class:`~etcdfast.Client` shares with its views: KV, txn, leases,
watches and the recipes -- and the views themselves (namespace, ordering).

:class:`KV` is the method table; it runs everything through four hooks of
the object it is part of: ``_run`` (one Request), ``_watches()`` (the watch
stream), ``_keepalive()`` (the keep-alive stream) and ``_run_plan``. The
client implements them over its executor; a view over its client, with the
rewriting of ``etcdfast.api.views`` in between, so every method -- and every
lock, election or queue made from a view -- is namespaced or ordered alike.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, Callable, Iterator, Optional, Sequence, Type, TypeVar, Union

from .. import _codec
from .._core.methods import sync_method, sync_unary
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
from . import bulk as _sync_bulk
from .concurrency import Barrier, PriorityQueue, Queue, Session, run_stm
from .lease import Lease
from .plans import run_plan
from .watch import Watch, start_callback_thread, watch_method

if TYPE_CHECKING:
    from .client import Client
    from .lease import KeepAliveStream
    from .watch import WatchStream

__all__ = ["KV", "NamespaceView", "OrderedView", "Syncer"]

T = TypeVar("T")
L = TypeVar("L", bound=Lease)


def _first_answer(client: Any, request: Request[T]) -> T:
    return client._executor.first(request)  # type: ignore[no-any-return]


def _lease_handle(client: Any, spec: _lease.LeaseSpec) -> Lease:
    return Lease(client, spec.ttl, spec.id, keep_alive=spec.keep_alive, on_lost=spec.on_lost)


def _adopt(client: Any, spec: _lease.LeaseSpec, kind: Type[L]) -> L:
    """A handle of an existing lease, kept alive (its TTL read from the server:
    LeaseNotFoundError if it is gone)."""
    handle = kind(client, client.time_to_live(spec.id).granted_ttl, spec.id, on_lost=spec.on_lost)
    handle.granted = True
    client._keepalive().add(handle)
    return handle


def _adopt_lease(client: Any, spec: _lease.LeaseSpec) -> Lease:
    return _adopt(client, spec, Lease)


def _open_session(client: Any, spec: _lease.LeaseSpec) -> Session:
    if spec.id:
        return _adopt(client, spec, Session)
    return Session(client, spec.ttl, on_lost=spec.on_lost).grant()


class KV:
    """KV, txn, lease, watch and recipe methods (see the module docstring)."""

    _run: Callable[[Request[Any]], Any]

    def _watches(  # pragma: no cover - each class's own
        self, require_leader: Optional[bool] = None
    ) -> "WatchStream":
        raise NotImplementedError

    def _keepalive(self) -> "KeepAliveStream":  # pragma: no cover - each class's own
        raise NotImplementedError

    # -- KV ------------------------------------------------------------------

    get = sync_unary(_kv.get)
    get_value = sync_unary(_kv.get_value)
    put = sync_unary(_kv.put)
    delete = sync_unary(_kv.delete)
    compact = sync_unary(_kv.compact)
    txn = sync_unary(_txn.txn)

    # -- streaming reads -------------------------------------------------------

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

    # -- Concurrency (Go's clientv3/concurrency, etcd's contrib/recipes) ----------

    session = sync_method(_concurrency.session, _open_session, returns="Session")
    stm = sync_method(_concurrency.stm, run_stm, returns="TxnResult")

    def _run_plan(self, plan: "Plan[T]") -> T:
        return run_plan(self, plan)  # type: ignore[arg-type]

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

    def mirror(self, prefix: KeyLike = b"", revision: int = 0) -> "Syncer":
        """A syncer of everything under ``prefix`` (Go's ``mirror.Syncer``):
        ``base()`` reads it at one revision in pages, then ``updates()``
        watches from the next revision, so a copy misses nothing and repeats
        nothing. ``revision`` resumes a mirror from a revision already copied
        (the empty prefix: the whole keyspace)."""
        return Syncer(self, SyncerState(_codec.keys.to_bytes(prefix), revision))

    # -- views ----------------------------------------------------------------

    def namespace(self, prefix: KeyLike) -> "NamespaceView":
        """A view whose every key lives under ``prefix`` (Go's ``namespace``).

        Its KV, txn (compares and ops alike), watch, lease and recipe
        methods add the prefix to keys and strip it from results and events;
        ``get("", prefix=True)`` or ``from_key=True`` means the whole
        namespace. Locks, elections and queues made from it live in it too.
        ``put_many`` is not part of a view (use ``txn``/``put``, or a prefix
        in the keys you load)."""
        return NamespaceView(self, Namespace(_codec.keys.to_bytes(prefix)))

    def ordered(self, on_violation: Optional[ViolationHandler] = None) -> "OrderedView":
        """A view that never returns a read older than one it already returned
        (Go's ``ordering``): a range or txn answered by a member that is
        behind is asked again -- of the next member -- and after ``5 x
        endpoints`` stale answers raises :class:`~etcdfast.errors.StaleReadError`.
        ``on_violation(error)`` decides instead: raise to refuse, return to retry.
        ``get_value`` and ``count`` answers carry no revision: use ``get``."""
        return OrderedView(self, on_violation)


class Syncer:
    """``client.mirror(prefix)``: see :meth:`KV.mirror`."""

    def __init__(self, client: KV, state: SyncerState) -> None:
        self._client = client
        self._state = state

    @property
    def prefix(self) -> bytes:
        return self._state.prefix

    @property
    def revision(self) -> int:
        """The revision of the base (0 until ``base()`` was read, unless resuming)."""
        return self._state.revision

    def base(self, page_size: Optional[int] = None) -> Iterator[Sequence[KeyValue]]:
        """The pages of everything under the prefix, all at one revision."""
        pages = self._client.iter_range_pages(self._state.prefix, prefix=True, page_size=page_size,
                                              revision=self._state.revision)
        yield from pages
        self._state.base_done(pages.revision)

    def updates(self, **watch_options: Any) -> "Watch[Any]":
        """A watch of the prefix from the revision after the base's."""
        return self._client.watch(self._state.prefix, prefix=True,
                                  start_revision=self._state.updates_from(), **watch_options)

    def copy_to(
        self,
        dest: "Client",
        *,
        dest_prefix: Optional[KeyLike] = None,
        max_txn_ops: int = DEFAULT_MAX_TXN_OPS,
        progress: Optional[CopyProgress] = None,
        stop: Optional[threading.Event] = None,
    ) -> int:
        """Mirror the prefix into ``dest`` (another client) until ``stop`` is set
        or the watch ends (etcdctl's ``make-mirror``); returns the source
        revision copied up to -- give it as ``revision=`` to resume.

        The base goes in with ``dest.put_many`` (unless resuming), then each
        source revision's events in one txn (split every ``max_txn_ops``).
        Keys move from the prefix to ``dest_prefix`` (default: the same prefix;
        ``b""``: to the root, ``--no-dest-prefix``). A compacted revision raises
        CompactedError: copy from a fresh base then."""
        target = self._state.prefix if dest_prefix is None else _codec.keys.to_bytes(dest_prefix)
        copied = 0
        if not self._state.revision:
            for page in self.base():
                dest.put_many(renamed_items(page, self._state.prefix, target))
                copied += len(page)
                if progress is not None:
                    progress(copied, self._state.revision)
        with self.updates() as watch:
            while stop is None or not stop.is_set():
                try:
                    events = watch.get(timeout=COPY_POLL_S)
                except Timeout:
                    continue
                if not events:  # the watch ended (cancelled)
                    break
                for txn in update_txns(events, self._state.prefix, target, max_txn_ops):
                    dest._run(txn)
                self._state.applied(events)
                copied += len(events)
                if progress is not None:
                    progress(copied, self._state.revision)
        return self._state.revision

    def __repr__(self) -> str:
        return repr(self._state)


class _View(KV):
    """A view runs its calls, streams and plans on the client it is made from."""

    def __init__(self, client: Any) -> None:
        self._client = client
        # What lease handles, plans and pagers read of their "client".
        self._executor = self._client._executor
        self._clock = self._client._clock
        self._revisions = self._client._revisions

    @property
    def closed(self) -> bool:
        return self._client.closed  # type: ignore[no-any-return]

    @property
    def endpoints(self) -> "list[str]":
        return self._client.endpoints  # type: ignore[no-any-return]

    def _check_open(self) -> None:
        self._client._check_open()

    def _keepalive(self) -> "KeepAliveStream":
        return self._client._keepalive()  # type: ignore[no-any-return]

    def _watches(self, require_leader: Optional[bool] = None) -> "WatchStream":
        return self._client._watches(require_leader)  # type: ignore[no-any-return]


class _NamespacedWatches:
    """The client's watch stream, with each new watch moved into the namespace."""

    def __init__(self, stream: "WatchStream", namespace: Namespace) -> None:
        self._stream = stream
        self._namespace = namespace

    def watch(self, spec: "WatchSpec[Any]") -> "Watch[Any]":
        return self._stream.watch(self._namespace.watch_spec(spec))

    def request_progress(self) -> None:
        self._stream.request_progress()


class NamespaceView(_View):
    """``client.namespace(prefix)``: see :meth:`KV.namespace`."""

    def __init__(self, client: KV, namespace: Namespace) -> None:
        super().__init__(client)
        self._namespace = namespace

    @property
    def prefix(self) -> bytes:
        return self._namespace.prefix

    def _run(self, request: Request[T]) -> T:
        return self._client._run(self._namespace.request(request))  # type: ignore[no-any-return]

    def _watches(self, require_leader: Optional[bool] = None) -> "WatchStream":
        return _NamespacedWatches(self._client._watches(require_leader), self._namespace)  # type: ignore[return-value]

    def namespace(self, prefix: KeyLike) -> "NamespaceView":
        """The namespace ``prefix`` inside this one (one view: the prefixes joined)."""
        return NamespaceView(self._client, self._namespace.nested(_codec.keys.to_bytes(prefix)))

    def __repr__(self) -> str:
        return f"<NamespaceView {self.prefix!r} of {self._client!r}>"


class OrderedView(_View):
    """``client.ordered()``: see :meth:`KV.ordered`."""

    def __init__(self, client: KV, on_violation: Optional[ViolationHandler] = None) -> None:
        super().__init__(client)
        self._ordering = Ordering(len(self.endpoints), on_violation)

    @property
    def revision(self) -> int:
        """The newest store revision a read through this view returned."""
        return self._ordering.seen

    def _run(self, request: Request[T]) -> T:
        if not self._ordering.checks(request):
            return self._client._run(request)  # type: ignore[no-any-return]
        return self._client._run_plan(self._ordering.plan(request))  # type: ignore[no-any-return]

    def __repr__(self) -> str:
        return f"<OrderedView at revision {self.revision} of {self._client!r}>"
