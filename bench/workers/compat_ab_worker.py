"""etcdfast's native API and its python-etcd3 drop-in in one process, timed in alternating blocks.

Side A is ``etcdfast.Client`` (etcdfast_worker's primitives), side B
``etcdfast.compat.etcd3`` through python-etcd3's API (etcd3_worker's
primitives: ``--api best`` = ``get_response``/``get_prefix_response``,
``--api typical`` = ``get``/``get_prefix`` and their ``(value, KVMetadata)``
pairs, collected in a list; ``--api stream`` = the same pairs iterated
without keeping them). Each has its own channel and connection; side B carries
``ab_cpu_ratio``, the compat layer's client CPU per op over the native
API's (median over block pairs, see _harness.run_ab): what the translation
costs, measured where a shared machine's load hits both sides alike.
"""

from __future__ import annotations

import argparse

import _harness as h
import etcd3_worker
import etcdfast_worker

COMPAT = "etcdfast.compat.etcd3"


def extend(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--blocks", type=int, default=20, help="alternating blocks per workload")
    parser.add_argument("--api", choices=["best", "typical", "stream"], default="best")


def main() -> None:
    args = h.parse_args(extend)
    compat = etcd3_worker.connect(COMPAT, args)
    try:
        with etcdfast_worker.client(args) as native:
            h.run_ab(
                ("etcdfast-native", etcd3_worker.name(COMPAT, args.api)),
                h.workloads(args, **etcdfast_worker.primitives(native)),
                h.workloads(args, **etcd3_worker.primitives(compat, args.api)),
                args.blocks,
            )
    finally:
        compat.close()


if __name__ == "__main__":
    main()
