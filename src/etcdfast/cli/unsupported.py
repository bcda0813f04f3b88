"""``make-mirror`` and ``migrate``: etcdctl verbs etcdfast does not have (yet), refused clearly.

``migrate`` converts etcd v2 store data, a v2-API feature that etcdfast (a v3
client) does not offer; ``make-mirror`` needs the library's mirror syncer.
Both exit 4 (etcdctl's "bad feature") with a message saying what to use.
"""

from __future__ import annotations

from ._context import EXIT_BAD_FEATURE, CliError, Commands, Context
from ._flags import Args

__all__ = ["register"]


def run_make_mirror(ctx: Context, args: Args) -> int:
    raise CliError("make-mirror is not supported by this etcdfast version (use etcdctl make-mirror)",
                   EXIT_BAD_FEATURE)


def run_migrate(ctx: Context, args: Args) -> int:
    raise CliError("migrate converts etcd v2 data: etcdfast is a v3 client (use etcdctl 3.4's migrate)",
                   EXIT_BAD_FEATURE)


def register(commands: Commands) -> None:
    p = commands.add("make-mirror", run_make_mirror, help="Makes a mirror at the destination etcd cluster",
                     usage="make-mirror [options] <destination>", description=__doc__, extra_args=True)
    for flag in ("--prefix", "--dest-prefix", "--dest-cert", "--dest-key", "--dest-cacert"):
        p.add_argument(flag, default="", help="accepted, see the description")
    for flag in ("--no-dest-prefix", "--dest-insecure-transport"):
        p.add_argument(flag, action="store_true", help="accepted, see the description")
    p = commands.add("migrate", run_migrate, help="Migrates keys in a v2 store to a mvcc store",
                     usage="migrate", description=__doc__, extra_args=True)
    for flag in ("--data-dir", "--wal-dir", "--transformer"):
        p.add_argument(flag, default="", help="accepted, see the description")
    p.add_argument("--no-ttl", action="store_true", help="accepted, see the description")
