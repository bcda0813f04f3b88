"""One client of the "below grpcio" benchmark, timed by the shared harness.

    python worker.py put --endpoint HOST:PORT --client native [-n 5000] [--threads 8]

Clients (all send the same pre-encoded request bytes; only etcdfast decodes):

* ``floor``: a plain Python TCP round trip of ``--floor-bytes`` (120) bytes,
  ``sendall`` + ``recv`` with TCP_NODELAY, against the echo server at
  ``--echo`` (see :func:`serve_echo`); with ``--threads``, one socket per thread;
* ``native``: the spike's Cython HTTP/2 client (``_h2.Connection``), one connection;
* ``raw-grpcio``: ``channel.unary_unary`` with no serializers
  (bench/workers/raw_grpc_worker.py), one channel;
* ``etcdfast``: ``etcdfast.Client`` over grpcio;
* ``etcdfast-native``: the same Client with its grpc handles swapped for the
  native connection: builders, call machine and decoding as shipped, the
  transport replaced -- what a third executor would cost per call;
* ``ab``: raw-grpcio and native in this one process, in alternating blocks
  (_harness.run_ab): native's ``ab_cpu_ratio`` is its CPU per call over grpcio's.

Each workload prints the harness's JSON line; native clients add a ``stats``
line (recv/send calls and frames per call).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, List

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "workers")]

import _harness as h  # noqa: E402
import build  # noqa: E402
import raw_grpc_worker  # noqa: E402

CLIENTS = ("floor", "native", "raw-grpcio", "etcdfast", "etcdfast-native", "ab")


def extend(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--client", required=True, choices=CLIENTS)
    # The harness owns --threads (its threads workload); here it also says how
    # many threads share one connection, and a lone spike worker runs on one.
    parser.set_defaults(threads=1)
    parser.add_argument("--echo", help="host:port of the echo server (floor)")
    parser.add_argument("--floor-bytes", type=int, default=120)
    parser.add_argument("--ack-pings-now", action="store_true",
                        help="native: answer the server's PINGs at once, not with the next request")
    parser.add_argument("--blocks", type=int, default=20, help="ab: alternating blocks")


def raw_args(args: argparse.Namespace) -> argparse.Namespace:
    """raw_grpc_worker's defaults (60 s deadline, no metadata) on our command line."""
    return argparse.Namespace(**{**vars(args), **raw_grpc_worker.DEFAULTS})


def connect(args: argparse.Namespace) -> Any:
    host, port = h.host_port(args.endpoint)
    return build.load().Connection(host, port, ack_pings_now=args.ack_pings_now)


def native_primitives(args: argparse.Namespace, conn: Any) -> Dict[str, Any]:
    """raw_grpc_worker's primitives (its request bytes, its checks) over the native connection."""

    def make_handle(method: str) -> Callable[..., bytes]:
        call = conn.call
        return lambda payload, timeout=None: call(method, payload, timeout)

    return raw_grpc_worker.primitives(raw_args(args), make_handle, "call")


def floor_primitives(args: argparse.Namespace) -> Dict[str, Any]:
    local = threading.local()
    message = (h.VALUE * (args.floor_bytes // len(h.VALUE) + 1))[:args.floor_bytes]
    size = len(message)

    def round_trip(*_: Any) -> bytes:
        sock = getattr(local, "sock", None)
        if sock is None:
            sock = local.sock = socket.create_connection(h.host_port(args.echo))
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(message)
        got = sock.recv(65536)
        while len(got) < size:
            more = sock.recv(65536)
            if not more:
                raise ConnectionError("echo server closed")
            got += more
        return got

    return {"put": round_trip, "get": round_trip, "prefix": round_trip,
            "value_of": lambda data: h.VALUE if data == message else data}


def patched_client(args: argparse.Namespace, conn: Any) -> Any:
    """An etcdfast Client whose unary calls go through ``conn`` (bench-only monkeypatch)."""
    import etcdfast_worker

    client = etcdfast_worker.client(args)
    for method in (raw_grpc_worker.PUT, raw_grpc_worker.RANGE):
        client._executor._handles[method] = _handle(conn.call, method)
    return client


def _handle(call: Callable[..., bytes], method: str) -> Callable[..., bytes]:
    """A grpc multicallable's signature (as the executor calls it) over ``call``."""
    return lambda payload, timeout=None, metadata=None: call(method, payload, timeout)


def run_threaded(name: str, items: List[h.Workload], threads: int) -> None:
    """Like _harness.run, with ``threads`` threads sharing the client, n/threads ops each."""
    for w in items:
        if w.setup is not None:
            w.setup()
        for i in range(w.warmup):
            w.op(i)
        _time_threaded(name, w, threads)


def _time_threaded(name: str, w: h.Workload, threads: int) -> None:
    per = max(1, w.n // threads)
    timers = [h.Timer() for _ in range(threads)]
    lasts: List[Any] = [None] * threads
    errors: List[BaseException] = []
    gate = threading.Barrier(threads + 1)

    def loop(k: int) -> None:
        gate.wait()
        try:
            for i in timers[k].steps(per):
                lasts[k] = w.op(i)
        except BaseException as exc:  # reported below, the run fails
            errors.append(exc)

    pool = [threading.Thread(target=loop, args=(k,)) for k in range(threads)]
    for t in pool:
        t.start()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    gate.wait()
    for t in pool:
        t.join(600)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    if errors:
        raise errors[0]
    total = h.Timer()
    total.latencies = [x for t in timers for x in t.latencies]
    total.n, total.wall, total.cpu = per * threads, wall, cpu
    w.finish(name, total, lasts[0], threads=threads)


def emit_stats(client: str, conn: Any) -> None:
    stats = conn.stats()
    calls = max(1, stats["calls"])
    per_call = {f"{k}_per_call": v / calls for k, v in stats.items() if k != "calls"}
    print(json.dumps({"client": client, "workload": "stats", "pid": os.getpid(), **stats, **per_call}),
          flush=True)


def main() -> None:
    args = h.parse_args(extend)
    name, threads = args.client, args.threads

    def run(items: List[h.Workload]) -> None:
        if threads > 1:
            run_threaded(name, items, threads)
        else:
            h.run(name, items)

    if name == "floor":
        run(h.workloads(args, **floor_primitives(args)))
        return
    if name == "native":
        conn = connect(args)
        run(h.workloads(args, **native_primitives(args, conn)))
        emit_stats(name, conn)
        conn.close()
        return
    import grpc

    if name == "raw-grpcio":
        with grpc.insecure_channel(args.endpoint, options=h.grpc_options(args)) as channel:
            run(raw_grpc_worker.workloads(raw_args(args), channel))
        return
    if name == "ab":
        conn = connect(args)
        with grpc.insecure_channel(args.endpoint, options=h.grpc_options(args)) as channel:
            h.run_ab(("raw-grpcio", "native"), raw_grpc_worker.workloads(raw_args(args), channel),
                     h.workloads(args, **native_primitives(args, conn)), args.blocks)
        conn.close()
        return
    import etcdfast_worker

    if name == "etcdfast":
        with etcdfast_worker.client(args) as client:
            run(h.workloads(args, **etcdfast_worker.primitives(client)))
        return
    assert name == "etcdfast-native"
    conn = connect(args)
    with patched_client(args, conn) as client:
        run(h.workloads(args, **etcdfast_worker.primitives(client)))
    emit_stats(name, conn)
    conn.close()


def serve_echo(deadline_s: float = 3600.0) -> None:
    """Echo every byte back on each connection until stdin closes (or ``deadline_s``).

    Prints its ``host:port`` first. One thread per connection; the benchmark
    runs it as its own process so its CPU is not the client's.
    """
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(1.0)
    print(f"127.0.0.1:{listener.getsockname()[1]}", flush=True)
    stop = time.monotonic() + deadline_s

    def echo(conn: socket.socket) -> None:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with conn:
            while True:
                data = conn.recv(65536)
                if not data:
                    return
                conn.sendall(data)

    def watch_stdin() -> None:
        sys.stdin.read()
        os._exit(0)

    threading.Thread(target=watch_stdin, daemon=True).start()
    while time.monotonic() < stop:
        try:
            conn, _ = listener.accept()
        except socket.timeout:
            continue
        threading.Thread(target=echo, args=(conn,), daemon=True).start()


if __name__ == "__main__":
    if sys.argv[1:] == ["--serve-echo"]:
        serve_echo()
    else:
        main()
