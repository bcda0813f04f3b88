"""``endpoint health|status|hashkv``, ``member add|remove|update|promote|list`` and ``version``.

``endpoint health`` checks each endpoint on its own connection with a
linearizable read (it needs a leader and a quorum round, like etcdctl's
check); ``endpoint status`` asks each endpoint for its Maintenance status.
All exit 1 if any endpoint fails; ``--cluster`` uses every member's client
URLs from the member list instead of ``--endpoints``.
"""

from __future__ import annotations

import math
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Tuple, TypeVar

from ..errors import EtcdError, PermissionDeniedError
from ._context import EXIT_ERROR, EXIT_OK, CliError, Commands, Context, Runner
from ._flags import Args
from .output import dumps, fields_header, go_quote, header_json, render_table

if TYPE_CHECKING:
    from .. import Client
    from ..types import StatusResult

__all__ = ["register", "go_duration", "human_bytes", "per_endpoint", "cluster_endpoints"]

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


def per_endpoint(ctx: Context, check: Callable[["Client"], T]) -> List[Outcome[T]]:
    """Run ``check`` against each endpoint on its own client, concurrently.

    Returns ``(endpoint, result, error)`` per endpoint, in ``--endpoints`` order.
    """
    from . import error_text

    ctx.client_kwargs()  # refuses unsupported security flags first
    results: List[Outcome[T]] = [(ep, None, "no answer in time") for ep in ctx.endpoints]
    clients = [ctx.new_client([ep]) for ep in ctx.endpoints]

    def run(i: int, endpoint: str) -> None:
        try:
            results[i] = (endpoint, check(clients[i]), None)
        except (EtcdError, ValueError, OSError) as exc:
            results[i] = (endpoint, None, error_text(exc))

    threads = [threading.Thread(target=run, args=(i, ep), daemon=True)
               for i, ep in enumerate(ctx.endpoints)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + ctx.command_timeout + 5
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    return list(results)


# -- endpoint health ------------------------------------------------------------------


def cluster_endpoints(ctx: Context) -> List[str]:
    """``--cluster``: every member's client URLs, from the member list."""
    try:
        members = ctx.client().member_list().members
    except EtcdError as exc:
        from . import error_text

        raise CliError(f"failed to fetch endpoints from etcd cluster member list: {error_text(exc)}",
                       EXIT_ERROR) from None
    return [url for m in members for url in m.client_urls]


def _use_cluster(ctx: Context, args: Args) -> None:
    if getattr(args, "cluster", False):
        ctx.endpoints = cluster_endpoints(ctx)


def _health(client: "Client") -> float:
    start = time.perf_counter()
    try:
        client.get(b"health")
    except PermissionDeniedError:
        pass  # permission denied comes from a working member (as etcdctl)
    return time.perf_counter() - start


def run_endpoint_health(ctx: Context, args: Args) -> int:
    _use_cluster(ctx, args)
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
    elif ctx.write_out == "fields":
        ctx.out.write("".join(f'"Endpoint" : {go_quote(endpoint)}\n"Health" : {str(error is None).lower()}\n'
                              f'"Took" : {go_duration(took or 0.0)}\n"Error" : {error or ""}\n\n'
                              for endpoint, took, error in checked))
    else:
        # etcdctl 3.5's streams (3.4 wrote healthy lines to stderr too).
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


def _status(client: "Client") -> "StatusResult":
    return client.status()


def run_endpoint_status(ctx: Context, args: Args) -> int:
    _use_cluster(ctx, args)
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
    elif ctx.write_out == "fields":
        for endpoint, st in good:
            ctx.out.write(fields_header(st.header)
                          + f'"Version" : {go_quote(st.version)}\n"DBSize" : {st.db_size}\n'
                          f'"Leader" : {st.leader}\n"IsLearner" : {str(st.is_learner).lower()}\n'
                          f'"RaftIndex" : {st.raft_index}\n"RaftTerm" : {st.raft_term}\n'
                          f'"RaftAppliedIndex" : {st.raft_applied_index}\n'
                          f'"Errors" : [{" ".join(st.errors)}]\n'
                          f'"Endpoint" : {go_quote(endpoint)}\n\n')
    else:
        for endpoint, status in good:
            ctx.out.line(", ".join(_status_row(endpoint, status)))
    if len(good) != len(checked):
        raise CliError("could not get the status of every endpoint", EXIT_ERROR)
    return EXIT_OK


def _status_row(endpoint: str, status: "StatusResult") -> List[str]:
    return [endpoint, f"{status.header.member_id:x}", status.version, human_bytes(status.db_size),
            str(status.is_leader).lower(), str(status.is_learner).lower(), str(status.raft_term),
            str(status.raft_index), str(status.raft_applied_index), ", ".join(status.errors)]


def _status_json(status: "StatusResult") -> Dict[str, Any]:
    """etcdctl's shape: the StatusResponse's JSON names, zero values left out."""
    fields = (("version", status.version), ("dbSize", status.db_size), ("leader", status.leader),
              ("raftIndex", status.raft_index), ("raftTerm", status.raft_term),
              ("raftAppliedIndex", status.raft_applied_index), ("errors", status.errors),
              ("dbSizeInUse", status.db_size_in_use), ("isLearner", status.is_learner))
    out: Dict[str, Any] = {"header": header_json(status.header)}
    out.update({name: value for name, value in fields if value})
    return out


# -- member ---------------------------------------------------------------------------------


def _member_id(text: str) -> int:
    try:
        return int(text, 16)
    except ValueError:
        raise CliError(f'bad member ID arg (strconv.ParseUint: parsing "{text}": invalid syntax), '
                       "expecting ID in Hex") from None


def _members_fields(m: Any) -> str:
    from ._raw import header_of

    out = fields_header(header_of(m))
    for member in m.members:
        out += f'"ID" : {member.ID}\n"Name" : {go_quote(member.name)}\n'
        out += "".join(f'"PeerURL" : {go_quote(u)}\n' for u in member.peerURLs)
        out += "".join(f'"ClientURL" : {go_quote(u)}\n' for u in member.clientURLs)
        out += f'"IsLearner" : {str(member.isLearner).lower()}\n\n'
    return out


def _member_call(ctx: Context, request: Any, response: str, simple: Callable[[Any], None]) -> int:
    from ._raw import respond

    listing = response == "MemberListResponse"
    return respond(ctx, request, response, simple, _members_fields if listing else None, table=listing)


def _member_rows(m: Any) -> List[List[str]]:
    return [[f"{x.ID:x}", "started" if x.name else "unstarted", x.name, ",".join(x.peerURLs),
             ",".join(x.clientURLs), str(x.isLearner).lower()] for x in m.members]


def run_member_list(ctx: Context, args: Args) -> int:
    from ..api import cluster as api

    def simple(m: Any) -> None:
        if ctx.write_out == "table":
            ctx.out.write(render_table(["ID", "STATUS", "NAME", "PEER ADDRS", "CLIENT ADDRS", "IS LEARNER"],
                                       _member_rows(m)))
            return
        for row in _member_rows(m):
            ctx.out.line(", ".join(row))

    return _member_call(ctx, api.member_list(linearizable=args.consistency == "l"), "MemberListResponse",
                        simple)


def run_member_add(ctx: Context, args: Args) -> int:
    from ..api import cluster as api

    words = args.words
    if not words:
        raise CliError("member name not provided")
    if len(words) > 1:
        hint = "".join(f", did you mean --peer-urls={w}" for w in words if w.lower().startswith("http"))
        raise CliError("too many arguments" + hint)
    if not args.peer_urls:
        raise CliError("member peer urls not provided")
    name, urls = words[0], args.peer_urls.split(",")

    def simple(m: Any) -> None:
        ctx.out.line(f"Member {m.member.ID:16x} added to cluster {m.header.cluster_id:16x}")
        conf = [f"{name if x.ID == m.member.ID else x.name}={u}" for x in m.members for u in x.peerURLs]
        ctx.out.line()
        ctx.out.line(f"ETCD_NAME={go_quote(name)}")
        ctx.out.line(f"ETCD_INITIAL_CLUSTER={go_quote(','.join(conf))}")
        ctx.out.line(f"ETCD_INITIAL_ADVERTISE_PEER_URLS={go_quote(args.peer_urls)}")
        ctx.out.line('ETCD_INITIAL_CLUSTER_STATE="existing"')

    return _member_call(ctx, api.member_add(urls, is_learner=args.learner), "MemberAddResponse", simple)


def _member_change(verb: str, done: str) -> Runner:
    def run(ctx: Context, args: Args) -> int:
        from ..api import cluster as api

        member = _member_id(args.id)
        if verb == "update":
            if not args.peer_urls:
                raise CliError("member peer urls not provided")
            request = api.member_update(member, args.peer_urls.split(","))
        else:
            request = getattr(api, f"member_{verb}")(member)
        response = f"Member{verb.capitalize()}Response"
        return _member_call(ctx, request, response, lambda m: ctx.out.line(
            f"Member {member:16x} {done} cluster {m.header.cluster_id:16x}"))

    return run


# -- endpoint hashkv ------------------------------------------------------------------------


def run_endpoint_hashkv(ctx: Context, args: Args) -> int:
    from ..api import maintenance as api
    from ._raw import call, go_json, header_of

    _use_cluster(ctx, args)
    checked = per_endpoint(ctx, lambda c: call(c, api.hash_kv(args.rev), "HashKVResponse"))
    good = [(ep, m) for ep, m, _ in checked if m is not None]
    for endpoint, _, error in checked:
        if error is not None:
            ctx.stderr.write(f"Failed to get the hash of endpoint {endpoint} ({error})\n")
    if ctx.write_out == "json":
        ctx.out.line(dumps([{"Endpoint": ep, "HashKV": go_json(m)} for ep, m in good]))
    elif ctx.write_out == "table":
        ctx.out.write(render_table(["ENDPOINT", "HASH"], [[ep, str(m.hash)] for ep, m in good]))
    elif ctx.write_out == "fields":
        ctx.out.write("".join(fields_header(header_of(m))
                              + f'"Endpoint" : {go_quote(ep)}\n"Hash" : {m.hash}\n\n'
                              for ep, m in good))
    elif ctx.write_out == "protobuf":
        raise ctx.unsupported_format("protobuf")
    else:
        for endpoint, m in good:
            ctx.out.line(f"{endpoint}, {m.hash}")
    if len(good) != len(checked):
        raise CliError("could not get the hash of every endpoint", EXIT_ERROR)
    return EXIT_OK


# -- version ---------------------------------------------------------------------------------


def run_version(ctx: Context, args: Args) -> int:
    from . import _version_lines

    for line in _version_lines():
        ctx.out.line(line)
    return EXIT_OK


def register(commands: Commands) -> None:
    endpoint = commands.group("endpoint", help="Endpoint related commands")
    endpoint.command.add_argument("--cluster", action="store_true", persistent=True,
                                  help="use all endpoints from the cluster member list")
    endpoint.add("health", run_endpoint_health,
                 help="Checks the healthiness of endpoints specified in `--endpoints` flag",
                 usage="endpoint health", description=__doc__)
    endpoint.add("status", run_endpoint_status,
                 help="Prints out the status of endpoints specified in `--endpoints` flag",
                 usage="endpoint status", description=__doc__)
    p = endpoint.add("hashkv", run_endpoint_hashkv,
                     help="Prints the KV history hash for each endpoint in --endpoints",
                     usage="endpoint hashkv")
    p.add_argument("--rev", type=int, default=0, help="maximum revision to hash (default: all revisions)")

    member = commands.group("member", help="Membership related commands")
    p = member.add("add", run_member_add, help="Adds a member into the cluster",
                   usage="member add <memberName> [options]")
    p.add_argument("words", nargs="*", metavar="NAME", help="the new member's name")
    p.add_argument("--peer-urls", default="", help="comma separated peer URLs for the new member.")
    p.add_argument("--learner", action="store_true", help="indicates if the new member is raft learner")
    for verb, done, what in (("remove", "removed from", "Removes a member from the cluster"),
                             ("update", "updated in", "Updates a member in the cluster"),
                             ("promote", "promoted in", "Promotes a non-voting member in the cluster")):
        p = member.add(verb, _member_change(verb, done), help=what, usage=f"member {verb} <memberID>",
                       arg_error="member ID is not provided")
        p.add_argument("id", metavar="memberID", help="the member's ID (hex)")
        if verb == "update":
            p.add_argument("--peer-urls", default="",
                           help="comma separated peer URLs for the updated member.")
    p = member.add("list", run_member_list, help="Lists all members in the cluster", usage="member list")
    p.add_argument("--consistency", default="l", help="Linearizable(l) or Serializable(s)")
    commands.add("version", run_version, help="Prints the version of etcdctl", usage="version")
