"""etcdfast under the shared harness (the codec twin follows ETCDFAST_PURE).

``--async`` runs the asyncio ``AsyncClient`` instead of the sync ``Client``.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any, Dict

import _harness as h

import etcdfast


def extend(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--async", dest="use_async", action="store_true", help="run the AsyncClient")


def _options(args: argparse.Namespace) -> Dict[str, Any]:
    # The client's own defaults already raise the receive limit; extra
    # --option/BENCH_GRPC_OPTIONS settings are passed through unchanged.
    extra = [option for option in h.grpc_options(args) if option[0] != "grpc.max_receive_message_length"]
    return {"timeout": 60, "grpc_options": extra}


def client(args: argparse.Namespace) -> etcdfast.Client:
    return etcdfast.Client(args.endpoint, **_options(args))


def async_client(args: argparse.Namespace) -> etcdfast.AsyncClient:
    return etcdfast.AsyncClient(args.endpoint, **_options(args))


def primitives(c: etcdfast.Client) -> Dict[str, Any]:
    """The harness primitives, called as a user would."""
    return {
        "put": c.put,
        "get": c.get,
        "prefix": lambda p: h.touch(c.get(p, prefix=True).kvs),
        "value_of": lambda result: result.kvs[0].value,
    }


def async_primitives(c: etcdfast.AsyncClient) -> Dict[str, Any]:
    """The same for the AsyncClient (each returns an awaitable)."""

    async def prefix(p: bytes) -> Any:
        return h.touch((await c.get(p, prefix=True)).kvs)

    return {"put": c.put, "get": c.get, "prefix": prefix, "value_of": lambda result: result.kvs[0].value}


def name(use_async: bool = False) -> str:
    return f"etcdfast-{'async-' if use_async else ''}{etcdfast.IMPLEMENTATION}"


async def main_async(args: argparse.Namespace) -> None:
    async with async_client(args) as c:
        await h.run_async(name(True), h.workloads(args, **async_primitives(c)))


def main() -> None:
    args = h.parse_args(extend)
    if args.use_async:
        asyncio.run(main_async(args))
        return
    with client(args) as c:
        h.run(name(), h.workloads(args, **primitives(c)))


if __name__ == "__main__":
    main()
