"""``check perf`` and ``check datascale``: etcdctl's cluster checks.

``check perf`` writes random 256-byte keys with 1 KiB values under
``--prefix`` at the workload's rate (s: 150/s, m: 1,000/s, l: 8,000/s, xl:
15,000/s) from the workload's number of concurrent writers (capped at
``MAX_WRITERS`` threads on one client), for 60 seconds, then reports as
etcdctl does: PASS when the throughput reached 90 % of the rate, the slowest
write took at most 0.5 s, the latencies' standard deviation is at most
0.1 s and nothing failed (else FAIL, exit 1). ``--duration`` (etcdfast's)
shortens the run.

``check datascale`` writes the workload's number of 1 KiB key-values
(s: 10,000 ... xl: 3,000,000) and reports the memory the first endpoint's
etcd process grew by (``process_resident_memory_bytes`` from its
``/metrics``). The keys are written with ``put_many`` (batched Txns, several
in flight) rather than one put at a time: the figure is the server's.

Both refuse a prefix that already holds keys (exit 3), delete their keys at
the end, and compact (``--auto-compact``) and defragment every endpoint
(``--auto-defrag``) when asked.
"""

from __future__ import annotations

import json
import random
import statistics
import threading
import time
import urllib.request
from typing import Dict, List, NamedTuple, Optional, Tuple

from .._progress import ProgressBar
from ..errors import EtcdError
from ._context import EXIT_BAD_FEATURE, EXIT_ERROR, EXIT_INVALID_INPUT, EXIT_OK, CliError, Commands, Context
from ._flags import ArgError, Args

__all__ = ["register"]

#: Writer threads at most, whatever the workload's client count: the writes
#: share one client (one channel), and past this many threads the GIL, not
#: concurrency, limits a Python process.
MAX_WRITERS = 64

_ALIASES = {"s": "s", "small": "s", "m": "m", "medium": "m", "l": "l", "large": "l", "xl": "xl",
            "xLarge": "xl"}


class PerfLoad(NamedTuple):
    rate: int
    clients: int
    duration: int


class ScaleLoad(NamedTuple):
    keys: int
    kv_size: int
    clients: int


PERF_LOADS = {"s": PerfLoad(150, 50, 60), "m": PerfLoad(1000, 200, 60), "l": PerfLoad(8000, 500, 60),
              "xl": PerfLoad(15000, 1000, 60)}
SCALE_LOADS = {"s": ScaleLoad(10_000, 1024, 50), "m": ScaleLoad(100_000, 1024, 200),
               "l": ScaleLoad(1_000_000, 1024, 500), "xl": ScaleLoad(3_000_000, 1024, 1000)}


def _model(text: str) -> str:
    model = _ALIASES.get(text)
    if model is None:
        raise CliError(f"unknown load option {text}", EXIT_BAD_FEATURE)
    return model


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ArgError(f"expected seconds, got {text!r}") from None
    if not value > 0:
        raise ArgError(f"must be > 0, got {text!r}")
    return value


def _random_key(prefix: bytes) -> bytes:
    # etcdctl: a 256-byte buffer starting with the varint of a random int63.
    value = random.randrange(1 << 63) << 1  # zig-zag of a non-negative int
    head = bytearray()
    while value > 0x7F:
        head.append((value & 0x7F) | 0x80)
        value >>= 7
    head.append(value)
    return prefix + bytes(head) + bytes(256 - len(head))


def _refuse_used_prefix(ctx: Context, prefix: bytes) -> None:
    if ctx.client().get(prefix, prefix=True, limit=1, keys_only=True).kvs:
        text = prefix.decode(errors="replace")
        quoted = json.dumps(text)  # Go's %q, for the text a prefix is
        raise CliError(f"prefix {quoted} has keys. Delete with etcdctl del --prefix {text} first",
                       EXIT_INVALID_INPUT)


def _clean_up(ctx: Context, args: Args, prefix: bytes) -> None:
    client = ctx.client()
    deleted = client.delete(prefix, prefix=True, timeout=30)
    if args.auto_compact:
        client.compact(deleted.header.revision, physical=True)
    if args.auto_defrag:
        for endpoint in client.endpoints:
            client.defragment(endpoint=endpoint)


class _Writes:
    """What the writers measured: latencies and errors by message."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.latencies: List[float] = []
        self.errors: Dict[str, int] = {}

    def record(self, seconds: float, error: Optional[BaseException]) -> None:
        with self.lock:
            if error is None:
                self.latencies.append(seconds)
            else:
                key = str(error)
                self.errors[key] = self.errors.get(key, 0) + 1


def run_perf(ctx: Context, args: Args) -> int:
    load = PERF_LOADS[_model(args.load)]
    duration = args.duration or load.duration
    prefix = args.prefix.encode()
    client = ctx.client()
    try:
        _refuse_used_prefix(ctx, prefix)
    except EtcdError as exc:
        raise CliError(str(exc), EXIT_ERROR) from None
    value = bytes(1024)
    writes = _Writes()
    started = time.monotonic()
    stop_at = started + duration
    slots = iter(range(1 << 62))  # the n-th write may start at started + n / rate
    slot_lock = threading.Lock()

    def writer() -> None:
        while True:
            with slot_lock:
                n = next(slots)
            due = started + n / load.rate
            if due >= stop_at:
                return
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            begun = time.monotonic()
            error: Optional[BaseException] = None
            try:
                client.put(_random_key(prefix), value)
            except EtcdError as exc:
                error = exc
            writes.record(time.monotonic() - begun, error)

    bar = ProgressBar(int(duration), label="check perf", unit="s", stream=ctx.stderr,
                      enabled=ctx.progress_enabled())
    threads = [threading.Thread(target=writer, name=f"etcdfast-check-{i}", daemon=True)
               for i in range(min(load.clients, MAX_WRITERS))]
    for thread in threads:
        thread.start()
    while any(t.is_alive() for t in threads):
        threads[0].join(0.5)
        for thread in threads:
            thread.join(0)
        bar.update(min(int(time.monotonic() - started), int(duration)))
    bar.close()
    elapsed = time.monotonic() - started
    try:
        _clean_up(ctx, args, prefix)
    except EtcdError as exc:
        raise CliError(str(exc), EXIT_ERROR) from None
    return _report_perf(ctx, writes, elapsed, load.rate)


def _report_perf(ctx: Context, writes: _Writes, elapsed: float, rate: int) -> int:
    out = ctx.stdout
    ok = True
    if writes.errors:
        out.write("FAIL: too many errors\n")
        for message, count in writes.errors.items():
            out.write(f"FAIL: ERROR({message}) -> {count}\n")
        ok = False
    done = len(writes.latencies)
    rps = done / elapsed if elapsed > 0 else 0.0
    if rps / rate <= 0.9:
        out.write(f"FAIL: Throughput too low: {int(rps) + 1} writes/s\n")
        ok = False
    else:
        out.write(f"PASS: Throughput is {int(rps) + 1} writes/s\n")
    slowest = max(writes.latencies, default=0.0)
    stddev = statistics.pstdev(writes.latencies) if done > 1 else 0.0
    if slowest > 0.5:
        out.write(f"Slowest request took too long: {slowest:f}s\n")
        ok = False
    else:
        out.write(f"PASS: Slowest request took {slowest:f}s\n")
    if stddev > 0.1:
        out.write(f"Stddev too high: {stddev:f}s\n")
        ok = False
    else:
        out.write(f"PASS: Stddev is {stddev:f}s\n")
    out.write("PASS\n" if ok else "FAIL\n")
    return EXIT_OK if ok else EXIT_ERROR


def resident_memory(ctx: Context, endpoint: str) -> float:
    """``process_resident_memory_bytes`` from the member's ``/metrics`` (0 if unreadable)."""
    url = endpoint if "://" in endpoint else f"http://{endpoint}"
    context = None
    if url.startswith("https://"):
        import ssl

        cafile = ctx.args.cacert or None
        context = ssl.create_default_context(cafile=cafile)
        if ctx.args.cert_file:
            context.load_cert_chain(ctx.args.cert_file, ctx.args.key_file or None)
        if ctx.args.insecure_skip_tls_verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
    try:
        with urllib.request.urlopen(url.rstrip("/") + "/metrics", timeout=10, context=context) as answer:
            for line in answer.read().decode().splitlines():
                if line.startswith("process_resident_memory_bytes "):
                    return float(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0.0


def run_datascale(ctx: Context, args: Args) -> int:
    load = SCALE_LOADS[_model(args.load)]
    keys = args.keys or load.keys
    prefix = args.prefix.encode()
    client = ctx.client()
    try:
        _refuse_used_prefix(ctx, prefix)
    except EtcdError as exc:
        raise CliError(str(exc), EXIT_ERROR) from None
    before = resident_memory(ctx, ctx.endpoints[0])
    if not before:
        ctx.stdout.write("FAIL: Could not read process_resident_memory_bytes before the put operations.\n")
        return EXIT_ERROR
    ctx.stdout.write(f"Start data scale check for work load [{keys} key-value pairs, {load.kv_size} bytes "
                     f"per key-value, {load.clients} concurrent clients].\n")
    ctx.stdout.flush()
    value = bytes(load.kv_size - 512)
    bar = ProgressBar(keys, label="check datascale", unit="keys", stream=ctx.stderr,
                      enabled=ctx.progress_enabled())
    items = ((_random_key(prefix)[:512], value) for _ in range(keys))
    errors: List[Tuple[str, int]] = []
    try:
        client.put_many(items, concurrency=min(load.clients, 16), progress=bar.update)
    except EtcdError as exc:
        errors.append((str(exc), 1))
    finally:
        bar.close()
    after = resident_memory(ctx, ctx.endpoints[0])
    try:
        _clean_up(ctx, args, prefix)
    except EtcdError as exc:
        raise CliError(str(exc), EXIT_ERROR) from None
    if not after:
        ctx.stdout.write("FAIL: Could not read process_resident_memory_bytes after the put operations.\n")
        return EXIT_ERROR
    if errors:
        ctx.stdout.write("FAIL: too many errors\n")
        for message, count in errors:
            ctx.stdout.write(f"FAIL: ERROR({message}) -> {count}\n")
        return EXIT_ERROR
    ctx.stdout.write(f"PASS: Approximate system memory used : {(after - before) / (1024 * 1024):.2f} MB.\n")
    return EXIT_OK


def register(commands: Commands) -> None:
    check = commands.group("check", help="commands for checking properties of the etcd cluster")
    perf = p = check.add("perf", run_perf, help="Check the performance of the etcd cluster",
                  usage="check perf [options]", description=__doc__)
    p.add_argument("--load", default="s", help="The performance check's workload model. "
                   "Accepted workloads: s(small), m(medium), l(large), xl(xLarge)")
    p.add_argument("--prefix", default="/etcdctl-check-perf/",
                   help="The prefix for writing the performance check's keys.")
    p.add_argument("--duration", type=_seconds, default=0.0,
                   help="seconds to write for (etcdfast's; default: the workload's 60)")
    p = check.add("datascale", run_datascale,
                  help="Check the memory usage of holding data for different workloads on a given "
                       "server endpoint.", usage="check datascale [options]", description=__doc__)
    p.add_argument("--load", default="s", help="The datascale check's workload model. "
                   "Accepted workloads: s(small), m(medium), l(large), xl(xLarge)")
    p.add_argument("--prefix", default="/etcdctl-check-datascale/",
                   help="The prefix for writing the datascale check's keys.")
    p.add_argument("--keys", type=lambda t: int(_seconds(t)), default=0,
                   help="key-values to write (etcdfast's; default: the workload's)")
    for cmd in (perf, p):
        cmd.add_argument("--auto-compact", action="store_true",
                         help="Compact storage with last revision after test is finished.")
        cmd.add_argument("--auto-defrag", action="store_true",
                         help="Defragment storage after test is finished.")

