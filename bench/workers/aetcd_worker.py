"""aetcd (asyncio) under the shared harness; runs in its own venv.

Best methods from aetcd 1.0.0's source: ``get`` (its only single-key read;
it wraps the answer in ``rtypes.Get``), ``put``, and ``get_prefix``, whose
``.kvs`` is the raw protobuf list -- the fastest way to the data, as aetcd's
own docs say. ``--api typical`` iterates the result instead, the documented
way, which wraps each key in an aetcd KeyValue.
"""

from __future__ import annotations

import argparse
import asyncio

import _harness as h
import aetcd


def extend(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--api", choices=["best", "typical"], default="best")


async def main(args: argparse.Namespace) -> None:
    host, port = h.host_port(args.endpoint)
    # aetcd takes the channel options as a dict.
    async with aetcd.Client(host=host, port=port, timeout=60, options=dict(h.grpc_options(args))) as client:

        async def prefix(key: bytes) -> object:
            result = await client.get_prefix(key)
            return h.touch(result.kvs if args.api == "best" else list(result))

        items = h.workloads(
            args, put=client.put, get=client.get, prefix=prefix, value_of=lambda r: r.value,
        )
        await h.run_async("aetcd" if args.api == "best" else "aetcd-typical", items)


if __name__ == "__main__":
    asyncio.run(main(h.parse_args(extend)))
