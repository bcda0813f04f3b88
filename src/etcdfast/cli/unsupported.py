"""``migrate``: the etcdctl verb etcdfast does not have, refused clearly.

``migrate`` converts etcd v2 store data, a v2-API feature that etcdfast (a v3
client) does not offer. It exits 4 (etcdctl's "bad feature") with a message
saying what to use.
"""

from __future__ import annotations

from ._context import EXIT_BAD_FEATURE, CliError, Commands, Context
from ._flags import Args

__all__ = ["register"]


def run_migrate(ctx: Context, args: Args) -> int:
    raise CliError("migrate converts etcd v2 data: etcdfast is a v3 client (use etcdctl 3.4's migrate)",
                   EXIT_BAD_FEATURE)


def register(commands: Commands) -> None:
    p = commands.add("migrate", run_migrate, help="Migrates keys in a v2 store to a mvcc store",
                     usage="migrate", description=__doc__, extra_args=True)
    for flag in ("--data-dir", "--wal-dir", "--transformer"):
        p.add_argument(flag, default="", help="accepted, see the description")
    p.add_argument("--no-ttl", action="store_true", help="accepted, see the description")
