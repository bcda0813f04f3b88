"""The ``etcdfast`` command (also ``python -m etcdfast``): a drop-in etcdctl.

Each verb is a function ``run(ctx, args) -> int`` plus a few lines in its
module's ``register(commands)``. Only the module of the verb being run is
imported (the table below names it), so ``etcdfast get`` pays for the KV
path and nothing else, and ``etcdfast --help`` for no client at all.

Exit codes are etcdctl's:

====  ===========================================================
0     success
1     etcd refused, the connection failed, or the command line did not parse
2     a lease or watch stream broke (etcdctl's "bad connection")
3     bad input (txn text, load records)
4     a valid flag with a value this command cannot honour (e.g. ``-w table``)
5     a watch canceled by the server (etcdctl's "interrupted")
128   the wrong arguments for the command
130   interrupted (Ctrl-C); bulk verbs print where to resume
====  ===========================================================
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Callable, Dict, List, Optional, Sequence, TextIO, Tuple

from ._flags import ArgCountError, Command, ParseError, parse

if TYPE_CHECKING:
    from ._context import Context

__all__ = ["main", "console_main", "build_root", "VERBS"]

#: Every top-level verb: the module that registers it and its one-line help.
#: The help is listed by ``etcdfast --help`` without importing any module.
VERBS: Dict[str, Tuple[str, str]] = {
    "get": ("kv", "Gets the key or a range of keys"),
    "put": ("kv", "Puts the given key into the store"),
    "del": ("kv", "Removes the specified key or range of keys [key, range_end)"),
    "txn": ("txn", "Txn processes all the requests in one transaction"),
    "compaction": ("kv", "Compacts the event history in etcd"),
    "alarm": ("maintenance", "Alarm related commands"),
    "defrag": ("maintenance", "Defragments the storage of the etcd members with given endpoints"),
    "endpoint": ("cluster", "Endpoint related commands"),
    "move-leader": ("maintenance", "Transfers leadership to another etcd cluster member."),
    "watch": ("watch", "Watches events stream on keys or prefixes"),
    "version": ("cluster", "Prints the version of etcdctl"),
    "lease": ("lease", "Lease related commands"),
    "member": ("cluster", "Membership related commands"),
    "snapshot": ("maintenance", "Manages etcd node snapshots"),
    "make-mirror": ("mirror", "Makes a mirror at the destination etcd cluster"),
    "migrate": ("unsupported", "Migrates keys in a v2 store to a mvcc store"),
    "lock": ("concurrency", "Acquires a named lock"),
    "elect": ("concurrency", "Observes and participates in leader election"),
    "auth": ("auth", "Enable or disable authentication"),
    "user": ("auth", "User related commands"),
    "role": ("auth", "Role related commands"),
    "check": ("check", "commands for checking properties of the etcd cluster"),
    "load": ("bulk", "Load key-values from JSON Lines, CSV or etcdctl JSON (fast, resumable)"),
    "dump": ("bulk", "Write every key-value under a prefix as JSON Lines, CSV or etcdctl JSON"),
    "bench": ("bench", "Benchmark put/get/range/txn/watch"),
    "demo": ("demo", "Write, read back and verify N keys on an embedded etcd; show the cost"),
}

#: Other names a verb answers to.
ALIASES = {"compaction": ("compact",)}

DESCRIPTION = """\
A fast etcd v3 command line: etcdctl's commands, flags, output and exit codes,
plus bulk load/dump, bench and demo.

examples:
  etcdfast put /greeting hello
  etcdfast get --prefix /app/ -w json
  etcdfast dump /app/ > app.jsonl && etcdfast load app.jsonl
  etcdfast demo                 # embedded etcd, 100k keys, a timing table

Options may come anywhere on the line; ETCDCTL_<OPTION> variables set the
global options (ETCDCTL_ENDPOINTS, ETCDCTL_DIAL_TIMEOUT...)."""


def _loader(verb: str) -> Callable[[Command], None]:
    def load(cmd: Command) -> None:
        import importlib

        from ._context import Commands

        module = importlib.import_module(f"{__name__}.{VERBS[verb][0]}")
        scratch = Command("", help="")
        module.register(Commands(scratch))
        real = scratch.subcommands[verb]
        cmd.__dict__.update({k: v for k, v in real.__dict__.items()
                             if k not in ("parent", "name", "aliases", "_loader")})
        for sub in cmd.subcommands.values():
            sub.parent = cmd

    return load


def build_root() -> Command:
    """The command tree; each verb's own options are added when it is looked up."""
    from ._context import GLOBAL_FLAGS

    root = Command("", help="A simple command line client for etcd3.", usage="etcdfast [flags]",
                   description=DESCRIPTION)
    root.persistent.extend(GLOBAL_FLAGS)
    for verb, (_, short) in VERBS.items():
        root.subcommands[verb] = Command(verb, help=short, parent=root, aliases=ALIASES.get(verb, ()),
                                         loader=_loader(verb))
    return root


def _version_lines() -> List[str]:
    from .. import __version__

    return [f"etcdctl version: {ETCDCTL_VERSION}", f"API version: {API_VERSION}",
            f"etcdfast version: {__version__}"]


#: The etcdctl release whose commands and output this CLI follows.
ETCDCTL_VERSION = "3.4.23"
API_VERSION = "3.4"


def main(
    argv: Optional[Sequence[str]] = None,
    *,
    stdout: Optional[TextIO] = None,
    stderr: Optional[TextIO] = None,
    stdin: Optional[TextIO] = None,
) -> int:
    """Run one command; returns its exit code (never raises SystemExit)."""
    err = stderr if stderr is not None else sys.stderr
    out = stdout if stdout is not None else sys.stdout
    words = list(sys.argv[1:] if argv is None else argv)
    if words == ["--version"]:
        _write(out, "\n".join(_version_lines()) + "\n")
        return 0
    root = build_root()
    try:
        cmd, args, help_asked = parse(root, words)
    except ParseError as exc:
        _error(err, str(exc))
        where = f"etcdfast {exc.command.path()}".strip() if exc.command is not None else "etcdfast"
        _write(err, f"Run '{where} --help' for usage.\n")
        return 1
    except ArgCountError as exc:
        _error(err, str(exc))
        return 128  # etcdctl's ExitBadArgs
    if help_asked or cmd.run is None:
        _write(out, cmd.help_text("etcdfast"))
        return 0
    return _run(cmd, args, out=stdout, err=err, stdin=stdin)


def console_main() -> None:
    """The ``etcdfast`` console script and ``python -m etcdfast``: :func:`main`, then exit.

    A command-line process ends with the interpreter's teardown, whose
    garbage collections walk every object still alive -- grpc's, asyncio's,
    ours: ~35 ms of an authenticated 0.25 s ``etcdfast put`` on a 2-core
    machine, more than the call itself. Nothing the process leaves behind
    needs the cycle collector any more, so everything moves to the permanent
    generation first; atexit hooks, flushing and reference-counted
    finalizers still run as usual. (Scripts that run etcdfast once per key,
    as etcd's own e2e suite does, pay that teardown every time.)
    """
    code = main()
    import gc

    gc.freeze()
    sys.exit(code)


def _run(cmd: Command, args: object, *, out: Optional[TextIO], err: TextIO, stdin: Optional[TextIO]) -> int:
    from ..errors import AuthFailedError, EtcdError
    from ._context import (
        EXIT_BAD_CONNECTION,
        EXIT_ERROR,
        EXIT_INTERRUPTED,
        CliError,
        Context,
        apply_environment,
    )

    ctx: Optional[Context] = None
    try:
        apply_environment(cmd, args)  # type: ignore[arg-type]
        ctx = Context(args, stdout=out, stderr=err, stdin=stdin)  # type: ignore[arg-type]
        assert cmd.run is not None
        code = int(cmd.run(ctx, args))
        ctx.out.flush()
        return code
    except CliError as exc:
        if ctx is not None:
            _flush(ctx)
        _error(err, str(exc))
        return exc.code
    except EtcdError as exc:
        if ctx is not None:
            _flush(ctx)
        _error(err, error_text(exc))
        # etcdctl logs in while it connects: a refused login is its "bad connection".
        return EXIT_BAD_CONNECTION if isinstance(exc, AuthFailedError) else EXIT_ERROR
    except KeyboardInterrupt:
        _error(err, "interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (etcdfast dump / | head): stop quietly.
        _silence_stdout()
        return EXIT_ERROR
    finally:
        if ctx is not None:
            ctx.close()


def error_text(exc: Exception) -> str:
    """etcdctl prints the server's own words (``etcdserver: requested lease not found``)."""
    from ..errors import CompactedError, LeaseNotFoundError

    # etcd's own words, also where the client found out by itself.
    if isinstance(exc, LeaseNotFoundError):
        return "etcdserver: requested lease not found"
    if isinstance(exc, CompactedError):
        return "etcdserver: mvcc: required revision has been compacted"
    details = getattr(exc, "details", None)
    if isinstance(details, str) and details.startswith(("etcdserver:", "etcdserver ")):
        return details
    return str(exc)


def _flush(ctx: "Context") -> None:
    try:
        ctx.out.flush()
    except (OSError, ValueError):
        pass


def _write(stream: TextIO, text: str) -> None:
    try:
        stream.write(text)
        stream.flush()
    except (OSError, ValueError):
        pass


def _error(stream: TextIO, message: str) -> None:
    _write(stream, f"Error: {message}\n")


def _silence_stdout() -> None:
    # Python would complain again when flushing stdout at exit.
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass
