"""Timing harness shared by every benchmark worker (stdlib only).

Each worker is a small script run in its own process (and, for the peer
clients, its own virtualenv, where etcdfast is not installed) against the same
etcd server. A worker only says how its client performs three primitives --
put one key, get one key, get a prefix -- and hands them to :func:`run`
(:func:`run_async` for asyncio clients, :func:`run_ab` to alternate two
clients in one process); the workloads, their warm-up, the timing and the
checks live here, once, so every client is measured by exactly the same code.

Each workload prints one JSON line: wall seconds, process CPU seconds (all
threads, so grpc's own threads count as client CPU), operation count and
latency percentiles. Running each client in a fresh process keeps them from
sharing caches, threads or GC state.

Besides the sequential workloads: ``mem`` (the memory a held prefix-get
result takes, in a process that has done nothing else), ``threads`` (gets of
one key from ``--threads`` threads sharing one client) and ``tasks`` (the
same from ``--tasks`` asyncio tasks sharing one client).
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import gc
import json
import os
import statistics
import sys
import threading
import time
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

VALUE = b"v" * 128
#: Keys are 16-24 bytes, as the issue asks: 19 bytes here, 21 under RANGE_PREFIX.
SEQ_KEY = b"/bench/seq/%08d"
RANGE_PREFIX = b"/bench/range/"
RANGE_KEY = RANGE_PREFIX + b"%08d"
WORKLOADS = ("put", "get", "range", "mem", "threads", "tasks")
#: The workloads a sync client runs, and an asyncio client.
SYNC_WORKLOADS = ("put", "get", "range", "mem", "threads")
ASYNC_WORKLOADS = ("put", "get", "range", "mem", "tasks")

#: grpcio refuses responses over 4 MiB by default and the 100k-key range is
#: ~16 MB, so every client gets the same limit etcd's Go client uses.
MAX_RECEIVE = 2**31 - 1

GrpcOptions = List[Tuple[str, Any]]


def parse_args(extend: Optional[Callable[[argparse.ArgumentParser], None]] = None) -> argparse.Namespace:
    """The command line every worker understands (``extend`` adds a worker's own flags)."""
    parser = argparse.ArgumentParser()
    parser.add_argument("workloads", nargs="+", choices=WORKLOADS)
    parser.add_argument("--endpoint", required=True, help="host:port of etcd")
    parser.add_argument("-n", type=int, default=5000, help="sequential operations per put/get workload")
    parser.add_argument("--range-repeats", type=int, default=3, help="timed prefix gets")
    parser.add_argument("--keys", type=int, default=100_000, help="keys expected under the range prefix")
    parser.add_argument(
        "--option", action="append", default=[], metavar="NAME=VALUE",
        help="extra grpc channel option (repeatable); integers are passed as int",
    )
    parser.add_argument("--threads", type=int, default=16, help="threads of the threads workload")
    parser.add_argument("--tasks", type=int, default=200, help="asyncio tasks of the tasks workload")
    parser.add_argument("--concurrent-ops", type=int, default=8000,
                        help="gets per threads/tasks workload, all callers together")
    parser.add_argument(
        "--no-gc", action="store_true",
        help="disable Python's cyclic GC in this worker (a diagnostic: shows what GC passes cost)",
    )
    if extend is not None:
        extend(parser)
    args = parser.parse_args()
    if args.no_gc:
        gc.disable()
    return args


def host_port(endpoint: str) -> Tuple[str, int]:
    host, _, port = endpoint.rpartition(":")
    return host.strip("[]"), int(port)


def _option_value(text: str) -> Any:
    try:
        return int(text)
    except ValueError:
        return text


def grpc_options(args: argparse.Namespace) -> GrpcOptions:
    """The raised receive limit plus any ``--option NAME=VALUE`` given.

    Options can also come from the environment (``BENCH_GRPC_OPTIONS``, a JSON
    list of ``[name, value]`` pairs), so the orchestrator can try a setting on
    any worker without that worker knowing about it.
    """
    options: GrpcOptions = [("grpc.max_receive_message_length", MAX_RECEIVE)]
    for item in args.option:
        name, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--option {item!r}: expected NAME=VALUE")
        options.append((name, _option_value(value)))
    from_env = json.loads(os.environ.get("BENCH_GRPC_OPTIONS", "[]"))
    options.extend((str(name), value) for name, value in from_env)
    return options


def percentile(samples: Sequence[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def touch(kvs: Any) -> Any:
    """Read every key and value, as any user of a prefix get does.

    Without this, a client that decodes lazily (protobuf objects) would look
    cheaper than one that hands out finished objects, although its user pays
    the rest as soon as the data is used. Same code for every client.
    """
    for kv in kvs:
        kv.key  # noqa: B018 - the attribute reads are the point
        kv.value  # noqa: B018
    return kvs


def touch_pairs(pairs: Any) -> List[Any]:
    """:func:`touch` for APIs that yield ``(value, metadata)`` pairs (python-etcd3's get_prefix)."""
    out = list(pairs)
    for _value, meta in out:
        meta.key  # noqa: B018 - the attribute read is the point
    return out


class Timer:
    """The one timing loop: iterate ``steps(n)`` and do one operation per step.

    Used the same way by sync (``for i in timer.steps(n): op(i)``) and asyncio
    workers (``... await op(i)``), so both are timed identically; the
    generator's own cost (~0.1 us per step) is the same for every client.
    Successive ``steps`` add up, which lets :func:`run_ab` time in blocks.
    """

    def __init__(self) -> None:
        self.n = 0
        self.latencies: List[float] = []
        self.wall = self.cpu = 0.0

    def steps(self, n: int) -> Iterator[int]:
        latencies, clock = self.latencies, time.perf_counter
        cpu0, wall0 = time.process_time(), clock()
        for i in range(n):
            t = clock()
            yield i
            latencies.append(clock() - t)
        self.wall += clock() - wall0
        self.cpu += time.process_time() - cpu0
        self.n += n

    def result(self) -> Dict[str, float]:
        n = self.n
        return {
            "ops": n,
            "wall_s": self.wall,
            "cpu_s": self.cpu,
            "ops_per_s": n / self.wall,
            "wall_us_per_op": self.wall / n * 1e6,
            "cpu_us_per_op": self.cpu / n * 1e6,
            "p50_us": percentile(self.latencies, 0.50) * 1e6,
            "p90_us": percentile(self.latencies, 0.90) * 1e6,
            "p99_us": percentile(self.latencies, 0.99) * 1e6,
        }


class Workload:
    """One timed workload: ``op(i)`` run ``n`` times after ``warmup`` untimed runs.

    ``op`` returns a result or, for asyncio clients, an awaitable; ``setup``
    likewise. ``check`` sees the last result after the timed loop, so a
    client that answers wrongly cannot post a figure.
    """

    def __init__(
        self,
        name: str,
        op: Callable[[int], Any],
        n: int,
        warmup: int,
        check: Callable[[Any], None],
        setup: Optional[Callable[[], Any]] = None,
        per_key: int = 0,
        callers: int = 1,
    ) -> None:
        self.name, self.op, self.n, self.warmup = name, op, n, warmup
        self.check, self.setup, self.per_key, self.callers = check, setup, per_key, callers

    def finish(self, client: str, timer: Timer, last: Any, **extra: float) -> None:
        self.check(last)
        result = {**timer.result(), **extra}
        if self.per_key:
            # The prefix get is judged per key: client CPU (and wall) per key returned.
            result["keys"] = self.per_key
            result["cpu_ns_per_key"] = timer.cpu / timer.n / self.per_key * 1e9
            result["wall_ns_per_key"] = timer.wall / timer.n / self.per_key * 1e9
        emit(client, self.name, result)


def seq_keys(args: argparse.Namespace) -> List[bytes]:
    """Every key the put workload writes, in order (warm-up first)."""
    return [SEQ_KEY % i for i in range(args.n + min(50, args.n))]


def workloads(
    args: argparse.Namespace,
    put: Callable[[bytes, bytes], Any],
    get: Callable[[bytes], Any],
    prefix: Callable[[bytes], Any],
    value_of: Callable[[Any], bytes],
    count_of: Callable[[Any], int] = len,
) -> List[Workload]:
    """The workloads asked for on the command line, built from a client's primitives.

    ``put(key, value)``, ``get(key)`` and ``prefix(prefix)`` call the client
    the way a user would (``prefix`` includes :func:`touch`); ``value_of``
    and ``count_of`` read a result for the checks only (never timed).
    """
    n, warmup = args.n, min(50, args.n)
    # Pre-built keys: the timed loop measures the client, not bytes formatting.
    # Puts take them in turn (warm-up included), so none is written twice,
    # like a bulk writer.
    next_key = iter(seq_keys(args)).__next__
    first = SEQ_KEY % 0

    def check_value(result: Any) -> None:
        assert value_of(result) == VALUE, "get returned a wrong value"

    def check_count(result: Any) -> None:
        count = count_of(result)
        assert count == args.keys, f"prefix get returned {count} keys, expected {args.keys}"

    def no_check(result: Any) -> None:
        pass

    table = {
        "put": Workload("put", lambda i: put(next_key(), VALUE), n, warmup, no_check),
        "get": Workload("get", lambda i: get(first), n, warmup, check_value,
                        setup=lambda: put(first, VALUE)),
        # One untimed warm-up: the 100k-key get is long enough to need no more.
        "range": Workload("range", lambda i: prefix(RANGE_PREFIX), args.range_repeats, 1, check_count,
                          per_key=args.keys),
        # The first prefix get of the process, after one small call has set
        # up the connection: what holding its result costs.
        "mem": Workload("mem", lambda i: prefix(RANGE_PREFIX), 1, 0, check_count, per_key=args.keys,
                        setup=lambda: get(first)),
        "threads": Workload("threads", lambda i: get(first), args.concurrent_ops, warmup, check_value,
                            setup=lambda: put(first, VALUE), callers=args.threads),
        "tasks": Workload("tasks", lambda i: get(first), args.concurrent_ops, warmup, check_value,
                          setup=lambda: put(first, VALUE), callers=args.tasks),
    }
    return [table[name] for name in args.workloads if name in table]


def _prepare(w: Workload) -> None:
    if w.setup is not None:
        w.setup()
    for i in range(w.warmup):
        w.op(i)


async def _prepare_async(w: Workload) -> None:
    if w.setup is not None:
        await w.setup()
    for i in range(w.warmup):
        await w.op(i)


def _trim_heap() -> None:
    """Give freed heap memory back to the OS (glibc's malloc_trim), so that the
    resident set shows what is alive, not what the allocator kept: grpc frees
    its 16 MB of receive buffers after copying them into the response bytes,
    and a peer frees the bytes after parsing them, each at its own pace."""
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: the figure includes the allocator's slack
        pass


def rss_bytes() -> int:
    """This process's resident set size now (Linux), after :func:`_trim_heap`."""
    _trim_heap()
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_rss_bytes() -> int:
    """The highest resident set size this process has had (Linux: VmHWM)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


class MemoryProbe:
    """The memory one held prefix-get result costs: resident set growth from
    before the get (a process that connected and made one small call) to after
    it with the result held and touched (``held_mb``, both read after
    :func:`_trim_heap`); and the peak growth during the get (``peak_mb``, the
    high-water mark, allocator slack included)."""

    def __init__(self) -> None:
        gc.collect()
        self.before = rss_bytes()

    def extra(self) -> Dict[str, float]:
        gc.collect()
        return {"held_mb": (rss_bytes() - self.before) / 2**20,
                "peak_mb": (peak_rss_bytes() - self.before) / 2**20}


def run(name: str, items: List[Workload]) -> None:
    """Time each workload for a synchronous client."""
    for w in items:
        if w.name == "threads":
            run_threads(name, w)
            continue
        _prepare(w)
        probe = MemoryProbe() if w.name == "mem" else None
        timer, last = Timer(), None
        for i in timer.steps(w.n):
            last = w.op(i)
        w.finish(name, timer, last, **(probe.extra() if probe else {}))


class Concurrent:
    """``callers`` callers sharing one client, ``w.n`` operations in all: each
    caller's latencies, the wall and process CPU time of the whole run."""

    def __init__(self, w: Workload, callers: int) -> None:
        self.w, self.callers = w, callers
        self.shares = [w.n // callers + (1 if c < w.n % callers else 0) for c in range(callers)]
        self.latencies: List[List[float]] = [[] for _ in range(callers)]
        self.last: Any = None

    def finish(self, client: str, wall: float, cpu: float) -> None:
        timer = Timer()
        timer.n, timer.wall, timer.cpu = self.w.n, wall, cpu
        timer.latencies = [x for caller in self.latencies for x in caller]
        self.w.finish(client, timer, self.last, callers=self.callers)


def run_threads(name: str, w: Workload) -> None:
    """The threads workload: ``--threads`` threads calling one client, started together."""
    _prepare(w)
    run = Concurrent(w, w.callers)
    start = threading.Barrier(w.callers + 1)
    clock = time.perf_counter

    def caller(c: int) -> None:
        latencies, op = run.latencies[c], w.op
        start.wait()
        last = None
        for i in range(run.shares[c]):
            t = clock()
            last = op(i)
            latencies.append(clock() - t)
        run.last = last

    threads = [threading.Thread(target=caller, args=(c,)) for c in range(w.callers)]
    for thread in threads:
        thread.start()
    cpu0, wall0 = time.process_time(), clock()
    start.wait()
    for thread in threads:
        thread.join()
    run.finish(name, clock() - wall0, time.process_time() - cpu0)


async def run_tasks(name: str, w: Workload) -> None:
    """The tasks workload: ``--tasks`` asyncio tasks calling one client, started together."""
    await _prepare_async(w)
    run = Concurrent(w, w.callers)
    clock = time.perf_counter
    go = asyncio.Event()

    async def caller(c: int) -> None:
        latencies, op = run.latencies[c], w.op
        await go.wait()
        last = None
        for i in range(run.shares[c]):
            t = clock()
            last = await op(i)
            latencies.append(clock() - t)
        run.last = last

    tasks = [asyncio.ensure_future(caller(c)) for c in range(w.callers)]
    await asyncio.sleep(0)  # every task waits on `go`
    cpu0, wall0 = time.process_time(), clock()
    go.set()
    await asyncio.gather(*tasks)
    run.finish(name, clock() - wall0, time.process_time() - cpu0)


class _AB:
    """The bookkeeping of an A/B run (see :func:`run_ab`), shared by the sync
    and asyncio drivers: block sizes and order, per-block costs, the report."""

    def __init__(self, wa: Workload, blocks: int) -> None:
        self.size = max(1, wa.n // blocks)
        self.blocks = min(blocks, wa.n)
        self.timers, self.last = (Timer(), Timer()), [None, None]
        self.pairs: List[Tuple[float, float]] = []

    def order(self, block: int) -> Tuple[int, int]:
        return (0, 1) if block % 2 == 0 else (1, 0)

    def mark(self, side: int) -> Tuple[float, float]:
        return self.timers[side].cpu, self.timers[side].wall

    def cost(self, side: int, mark: Tuple[float, float]) -> Tuple[float, float]:
        return self.timers[side].cpu - mark[0], self.timers[side].wall - mark[1]

    def pair(self, cost: List[Tuple[float, float]]) -> None:
        self.pairs.append((cost[1][0] / cost[0][0] if cost[0][0] else 1.0, cost[1][1] / cost[0][1]))

    def finish(self, names: Tuple[str, str], wa: Workload, wb: Workload) -> None:
        wa.finish(names[0], self.timers[0], self.last[0])
        wb.finish(names[1], self.timers[1], self.last[1],
                  ab_cpu_ratio=statistics.median(p[0] for p in self.pairs),
                  ab_wall_ratio=statistics.median(p[1] for p in self.pairs))


def run_ab(names: Tuple[str, str], a: List[Workload], b: List[Workload], blocks: int) -> None:
    """Time two variants of a synchronous client in one process, in alternating blocks.

    A B, B A, A B ...: a setting's effect is then measured a few milliseconds
    from its baseline, which a machine shared with other jobs needs when the
    effect is a few percent. Each side is reported as by :func:`run`; side B
    also carries ``ab_cpu_ratio``/``ab_wall_ratio``, the median over block
    pairs of B's cost per op over A's.
    """
    for wa, wb in zip(a, b):
        _prepare(wa)
        _prepare(wb)
        ab = _AB(wa, blocks)
        for block in range(ab.blocks):
            cost = [(0.0, 0.0), (0.0, 0.0)]
            for side in ab.order(block):
                timer, op, mark = ab.timers[side], (wa, wb)[side].op, ab.mark(side)
                for i in timer.steps(ab.size):
                    ab.last[side] = op(i)
                cost[side] = ab.cost(side, mark)
            ab.pair(cost)
        ab.finish(names, wa, wb)


async def run_ab_async(names: Tuple[str, str], a: List[Workload], b: List[Workload], blocks: int) -> None:
    """:func:`run_ab` for two asyncio clients sharing one event loop."""
    for wa, wb in zip(a, b):
        await _prepare_async(wa)
        await _prepare_async(wb)
        ab = _AB(wa, blocks)
        for block in range(ab.blocks):
            cost = [(0.0, 0.0), (0.0, 0.0)]
            for side in ab.order(block):
                timer, op, mark = ab.timers[side], (wa, wb)[side].op, ab.mark(side)
                for i in timer.steps(ab.size):
                    ab.last[side] = await op(i)
                cost[side] = ab.cost(side, mark)
            ab.pair(cost)
        ab.finish(names, wa, wb)


async def run_async(name: str, items: List[Workload]) -> None:
    """Time each workload for an asyncio client (same loop, same Timer, with await)."""
    for w in items:
        if w.name == "tasks":
            await run_tasks(name, w)
            continue
        await _prepare_async(w)
        probe = MemoryProbe() if w.name == "mem" else None
        timer, last = Timer(), None
        for i in timer.steps(w.n):
            last = await w.op(i)
        w.finish(name, timer, last, **(probe.extra() if probe else {}))


def emit(client: str, workload: str, result: Dict[str, Any]) -> None:
    record = {"client": client, "workload": workload, "pid": os.getpid(),
              "python": sys.version.split()[0], **result}
    print(json.dumps(record), flush=True)
