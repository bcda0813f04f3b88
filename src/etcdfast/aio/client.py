"""The asyncio client: same methods as :class:`etcdfast.Client`, awaited."""

from __future__ import annotations

import asyncio
from typing import Any, Optional, Type

import grpc
import grpc.aio

from .. import kv
from .._request import Request, async_method
from ..errors import ClientClosedError, CompactedError
from ..transport import WATCH, ClientCore, compact_probe_answer, compact_probe_request

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

    # -- KV ------------------------------------------------------------------

    get = async_method(kv.get)
    get_value = async_method(kv.get_value)
    put = async_method(kv.put)
    delete = async_method(kv.delete)
    compact = async_method(kv.compact)
    txn = async_method(kv.txn)

    # -- lifecycle -----------------------------------------------------------

    async def close(self) -> None:
        """Close the channel. Idempotent; later calls raise ClientClosedError."""
        if self._closed:
            return
        self._closed = True
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
            self._channel = grpc.aio.insecure_channel(self._target, options=self._options)
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
        try:
            raw = await handle(request.payload, timeout=self._deadline(request.timeout))
        except grpc.RpcError as exc:
            if self._closed:
                raise ClientClosedError("the client was closed during the call") from exc
            error = self._error(exc)
            if self._wants_compact_revision(request.method, error):
                assert isinstance(error, CompactedError)
                error.compact_revision = await self._probe_compact_revision()
            raise error from exc
        return request.decode(raw, self._revisions)

    async def _probe_compact_revision(self) -> Optional[int]:
        call = self._open().stream_stream(WATCH)(timeout=2.0)
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
