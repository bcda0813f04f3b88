"""``get``, ``put``, ``del`` and ``compact``: etcdctl's KV verbs.

The option-adding functions (:func:`add_get_options`...) and the request
builders (:func:`get_request`...) are shared with ``txn``, whose op lines
(``get --prefix k``, ``put k v``, ``del k``) take exactly these options.
"""

from __future__ import annotations

import argparse
import os
from typing import Any, Dict, List, Optional, Union

from ..types import DeleteResult, GetResult, KeyValue, PutResult
from ._context import EXIT_OK, CliError, Commands, Context
from .output import dumps, hex_escape, lease_hex, render_table, result_json

__all__ = [
    "register",
    "add_get_options",
    "add_put_options",
    "add_del_options",
    "get_kwargs",
    "put_kwargs",
    "del_kwargs",
    "print_get",
    "print_put",
    "print_del",
    "to_bytes",
    "parse_lease",
]


def to_bytes(text: str) -> bytes:
    """A command-line string as the bytes the user typed (non-UTF-8 argv survives)."""
    return os.fsencode(text)


def parse_lease(text: str) -> int:
    """A lease ID as etcdctl takes it: hexadecimal (``694d77aa9e38260f``, ``0x`` optional)."""
    try:
        value = int(text, 16)
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad lease ID {text!r} (expected hex, e.g. 694d77aa9e38260f)") \
            from None
    if value < 0 or value >= 2**63:
        raise argparse.ArgumentTypeError(f"lease ID {text!r} out of range")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def _range_args(args: argparse.Namespace, verb: str) -> Dict[str, Any]:
    """key/range_end/prefix/from_key, with etcdctl's rules on combining them."""
    key = to_bytes(args.key)
    range_end = to_bytes(args.range_end) if args.range_end is not None else None
    if args.prefix and args.from_key:
        raise CliError(f"{verb}: --prefix and --from-key cannot be used together")
    if range_end is not None and (args.prefix or args.from_key):
        raise CliError(f"{verb}: range_end cannot be combined with --prefix or --from-key")
    return {"key": key, "range_end": range_end, "prefix": args.prefix, "from_key": args.from_key}


# -- get ------------------------------------------------------------------------

SORT_TARGETS = {"KEY": "key", "CREATE": "create", "MODIFY": "mod", "VALUE": "value", "VERSION": "version"}


def add_get_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("key", help="the key, or the start of the range")
    p.add_argument("range_end", nargs="?", help="end of the range [key, range_end)")
    p.add_argument("--prefix", action="store_true", help="get every key with the prefix KEY")
    p.add_argument("--from-key", action="store_true", help="get every key >= KEY (by byte order)")
    p.add_argument("--keys-only", action="store_true", help="get only the keys")
    p.add_argument("--print-value-only", action="store_true", help="print only values (simple output)")
    p.add_argument("--limit", type=_non_negative_int, default=0, help="at most this many keys")
    p.add_argument("--rev", type=_non_negative_int, default=0, help="read at this revision")
    p.add_argument("--order", type=str.upper, choices=("ASCEND", "DESCEND"), default=None,
                   help="sort order (by key unless --sort-by is given)")
    p.add_argument("--sort-by", type=str.upper, choices=tuple(SORT_TARGETS), default=None,
                   help="sort target (ascending unless --order is given)")
    p.add_argument("--count-only", action="store_true", help="get only the number of matching keys")
    p.add_argument("--consistency", choices=("l", "s"), default="l",
                   help="l: linearizable (default), s: serializable (local, maybe stale)")


def get_kwargs(args: argparse.Namespace) -> Dict[str, Any]:
    """``Client.get``/``Op.get`` keyword arguments for parsed ``get`` options."""
    if args.keys_only and args.count_only:
        raise CliError("get: --keys-only and --count-only cannot be used together")
    return {
        **_range_args(args, "get"),
        "limit": args.limit,
        "revision": args.rev,
        "sort_order": args.order.lower() if args.order else None,
        "sort_target": SORT_TARGETS[args.sort_by] if args.sort_by else None,
        "serializable": args.consistency == "s",
        "keys_only": args.keys_only,
        "count_only": args.count_only,
    }


def _show(ctx: Context, data: bytes) -> bytes:
    return hex_escape(data) if ctx.hex else data


def print_kv(ctx: Context, kv: KeyValue, *, key: bool = True, value: bool = True) -> None:
    if key:
        ctx.out.line(_show(ctx, kv.key))
    if value:
        ctx.out.line(_show(ctx, kv.value))


def print_get(ctx: Context, result: GetResult, args: Optional[argparse.Namespace] = None) -> None:
    count_only = bool(args and args.count_only)
    keys_only = bool(args and args.keys_only)
    value_only = bool(args and args.print_value_only)
    if ctx.write_out == "json":
        ctx.out.line(dumps(result_json(result)))
    elif ctx.write_out == "table":
        if count_only:
            ctx.out.write(render_table(["COUNT"], [[str(result.count)]]))
            return
        headers = ["KEY"] + ([] if keys_only else ["VALUE"]) + ["CREATE REV", "MOD REV", "VERSION", "LEASE"]
        rows = []
        for kv in result.kvs:
            row: List[Union[str, bytes]] = [_show(ctx, kv.key)]
            if not keys_only:
                row.append(_show(ctx, kv.value))
            row += [str(kv.create_revision), str(kv.mod_revision), str(kv.version),
                    lease_hex(kv.lease) if kv.lease else "0"]
            rows.append(row)
        ctx.out.write(render_table(headers, rows))
    elif count_only:
        ctx.out.line(str(result.count))
    else:
        # Like etcdctl: key line then value line; --keys-only prints just keys.
        for kv in result.kvs:
            print_kv(ctx, kv, key=not value_only, value=not keys_only)


def run_get(ctx: Context, args: argparse.Namespace) -> int:
    print_get(ctx, ctx.client().get(**get_kwargs(args)), args)
    return EXIT_OK


# -- put ------------------------------------------------------------------------


def add_put_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("key", help="the key")
    p.add_argument("value", nargs="?", help="the value (read from stdin when omitted)")
    p.add_argument("--lease", type=parse_lease, default=0, help="attach to this lease (hex ID)")
    p.add_argument("--prev-kv", action="store_true", help="print the previous key-value")
    p.add_argument("--ignore-value", action="store_true", help="keep the current value")
    p.add_argument("--ignore-lease", action="store_true", help="keep the current lease")


def put_kwargs(args: argparse.Namespace, value: bytes) -> Dict[str, Any]:
    """``Client.put``/``Op.put`` keyword arguments for parsed ``put`` options."""
    if not args.key:
        raise CliError("put: the key must not be empty")
    if args.ignore_value and value:
        raise CliError("put: a value cannot be given with --ignore-value")
    if args.ignore_lease and args.lease:
        raise CliError("put: --lease cannot be given with --ignore-lease")
    return {
        "key": to_bytes(args.key), "value": value, "lease": args.lease, "prev_kv": args.prev_kv,
        "ignore_value": args.ignore_value, "ignore_lease": args.ignore_lease,
    }


def print_put(ctx: Context, result: PutResult, args: Optional[argparse.Namespace] = None) -> None:
    if ctx.write_out == "json":
        ctx.out.line(dumps(result_json(result)))
        return
    ctx.out.line("OK")
    if result.prev_kv is not None:
        print_kv(ctx, result.prev_kv)


def run_put(ctx: Context, args: argparse.Namespace) -> int:
    if args.value is not None:
        value = to_bytes(args.value)
    elif args.ignore_value:
        value = b""
    else:
        stdin = getattr(ctx.stdin, "buffer", None)
        value = stdin.read() if stdin is not None else to_bytes(ctx.stdin.read())
        if not value:
            raise CliError("put: no value given (as an argument or on stdin)")
    print_put(ctx, ctx.client().put(**put_kwargs(args, value)), args)
    return EXIT_OK


# -- del ------------------------------------------------------------------------


def add_del_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("key", help="the key, or the start of the range")
    p.add_argument("range_end", nargs="?", help="end of the range [key, range_end)")
    p.add_argument("--prefix", action="store_true", help="delete every key with the prefix KEY")
    p.add_argument("--from-key", action="store_true", help="delete every key >= KEY")
    p.add_argument("--prev-kv", action="store_true", help="print the deleted key-values")


def del_kwargs(args: argparse.Namespace) -> Dict[str, Any]:
    """``Client.delete``/``Op.delete`` keyword arguments for parsed ``del`` options."""
    return {**_range_args(args, "del"), "prev_kv": args.prev_kv}


def print_del(ctx: Context, result: DeleteResult, args: Optional[argparse.Namespace] = None) -> None:
    if ctx.write_out == "json":
        ctx.out.line(dumps(result_json(result)))
        return
    ctx.out.line(str(result.deleted))
    for kv in result.prev_kvs:
        print_kv(ctx, kv)


def run_del(ctx: Context, args: argparse.Namespace) -> int:
    print_del(ctx, ctx.client().delete(**del_kwargs(args)), args)
    return EXIT_OK


# -- compact --------------------------------------------------------------------


def run_compact(ctx: Context, args: argparse.Namespace) -> int:
    if args.revision <= 0:
        raise CliError("compact: the revision must be > 0")
    result = ctx.client().compact(args.revision, physical=args.physical)
    if ctx.write_out == "json":
        ctx.out.line(dumps(result_json(result)))
    else:
        ctx.out.line(f"compacted revision {args.revision}")
    return EXIT_OK


# -- registration ---------------------------------------------------------------


def register(commands: Commands) -> None:
    add_get_options(commands.add(
        "get", run_get, help="get a key or a range of keys",
        epilog="simple output prints each key, then its value, on its own line "
               "(--keys-only: keys only; --count-only: the count).",
    ))
    add_put_options(commands.add(
        "put", run_put, help="put a key (value from stdin when omitted)",
        epilog="a value starting with '-' goes after '--':  etcdfast put k -- -v",
    ))
    add_del_options(commands.add("del", run_del, help="delete a key or a range of keys"))
    p = commands.add("compact", run_compact, help="discard the history before a revision")
    p.add_argument("revision", type=int, help="the revision to compact to")
    p.add_argument("--physical", action="store_true", help="wait until the space is reclaimed")

