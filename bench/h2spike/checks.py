"""Correctness of the native HTTP/2 path, against grpcio and a real etcd.

Every check raises ``AssertionError`` (with the first difference) when the
native path answers differently from grpcio or fails unclearly, and returns
a small dict of what it saw, for the bench's report. Run by
``bench/below_grpcio.py`` (``--checks-only`` runs nothing else); request
bytes come from etcdfast's builders (``etcdfast.api.kv``), answers are decoded
with etcdfast's codec (``Request.decode``, i.e. ``_codec.wire.decode_*``).
"""

from __future__ import annotations

import random
import threading
import time
from typing import Any, Dict, List, Optional, Tuple

import grpc

from etcdfast.api import kv
from etcdfast.api.request import Request
from etcdfast.errors import EtcdError
from etcdfast.types import GetResult, KeyValue, PutResult

Outcome = Tuple[str, Any, Any]  # ("ok", decoded, raw bytes) or ("error", code, message)
TIMEOUT = 10.0
PREFIX = b"/h2/diff/"


def native_outcome(h2: Any, conn: Any, request: Request[Any], timeout: float = TIMEOUT) -> Outcome:
    try:
        raw = conn.call(request.method, request.payload, timeout)
    except h2.GrpcError as exc:
        return ("error", exc.code, exc.message)
    return ("ok", request.decode(raw), raw)


def grpc_outcome(channel: grpc.Channel, request: Request[Any], timeout: float = TIMEOUT) -> Outcome:
    try:
        raw = channel.unary_unary(request.method)(request.payload, timeout=timeout)
    except grpc.RpcError as exc:
        return ("error", exc.code().value[0], exc.details())
    return ("ok", request.decode(raw), raw)


class Pair:
    """Both transports to one etcd; ``both(request)`` asks each, in a random order."""

    def __init__(self, h2: Any, conn: Any, channel: grpc.Channel, rng: random.Random) -> None:
        self.h2, self.conn, self.channel, self.rng = h2, conn, channel, rng
        self.calls = 0

    def one(self, native: bool, request: Request[Any]) -> Outcome:
        self.calls += 1
        return native_outcome(self.h2, self.conn, request) if native else grpc_outcome(self.channel, request)

    def both(self, request: Request[Any]) -> Tuple[Outcome, Outcome]:
        """(native's outcome, grpcio's outcome) of the same request, order randomised."""
        native_first = self.rng.random() < 0.5
        first = self.one(native_first, request)
        second = self.one(not native_first, request)
        return (first, second) if native_first else (second, first)

    def same(self, request: Request[Any], what: str) -> Outcome:
        native, grpc_ = self.both(request)
        # The decoded results and, for answers, the bytes too: the same state
        # gives etcd's deterministic encoding of the same message.
        assert native == grpc_, f"{what}: native {native[:2]} != grpcio {grpc_[:2]}"
        return native


def random_get(rng: random.Random, keys: List[bytes], now: int, compacted: int) -> Optional[Request[Any]]:
    kw: Dict[str, Any] = {}
    key = rng.choice(keys)
    shape = rng.random()
    if shape < 0.2:
        key, kw["prefix"] = PREFIX + rng.choice([b"", b"k0", b"k1", b"k2"]), True
    elif shape < 0.3:
        kw["range_end"] = max(key, rng.choice(keys)) + b"\x00"
    elif shape < 0.35:
        kw["from_key"] = True
    if rng.random() < 0.2:
        kw["limit"] = rng.randint(1, 10)
    if rng.random() < 0.2:
        choices = [rng.randint(max(compacted, 1), now), now + rng.randint(1, 5)]
        if compacted > 2:
            choices.append(rng.randint(1, compacted - 1))
        kw["revision"] = rng.choice(choices)
    if rng.random() < 0.15:
        kw["sort_order"] = rng.choice(["ascend", "descend"])
        kw["sort_target"] = rng.choice(["key", "version", "create", "mod", "value"])
    for flag in ("keys_only", "count_only", "serializable"):
        if rng.random() < 0.1:
            kw[flag] = True
    if rng.random() < 0.05:
        kw["min_mod_revision"] = rng.randint(0, now)
    if rng.random() < 0.05:
        kw["max_create_revision"] = rng.randint(0, now)
    try:
        return kv.get(key, **kw)
    except EtcdError:
        return None  # an option mix the builder refuses: never sent


def random_put(rng: random.Random, keys: List[bytes]) -> Tuple[Request[Any], bytes, bool]:
    key = rng.choice(keys)
    size = rng.randint(20_000, 200_000) if rng.random() < 0.02 else rng.randint(0, 300)
    value = rng.randbytes(size)
    kw: Dict[str, Any] = {"prev_kv": rng.random() < 0.5}
    shape = rng.random()
    if shape < 0.05:
        kw["lease"] = rng.randint(1, 2**62)  # no such lease: NOT_FOUND
    elif shape < 0.08:
        kw["ignore_value"], value = True, b""  # "key not found" unless the key exists
    elif shape < 0.11:
        kw["ignore_lease"] = True
    return kv.put(key, value, **kw), key, kw["prev_kv"]


def differential(h2: Any, endpoint: str, ops: int, seed: int = 16, deadline_s: float = 600) -> Dict[str, Any]:
    """``ops`` random Range/Put calls through both transports; the answers must agree.

    A Range is sent through both to the same state: the decoded results (and
    bytes) must be equal. A Put is sent through both, one after the other: the
    second's header must be the first's with revision + 1, and each one's
    ``prev_kv`` must equal the key as a Range (through both) reads it at the
    revision before that put. Errors must agree in code and message.
    """
    rng = random.Random(seed)
    host, _, port = endpoint.rpartition(":")
    conn = h2.Connection(host, int(port))
    counts = {"range_ok": 0, "range_error": 0, "put_ok": 0, "put_error": 0, "large_values": 0}
    keys = [PREFIX + b"k%03d" % i for i in range(48)]
    stop = time.monotonic() + deadline_s
    with grpc.insecure_channel(endpoint, options=[("grpc.max_receive_message_length", 2**31 - 1)]) as channel:
        pair = Pair(h2, conn, channel, rng)
        now = pair.same(kv.get(b"\x00", from_key=True, count_only=True), "initial count")[1].header.revision
        compacted = 0
        for i in range(ops):
            if time.monotonic() > stop:
                raise AssertionError(f"differential check still running after {deadline_s} s ({i} ops)")
            if i == ops // 4 and now > 20:
                compacted = now - 10
                assert pair.one(rng.random() < 0.5, kv.compact(compacted))[0] == "ok"
            if rng.random() < 0.5:
                request = random_get(rng, keys, now, compacted)
                if request is None:
                    continue
                outcome = pair.same(request, f"op {i}: {request!r}")
                counts["range_ok" if outcome[0] == "ok" else "range_error"] += 1
                continue
            request, key, prev = random_put(rng, keys)
            counts["large_values"] += len(request.payload) > 20_000
            native_first = rng.random() < 0.5
            first = pair.one(native_first, request)
            second = pair.one(not native_first, request)
            what = f"op {i}: put {key!r} ({len(request.payload)} bytes)"
            if first[0] == "error":
                assert second[:2] == first[:2], f"{what}: errors differ: {first} vs {second}"
                counts["put_error"] += 1
                continue
            assert second[0] == "ok", f"{what}: first answered, second failed: {second}"
            a, b = first[1], second[1]
            assert isinstance(a, PutResult) and isinstance(b, PutResult)
            assert b.header == a.header._replace(revision=a.header.revision + 1), (
                f"{what}: headers {a.header} then {b.header}")
            now = b.header.revision
            if prev:
                for result in (a, b):
                    before = result.header.revision - 1
                    if before <= compacted:
                        continue
                    seen = pair.same(kv.get(key, revision=before), f"{what}: read at {before}")[1]
                    expect: Optional[KeyValue] = seen.kvs[0] if seen.kvs else None
                    assert result.prev_kv == expect, f"{what}: prev_kv {result.prev_kv} != {expect}"
            counts["put_ok"] += 1
        counts["calls_per_transport"] = pair.calls // 2
    counts["native_stats"] = conn.stats()
    conn.close()
    assert counts["range_error"] and counts["put_error"] and counts["large_values"] or ops < 500, (
        f"the random mix missed error or large cases: {counts}")
    return counts


def large_messages(h2: Any, endpoint: str) -> Dict[str, Any]:
    """Responses and requests larger than the flow-control windows, with 64 KiB windows."""
    host, _, port = endpoint.rpartition(":")
    conn = h2.Connection(host, int(port), stream_window=65535, conn_window=65535)
    rng = random.Random(7)
    seen: Dict[str, Any] = {}
    with grpc.insecure_channel(endpoint, options=[("grpc.max_receive_message_length", 2**31 - 1)]) as channel:
        pair = Pair(h2, conn, channel, rng)
        for i in range(400):
            pair.one(True, kv.put(b"/h2/big/%04d" % i, rng.randbytes(4096)))
        outcome = pair.same(kv.get(b"/h2/big/", prefix=True), "1.6 MB range")
        assert outcome[0] == "ok" and len(outcome[1].kvs) == 400, outcome[:2]
        seen["range_bytes"] = len(outcome[2])
        # A 1 MB request: more than the server's initial stream window.
        value = rng.randbytes(1_000_000)
        put = pair.one(True, kv.put(b"/h2/big/one", value))
        assert put[0] == "ok", put
        back = grpc_outcome(channel, kv.get(b"/h2/big/one"))
        assert back[0] == "ok" and back[1].kvs[0].value == value, "1 MB put read back wrong"
        # Over etcd's request limit (1.5 MiB + gRPC's overhead): the server
        # answers while the request is still being sent.
        too_big = kv.put(b"/h2/big/two", rng.randbytes(3_000_000))
        native, grpc_ = native_outcome(h2, conn, too_big), grpc_outcome(channel, too_big)
        assert native[0] == grpc_[0] == "error" and native[1] == grpc_[1], (native[:2], grpc_[:2])
        seen["oversized_put"] = f"{native[1]} {native[2]!r} (grpcio: {grpc_[1]} {grpc_[2]!r})"
        # The connection is still good after all that.
        assert pair.same(kv.get(b"/h2/big/0001"), "after large messages")[0] == "ok"
    seen["native_stats"] = conn.stats()
    assert seen["native_stats"]["window_updates_sent"] > 0, "no WINDOW_UPDATE was needed?"
    conn.close()
    return seen


def threads_share(h2: Any, endpoint: str, threads: int = 8, calls: int = 300) -> Dict[str, Any]:
    """Threads on one connection each get their own answers (dispatch by stream id)."""
    host, _, port = endpoint.rpartition(":")
    conn = h2.Connection(host, int(port))
    errors: List[str] = []

    def work(t: int) -> None:
        rng = random.Random(t)
        for i in range(calls):
            key = b"/h2/threads/%d/%d" % (t, i % 10)
            value = rng.randbytes(rng.choice([10, 100, 30_000]))
            try:
                put = kv.put(key, value)
                put.decode(conn.call(put.method, put.payload, TIMEOUT))
                get = kv.get(key)
                got = get.decode(conn.call(get.method, get.payload, TIMEOUT))
            except Exception as exc:  # reported: the check fails
                errors.append(f"thread {t}: {exc!r}")
                return
            if not isinstance(got, GetResult) or not got.kvs or got.kvs[0].value != value:
                errors.append(f"thread {t} call {i}: read another answer")
                return

    pool = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join(120)
    assert not any(t.is_alive() for t in pool), "threads still running after 120 s"
    assert not errors, errors[:3]
    stats = conn.stats()
    conn.close()
    return {"threads": threads, "calls": threads * calls * 2, "native_stats": stats}


def pings_now(h2: Any, endpoint: str) -> Dict[str, Any]:
    """The immediate-PING-ack variant answers the same."""
    host, _, port = endpoint.rpartition(":")
    conn = h2.Connection(host, int(port), ack_pings_now=True)
    request = kv.get(b"/h2/big/0001")
    for _ in range(50):
        assert native_outcome(h2, conn, request)[0] == "ok"
    stats = conn.stats()
    conn.close()
    assert stats["sends"] > stats["calls"], "pings were not answered at once"
    return stats


def faults(h2: Any, server: Any) -> Dict[str, Any]:
    """Deadlines, and etcd stopped and killed mid-run: each must surface as a clear error.

    ``server`` is an EtcdServer of the check's own (it is paused, stopped and
    killed here).
    """
    seen: Dict[str, Any] = {}
    host, port = "127.0.0.1", server.client_port
    get = kv.get(b"k")
    conn = h2.Connection(host, port)
    assert native_outcome(h2, conn, kv.put(b"k", b"v"))[0] == "ok"
    # A frozen server: the local deadline fires, the stream is reset, the
    # connection keeps working afterwards.
    server.pause()
    started = time.monotonic()
    try:
        conn.call(get.method, get.payload, 0.3)
        raise AssertionError("a call to a paused etcd answered")
    except h2.DeadlineExceeded as exc:
        seen["deadline"] = f"{exc} after {time.monotonic() - started:.3f} s (timeout 0.3)"
        assert 0.3 <= time.monotonic() - started < 1.5, seen["deadline"]  # generous: CI is loaded
    finally:
        server.resume()
    assert native_outcome(h2, conn, get)[0] == "ok", "connection unusable after a deadline"
    # The server enforces grpc-timeout itself: a 1 us budget expires there first
    # (or here: either way a deadline error, never an answer or a hang).
    try:
        conn.call(get.method, get.payload, 1e-6)
        seen["tiny_timeout"] = "answered within 1 us?"
    except h2.GrpcError as exc:
        assert exc.code == grpc.StatusCode.DEADLINE_EXCEEDED.value[0], exc
        seen["tiny_timeout"] = f"server: {exc}"
    except h2.DeadlineExceeded as exc:
        seen["tiny_timeout"] = f"local: {exc}"
    assert native_outcome(h2, conn, get)[0] == "ok"
    seen["goaway"] = _too_many_pings(h2, conn, get)
    conn = h2.Connection(host, port)
    for how in ("stop", "kill"):
        seen[how] = _interrupted(h2, conn, server, how)
        # Calls on the dead connection fail at once with the same clear error.
        started = time.monotonic()
        try:
            conn.call(get.method, get.payload, 5.0)
            raise AssertionError("a call on a dead connection answered")
        except h2.H2Error as exc:
            assert time.monotonic() - started < 1.0  # no waiting on a dead socket
            seen[how + "_after"] = f"{type(exc).__name__}: {exc}"
        server.restart()
        conn = h2.Connection(host, port)
        assert native_outcome(h2, conn, get)[0] == "ok", "a new connection after the restart failed"
    conn.close()
    return seen


def _too_many_pings(h2: Any, conn: Any, request: Request[Any]) -> str:
    """etcd's gRPC server answers pings without calls in between with GOAWAY
    (ENHANCE_YOUR_CALM, "too_many_pings") after two strikes: a real GOAWAY."""
    for _ in range(4):
        conn.ping()
    time.sleep(0.2)
    try:
        conn.call(request.method, request.payload, 5.0)
    except h2.GoAway as exc:
        assert exc.error_code == 11 and not exc.applied_possible, exc
        return f"GoAway: {exc}"
    raise AssertionError("no GOAWAY after 4 pings without calls")


def _interrupted(h2: Any, conn: Any, server: Any, how: str) -> str:
    """Calls in a loop while another thread stops (SIGTERM) or kills etcd: the error seen."""
    request = kv.put(b"k", b"v")
    threading.Timer(0.3, server.stop if how == "stop" else server.kill).start()
    stop, calls = time.monotonic() + 20, 0
    while time.monotonic() < stop:
        try:
            conn.call(request.method, request.payload, 5.0)
            calls += 1
        except h2.H2Error as exc:
            return f"after {calls} calls: {type(exc).__name__}: {exc}"
        except h2.GrpcError as exc:  # a stopping etcd may answer UNAVAILABLE first
            return f"after {calls} calls: GrpcError: {exc}"
    raise AssertionError(f"{how}: calls kept answering for 20 s")


def hpack_cost(h2: Any, repeats: int = 20000) -> Dict[str, float]:
    """What a header block costs on the cached path vs through the hpack package.

    The blocks are those etcd sends first on a connection (literals with
    incremental indexing, Huffman-coded) and then on every call (indices only).
    """
    import hpack

    literal_headers = [(":status", "200"), ("content-type", "application/grpc")]
    literal_trailers = [("grpc-status", "0"), ("grpc-message", "")]
    encoder = hpack.Encoder()
    first = [encoder.encode(literal_headers), encoder.encode(literal_trailers)]
    again = [encoder.encode(literal_headers), encoder.encode(literal_trailers)]
    cache = {block: (200, 0, None) for block in again}

    def per_call(fn: Any) -> float:
        best = float("inf")
        for _ in range(5):
            t = time.perf_counter()
            fn()
            best = min(best, (time.perf_counter() - t) / repeats)
        return best * 1e6

    def literal() -> None:
        for _ in range(repeats // 100):
            for _ in range(100):
                decoder = hpack.Decoder()
                decoder.decode(first[0], raw=True)
                decoder.decode(first[1], raw=True)

    def indexed_hpack() -> None:
        decoder = hpack.Decoder()
        decoder.decode(first[0], raw=True)
        decoder.decode(first[1], raw=True)
        for _ in range(repeats):
            decoder.decode(again[0], raw=True)
            decoder.decode(again[1], raw=True)

    def cached() -> None:
        get = cache.get
        for _ in range(repeats):
            get(bytes(again[0]))
            get(bytes(again[1]))

    return {"hpack_first_blocks_us": per_call(literal), "hpack_indexed_blocks_us": per_call(indexed_hpack),
            "dict_lookup_blocks_us": per_call(cached)}
