""":class:`FaultProxy`: a one-thread TCP proxy on loopback that blackholes, resets
or delays the connections between a client and a server on demand (stdlib only)."""

from __future__ import annotations

import collections
import errno
import selectors
import socket
import struct
import threading
import time
from typing import Any, Deque, List, Optional, Set, Tuple

__all__ = ["FaultProxy"]

_CHUNK = 65536
_DOWN, _UP = 0, 1


class _Pipe:
    """One direction of a proxied connection: chunks waiting for their due time."""

    __slots__ = ("chunks", "queued", "eof", "shut")

    def __init__(self) -> None:
        self.chunks: Deque[List[Any]] = collections.deque()  # [due (monotonic), bytes]
        self.queued = 0
        self.eof = False  # the source sent FIN
        self.shut = False  # ...and it was passed on (shutdown(SHUT_WR) of the destination)


class _Link:
    """A client connection (``down``) and the proxy's connection to the target (``up``)."""

    __slots__ = ("down", "up", "connecting", "to_up", "to_down", "damaged", "closed", "events")

    def __init__(self, down: socket.socket) -> None:
        self.down = down
        self.up: Optional[socket.socket] = None
        self.connecting = False
        self.to_up = _Pipe()
        self.to_down = _Pipe()
        #: Bytes (or a FIN) were dropped by a blackhole: the streams have a gap.
        self.damaged = False
        self.closed = False
        self.events = [0, 0]  # selector interest of down, up


class FaultProxy:
    """A TCP proxy on loopback in front of one server, with network faults on demand.

    ::

        with EtcdServer() as server, FaultProxy("127.0.0.1", server.client_port) as proxy:
            client = etcdfast.Client(proxy.endpoint, timeout=5)
            proxy.blackhole()        # the client now talks to a silent peer
            proxy.pass_through()     # healed

    ``FaultProxy(host, port)``, or ``FaultProxy("host:port")`` with an
    endpoint string (``https://`` endpoints keep their scheme in
    :attr:`endpoint`: TLS passes through the proxy untouched).

    Modes, switched at any time from any thread (each switch has taken
    effect when the call returns):

    :meth:`pass_through`
        forward both directions (the default). (``pass`` is a Python keyword.)
    :meth:`blackhole`
        keep accepting and holding connections, but drop every byte both
        ways -- and FINs: the client sees a silent peer, as in a network
        partition, and only its own timeouts or keepalive pings can tell.
        New connections are not even forwarded. When the blackhole ends,
        connections that lost bytes are reset (their byte streams have gaps
        no protocol can continue); idle ones carry on.
    :meth:`reset`
        RST every open connection (``SO_LINGER`` 0), and every new one right
        after accepting it, until the mode changes.
    :meth:`delay`
        forward, but hold each chunk ``seconds`` before passing it on
        (latency, not a bandwidth cap: chunks in flight overlap).

    One thread and non-blocking sockets, stdlib only. Resources are bounded:
    at most ``max_connections`` connections (more are reset at once) and
    ``buffer_bytes`` queued per direction (then the proxy stops reading,
    which pushes back on the sender). Counters: :attr:`accepted`,
    :attr:`connections`, :attr:`bytes_forwarded`, :attr:`bytes_dropped`,
    :attr:`resets`. :meth:`close` resets everything and stops the thread.
    """

    def __init__(
        self,
        target_host: str,
        target_port: Optional[int] = None,
        *,
        max_connections: int = 128,
        buffer_bytes: int = 1 << 20,
    ) -> None:
        scheme = ""
        if target_port is None:  # "host:port" or "http(s)://host:port"
            text = target_host
            if "://" in text:
                scheme, _, text = text.partition("://")
            host, sep, port_text = text.rstrip("/").rpartition(":")
            if not sep or not port_text.isdigit():
                raise ValueError(f"target {target_host!r} is not 'host:port'")
            target_host, target_port = host.strip("[]") or "127.0.0.1", int(port_text)
        infos = socket.getaddrinfo(target_host, target_port, type=socket.SOCK_STREAM)
        if not infos:  # pragma: no cover - getaddrinfo raises instead
            raise ValueError(f"cannot resolve {target_host!r}")
        family, _, _, _, address = infos[0]
        self._family: int = family
        self._address: Any = address
        self.target = (target_host, int(target_port))
        self._scheme = "https://" if scheme == "https" else ""
        self.max_connections = max_connections
        self.buffer_bytes = buffer_bytes
        #: ``"pass"``, ``"blackhole"`` or ``"reset"``; :attr:`latency` applies in ``"pass"``.
        self.mode = "pass"
        self.latency = 0.0
        self.accepted = 0
        self.bytes_forwarded = 0
        self.bytes_dropped = 0
        self.resets = 0
        self._links: Set[_Link] = set()
        self._commands: Deque[Tuple[int, str, float]] = collections.deque()
        self._issued = 0
        self._applied = 0
        self._cond = threading.Condition()
        self._stopping = False
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self._listener.setblocking(False)
        self.port = int(self._listener.getsockname()[1])
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._listener, selectors.EVENT_READ)
        self._selector.register(self._wake_r, selectors.EVENT_READ)
        self._thread = threading.Thread(target=self._run, name=f"etcdfast-proxy-{self.port}", daemon=True)
        self._thread.start()

    @property
    def endpoint(self) -> str:
        """Where clients connect instead of the target: ``127.0.0.1:<port>``."""
        return f"{self._scheme}127.0.0.1:{self.port}"

    @property
    def connections(self) -> int:
        """Connections currently open through the proxy."""
        return len(self._links)

    def __repr__(self) -> str:
        latency = f" +{self.latency:g}s" if self.latency else ""
        return (f"<FaultProxy {self.endpoint} -> {self.target[0]}:{self.target[1]} "
                f"{self.mode}{latency} connections={self.connections}>")

    # -- modes (any thread) ----------------------------------------------------

    def pass_through(self) -> None:
        """Forward both ways with no added latency (ends blackhole, reset and delay)."""
        self._command("pass", 0.0)

    def blackhole(self) -> None:
        """Hold connections open and drop every byte both ways (a silent peer)."""
        self._command("blackhole", self.latency)

    def reset(self) -> None:
        """RST every open connection now, and every new one until the mode changes."""
        self._command("reset", 0.0)

    def delay(self, seconds: float) -> None:
        """Forward with ``seconds`` of added latency per chunk, each direction."""
        if not seconds >= 0:
            raise ValueError(f"delay must be >= 0 seconds, got {seconds!r}")
        self._command("pass", float(seconds))

    def close(self) -> None:
        """Reset every connection, stop listening and end the thread. Idempotent."""
        with self._cond:
            self._stopping = True
        self._wake()
        if self._thread is not threading.current_thread():
            self._thread.join(10)

    def __enter__(self) -> "FaultProxy":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _command(self, mode: str, latency: float) -> None:
        with self._cond:
            if self._stopping:
                raise RuntimeError("the proxy is closed")
            self._issued += 1
            issued = self._issued
            self._commands.append((issued, mode, latency))
        self._wake()
        with self._cond:
            if not self._cond.wait_for(lambda: self._applied >= issued or not self._thread.is_alive(), 10):
                raise RuntimeError("the proxy thread did not answer within 10 s")

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"!")
        except OSError:  # full (a wake-up is pending anyway) or closed
            pass

    # -- the proxy thread ------------------------------------------------------

    def _run(self) -> None:
        try:
            while True:
                self._apply_commands()
                if self._stopping:
                    return
                for key, mask in self._selector.select(self._next_timer()):
                    if key.fileobj is self._listener:
                        self._accept()
                    elif key.fileobj is self._wake_r:
                        self._drain_wake()
                    else:
                        link, side = key.data
                        if not link.closed:
                            self._service(link, side, mask)
                for link in list(self._links):
                    self._flush(link)
        finally:
            for link in list(self._links):
                self._drop(link, rst=True)
            for sock in (self._listener, self._wake_r, self._wake_w):
                sock.close()
            self._selector.close()
            with self._cond:
                self._stopping = True
                self._applied = self._issued
                self._cond.notify_all()

    def _drain_wake(self) -> None:
        try:
            while self._wake_r.recv(4096):
                pass
        except OSError:
            pass

    def _apply_commands(self) -> None:
        while True:
            with self._cond:
                if not self._commands:
                    return
                issued, mode, latency = self._commands.popleft()
            old, self.mode, self.latency = self.mode, mode, latency
            if mode == "reset":
                for link in list(self._links):
                    self._drop(link, rst=True)
            elif mode == "blackhole":
                for link in self._links:  # what is in flight is lost too
                    for pipe in (link.to_up, link.to_down):
                        if pipe.chunks:
                            self.bytes_dropped += pipe.queued
                            pipe.chunks.clear()
                            pipe.queued = 0
                            link.damaged = True
            elif old == "blackhole":
                for link in list(self._links):
                    if link.damaged or link.to_up.eof or link.to_down.eof:
                        self._drop(link, rst=True)
                    elif link.up is None:
                        self._connect_upstream(link)
            with self._cond:
                self._applied = issued
                self._cond.notify_all()

    def _next_timer(self) -> Optional[float]:
        now = time.monotonic()
        wait: Optional[float] = None
        for link in self._links:
            for pipe, side in ((link.to_up, _UP), (link.to_down, _DOWN)):
                if not pipe.chunks or (link.up if side == _UP else link.down) is None:
                    continue  # nothing to send, or nowhere to send it yet
                left = pipe.chunks[0][0] - now
                if left <= 0:
                    if link.events[side] & selectors.EVENT_WRITE:
                        continue  # due, and the selector wakes us when its socket is writable
                    # Due since _flush last looked (it found it early, so it
                    # registered no write interest): flush now. Waiting for
                    # other traffic instead stalled a delayed connection for
                    # good whenever the proxy thread was preempted between
                    # the two (seen under load as a call that never returned).
                    left = 0.0
                wait = left if wait is None else min(wait, left)
        return wait

    def _accept(self) -> None:
        for _ in range(64):
            try:
                sock, _ = self._listener.accept()
            except OSError:  # BlockingIOError: nothing more to accept
                return
            self.accepted += 1
            if self.mode == "reset" or len(self._links) >= self.max_connections:
                self.resets += 1
                _rst(sock)
                continue
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            link = _Link(sock)
            self._links.add(link)
            if self.mode != "blackhole":  # a partitioned server never hears of it
                self._connect_upstream(link)
            self._interest(link)

    def _connect_upstream(self, link: _Link) -> None:
        up = socket.socket(self._family, socket.SOCK_STREAM)
        up.setblocking(False)
        up.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        err = up.connect_ex(self._address)
        if err not in (0, errno.EINPROGRESS, errno.EAGAIN):
            up.close()
            self._drop(link, rst=True)  # the target refuses: so does the proxy
            return
        link.up = up
        link.connecting = err != 0

    def _service(self, link: _Link, side: int, mask: int) -> None:
        sock = link.down if side == _DOWN else link.up
        assert sock is not None
        if side == _UP and link.connecting:
            if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                self._drop(link, rst=True)
            else:
                link.connecting = False
            return
        if not mask & selectors.EVENT_READ:
            return  # writable: _flush sends
        pipe = link.to_up if side == _DOWN else link.to_down
        try:
            data = sock.recv(_CHUNK)
        except BlockingIOError:
            return
        except OSError:  # reset by the peer: pass the reset on
            self._drop(link, rst=True)
            return
        if self.mode == "blackhole":
            self.bytes_dropped += len(data)
            link.damaged = True
            if not data:
                pipe.eof = True  # swallowed too: the other side never hears the FIN
            return
        if not data:
            pipe.eof = True
            return
        pipe.chunks.append([time.monotonic() + self.latency, data])
        pipe.queued += len(data)

    def _flush(self, link: _Link) -> None:
        if link.closed:
            return
        now = time.monotonic()
        for pipe, dst in ((link.to_up, link.up), (link.to_down, link.down)):
            if dst is None or (dst is link.up and link.connecting):
                continue
            while pipe.chunks and pipe.chunks[0][0] <= now:
                data = pipe.chunks[0][1]
                try:
                    sent = dst.send(data)
                except BlockingIOError:
                    break
                except OSError:
                    self._drop(link, rst=True)
                    return
                self.bytes_forwarded += sent
                pipe.queued -= sent
                if sent < len(data):
                    pipe.chunks[0][1] = data[sent:]
                    break
                pipe.chunks.popleft()
            if pipe.eof and not pipe.chunks and not pipe.shut and self.mode != "blackhole":
                try:
                    dst.shutdown(socket.SHUT_WR)  # pass the FIN on
                except OSError:
                    pass
                pipe.shut = True
        if link.to_up.shut and link.to_down.shut:
            self._drop(link, rst=False)
            return
        self._interest(link)

    def _interest(self, link: _Link) -> None:
        """(Re)register the link's sockets for what they are waiting for."""
        if link.closed:
            return
        now = time.monotonic()
        hole = self.mode == "blackhole"
        for side, sock, inbound, outbound in ((_DOWN, link.down, link.to_up, link.to_down),
                                              (_UP, link.up, link.to_down, link.to_up)):
            if sock is None:
                continue
            events = 0
            if side == _UP and link.connecting:
                events = selectors.EVENT_WRITE
            else:
                if not inbound.eof and (hole or inbound.queued < self.buffer_bytes):
                    events |= selectors.EVENT_READ
                if outbound.chunks and outbound.chunks[0][0] <= now:
                    events |= selectors.EVENT_WRITE
            if events == link.events[side]:
                continue
            if link.events[side] == 0:
                self._selector.register(sock, events, (link, side))
            elif events == 0:
                self._selector.unregister(sock)
            else:
                self._selector.modify(sock, events, (link, side))
            link.events[side] = events

    def _drop(self, link: _Link, rst: bool) -> None:
        if link.closed:
            return
        link.closed = True
        self._links.discard(link)
        if rst:
            self.resets += 1
        for side, sock in ((_DOWN, link.down), (_UP, link.up)):
            if sock is None:
                continue
            if link.events[side]:
                self._selector.unregister(sock)
                link.events[side] = 0
            if rst:
                _rst(sock)
            else:
                sock.close()


def _rst(sock: socket.socket) -> None:
    """Close with SO_LINGER 0: the peer gets a TCP RST, not a graceful FIN."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass
