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
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import time
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

VALUE = b"v" * 128
#: Keys are 16-24 bytes, as the issue asks: 19 bytes here, 21 under RANGE_PREFIX.
SEQ_KEY = b"/bench/seq/%08d"
RANGE_PREFIX = b"/bench/range/"
RANGE_KEY = RANGE_PREFIX + b"%08d"
WORKLOADS = ("put", "get", "range")

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
    ) -> None:
        self.name, self.op, self.n, self.warmup = name, op, n, warmup
        self.check, self.setup, self.per_key = check, setup, per_key

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
    }
    return [table[name] for name in args.workloads]


def _prepare(w: Workload) -> None:
    if w.setup is not None:
        w.setup()
    for i in range(w.warmup):
        w.op(i)


def run(name: str, items: List[Workload]) -> None:
    """Time each workload for a synchronous client."""
    for w in items:
        _prepare(w)
        timer, last = Timer(), None
        for i in timer.steps(w.n):
            last = w.op(i)
        w.finish(name, timer, last)


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
        size = max(1, wa.n // blocks)
        timers, last, pairs = (Timer(), Timer()), [None, None], []
        for block in range(min(blocks, wa.n)):
            cost = [(0.0, 0.0), (0.0, 0.0)]
            for side in ((0, 1) if block % 2 == 0 else (1, 0)):
                timer, op = timers[side], (wa, wb)[side].op
                cpu, wall = timer.cpu, timer.wall
                for i in timer.steps(size):
                    last[side] = op(i)
                cost[side] = (timer.cpu - cpu, timer.wall - wall)
            pairs.append((cost[1][0] / cost[0][0] if cost[0][0] else 1.0, cost[1][1] / cost[0][1]))
        wa.finish(names[0], timers[0], last[0])
        wb.finish(names[1], timers[1], last[1],
                  ab_cpu_ratio=statistics.median(p[0] for p in pairs),
                  ab_wall_ratio=statistics.median(p[1] for p in pairs))


async def run_async(name: str, items: List[Workload]) -> None:
    """Time each workload for an asyncio client (same loop, same Timer, with await)."""
    for w in items:
        if w.setup is not None:
            await w.setup()
        for i in range(w.warmup):
            await w.op(i)
        timer, last = Timer(), None
        for i in timer.steps(w.n):
            last = await w.op(i)
        w.finish(name, timer, last)


def emit(client: str, workload: str, result: Dict[str, Any]) -> None:
    record = {"client": client, "workload": workload, "pid": os.getpid(),
              "python": sys.version.split()[0], **result}
    print(json.dumps(record), flush=True)
