"""Bulk-benchmark worker: import N keys, or stream them back, with one client.

One script for every client (``--client``), so the timing, the input and
the consumer loop exist once and every client is measured by the same code:

* ``etcdfast`` -- ``Client.put_many`` with its defaults; ``iter_range``, and
  for comparison ``get(prefix=True)`` (one Range, not streaming);
  ETCDFAST_PURE picks the codec twin;
* ``raw`` -- the floor: grpcio's ``KV/Txn`` called with request bytes encoded
  before the clock starts, several in flight, answers not decoded (import only);
* ``etcd3`` / ``pyetcd`` -- python-etcd3 0.12.0 / etcd-sdk-python, which share
  python-etcd3's API: ``transaction()`` of 128 puts from a thread pool;
  ``get_prefix_response`` (one Range of everything), or for etcd-sdk-python,
  whose ``get_range_response`` honours ``limit``/``revision``, also pages;
* ``aetcd`` -- ``transaction()`` of 128 puts, several coroutines at once;
  ``get_prefix`` (one Range: aetcd drops ``limit``, so it cannot page).

Peers run from their own virtualenvs, so this file needs only the stdlib,
``_harness`` (stdlib only) and the client under test. Protocol with
``bench/bulk_e2e.py``: one JSON line on stdout (via ``_harness.emit``).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib
import os
import resource
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Dict, Iterable, Iterator, List, NamedTuple, Optional, Tuple

import _harness as h

#: Every key is this long (prefix + zero-padded index); values are h.VALUE (128 bytes).
KEY_BYTES = 24
#: Puts per Txn: etcd's default --max-txn-ops, what every bulk loader uses.
TXN_OPS = 128
#: Same message limits for every client: etcdfast's defaults (Go's client
#: sends up to 2 MiB and receives without limit). Without the raised receive
#: limit the peers could not read a 1M-key prefix in one Range at all.
GRPC_OPTIONS: List[Tuple[str, Any]] = [
    ("grpc.max_receive_message_length", h.MAX_RECEIVE),
    ("grpc.max_send_message_length", 2 * 1024 * 1024),
]
TIMEOUT = 600.0  # per call: a 1M-key Range decoded by pure-Python protobuf is slow
#: Txns in flight when --concurrency is not given (put_many's default, for the others).
FALLBACK_CONCURRENCY = 4

Item = Tuple[bytes, bytes]
Importer = Callable[[List[Item], int], Callable[[], int]]
Reader = Callable[[bytes, Optional[int]], Iterable[Any]]


class Driver(NamedTuple):
    """How one client imports and reads; see the comment above the clients."""

    name: str
    importer: Importer
    reader: Reader
    close: Callable[[], None]
    #: One cheap call before anything is timed, to connect the channel and load
    #: the code; None: read an empty prefix through the reader being measured.
    warm: Optional[Callable[[], None]] = None


def prefix_end(prefix: bytes) -> bytes:
    return prefix[:-1] + bytes([prefix[-1] + 1])


def batches(items: List[Item]) -> Iterator[List[Item]]:
    return (items[i:i + TXN_OPS] for i in range(0, len(items), TXN_OPS))


# -- the clients ------------------------------------------------------------------
# Each returns a Driver. importer(items, concurrency) does any untimed
# preparation and returns the timed call, which answers the number of keys the
# client says it wrote; reader(prefix, page_size) returns the key-values of
# the prefix as an iterable: page_size None is the client's own way (etcdfast:
# iter_range's default page size; the peers: one Range), 0 one Range of
# everything, N > 0 pages of N keys.


def etcdfast_client(endpoint: str) -> Driver:
    import etcdfast

    client = etcdfast.Client(endpoint, timeout=TIMEOUT, max_receive_message_length=GRPC_OPTIONS[0][1],
                             max_send_message_length=GRPC_OPTIONS[1][1])

    def importer(items: List[Item], concurrency: int) -> Callable[[], int]:
        # put_many's defaults (concurrency included) unless one was asked for.
        return lambda: client.put_many(items, concurrency=concurrency or None).keys

    def reader(prefix: bytes, page_size: Optional[int]) -> Iterable[Any]:
        if page_size is None:
            return client.iter_range(prefix, prefix=True)
        if page_size == 0:  # not streaming: shows what the server costs without paging
            return client.get(prefix, prefix=True).kvs
        return client.iter_range(prefix, prefix=True, page_size=page_size)

    return Driver(f"etcdfast-{etcdfast.IMPLEMENTATION}", importer, reader, client.close)


def raw_client(endpoint: str) -> Driver:
    import grpc

    from etcdfast._codec import wire

    channel = grpc.insecure_channel(endpoint, options=GRPC_OPTIONS)
    txn = channel.unary_unary("/etcdserverpb.KV/Txn")

    def importer(items: List[Item], concurrency: int) -> Callable[[], int]:
        payloads = [wire.encode_put_txn(batch, 0) for batch in batches(items)]
        in_flight = concurrency or FALLBACK_CONCURRENCY

        def run() -> int:
            # A FIFO window of futures: the least a caller can do per call.
            window: "deque[Any]" = deque()
            for payload in payloads:
                if len(window) >= in_flight:
                    window.popleft().result()
                window.append(txn.future(payload, timeout=TIMEOUT))
            for call in window:
                call.result()
            return len(items)

        return run

    def reader(prefix: bytes, page_size: Optional[int]) -> Iterable[Any]:
        raise SystemExit("the raw floor only imports")

    # An empty TxnRequest: valid, read-only (no raft round), answers at once.
    return Driver("raw-grpcio", importer, reader, channel.close, warm=lambda: txn(b"", timeout=TIMEOUT))


def etcd3_like_client(module: str, endpoint: str) -> Driver:
    package = importlib.import_module(module)
    host, port = h.host_port(endpoint)
    client = package.client(host, port, timeout=TIMEOUT, grpc_options=GRPC_OPTIONS)
    put = client.transactions.put

    def importer(items: List[Item], concurrency: int) -> Callable[[], int]:
        def run() -> int:
            source, lock, written = batches(items), threading.Lock(), [0]

            def work() -> None:
                while True:
                    with lock:  # a generator is not thread-safe
                        batch = next(source, None)
                    if batch is None:
                        return
                    ok, responses = client.transaction(
                        compare=[], success=[put(k, v) for k, v in batch], failure=[])
                    if ok and len(responses) == len(batch):
                        with lock:
                            written[0] += len(batch)

            # Sync API: a thread per Txn in flight.
            in_flight = concurrency or FALLBACK_CONCURRENCY
            with ThreadPoolExecutor(in_flight) as pool:
                for future in [pool.submit(work) for _ in range(in_flight)]:
                    future.result()
            return written[0]

        return run

    def paged(prefix: bytes, page_size: int) -> Iterator[Any]:
        # What a user of get_range_response(limit=, revision=) writes to page:
        # pin the first page's revision, restart after the last key.
        start, end, revision = prefix, prefix_end(prefix), None
        while True:
            response = client.get_range_response(start, end, limit=page_size, revision=revision)
            revision = revision or response.header.revision
            kvs = response.kvs
            yield from kvs
            if not response.more or not kvs:
                return
            start = kvs[-1].key + b"\0"

    def reader(prefix: bytes, page_size: Optional[int]) -> Iterable[Any]:
        if page_size:
            if module != "pyetcd":  # 0.12.0 drops limit and revision: it would read everything each time
                raise SystemExit(f"{module} has no paged range")
            return paged(prefix, page_size)
        # The RangeResponse itself: the fastest way to the data (no KVMetadata per key).
        return client.get_prefix_response(prefix).kvs  # type: ignore[no-any-return]

    name = {"etcd3": "python-etcd3", "pyetcd": "etcd-sdk-python"}[module]
    return Driver(name, importer, reader, client.close)


def aetcd_client(endpoint: str) -> Driver:
    import aetcd

    loop = asyncio.new_event_loop()
    host, port = h.host_port(endpoint)
    client = aetcd.Client(host=host, port=port, timeout=TIMEOUT, options=dict(GRPC_OPTIONS))
    loop.run_until_complete(client.connect())
    put = client.transactions.put

    def importer(items: List[Item], concurrency: int) -> Callable[[], int]:
        async def run() -> int:
            source, written = batches(items), [0]

            async def work() -> None:
                for batch in source:  # shared by the coroutines: one loop, no lock needed
                    ok, responses = await client.transaction(
                        compare=[], success=[put(k, v) for k, v in batch], failure=[])
                    if ok and len(responses) == len(batch):
                        written[0] += len(batch)

            await asyncio.gather(*(work() for _ in range(concurrency or FALLBACK_CONCURRENCY)))
            return written[0]

        return lambda: loop.run_until_complete(run())

    def reader(prefix: bytes, page_size: Optional[int]) -> Iterable[Any]:
        if page_size:
            raise SystemExit("aetcd drops limit: it has no paged range")
        # .kvs is the raw protobuf list: aetcd's fastest way to the data.
        return loop.run_until_complete(client.get_prefix(prefix)).kvs  # type: ignore[no-any-return]

    def close() -> None:
        loop.run_until_complete(client.close())
        loop.close()

    return Driver("aetcd", importer, reader, close)


CLIENTS: Dict[str, Callable[[str], Driver]] = {
    "etcdfast": etcdfast_client,
    "raw": raw_client,
    "aetcd": aetcd_client,
    "etcd3": lambda endpoint: etcd3_like_client("etcd3", endpoint),
    "pyetcd": lambda endpoint: etcd3_like_client("pyetcd", endpoint),
}


# -- measuring ----------------------------------------------------------------------


def server_cpu(pid: int) -> Optional[float]:
    """utime + stime of the etcd process in seconds (None if it cannot be read)."""
    if not pid:
        return None
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def status_mb(field: str) -> float:
    """A size line of /proc/self/status (VmRSS: now, VmHWM: the peak), in MiB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise LookupError(field)


def reset_peak_rss() -> None:
    """Restart VmHWM from the current RSS (Linux >= 4.0), so the peak is the read's own.

    ru_maxrss cannot be reset, and on Linux it also carries the peak of the
    parent's memory at fork (the orchestrator's, ~50 MB), which could hide a
    small client's read entirely; it is reported too, but VmHWM is what counts.
    """
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass  # the peak then includes start-up: it can only overstate the growth


def ru_maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def consume(kvs: Iterable[Any]) -> Tuple[int, int]:
    """The one consumer loop: read every key and value, as any user of a read does.

    A client that decodes lazily (protobuf objects) pays here what it skipped
    in the call, so every client is charged for the data actually used.
    """
    count = size = 0
    for kv in kvs:
        size += len(kv.key) + len(kv.value)
        count += 1
    return count, size


def timed(run: Callable[[], Any], pid: int) -> Tuple[Any, Dict[str, Optional[float]]]:
    """Run once; wall, client CPU (every thread of this process) and etcd CPU."""
    server0, cpu0, wall0 = server_cpu(pid), time.process_time(), time.perf_counter()
    result = run()
    wall, cpu, server1 = time.perf_counter() - wall0, time.process_time() - cpu0, server_cpu(pid)
    server = None if server0 is None or server1 is None else server1 - server0
    return result, {"wall_s": wall, "cpu_s": cpu, "server_cpu_s": server}


def per_key(figures: Dict[str, Optional[float]], keys: int) -> Dict[str, Optional[float]]:
    server = figures["server_cpu_s"]
    return {
        **figures,
        "keys_per_s": keys / figures["wall_s"] if keys and figures["wall_s"] else 0.0,
        "cpu_us_per_key": (figures["cpu_s"] or 0.0) / max(keys, 1) * 1e6,
        "server_cpu_us_per_key": None if server is None else server / max(keys, 1) * 1e6,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--client", choices=sorted(CLIENTS), required=True)
    parser.add_argument("--phase", choices=["import", "read"], required=True)
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--prefix", required=True, help=f"fresh key prefix; keys are {KEY_BYTES} bytes")
    parser.add_argument("--keys", type=int, required=True, help="keys to import / expected on read")
    parser.add_argument("--concurrency", type=int, default=0, help="Txns in flight (0: the default)")
    parser.add_argument("--page-size", type=int, help="read: keys per Range (0: one Range; "
                        "default: the client's own way, see above)")
    parser.add_argument("--server-pid", type=int, default=0, help="etcd's PID, for its CPU time")
    args = parser.parse_args()
    prefix = args.prefix.encode()
    width = KEY_BYTES - len(prefix)
    if width < len(str(max(args.keys - 1, 0))):
        raise SystemExit(f"prefix {args.prefix!r} leaves no room for {args.keys} {KEY_BYTES}-byte keys")
    driver = CLIENTS[args.client](args.endpoint)
    try:
        if driver.warm is not None:
            driver.warm()
        else:
            consume(driver.reader(prefix + b"\xff-warm-up", args.page_size))
        if args.phase == "import":
            fmt = b"%0" + str(width).encode() + b"d"
            items = [(prefix + fmt % i, h.VALUE) for i in range(args.keys)]
            run = driver.importer(items, args.concurrency)
            # The input list is the benchmark's, not the client's: keep its
            # million objects out of the cyclic GC's scans for every client alike.
            gc.collect()
            gc.freeze()
            written, figures = timed(run, args.server_pid)
            result = {"phase": "import", "keys": args.keys, "claimed": written,
                      "concurrency": args.concurrency, **per_key(figures, args.keys)}
        else:
            gc.collect()
            reset_peak_rss()
            idle = status_mb("VmRSS")  # the idle client, right before the read
            page_size = args.page_size
            (count, size), figures = timed(lambda: consume(driver.reader(prefix, page_size)),
                                           args.server_pid)
            peak = status_mb("VmHWM")
            result = {"phase": "read", "keys": count, "bytes": size, "page_size": args.page_size,
                      "rss_idle_mb": idle, "rss_peak_mb": peak, "rss_growth_mb": peak - idle,
                      "ru_maxrss_mb": ru_maxrss_mb(), **per_key(figures, count)}
    finally:
        driver.close()
    h.emit(driver.name, args.phase, result)


if __name__ == "__main__":
    main()
