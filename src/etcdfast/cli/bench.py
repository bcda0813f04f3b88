"""``bench``: requests per second, latency percentiles and client CPU per op.

Workloads (run in the order given; default all):

``put``    one Put per op, unique keys (or ``--key-space-size`` keys reused)
``get``    one Get per op, random keys from a pre-written key space
``range``  one Range per op over ``--range-size`` pre-written keys
``txn``    one Txn per op: a compare plus ``--txn-ops`` puts
``watch``  puts from the workers, latency = put sent -> event received

``--concurrency`` threads issue requests over ``--clients`` Client objects
(each one gRPC channel), like etcd's ``benchmark`` tool with
``--clients``/``--conns``. Each workload stops after ``--total`` ops or
``--max-seconds``, whichever comes first. Without ``--endpoints`` an embedded
etcd is started (and removed) as for ``demo``.
"""

from __future__ import annotations

import itertools
import math
import random
import threading
import time
from typing import Any, Callable, Dict, List, Optional

from .. import IMPLEMENTATION, Client, Compare, Op
from .._progress import ProgressBar
from ._context import EXIT_ERROR, EXIT_OK, CliError, Commands, Context, parse_duration
from ._embedded import Target, target
from ._flags import ArgError, Args
from .output import dumps, render_table

__all__ = ["register", "percentile", "WORKLOADS"]

WORKLOADS = ("put", "get", "range", "txn", "watch")


def percentile(sorted_values: List[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list (``q`` in 0..100)."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(q / 100.0 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


class Stats:
    def __init__(self, name: str) -> None:
        self.name = name
        self.latencies: List[float] = []
        self.errors = 0
        self.first_error: Optional[BaseException] = None
        self.seconds = 0.0
        self.cpu = 0.0

    @property
    def ops(self) -> int:
        return len(self.latencies)

    def row(self) -> Dict[str, Any]:
        lat = sorted(self.latencies)
        ms = 1000.0
        return {
            "workload": self.name,
            "ops": self.ops,
            "errors": self.errors,
            "seconds": round(self.seconds, 6),
            "ops_per_second": round(self.ops / self.seconds, 1) if self.seconds > 0 else 0.0,
            "p50_ms": round(percentile(lat, 50) * ms, 3),
            "p90_ms": round(percentile(lat, 90) * ms, 3),
            "p99_ms": round(percentile(lat, 99) * ms, 3),
            "max_ms": round((lat[-1] if lat else 0.0) * ms, 3),
            "cpu_us_per_op": round(self.cpu * 1e6 / self.ops, 1) if self.ops else 0.0,
        }


def _run_workers(ctx: Context, args: Args, stats: Stats,
                 op: Callable[[Client, int], object], clients: List[Client]) -> None:
    """``--concurrency`` threads call ``op(client, i)`` for i in 0..total-1, bounded by time."""
    counter = itertools.count()
    deadline = time.monotonic() + args.max_seconds
    lock = threading.Lock()
    bar = ProgressBar(args.total, label=stats.name, unit="ops", stream=ctx.stderr,
                      enabled=ctx.progress_enabled())

    def worker(index: int) -> None:
        client = clients[index % len(clients)]
        mine: List[float] = []
        errors = 0
        first: Optional[BaseException] = None
        clock = time.perf_counter
        while True:
            i = next(counter)
            if i >= args.total or time.monotonic() > deadline:
                break
            start = clock()
            try:
                op(client, i)
            except Exception as exc:  # counted and reported
                errors += 1
                first = first or exc
                continue
            mine.append(clock() - start)
            if len(mine) % 64 == 0:
                bar.advance(64)
        with lock:
            stats.latencies += mine
            stats.errors += errors
            stats.first_error = stats.first_error or first

    threads = [threading.Thread(target=worker, args=(n,), name=f"etcdfast-bench-{n}", daemon=True)
               for n in range(args.concurrency)]
    cpu, wall = time.process_time(), time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stats.seconds, stats.cpu = time.perf_counter() - wall, time.process_time() - cpu
    bar.update(stats.ops)
    bar.close(clear=True)


def _key(prefix: bytes, name: str, i: int, size: int) -> bytes:
    head = prefix + name.encode() + b"/"
    return head + str(i).zfill(max(size - len(head), 1)).encode()


def bench_workload(ctx: Context, args: Args, name: str, where: Target,
                   clients: List[Client]) -> Stats:
    stats = Stats(name)
    value = random.Random(1).randbytes(args.val_size)
    space = args.key_space_size or args.total
    prefix = where.prefix

    if name == "put":
        def put(client: Client, i: int) -> object:
            return client.put(_key(prefix, name, i % space, args.key_size), value)
        _run_workers(ctx, args, stats, put, clients)
    elif name == "get":
        keys = [_key(prefix, name, i, args.key_size) for i in range(min(space, 100_000))]
        where.client.put_many((k, value) for k in keys)
        serializable = args.consistency == "s"

        def get(client: Client, i: int) -> object:
            return client.get(keys[i % len(keys)], serializable=serializable)
        _run_workers(ctx, args, stats, get, clients)
    elif name == "range":
        rprefix = prefix + b"range/"
        where.client.put_many((_key(rprefix, "", i, args.key_size), value) for i in range(args.range_size))
        serializable = args.consistency == "s"

        def range_(client: Client, i: int) -> object:
            return client.get(rprefix, prefix=True, serializable=serializable)
        _run_workers(ctx, args, stats, range_, clients)
    elif name == "txn":
        def txn(client: Client, i: int) -> object:
            base = (i * args.txn_ops) % space
            keys = [_key(prefix, name, base + j, args.key_size) for j in range(args.txn_ops)]
            ops: List[Any] = [Op.put(k, value) for k in keys]
            return client.txn(compare=[Compare.mod_revision(keys[0]) < 2**62], success=ops)
        _run_workers(ctx, args, stats, txn, clients)
    elif name == "watch":
        _bench_watch(ctx, args, stats, where, clients, value)
    return stats


def _bench_watch(ctx: Context, args: Args, stats: Stats, where: Target,
                 clients: List[Client], value: bytes) -> None:
    if not hasattr(where.client, "watch"):
        raise CliError("bench: this client has no watch support yet", EXIT_ERROR)
    wprefix = where.prefix + b"watch/"
    sent: Dict[bytes, float] = {}
    latencies: List[float] = []
    done = threading.Event()
    watch = where.client.watch(wprefix, prefix=True)

    def consume() -> None:
        clock = time.perf_counter
        try:
            for event in watch:
                started = sent.get(getattr(event, "key", b""))
                if started is not None:
                    latencies.append(clock() - started)
                if len(latencies) >= expected[0]:
                    break
        except Exception:  # the watch ended: missing events count as errors
            pass
        done.set()

    expected = [args.total]
    reader = threading.Thread(target=consume, name="etcdfast-bench-watch", daemon=True)
    reader.start()
    put_stats = Stats("watch-put")

    def put(client: Client, i: int) -> object:
        key = _key(wprefix, "", i, args.key_size)
        sent[key] = time.perf_counter()
        return client.put(key, value)

    try:
        _run_workers(ctx, args, put_stats, put, clients)
        expected[0] = put_stats.ops
        if len(latencies) < expected[0]:
            done.wait(timeout=min(10.0, args.max_seconds))
    finally:
        watch.cancel()
    stats.latencies = list(latencies)
    stats.seconds, stats.cpu = put_stats.seconds, put_stats.cpu
    stats.errors = put_stats.errors + max(0, put_stats.ops - len(latencies))
    stats.first_error = put_stats.first_error


def run_bench(ctx: Context, args: Args) -> int:
    workloads = args.workloads or list(WORKLOADS)
    with target(ctx, "bench") as where:
        clients = [where.client] + [ctx.new_client(where.endpoints) for _ in range(args.clients - 1)]
        ctx.note(f"bench: {where.description}; {args.clients} client(s), {args.concurrency} threads")
        results = []
        for name in workloads:
            if name == "watch" and not hasattr(where.client, "watch"):
                ctx.note("bench: watch skipped (this client has no watch support)")
                continue
            results.append(bench_workload(ctx, args, name, where, clients))
        failed = [s for s in results if s.ops == 0 and s.errors]
        rows = [s.row() for s in results]
        if ctx.write_out == "json":
            ctx.out.line(dumps({"codec": IMPLEMENTATION, "etcd_version": where.etcd_version,
                                "clients": args.clients, "concurrency": args.concurrency,
                                "key_size": args.key_size, "val_size": args.val_size, "results": rows}))
        else:
            columns = ["workload", "ops", "errors", "seconds", "ops_per_second", "p50_ms", "p90_ms",
                       "p99_ms", "max_ms", "cpu_us_per_op"]
            titles = ["WORKLOAD", "OPS", "ERRORS", "SECONDS", "OPS/S", "P50 MS", "P90 MS", "P99 MS",
                      "MAX MS", "CPU µS/OP"]
            ctx.out.write(render_table(titles, [[_cell(row[c]) for c in columns] for row in rows]))
            ctx.out.line(f"codec: {IMPLEMENTATION}    etcd: {where.etcd_version}    "
                         f"keys: {args.key_size} B, values: {args.val_size} B")
        for s in results:
            if s.first_error is not None:
                ctx.note(f"bench: {s.name}: {s.errors} errors, first: {s.first_error}")
        if failed:
            raise CliError(f"bench: every {failed[0].name} request failed: {failed[0].first_error}",
                           EXIT_ERROR)
    return EXIT_OK


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.3f}" if value < 100 else f"{value:,.0f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def _positive(limit: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise ArgError(f"expected a whole number, got {text!r}") from None
        if not 1 <= value <= limit:
            raise ArgError(f"must be between 1 and {limit}")
        return value
    return parse


def _workload(text: str) -> str:
    if text not in WORKLOADS:
        raise ArgError(f"unknown workload {text!r} (choose from {', '.join(WORKLOADS)})")
    return text


def register(commands: Commands) -> None:
    p = commands.add("bench", run_bench, help="benchmark put/get/range/txn/watch",
                     description=__doc__)
    p.add_argument("workloads", nargs="*", type=_workload, metavar="WORKLOAD",
                   help=f"any of {', '.join(WORKLOADS)} (default: all)")
    p.add_argument("--total", type=_positive(10_000_000), default=10_000, help="ops per workload")
    p.add_argument("--max-seconds", type=parse_duration, default=60.0, metavar="DURATION",
                   help="time limit per workload (default 60s)")
    p.add_argument("--key-size", type=_positive(65536), default=24, help="key size in bytes")
    p.add_argument("--val-size", type=_positive(1024 * 1024), default=128, help="value size in bytes")
    p.add_argument("--clients", "--conns", type=_positive(256), default=1, dest="clients",
                   help="Client objects (gRPC channels) to spread requests over")
    p.add_argument("--concurrency", type=_positive(1024), default=8, help="threads issuing requests")
    p.add_argument("--key-space-size", type=_positive(10_000_000), default=None, metavar="N",
                   help="reuse N distinct keys (default: --total; get: at most 100000)")
    p.add_argument("--range-size", type=_positive(100_000), default=100, metavar="N",
                   help="keys returned by each range op")
    p.add_argument("--txn-ops", type=_positive(128), default=1, metavar="N", help="puts per txn")
    p.add_argument("--consistency", choices=("l", "s"), default="l",
                   help="reads: l linearizable (default), s serializable")
