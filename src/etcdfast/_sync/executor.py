"""The grpcio executor: performs the core's actions for the sync client.

Together with ``aio/executor.py`` this is the only code that calls grpc. The
decisions -- retry or not, log in, what an error means -- are the machines'
in ``etcdfast._core.calls``; here each action is one grpcio call.
"""

from __future__ import annotations

import itertools
import threading
import time
from typing import Any, Dict, Iterator, List, Optional, TypeVar

import grpc

from .._core.calls import (
    DIAL,
    DIAL_METHOD,
    LOGIN,
    PROBE,
    PROBE_ANSWERS,
    RAISE,
    SEND,
    SLEEP,
    Call,
    StreamCall,
    compact_probe,
    compact_revision_of,
)
from .._core.endpoints import Endpoint
from .._core.state import RETIRE_CHANNEL_AFTER, ClientState
from ..api.request import Request
from ..errors import EtcdError, Unavailable

__all__ = ["Executor", "new_channel", "stop_stream"]

T = TypeVar("T")

def new_channel(state: ClientState, grpc_module: Any) -> Any:
    """A channel from ``grpc`` or ``grpc.aio`` for the state's endpoints, with TLS when configured."""
    if state._tls is not None:
        root, key, chain = state._tls
        credentials = grpc.ssl_channel_credentials(
            root_certificates=root, private_key=key, certificate_chain=chain
        )
        return grpc_module.secure_channel(state._target, credentials, options=state._options)
    return grpc_module.insecure_channel(state._target, options=state._options)


def stop_stream(call: Any, thread: Optional[threading.Thread]) -> None:
    """Cancel a background stream's gRPC call and join its thread (unless called from it)."""
    if call is not None:
        call.cancel()
    if thread is not None and thread is not threading.current_thread():
        thread.join(10)


class Executor:
    """Runs calls and streams for one sync :class:`~etcdfast.Client` over one grpcio channel."""

    def __init__(self, state: ClientState) -> None:
        self.state = state
        self._lock = threading.Lock()
        self._auth_lock = threading.Lock()
        self._channel = new_channel(state, grpc)
        self._handles: Dict[str, Any] = {}

    # -- unary calls -----------------------------------------------------------

    def run(self, request: Request[T]) -> T:
        """Execute one unary call; returns its decoded result or raises an EtcdError."""
        call = Call(request, self.state)
        return self.drive(call, call.start())  # type: ignore[no-any-return]

    def drive(self, call: Call, action: int) -> Any:
        """Perform ``call``'s actions from ``action`` on until it answers or raises."""
        while True:
            if action == SEND:
                request = call.request
                try:
                    raw = (self._handles.get(request.method) or self._handle(request.method))(
                        request.payload, timeout=call.time_left(), metadata=self.state._metadata
                    )
                except grpc.RpcError as exc:
                    action = call.failed(exc)
                    continue
                except Exception as exc:  # grpc refused to start it (e.g. a closed channel)
                    action = call.failed(exc, started=False)
                    continue
                return call.answered(raw)
            action = self._step(call, action)

    def _handle(self, method: str) -> Any:
        # No serializers: grpc passes our bytes through untouched.
        handle = self._handles[method] = self._channel.unary_unary(method)
        return handle

    def start(self, call: Call) -> Optional[Any]:
        """Send ``call`` without waiting (bulk loads keep several in flight): a
        grpc future to give :meth:`outcome`, or None when the call cannot be
        sent right away (it must dial or log in first, or raise): then
        :meth:`outcome` runs it to its end."""
        if call.start() != SEND:
            return None
        request = call.request
        handle = self._handles.get(request.method) or self._handle(request.method)
        try:
            return handle.future(request.payload, timeout=call.time_left(), metadata=self.state._metadata)
        except Exception:  # grpc refused to start it: outcome() replays the send
            return None

    def outcome(self, call: Call, future: Optional[Any]) -> Any:
        """The result of a call passed to :meth:`start` (retried, logged in... as any call)."""
        if future is None:
            return self.drive(call, call.start())
        try:
            raw = future.result()
        except grpc.RpcError as exc:
            return self.drive(call, call.failed(exc))
        except Exception as exc:  # cancelled, or the channel closed under it
            return self.drive(call, call.failed(exc))
        return call.answered(raw)

    def _step(self, call: Any, action: int) -> int:
        """Every action but SEND, for unary and streaming calls alike."""
        if action == RAISE:
            raise call.error
        if action == DIAL:
            wait = call.dial_wait()
            return call.dialed(self._dial(wait), wait)  # type: ignore[no-any-return]
        if action == LOGIN:
            self.login()
            return call.logged_in()  # type: ignore[no-any-return]
        if action == SLEEP:
            time.sleep(call.delay)
            return call.slept()  # type: ignore[no-any-return]
        assert action == PROBE
        return call.probed(self._probe())  # type: ignore[no-any-return]

    # -- server streams --------------------------------------------------------

    def stream(self, request: Request[Any]) -> Iterator[bytes]:
        """The raw answers of a server-streaming call; closing the iterator cancels it."""
        call = StreamCall(request, self.state)
        action = call.start()
        while True:
            if action != SEND:
                action = self._step(call, action)
                continue
            try:
                rpc = self._channel.unary_stream(request.method)(
                    request.payload, timeout=call.time_left(), metadata=self.state._metadata
                )
            except Exception as exc:
                action = call.failed(exc, started=False)
                continue
            try:
                for raw in rpc:
                    call.received = True
                    yield raw
                return
            except grpc.RpcError as exc:
                action = call.failed(exc)
            finally:
                rpc.cancel()

    def first(self, request: Request[T]) -> T:
        """The decoded first answer of a server stream (e.g. ``keep_alive_once``)."""
        stream = self.stream(request)
        try:
            for raw in stream:
                return request.decode(raw, self.state._revisions)
        finally:
            stream.close()  # type: ignore[attr-defined]
        where = self.state._where()
        raise Unavailable(f"{request.method} stream ended without an answer", endpoint=where)

    def _probe(self) -> Optional[int]:
        stream = self.stream(compact_probe())
        try:
            for raw in itertools.islice(stream, PROBE_ANSWERS):
                revision = compact_revision_of(raw)
                if revision:
                    return revision
        except EtcdError:
            pass
        finally:
            stream.close()  # type: ignore[attr-defined]
        return None

    # -- bidirectional streams (watch, keep-alive) ------------------------------

    def open_stream(self, method: str, requests: Iterator[bytes]) -> Any:
        """Open a bidirectional stream fed by ``requests`` (log in first: :meth:`login_if_needed`)."""
        return self._channel.stream_stream(method)(requests, metadata=self.state._metadata)

    # -- connection and login ----------------------------------------------------

    def login_if_needed(self) -> None:
        if self.state._needs_login:
            self.login()

    def login(self) -> None:
        """Authenticate (once, however many threads ask) and keep the token."""
        with self._auth_lock:
            if self.state._needs_login:
                self.state._set_token(self.run(self.state._login_request()))

    def _dial(self, wait: float) -> Optional[BaseException]:
        """Probe the connection (see ``_core.calls.DIAL_METHOD``); the probe's failure, if any."""
        try:
            (self._handles.get(DIAL_METHOD) or self._handle(DIAL_METHOD))(b"", timeout=wait)
        except Exception as exc:  # UNIMPLEMENTED: connected; the machine reads the rest
            return exc
        return None

    def use_endpoints(self, endpoints: List[Endpoint]) -> None:
        """Send new calls to ``endpoints``; calls and streams running on the old
        channel finish there, and it is closed after ``RETIRE_CHANNEL_AFTER`` s."""
        with self._lock:
            self.state._check_open()
            old = self._channel
            self.state._use_endpoints(endpoints)
            self.state._dialed = self.state._dial_timeout is None
            self._channel, self._handles = new_channel(self.state, grpc), {}
        retire = threading.Timer(RETIRE_CHANNEL_AFTER, old.close)
        retire.daemon = True
        retire.start()

    def close(self) -> None:
        self._channel.close()
