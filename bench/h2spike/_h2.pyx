# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""A minimal gRPC-over-HTTP/2 unary client: one plaintext connection, per-call work in C.

A benchmark spike (issue 16), not part of the package: how far below grpcio can a
unary etcd call go? ``Connection.call(path, payload, timeout)`` sends one HEADERS
and one DATA frame (in one ``send``), reads frames until the stream's trailers
and returns the response message's bytes, or raises one of the errors below.

What it does (RFC 9113 and the gRPC HTTP/2 protocol):

* the connection preface and SETTINGS (push off, our stream window), a
  connection WINDOW_UPDATE up to our connection window, SETTINGS acks;
* request headers in HPACK with static-table names and literals *without
  indexing* (the server's decoder table stays empty, so nothing to track), the
  block cached per method and timeout;
* response headers and trailers in HPACK: a block made only of indexed fields
  -- every block after the first in a steady state -- is looked up in a cache
  valid while the dynamic table is unchanged; any other block (literals,
  table-size updates: they may change the table) goes to the ``hpack``
  package's decoder, which keeps the dynamic table, and clears the cache.
  Every block is decoded, for every stream, including abandoned ones: HPACK
  state is per connection;
* DATA with the 5-byte gRPC message prefix (one message per response, no
  compression), padding, CONTINUATION;
* flow control both ways: the peer's connection and stream windows for the
  request's DATA (a request larger than the window waits for WINDOW_UPDATE),
  and our windows for responses (WINDOW_UPDATE sent at half a window);
* PING acks (deferred to the next write unless ``ack_pings_now``: etcd's server
  sends a BDP ping after every request it receives), GOAWAY, RST_STREAM and a
  closed socket as errors, ``grpc-status``/``grpc-message`` from the trailers,
  ``grpc-timeout`` from the call's timeout plus a local deadline
  (``SO_RCVTIMEO``; an abandoned stream is reset with CANCEL);
* several threads on one connection: one writer at a time (a lock around
  stream-id allocation and ``send``), one reader at a time (leader/follower:
  the thread holding the read lock reads for everyone, dispatches frames by
  stream id and wakes the callers whose stream finished; when it is done it
  hands the read lock's role to a waiting caller).

The GIL is released only inside ``send``/``recv`` and lock waits; every other
step runs with it held, which is what makes the stream bookkeeping atomic.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.bytearray cimport PyByteArray_AS_STRING, PyByteArray_GET_SIZE, PyByteArray_Resize
from cpython.exc cimport PyErr_CheckSignals
from libc.errno cimport EAGAIN, EINTR, errno
from libc.stdlib cimport free, malloc, realloc
from libc.string cimport memcpy, memmove, strerror
from libc.stdint cimport uint8_t, uint32_t, int64_t

import _thread
import socket as _socket
from urllib.parse import unquote as _unquote

import hpack as _hpack


cdef extern from "<sys/socket.h>" nogil:
    ctypedef unsigned int socklen_t
    ssize_t c_send "send"(int fd, const void* buf, size_t n, int flags)
    ssize_t c_recv "recv"(int fd, void* buf, size_t n, int flags)
    int setsockopt(int fd, int level, int name, const void* value, socklen_t size)
    int MSG_NOSIGNAL
    int SOL_SOCKET
    int SO_RCVTIMEO

cdef extern from "<time.h>" nogil:
    ctypedef long time_t
    struct timespec:
        time_t tv_sec
        long tv_nsec
    int clock_gettime(int clock, timespec* ts)
    int CLOCK_MONOTONIC

cdef extern from "<sys/time.h>" nogil:
    struct timeval:
        long tv_sec
        long tv_usec


# -- errors ---------------------------------------------------------------------

class H2Error(Exception):
    """Anything that ends a call on this connection without a gRPC status."""


class ConnectionClosed(H2Error):
    """The socket closed or failed; calls in flight may or may not have been applied."""


class GoAway(H2Error):
    """The server sent GOAWAY. ``applied_possible`` is False for streams above ``last_stream_id``."""

    def __init__(self, message, last_stream_id, error_code, applied_possible):
        super().__init__(message)
        self.last_stream_id = last_stream_id
        self.error_code = error_code
        self.applied_possible = applied_possible


class StreamReset(H2Error):
    """The server reset the call's stream (RST_STREAM)."""

    def __init__(self, message, error_code):
        super().__init__(message)
        self.error_code = error_code


class ProtocolError(H2Error):
    """The server broke HTTP/2 or gRPC framing rules."""


class DeadlineExceeded(H2Error):
    """The call's timeout passed before its answer came (the stream was reset with CANCEL)."""


class GrpcError(Exception):
    """A non-OK ``grpc-status`` (``code`` is its integer, as grpc.StatusCode.X.value[0])."""

    def __init__(self, code, message):
        super().__init__(f"grpc status {code}: {message}")
        self.code = code
        self.message = message


# -- HTTP/2 constants --------------------------------------------------------------

DEF T_DATA = 0
DEF T_HEADERS = 1
DEF T_PRIORITY = 2
DEF T_RST_STREAM = 3
DEF T_SETTINGS = 4
DEF T_PUSH_PROMISE = 5
DEF T_PING = 6
DEF T_GOAWAY = 7
DEF T_WINDOW_UPDATE = 8
DEF T_CONTINUATION = 9

DEF F_END_STREAM = 0x1
DEF F_ACK = 0x1
DEF F_END_HEADERS = 0x4
DEF F_PADDED = 0x8
DEF F_PRIORITY = 0x20

DEF S_HEADER_TABLE_SIZE = 1
DEF S_ENABLE_PUSH = 2
DEF S_MAX_CONCURRENT_STREAMS = 3
DEF S_INITIAL_WINDOW_SIZE = 4
DEF S_MAX_FRAME_SIZE = 5

DEF E_PROTOCOL = 1
DEF E_CANCEL = 8

DEF DEFAULT_WINDOW = 65535
DEF LOCAL_MAX_FRAME = 16384          # we never raise SETTINGS_MAX_FRAME_SIZE
DEF RBUF_SIZE = 262144
DEF MAX_WINDOW = 2147483647

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

#: gRPC's mapping of an HTTP status other than 200 (gRPC doc "http-grpc-status-mapping").
HTTP_TO_GRPC = {400: 13, 401: 16, 403: 7, 404: 12, 429: 14, 502: 14, 503: 14, 504: 14}


# -- small encoders (cold paths: per connection or per method) -------------------------

cdef inline void _frame_header(unsigned char* p, uint32_t length, uint8_t ftype, uint8_t flags,
                               uint32_t sid) noexcept nogil:
    p[0] = (length >> 16) & 0xFF
    p[1] = (length >> 8) & 0xFF
    p[2] = length & 0xFF
    p[3] = ftype
    p[4] = flags
    p[5] = (sid >> 24) & 0x7F
    p[6] = (sid >> 16) & 0xFF
    p[7] = (sid >> 8) & 0xFF
    p[8] = sid & 0xFF


cdef inline uint32_t _be32(const unsigned char* p) noexcept nogil:
    return (<uint32_t>p[0] << 24) | (<uint32_t>p[1] << 16) | (<uint32_t>p[2] << 8) | p[3]


def frame(int ftype, int flags, uint32_t sid, bytes payload):
    """One HTTP/2 frame (header + payload)."""
    cdef unsigned char head[9]
    _frame_header(head, len(payload), ftype, flags, sid)
    return PyBytes_FromStringAndSize(<char*>head, 9) + payload


cdef inline bytes _u32(int64_t v):
    return (<object>v).to_bytes(4, "big")


cdef inline bytes _u16(int v):
    return (<object>v).to_bytes(2, "big")


def hpack_int(unsigned long value, int prefix_bits, int first=0):
    """An HPACK integer with an N-bit prefix (RFC 7541 5.1), ``first`` holding the flag bits."""
    cdef unsigned long limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first | value])
    out = bytearray([first | limit])
    value -= limit
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _hpack_string(bytes data):
    return hpack_int(len(data), 7) + data  # no Huffman: a cached block, size does not matter


def literal(name, bytes value):
    """A literal field *without indexing*: ``name`` a static-table index or new name bytes."""
    if isinstance(name, int):
        return hpack_int(name, 4) + _hpack_string(value)
    return b"\x00" + _hpack_string(name) + _hpack_string(value)


def request_headers(bytes path, bytes authority):
    """The constant part of a request's header block (RFC 7541 Appendix A indices)."""
    return (b"\x83"                                    # :method POST (static 3)
            b"\x86"                                    # :scheme http (static 6)
            + literal(4, path)                         # :path (static name 4)
            + literal(1, authority)                    # :authority (static name 1)
            + literal(31, b"application/grpc")         # content-type (static name 31)
            + literal(b"te", b"trailers"))


def grpc_timeout(double seconds):
    """``grpc-timeout``'s value: at most 8 digits, the finest unit that fits, rounded up."""
    cdef double amount
    cdef long long n
    for unit, scale in ((b"n", 1e9), (b"u", 1e6), (b"m", 1e3), (b"S", 1.0), (b"M", 1 / 60.0),
                        (b"H", 1 / 3600.0)):
        amount = seconds * scale
        n = <long long>amount
        if n < amount:
            n += 1
        if n < 100000000:
            return str(max(n, 1)).encode() + unit
    return b"99999999H"


cdef double _now() noexcept nogil:
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return ts.tv_sec + ts.tv_nsec * 1e-9


# -- per-method and per-stream state -----------------------------------------------

cdef class _Method:
    cdef bytes prefix
    cdef double last_timeout
    cdef bytes last_block

    def __init__(self, bytes prefix):
        self.prefix = prefix
        self.last_timeout = -1.0
        self.last_block = prefix

    cdef bytes block(self, double timeout):
        if timeout != self.last_timeout:
            self.last_block = self.prefix + (
                literal(b"grpc-timeout", grpc_timeout(timeout)) if timeout > 0 else b"")
            self.last_timeout = timeout
        return self.last_block


cdef class _Stream:
    cdef uint32_t sid
    cdef bint done, headers_seen, signaled, waiting, want_window
    cdef int64_t send_window, unacked
    cdef object body        # bytes (one frame) or bytearray (several); None before any DATA
    cdef object message     # the message without its prefix, when one DATA frame held exactly it
    cdef int http_status, grpc_status
    cdef object grpc_message
    cdef object error
    cdef object event       # a _thread lock, held while nobody signalled the stream

    def __cinit__(self, uint32_t sid, int64_t send_window):
        self.sid = sid
        self.send_window = send_window
        self.http_status = -1
        self.grpc_status = -1


cdef inline void _signal(_Stream st) except *:
    if not st.signaled:
        st.signaled = True
        if st.event is not None:
            st.event.release()


# -- the connection ----------------------------------------------------------------

cdef class Connection:
    """One HTTP/2 connection to etcd; ``call`` is safe from several threads at once."""

    cdef object sock
    cdef int fd
    cdef unsigned char* rbuf
    cdef Py_ssize_t rstart, rend
    cdef unsigned char* wbuf
    cdef Py_ssize_t wcap
    cdef bytearray ctrl           # control frames waiting for the next write
    cdef bint ctrl_urgent         # ... and one of them must go now (window updates, resets)
    cdef bint ack_pings_now
    cdef uint32_t next_sid
    cdef dict streams
    cdef dict methods
    cdef bytes authority
    cdef int64_t conn_send_window, peer_initial_window
    cdef uint32_t peer_max_frame
    cdef int64_t stream_window, conn_window, conn_unacked
    cdef object decoder
    cdef dict block_cache
    cdef uint32_t cont_sid
    cdef bint cont_end_stream
    cdef bytearray cont_block
    cdef object error             # set once the connection is unusable
    cdef object goaway            # set once GOAWAY arrived
    cdef object wlock, rlock
    cdef long rcvtimeo_us         # SO_RCVTIMEO now set (0: none)
    cdef public unsigned long calls, recvs, sends, frames_in, cache_misses, pings, window_updates

    def __cinit__(self):
        self.rbuf = <unsigned char*>malloc(RBUF_SIZE)
        self.wcap = 4096
        self.wbuf = <unsigned char*>malloc(self.wcap)
        if self.rbuf == NULL or self.wbuf == NULL:
            raise MemoryError()

    def __dealloc__(self):
        free(self.rbuf)
        free(self.wbuf)

    def __init__(self, str host, int port, *, int64_t stream_window=4 * 1024 * 1024,
                 int64_t conn_window=16 * 1024 * 1024, bint ack_pings_now=False,
                 double connect_timeout=5.0):
        if not DEFAULT_WINDOW <= stream_window <= MAX_WINDOW or not DEFAULT_WINDOW <= conn_window <= MAX_WINDOW:
            raise ValueError("windows must be between 65535 and 2**31-1")
        self.sock = _socket.create_connection((host, port), timeout=connect_timeout)
        self.sock.settimeout(None)  # blocking fd: deadlines are SO_RCVTIMEO's
        self.sock.setsockopt(_socket.IPPROTO_TCP, _socket.TCP_NODELAY, 1)
        self.fd = self.sock.fileno()
        self.authority = f"{host}:{port}".encode()
        self.streams, self.methods, self.block_cache = {}, {}, {}
        self.ctrl = bytearray()
        self.next_sid = 1
        self.conn_send_window = self.peer_initial_window = DEFAULT_WINDOW
        self.peer_max_frame = LOCAL_MAX_FRAME
        self.stream_window, self.conn_window = stream_window, conn_window
        self.ack_pings_now = ack_pings_now
        self.decoder = _hpack.Decoder()
        self.decoder.max_header_list_size = 1 << 20
        self.wlock, self.rlock = _thread.allocate_lock(), _thread.allocate_lock()
        settings = (_u16(S_ENABLE_PUSH) + _u32(0) + _u16(S_INITIAL_WINDOW_SIZE) + _u32(stream_window))
        start = PREFACE + frame(T_SETTINGS, 0, 0, settings)
        if conn_window > DEFAULT_WINDOW:
            start += frame(T_WINDOW_UPDATE, 0, 0, _u32(conn_window - DEFAULT_WINDOW))
        self.sock.sendall(start)

    def close(self):
        """Close the socket; calls in flight fail with ConnectionClosed."""
        if self.error is None:
            self.error = ConnectionClosed("connection closed by the client")
        self._fail_streams(self.error)
        self.sock.close()

    def ping(self):
        """Send a PING now (the checks provoke etcd's GOAWAY with too many of them)."""
        self.ctrl += frame(T_PING, 0, 0, b"etcdfast")
        self._flush_ctrl()

    def stats(self):
        return {"calls": self.calls, "recvs": self.recvs, "sends": self.sends,
                "frames_in": self.frames_in, "header_cache_misses": self.cache_misses,
                "pings": self.pings, "window_updates_sent": self.window_updates}

    # -- a call ----------------------------------------------------------------------

    def call(self, str path, bytes payload, timeout=None):
        """Send one unary request; the response message's bytes, or raise.

        Raises GrpcError (a non-OK status), DeadlineExceeded, GoAway,
        StreamReset, ConnectionClosed or ProtocolError.
        """
        cdef double t = 0.0 if timeout is None else timeout
        cdef double deadline = _now() + t if t > 0 else 1e300
        cdef _Method m = self.methods.get(path)
        if m is None:
            m = self.methods[path] = _Method(request_headers(path.encode(), self.authority))
        cdef _Stream st = self._send_request(m.block(t), payload)
        self._wait(st, deadline, False)
        self.calls += 1
        if st.error is not None:
            raise st.error
        if st.http_status != 200:
            raise GrpcError(HTTP_TO_GRPC.get(st.http_status, 2), f"HTTP status {st.http_status}")
        if st.grpc_status != 0:
            if st.grpc_status < 0:
                raise ProtocolError(f"stream {st.sid} ended without grpc-status")
            raise GrpcError(st.grpc_status, st.grpc_message or "")
        if st.message is not None:
            return st.message
        return self._unframe(st)

    cdef bytes _unframe(self, _Stream st):
        """The message of a body spread over several DATA frames (or malformed)."""
        body = st.body
        if body is None:
            raise ProtocolError(f"stream {st.sid}: no response message")
        cdef const unsigned char* p = <const unsigned char*>(
            PyBytes_AS_STRING(body) if isinstance(body, bytes) else PyByteArray_AS_STRING(body))
        cdef Py_ssize_t n = len(body)
        if n < 5 or p[0] != 0 or _be32(p + 1) != n - 5:
            raise ProtocolError(f"stream {st.sid}: not one uncompressed gRPC message ({n} bytes)")
        return PyBytes_FromStringAndSize(<const char*>p + 5, n - 5)

    cdef _Stream _send_request(self, bytes block, bytes payload):
        cdef Py_ssize_t blen = PyBytes_GET_SIZE(block), plen = PyBytes_GET_SIZE(payload)
        cdef int64_t total = plen + 5, first
        cdef Py_ssize_t c, need, pos
        cdef unsigned char* w
        cdef _Stream st
        if blen > LOCAL_MAX_FRAME:
            raise ValueError("request headers larger than one frame")
        self.wlock.acquire()
        try:
            if self.error is not None:
                raise self.error
            if self.goaway is not None:
                raise self.goaway
            st = _Stream(self.next_sid, self.peer_initial_window)
            self.next_sid += 2
            first = total
            if first > st.send_window:
                first = st.send_window
            if first > self.conn_send_window:
                first = self.conn_send_window
            if first > self.peer_max_frame:
                first = self.peer_max_frame
            if first < 0:
                first = 0
            c = PyByteArray_GET_SIZE(self.ctrl)
            need = c + 9 + blen + 9 + first
            if need > self.wcap:
                self._grow_wbuf(need)
            w = self.wbuf
            if c:
                memcpy(w, PyByteArray_AS_STRING(self.ctrl), c)
                del self.ctrl[:]
                self.ctrl_urgent = False
            pos = c
            _frame_header(w + pos, blen, T_HEADERS, F_END_HEADERS, st.sid)
            memcpy(w + pos + 9, PyBytes_AS_STRING(block), blen)
            pos += 9 + blen
            if first > 0:
                _frame_header(w + pos, first, T_DATA, F_END_STREAM if first == total else 0, st.sid)
                pos += 9
                self._copy_message(w + pos, payload, 0, first)
                pos += first
            st.send_window -= first
            self.conn_send_window -= first
            self.streams[st.sid] = st
            self._send(w, pos)
        finally:
            self.wlock.release()
        if first < total:
            self._send_rest(st, payload, first, total)
        return st

    cdef inline void _copy_message(self, unsigned char* w, bytes payload, int64_t start,
                                   int64_t n) noexcept:
        """Bytes [start, start+n) of the gRPC message: the 5-byte prefix, then payload."""
        cdef const unsigned char* p = <const unsigned char*>PyBytes_AS_STRING(payload)
        cdef int64_t plen = PyBytes_GET_SIZE(payload), i
        cdef unsigned char prefix[5]
        prefix[0] = 0
        prefix[1] = (plen >> 24) & 0xFF
        prefix[2] = (plen >> 16) & 0xFF
        prefix[3] = (plen >> 8) & 0xFF
        prefix[4] = plen & 0xFF
        while n > 0 and start < 5:
            w[0] = prefix[start]
            w += 1
            start += 1
            n -= 1
        if n > 0:
            memcpy(w, p + start - 5, n)

    cdef int _send_rest(self, _Stream st, bytes payload, int64_t sent, int64_t total) except -1:
        """The rest of a request larger than the peer's windows: wait for WINDOW_UPDATE."""
        cdef int64_t chunk
        cdef Py_ssize_t pos
        while sent < total:
            self._wait(st, 1e300, True)
            if st.done:
                return 0  # the server answered (or reset) before taking it all
            self.wlock.acquire()
            try:
                if self.error is not None:
                    raise self.error
                pos = 0
                while sent < total and st.send_window > 0 and self.conn_send_window > 0:
                    chunk = min(total - sent, st.send_window, self.conn_send_window, self.peer_max_frame)
                    if pos + 9 + chunk > self.wcap:
                        self._grow_wbuf(pos + 9 + chunk)
                    _frame_header(self.wbuf + pos, chunk, T_DATA,
                                  F_END_STREAM if sent + chunk == total else 0, st.sid)
                    self._copy_message(self.wbuf + pos + 9, payload, sent, chunk)
                    pos += 9 + chunk
                    sent += chunk
                    st.send_window -= chunk
                    self.conn_send_window -= chunk
                self._send(self.wbuf, pos)
            finally:
                self.wlock.release()
        return 0

    cdef int _grow_wbuf(self, Py_ssize_t need) except -1:
        cdef unsigned char* grown = <unsigned char*>realloc(self.wbuf, need * 2)
        if grown == NULL:
            raise MemoryError()
        self.wbuf, self.wcap = grown, need * 2
        return 0

    cdef int _send(self, const unsigned char* p, Py_ssize_t n) except -1:
        """``send`` it all (the write lock is held)."""
        cdef ssize_t done
        while n > 0:
            with nogil:
                done = c_send(self.fd, p, n, MSG_NOSIGNAL)
            self.sends += 1
            if done < 0:
                if errno == EINTR:
                    PyErr_CheckSignals()
                    continue
                exc = ConnectionClosed(f"send to {self.authority.decode()} failed: "
                                       f"{strerror(errno).decode()}")
                self._fail(exc)
                raise exc
            p += done
            n -= done
        return 0

    cdef int _flush_ctrl(self) except -1:
        self.wlock.acquire()
        try:
            if self.error is None and PyByteArray_GET_SIZE(self.ctrl):
                data = bytes(self.ctrl)
                del self.ctrl[:]
                self.ctrl_urgent = False
                self._send(<const unsigned char*>PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data))
        finally:
            self.wlock.release()
        return 0

    # -- waiting: leader/follower over one reader ------------------------------------

    cdef inline bint _ready(self, _Stream st, bint want_window) noexcept:
        return st.done or (want_window and st.send_window > 0 and self.conn_send_window > 0)

    cdef int _wait(self, _Stream st, double deadline, bint want_window) except -1:
        cdef double left
        st.want_window = want_window
        try:
            while not self._ready(st, want_window):
                if self.rlock.acquire(False):
                    try:
                        while not self._ready(st, want_window):
                            self._read_once(st, deadline)
                    finally:
                        self.rlock.release()
                        self._promote()
                    break
                # Someone else is reading: wait to be told that our stream
                # finished or that the reader's role is free. (From the failed
                # acquire to ``waiting = True`` nothing releases the GIL, so a
                # reader that leaves in between cannot miss us.)
                if st.event is None:
                    st.event = _thread.allocate_lock()
                    st.event.acquire()
                left = deadline - _now()
                if left <= 0:
                    self._abandon(st)
                st.waiting = True
                if not st.signaled:
                    st.event.acquire(True, min(left, 1e6))
                st.waiting = False
                if st.signaled:
                    st.event.acquire(False)  # re-arm: the signaller released it
                    st.signaled = False
        finally:
            st.want_window = False
        return 0

    cdef int _promote(self) except -1:
        """Hand the reader's role to one waiting caller."""
        cdef _Stream other
        for other in self.streams.values():
            if other.waiting and not other.signaled and not other.done:
                _signal(other)
                break
        return 0

    cdef int _abandon(self, _Stream st) except -1:
        if self.streams.pop(st.sid, None) is not None:
            self.ctrl += frame(T_RST_STREAM, 0, st.sid, _u32(E_CANCEL))
            self._flush_ctrl()
        raise DeadlineExceeded(f"deadline exceeded (stream {st.sid} cancelled)")

    cdef int _read_once(self, _Stream st, double deadline) except -1:
        """One ``recv`` (the read lock is held), then every complete frame in the buffer."""
        cdef ssize_t n
        cdef double left = deadline - _now()
        cdef long want_us
        cdef timeval tv
        if left <= 0:
            self._abandon(st)
        if self.error is not None:
            raise self.error
        want_us = <long>(left * 1e6) + 1 if left < 1e6 else 0
        # Only change SO_RCVTIMEO when the one set would overshoot this
        # deadline by more than 10 % + 1 ms (in a steady state: never).
        if want_us and (self.rcvtimeo_us == 0 or self.rcvtimeo_us > want_us + want_us // 10 + 1000):
            tv.tv_sec, tv.tv_usec = want_us // 1000000, want_us % 1000000
            setsockopt(self.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv))
            self.rcvtimeo_us = want_us
        if self.rend == RBUF_SIZE:
            if self.rstart == 0:
                raise ProtocolError("receive buffer full")  # cannot happen: frames <= 16 KiB
            memmove(self.rbuf, self.rbuf + self.rstart, self.rend - self.rstart)
            self.rend -= self.rstart
            self.rstart = 0
        with nogil:
            n = c_recv(self.fd, self.rbuf + self.rend, RBUF_SIZE - self.rend, 0)
        self.recvs += 1
        if n > 0:
            self.rend += n
            self._process()
            if self.ctrl_urgent or (self.ack_pings_now and PyByteArray_GET_SIZE(self.ctrl)):
                self._flush_ctrl()
            return 0
        if n == 0:
            self._fail(ConnectionClosed(
                f"etcd at {self.authority.decode()} closed the connection"
                f" ({len(self.streams)} call(s) in flight: they may have been applied)"))
        elif errno == EINTR:
            PyErr_CheckSignals()
        elif errno != EAGAIN:  # EWOULDBLOCK is EAGAIN on Linux
            self._fail(ConnectionClosed(
                f"connection to etcd at {self.authority.decode()} failed: {strerror(errno).decode()}"
                f" ({len(self.streams)} call(s) in flight: they may have been applied)"))
        if self.error is not None and not st.done:
            raise self.error
        return 0

    # -- frames in -----------------------------------------------------------------

    cdef int _process(self) except -1:
        cdef const unsigned char* p
        cdef uint32_t length, sid
        cdef uint8_t ftype, flags
        cdef Py_ssize_t avail
        try:
            while True:
                avail = self.rend - self.rstart
                if avail < 9:
                    break
                p = self.rbuf + self.rstart
                length = (<uint32_t>p[0] << 16) | (<uint32_t>p[1] << 8) | p[2]
                if length > LOCAL_MAX_FRAME:
                    raise ProtocolError(f"frame of {length} bytes > SETTINGS_MAX_FRAME_SIZE")
                if avail < 9 + length:
                    break
                ftype, flags, sid = p[3], p[4], _be32(p + 5) & 0x7FFFFFFF
                self.rstart += 9 + length
                self.frames_in += 1
                if self.cont_sid and ftype != T_CONTINUATION:
                    raise ProtocolError("a header block was interrupted by another frame")
                if ftype == T_DATA:
                    self._on_data(p + 9, length, flags, sid)
                elif ftype == T_HEADERS:
                    self._on_headers(p + 9, length, flags, sid)
                elif ftype == T_CONTINUATION:
                    self._on_continuation(p + 9, length, flags, sid)
                elif ftype == T_WINDOW_UPDATE:
                    self._on_window_update(p + 9, length, sid)
                elif ftype == T_PING:
                    if length != 8:
                        raise ProtocolError("PING of a size other than 8")
                    if not flags & F_ACK:
                        self.pings += 1
                        self.ctrl += frame(T_PING, F_ACK, 0, PyBytes_FromStringAndSize(<const char*>p + 9, 8))
                elif ftype == T_SETTINGS:
                    if not flags & F_ACK:
                        self._on_settings(p + 9, length)
                elif ftype == T_RST_STREAM:
                    self._on_rst(p + 9, length, sid)
                elif ftype == T_GOAWAY:
                    self._on_goaway(p + 9, length)
                elif ftype == T_PUSH_PROMISE:
                    raise ProtocolError("PUSH_PROMISE although SETTINGS_ENABLE_PUSH is 0")
                # PRIORITY and unknown types: ignored, as the RFC says.
            if self.rstart == self.rend:
                self.rstart = self.rend = 0
        except ProtocolError as exc:
            self._fail(exc)
            raise
        return 0

    cdef int _on_data(self, const unsigned char* p, uint32_t length, uint8_t flags,
                      uint32_t sid) except -1:
        cdef uint32_t pad = 0
        cdef Py_ssize_t n0
        cdef _Stream st
        # Flow control counts the whole frame, padding included, stream known or not.
        self.conn_unacked += length
        if self.conn_unacked >= self.conn_window // 2:
            self.ctrl += frame(T_WINDOW_UPDATE, 0, 0, _u32(self.conn_unacked))
            self.conn_unacked = 0
            self.ctrl_urgent = True
            self.window_updates += 1
        st = self.streams.get(sid)
        if st is None:
            if sid == 0:
                raise ProtocolError("DATA on stream 0")
            return 0  # a stream we abandoned
        if flags & F_PADDED:
            if length < 1 or p[0] >= length:
                raise ProtocolError("bad DATA padding")
            pad = p[0] + 1
            p += 1
            length -= pad
        if not st.headers_seen:
            raise ProtocolError(f"DATA before HEADERS on stream {sid}")
        st.unacked += length + pad
        if length == 0:
            pass
        elif st.body is None:
            # The common case, one DATA frame holding exactly one message:
            # one copy, straight from the receive buffer.
            if length >= 5 and p[0] == 0 and _be32(p + 1) == length - 5:
                st.message = PyBytes_FromStringAndSize(<const char*>p + 5, length - 5)
            st.body = PyBytes_FromStringAndSize(<const char*>p, length) if st.message is None else b""
        else:
            if st.message is not None:
                raise ProtocolError(f"stream {sid}: more than one response message")
            if isinstance(st.body, bytes):
                st.body = bytearray(st.body)
            n0 = PyByteArray_GET_SIZE(st.body)
            PyByteArray_Resize(st.body, n0 + length)
            memcpy(PyByteArray_AS_STRING(st.body) + n0, p, length)
        if flags & F_END_STREAM:
            self._finish(st)  # no trailers: _finish leaves grpc_status -1
        elif st.unacked >= self.stream_window // 2:
            self.ctrl += frame(T_WINDOW_UPDATE, 0, sid, _u32(st.unacked))
            st.unacked = 0
            self.ctrl_urgent = True
            self.window_updates += 1
        return 0

    cdef int _on_headers(self, const unsigned char* p, uint32_t length, uint8_t flags,
                         uint32_t sid) except -1:
        cdef uint32_t pad = 0
        if sid == 0:
            raise ProtocolError("HEADERS on stream 0")
        if flags & F_PADDED:
            if length < 1:
                raise ProtocolError("bad HEADERS padding")
            pad = p[0]
            p += 1
            length -= 1
        if flags & F_PRIORITY:
            if length < 5:
                raise ProtocolError("short HEADERS priority")
            p += 5
            length -= 5
        if pad > length:
            raise ProtocolError("bad HEADERS padding")
        length -= pad
        if flags & F_END_HEADERS:
            return self._on_block(p, length, flags & F_END_STREAM, sid)
        self.cont_sid = sid
        self.cont_end_stream = flags & F_END_STREAM
        self.cont_block = bytearray(PyBytes_FromStringAndSize(<const char*>p, length))
        return 0

    cdef int _on_continuation(self, const unsigned char* p, uint32_t length, uint8_t flags,
                              uint32_t sid) except -1:
        if not self.cont_sid or sid != self.cont_sid:
            raise ProtocolError("CONTINUATION without a header block to continue")
        self.cont_block += PyBytes_FromStringAndSize(<const char*>p, length)
        if flags & F_END_HEADERS:
            block = bytes(self.cont_block)
            self.cont_sid, self.cont_block = 0, None
            return self._on_block(<const unsigned char*>PyBytes_AS_STRING(block), len(block),
                                  self.cont_end_stream, sid)
        return 0

    cdef int _on_block(self, const unsigned char* p, uint32_t length, bint end_stream,
                       uint32_t sid) except -1:
        cdef tuple fields = self._decode_block(p, length)  # always: HPACK state is per connection
        cdef _Stream st = self.streams.get(sid)
        if st is None:
            return 0
        if not st.headers_seen:
            st.headers_seen = True
            st.http_status = fields[0]
            if st.http_status < 0:
                raise ProtocolError(f"response headers without :status on stream {sid}")
            if not end_stream:
                return 0
        elif not end_stream:
            raise ProtocolError(f"a third header block on stream {sid}")
        st.grpc_status, st.grpc_message = fields[1], fields[2]
        self._finish(st)
        return 0

    cdef tuple _decode_block(self, const unsigned char* p, uint32_t length):
        """``(:status, grpc-status, grpc-message)`` of a block, -1/None where absent."""
        key = PyBytes_FromStringAndSize(<const char*>p, length)
        cached = self.block_cache.get(key)
        if cached is not None:
            return <tuple>cached
        self.cache_misses += 1
        cdef bint indexed_only = True
        cdef uint32_t i = 0
        while i < length:
            if not p[i] & 0x80:
                indexed_only = False
                break
            if (p[i] & 0x7F) == 0x7F:  # a multi-byte index: skip its continuation bytes
                i += 1
                while i < length and p[i] & 0x80:
                    i += 1
            i += 1
        try:
            headers = self.decoder.decode(key, raw=True)
        except _hpack.HPACKError as exc:
            raise ProtocolError(f"bad header block: {exc}") from None
        http_status = grpc_status = -1
        grpc_message = None
        for name, value in headers:
            if name == b":status":
                http_status = int(value)
            elif name == b"grpc-status":
                grpc_status = int(value)
            elif name == b"grpc-message":
                grpc_message = _unquote(value.decode("utf-8", "replace"))
        fields = (http_status, grpc_status, grpc_message)
        if indexed_only:
            self.block_cache[key] = fields
        else:
            # Literals may have added entries (and evicted others): every
            # cached block of indices may now mean something else.
            self.block_cache.clear()
        return fields

    cdef int _finish(self, _Stream st) except -1:
        st.done = True
        self.streams.pop(st.sid, None)
        _signal(st)
        return 0

    cdef int _on_window_update(self, const unsigned char* p, uint32_t length, uint32_t sid) except -1:
        cdef uint32_t inc
        cdef _Stream st
        cdef _Stream other
        if length != 4:
            raise ProtocolError("WINDOW_UPDATE of a size other than 4")
        inc = _be32(p) & 0x7FFFFFFF
        if sid == 0:
            self.conn_send_window += inc
            if self.conn_send_window > MAX_WINDOW:
                raise ProtocolError("connection send window above 2**31-1")
            for other in self.streams.values():
                if other.want_window:
                    _signal(other)
            return 0
        st = self.streams.get(sid)
        if st is not None:
            st.send_window += inc
            if st.want_window:
                _signal(st)
        return 0

    cdef int _on_settings(self, const unsigned char* p, uint32_t length) except -1:
        cdef uint32_t i, ident, value
        cdef int64_t delta
        cdef _Stream st
        if length % 6:
            raise ProtocolError("SETTINGS of a size not a multiple of 6")
        for i in range(0, length, 6):
            ident = (<uint32_t>p[i] << 8) | p[i + 1]
            value = _be32(p + i + 2)
            if ident == S_INITIAL_WINDOW_SIZE:
                if value > MAX_WINDOW:
                    raise ProtocolError("SETTINGS_INITIAL_WINDOW_SIZE above 2**31-1")
                delta = <int64_t>value - self.peer_initial_window
                self.peer_initial_window = value
                for st in self.streams.values():
                    st.send_window += delta
                    if delta > 0 and st.want_window:
                        _signal(st)
            elif ident == S_MAX_FRAME_SIZE:
                if not 16384 <= value <= 16777215:
                    raise ProtocolError("bad SETTINGS_MAX_FRAME_SIZE")
                self.peer_max_frame = value
            # HEADER_TABLE_SIZE: our requests never index; the others do not matter here.
        self.ctrl += frame(T_SETTINGS, F_ACK, 0, b"")
        self.ctrl_urgent = True
        return 0

    cdef int _on_rst(self, const unsigned char* p, uint32_t length, uint32_t sid) except -1:
        cdef _Stream st
        if length != 4 or sid == 0:
            raise ProtocolError("bad RST_STREAM")
        st = self.streams.get(sid)
        if st is not None and not st.done:
            code = _be32(p)
            st.error = StreamReset(f"etcd reset stream {sid} (HTTP/2 error {code})", code)
            self._finish(st)
        return 0

    cdef int _on_goaway(self, const unsigned char* p, uint32_t length) except -1:
        cdef _Stream st
        if length < 8:
            raise ProtocolError("short GOAWAY")
        last, code = _be32(p) & 0x7FFFFFFF, _be32(p + 4)
        debug = PyBytes_FromStringAndSize(<const char*>p + 8, length - 8).decode("utf-8", "replace")
        where = self.authority.decode()
        why = f"GOAWAY, error {code}{', ' + debug if debug else ''}"
        self.goaway = GoAway(f"etcd at {where} is closing the connection ({why}): no new calls on it",
                             last, code, False)
        for st in list(self.streams.values()):
            if st.sid > last:
                st.error = GoAway(f"etcd at {where} sent {why} before stream {st.sid} was"
                                  f" processed (last {last}): not applied, safe to retry",
                                  last, code, False)
                self._finish(st)
            elif code != 0:
                st.error = GoAway(f"etcd at {where} sent {why} with stream"
                                  f" {st.sid} in flight: it may have been applied", last, code, True)
                self._finish(st)
        return 0

    cdef int _fail(self, exc) except -1:
        if self.error is None:
            self.error = exc
        self._fail_streams(exc)
        return 0

    cdef int _fail_streams(self, exc) except -1:
        cdef _Stream st
        for st in list(self.streams.values()):
            if st.error is None:
                st.error = exc
            self._finish(st)
        return 0
