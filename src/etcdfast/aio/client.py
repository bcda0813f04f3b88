"""The asyncio client: same methods as :class:`etcdfast.Client`, awaited."""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import time
from typing import (
    Any,
    AsyncGenerator,
    AsyncIterable,
    Awaitable,
    Callable,
    Iterable,
    List,
    Optional,
    Type,
    Union,
)

import grpc
import grpc.aio

from .. import auth as _auth
from .. import bulk as _bulk
from .. import cluster as _cluster
from .. import kv
from .. import lease as _lease
from .. import maintenance as _maint
from .. import watch as _watch
from .._backoff import Backoff
from .._request import Request, async_method, check_timeout
from ..errors import ClientClosedError, CompactedError, EtcdError, Unavailable
from ..transport import (
    AUTHENTICATE,
    RETIRE_CHANNEL_AFTER,
    WATCH,
    ClientCore,
    compact_probe_answer,
    compact_probe_request,
)
from ..types import Alarm, AlarmType, BulkResult, KeyValue, LeaseKeepAlive, SnapshotResult
from .lease import AsyncKeepAliveStream, AsyncLease
from .watch import AsyncWatch, AsyncWatchStream

__all__ = ["AsyncClient"]


class AsyncClient(ClientCore):
    """An asyncio etcd v3 client (grpc.aio) with the same API as ``Client``.

    ::

        async with etcdfast.AsyncClient("127.0.0.1:2379") as client:
            await client.put("/app/config", "v1")
            print(await client.get_value("/app/config"))

    The channel is opened on first use inside the running event loop; use the
    client from that loop only.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._channel: Optional[grpc.aio.Channel] = None
        # Made on first use: before 3.10 an asyncio.Lock binds to the loop
        # current at creation, and clients are often built outside the loop.
        self._auth_lock: Optional[asyncio.Lock] = None
        self._sync_task: "Optional[asyncio.Task[None]]" = None
        self._watch_stream: Optional[AsyncWatchStream] = None
        self._keepalive_stream: Optional[AsyncKeepAliveStream] = None
        self._callback_tasks: "set[asyncio.Task[None]]" = set()

    # -- KV ------------------------------------------------------------------

    get = async_method(kv.get)
    get_value = async_method(kv.get_value)
    put = async_method(kv.put)
    delete = async_method(kv.delete)
    compact = async_method(kv.compact)
    txn = async_method(kv.txn)

    # -- bulk (etcdfast.bulk) ------------------------------------------------

    async def put_many(
        self,
        items: Union[Iterable[_bulk.ItemLike], AsyncIterable[_bulk.ItemLike]],
        *,
        batch_ops: Optional[int] = None,
        max_batch_bytes: Optional[int] = None,
        concurrency: Optional[int] = None,
        lease: kv.LeaseLike = 0,
        progress: Optional[Callable[[int], object]] = None,
        timeout: Optional[float] = None,
    ) -> BulkResult:
        """Write many ``(key, value)`` pairs in batched Txns, several in flight
        (grpc.aio tasks); ``items`` may also be an async iterable.

        Same options, result and failure semantics as
        :meth:`etcdfast.Client.put_many`: batches are atomic; on a failure no
        new batch is sent, the in-flight ones are awaited and
        :class:`~etcdfast.BulkWriteError` says what is committed
        (``.committed``: resume index; ``.committed_after``; ``.uncertain``:
        may or may not be applied; ``.cause``). ``progress`` runs in the event
        loop.
        """
        return await _bulk.put_many_async(
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
    ) -> _bulk.AsyncRangePages:
        """Like :meth:`iter_range`, but yields each page (a list of up to
        ``page_size`` key-values): ``async for page in client.iter_range_pages(...)``;
        ``.revision`` is the pinned revision."""
        return _bulk.AsyncRangePages(self, _bulk.RangePager(
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
    ) -> _bulk.AsyncRangeIterator:
        """An async iterator over every key-value of the range, in key order, at
        one revision, page by page: ``async for kv in
        client.iter_range(prefix, prefix=True)``. Same semantics and page sizes as
        :meth:`etcdfast.Client.iter_range` (a compacted revision raises
        :class:`~etcdfast.CompactedError`; ``.revision`` is the pinned revision)."""
        return _bulk.AsyncRangeIterator(_bulk.AsyncRangePages(self, _bulk.RangePager(
            key, prefix=prefix, range_end=range_end, from_key=from_key,
            page_size=page_size, revision=revision, keys_only=keys_only,
            serializable=serializable, timeout=timeout,
        )))

    async def get_all(
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
        """:meth:`iter_range` collected into a list (one consistent revision)."""
        return await _bulk.get_all_async(self, _bulk.RangePager(
            key, prefix=prefix, range_end=range_end, from_key=from_key,
            page_size=page_size, revision=revision, keys_only=keys_only,
            serializable=serializable, timeout=timeout,
        ))

    count = async_method(_bulk.count)
    delete_many = async_method(_bulk.delete_many)

    # -- Lease ---------------------------------------------------------------

    grant = async_method(_lease.grant)
    revoke = async_method(_lease.revoke)
    time_to_live = async_method(_lease.time_to_live)
    leases = async_method(_lease.leases)

    async def keep_alive_once(
        self, lease: _lease.LeaseLike, *, timeout: Optional[float] = None
    ) -> LeaseKeepAlive:
        """Refresh a lease once; LeaseNotFoundError if it is gone."""
        lease_id = _lease._positive_id(lease)
        call = await self._stream_call(_lease.KEEPALIVE)(None, timeout=self._deadline(check_timeout(timeout)))
        try:
            await call.write(_lease.keepalive_request(lease_id))
            raw = await call.read()
        except grpc.RpcError as exc:
            raise self._error(exc) from exc
        finally:
            call.cancel()
        if raw is grpc.aio.EOF:
            raise Unavailable("keep-alive stream ended without an answer", endpoint=",".join(self.endpoints))
        return _lease.keepalive_answer(raw, lease_id)

    def lease(
        self,
        ttl: int,
        *,
        id: int = 0,
        keep_alive: bool = True,
        on_lost: Optional[Callable[[_lease.LeaseHandle], None]] = None,
    ) -> AsyncLease:
        """An :class:`~etcdfast.aio.lease.AsyncLease`: granted by ``async with``
        (or ``await lease.grant()``) and kept alive in the background."""
        return AsyncLease(self, ttl, id, keep_alive=keep_alive, on_lost=on_lost)

    async def keep_alive(
        self,
        lease: _lease.LeaseLike,
        *,
        on_lost: Optional[Callable[[_lease.LeaseHandle], None]] = None,
    ) -> AsyncLease:
        """Keep an existing lease alive in the background; returns its handle."""
        lease_id = _lease._positive_id(lease)
        granted = (await self.time_to_live(lease_id)).granted_ttl
        handle = AsyncLease(self, granted, lease_id, on_lost=on_lost)
        handle.granted = True
        self._keepalive().add(handle)
        return handle

    def _keepalive(self) -> AsyncKeepAliveStream:
        if self._closed:
            raise ClientClosedError("the client is closed")
        if self._keepalive_stream is None:
            self._keepalive_stream = AsyncKeepAliveStream(
                self._stream_call(_lease.KEEPALIVE), self._stream_error
            )
        return self._keepalive_stream

    # -- Watch ---------------------------------------------------------------

    async def watch(
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
    ) -> AsyncWatch:
        """Watch a key or range; see :meth:`etcdfast.Client.watch`. ``async for`` the result."""
        spec = _watch.watch_spec(
            key, prefix=prefix, range_end=range_end, from_key=from_key,
            start_revision=start_revision, prev_kv=prev_kv, no_put=no_put,
            no_delete=no_delete, progress_notify=progress_notify, fragment=fragment,
        )
        return await self._watches().watch(spec, self._deadline(check_timeout(timeout)))

    async def add_watch_callback(
        self,
        key: Union[str, bytes],
        callback: Callable[[_watch.WatchItem], Any],
        *,
        on_error: Optional[Callable[[BaseException], Any]] = None,
        **options: Any,
    ) -> AsyncWatch:
        """Like :meth:`watch`, but push each event to ``callback`` (plain or async) from a task.

        A callback that raises cancels the watch; the exception goes to
        ``watch.error`` and ``on_error``.
        """
        handle = await self.watch(key, **options)

        async def run() -> None:
            try:
                async for item in handle:
                    result = callback(item)
                    if inspect.isawaitable(result):
                        await result
            except Exception as exc:
                handle.error = exc
                if not isinstance(exc, EtcdError):
                    logging.getLogger("etcdfast.watch").exception("watch callback raised")
                    await handle.cancel()
                if on_error is not None:
                    outcome = on_error(exc)
                    if inspect.isawaitable(outcome):
                        await outcome

        task = asyncio.get_running_loop().create_task(run(), name="etcdfast-watch-callback")
        self._callback_tasks.add(task)
        task.add_done_callback(self._callback_tasks.discard)
        return handle

    def request_progress(self) -> None:
        """Ask for a progress notification on every watch of this client."""
        self._watches().request_progress()

    def _watches(self) -> AsyncWatchStream:
        if self._closed:
            raise ClientClosedError("the client is closed")
        if self._watch_stream is None:
            self._watch_stream = AsyncWatchStream(
                self._stream_call(_watch.WATCH), self._revisions, self._stream_error,
                    authenticated=self._user is not None,
            )
        return self._watch_stream

    def _stream_call(self, method: str) -> Callable[..., Awaitable[Any]]:
        """An opener (a coroutine) for a stream that carries the current auth token
        (and uses the current channel: an endpoint sync may replace it)."""

        async def open_stream(requests: Any, **kwargs: Any) -> Any:
            if self._needs_login:
                await self._login()
            return self._open().stream_stream(method)(requests, metadata=self._metadata, **kwargs)

        return open_stream

    # -- Cluster (etcdfast.cluster) --------------------------------------------

    member_list = async_method(_cluster.member_list)
    member_add = async_method(_cluster.member_add)
    member_remove = async_method(_cluster.member_remove)
    member_update = async_method(_cluster.member_update)
    member_promote = async_method(_cluster.member_promote)

    # -- Maintenance (etcdfast.maintenance) ------------------------------------

    status = async_method(_maint.status)
    defragment = async_method(_maint.defragment)
    alarms = async_method(_maint.alarms)
    alarm_activate = async_method(_maint.alarm_activate)
    hash = async_method(_maint.hash)
    hash_kv = async_method(_maint.hash_kv)
    move_leader = async_method(_maint.move_leader)

    async def alarm_disarm(
        self,
        member_id: int = 0,
        alarm: Union[AlarmType, int] = AlarmType.NONE,
        *,
        timeout: Optional[float] = None,
    ) -> List[Alarm]:
        """Clear alarms; returns the ones cleared. See :meth:`etcdfast.Client.alarm_disarm`
        (the defaults clear every active alarm)."""
        plan = _maint.AlarmDisarmPlan(member_id, alarm, timeout=timeout)
        active = await self.alarms(timeout=timeout) if plan.needs_list else None
        cleared: List[Alarm] = []
        for request in plan.requests(active):
            cleared += await self._execute(request)
        return cleared

    async def snapshot(
        self,
        path: Union[str, "os.PathLike[str]"],
        *,
        progress: Optional[Callable[[int, int], Any]] = None,
        timeout: Optional[float] = None,
    ) -> SnapshotResult:
        """Save the answering member's database to ``path``, checksum verified.

        Same behaviour as :meth:`etcdfast.Client.snapshot` (``path + ".part"``,
        SHA-256 check, fsync and rename; the part file is deleted on failure or
        cancellation). ``progress(bytes_written, remaining_bytes)`` may be a
        plain function or a coroutine function. The final fsync runs in a
        worker thread, so the event loop is not blocked by the disk.
        """
        deadline = check_timeout(timeout)
        writer = _maint.SnapshotWriter(path, progress)
        stream = self._server_stream(_maint.SNAPSHOT, _maint.SNAPSHOT_REQUEST, deadline)
        try:
            async for raw in stream:
                outcome = writer.write(raw)
                if inspect.isawaitable(outcome):
                    await outcome
        except BaseException:
            writer.abort()
            raise
        finally:
            await stream.aclose()
        return await asyncio.get_running_loop().run_in_executor(None, writer.finish)

    async def _server_stream(
        self, method: str, payload: bytes, timeout: Optional[float]
    ) -> AsyncGenerator[bytes, None]:
        """The raw answers of a server-streaming call; errors come out typed.

        A stale auth token refused before the first answer: log in again and
        reopen once. Closing the generator cancels the call.
        """
        multicallable = self._open().unary_stream(method)
        for attempt in range(2):
            if self._needs_login:
                await self._login()
            call = multicallable(payload, timeout=timeout, metadata=self._metadata)
            received = False
            try:
                async for raw in call:
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

    auth_enable = async_method(_auth.auth_enable)
    auth_disable = async_method(_auth.auth_disable)
    auth_status = async_method(_auth.auth_status)
    user_add = async_method(_auth.user_add, secret=True)
    user_get = async_method(_auth.user_get)
    user_list = async_method(_auth.user_list)
    user_delete = async_method(_auth.user_delete)
    user_change_password = async_method(_auth.user_change_password, secret=True)
    user_grant_role = async_method(_auth.user_grant_role)
    user_revoke_role = async_method(_auth.user_revoke_role)
    role_add = async_method(_auth.role_add)
    role_get = async_method(_auth.role_get)
    role_list = async_method(_auth.role_list)
    role_delete = async_method(_auth.role_delete)
    role_grant_permission = async_method(_auth.role_grant_permission)
    role_revoke_permission = async_method(_auth.role_revoke_permission)

    # -- endpoints -------------------------------------------------------------

    async def sync_endpoints(self) -> List[str]:
        """Refresh the endpoints from the member list; see :meth:`etcdfast.Client.sync_endpoints`."""
        new = self._synced_endpoints((await self.member_list()).members)
        if new is not None:
            old = self._channel
            self._use_endpoints(new)
            self._channel = None  # the next call opens one on the new endpoints
            self._handles = {}
            if old is not None:
                loop = asyncio.get_running_loop()
                loop.call_later(RETIRE_CHANNEL_AFTER, lambda: loop.create_task(old.close()))
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
                    logging.getLogger("etcdfast").debug("endpoint sync failed: %s", exc)

        self._sync_task = asyncio.get_running_loop().create_task(run(), name="etcdfast-autosync")

    # -- lifecycle -----------------------------------------------------------

    async def close(self) -> None:
        """Stop watches and keep-alives, close the channel. Idempotent; later
        calls raise ClientClosedError."""
        if self._closed:
            return
        self._closed = True
        if self._sync_task is not None:
            self._sync_task.cancel()
            await asyncio.gather(self._sync_task, return_exceptions=True)
        for stream in (self._watch_stream, self._keepalive_stream):
            if stream is not None:
                await stream.close()
        for task in list(self._callback_tasks):
            task.cancel()
        if self._callback_tasks:
            await asyncio.gather(*self._callback_tasks, return_exceptions=True)
        channel, self._channel = self._channel, None
        if channel is not None:
            await channel.close()

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, exc_type: Optional[Type[BaseException]], *exc: object) -> None:
        await self.close()

    # -- driver --------------------------------------------------------------

    def _open(self) -> grpc.aio.Channel:
        if self._closed:
            raise ClientClosedError("the client is closed")
        if self._channel is None:
            self._channel = self._new_channel(grpc.aio)
            self._start_auto_sync()
        return self._channel

    def _handle(self, method: str) -> Any:
        handle = self._handles.get(method)
        if handle is None:
            handle = self._handles[method] = self._open().unary_unary(method)
        return handle

    async def _execute(self, request: Request[Any]) -> Any:
        if self._closed:
            raise ClientClosedError("the client is closed")
        handle = self._handles.get(request.method) or self._handle(request.method)
        timeout = self._deadline(request.timeout)
        if self._needs_login:
            await self._login()
        try:
            raw = await handle(request.payload, timeout=timeout, metadata=self._metadata)
        except grpc.RpcError as exc:
            raw = await self._recover(request, handle, exc, timeout)
        return request.decode(raw, self._revisions)

    async def _recover(self, request: Request[Any], handle: Any, exc: grpc.RpcError,
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
                # Refused before running: log in again and repeat it once.
                await self._login()
                logged_in_again = True
            else:
                delay = self._retry_delay(request, error, attempt, backoff, deadline)
                if delay is None:
                    if self._wants_compact_revision(request.method, error):
                        assert isinstance(error, CompactedError)
                        error.compact_revision = await self._probe_compact_revision()
                    raise error from exc
                await asyncio.sleep(delay)
                attempt += 1
            left = None if deadline is None else max(deadline - time.monotonic(), 0.001)
            try:
                return await handle(request.payload, timeout=left, metadata=self._metadata)  # type: ignore[no-any-return]
            except grpc.RpcError as again:
                exc = again

    async def _login(self) -> None:
        """Authenticate (once, however many tasks ask) and keep the token."""
        if self._auth_lock is None:
            self._auth_lock = asyncio.Lock()
        async with self._auth_lock:
            if not self._needs_login:
                return
            login = self._open().unary_unary(AUTHENTICATE)
            try:
                raw = await login(self._login_request(), timeout=self._timeout,
                                  metadata=self._base_metadata or None)
            except grpc.RpcError as exc:
                raise self._error(exc) from None  # no traceback frame holds the password
            self._set_token(raw)

    async def _probe_compact_revision(self) -> Optional[int]:
        call = await self._stream_call(WATCH)(None, timeout=2.0)
        try:
            await call.write(compact_probe_request())
            for _ in range(2):
                raw = await call.read()
                if raw is grpc.aio.EOF:
                    break
                revision = compact_probe_answer(raw)
                if revision:
                    return revision
        except (grpc.RpcError, asyncio.TimeoutError):
            pass
        finally:
            call.cancel()
        return None
