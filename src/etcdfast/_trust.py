"""``insecure_skip_verify``: TLS to a member without verifying it, as Go's
``InsecureSkipVerify`` does.

grpcio cannot skip certificate verification, and its TLS library also
refuses some certificates Go accepts (etcd's ``--auto-tls`` makes ECDSA P-521
keys, which grpc's BoringSSL does not negotiate). So with
``insecure_skip_verify`` the client does not hand TLS to grpc at all: each
member gets a :class:`Tunnel`, a loopback listener that grpc reaches in
plain text and that speaks TLS to the member with Python's own ``ssl``
(OpenSSL), verifying nothing -- chain, name and validity period alike --
and offering ``h2`` by ALPN as grpc would. The TLS state machine is
``ssl.SSLObject`` over memory buffers, so one thread per tunnel moves every
connection's bytes with a selector, without sharing an SSL object between
threads. This is for tests and emergencies; it costs a copy of every byte.
"""

from __future__ import annotations

import selectors
import socket
import ssl
import threading
from typing import Dict, List, Optional, Tuple

from ._core.endpoints import Endpoint

__all__ = ["Tunnel", "open_tunnels"]

#: How long connecting and the TLS handshake to a member may take.
CONNECT_TIMEOUT = 10.0
_CHUNK = 256 * 1024


def _context() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(["h2"])
    return context


class _Link:
    """One grpc connection: its plaintext socket, the member's socket and the TLS between."""

    def __init__(self, plain: socket.socket, member: socket.socket, tls: ssl.SSLObject,
                 incoming: ssl.MemoryBIO, outgoing: ssl.MemoryBIO) -> None:
        self.plain = plain
        self.member = member
        self.tls = tls
        self.incoming = incoming
        self.outgoing = outgoing

    def flush(self) -> None:
        """Send what the TLS layer produced to the member."""
        data = self.outgoing.read()
        if data:
            self.member.sendall(data)

    def close(self) -> None:
        for sock in (self.plain, self.member):
            try:
                sock.close()
            except OSError:
                pass


class Tunnel:
    """A loopback port whose connections are carried over TLS to ``endpoint``."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self._context = _context()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.setblocking(False)
        #: Where grpc connects: ``127.0.0.1:<port>``.
        self.address = f"127.0.0.1:{self._listener.getsockname()[1]}"
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._listener, selectors.EVENT_READ)
        self._wake_r, self._wake_w = socket.socketpair()
        self._selector.register(self._wake_r, selectors.EVENT_READ)
        self._links: Dict[socket.socket, _Link] = {}
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=f"etcdfast-tls-tunnel-{endpoint}", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Close every connection and the listener; end the thread."""
        self._closed = True
        try:
            self._wake_w.send(b"!")
        except OSError:
            pass
        if self._thread is not threading.current_thread():
            self._thread.join(5)

    # -- the tunnel's thread ---------------------------------------------------

    def _connect(self) -> Tuple[socket.socket, ssl.SSLObject, ssl.MemoryBIO, ssl.MemoryBIO]:
        e = self.endpoint
        if e.unix:
            member = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            member.settimeout(CONNECT_TIMEOUT)
            member.connect(e.host)
        else:
            member = socket.create_connection((e.host, e.port), CONNECT_TIMEOUT)
            member.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        name = None if e.unix or _is_ip(e.host) else e.host
        tls = self._context.wrap_bio(incoming, outgoing, server_hostname=name)
        while True:  # the handshake, blocking: it happens once per connection
            try:
                tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                data = outgoing.read()
                if data:
                    member.sendall(data)
                chunk = member.recv(_CHUNK)
                if not chunk:
                    raise ConnectionError(f"{e} closed the connection during the TLS handshake") from None
                incoming.write(chunk)
        data = outgoing.read()
        if data:
            member.sendall(data)
        member.settimeout(None)
        return member, tls, incoming, outgoing

    def _accept(self) -> None:
        try:
            plain, _ = self._listener.accept()
        except BlockingIOError:
            return
        plain.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            member, tls, incoming, outgoing = self._connect()
        except (OSError, ssl.SSLError):
            plain.close()  # grpc sees the connection fail and retries as for any member down
            return
        link = _Link(plain, member, tls, incoming, outgoing)
        self._links[plain] = self._links[member] = link
        self._selector.register(plain, selectors.EVENT_READ, link)
        self._selector.register(member, selectors.EVENT_READ, link)

    def _drop(self, link: _Link) -> None:
        for sock in (link.plain, link.member):
            self._links.pop(sock, None)
            try:
                self._selector.unregister(sock)
            except (KeyError, ValueError):
                pass
        link.close()

    def _pump(self, link: _Link, readable: socket.socket) -> None:
        chunk = readable.recv(_CHUNK)
        if not chunk:
            raise ConnectionError("closed")
        if readable is link.plain:  # grpc -> member
            link.tls.write(chunk)
            link.flush()
            return
        link.incoming.write(chunk)  # member -> grpc
        while True:
            try:
                data = link.tls.read(_CHUNK)
            except ssl.SSLWantReadError:
                break
            if not data:
                raise ConnectionError("TLS closed")
            link.plain.sendall(data)
        link.flush()  # key updates and alerts the TLS layer answered with

    def _run(self) -> None:
        try:
            while not self._closed:
                for key, _ in self._selector.select():
                    sock = key.fileobj
                    if sock is self._wake_r:
                        continue
                    if sock is self._listener:
                        self._accept()
                        continue
                    link = key.data
                    if sock not in self._links:
                        continue
                    try:
                        self._pump(link, sock)
                    except (OSError, ssl.SSLError, ConnectionError):
                        self._drop(link)
        finally:
            for link in list(self._links.values()):
                link.close()
            self._links.clear()
            for sock in (self._listener, self._wake_r, self._wake_w):
                sock.close()
            self._selector.close()


def _is_ip(host: str) -> bool:
    try:
        socket.inet_pton(socket.AF_INET6 if ":" in host else socket.AF_INET, host)
    except OSError:
        return False
    return True


def open_tunnels(endpoints: List[Endpoint]) -> List[Tunnel]:
    """A tunnel per member; close them with the channel that uses them."""
    return [Tunnel(endpoint) for endpoint in endpoints]


def tunnel_target(tunnels: List[Tunnel]) -> Tuple[str, Optional[str]]:
    """The gRPC target over ``tunnels`` and the authority to present (the first member's)."""
    if len(tunnels) == 1:
        target = tunnels[0].address
    else:
        target = "ipv4:" + ",".join(t.address for t in tunnels)
    first = tunnels[0].endpoint
    return target, (None if first.unix else first.address)
