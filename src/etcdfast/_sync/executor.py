"""The grpcio executor: performs the core's actions for the sync client.

Together with ``aio/executor.py`` this is the only code that calls grpc. The
decisions -- retry or not, log in, what an error means -- are the machines'
in ``etcdfast._core.calls``; here each action is one grpcio call.
"""

from __future__ import annotations

import itertools
import threading
import time
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple, TypeVar

import grpc

from .._core.calls import (
    CHECK,
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
from .._core.observe import fire
from .._core.state import RETIRE_CHANNEL_AFTER, ClientState
from .._trust import trust_presented
from ..api.request import Request
from ..errors import EtcdError, Unavailable

__all__ = ["Executor", "new_channel", "stop_stream"]

T = TypeVar("T")

def new_channel(state: ClientState, grpc_module: Any, endpoint: Optional[str] = None) -> Any:
    """A channel from ``grpc`` or ``grpc.aio`` for the state's endpoints (or to
    the one member ``endpoint``), with TLS when configured."""
    if endpoint is None:
        target, options = state._target, state._options
    else:
        target, options = state._pinned_channel_args(endpoint)
    if state._tls is not None:
        root, key, chain = state._tls
        if state._skip_verify:
            addresses = [e.address for e in state._endpoints] if endpoint is None else [endpoint]
            root, name = trust_presented(addresses)
            if name is not None and not any(o[0] == "grpc.ssl_target_name_override" for o in options):
                options = [*options, ("grpc.ssl_target_name_override", name)]
        credentials = grpc.ssl_channel_credentials(
            root_certificates=root, private_key=key, certificate_chain=chain
        )
        return grpc_module.secure_channel(target, credentials, options=options)
    return grpc_module.insecure_channel(target, options=options)


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
        #: Channels to single members, for calls pinned with ``endpoint=``.
        self._pinned: Dict[str, Any] = {}
        self._pinned_handles: Dict[Tuple[str, str], Any] = {}

    # -- unary calls -----------------------------------------------------------

    def run(self, request: Request[T]) -> T:
        """Execute one unary call; returns its decoded result or raises an EtcdError."""
        call = Call(request, self.state)
        if self.state._on_call is None:
            return self.drive(call, call.start())  # type: ignore[no-any-return]
        return self._observed(call, lambda: self.drive(call, call.start()))  # type: ignore[no-any-return]

    def _observed(self, call: Call, work: Callable[[], T]) -> T:
        """``work()``, then the ``on_call`` hook told how the call went."""
        hook = self.state._on_call
        assert hook is not None
        try:
            result = work()
        except BaseException as exc:
            fire(hook, call.info(exc))
            raise
        fire(hook, call.info(None))
        return result

    def drive(self, call: Call, action: int) -> Any:
        """Perform ``call``'s actions from ``action`` on until it answers or raises."""
        while True:
            if action == SEND:
                request = call.request
                try:
                    handle = self._handles.get(request.method) if request.endpoint is None else None
                    handle = handle or self._handle(request.method, request.endpoint)
                    metadata = (self.state._metadata if request.require_leader is None
                                else self.state._metadata_of(request.require_leader))
                    # (grpc's client calls do not tell which member answered: no peer())
                    raw = handle(request.payload, timeout=call.time_left(), metadata=metadata)
                except grpc.RpcError as exc:
                    action = call.failed(exc)
                    continue
                except Exception as exc:  # grpc refused to start it (e.g. a closed channel)
                    action = call.failed(exc, started=False)
                    continue
                return call.answered(raw)
            action = self._step(call, action)

    def _handle(self, method: str, endpoint: Optional[str] = None) -> Any:
        # No serializers: grpc passes our bytes through untouched.
        if endpoint is None:
            handle = self._handles[method] = self._channel.unary_unary(method)
            return handle
        handle = self._pinned_handles.get((endpoint, method))
        if handle is None:
            handle = self._pinned_handles[endpoint, method] = self._channel_to(endpoint).unary_unary(method)
        return handle

    def _channel_to(self, endpoint: Optional[str]) -> Any:
        """The balanced channel, or the one to the member ``endpoint`` (opened on first use)."""
        if endpoint is None:
            return self._channel
        with self._lock:
            self.state._check_open()
            channel = self._pinned.get(endpoint)
            if channel is None:
                channel = self._pinned[endpoint] = new_channel(self.state, grpc, endpoint)
            return channel

    def start(self, call: Call) -> Optional[Any]:
        """Send ``call`` without waiting (bulk loads keep several in flight): a
        grpc future to give :meth:`outcome`, or None when the call cannot be
        sent right away (it must dial or log in first, or raise): then
        :meth:`outcome` runs it to its end."""
        if call.start() != SEND:
            return None
        request = call.request
        handle = self._handles.get(request.method) if request.endpoint is None else None
        handle = handle or self._handle(request.method, request.endpoint)
        try:
            return handle.future(request.payload, timeout=call.time_left(),
                                 metadata=self.state._metadata_of(request.require_leader))
        except Exception:  # grpc refused to start it: outcome() replays the send
            return None

    def outcome(self, call: Call, future: Optional[Any]) -> Any:
        """The result of a call passed to :meth:`start` (retried, logged in... as any call)."""
        if self.state._on_call is not None:
            return self._observed(call, lambda: self._outcome(call, future))
        return self._outcome(call, future)

    def _outcome(self, call: Call, future: Optional[Any]) -> Any:
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
            return call.dialed(self._dial(wait, call.request.endpoint), wait)  # type: ignore[no-any-return]
        if action == LOGIN:
            self.login()
            return call.logged_in()  # type: ignore[no-any-return]
        if action == SLEEP:
            time.sleep(call.delay)
            return call.slept()  # type: ignore[no-any-return]
        if action == CHECK:
            return call.checked(self._check_versions())  # type: ignore[no-any-return]
        assert action == PROBE
        return call.probed(self._probe())  # type: ignore[no-any-return]

    # -- server streams --------------------------------------------------------

    def stream(self, request: Request[Any]) -> Iterator[bytes]:
        """The raw answers of a server-streaming call; closing the iterator cancels it."""
        call = StreamCall(request, self.state)
        if self.state._on_call is None:
            return self._stream(call)
        return self._reported(call, self._stream(call))

    def _reported(self, call: StreamCall, answers: Iterator[bytes]) -> Iterator[bytes]:
        """``answers``, and the ``on_call`` hook told when the stream ends."""
        hook = self.state._on_call
        assert hook is not None
        error: Optional[BaseException] = None
        try:
            yield from answers
        except GeneratorExit:  # the consumer stopped: a normal end
            raise
        except BaseException as exc:
            error = exc
            raise
        finally:
            fire(hook, call.info(error, "server_stream"))

    def _stream(self, call: StreamCall) -> Iterator[bytes]:
        request = call.request
        action = call.start()
        while True:
            if action != SEND:
                action = self._step(call, action)
                continue
            try:
                rpc = self._channel_to(request.endpoint).unary_stream(request.method)(
                    request.payload, timeout=call.time_left(),
                    metadata=self.state._metadata_of(request.require_leader),
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

    def _check_versions(self) -> Optional[BaseException]:
        """Run the state's version check; its refusal, or the error of a member
        that could not be asked."""
        steps = self.state._version_check()
        try:
            request = next(steps)
            while True:
                try:
                    answer = self.run(request)
                except EtcdError as exc:
                    return exc
                request = steps.send(answer)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]

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

    def open_stream(
        self, method: str, requests: Iterator[bytes], require_leader: Optional[bool] = None
    ) -> Any:
        """Open a bidirectional stream fed by ``requests`` (log in first: :meth:`login_if_needed`)."""
        return self._channel.stream_stream(method)(requests, metadata=self.state._metadata_of(require_leader))

    # -- connection and login ----------------------------------------------------

    def login_if_needed(self) -> None:
        if self.state._needs_login:
            self.login()

    def login(self) -> None:
        """Authenticate (once, however many threads ask) and keep the token."""
        with self._auth_lock:
            if self.state._needs_login:
                self.state._set_token(self.run(self.state._login_request()))

    def _dial(self, wait: float, endpoint: Optional[str] = None) -> Optional[BaseException]:
        """Probe the connection (see ``_core.calls.DIAL_METHOD``); the probe's failure, if any."""
        try:
            self._handle(DIAL_METHOD, endpoint)(b"", timeout=wait)
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
            self.state._reset_dial()
            self._channel, self._handles = new_channel(self.state, grpc), {}
        retire = threading.Timer(RETIRE_CHANNEL_AFTER, old.close)
        retire.daemon = True
        retire.start()

    def close(self) -> None:
        self._channel.close()
        with self._lock:
            pinned, self._pinned = list(self._pinned.values()), {}
        for channel in pinned:
            channel.close()
