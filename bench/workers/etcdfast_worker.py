"""etcdfast under the shared harness (the codec twin follows ETCDFAST_PURE)."""

from __future__ import annotations

import argparse
from typing import Any, Dict

import _harness as h

import etcdfast


def client(args: argparse.Namespace) -> etcdfast.Client:
    # The client's own defaults already raise the receive limit; extra
    # --option/BENCH_GRPC_OPTIONS settings are passed through unchanged.
    extra = [option for option in h.grpc_options(args) if option[0] != "grpc.max_receive_message_length"]
    return etcdfast.Client(args.endpoint, timeout=60, grpc_options=extra)


def primitives(c: etcdfast.Client) -> Dict[str, Any]:
    """The harness primitives, called as a user would."""
    return {
        "put": c.put,
        "get": c.get,
        "prefix": lambda p: h.touch(c.get(p, prefix=True).kvs),
        "value_of": lambda result: result.kvs[0].value,
    }


def name() -> str:
    return f"etcdfast-{etcdfast.IMPLEMENTATION}"


def main() -> None:
    args = h.parse_args()
    with client(args) as c:
        h.run(name(), h.workloads(args, **primitives(c)))


if __name__ == "__main__":
    main()
