"""The floor: grpcio called with hand-made request bytes and no decoding.

No client can spend less client CPU per call than grpcio itself; this worker
measures that cost so etcdfast's own overhead can be stated as a ratio. Every
request is encoded before the timed loop, and responses are not decoded.

The flags below change how grpcio is called, so bench/grpc_settings.py can
measure which settings make that floor lower (channel options come through
``--option``/``BENCH_GRPC_OPTIONS``, environment variables through the
process environment).
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any, Callable, Dict, List

import _harness as h
import grpc

PUT = "/etcdserverpb.KV/Put"
RANGE = "/etcdserverpb.KV/Range"


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        low, n = n & 0x7F, n >> 7
        out.append(low | (0x80 if n else 0))
        if not n:
            return bytes(out)


def field(tag: int, data: bytes) -> bytes:
    return bytes([tag]) + varint(len(data)) + data


def put_request(key: bytes, value: bytes) -> bytes:
    return field(0x0A, key) + field(0x12, value)


def range_request(key: bytes, range_end: bytes = b"") -> bytes:
    return field(0x0A, key) + (field(0x12, range_end) if range_end else b"")


def extend(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--call", default="call", choices=["call", "with_call", "future", "per-call-handle", "aio"],
        help="how grpcio is called: the multicallable, .with_call, .future().result(), "
             "a new multicallable per call, or grpc.aio from an asyncio loop",
    )
    parser.add_argument("--timeout", type=float, default=60.0, help="per-call deadline; 0 for none")
    parser.add_argument("--wait-for-ready", action="store_true")
    parser.add_argument("--metadata", action="store_true",
                        help="send one metadata pair (as an auth token would; etcd checks 'token' itself)")
    parser.add_argument("--compression", choices=["unset", "none", "gzip"], default="unset",
                        help="per-call compression argument")
    parser.add_argument("--registered", action="store_true",
                        help="create handles with _registered_method=True, as generated stubs do")
    parser.add_argument(
        "--ab", type=int, default=0, metavar="BLOCKS",
        help="also run the default settings on a second channel in this process and alternate "
             "the two in BLOCKS blocks (see _harness.run_ab); not with --call aio",
    )


#: What --ab compares against: every flag above at its default, no extra option.
DEFAULTS = {"call": "call", "timeout": 60.0, "wait_for_ready": False, "metadata": False,
            "compression": "unset", "registered": False, "option": []}


def call_kwargs(args: argparse.Namespace) -> Dict[str, Any]:
    kwargs: Dict[str, Any] = {"timeout": args.timeout or None}
    if args.wait_for_ready:
        kwargs["wait_for_ready"] = True
    if args.metadata:
        kwargs["metadata"] = (("x-request-id", "bench-0123456789abcdef"),)
    if args.compression != "unset":
        kwargs["compression"] = {"none": grpc.Compression.NoCompression,
                                 "gzip": grpc.Compression.Gzip}[args.compression]
    return kwargs


def handle_kwargs(args: argparse.Namespace) -> Dict[str, Any]:
    return {"_registered_method": True} if args.registered else {}


def primitives(
    args: argparse.Namespace, make_handle: Callable[[str], Callable[..., Any]], call: str
) -> Dict[str, Any]:
    """put/get/prefix over pre-encoded requests, called the way ``call`` says."""
    kwargs = call_kwargs(args)
    handles = {method: make_handle(method) for method in (PUT, RANGE)}
    # All requests exist before timing starts: the loop then costs a dict
    # lookup (~50 ns) plus grpcio.
    puts = {key: put_request(key, h.VALUE) for key in h.seq_keys(args)}
    gets = {h.SEQ_KEY % 0: range_request(h.SEQ_KEY % 0)}
    end = h.RANGE_PREFIX[:-1] + bytes([h.RANGE_PREFIX[-1] + 1])
    prefixes = {h.RANGE_PREFIX: range_request(h.RANGE_PREFIX, end)}

    def invoke(method: str) -> Callable[[bytes], Any]:
        handle = handles[method]
        if call == "with_call":
            return lambda payload: handle.with_call(payload, **kwargs)[0]
        if call == "future":
            return lambda payload: handle.future(payload, **kwargs).result()
        if call == "per-call-handle":
            return lambda payload: make_handle(method)(payload, **kwargs)
        return lambda payload: handle(payload, **kwargs)

    put, rng = invoke(PUT), invoke(RANGE)
    return {
        "put": lambda key, value: put(puts[key]),
        "get": lambda key: rng(gets[key]),
        "prefix": lambda prefix: rng(prefixes[prefix]),
        # Checks only (not timed): the value's bytes are in the response, and
        # every key carries the prefix while no value does.
        "value_of": lambda data: h.VALUE if h.VALUE in data else data,
        "count_of": lambda data: data.count(h.RANGE_PREFIX),
    }


def main() -> None:
    args = h.parse_args(extend)
    if args.call == "aio":
        asyncio.run(main_aio(args))
        return
    if not args.ab:
        with grpc.insecure_channel(args.endpoint, options=h.grpc_options(args)) as channel:
            h.run("raw-grpcio", workloads(args, channel))
        return
    base = argparse.Namespace(**{**vars(args), **DEFAULTS})
    # A distinct (unknown, ignored) argument on each side keeps grpc from
    # sharing one subchannel between the two: each side has its own connection.
    with grpc.insecure_channel(args.endpoint, options=[*h.grpc_options(base), ("bench.side", "a")]) as a, \
            grpc.insecure_channel(args.endpoint, options=[*h.grpc_options(args), ("bench.side", "b")]) as b:
        h.run_ab(("raw-grpcio", "raw-grpcio+variant"), workloads(base, a), workloads(args, b), args.ab)


def workloads(args: argparse.Namespace, channel: grpc.Channel) -> List[h.Workload]:
    def make_handle(method: str) -> Callable[..., Any]:
        return channel.unary_unary(method, **handle_kwargs(args))

    return h.workloads(args, **primitives(args, make_handle, args.call))


def aio_workloads(args: argparse.Namespace, channel: Any) -> List[h.Workload]:
    """The workloads on a grpc.aio channel (an aio call object is awaitable,
    which is all the asyncio drivers need)."""

    def make_handle(method: str) -> Callable[..., Any]:
        return channel.unary_unary(method, **handle_kwargs(args))

    return h.workloads(args, **primitives(args, make_handle, "call"))


async def main_aio(args: argparse.Namespace) -> None:
    async with grpc.aio.insecure_channel(args.endpoint, options=h.grpc_options(args)) as channel:
        await h.run_async("raw-grpcio-aio", aio_workloads(args, channel))


if __name__ == "__main__":
    main()
