"""``demo``: write, read back and verify many keys, then show what it cost.

1. starts an embedded etcd (or, with ``--endpoints``, uses that cluster under
   a unique prefix that is deleted afterwards);
2. writes ``--keys`` generated keys (24 bytes; 128-byte values) with
   ``Client.put_many``;
3. reads them all back with one streaming, consistent range
   (``Client.iter_range``) and checks the count and a checksum;
4. checks that a watch sees a burst of writes, in order;
5. prints keys/s and the client's CPU time per key for each phase.

CPU time is this process's (``time.process_time``: Python plus grpc's
threads), so it shows the client's own cost, not the server's.
"""

from __future__ import annotations

import hashlib
import random
import threading
import time
from typing import Any, Dict, List, Optional, Tuple

from .. import IMPLEMENTATION, Client
from .._progress import ProgressBar
from ..errors import EtcdError
from ._context import EXIT_ERROR, EXIT_OK, CliError, Commands, Context
from ._embedded import Target, target
from ._flags import ArgError, Args
from .output import dumps, render_table

__all__ = ["register", "generate"]

WATCH_EVENTS = 200


def generate(prefix: bytes, count: int, key_size: int, value_size: int, seed: int = 0
             ) -> Tuple[List[Tuple[bytes, bytes]], bytes]:
    """``count`` items in key order, and the SHA-256 of all keys and values.

    Keys are ``prefix`` + a zero-padded number, ``key_size`` bytes in all
    (longer if the prefix and the count need it); values are pseudo-random.
    """
    width = max(key_size - len(prefix), len(str(max(count - 1, 0))))
    blob = random.Random(seed).randbytes(count * value_size) if value_size else b""
    items = []
    digest = hashlib.sha256()
    for i in range(count):
        key = prefix + str(i).zfill(width).encode()
        value = blob[i * value_size:(i + 1) * value_size]
        items.append((key, value))
        digest.update(key)
        digest.update(value)
    return items, digest.digest()


class Phase:
    def __init__(self, name: str, keys: int, seconds: float, cpu: float, note: str = "") -> None:
        self.name = name
        self.keys = keys
        self.seconds = seconds
        self.cpu = cpu
        self.note = note

    @property
    def rate(self) -> float:
        return self.keys / self.seconds if self.seconds > 0 else 0.0

    @property
    def cpu_us_per_key(self) -> float:
        return self.cpu * 1e6 / self.keys if self.keys else 0.0


def _write(ctx: Context, client: Client, items: List[Tuple[bytes, bytes]]) -> Phase:
    with ProgressBar(len(items), label="write", unit="keys", stream=ctx.stderr,
                     enabled=ctx.progress_enabled()) as bar:
        cpu, wall = time.process_time(), time.perf_counter()
        result = client.put_many(items, progress=bar.update)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    if result.keys != len(items):
        raise CliError(f"demo: put_many wrote {result.keys} keys, expected {len(items)}", EXIT_ERROR)
    return Phase("write (put_many)", result.keys, wall, cpu, f"{result.batches} txns")


def _read(ctx: Context, client: Client, prefix: bytes, expected: int, digest: bytes) -> Phase:
    kvs: List[Any] = []
    with ProgressBar(expected, label="read", unit="keys", stream=ctx.stderr,
                     enabled=ctx.progress_enabled()) as bar:
        cpu, wall = time.process_time(), time.perf_counter()
        iterator = client.iter_range(prefix, prefix=True)
        for kv in iterator:
            kvs.append(kv)
            if len(kvs) % 1000 == 0:
                bar.update(len(kvs))
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        bar.update(len(kvs))
    # Verified outside the timed part: the table shows the cost of reading.
    check = hashlib.sha256()
    for kv in kvs:
        check.update(kv.key)
        check.update(kv.value)
    if len(kvs) != expected:
        raise CliError(f"demo: read back {len(kvs)} keys, expected {expected}", EXIT_ERROR)
    if check.digest() != digest:
        raise CliError("demo: the keys read back differ from those written (checksum mismatch)",
                       EXIT_ERROR)
    return Phase("read (iter_range)", len(kvs), wall, cpu,
                 f"revision {iterator.revision}, checksum ok")


def _watch(ctx: Context, client: Client, prefix: bytes) -> Optional[Phase]:
    if not hasattr(client, "watch"):
        return None
    wprefix = prefix + b"~watch/"
    items = [(wprefix + b"%06d" % i, b"v%d" % i) for i in range(WATCH_EVENTS)]
    received: List[Tuple[int, bytes]] = []
    failure: List[BaseException] = []
    cpu, wall = time.process_time(), time.perf_counter()
    watch = client.watch(wprefix, prefix=True)
    try:
        def consume() -> None:
            try:
                for event in watch:
                    kv = getattr(event, "kv", None)
                    if kv is not None:
                        received.append((kv.mod_revision, kv.key))
                    if len(received) >= len(items):
                        return
            except BaseException as exc:  # reported below
                failure.append(exc)

        reader = threading.Thread(target=consume, name="etcdfast-demo-watch", daemon=True)
        reader.start()
        client.put_many(items)
        reader.join(timeout=max(10.0, ctx.command_timeout))
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    finally:
        watch.cancel()
    if failure:
        raise CliError(f"demo: the watch failed: {failure[0]}", EXIT_ERROR)
    # put_many's batches may commit in any order; the watch must deliver every
    # key once, in revision order.
    if sorted(key for _, key in received) != [key for key, _ in items]:
        raise CliError(f"demo: the watch saw {len(received)} events for {len(items)} writes, "
                       "not one per key", EXIT_ERROR)
    if [rev for rev, _ in received] != sorted(rev for rev, _ in received):
        raise CliError("demo: the watch delivered events out of revision order", EXIT_ERROR)
    return Phase("watch (put + events)", len(items), wall, cpu, "all events, in revision order")


def run_demo(ctx: Context, args: Args) -> int:
    with target(ctx, "demo") as where:
        return _demo(ctx, args, where)


def _demo(ctx: Context, args: Args, where: Target) -> int:
    client = where.client
    ctx.note(f"demo: {where.description}")
    items, digest = generate(where.prefix, args.keys, args.key_size, args.value_size)
    phases = [_write(ctx, client, items)]
    phases.append(_read(ctx, client, where.prefix, len(items), digest))
    del items
    try:
        watched = _watch(ctx, client, where.prefix)
    except EtcdError as exc:
        raise CliError(f"demo: watch check failed: {exc}", EXIT_ERROR) from None
    if watched is None:
        ctx.note("demo: watch check skipped (this client has no watch support)")
    else:
        phases.append(watched)

    if ctx.write_out == "json":
        ctx.out.line(dumps({
            "codec": IMPLEMENTATION, "etcd_version": where.etcd_version, "target": where.description,
            "key_size": args.key_size, "value_size": args.value_size,
            "phases": [_phase_json(p) for p in phases],
        }))
        return EXIT_OK
    rows = [[p.name, f"{p.keys:,}", f"{p.seconds:.3f}", f"{p.rate:,.0f}", f"{p.cpu_us_per_key:.1f}", p.note]
            for p in phases]
    ctx.out.write(render_table(["PHASE", "KEYS", "SECONDS", "KEYS/S", "CPU µS/KEY", "NOTE"], rows))
    ctx.out.line(f"codec: {IMPLEMENTATION}    etcd: {where.etcd_version}    "
                 f"keys: {args.key_size} B, values: {args.value_size} B")
    return EXIT_OK


def _phase_json(p: Phase) -> Dict[str, Any]:
    return {"phase": p.name, "keys": p.keys, "seconds": round(p.seconds, 6),
            "keys_per_second": round(p.rate, 1), "cpu_us_per_key": round(p.cpu_us_per_key, 2),
            "note": p.note}


def _count(text: str) -> int:
    try:
        value = int(text.replace("_", "").replace(",", ""))
    except ValueError:
        raise ArgError(f"expected a whole number, got {text!r}") from None
    if not 1 <= value <= 10_000_000:
        raise ArgError("must be between 1 and 10,000,000")
    return value


def _size(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 1024 * 1024:
        raise ArgError("must be between 0 and 1048576")
    return value


def register(commands: Commands) -> None:
    p = commands.add("demo", run_demo, help="write, read back and verify N keys; show the cost",
                     description=__doc__)
    p.add_argument("--keys", type=_count, default=100_000, help="how many keys (default 100000)")
    p.add_argument("--key-size", type=_size, default=24, help="key size in bytes (default 24)")
    p.add_argument("--value-size", type=_size, default=128, help="value size in bytes (default 128)")
