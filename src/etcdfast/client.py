"""The synchronous client."""

from __future__ import annotations

import threading
from typing import Any, Optional, Type

import grpc

from . import kv
from ._request import Request, sync_method
from .errors import ClientClosedError, CompactedError
from .transport import WATCH, ClientCore, compact_probe_answer, compact_probe_request

__all__ = ["Client"]


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
        self._channel = grpc.insecure_channel(self._target, options=self._options)

    # -- KV ------------------------------------------------------------------

    get = sync_method(kv.get)
    get_value = sync_method(kv.get_value)
    put = sync_method(kv.put)
    delete = sync_method(kv.delete)
    compact = sync_method(kv.compact)
    txn = sync_method(kv.txn)

    # -- lifecycle -----------------------------------------------------------

    def close(self) -> None:
        """Close the channel. Idempotent; later calls raise ClientClosedError."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
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
        try:
            raw = handle(request.payload, timeout=self._deadline(request.timeout))
        except grpc.RpcError as exc:
            if self._closed:
                raise ClientClosedError("the client was closed during the call") from exc
            error = self._error(exc)
            if self._wants_compact_revision(request.method, error):
                assert isinstance(error, CompactedError)
                error.compact_revision = self._probe_compact_revision()
            raise error from exc
        return request.decode(raw, self._revisions)

    def _probe_compact_revision(self) -> Optional[int]:
        call = self._channel.stream_stream(WATCH)(iter([compact_probe_request()]), timeout=2.0)
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
