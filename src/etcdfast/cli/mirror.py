"""``make-mirror DEST``: keep a copy of a prefix in another etcd, as etcdctl does.

Everything under ``--prefix`` (default: the whole keyspace) is read at one
revision and written into the destination (in batched Txns, several in
flight), then every later change follows, one Txn per source revision (split
every ``--max-txn-ops`` ops). Keys keep their prefix unless ``--dest-prefix``
replaces it or ``--no-dest-prefix`` drops it. The destination is a plain
endpoint: ``--dest-cacert``/``--dest-cert``/``--dest-key`` for TLS, and
``--dest-user``/``--dest-password`` for auth (etcdctl 3.5's flags).

Like etcdctl it runs until interrupted and prints the number of keys and
events copied every 30 seconds; on a terminal a progress line says how far
it got. When it stops (Ctrl-C, or an error) it prints the source revision
copied up to: ``--rev REV`` resumes after it without a gap or a repeat.
"""

from __future__ import annotations

import signal
import threading
from typing import Any, Dict, Optional

from .._progress import ProgressBar
from ..api.mirror import DEFAULT_MAX_TXN_OPS
from ..errors import CompactedError, EtcdError
from ._context import EXIT_BAD_ARGS, EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK, CliError, Commands, Context
from ._flags import ArgError, Args

__all__ = ["register"]

#: etcdctl prints the running total this often.
TOTAL_EVERY_S = 30.0


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ArgError(f"expected an integer, got {text!r}") from None
    if value < 0:
        raise ArgError(f"must be >= 0, got {value}")
    return value


def _dest_kwargs(ctx: Context, args: Args) -> Dict[str, Any]:
    kwargs: Dict[str, Any] = {"dial_timeout": ctx.dial_timeout, "timeout": ctx.command_timeout}
    if bool(args.dest_cert) != bool(args.dest_key):
        raise CliError("--dest-cert and --dest-key go together", EXIT_BAD_ARGS)
    for flag, name in (("dest_cacert", "ca_cert"), ("dest_cert", "cert"), ("dest_key", "key")):
        if getattr(args, flag):
            kwargs[name] = getattr(args, flag)
    user, password = args.dest_user, args.dest_password
    if user or password:  # etcdctl 3.5: --dest-user NAME[:PASSWORD], or with --dest-password
        if not user:
            raise CliError("--dest-password needs --dest-user", EXIT_BAD_ARGS)
        if not password and ":" in user:
            user, password = user.split(":", 1)
        if not password:
            raise CliError(f"--dest-user {user}: no password (use --dest-user {user}:PASSWORD "
                           "or --dest-password)", EXIT_BAD_ARGS)
        kwargs["user"], kwargs["password"] = user, password
    return kwargs


def run_make_mirror(ctx: Context, args: Args) -> int:
    if len(args.rest) != 1:
        raise CliError("make-mirror takes one destination argument", EXIT_BAD_ARGS)
    if args.no_dest_prefix and args.dest_prefix:
        raise CliError("`--dest-prefix` and `--no-dest-prefix` cannot be set at the same time, choose one",
                       EXIT_BAD_ARGS)
    if args.max_txn_ops < 1:
        raise CliError("--max-txn-ops must be >= 1", EXIT_BAD_ARGS)
    prefix = args.prefix.encode()
    dest_prefix: Optional[bytes] = b"" if args.no_dest_prefix else (args.dest_prefix.encode() or None)
    from .. import Client

    source = ctx.client()
    try:
        dest = Client(args.rest[0], **_dest_kwargs(ctx, args))
    except (ValueError, OSError) as exc:
        raise CliError(f"destination {args.rest[0]}: {exc}", EXIT_ERROR) from None
    syncer = source.mirror(prefix, revision=args.rev)
    stop = threading.Event()
    bar = ProgressBar(None, label="mirror", unit="keys", stream=ctx.stderr, enabled=ctx.progress_enabled())
    copied = [0]

    def progress(done: int, revision: int) -> None:
        copied[0] = done
        bar.update(done)

    def print_totals() -> None:  # etcdctl's output: the running total, every 30 s
        while not stop.wait(TOTAL_EVERY_S):
            ctx.stdout.write(f"{copied[0]}\n")
            ctx.stdout.flush()

    interrupted = [False]

    def on_sigint(signum: int, frame: Any) -> None:
        # Once the base is in, Ctrl-C only asks the copy to stop: it ends
        # between two revisions, its watch and clients close in order, and the
        # revision printed resumes exactly. A KeyboardInterrupt raised at any
        # bytecode could land inside the watch's own bookkeeping instead.
        # During the base (nothing to resume yet) and at a second Ctrl-C it is
        # a KeyboardInterrupt as usual.
        if interrupted[0] or not syncer.revision:
            raise KeyboardInterrupt
        interrupted[0] = True
        stop.set()

    ticker = threading.Thread(target=print_totals, name="etcdfast-mirror-total", daemon=True)
    ticker.start()
    code, problem = EXIT_OK, ""
    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, on_sigint) if in_main else None
    try:
        syncer.copy_to(dest, dest_prefix=dest_prefix, max_txn_ops=args.max_txn_ops,
                       progress=progress, stop=stop)
        if interrupted[0]:
            code = EXIT_INTERRUPTED
    except KeyboardInterrupt:
        code = EXIT_INTERRUPTED
    except CompactedError as exc:
        code, problem = EXIT_ERROR, f"{exc} (mirror again from a fresh base: drop --rev)"
    except EtcdError as exc:
        code, problem = EXIT_ERROR, str(exc)
    finally:
        if in_main:
            signal.signal(signal.SIGINT, previous)
        stop.set()
        bar.close()
        dest.close()
    if problem:
        ctx.stderr.write(f"Error: {problem}\n")
    revision = syncer.revision
    if revision:
        ctx.stderr.write(f"make-mirror: {copied[0]} keys and events copied, up to source revision "
                         f"{revision}; resume with --rev {revision}\n")
    return code


def register(commands: Commands) -> None:
    p = commands.add("make-mirror", run_make_mirror, help="Makes a mirror at the destination etcd cluster",
                     usage="make-mirror [options] <destination>", description=__doc__, extra_args=True)
    p.add_argument("--prefix", default="", help="Key-value prefix to mirror")
    p.add_argument("--dest-prefix", default="", help="destination prefix to mirror a prefix to a "
                   "different prefix in the destination cluster")
    p.add_argument("--no-dest-prefix", action="store_true",
                   help="mirror key-values to the root of the destination cluster")
    p.add_argument("--dest-cert", default="",
                   help="Identify secure client using this TLS certificate file for the destination cluster")
    p.add_argument("--dest-key", default="", help="Identify secure client using this TLS key file")
    p.add_argument("--dest-cacert", default="",
                   help="Verify certificates of TLS enabled secure servers using this CA bundle")
    p.add_argument("--dest-user", default="",
                   help="Destination username[:password] for authentication")
    p.add_argument("--dest-password", default="", help="Destination password for authentication")
    p.add_argument("--dest-insecure-transport", action="store_true", default=True,
                   help="Disable transport security for client connections")
    p.add_argument("--max-txn-ops", type=_count, default=DEFAULT_MAX_TXN_OPS,
                   help="Maximum number of operations permitted in a transaction during syncing updates.")
    p.add_argument("--rev", type=_count, default=0,
                   help="Specify the kv revision to start to mirror (resume after it)")

