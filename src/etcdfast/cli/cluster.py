"""``endpoint health|status``, ``member list``, ``snapshot save`` and ``version``.

``endpoint health`` checks each endpoint on its own connection with a
linearizable read (it needs a leader and a quorum round, like etcdctl's
check); ``endpoint status`` asks each endpoint for its Maintenance status.
Both exit 1 if any endpoint fails. ``snapshot save`` needs exactly one
endpoint (the member whose database is saved), as with etcdctl.
"""

from __future__ import annotations

import math
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Tuple, TypeVar

from .. import IMPLEMENTATION, Client, __version__
from .._progress import ProgressBar
from ..errors import EtcdError, PermissionDeniedError
from ..types import StatusResult
from ._flags import ArgError, Args
from ._context import EXIT_ERROR, EXIT_OK, CliError, Commands, Context
from .output import dumps, header_json, render_table

__all__ = ["register", "go_duration", "human_bytes", "per_endpoint"]

T = TypeVar("T")


def go_duration(seconds: float) -> str:
    """Format like Go's ``time.Duration.String()``: ``1.752246ms``, ``2.5s``."""
    ns = int(round(seconds * 1e9))
    if ns < 1000:
        return f"{ns}ns"
    for unit, scale in (("µs", 1e3), ("ms", 1e6)):
        if ns < scale * 1000:
            return f"{ns / scale:.6f}".rstrip("0").rstrip(".") + unit
    return f"{ns / 1e9:.9f}".rstrip("0").rstrip(".") + "s"


def human_bytes(size: int) -> str:
    """Go's ``humanize.Bytes`` (SI units), as etcdctl prints DB sizes: ``29 kB``."""
    if size < 10:
        return f"{size} B"
    units = ["B", "kB", "MB", "GB", "TB", "PB", "EB"]
    exponent = min(int(math.floor(math.log(size) / math.log(1000))), len(units) - 1)
    value = math.floor(size / 1000**exponent * 10 + 0.5) / 10
    return f"{value:.0f} {units[exponent]}" if value >= 10 else f"{value:.1f} {units[exponent]}"


Outcome = Tuple[str, Optional[T], Optional[str]]


def per_endpoint(ctx: Context, check: Callable[[Client], T]) -> List[Outcome[T]]:
    """Run ``check`` against each endpoint on its own client, concurrently.

    Returns ``(endpoint, result, error)`` per endpoint, in ``--endpoints`` order.
    """
    kwargs = ctx.client_kwargs()  # refuses unsupported security flags first
    results: List[Outcome[T]] = [(ep, None, "no answer in time") for ep in ctx.endpoints]

    def run(i: int, endpoint: str) -> None:
        client: Optional[Client] = None
        try:
            client = Client([endpoint], timeout=ctx.command_timeout, **kwargs)
            results[i] = (endpoint, check(client), None)
        except (EtcdError, ValueError, OSError) as exc:
            results[i] = (endpoint, None, str(exc))
        finally:
            if client is not None:
                client.close()

    threads = [threading.Thread(target=run, args=(i, ep), daemon=True)
               for i, ep in enumerate(ctx.endpoints)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + ctx.command_timeout + 5
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    return list(results)


# -- endpoint health ------------------------------------------------------------------


def _health(client: Client) -> float:
    start = time.perf_counter()
    try:
        client.get(b"health")
    except PermissionDeniedError:
        pass  # permission denied comes from a working member (as etcdctl)
    return time.perf_counter() - start


def run_endpoint_health(ctx: Context, args: Args) -> int:
    checked = per_endpoint(ctx, _health)
    if ctx.write_out == "json":
        rows: List[Dict[str, Any]] = []
        for endpoint, took, error in checked:
            row: Dict[str, Any] = {"endpoint": endpoint, "health": error is None,
                                   "took": go_duration(took or 0.0)}
            if error:
                row["error"] = error
            rows.append(row)
        ctx.out.line(dumps(rows))
    elif ctx.write_out == "table":
        ctx.out.write(render_table(
            ["ENDPOINT", "HEALTH", "TOOK", "ERROR"],
            [[endpoint, str(error is None).lower(), go_duration(took or 0.0), error or ""]
             for endpoint, took, error in checked],
        ))
    else:
        for endpoint, took, error in checked:
            if error is None:
                ctx.out.line(f"{endpoint} is healthy: successfully committed proposal: "
                             f"took = {go_duration(took or 0.0)}")
            else:
                ctx.stderr.write(f"{endpoint} is unhealthy: failed to commit proposal: {error}\n")
    if any(error is not None for _, _, error in checked):
        raise CliError("unhealthy cluster", EXIT_ERROR)
    return EXIT_OK


# -- endpoint status --------------------------------------------------------------------


def _status(client: Client) -> StatusResult:
    return client.status()


def run_endpoint_status(ctx: Context, args: Args) -> int:
    checked = per_endpoint(ctx, _status)
    good = [(endpoint, status) for endpoint, status, _ in checked if status is not None]
    for endpoint, _, error in checked:
        if error is not None:
            ctx.stderr.write(f"Failed to get the status of endpoint {endpoint} ({error})\n")
    if ctx.write_out == "json":
        ctx.out.line(dumps([{"Endpoint": ep, "Status": _status_json(status)} for ep, status in good]))
    elif ctx.write_out == "table":
        ctx.out.write(render_table(
            ["ENDPOINT", "ID", "VERSION", "DB SIZE", "IS LEADER", "IS LEARNER", "RAFT TERM",
             "RAFT INDEX", "RAFT APPLIED INDEX", "ERRORS"],
            [_status_row(endpoint, status) for endpoint, status in good],
        ))
    else:
        for endpoint, status in good:
            ctx.out.line(", ".join(_status_row(endpoint, status)))
    if len(good) != len(checked):
        raise CliError("could not get the status of every endpoint", EXIT_ERROR)
    return EXIT_OK


def _status_row(endpoint: str, status: StatusResult) -> List[str]:
    return [endpoint, f"{status.header.member_id:x}", status.version, human_bytes(status.db_size),
            str(status.is_leader).lower(), str(status.is_learner).lower(), str(status.raft_term),
            str(status.raft_index), str(status.raft_applied_index), ", ".join(status.errors)]


def _status_json(status: StatusResult) -> Dict[str, Any]:
    """etcdctl's shape: the StatusResponse's JSON names, zero values left out."""
    fields = (("version", status.version), ("dbSize", status.db_size), ("leader", status.leader),
              ("raftIndex", status.raft_index), ("raftTerm", status.raft_term),
              ("raftAppliedIndex", status.raft_applied_index), ("errors", status.errors),
              ("dbSizeInUse", status.db_size_in_use), ("isLearner", status.is_learner))
    out: Dict[str, Any] = {"header": header_json(status.header)}
    out.update({name: value for name, value in fields if value})
    return out


# -- member list -------------------------------------------------------------------------


def run_member_list(ctx: Context, args: Args) -> int:
    result = ctx.client().member_list(linearizable=args.consistency == "l")
    if ctx.write_out == "json":
        members = []
        for m in result.members:
            entry: Dict[str, Any] = {"ID": m.id}
            for name, value in (("name", m.name), ("peerURLs", m.peer_urls),
                                ("clientURLs", m.client_urls), ("isLearner", m.is_learner)):
                if value:
                    entry[name] = value
            members.append(entry)
        ctx.out.line(dumps({"header": header_json(result.header), "members": members}))
        return EXIT_OK
    rows = [[f"{m.id:x}", "started" if m.started else "unstarted", m.name, ",".join(m.peer_urls),
             ",".join(m.client_urls), str(m.is_learner).lower()] for m in result.members]
    if ctx.write_out == "table":
        ctx.out.write(render_table(
            ["ID", "STATUS", "NAME", "PEER ADDRS", "CLIENT ADDRS", "IS LEARNER"], rows))
    else:
        for row in rows:
            ctx.out.line(", ".join(row))
    return EXIT_OK


# -- snapshot save -------------------------------------------------------------------------


def run_snapshot_save(ctx: Context, args: Args) -> int:
    if len(ctx.endpoints) != 1:
        raise CliError("snapshot save: give exactly one endpoint (the member whose database to save), "
                       f"not {len(ctx.endpoints)}")
    client = ctx.client()
    bar = ProgressBar(None, label="snapshot", unit="B", stream=ctx.stderr,
                      enabled=ctx.progress_enabled())

    def progress(written: int, remaining: int) -> None:
        bar.total = (written + remaining) if remaining > 0 else None
        bar.update(written)

    try:
        result = client.snapshot(args.file, progress=progress)
    except OSError as exc:
        raise CliError(f"snapshot save: cannot write {args.file}: {exc.strerror or exc}") from None
    finally:
        bar.close()
    if ctx.write_out == "json":
        ctx.out.line(dumps(result._asdict()))
    else:
        revision = f", revision {result.revision}" if result.revision is not None else ""
        ctx.out.line(f"Snapshot saved at {result.path} ({result.size:,} bytes{revision}, "
                     f"sha256 {result.sha256})")
    return EXIT_OK


# -- version ---------------------------------------------------------------------------------


def run_version(ctx: Context, args: Args) -> int:
    ctx.out.line(f"etcdfast version: {__version__}")
    ctx.out.line(f"codec: {IMPLEMENTATION}")
    return EXIT_OK


def register(commands: Commands) -> None:
    endpoint = commands.group("endpoint", help="check the endpoints in --endpoints")
    endpoint.add("health", run_endpoint_health, help="check that each endpoint can serve a quorum read",
                 description=__doc__)
    endpoint.add("status", run_endpoint_status,
                 help="version, DB size, leader and raft state of each endpoint", description=__doc__)
    member = commands.group("member", help="cluster membership")
    p = member.add("list", run_member_list, help="list the cluster's members")
    p.add_argument("--consistency", choices=("l", "s"), default="l",
                   help="l: confirmed with the leader (default), s: the member's local view")
    snapshot = commands.group("snapshot", help="save a member's database")
    p = snapshot.add("save", run_snapshot_save, help="save the database of the (one) endpoint to FILE")
    p.add_argument("file", metavar="FILE", help="where to save it (written via FILE.part, then renamed)")
    commands.add("version", run_version, help="print the etcdfast version and codec")
