"""``alarm``, ``defrag``, ``move-leader`` and ``snapshot save|status|restore``.

``defrag`` and ``snapshot save`` talk to each member in ``--endpoints``
itself (snapshot save: exactly one). ``snapshot status`` reads a saved file
offline (bbolt pages: revision, key count, size and etcd's CRC-32C hash of
every bucket, as etcdctl computes them). ``snapshot restore`` writes a new
member's WAL and data directory, which etcdfast does not do: it checks the
file's integrity, then says to use ``etcdutl snapshot restore``.
"""

from __future__ import annotations

import struct
from typing import Any, Dict, Iterator, List, Tuple

from ._context import EXIT_BAD_FEATURE, EXIT_ERROR, EXIT_OK, CliError, Commands, Context
from ._flags import Args
from .output import dumps, fields_header, render_table

__all__ = ["register", "snapshot_status", "crc32c"]

ALARM_NAMES = ("NONE", "NOSPACE", "CORRUPT")


# -- alarm ---------------------------------------------------------------------------------


def _alarm_line(member_id: int, alarm: int) -> str:
    # Go's %+v of *pb.AlarmMember: its compact text form (one space after each field).
    return f"memberID:{member_id} alarm:{ALARM_NAMES[alarm] if alarm < len(ALARM_NAMES) else alarm} "


def _print_alarms(ctx: Context, header: Any, alarms: List[Tuple[int, int]]) -> None:
    from .output import header_json

    if ctx.write_out == "json":
        out: Dict[str, Any] = {}
        if header is not None:
            out["header"] = header_json(header)
        if alarms:
            out["alarms"] = [{k: v for k, v in (("memberID", m), ("alarm", a)) if v} for m, a in alarms]
        ctx.out.line(dumps(out))
    elif ctx.write_out == "fields":
        ctx.out.write(fields_header(header) + "".join(
            f'"MemberID" : {m}\n"AlarmType" : {ALARM_NAMES[a]}\n\n' for m, a in alarms))
    elif ctx.write_out in ("table", "protobuf"):
        raise ctx.unsupported_format(ctx.write_out)
    else:
        for member_id, alarm in alarms:
            ctx.out.line(_alarm_line(member_id, alarm))


def run_alarm_list(ctx: Context, args: Args) -> int:
    from ..api import maintenance as api
    from ._raw import call, header_of

    m = call(ctx.client(), api.alarms(), "AlarmResponse")
    if ctx.write_out == "protobuf":
        ctx.out.write(m.SerializeToString())
        return EXIT_OK
    _print_alarms(ctx, header_of(m), [(a.memberID, a.alarm) for a in m.alarms])
    return EXIT_OK


def run_alarm_disarm(ctx: Context, args: Args) -> int:
    # clientv3's AlarmDisarm with no member: list, disarm each; the answer has no header.
    disarmed = ctx.client().alarm_disarm()
    _print_alarms(ctx, None, [(a.member_id, int(a.alarm)) for a in disarmed])
    return EXIT_OK


# -- defrag ----------------------------------------------------------------------------------


def run_defrag(ctx: Context, args: Args) -> int:
    from .cluster import per_endpoint

    if args.data_dir:
        raise CliError(f"Failed to defragment etcd data[{args.data_dir}] (offline defragmentation of a "
                       "data directory is not supported by etcdfast; use etcdutl defrag --data-dir)",
                       EXIT_BAD_FEATURE)
    if args.cluster:
        from .cluster import cluster_endpoints

        ctx.endpoints = cluster_endpoints(ctx)
    failures = 0
    for endpoint, _, error in per_endpoint(ctx, lambda c: c.defragment(timeout=max(ctx.command_timeout, 30))):
        if error is None:
            ctx.out.line(f"Finished defragmenting etcd member[{endpoint}]")
        else:
            ctx.stderr.write(f"Failed to defragment etcd member[{endpoint}] ({error})\n")
            failures += 1
    ctx.out.flush()
    return EXIT_ERROR if failures else EXIT_OK


# -- move-leader ---------------------------------------------------------------------------------


def run_move_leader(ctx: Context, args: Args) -> int:
    from .cluster import per_endpoint

    try:
        target = int(args.target, 16)
    except ValueError:
        raise CliError(f'strconv.ParseUint: parsing "{args.target}": invalid syntax') from None
    leader_endpoint, leader_id = None, 0
    for endpoint, status, error in per_endpoint(ctx, lambda c: c.status()):
        if error is not None:
            raise CliError(error, EXIT_ERROR)
        if status is not None and status.header.member_id == status.leader:
            leader_endpoint, leader_id = endpoint, status.leader
            break
    if leader_endpoint is None:
        raise CliError(f"no leader endpoint given at [{' '.join(ctx.endpoints)}]")
    client = ctx.new_client([leader_endpoint])
    result = client.move_leader(target)
    if ctx.write_out == "json":
        from .output import header_json

        ctx.out.line(dumps({"header": header_json(result.header)}))
    elif ctx.write_out == "simple":
        ctx.out.line(f"Leadership transferred from {leader_id:x} to {target:x}")
    else:
        raise ctx.unsupported_format(ctx.write_out)
    return EXIT_OK


# -- snapshot ---------------------------------------------------------------------------------------


def run_snapshot_save(ctx: Context, args: Args) -> int:
    from .._progress import ProgressBar

    if len(ctx.endpoints) != 1:
        raise CliError(f"snapshot must be requested to one selected node, not multiple {ctx.endpoints}")
    client = ctx.client()
    bar = ProgressBar(None, label="snapshot", unit="B", stream=ctx.stderr, enabled=ctx.progress_enabled())

    def progress(written: int, remaining: int) -> None:
        bar.total = (written + remaining) if remaining > 0 else None
        bar.update(written)

    try:
        result = client.snapshot(args.file, progress=progress)
    except OSError as exc:
        raise CliError(f"could not write {args.file}: {exc.strerror or exc}", EXIT_ERROR) from None
    finally:
        bar.close()
    ctx.out.line(f"Snapshot saved at {args.file}")
    # etcdctl logs its details on stderr; these are etcdfast's.
    revision = f", revision {result.revision}" if result.revision is not None else ""
    ctx.note(f"snapshot: {result.size:,} bytes{revision}, sha256 {result.sha256}")
    return EXIT_OK


def crc32c(data: bytes, crc: int = 0) -> int:
    """CRC-32C (Castagnoli), as Go's ``crc32.MakeTable(crc32.Castagnoli)`` (update form)."""
    table = _crc_table()
    crc ^= 0xFFFFFFFF
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


_TABLE: List[int] = []


def _crc_table() -> List[int]:
    if not _TABLE:
        for i in range(256):
            crc = i
            for _ in range(8):
                crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
            _TABLE.append(crc)
    return _TABLE


def _leaves(bolt: Any, page: bytes) -> Iterator[Tuple[int, bytes, bytes]]:
    """Every (flags, key, value) of a bucket, in key order."""
    from .._core.snapshot import _BRANCH, _PAGE_HEADER

    _, flags, _, _ = _PAGE_HEADER.unpack_from(page)
    for eflags, key, value in bolt.elements(page):
        if flags & _BRANCH:
            yield from _leaves(bolt, bolt.page(value))
        else:
            yield eflags, bytes(key), bytes(value)


def snapshot_status(path: str) -> Dict[str, int]:
    """etcdctl's snapshot status of a saved file: hash, revision, totalKey, totalSize."""
    from .._core.snapshot import _META, _PAGE_HEADER, _Bolt

    with open(path, "rb") as f:
        bolt = _Bolt(f)
        f.seek(0)
        # tx.Size(): the high-water page id times the page size (the newer meta page's).
        metas = []
        for offset in (0, bolt.page_size):
            f.seek(offset + _PAGE_HEADER.size)
            metas.append(_META.unpack(f.read(_META.size)))
        meta = max((m for m in metas if m[2] == bolt.page_size), key=lambda m: m[8])
        total_size = meta[7] * bolt.page_size
        crc, revision, total = 0, 0, 0
        for _, name, value in _leaves(bolt, bolt.page(bolt.root)):
            crc = crc32c(name, crc)
            root = struct.unpack_from("<Q", value)[0]
            page = value[16:] if root == 0 else bolt.page(root)
            for _, key, data in _leaves(bolt, page):
                crc = crc32c(data, crc32c(key, crc))
                if name == b"key" and len(key) >= 8:
                    revision = int.from_bytes(key[:8], "big")
                total += 1
    return {"hash": crc, "revision": revision, "totalKey": total, "totalSize": total_size}


def run_snapshot_status(ctx: Context, args: Args) -> int:
    from .cluster import human_bytes

    try:
        status = snapshot_status(args.file)
    except OSError as exc:
        raise CliError(f"stat {args.file}: {exc.strerror or exc}", EXIT_ERROR) from None
    except (ValueError, struct.error, IndexError) as exc:
        raise CliError(f"{args.file}: not a snapshot ({exc})", EXIT_ERROR) from None
    row = [f"{status['hash']:x}", str(status["revision"]), str(status["totalKey"]),
           human_bytes(status["totalSize"])]
    if ctx.write_out == "json":
        ctx.out.line(dumps(status))
    elif ctx.write_out == "table":
        ctx.out.write(render_table(["HASH", "REVISION", "TOTAL KEYS", "TOTAL SIZE"], [row]))
    elif ctx.write_out == "fields":
        ctx.out.write(f'"Hash" : {status["hash"]}\n"Revision" : {status["revision"]}\n'
                      f'"Keys" : {status["totalKey"]}\n"Size" : {status["totalSize"]}\n')
    elif ctx.write_out == "protobuf":
        raise ctx.unsupported_format("protobuf")
    else:
        ctx.out.line(", ".join(row))
    return EXIT_OK


def run_snapshot_restore(ctx: Context, args: Args) -> int:
    from .._core.snapshot import verify_snapshot
    from ..errors import SnapshotIntegrityError

    if not args.skip_hash_check:
        try:
            verify_snapshot(args.file)
        except SnapshotIntegrityError as exc:
            raise CliError(f"snapshot file integrity check failed: {exc} (expected sha256 does not match)",
                           EXIT_ERROR) from None
        except OSError as exc:
            raise CliError(f"open {args.file}: {exc.strerror or exc}", EXIT_ERROR) from None
    raise CliError("snapshot restore is not supported by etcdfast: it writes a new member's WAL and data "
                   f"directory; run etcdutl snapshot restore {args.file} (etcd 3.5+) or etcdctl 3.4's",
                   EXIT_BAD_FEATURE)


def register(commands: Commands) -> None:
    alarm = commands.group("alarm", help="Alarm related commands")
    alarm.add("disarm", run_alarm_disarm, help="Disarms all alarms", usage="alarm disarm",
              arg_error="alarm disarm command accepts no arguments")
    alarm.add("list", run_alarm_list, help="Lists all alarms", usage="alarm list",
              arg_error="alarm list command accepts no arguments")
    p = commands.add("defrag", run_defrag,
                     help="Defragments the storage of the etcd members with given endpoints",
                     usage="defrag")
    p.add_argument("--cluster", action="store_true", help="use all endpoints from the cluster member list")
    p.add_argument("--data-dir", default="",
                   help="Optional. If present, defragments a data directory not in use by etcd.")
    p = commands.add("move-leader", run_move_leader,
                     help="Transfers leadership to another etcd cluster member.",
                     usage="move-leader <transferee-member-id>",
                     arg_error="move-leader command needs 1 argument")
    p.add_argument("target", metavar="MEMBER_ID", help="the member to lead (hex ID)")
    snapshot = commands.group("snapshot", help="Manages etcd node snapshots")
    p = snapshot.add("save", run_snapshot_save, help="Stores an etcd node backend snapshot to a given file",
                     usage="snapshot save <filename>", arg_error="snapshot save expects one argument")
    p.add_argument("file", metavar="FILE", help="where to save it (written via FILE.part, then renamed)")
    p = snapshot.add("status", run_snapshot_status, help="Gets backend snapshot status of a given file",
                     usage="snapshot status <filename>",
                     arg_error="snapshot status requires exactly one argument")
    p.add_argument("file", metavar="FILE", help="a saved snapshot")
    p = snapshot.add("restore", run_snapshot_restore,
                     help="Checks a snapshot; restoring it is etcdutl's job (see --help)",
                     usage="snapshot restore <filename> [options]", description=__doc__,
                     arg_error="snapshot restore requires exactly one argument")
    p.add_argument("file", metavar="FILE", help="a saved snapshot")
    for flag, text in (("--data-dir", "Path to the data directory"), ("--wal-dir",
                                                                      "Path to the WAL directory"),
                       ("--initial-cluster", "Initial cluster configuration for restore bootstrap"),
                       ("--initial-cluster-token", "Initial cluster token for the etcd cluster"),
                       ("--initial-advertise-peer-urls", "This member's peer URLs"),
                       ("--name", "Human-readable name for this member")):
        p.add_argument(flag, default="", help=text + " (accepted; restore is etcdutl's)")
    p.add_argument("--skip-hash-check", action="store_true",
                   help="Ignore snapshot integrity hash value (required if copied from data directory)")
