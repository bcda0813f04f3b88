"""The synchronous client."""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any, Callable, Generator, Iterable, List, Optional, Type, Union

import grpc

from . import auth as _auth
from . import bulk as _bulk
from . import cluster as _cluster
from . import kv
from . import lease as _lease
from . import maintenance as _maint
from . import watch as _watch
from ._backoff import Backoff
from ._request import Request, check_timeout, sync_method
from .errors import ClientClosedError, CompactedError, EtcdError, Unavailable
from .transport import (
    AUTHENTICATE,
    RETIRE_CHANNEL_AFTER,
    WATCH,
    ClientCore,
    compact_probe_answer,
    compact_probe_request,
)
from .types import Alarm, AlarmType, BulkResult, KeyValue, LeaseKeepAlive, SnapshotResult

__all__ = ["Client"]

log = logging.getLogger("etcdfast")


class Client(ClientCore):
    """A thread-safe etcd v3 client over one gRPC channel.

    ::

        with etcdfast.Client("127.0.0.1:2379") as client:
            client.put("/app/config", "v1")
            print(client.get_value("/app/config"))

    ``endpoints`` is ``"host:port"`` or a list of them; ``timeout`` is the
    default deadline of each call in seconds (``None``: no deadline); grpc's
    message-size limits are raised so large ranges work. Use one client per
    process and share it between threads: grpc multiplexes every call over the
    same HTTP/2 connection.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._lock = threading.Lock()
        self._auth_lock = threading.Lock()
        self._channel = self._new_channel(grpc)
        self._stop_sync = threading.Event()
        if self.auto_sync_interval is not None:
            threading.Thread(target=self._auto_sync, name="etcdfast-autosync", daemon=True).start()
        self._watch_stream: Optional[_watch.WatchStream] = None
        self._keepalive_stream: Optional[_lease.KeepAliveStream] = None

    # -- KV ------------------------------------------------------------------

    get = sync_method(kv.get)
    get_value = sync_method(kv.get_value)
    put = sync_method(kv.put)
    delete = sync_method(kv.delete)
    compact = sync_method(kv.compact)
    txn = sync_method(kv.txn)

    # -- bulk (etcdfast.bulk) ------------------------------------------------

    def put_many(
        self,
        items: Iterable[_bulk.ItemLike],
        *,
        batch_ops: Optional[int] = None,
        max_batch_bytes: Optional[int] = None,
        concurrency: Optional[int] = None,
        lease: kv.LeaseLike = 0,
        progress: Optional[Callable[[int], object]] = None,
        timeout: Optional[float] = None,
    ) -> BulkResult:
        """Write many ``(key, value)`` pairs fast: batched Txns, several in flight.

        ``items`` is any iterable of pairs of ``str``/``bytes``, read lazily (a
        generator far larger than memory is fine: at most ``concurrency``
        batches are in flight plus one being filled). Puts are packed into
        compare-less Txns of at most ``batch_ops`` ops (default 128, etcd's
        ``--max-txn-ops``) and ``max_batch_bytes`` request bytes (default
        1 MiB, under etcd's 1.5 MiB ``--max-request-bytes``); up to
        ``concurrency`` Txns (default 16) are in flight on the client's one
        channel. A key repeated in the input starts a new batch that waits for
        the one holding the earlier write, so the last write wins. ``lease``
        attaches every key to a lease; ``progress(n)`` is called on this
        thread after each batch that extends the committed prefix, with the
        number of items committed so far; ``timeout`` is each Txn's deadline.

        Returns a :class:`~etcdfast.BulkResult` (keys, batches, first and last
        revision, elapsed seconds).

        Each batch is atomic. If one fails, no new batch is sent, the ones in
        flight are awaited and :class:`~etcdfast.BulkWriteError` is raised:
        every item before its ``.committed`` is committed; ``.cause`` is the
        underlying error; ``.committed_after`` lists later item ranges that
        committed anyway and ``.uncertain`` the ranges whose Txn may or may
        not have been applied (timeout, UNAVAILABLE). Writes are never
        retried. Resuming with the items from ``.committed`` on never loses
        data; at worst it writes the uncertain and committed-after items a
        second time (puts are idempotent in their final state). A bad item
        (alone over ``max_batch_bytes``: :class:`~etcdfast.RequestTooLargeError`
        naming its index and key; an empty key; not a str/bytes pair) or an
        exception from ``items`` itself ends the input there: the items
        before it are written, then ``BulkWriteError`` is raised with that
        problem as ``.cause`` and ``.committed`` at the bad item (unless a
        batch failed earlier). An exception from ``progress`` stops the load
        the same way.
        """
        return _bulk.put_many(
            self, items, batch_ops=batch_ops, max_batch_bytes=max_batch_bytes,
            concurrency=concurrency, lease=lease, progress=progress, timeout=timeout,
        )

    def iter_range_pages(
        self,
        key: kv.KeyLike,
        *,
        prefix: bool = False,
        range_end: Optional[kv.KeyLike] = None,
        from_key: bool = False,
        page_size: Optional[int] = None,
        revision: int = 0,
        keys_only: bool = False,
        serializable: bool = False,
        timeout: Optional[float] = None,
    ) -> _bulk.RangePages:
        """Like :meth:`iter_range`, but yields each page (a list of up to
        ``page_size`` key-values) as it arrives; ``.revision`` is the pinned
        revision."""
        return _bulk.RangePages(self, _bulk.RangePager(
            key, prefix=prefix, range_end=range_end, from_key=from_key,
            page_size=page_size, revision=revision, keys_only=keys_only,
            serializable=serializable, timeout=timeout,
        ))

    def iter_range(
        self,
        key: kv.KeyLike,
        *,
        prefix: bool = False,
        range_end: Optional[kv.KeyLike] = None,
        from_key: bool = False,
        page_size: Optional[int] = None,
        revision: int = 0,
        keys_only: bool = False,
        serializable: bool = False,
        timeout: Optional[float] = None,
    ) -> _bulk.RangeIterator:
        """Every key-value of a key, prefix, ``[key, range_end)`` or from ``key``
        on, in key order, read page by page in constant memory.

        ``page_size`` fixes the keys per Range call; by default pages are sized
        to about 8 MiB of keys and values each (10,000 keys first, then
        between 100 and 50,000: see ``etcdfast.bulk.PAGE_BYTES``), since etcd
        works harder per key on small pages of a big range.

        All pages are read at one revision: ``revision``, or the one the first
        page was served at, so writes made during the iteration are not seen.
        If that revision is compacted before the last page,
        :class:`~etcdfast.CompactedError` is raised (the revision never
        changes silently); ``.revision`` of the returned iterator tells which
        revision it is (0 before the first page). Arguments are checked at
        once; the first call is made on the first ``next()``. ``timeout``
        applies to each page.
        """
        return _bulk.RangeIterator(_bulk.RangePages(self, _bulk.RangePager(
            key, prefix=prefix, range_end=range_end, from_key=from_key,
            page_size=page_size, revision=revision, keys_only=keys_only,
            serializable=serializable, timeout=timeout,
        )))

    def get_all(
        self,
        key: kv.KeyLike,
        *,
        prefix: bool = False,
        range_end: Optional[kv.KeyLike] = None,
        from_key: bool = False,
        page_size: Optional[int] = None,
        revision: int = 0,
        keys_only: bool = False,
        serializable: bool = False,
        timeout: Optional[float] = None,
    ) -> List[KeyValue]:
        """:meth:`iter_range` collected into a list (one consistent revision,
        read in pages, so no single response hits the message size limit)."""
        return _bulk.get_all(self, _bulk.RangePager(
            key, prefix=prefix, range_end=range_end, from_key=from_key,
            page_size=page_size, revision=revision, keys_only=keys_only,
            serializable=serializable, timeout=timeout,
        ))

    count = sync_method(_bulk.count)
    delete_many = sync_method(_bulk.delete_many)

    # -- Lease ---------------------------------------------------------------

    grant = sync_method(_lease.grant)
    revoke = sync_method(_lease.revoke)
    time_to_live = sync_method(_lease.time_to_live)
    leases = sync_method(_lease.leases)

    def keep_alive_once(
        self, lease: _lease.LeaseLike, *, timeout: Optional[float] = None
    ) -> LeaseKeepAlive:
        """Refresh a lease once; LeaseNotFoundError if it is gone."""
        lease_id = _lease._positive_id(lease)
        call = self._stream_call(_lease.KEEPALIVE)(
            iter([_lease.keepalive_request(lease_id)]),
            timeout=self._deadline(check_timeout(timeout)),
        )
        try:
            for raw in call:
                return _lease.keepalive_answer(raw, lease_id)
        except grpc.RpcError as exc:
            raise self._error(exc) from exc
        finally:
            call.cancel()
        raise Unavailable("keep-alive stream ended without an answer", endpoint=",".join(self.endpoints))

    def lease(
        self,
        ttl: int,
        *,
        id: int = 0,
        keep_alive: bool = True,
        on_lost: Optional[Callable[[_lease.LeaseHandle], None]] = None,
    ) -> _lease.Lease:
        """A :class:`~etcdfast.lease.Lease` of ``ttl`` seconds, granted on ``with``
        (or :meth:`~etcdfast.lease.Lease.grant`) and kept alive in the background."""
        return _lease.Lease(self, ttl, id, keep_alive=keep_alive, on_lost=on_lost)

    def keep_alive(
        self,
        lease: _lease.LeaseLike,
        *,
        on_lost: Optional[Callable[[_lease.LeaseHandle], None]] = None,
    ) -> _lease.Lease:
        """Keep an existing lease alive in the background; returns its handle."""
        lease_id = _lease._positive_id(lease)
        granted = self.time_to_live(lease_id).granted_ttl
        handle = _lease.Lease(self, granted, lease_id, on_lost=on_lost)
        handle.granted = True
        self._keepalive().add(handle)
        return handle

    def _keepalive(self) -> _lease.KeepAliveStream:
        with self._lock:
            if self._closed:
                raise ClientClosedError("the client is closed")
            if self._keepalive_stream is None:
                self._keepalive_stream = _lease.KeepAliveStream(
                    self._stream_call(_lease.KEEPALIVE), self._stream_error
                )
            return self._keepalive_stream

    # -- Watch ---------------------------------------------------------------

    def watch(
        self,
        key: Union[str, bytes],
        *,
        prefix: bool = False,
        range_end: Union[str, bytes, None] = None,
        from_key: bool = False,
        start_revision: int = 0,
        prev_kv: bool = False,
        no_put: bool = False,
        no_delete: bool = False,
        progress_notify: bool = False,
        fragment: bool = False,
        timeout: Optional[float] = None,
    ) -> _watch.Watch:
        """Watch a key, a prefix, ``[key, range_end)`` or everything from ``key`` on.

        Returns a :class:`~etcdfast.watch.Watch` once the server confirmed it:
        iterate it for events (from ``start_revision`` if given, else from
        now), use it as a context manager, or ``cancel()`` it. ``prev_kv``
        adds each key's previous value; ``no_put``/``no_delete`` filter event
        types; ``progress_notify`` interleaves :class:`~etcdfast.types.Progress`
        items; ``fragment`` lets the server split huge revisions (merged again
        here). All watches share one stream and resume after a broken
        connection with no event lost or repeated.
        """
        spec = _watch.watch_spec(
            key, prefix=prefix, range_end=range_end, from_key=from_key,
            start_revision=start_revision, prev_kv=prev_kv, no_put=no_put,
            no_delete=no_delete, progress_notify=progress_notify, fragment=fragment,
        )
        return self._watches().watch(spec, self._deadline(check_timeout(timeout)))

    def add_watch_callback(
        self,
        key: Union[str, bytes],
        callback: Callable[[_watch.WatchItem], object],
        *,
        on_error: Optional[Callable[[BaseException], object]] = None,
        **options: Any,
    ) -> _watch.Watch:
        """Like :meth:`watch`, but push each event to ``callback`` on a thread.

        If the callback raises, the watch is cancelled and the exception is in
        ``watch.error`` (and passed to ``on_error``). Cancel with ``watch.cancel()``.
        """
        handle = self.watch(key, **options)
        _watch.start_callback_thread(handle, callback, on_error)
        return handle

    def request_progress(self) -> None:
        """Ask for a progress notification on every watch of this client."""
        self._watches().request_progress()

    def _watches(self) -> _watch.WatchStream:
        with self._lock:
            if self._closed:
                raise ClientClosedError("the client is closed")
            if self._watch_stream is None:
                self._watch_stream = _watch.WatchStream(
                    self._stream_call(_watch.WATCH), self._revisions, self._stream_error,
                    authenticated=self._user is not None,
                )
            return self._watch_stream

    def _stream_call(self, method: str) -> Callable[..., Any]:
        """An opener for a bidirectional stream that carries the current auth token
        (and uses the current channel: an endpoint sync may replace it)."""

        def open_stream(requests: Any, **kwargs: Any) -> Any:
            if self._needs_login:
                self._login()
            return self._channel.stream_stream(method)(requests, metadata=self._metadata, **kwargs)

        return open_stream

    # -- Cluster (etcdfast.cluster) --------------------------------------------

    member_list = sync_method(_cluster.member_list)
    member_add = sync_method(_cluster.member_add)
    member_remove = sync_method(_cluster.member_remove)
    member_update = sync_method(_cluster.member_update)
    member_promote = sync_method(_cluster.member_promote)

    # -- Maintenance (etcdfast.maintenance) ------------------------------------

    status = sync_method(_maint.status)
    defragment = sync_method(_maint.defragment)
    alarms = sync_method(_maint.alarms)
    alarm_activate = sync_method(_maint.alarm_activate)
    hash = sync_method(_maint.hash)
    hash_kv = sync_method(_maint.hash_kv)
    move_leader = sync_method(_maint.move_leader)

    def alarm_disarm(
        self,
        member_id: int = 0,
        alarm: Union[AlarmType, int] = AlarmType.NONE,
        *,
        timeout: Optional[float] = None,
    ) -> List[Alarm]:
        """Clear alarms; returns the ones cleared.

        ``member_id=0`` means every member and ``AlarmType.NONE`` every alarm
        type, so the defaults clear all active alarms (as Go's ``AlarmDisarm``
        with an empty member does); the active alarms are listed first then.
        """
        plan = _maint.AlarmDisarmPlan(member_id, alarm, timeout=timeout)
        active = self.alarms(timeout=timeout) if plan.needs_list else None
        cleared: List[Alarm] = []
        for request in plan.requests(active):
            cleared += self._execute(request)
        return cleared

    def snapshot(
        self,
        path: Union[str, "os.PathLike[str]"],
        *,
        progress: Optional[Callable[[int, int], object]] = None,
        timeout: Optional[float] = None,
    ) -> SnapshotResult:
        """Save the answering member's database to ``path``, checksum verified.

        Streams to ``path + ".part"`` in constant memory, calling
        ``progress(bytes_written, remaining_bytes)`` after each chunk; checks
        the SHA-256 etcd appends (:class:`~etcdfast.errors.SnapshotIntegrityError`
        if it does not match), fsyncs and renames the file into place. On any
        failure the part file is deleted and ``path`` is left untouched. The
        file is what ``etcdctl snapshot save`` writes (``etcdutl snapshot
        restore`` takes it). ``timeout`` bounds the whole transfer; the
        client's default timeout does *not* apply, since a snapshot takes as
        long as the database is large. Give the client one endpoint to choose
        the member.
        """
        deadline = check_timeout(timeout)
        writer = _maint.SnapshotWriter(path, progress)
        stream = self._server_stream(_maint.SNAPSHOT, _maint.SNAPSHOT_REQUEST, deadline)
        try:
            for raw in stream:
                writer.write(raw)
        except BaseException:
            writer.abort()
            raise
        finally:
            stream.close()
        return writer.finish()

    def _server_stream(
        self, method: str, payload: bytes, timeout: Optional[float]
    ) -> Generator[bytes, None, None]:
        """The raw answers of a server-streaming call; errors come out typed.

        A stale auth token refused before the first answer: log in again and
        reopen once. Closing the generator cancels the call.
        """
        if self._closed:
            raise ClientClosedError("the client is closed")
        multicallable = self._channel.unary_stream(method)
        for attempt in range(2):
            if self._needs_login:
                self._login()
            call = multicallable(payload, timeout=timeout, metadata=self._metadata)
            received = False
            try:
                for raw in call:
                    received = True
                    yield raw
                return
            except grpc.RpcError as exc:
                error = self._error(exc)
                if attempt == 0 and not received and self._drop_stale_token(error):
                    continue  # refused before any answer: log in and reopen
                raise error from exc
            finally:
                call.cancel()

    # -- Auth (etcdfast.auth) --------------------------------------------------

    auth_enable = sync_method(_auth.auth_enable)
    auth_disable = sync_method(_auth.auth_disable)
    auth_status = sync_method(_auth.auth_status)
    user_add = sync_method(_auth.user_add, secret=True)
    user_get = sync_method(_auth.user_get)
    user_list = sync_method(_auth.user_list)
    user_delete = sync_method(_auth.user_delete)
    user_change_password = sync_method(_auth.user_change_password, secret=True)
    user_grant_role = sync_method(_auth.user_grant_role)
    user_revoke_role = sync_method(_auth.user_revoke_role)
    role_add = sync_method(_auth.role_add)
    role_get = sync_method(_auth.role_get)
    role_list = sync_method(_auth.role_list)
    role_delete = sync_method(_auth.role_delete)
    role_grant_permission = sync_method(_auth.role_grant_permission)
    role_revoke_permission = sync_method(_auth.role_revoke_permission)

    # -- endpoints -------------------------------------------------------------

    def sync_endpoints(self) -> List[str]:
        """Refresh the endpoints from the cluster's member list (Go's ``Sync``).

        Voting members' client URLs replace the configured endpoints; new
        calls go to the new set at once, calls and streams already running
        finish on the old connection, which is closed after
        ``RETIRE_CHANNEL_AFTER`` seconds (watches then resume on the new one).
        Returns the endpoints now in use. With ``auto_sync_interval=`` this
        runs in the background.
        """
        new = self._synced_endpoints(self.member_list().members)
        if new is not None:
            with self._lock:
                if self._closed:
                    raise ClientClosedError("the client is closed")
                old = self._channel
                self._use_endpoints(new)
                self._channel = self._new_channel(grpc)
                self._handles = {}
            retire = threading.Timer(RETIRE_CHANNEL_AFTER, old.close)
            retire.daemon = True
            retire.start()
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
        """Stop watches and keep-alives, close the channel. Idempotent;
        later calls raise ClientClosedError."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._stop_sync.set()
            streams = (self._watch_stream, self._keepalive_stream)
        for stream in streams:
            if stream is not None:
                stream.close()
        self._channel.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, exc_type: Optional[Type[BaseException]], *exc: object) -> None:
        self.close()

    # -- driver --------------------------------------------------------------

    def _handle(self, method: str) -> Any:
        handle = self._handles.get(method)
        if handle is None:
            # No serializers: grpc passes our bytes through untouched.
            handle = self._handles[method] = self._channel.unary_unary(method)
        return handle

    def _execute(self, request: Request[Any]) -> Any:
        if self._closed:
            raise ClientClosedError("the client is closed")
        handle = self._handles.get(request.method) or self._handle(request.method)
        timeout = self._deadline(request.timeout)
        if self._needs_login:
            self._login()
        try:
            raw = handle(request.payload, timeout=timeout, metadata=self._metadata)
        except grpc.RpcError as exc:
            raw = self._recover(request, handle, exc, timeout)
        return request.decode(raw, self._revisions)

    def _recover(self, request: Request[Any], handle: Any, exc: grpc.RpcError,
                 timeout: Optional[float]) -> bytes:
        # The slow path of _execute: retries by Go's rules, else a typed error.
        deadline = None if timeout is None else time.monotonic() + timeout
        backoff = Backoff(0.025, 1.0)
        attempt = 0
        logged_in_again = False
        while True:
            if self._closed:
                raise ClientClosedError("the client was closed during the call") from exc
            error = self._error(exc)
            if not logged_in_again and self._drop_stale_token(error):
                # The server refused the token before running the call: log
                # in again and repeat it once, whatever the call is.
                self._login()
                logged_in_again = True
            else:
                delay = self._retry_delay(request, error, attempt, backoff, deadline)
                if delay is None:
                    if self._wants_compact_revision(request.method, error):
                        assert isinstance(error, CompactedError)
                        error.compact_revision = self._probe_compact_revision()
                    raise error from exc
                time.sleep(delay)
                attempt += 1
            left = None if deadline is None else max(deadline - time.monotonic(), 0.001)
            try:
                return handle(request.payload, timeout=left, metadata=self._metadata)  # type: ignore[no-any-return]
            except grpc.RpcError as again:
                exc = again

    def _login(self) -> None:
        """Authenticate (once, however many threads ask) and keep the token."""
        with self._auth_lock:
            if not self._needs_login:
                return
            login = self._channel.unary_unary(AUTHENTICATE)
            try:
                raw = login(self._login_request(), timeout=self._timeout,
                            metadata=self._base_metadata or None)
            except grpc.RpcError as exc:
                raise self._error(exc) from None  # no traceback frame holds the password
            self._set_token(raw)

    def _probe_compact_revision(self) -> Optional[int]:
        call = self._stream_call(WATCH)(iter([compact_probe_request()]), timeout=2.0)
        try:
            for _, raw in zip(range(2), call):
                revision = compact_probe_answer(raw)
                if revision:
                    return revision
        except grpc.RpcError:
            pass
        finally:
            call.cancel()
        return None
