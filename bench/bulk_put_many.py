"""put_many throughput by concurrency, on a private real etcd.

Run:  python bench/bulk_put_many.py [--keys 100000] [--repeat 3] [--concurrency 1,2,4,8,16]
      ETCDFAST_PURE=1 python bench/bulk_put_many.py   # the pure-Python twin
      python bench/bulk_put_many.py --aio              # the asyncio client

Starts its own etcd (etcdfast.testing.EtcdServer: tmpfs, --unsafe-no-fsync on
3.5), then for each concurrency setting writes ``--keys`` keys of 24 bytes
with 128-byte values under a fresh prefix and reports the median of
``--repeat`` runs (and the best): keys/s (wall clock), client CPU per key
(``time.process_time``: every thread of this process, grpc's included) and
etcd's CPU per key (from /proc). Settings are interleaved run by run so that
a noisy neighbour on a shared box hurts all of them alike. Figures, not
assertions: DEFAULT_CONCURRENCY in etcdfast/bulk.py cites them.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from typing import Dict, Iterator, List, Tuple

import etcdfast
from etcdfast.testing import EtcdServer

VALUE = b"v" * 128


def items(run: int, n: int) -> Iterator[Tuple[bytes, bytes]]:
    prefix = b"/bulk/%03d/" % run  # 9 bytes + 15 digits = 24-byte keys
    for i in range(n):
        yield prefix + b"%015d" % i, VALUE


def process_cpu(pid: int) -> float:
    """utime + stime of another process, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--concurrency", default="1,2,4,8,16")
    parser.add_argument("--aio", action="store_true", help="use AsyncClient")
    args = parser.parse_args()
    settings = [int(c) for c in args.concurrency.split(",")]
    samples: Dict[int, List[Tuple[float, float, float]]] = {c: [] for c in settings}
    driver = "AsyncClient" if args.aio else "Client"
    print(f"twin={etcdfast.IMPLEMENTATION} driver={driver} keys={args.keys} repeat={args.repeat}")
    with EtcdServer() as server, etcdfast.Client(server.endpoint, timeout=30) as client:
        assert server.pid is not None
        put_many = client.put_many
        if args.aio:
            loop = asyncio.new_event_loop()
            aclient = etcdfast.AsyncClient(server.endpoint, timeout=30)

            def put_many(source, **options):  # type: ignore[no-redef]
                return loop.run_until_complete(aclient.put_many(source, **options))

        put_many(items(999, 5_000))  # warm up the channel and etcd
        run = 0
        for _ in range(args.repeat):
            for concurrency in settings:
                run += 1
                server_cpu = process_cpu(server.pid)
                cpu = time.process_time()
                result = put_many(items(run, args.keys), concurrency=concurrency)
                cpu = time.process_time() - cpu
                server_cpu = process_cpu(server.pid) - server_cpu
                assert result.keys == args.keys
                samples[concurrency].append(
                    (args.keys / result.elapsed, cpu / args.keys * 1e6, server_cpu / args.keys * 1e6)
                )
                client.delete_many(b"/bulk/%03d/" % run, prefix=True)
            client.compact(client.last_revision)
        if args.aio:
            loop.run_until_complete(aclient.close())
            loop.close()
    print(f"{'concurrency':>11} {'keys/s':>9} {'best':>9} {'client us/key':>14} {'etcd us/key':>12}")
    for concurrency in settings:
        rate, client_us, server_us = (statistics.median(s) for s in zip(*samples[concurrency]))
        best = max(sample[0] for sample in samples[concurrency])
        print(f"{concurrency:>11} {rate:>9,.0f} {best:>9,.0f} {client_us:>14.2f} {server_us:>12.2f}")


if __name__ == "__main__":
    main()
