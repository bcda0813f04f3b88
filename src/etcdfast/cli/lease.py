"""``lease grant|revoke|timetolive|list|keep-alive``, as etcdctl prints them.

Lease IDs are read and printed in hexadecimal, like etcdctl.
"""

from __future__ import annotations

import base64
import time
from typing import Any

from ._context import EXIT_BAD_CONNECTION, EXIT_ERROR, EXIT_OK, CliError, Commands, Context
from ._flags import Args
from .output import dumps, fields_header, go_quote, header_json, lease_hex

__all__ = ["register", "lease_arg"]


def lease_arg(text: str) -> int:
    """A lease ID argument, hexadecimal, with etcdctl's message and exit code."""
    try:
        value = int(text, 16)
        if not -2**63 <= value < 2**63:
            raise ValueError
    except ValueError:
        raise CliError(f'bad lease ID arg (strconv.ParseInt: parsing "{text}": invalid syntax), '
                       "expecting ID in Hex") from None
    return value


def _lease_json(header: Any, **fields: Any) -> str:
    # clientv3's lease responses embed *pb.ResponseHeader: its fields come first, promoted.
    return dumps({**header_json(header), **fields})


def run_grant(ctx: Context, args: Args) -> int:
    try:
        ttl = int(args.ttl, 10)
    except ValueError:
        raise CliError(f'bad TTL (strconv.ParseInt: parsing "{args.ttl}": invalid syntax)') from None
    try:
        lease = ctx.client().grant(ttl)
    except Exception as exc:
        from ..errors import EtcdError

        if isinstance(exc, EtcdError):
            from . import error_text

            raise CliError(f"failed to grant lease ({error_text(exc)})", EXIT_ERROR) from None
        raise
    if ctx.write_out == "json":
        ctx.out.line(_lease_json(lease.header, ID=lease.id, TTL=lease.ttl, Error=""))
    elif ctx.write_out == "fields":
        ctx.out.write(fields_header(lease.header) + f'"ID" : {lease.id}\n"TTL" : {lease.ttl}\n')
    elif ctx.write_out == "protobuf":
        from ._pb import encode_response

        ctx.out.write(encode_response(lease))
    else:
        ctx.out.line(f"lease {lease_hex(lease.id)} granted with TTL({lease.ttl}s)")
    return EXIT_OK


def run_revoke(ctx: Context, args: Args) -> int:
    lease_id = lease_arg(args.id)
    from ..errors import EtcdError

    try:
        header = ctx.client().revoke(lease_id)
    except EtcdError as exc:
        from . import error_text

        raise CliError(f"failed to revoke lease ({error_text(exc)})", EXIT_ERROR) from None
    if ctx.write_out == "json":
        ctx.out.line(dumps({"header": header_json(header)}))
    elif ctx.write_out == "fields":
        ctx.out.write(fields_header(header))
    elif ctx.write_out == "protobuf":
        from ._pb import header as pb_header

        ctx.out.write(pb_header(header))
    else:
        ctx.out.line(f"lease {lease_hex(lease_id)} revoked")
    return EXIT_OK


def _stream_error(exc: Exception) -> CliError:
    from . import error_text

    return CliError(error_text(exc), EXIT_BAD_CONNECTION)


def run_timetolive(ctx: Context, args: Args) -> int:
    from ..api import lease as api_lease
    from ..errors import EtcdError
    from ._raw import call, header_of

    lease_id = lease_arg(args.id)
    try:
        m = call(ctx.client(), api_lease.time_to_live(lease_id, keys=args.keys), "LeaseTimeToLiveResponse")
    except EtcdError as exc:
        raise _stream_error(exc) from None
    header = header_of(m)
    keys = list(m.keys)
    if ctx.write_out == "json":
        ctx.out.line(_lease_json(header, id=m.ID, ttl=m.TTL, **{"granted-ttl": m.grantedTTL},
                                 keys=[base64.b64encode(k).decode() for k in keys] or None))
    elif ctx.write_out == "fields":
        ctx.out.write(fields_header(header)
                      + f'"ID" : {m.ID}\n"TTL" : {m.TTL}\n"GrantedTTL" : {m.grantedTTL}\n'
                      + "".join(f'"Key" : {go_quote(k)}\n' for k in keys))
    elif ctx.write_out == "protobuf":
        ctx.out.write(m.SerializeToString())
    elif m.grantedTTL == 0 and m.TTL == -1:
        ctx.out.line(f"lease {lease_hex(lease_id)} already expired")
    else:
        text = f"lease {lease_hex(m.ID)} granted with TTL({m.grantedTTL}s), remaining({m.TTL}s)"
        if args.keys:
            ctx.out.line(text.encode() + b", attached keys([" + b" ".join(keys) + b"])")
        else:
            ctx.out.line(text)
    return EXIT_OK


def run_list(ctx: Context, args: Args) -> int:
    from ..api import lease as api_lease
    from ..errors import EtcdError
    from ._raw import call, header_of

    try:
        m = call(ctx.client(), api_lease.leases(), "LeaseLeasesResponse")
    except EtcdError as exc:
        raise _stream_error(exc) from None
    ids = [lease.ID for lease in m.leases]
    if ctx.write_out == "json":
        ctx.out.line(_lease_json(header_of(m), leases=[{"id": i} for i in ids] or None))
    elif ctx.write_out == "fields":
        ctx.out.write(fields_header(header_of(m)) + "".join(f'"ID" : {i}\n' for i in ids))
    elif ctx.write_out == "protobuf":
        ctx.out.write(m.SerializeToString())
    else:
        ctx.out.line(f"found {len(ids)} leases")
        for lease_id in ids:
            ctx.out.line(lease_hex(lease_id))
    return EXIT_OK


def _print_keepalive(ctx: Context, answer: Any) -> None:
    if ctx.write_out == "json":
        ctx.out.line(_lease_json(answer.header, ID=answer.id, TTL=answer.ttl))
    elif ctx.write_out == "fields":
        ctx.out.write(fields_header(answer.header) + f'"ID" : {answer.id}\n"TTL" : {answer.ttl}\n')
    elif ctx.write_out == "protobuf":
        from ._pb import encode_response

        ctx.out.write(encode_response(answer))
    else:
        ctx.out.line(f"lease {lease_hex(answer.id)} keepalived with TTL({answer.ttl})")
    ctx.out.flush()


def run_keep_alive(ctx: Context, args: Args) -> int:
    """Refresh the lease every third of its TTL, printing each answer, until
    Ctrl-C or until the lease is gone (then, as etcdctl: a line and exit 0)."""
    from ..errors import EtcdError, LeaseNotFoundError

    lease_id = lease_arg(args.id)
    client = ctx.client()
    first = True
    while True:
        try:
            answer = client.keep_alive_once(lease_id)
        except LeaseNotFoundError as exc:
            if first or args.once:
                raise _stream_error(exc) from None
            if ctx.write_out == "simple":
                ctx.out.line(f"lease {lease_hex(lease_id)} expired or revoked.")
            return EXIT_OK
        except EtcdError as exc:
            raise _stream_error(exc) from None
        first = False
        _print_keepalive(ctx, answer)
        if args.once:
            return EXIT_OK
        time.sleep(max(0.5, answer.ttl / 3.0))


def register(commands: Commands) -> None:
    lease = commands.group("lease", help="Lease related commands")
    p = lease.add("grant", run_grant, help="Creates leases", usage="lease grant <ttl>",
                  arg_error="lease grant command needs TTL argument")
    p.add_argument("ttl", help="time to live, in seconds")
    p = lease.add("revoke", run_revoke, help="Revokes leases", usage="lease revoke <leaseID>",
                  arg_error="lease revoke command needs 1 argument")
    p.add_argument("id", metavar="leaseID", help="lease ID (hex)")
    p = lease.add("timetolive", run_timetolive, help="Get lease information",
                  usage="lease timetolive <leaseID> [options]",
                  arg_error="lease timetolive command needs lease ID as argument")
    p.add_argument("id", metavar="leaseID", help="lease ID (hex)")
    p.add_argument("--keys", action="store_true", help="Get keys attached to this lease")
    lease.add("list", run_list, help="List all active leases", usage="lease list")
    p = lease.add("keep-alive", run_keep_alive, help="Keeps leases alive (renew)",
                  usage="lease keep-alive [options] <leaseID>",
                  arg_error="lease keep-alive command needs lease ID as argument")
    p.add_argument("id", metavar="leaseID", help="lease ID (hex)")
    p.add_argument("--once", action="store_true",
                   help="Resets the keep-alive time to its original value and exits immediately")
