"""etcdfast.testing.FaultProxy on its own: plain sockets against an echo server,
then a real etcd behind it. Every wait is bounded."""

from __future__ import annotations

import hashlib
import os
import socket
import threading
import time

import pytest

import etcdfast
from etcdfast import NoLeaderError, Timeout, Unavailable
from etcdfast.errors import EtcdError
from etcdfast.testing import EtcdServer, FaultProxy, free_port, make_certificates


class EchoServer:
    """Echoes every byte back; closes its side after the client's FIN. Counts what it got."""

    def __init__(self, echo: bool = True) -> None:
        self.echo = echo
        self.accepted = 0
        self.received = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)
        self.port = self._listener.getsockname()[1]
        self._closed = False
        self._threads: list[threading.Thread] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                conn, _ = self._listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.accepted += 1
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(0.1)
        try:
            while not self._closed:
                if not self.echo:  # a server that never reads: back-pressure
                    time.sleep(0.05)
                    continue
                try:
                    data = conn.recv(65536)
                except socket.timeout:
                    continue
                if not data:
                    break
                self.received += len(data)
                conn.sendall(data)
        except OSError:
            pass
        finally:
            conn.close()

    def close(self) -> None:
        self._closed = True
        self._listener.close()
        for thread in [self._thread, *self._threads]:
            thread.join(5)


@pytest.fixture()
def echo():
    server = EchoServer()
    yield server
    server.close()


def connect(proxy: FaultProxy, timeout: float = 5.0) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", proxy.port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def recv_exactly(sock: socket.socket, n: int) -> bytes:
    chunks = []
    while n:
        chunk = sock.recv(min(n, 1 << 20))
        if not chunk:
            raise EOFError(f"connection closed with {n} bytes missing")
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def roundtrip(sock: socket.socket, data: bytes) -> bytes:
    sock.sendall(data)
    return recv_exactly(sock, len(data))


def wait_until(predicate, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def proxy_threads() -> int:
    return sum(1 for t in threading.enumerate() if t.name.startswith("etcdfast-proxy"))


# -- plain sockets -------------------------------------------------------------


def test_pass_forwards_both_ways_intact_on_one_thread(echo):
    before = proxy_threads()
    payload = os.urandom(2 * 1024 * 1024)
    with FaultProxy("127.0.0.1", echo.port) as proxy:
        assert proxy.endpoint == f"127.0.0.1:{proxy.port}"
        assert proxy_threads() == before + 1  # one thread, however many connections
        socks = [connect(proxy) for _ in range(4)]
        results: dict = {}

        def pump(i: int, sock: socket.socket) -> None:
            got = []
            sender = threading.Thread(target=sock.sendall, args=(payload,))
            sender.start()
            got.append(recv_exactly(sock, len(payload)))
            sender.join(10)
            results[i] = hashlib.sha256(got[0]).digest()

        threads = [threading.Thread(target=pump, args=(i, s)) for i, s in enumerate(socks)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert results == {i: hashlib.sha256(payload).digest() for i in range(4)}
        assert proxy.connections == 4 and proxy.accepted == 4
        assert proxy.bytes_forwarded == 2 * 4 * len(payload)
        assert proxy_threads() == before + 1
        for s in socks:
            s.close()
    wait_until(lambda: proxy_threads() == before)


def test_fin_is_passed_on_both_ways(echo):
    with FaultProxy(f"127.0.0.1:{echo.port}") as proxy, connect(proxy) as sock:
        sock.sendall(b"last words")
        sock.shutdown(socket.SHUT_WR)  # the echo server sees EOF, answers, closes
        assert recv_exactly(sock, 10) == b"last words"
        assert sock.recv(10) == b""
        wait_until(lambda: proxy.connections == 0)
        assert proxy.resets == 0


def test_blackhole_holds_connections_silently_and_drops_every_byte(echo):
    with FaultProxy("127.0.0.1", echo.port) as proxy:
        old = connect(proxy, timeout=0.5)
        idle = connect(proxy, timeout=0.5)
        assert roundtrip(old, b"ping") == b"ping"
        wait_until(lambda: echo.accepted == 2)
        received = echo.received
        proxy.blackhole()
        assert proxy.mode == "blackhole"
        old.sendall(b"into the void")
        with pytest.raises(socket.timeout):  # a silent peer: no answer, no FIN, no RST
            old.recv(100)
        new = connect(proxy, timeout=0.5)  # still accepted...
        new.sendall(b"hello?")
        with pytest.raises(socket.timeout):
            new.recv(100)
        time.sleep(0.2)
        assert echo.received == received  # ...and nothing reached the server
        assert echo.accepted == 2  # the new connection was never forwarded
        assert proxy.bytes_dropped >= len(b"into the void") + len(b"hello?")
        assert proxy.connections == 3

        proxy.pass_through()
        # Connections that lost bytes have a gap in their stream: reset.
        for damaged in (old, new):
            with pytest.raises((ConnectionResetError, EOFError)):
                if not damaged.recv(100):
                    raise EOFError
            damaged.close()
        # One that sent nothing during the blackhole carries on.
        assert roundtrip(idle, b"still here") == b"still here"
        with connect(proxy) as fresh:
            assert roundtrip(fresh, b"healed") == b"healed"
        idle.close()


def test_reset_rsts_open_connections_and_every_new_one(echo):
    with FaultProxy("127.0.0.1", echo.port) as proxy:
        sock = connect(proxy, timeout=2)
        assert roundtrip(sock, b"x") == b"x"
        proxy.reset()
        with pytest.raises(ConnectionResetError):
            sock.recv(10)
        sock.close()
        for _ in range(3):
            with pytest.raises(ConnectionResetError):  # accepted, then RST at once
                with connect(proxy, timeout=2) as new:
                    new.sendall(b"y")
                    new.recv(10)
        assert proxy.connections == 0 and proxy.resets >= 4
        proxy.pass_through()
        with connect(proxy) as sock:
            assert roundtrip(sock, b"back") == b"back"


def test_delay_adds_latency_per_chunk_without_serialising_chunks(echo):
    with FaultProxy("127.0.0.1", echo.port) as proxy, connect(proxy) as sock:
        assert roundtrip(sock, b"warm") == b"warm"
        proxy.delay(0.2)
        started = time.monotonic()
        assert roundtrip(sock, b"slow") == b"slow"
        single = time.monotonic() - started
        assert 0.4 <= single < 1.5  # 0.2 s each way
        # Five chunks sent 50 ms apart arrive ~0.4 s after each was sent:
        # latency, not a queue where each waits for the one before.
        started = time.monotonic()
        for i in range(5):
            sock.sendall(b"%d" % i)
            time.sleep(0.05)
        assert recv_exactly(sock, 5) == b"01234"
        assert time.monotonic() - started < 1.5  # a serial queue would take 2 s
        proxy.pass_through()
        started = time.monotonic()
        assert roundtrip(sock, b"fast") == b"fast"
        assert time.monotonic() - started < 0.35  # with the delay still on: >= 0.4
        with pytest.raises(ValueError):
            proxy.delay(-1)


def test_a_chunk_that_falls_due_while_the_proxy_thread_is_preempted_still_goes(echo):
    # Before: a chunk found not yet due by the flush, and due by the time the
    # thread computed its next wake-up, was waited for by neither the timer
    # nor the selector. The connection stalled until other traffic came (in CI,
    # a defragment behind delay(0.4) that never returned). Preemption at that
    # point is made certain here: every turn of the proxy's loop sleeps past the
    # delay after its flush.
    with FaultProxy("127.0.0.1", echo.port) as proxy, connect(proxy, timeout=5) as sock:
        assert roundtrip(sock, b"warm") == b"warm"
        proxy.delay(0.1)
        turn = proxy._apply_commands  # runs at the top of each turn, right after the last flush

        def preempted() -> None:
            turn()
            time.sleep(0.15)

        proxy._apply_commands = preempted  # type: ignore[method-assign]
        assert roundtrip(sock, b"late") == b"late"  # socket.timeout (5 s) before the fix


def test_connections_beyond_the_limit_are_reset(echo):
    with FaultProxy("127.0.0.1", echo.port, max_connections=2) as proxy:
        a, b = connect(proxy), connect(proxy)
        assert roundtrip(a, b"a") == b"a" and roundtrip(b, b"b") == b"b"
        with pytest.raises(ConnectionResetError):
            with connect(proxy, timeout=2) as c:
                c.sendall(b"c")
                c.recv(10)
        assert proxy.connections == 2
        a.close()
        wait_until(lambda: proxy.connections == 1)
        with connect(proxy) as d:
            assert roundtrip(d, b"d") == b"d"
        b.close()


def test_a_slow_reader_pushes_back_instead_of_filling_memory():
    sink = EchoServer(echo=False)
    try:
        with FaultProxy("127.0.0.1", sink.port, buffer_bytes=256 * 1024) as proxy, \
                connect(proxy) as sock:
            sock.setblocking(False)
            sent = 0
            chunk = b"x" * 65536
            deadline = time.monotonic() + 2
            while time.monotonic() < deadline:
                try:
                    sent += sock.send(chunk)
                except BlockingIOError:
                    time.sleep(0.01)
            # Kernel buffers on both hops hold a few MiB; the proxy adds at most
            # buffer_bytes + one chunk. Without back-pressure it would take all.
            assert sent < 48 * 1024 * 1024
            assert sent - proxy.bytes_forwarded <= 256 * 1024 + 65536 + 16 * 1024 * 1024
    finally:
        sink.close()


def test_a_target_that_refuses_gets_the_client_reset():
    with FaultProxy("127.0.0.1", free_port()) as proxy:
        with pytest.raises((ConnectionResetError, EOFError)):
            with connect(proxy, timeout=2) as sock:
                if not sock.recv(10):
                    raise EOFError
        assert proxy.connections == 0


def test_close_resets_everything_and_ends_the_thread(echo):
    before = proxy_threads()
    proxy = FaultProxy("127.0.0.1", echo.port)
    sock = connect(proxy, timeout=2)
    assert roundtrip(sock, b"x") == b"x"
    proxy.close()
    with pytest.raises(ConnectionResetError):
        sock.recv(10)
    sock.close()
    assert proxy_threads() == before
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", proxy.port), timeout=2).close()
    proxy.close()  # idempotent
    with pytest.raises(RuntimeError):
        proxy.blackhole()


def test_target_forms():
    with FaultProxy("https://127.0.0.1:2379") as tls, FaultProxy("localhost", 2379) as named:
        assert tls.endpoint == f"https://127.0.0.1:{tls.port}"
        assert tls.target == ("127.0.0.1", 2379)
        assert named.target == ("localhost", 2379) and "://" not in named.endpoint
    with pytest.raises(ValueError):
        FaultProxy("no-port-here")


# -- with etcd behind it ----------------------------------------------------------


@pytest.fixture(scope="module")
def server():
    with EtcdServer() as running:
        yield running


def eventually(call, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while True:
        try:
            return call()
        except EtcdError:
            assert time.monotonic() < deadline, "no recovery"
            time.sleep(0.1)


def test_etcd_works_through_the_proxy_and_every_fault_is_felt(server):
    with FaultProxy(server.endpoint) as proxy, \
            etcdfast.Client(proxy.endpoint, timeout=5) as client:
        client.put("/px/k", "v")
        watch = client.watch("/px/", prefix=True)
        client.put("/px/w", "1")
        assert [e.value for e in watch.get(timeout=10)] == [b"1"]

        proxy.blackhole()  # silent: only the deadline ends the call
        started = time.monotonic()
        with pytest.raises(Timeout):
            client.get("/px/k", timeout=1)
        assert time.monotonic() - started < 1.5
        proxy.pass_through()
        assert eventually(lambda: client.get_value("/px/k", timeout=1), timeout=30) == b"v"

        proxy.reset()  # every connection refused with RST: a fast, clear failure
        started = time.monotonic()
        with pytest.raises(Unavailable):
            client.get("/px/k", timeout=3)
        assert time.monotonic() - started < 3.5
        proxy.pass_through()
        assert eventually(lambda: client.get_value("/px/k", timeout=1), timeout=30) == b"v"

        proxy.delay(0.2)
        started = time.monotonic()
        assert client.get_value("/px/k") == b"v"
        assert time.monotonic() - started >= 0.4  # request and answer, 0.2 s each
        with pytest.raises(Timeout):
            client.get("/px/k", timeout=0.1)
        proxy.pass_through()

        client.put("/px/w", "2")  # the watch came through all of it
        values = []
        while b"2" not in values:
            values += [e.value for e in watch.get(timeout=10)]
        assert values == [b"2"]


def test_require_leader_call_through_a_blackhole_fails_fast(server):
    with FaultProxy(server.endpoint) as proxy, \
            etcdfast.Client(proxy.endpoint, timeout=5, require_leader=True) as client:
        client.put("/px/rl", "v")
        proxy.blackhole()
        for call in (lambda: client.get("/px/rl", timeout=1), lambda: client.put("/px/rl", "w", timeout=1)):
            started = time.monotonic()
            with pytest.raises((Timeout, NoLeaderError, Unavailable)):
                call()
            assert time.monotonic() - started < 1.5


def test_tls_passes_through_untouched(tmp_path):
    certs = make_certificates(tmp_path)
    with EtcdServer(tls=certs) as tls_server, FaultProxy(tls_server.endpoint) as proxy:
        assert proxy.endpoint.startswith("https://127.0.0.1:")
        with etcdfast.Client(proxy.endpoint, ca_cert=certs.ca, timeout=5) as client:
            client.put("/px/tls", "v")
            assert client.get_value("/px/tls") == b"v"
            assert proxy.bytes_forwarded > 0
