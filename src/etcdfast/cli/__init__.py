"""The ``etcdfast`` command (also ``python -m etcdfast``): etcdctl's verbs and habits.

Each verb is a function ``run(ctx, args) -> int`` plus a few lines in its
module's ``register(commands)``; this package only assembles the parser and
turns outcomes into exit codes:

====  ===========================================================
0     success
1     etcd or the connection failed (the message names the endpoint)
2     bad arguments or bad input (the message names the line)
130   interrupted (Ctrl-C); bulk verbs print where to resume
====  ===========================================================

Modules: ``kv`` (get/put/del/compact), ``txn``, ``bulk`` (load/dump),
``cluster`` (endpoint, member, snapshot, version), ``lease``, ``watch``,
``demo``, ``bench``; ``output`` prints results; ``_context`` holds the
global options and the client.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Optional, Sequence, TextIO

from .. import __version__
from .._codec import IMPLEMENTATION
from ..errors import EtcdError, InvalidArgumentError
from . import bench, bulk, cluster, demo, kv, lease, txn, watch
from ._context import (
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    CliError,
    Commands,
    Context,
    add_global_options,
)

__all__ = ["main", "build_parser", "bench", "bulk", "cluster", "demo", "kv", "lease", "txn", "watch"]

#: Every module that contributes verbs; a new one only needs a ``register``.
VERB_MODULES = (kv, txn, bulk, watch, lease, cluster, demo, bench)

DESCRIPTION = """\
A fast etcd v3 command line, with etcdctl's verb names and flags.

examples:
  etcdfast put /greeting hello
  etcdfast get --prefix /app/ -w json
  etcdfast dump /app/ > app.jsonl && etcdfast load app.jsonl
  etcdfast demo                 # embedded etcd, 100k keys, a timing table

exit codes: 0 ok, 1 etcd/connection error, 2 usage or input error, 130 interrupted.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="etcdfast", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version",
                        version=f"etcdfast {__version__} (codec: {IMPLEMENTATION})")
    add_global_options(parser, suppress=False)
    # The same options after the verb name (etcdfast get k --endpoints ...).
    common = argparse.ArgumentParser(add_help=False)
    add_global_options(common, suppress=True)
    sub = parser.add_subparsers(title="commands", metavar="COMMAND", dest="command")
    sub.required = True
    commands = Commands(sub, [common])
    for module in VERB_MODULES:
        module.register(commands)
    return parser


def main(
    argv: Optional[Sequence[str]] = None,
    *,
    stdout: Optional[TextIO] = None,
    stderr: Optional[TextIO] = None,
    stdin: Optional[TextIO] = None,
) -> int:
    """Run one command; returns its exit code (never raises SystemExit)."""
    err = stderr if stderr is not None else sys.stderr
    parser = build_parser()
    try:
        args = parser.parse_args(list(argv) if argv is not None else None)
    except SystemExit as exc:  # --help, --version, or a usage error (argparse: 2)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    ctx: Optional[Context] = None
    try:
        ctx = Context(args, stdout=stdout, stderr=stderr, stdin=stdin)
        code = int(args.run(ctx, args))
        ctx.out.flush()
        return code
    except CliError as exc:
        _error(err, str(exc))
        return exc.code
    except EtcdError as exc:
        # Arguments the client refused before sending anything are usage errors;
        # the server's own refusals ("etcdserver: ...") are etcd errors.
        local = (isinstance(exc, InvalidArgumentError) and exc.__cause__ is None
                 and not str(exc.details).startswith("etcdserver:"))
        _error(err, str(exc))
        return EXIT_USAGE if local else EXIT_ERROR
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


def _error(stream: TextIO, message: str) -> None:
    try:
        stream.write(f"Error: {message}\n")
        stream.flush()
    except (OSError, ValueError):
        pass


def _silence_stdout() -> None:
    # Python would complain again when flushing stdout at exit.
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass

