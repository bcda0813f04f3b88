"""etcdfast and raw grpcio in one process, timed in alternating blocks.

The cleanest answer to "what does etcdfast add to a grpcio call": both run
in the same process against the same server, a few hundred calls at a time
(A B, B A, ...; see _harness.run_ab), so load from other jobs on the machine
hits both sides alike. Each uses its own channel and connection. Side B
(etcdfast, whichever twin ETCDFAST_PURE selects) carries ``ab_cpu_ratio``:
its client CPU per call over raw grpcio's, the median over block pairs.
``--async``: the same for the AsyncClient against raw grpc.aio, both on one
event loop.
"""

from __future__ import annotations

import argparse
import asyncio

import _harness as h
import etcdfast_worker
import grpc
import raw_grpc_worker


def extend(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--blocks", type=int, default=20, help="alternating blocks per workload")
    etcdfast_worker.extend(parser)


async def main_async(args: argparse.Namespace, raw_args: argparse.Namespace) -> None:
    async with grpc.aio.insecure_channel(args.endpoint, options=h.grpc_options(raw_args)) as channel, \
            etcdfast_worker.async_client(args) as client:
        await h.run_ab_async(
            ("raw-grpcio-aio", etcdfast_worker.name(True)),
            raw_grpc_worker.aio_workloads(raw_args, channel),
            h.workloads(args, **etcdfast_worker.async_primitives(client)),
            args.blocks,
        )


def main() -> None:
    args = h.parse_args(extend)
    raw_args = argparse.Namespace(**{**vars(args), **raw_grpc_worker.DEFAULTS})
    if args.use_async:
        asyncio.run(main_async(args, raw_args))
        return
    with grpc.insecure_channel(args.endpoint, options=h.grpc_options(raw_args)) as channel, \
            etcdfast_worker.client(args) as client:
        h.run_ab(
            ("raw-grpcio", etcdfast_worker.name()),
            raw_grpc_worker.workloads(raw_args, channel),
            h.workloads(args, **etcdfast_worker.primitives(client)),
            args.blocks,
        )


if __name__ == "__main__":
    main()
