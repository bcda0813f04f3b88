"""``lock`` and ``elect``: etcdctl's distributed lock and leader election.

Both use the library's sessions, locks and elections, which follow Go's
concurrency package key for key, so an ``etcdfast lock NAME`` and an
``etcdctl lock NAME`` (or a Go program) exclude each other.

lock NAME             hold the lock, print its key, release it on Ctrl-C or SIGTERM;
lock NAME CMD ARGS    run CMD while holding it (ETCD_LOCK_KEY, ETCD_LOCK_REV set), then release;
elect NAME PROPOSAL   campaign, print the leader key and value once elected, resign on Ctrl-C;
elect -l NAME         print the leader, and every new one, until Ctrl-C.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from typing import Any, Iterator, List

from ._context import EXIT_BAD_ARGS, EXIT_ERROR, EXIT_OK, CliError, Commands, Context
from ._flags import Args
from .kv import print_get

__all__ = ["register"]


class _Stop:
    """SIGINT/SIGTERM set an event instead of killing the process (as etcdctl's handler)."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self._old = {}
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._old[sig] = signal.signal(sig, self._handle)

    def _handle(self, signum: int, frame: Any) -> None:
        self.event.set()

    def wait(self, session: Any) -> bool:
        """Wait for a signal (True) or the end of the session's lease (False)."""
        while not self.event.is_set():
            if session.wait(0.2):
                return self.event.is_set()
        return True

    def restore(self) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)


def _canceled() -> CliError:
    # Interrupted while waiting: etcdctl's canceled context (the session's revoke, in
    # the finally blocks below, takes our waiting key away).
    return CliError("context canceled", EXIT_ERROR)


def _session(ctx: Context, ttl: int) -> Any:
    return ctx.client().session(ttl=ttl)


def run_lock(ctx: Context, args: Args) -> int:
    words = args.words
    if not words:
        raise CliError("lock takes a lock name argument and an optional command to execute", EXIT_BAD_ARGS)
    name, command = words[0], words[1:]
    stop = _Stop()
    session = _session(ctx, args.ttl)
    try:
        mutex = session.mutex(name)
        lock_done = threading.Event()
        failure: List[BaseException] = []

        def acquire() -> None:
            try:
                mutex.lock()
            except BaseException as exc:  # reported by the main thread
                failure.append(exc)
            finally:
                lock_done.set()

        threading.Thread(target=acquire, daemon=True).start()
        while not lock_done.wait(0.1):
            if stop.event.is_set():
                raise _canceled()
        if failure:
            raise failure[0]
        if command:
            env = dict(os.environ, ETCD_LOCK_KEY=os.fsdecode(mutex.key),
                       ETCD_LOCK_REV=str(mutex.header.revision))
            try:
                code = subprocess.call(command, env=env, stdout=ctx.stdout, stderr=ctx.stderr)
            except OSError as exc:
                raise CliError(f"exec: {command[0]!r}: {exc.strerror or exc}", EXIT_ERROR) from None
            finally:
                mutex.unlock()
            if code:
                raise CliError(f"exit status {code}", EXIT_ERROR)
            return EXIT_OK
        result = ctx.client().get(mutex.key)
        if not result.kvs:
            raise CliError("lock lost on init", EXIT_ERROR)
        print_get(ctx, result)
        ctx.out.flush()
        if stop.wait(session):
            mutex.unlock()
            return EXIT_OK
        raise CliError("session expired", EXIT_ERROR)
    finally:
        stop.restore()
        session.close()


def run_elect(ctx: Context, args: Args) -> int:
    words = args.words
    if len(words) not in (1, 2):
        raise CliError("elect takes one election name argument and an optional proposal argument",
                       EXIT_BAD_ARGS)
    if len(words) == 1 and not args.listen:
        raise CliError("no proposal argument but -l not set", EXIT_BAD_ARGS)
    if len(words) == 2 and args.listen:
        raise CliError("proposal given but -l is set", EXIT_BAD_ARGS)
    stop = _Stop()
    session = _session(ctx, 60)
    try:
        election = session.election(words[0])
        if args.listen:
            return _observe(ctx, stop, election)
        done = threading.Event()
        failure: List[BaseException] = []

        def campaign() -> None:
            try:
                election.campaign(os.fsencode(words[1]))
            except BaseException as exc:
                failure.append(exc)
            finally:
                done.set()

        threading.Thread(target=campaign, daemon=True).start()
        while not done.wait(0.1):
            if stop.event.is_set():
                raise _canceled()
        if failure:
            raise failure[0]
        print_get(ctx, ctx.client().get(election.key))
        ctx.out.flush()
        if not stop.wait(session):
            raise CliError("elect: session expired", EXIT_ERROR)
        election.resign()
        return EXIT_OK
    finally:
        stop.restore()
        session.close()


def _observe(ctx: Context, stop: _Stop, election: Any) -> int:
    from ..types import GetResult

    observed: Iterator[Any] = election.observe()
    failure: List[BaseException] = []

    def follow() -> None:
        try:
            for kv in observed:
                print_get(ctx, GetResult(None, [kv], False, 1))  # type: ignore[arg-type]
                ctx.out.flush()
        except BaseException as exc:
            failure.append(exc)
        finally:
            stop.event.set()

    thread = threading.Thread(target=follow, daemon=True)
    thread.start()
    stop.event.wait()
    if failure or not thread.is_alive():
        raise CliError("elect: observer lost", EXIT_ERROR)
    return EXIT_OK


def register(commands: Commands) -> None:
    p = commands.add("lock", run_lock, help="Acquires a named lock",
                     usage="lock <lockname> [exec-command arg1 arg2 ...]", description=__doc__)
    p.add_argument("words", nargs="*", metavar="ARG", help="lock name, then an optional command")
    p.add_argument("--ttl", type=int, default=10, help="timeout for session")
    p = commands.add("elect", run_elect, help="Observes and participates in leader election",
                     usage="elect <election-name> [proposal]", description=__doc__)
    p.add_argument("words", nargs="*", metavar="ARG", help="election name, then a proposal")
    p.add_argument("-l", "--listen", action="store_true", help="observation mode")
