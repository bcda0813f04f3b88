"""``lease grant|revoke|timetolive|list|keep-alive``, as etcdctl prints them.

Lease IDs are read and printed in hexadecimal, like etcdctl.
"""

from __future__ import annotations

import argparse
import base64
import time
from typing import Any, Dict

from ..errors import LeaseNotFoundError
from ._context import EXIT_ERROR, EXIT_OK, Commands, Context
from .kv import parse_lease
from .output import dumps, header_json, lease_hex

__all__ = ["register"]


def _positive_ttl(text: str) -> int:
    try:
        ttl = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"TTL must be a whole number of seconds, got {text!r}") from None
    if ttl <= 0:
        raise argparse.ArgumentTypeError(f"TTL must be > 0, got {ttl}")
    return ttl


def run_grant(ctx: Context, args: argparse.Namespace) -> int:
    lease = ctx.client().grant(args.ttl)
    if ctx.write_out == "json":
        ctx.out.line(dumps({**header_json(lease.header), "ID": lease.id, "TTL": lease.ttl}))
    else:
        ctx.out.line(f"lease {lease_hex(lease.id)} granted with TTL({lease.ttl}s)")
    return EXIT_OK


def run_revoke(ctx: Context, args: argparse.Namespace) -> int:
    header = ctx.client().revoke(args.id)
    if ctx.write_out == "json":
        ctx.out.line(dumps(header_json(header)))
    else:
        ctx.out.line(f"lease {lease_hex(args.id)} revoked")
    return EXIT_OK


def run_timetolive(ctx: Context, args: argparse.Namespace) -> int:
    try:
        info = ctx.client().time_to_live(args.id, keys=args.keys)
    except LeaseNotFoundError:
        # etcdctl reports an unknown lease as expired, successfully.
        if ctx.write_out == "json":
            ctx.out.line(dumps({"id": args.id, "ttl": -1, "granted-ttl": 0, "keys": None}))
        else:
            ctx.out.line(f"lease {lease_hex(args.id)} already expired")
        return EXIT_OK
    if ctx.write_out == "json":
        out: Dict[str, Any] = {**header_json(info.header), "id": info.id, "ttl": info.ttl,
                               "granted-ttl": info.granted_ttl}
        out["keys"] = [base64.b64encode(k).decode() for k in info.keys] if args.keys else None
        ctx.out.line(dumps(out))
        return EXIT_OK
    text = f"lease {lease_hex(info.id)} granted with TTL({info.granted_ttl}s), remaining({info.ttl}s)"
    if args.keys:
        keys = b" ".join(info.keys)
        ctx.out.line(text.encode() + b", attached keys([" + keys + b"])")
    else:
        ctx.out.line(text)
    return EXIT_OK


def run_list(ctx: Context, args: argparse.Namespace) -> int:
    ids = ctx.client().leases()
    if ctx.write_out == "json":
        ctx.out.line(dumps({"leases": [{"id": i} for i in ids]}))
        return EXIT_OK
    ctx.out.line(f"found {len(ids)} leases")
    for lease_id in ids:
        ctx.out.line(lease_hex(lease_id))
    return EXIT_OK


def run_keep_alive(ctx: Context, args: argparse.Namespace) -> int:
    """Refresh the lease every third of its TTL, printing each answer, until
    Ctrl-C (exit 130) or until the lease is gone (exit 1)."""
    client = ctx.client()
    while True:
        try:
            answer = client.keep_alive_once(args.id)
        except LeaseNotFoundError:
            ctx.out.line(f"lease {lease_hex(args.id)} expired or revoked.")
            return EXIT_ERROR
        if ctx.write_out == "json":
            ctx.out.line(dumps({**header_json(answer.header), "ID": answer.id, "TTL": answer.ttl}))
        else:
            ctx.out.line(f"lease {lease_hex(answer.id)} keepalived with TTL({answer.ttl})")
        ctx.out.flush()
        if args.once:
            return EXIT_OK
        time.sleep(max(0.5, answer.ttl / 3.0))


def register(commands: Commands) -> None:
    lease = commands.group("lease", help="grant, revoke, inspect and keep alive leases")
    p = lease.add("grant", run_grant, help="grant a lease of TTL seconds")
    p.add_argument("ttl", type=_positive_ttl, help="time to live, in seconds")
    p = lease.add("revoke", run_revoke, help="revoke a lease (its keys are deleted)")
    p.add_argument("id", type=parse_lease, help="lease ID (hex)")
    p = lease.add("timetolive", run_timetolive, help="remaining TTL of a lease")
    p.add_argument("id", type=parse_lease, help="lease ID (hex)")
    p.add_argument("--keys", action="store_true", help="also list the keys attached to it")
    lease.add("list", run_list, help="list all leases")
    p = lease.add("keep-alive", run_keep_alive, help="keep a lease alive until Ctrl-C")
    p.add_argument("id", type=parse_lease, help="lease ID (hex)")
    p.add_argument("--once", action="store_true", help="refresh once and exit")
