"""``get``, ``put``, ``del`` and ``compact``: etcdctl's KV verbs.

The option-adding functions (:func:`add_get_options`...) and the request
builders (:func:`get_request`...) are shared with ``txn``, whose op lines
(``get --prefix k``, ``put k v``, ``del k``) take exactly these options.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Union

from ._context import EXIT_BAD_FEATURE, EXIT_ERROR, EXIT_OK, CliError, Commands, Context
from ._flags import ArgError, Args, Command
from .output import dumps, fields_header, fields_kv, hex_escape, lease_hex, render_table, result_json

if TYPE_CHECKING:
    from ..types import DeleteResult, GetResult, KeyValue, PutResult

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
    "print_kv",
    "print_other",
    "to_bytes",
    "parse_lease",
    "text",
]


def to_bytes(text: str) -> bytes:
    """A command-line string as the bytes the user typed (non-UTF-8 argv survives)."""
    return os.fsencode(text)


def text(data: bytes) -> str:
    """Key bytes as text for a message (``/w/1``, not ``b'/w/1'``); bytes that are
    not UTF-8 come back out as typed."""
    return os.fsdecode(data)


def parse_lease(text: str) -> int:
    """A lease ID as etcdctl takes it: hexadecimal (``694d77aa9e38260f``, ``0x`` optional)."""
    try:
        value = int(text, 16)
    except ValueError:
        raise ArgError(f"bad lease ID {text!r} (expected hex, e.g. 694d77aa9e38260f)") from None
    if value < 0 or value >= 2**63:
        raise ArgError(f"lease ID {text!r} out of range")
    return value


def _int64(text: str) -> int:
    try:
        return int(text, 10)
    except ValueError:
        raise ArgError(f'strconv.ParseInt: parsing "{text}": invalid syntax') from None


def _range_args(args: Args, verb: str) -> Dict[str, Any]:
    """key/range_end/prefix/from_key, with etcdctl's rules and messages."""
    if args.prefix and args.from_key:
        raise CliError("`--prefix` and `--from-key` cannot be set at the same time, choose one")
    key = to_bytes(args.key)
    range_end = to_bytes(args.range_end) if args.range_end is not None else None
    if range_end is not None and (args.prefix or args.from_key):
        raise CliError("too many arguments, only accept one argument when `--prefix` or `--from-key` is set")
    prefix, from_key = args.prefix, args.from_key
    if (prefix or from_key) and not key:
        key, prefix, from_key = b"\x00", False, True  # the whole keyspace
    return {"key": key, "range_end": range_end, "prefix": prefix, "from_key": from_key}


def print_other(ctx: Context, result: Any, fields: Any = None) -> bool:
    """Print ``result`` as json/protobuf/fields when -w asks for it; False for simple."""
    if ctx.write_out == "json":
        ctx.out.line(dumps(result_json(result)))
        return True
    if ctx.write_out == "protobuf":
        from ._pb import encode_response

        ctx.out.write(encode_response(result))
        return True
    if ctx.write_out == "fields":
        if fields is None:
            raise ctx.unsupported_format("fields")
        ctx.out.write(fields(result))
        return True
    return False


# -- get ------------------------------------------------------------------------

SORT_TARGETS = {"KEY": "key", "CREATE": "create", "MODIFY": "mod", "VALUE": "value", "VERSION": "version"}


def add_get_options(p: Command) -> None:
    p.add_argument("key", help="the key, or the start of the range")
    p.add_argument("range_end", nargs="?", help="end of the range [key, range_end)")
    p.add_argument("--consistency", default="l", help="Linearizable(l) or Serializable(s)")
    p.add_argument("--order", default="", help="Order of results; ASCEND or DESCEND (ASCEND by default)")
    p.add_argument("--sort-by", default="", help="Sort target; CREATE, KEY, MODIFY, VALUE, or VERSION")
    p.add_argument("--limit", type=_int64, default=0, help="Maximum number of results")
    p.add_argument("--prefix", action="store_true", help="Get keys with matching prefix")
    p.add_argument("--from-key", action="store_true",
                   help="Get keys that are greater than or equal to the given key using byte compare")
    p.add_argument("--rev", type=_int64, default=0, help="Specify the kv revision")
    p.add_argument("--keys-only", action="store_true", help="Get only the keys")
    p.add_argument("--count-only", action="store_true", help="Get only the count")
    p.add_argument("--print-value-only", action="store_true",
                   help='Only write values when using the "simple" output format')


def get_kwargs(args: Args) -> Dict[str, Any]:
    """``Client.get``/``Op.get`` keyword arguments for parsed ``get`` options."""
    if args.keys_only and args.count_only:
        raise CliError("`--keys-only` and `--count-only` cannot be set at the same time, choose one")
    if args.consistency not in ("l", "s"):
        raise CliError(f'unknown consistency flag "{args.consistency}"', EXIT_BAD_FEATURE)
    order = args.order.upper()
    if order not in ("", "ASCEND", "DESCEND"):
        raise CliError(f"bad sort order {args.order}", EXIT_BAD_FEATURE)
    target = args.sort_by.upper()
    if target and target not in SORT_TARGETS:
        raise CliError(f"bad sort target {args.sort_by}", EXIT_BAD_FEATURE)
    return {
        **_range_args(args, "get"),
        "limit": args.limit,
        "revision": args.rev if args.rev > 0 else 0,
        "sort_order": order.lower() or None,
        "sort_target": SORT_TARGETS[target] if target else None,
        "serializable": args.consistency == "s",
        "keys_only": args.keys_only,
        "count_only": args.count_only,
    }


def _show(ctx: Context, data: bytes) -> bytes:
    return hex_escape(data) if ctx.hex else data


def print_kv(ctx: Context, kv: "KeyValue", *, value_only: bool = False) -> None:
    """etcdctl's printKV: the key line (unless value-only), then the value line
    -- empty for --keys-only, as etcdctl prints it."""
    if not value_only:
        ctx.out.line(_show(ctx, kv.key))
    ctx.out.line(_show(ctx, kv.value))


def _get_fields(result: "GetResult") -> str:
    return (fields_header(result.header) + "".join(fields_kv(kv) for kv in result.kvs)
            + f'"More" : {str(result.more).lower()}\n"Count" : {result.count}\n')


def print_get(ctx: Context, result: "GetResult", args: Optional[Args] = None) -> None:
    count_only = bool(args and args.count_only)
    keys_only = bool(args and args.keys_only)
    value_only = bool(args and args.print_value_only)
    if value_only and ctx.write_out != "simple":
        raise CliError("print-value-only is only for `--write-out=simple`")
    if print_other(ctx, result, _get_fields):
        return
    if ctx.write_out == "table":  # etcdfast's own: etcdctl has no table for get
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
        for kv in result.kvs:
            print_kv(ctx, kv, value_only=value_only)


def run_get(ctx: Context, args: Args) -> int:
    kwargs = get_kwargs(args)
    if args.print_value_only and ctx.write_out != "simple":
        raise CliError("print-value-only is only for `--write-out=simple`")
    print_get(ctx, ctx.client().get(**kwargs), args)
    return EXIT_OK


# -- put ------------------------------------------------------------------------

PUT_USAGE = "put command needs 1 argument and input from stdin or 2 arguments"


def add_put_options(p: Command) -> None:
    p.add_argument("key", help="the key")
    p.add_argument("value", nargs="?", help="the value (read from stdin when omitted)")
    p.add_argument("--lease", default="0", help="lease ID (in hexadecimal) to attach to the key")
    p.add_argument("--prev-kv", action="store_true",
                   help="return the previous key-value pair before modification")
    p.add_argument("--ignore-value", action="store_true", help="updates the key using its current value")
    p.add_argument("--ignore-lease", action="store_true", help="updates the key using its current lease")


def put_kwargs(args: Args, value: bytes) -> Dict[str, Any]:
    """``Client.put``/``Op.put`` keyword arguments for parsed ``put`` options."""
    try:
        lease = int(args.lease, 16)
    except ValueError:
        raise CliError(f'bad lease ID (strconv.ParseInt: parsing "{args.lease}": invalid syntax), '
                       "expecting ID in Hex") from None
    return {
        "key": to_bytes(args.key), "value": value, "lease": lease, "prev_kv": args.prev_kv,
        "ignore_value": args.ignore_value, "ignore_lease": args.ignore_lease,
    }


def _put_fields(result: "PutResult") -> str:
    return fields_header(result.header) + (fields_kv(result.prev_kv, "Prev") if result.prev_kv else "")


def print_put(ctx: Context, result: "PutResult", args: Optional[Args] = None) -> None:
    if print_other(ctx, result, _put_fields):
        return
    ctx.out.line("OK")
    if result.prev_kv is not None:
        print_kv(ctx, result.prev_kv)


def run_put(ctx: Context, args: Args) -> int:
    if args.ignore_value and args.value is not None:
        raise CliError("put command needs only 1 argument when 'ignore-value' is set")
    if args.value is not None:
        value = to_bytes(args.value)
    elif args.ignore_value:
        value = b""
    else:
        stdin = getattr(ctx.stdin, "buffer", None)
        value = stdin.read() if stdin is not None else to_bytes(ctx.stdin.read())
        if not value:
            raise CliError(PUT_USAGE)  # etcdctl: "no available argument and stdin"
    print_put(ctx, ctx.client().put(**put_kwargs(args, value)), args)
    return EXIT_OK


# -- del ------------------------------------------------------------------------


def add_del_options(p: Command) -> None:
    p.add_argument("key", help="the key, or the start of the range")
    p.add_argument("range_end", nargs="?", help="end of the range [key, range_end)")
    p.add_argument("--prefix", action="store_true", help="delete keys with matching prefix")
    p.add_argument("--prev-kv", action="store_true", help="return deleted key-value pairs")
    p.add_argument("--from-key", action="store_true",
                   help="delete keys that are greater than or equal to the given key using byte compare")


def del_kwargs(args: Args) -> Dict[str, Any]:
    """``Client.delete``/``Op.delete`` keyword arguments for parsed ``del`` options."""
    return {**_range_args(args, "del"), "prev_kv": args.prev_kv}


def _del_fields(result: "DeleteResult") -> str:
    return (fields_header(result.header) + f'"Deleted" : {result.deleted}\n'
            + "".join(fields_kv(kv, "Prev") for kv in result.prev_kvs))


def print_del(ctx: Context, result: "DeleteResult", args: Optional[Args] = None) -> None:
    if print_other(ctx, result, _del_fields):
        return
    ctx.out.line(str(result.deleted))
    for kv in result.prev_kvs:
        print_kv(ctx, kv)


def run_del(ctx: Context, args: Args) -> int:
    print_del(ctx, ctx.client().delete(**del_kwargs(args)), args)
    return EXIT_OK


# -- compaction -----------------------------------------------------------------


def run_compact(ctx: Context, args: Args) -> int:
    try:
        revision = int(args.revision, 10)
    except ValueError:
        raise CliError(f'strconv.ParseInt: parsing "{args.revision}": invalid syntax', EXIT_ERROR) from None
    result = ctx.client().compact(revision, physical=args.physical)
    if not print_other(ctx, result, lambda r: fields_header(r.header)):
        ctx.out.line(f"compacted revision {revision}")
    return EXIT_OK


# -- registration ---------------------------------------------------------------


def register(commands: Commands) -> None:
    add_get_options(commands.add(
        "get", run_get, help="Gets the key or a range of keys", usage="get [options] <key> [range_end]",
        arg_error="get command needs one argument as key and an optional argument as range_end",
        epilog="simple output prints each key, then its value, on its own line "
               "(--keys-only: the value line is empty; --count-only: the count).",
    ))
    add_put_options(commands.add(
        "put", run_put, help="Puts the given key into the store",
        usage="put [options] <key> <value> (<value> can also be given from stdin)", arg_error=PUT_USAGE,
        epilog="a value starting with '-' goes after '--':  etcdfast put k -- -v",
    ))
    add_del_options(commands.add(
        "del", run_del, help="Removes the specified key or range of keys [key, range_end)",
        usage="del [options] <key> [range_end]",
        arg_error="del command needs one argument as key and an optional argument as range_end"))
    p = commands.add("compaction", run_compact, help="Compacts the event history in etcd",
                     usage="compaction [options] <revision>", aliases=["compact"],
                     arg_error="compaction command needs 1 argument")
    p.add_argument("revision", help="the revision to compact to")
    p.add_argument("--physical", action="store_true",
                   help="'true' to wait for compaction to physically remove all old revisions")
