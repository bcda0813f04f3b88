"""Watch-throughput worker: count events on a prefix, report client CPU per event.

Runs under etcdfast (``--client etcdfast``; ETCDFAST_PURE picks the twin), its
python-etcd3 drop-in (``--client compat``) or, in its own venv, python-etcd3 /
etcd-sdk-python (``--client etcd3|pyetcd``, same API). Stdlib only apart from
the client under test. Protocol with ``bench/watch_e2e.py``: prints ``ready``
once the watch is established, then one JSON line when ``--events`` events
arrived (or ``--max-seconds`` passed).
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from typing import Any, Callable, Iterator, Tuple


def etcdfast_events(endpoint: str, prefix: bytes) -> Tuple[Iterator[Any], Callable[[], None], str]:
    import etcdfast

    client = etcdfast.Client(endpoint, timeout=30)
    watch = client.watch(prefix, prefix=True)
    return iter(watch), watch.cancel, f"etcdfast-{etcdfast.IMPLEMENTATION}"


def etcd3_like_events(
    module: str, endpoint: str, prefix: bytes
) -> Tuple[Iterator[Any], Callable[[], None], str]:
    client_module = importlib.import_module(module)
    host, port = endpoint.rsplit(":", 1)
    client = client_module.client(host, int(port))
    events, cancel = client.watch_prefix(prefix)
    return events, cancel, module


def _raw_watch(
    endpoint: str, prefix: bytes, single_threaded: bool = False
) -> Tuple[Iterator[bytes], Callable[[], None]]:
    """A watch on ``prefix`` straight on grpcio: hand-made request bytes, the
    raw response bytes back (the "created" answer already taken).

    ``single_threaded`` opens it as a unary-stream call with grpcio's
    experimental ``SingleThreadedUnaryStream`` option: the consumer then
    polls the call's own completion queue instead of being woken by the
    channel's spin thread. etcd keeps a watch stream open after the client
    half-closes it, so one create request works that way too -- but no
    second request (another watch, a cancel, a progress request) can follow
    it, which is why no real client can watch like this.
    """
    import grpc
    import grpc.experimental

    end = prefix[:-1] + bytes([prefix[-1] + 1])
    create = b"\x0a" + bytes([4 + len(prefix) + len(end)]) + b"\x0a" + bytes([len(prefix)]) + prefix
    create += b"\x12" + bytes([len(end)]) + end
    options = [("grpc.max_receive_message_length", 2**31 - 1)]
    if single_threaded:
        options.append((grpc.experimental.ChannelOptions.SingleThreadedUnaryStream, 1))
    channel = grpc.insecure_channel(endpoint, options=options)
    if single_threaded:
        call = channel.unary_stream("/etcdserverpb.Watch/Watch")(create)
    else:
        call = channel.stream_stream("/etcdserverpb.Watch/Watch")(iter([create]))
    responses = iter(call)
    next(responses)  # "created"

    def cancel() -> None:
        # Holds the channel too: a single-threaded call does not keep it
        # alive, and a collected channel ends its calls.
        call.cancel()
        channel.close()

    return responses, cancel


def raw_grpc_events(endpoint: str, prefix: bytes) -> Tuple[Iterator[Any], Callable[[], None], str]:
    """The floor: grpcio with no decoding at all.

    Events are counted by finding the prefix in each response (every event
    carries its key once), at C speed; a ``bytes`` object stands in for the
    event so the consumer loop is the same as for the real clients.
    """
    responses, cancel = _raw_watch(endpoint, prefix)

    class Raw:
        __slots__ = ("key",)

        def __init__(self, key: bytes) -> None:
            self.key = key

    def events() -> Iterator[Raw]:
        for raw in responses:
            for _ in range(raw.count(prefix)):
                yield Raw(prefix)

    return events(), cancel, "raw-grpc"


def raw_decode_events(
    endpoint: str, prefix: bytes, single_threaded: bool = False
) -> Tuple[Iterator[Any], Callable[[], None], str]:
    """The floor plus etcdfast's codec: the same grpcio loop, each response
    decoded by ``decode_watch`` of the active twin. What etcdfast-fast costs
    beyond this is its watch machinery (hub, cursor, read role, queues).
    ``single_threaded``: the same without grpcio's channel spin thread (see
    ``_raw_watch``), to show what that thread costs per event."""
    import itertools

    from etcdfast import _codec

    responses, cancel = _raw_watch(endpoint, prefix, single_threaded)
    decode = _codec.watch.decode_watch
    lists = (list(decode(raw).events) for raw in responses)
    name = "raw-grpc-1thread-decode" if single_threaded else "raw-grpc-decode"
    return itertools.chain.from_iterable(lists), cancel, name


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--client",
        choices=["etcdfast", "raw", "raw-decode", "raw-1thread-decode", "etcd3", "pyetcd", "compat"],
        required=True,
    )
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--events", type=int, required=True)
    parser.add_argument("--max-seconds", type=float, default=120.0)
    args = parser.parse_args()
    prefix = args.prefix.encode()
    if args.client == "etcdfast":
        events, cancel, name = etcdfast_events(args.endpoint, prefix)
    elif args.client == "raw":
        events, cancel, name = raw_grpc_events(args.endpoint, prefix)
    elif args.client in ("raw-decode", "raw-1thread-decode"):
        events, cancel, name = raw_decode_events(args.endpoint, prefix, args.client != "raw-decode")
    elif args.client == "compat":  # etcdfast's python-etcd3 drop-in, same API as the peers
        events, cancel, name = etcd3_like_events("etcdfast.compat.etcd3", args.endpoint, prefix)
        name = "etcdfast-compat"
    else:
        events, cancel, name = etcd3_like_events(args.client, args.endpoint, prefix)
    print("ready", flush=True)
    seen = 0
    first = last = 0.0
    keys = 0
    cpu_start = time.process_time()
    deadline = time.monotonic() + args.max_seconds
    # The same consumer loop for every client: take each event, read its key.
    for event in events:
        if not first:
            first = time.time()
        keys += len(event.key)
        seen += 1
        if seen >= args.events or (seen % 1000 == 0 and time.monotonic() > deadline):
            break
    last = time.time()
    cpu = time.process_time() - cpu_start
    try:
        cancel()
    except Exception:  # a peer's cancel may race its own threads; the figures are taken
        pass
    print(json.dumps({
        "client": name, "events": seen, "cpu_s": cpu,
        "cpu_us_per_event": cpu / max(seen, 1) * 1e6, "first_event_at": first, "last_event_at": last,
    }), flush=True)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
