"""``check perf`` and ``check datascale``: not in etcdfast yet, refused clearly.

etcdctl's checks write tens of thousands of keys at a fixed rate and read
the server's memory from its metrics; ``etcdfast bench`` measures put/get/
range/txn/watch instead. Both exit 4 (etcdctl's "bad feature").
"""

from __future__ import annotations

from ._context import EXIT_BAD_FEATURE, CliError, Commands, Context
from ._flags import Args

__all__ = ["register"]


def run_check(ctx: Context, args: Args) -> int:
    raise CliError("check perf/datascale are not supported by this etcdfast version "
                   "(etcdfast bench measures put/get/range/txn/watch)", EXIT_BAD_FEATURE)


def register(commands: Commands) -> None:
    check = commands.group("check", help="commands for checking properties of the etcd cluster")
    for verb, what in (("perf", "Check the performance of the etcd cluster"),
                       ("datascale", "Check the memory usage of holding data for different workloads")):
        p = check.add(verb, run_check, help=what + " (not in etcdfast: see --help)",
                      usage=f"check {verb} [options]",
                      description=__doc__)
        p.add_argument("--load", default="s", help="workload model: s, m, l, xl (accepted)")
        p.add_argument("--prefix", default=f"/etcdctl-check-{verb}/", help="key prefix (accepted)")
        p.add_argument("--auto-compact", action="store_true", help="accepted")
        p.add_argument("--auto-defrag", action="store_true", help="accepted")
