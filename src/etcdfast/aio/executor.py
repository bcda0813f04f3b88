"""The grpc.aio executor: performs the core's actions for the asyncio client.

The asyncio twin of ``etcdfast._sync.executor`` (the only other code that
calls grpc): the decisions are the machines' in ``etcdfast._core.calls``.

A task cancelled by its owner stays cancelled (``asyncio.CancelledError``
propagates); grpc.aio also cancels every call in flight when the channel is
closed, and those become :class:`~etcdfast.errors.ClosedDuringCallError`.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any, AsyncIterator, Awaitable, Callable, Dict, List, Optional, Tuple, TypeVar

import grpc
import grpc.aio

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
from .._sync.executor import close_tunnels, new_channel
from ..api.request import Request
from ..errors import EtcdError, ForkedClientError, Unavailable

__all__ = ["AsyncExecutor", "stop_stream", "raced_stream_end", "RACED_REOPENS"]

T = TypeVar("T")

#: The process that opened this module's first grpc.aio channel, which starts
#: grpc.aio's process-wide polling thread; None before.
_aio_started_in: Optional[int] = None


def _check_aio_usable() -> None:
    """Refuse AsyncClients in a child forked after grpc.aio started: its
    polling thread is not in the child, so every call would hang forever
    (gRPC supports fork with its sync stack only)."""
    if _aio_started_in is not None and _aio_started_in != os.getpid():
        raise ForkedClientError(
            f"grpc.aio was started in process {_aio_started_in} before os.fork(); its polling thread "
            f"is not in this child (process {os.getpid()}), so no AsyncClient can work here: calls "
            "would hang. Use etcdfast.Client in the child, or start it with multiprocessing's "
            "'spawn' or 'forkserver' method."
        )


def _aio_channel(state: ClientState, endpoint: Optional[str] = None,
                 tunnels: Optional[List[Any]] = None) -> grpc.aio.Channel:
    global _aio_started_in
    _check_aio_usable()
    channel = new_channel(state, grpc.aio, endpoint, tunnels)
    if _aio_started_in is None:
        _aio_started_in = os.getpid()
    return channel


#: How many times in a row a stream is opened again after :func:`raced_stream_end`.
RACED_REOPENS = 5


def raced_stream_end(exc: BaseException) -> bool:
    """True for grpc.aio's INTERNAL "Internal error from Core" from a request
    written while the server was ending the stream (etcd refuses a watch
    stream at once when it has no leader and "hasleader" is asked): grpc.aio
    then overwrites the server's status with its own, so the cause is lost
    and only opening the stream again hears it. grpcio's sync calls keep
    the server's status."""
    if not isinstance(exc, grpc.aio.AioRpcError) or exc.code() != grpc.StatusCode.INTERNAL:
        return False
    return "SendMessageOperation" in (exc.debug_error_string() or "")


async def stop_stream(call: Any, task: "Optional[asyncio.Task[None]]") -> None:
    """Cancel a background stream's gRPC call and its task, and wait for the task to end."""
    if call is not None:
        call.cancel()
    if task is not None and task is not asyncio.current_task():
        task.cancel()
        try:
            await task
        except (asyncio.CancelledError, Exception):
            pass


class AsyncExecutor:
    """Runs calls and streams for one :class:`~etcdfast.AsyncClient` over one grpc.aio channel.

    The channel is opened on first use, inside the running event loop.
    """

    def __init__(self, state: ClientState, on_open: Optional[Callable[[], None]] = None) -> None:
        _check_aio_usable()
        self.state = state
        #: Called once, when the first channel opens inside the running loop.
        self._on_open = on_open
        self._channel: Optional[grpc.aio.Channel] = None
        self._handles: Dict[str, Any] = {}
        #: Channels to single members, for calls pinned with ``endpoint=``.
        self._pinned: Dict[str, grpc.aio.Channel] = {}
        self._pinned_handles: Dict[Tuple[str, str], Any] = {}
        # Made on first use: before 3.10 an asyncio.Lock binds to the loop
        # current at creation, and clients are often built outside the loop.
        self._auth_lock: Optional[asyncio.Lock] = None
        self._retiring: "set[asyncio.Task[None]]" = set()
        #: insecure_skip_verify's TLS tunnels (see etcdfast._trust), closed with the client.
        self._tunnels: List[Any] = []

    def channel(self) -> grpc.aio.Channel:
        """The channel, opened on first use (ClientClosedError once closed)."""
        self.state._check_open()
        if self._channel is None:
            self._channel = _aio_channel(self.state, tunnels=self._tunnels)
            on_open, self._on_open = self._on_open, None
            if on_open is not None:
                on_open()
        return self._channel

    # -- unary calls -----------------------------------------------------------

    async def run(self, request: Request[T]) -> T:
        """Execute one unary call; returns its decoded result or raises an EtcdError."""
        call = Call(request, self.state)
        if self.state._on_call is None:
            return await self.drive(call, call.start())  # type: ignore[no-any-return]
        return await self._observed(call, self.drive(call, call.start()))

    async def _observed(self, call: Call, work: Awaitable[T]) -> T:
        """``await work``, then the ``on_call`` hook told how the call went."""
        hook = self.state._on_call
        assert hook is not None
        try:
            result = await work
        except BaseException as exc:
            fire(hook, call.info(exc))
            raise
        fire(hook, call.info(None, result=result))
        return result

    async def drive(self, call: Call, action: int) -> Any:
        """Perform ``call``'s actions from ``action`` on until it answers or raises."""
        while True:
            if action == SEND:
                request = call.request
                try:
                    handle = self._handles.get(request.method) if request.endpoint is None else None
                    metadata = (self.state._metadata if request.require_leader is None
                                else self.state._metadata_of(request.require_leader))
                    raw = await (handle or self._handle(request.method, request.endpoint))(
                        request.payload, timeout=call.time_left(), metadata=metadata
                    )
                except grpc.RpcError as exc:
                    action = call.failed(exc)
                    continue
                except asyncio.CancelledError as exc:
                    if not self.state._closed:
                        raise  # the caller's own cancellation
                    action = call.failed(exc)
                    continue
                except Exception as exc:  # grpc refused to start it (e.g. a closed channel)
                    action = call.failed(exc, started=False)
                    continue
                return call.answered(raw)
            action = await self._step(call, action)

    def _handle(self, method: str, endpoint: Optional[str] = None) -> Any:
        if endpoint is None:
            handle = self._handles[method] = self.channel().unary_unary(method)
            return handle
        handle = self._pinned_handles.get((endpoint, method))
        if handle is None:
            handle = self._pinned_handles[endpoint, method] = self._channel_to(endpoint).unary_unary(method)
        return handle

    def _channel_to(self, endpoint: Optional[str]) -> grpc.aio.Channel:
        """The balanced channel, or the one to the member ``endpoint`` (opened on first use)."""
        if endpoint is None:
            return self.channel()
        self.state._check_open()
        channel = self._pinned.get(endpoint)
        if channel is None:
            channel = self._pinned[endpoint] = _aio_channel(self.state, endpoint, self._tunnels)
        return channel

    async def _step(self, call: Any, action: int) -> int:
        """Every action but SEND, for unary and streaming calls alike."""
        if action == RAISE:
            raise call.error
        if action == DIAL:
            wait = call.dial_wait()
            return call.dialed(await self._dial(wait, call.request.endpoint), wait)  # type: ignore[no-any-return]
        if action == LOGIN:
            await self.login()
            return call.logged_in()  # type: ignore[no-any-return]
        if action == SLEEP:
            await asyncio.sleep(call.delay)
            return call.slept()  # type: ignore[no-any-return]
        if action == CHECK:
            return call.checked(await self._check_versions())  # type: ignore[no-any-return]
        assert action == PROBE
        return call.probed(await self._probe())  # type: ignore[no-any-return]

    # -- server streams --------------------------------------------------------

    def stream(self, request: Request[Any]) -> AsyncIterator[bytes]:
        """The raw answers of a server-streaming call; closing the iterator cancels it."""
        call = StreamCall(request, self.state)
        if self.state._on_call is None:
            return self._stream(call)
        return self._reported(call, self._stream(call))

    async def _reported(self, call: StreamCall, answers: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        """``answers``, and the ``on_call`` hook told when the stream ends."""
        hook = self.state._on_call
        assert hook is not None
        error: Optional[BaseException] = None
        try:
            async for raw in answers:
                yield raw
        except GeneratorExit:  # the consumer stopped: a normal end
            raise
        except BaseException as exc:
            error = exc
            raise
        finally:
            await answers.aclose()  # type: ignore[attr-defined]
            fire(hook, call.info(error, "server_stream"))

    async def _stream(self, call: StreamCall) -> AsyncIterator[bytes]:
        request = call.request
        action = call.start()
        while True:
            if action != SEND:
                action = await self._step(call, action)
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
                async for raw in rpc:
                    call.received = True
                    yield raw
                return
            except grpc.RpcError as exc:
                action = call.failed(exc)
            except asyncio.CancelledError as exc:
                if not self.state._closed:
                    raise
                action = call.failed(exc)
            finally:
                rpc.cancel()

    async def first(self, request: Request[T]) -> T:
        """The decoded first answer of a server stream (e.g. ``keep_alive_once``)."""
        stream = self.stream(request)
        try:
            async for raw in stream:
                return request.decode(raw, self.state._revisions)
        finally:
            await stream.aclose()  # type: ignore[attr-defined]
        where = self.state._where()
        raise Unavailable(f"{request.method} stream ended without an answer", endpoint=where)

    async def _check_versions(self) -> Optional[BaseException]:
        """Run the state's version check (see the sync executor's)."""
        steps = self.state._version_check()
        try:
            request = next(steps)
            while True:
                try:
                    answer = await self.run(request)
                except EtcdError as exc:
                    return exc
                request = steps.send(answer)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]

    async def _probe(self) -> Optional[int]:
        stream = self.stream(compact_probe())
        try:
            for _ in range(PROBE_ANSWERS):
                revision = compact_revision_of(await stream.__anext__())
                if revision:
                    return revision
        except (EtcdError, StopAsyncIteration):
            pass
        finally:
            await stream.aclose()  # type: ignore[attr-defined]
        return None

    # -- bidirectional streams (watch, keep-alive) ------------------------------

    def open_stream(self, method: str, requests: Any, require_leader: Optional[bool] = None) -> Any:
        """Open a bidirectional stream fed by ``requests`` (log in first: :meth:`login_if_needed`)."""
        metadata = self.state._metadata_of(require_leader)
        return self.channel().stream_stream(method)(requests, metadata=metadata)

    # -- connection and login ----------------------------------------------------

    async def login_if_needed(self) -> None:
        if self.state._needs_login:
            await self.login()

    async def login(self) -> None:
        """Authenticate (once, however many tasks ask) and keep the token."""
        if self._auth_lock is None:
            self._auth_lock = asyncio.Lock()
        async with self._auth_lock:
            if self.state._needs_login:
                self.state._set_token(await self.run(self.state._login_request()))

    async def _dial(self, wait: float, endpoint: Optional[str] = None) -> Optional[BaseException]:
        """Probe the connection (see ``_core.calls.DIAL_METHOD``); the probe's failure, if any."""
        try:
            await self._handle(DIAL_METHOD, endpoint)(b"", timeout=wait)
        except asyncio.CancelledError as exc:
            if not self.state._closed:
                raise
            return exc
        except Exception as exc:  # UNIMPLEMENTED: connected; the machine reads the rest
            return exc
        return None

    def use_endpoints(self, endpoints: List[Endpoint]) -> None:
        """Send new calls to ``endpoints``; the old channel finishes what runs on
        it and is closed after ``RETIRE_CHANNEL_AFTER`` s."""
        self.state._check_open()
        old = self._channel
        self.state._use_endpoints(endpoints)
        self.state._reset_dial()
        self._channel, self._handles = None, {}  # the next call opens one on the new endpoints
        if old is not None:
            loop = asyncio.get_running_loop()
            loop.call_later(RETIRE_CHANNEL_AFTER, self._retire, old)

    def _retire(self, channel: grpc.aio.Channel) -> None:
        task = asyncio.get_running_loop().create_task(channel.close())
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)

    async def close(self) -> None:
        # Every reference to a channel goes here, handles included: grpc.aio
        # stays bound to this event loop while any channel object lives, and a
        # completion its core delivers after this loop closed then stops
        # grpc's shared event drain, delaying another loop's events until its
        # next completion (lost wake-ups in a later ``asyncio.run``).
        channel, self._channel = self._channel, None
        pinned, self._pinned = list(self._pinned.values()), {}
        self._handles, self._pinned_handles = {}, {}
        for each in ([channel] if channel is not None else []) + pinned:
            await each.close()
        close_tunnels(self._tunnels)
