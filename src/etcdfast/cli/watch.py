"""``watch``: print changes to a key or range as they happen (until Ctrl-C).

simple output, per event: ``PUT``/``DELETE``, then (with ``--prev-kv``) the
previous key and value, then the key and value, one per line, as etcdctl.
json output: one line per server response, etcdctl's shape
(``{"Header":...,"Events":[...],"CompactRevision":0,...}``).
"""

from __future__ import annotations

import argparse
from typing import Any, Dict

from ..types import Event, EventType, Progress, WatchResponse
from ._context import EXIT_OK, CliError, Commands, Context
from .kv import print_kv, to_bytes
from .output import dumps, header_json, kv_json

__all__ = ["register", "event_json"]


def event_json(event: Event) -> Dict[str, Any]:
    out: Dict[str, Any] = {}
    if event.type == EventType.DELETE:
        out["type"] = 1
    out["kv"] = kv_json(event.kv)
    if event.prev_kv is not None:
        out["prev_kv"] = kv_json(event.prev_kv)
    return out


def _print_event(ctx: Context, event: Event) -> None:
    ctx.out.line(event.type.name)
    if event.prev_kv is not None:
        print_kv(ctx, event.prev_kv)
    print_kv(ctx, event.kv)


def run_watch(ctx: Context, args: argparse.Namespace) -> int:
    if args.prefix and args.range_end is not None:
        raise CliError("watch: range_end cannot be combined with --prefix")
    client = ctx.client()
    watch = client.watch(
        to_bytes(args.key),
        prefix=args.prefix,
        range_end=to_bytes(args.range_end) if args.range_end is not None else None,
        start_revision=args.rev,
        prev_kv=args.prev_kv,
        progress_notify=args.progress_notify,
    )
    seen = 0
    try:
        for batch in watch.batches():
            if isinstance(batch, Progress):
                if ctx.write_out == "json":
                    ctx.out.line(dumps({"Header": {"revision": batch.revision}, "Events": None,
                                        "CompactRevision": 0, "Canceled": False, "Created": False}))
                else:
                    ctx.out.line(f"progress notify: revision {batch.revision}")
                ctx.out.flush()
                continue
            assert isinstance(batch, WatchResponse)
            events = batch.events
            if args.max_events:
                events = events[: args.max_events - seen]
            if ctx.write_out == "json":
                ctx.out.line(dumps({
                    "Header": header_json(batch.header),
                    "Events": [event_json(e) for e in events],
                    "CompactRevision": batch.compact_revision,
                    "Canceled": batch.canceled,
                    "Created": batch.created,
                }))
            else:
                for event in events:
                    _print_event(ctx, event)
            ctx.out.flush()
            seen += len(events)
            if args.max_events and seen >= args.max_events:
                break
    finally:
        watch.cancel()
    return EXIT_OK


def _positive(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {value}")
    return value


def register(commands: Commands) -> None:
    p = commands.add("watch", run_watch, help="watch a key or range for changes", description=__doc__)
    p.add_argument("key", help="the key, or the start of the range")
    p.add_argument("range_end", nargs="?", help="end of the range [key, range_end)")
    p.add_argument("--prefix", action="store_true", help="watch every key with the prefix KEY")
    p.add_argument("--rev", type=int, default=0, help="start at this revision (default: now)")
    p.add_argument("--prev-kv", action="store_true", help="also print each key's previous value")
    p.add_argument("--progress-notify", action="store_true", help="print periodic progress notifications")
    p.add_argument("--max-events", type=_positive, default=0, metavar="N",
                   help="exit after N events (default: run until Ctrl-C)")
