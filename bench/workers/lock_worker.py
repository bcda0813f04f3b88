"""Lock benchmark worker (run by bench/lock_e2e.py): one client, one mode, JSON lines out.

Modes:

``cycles``   uncontended lock+unlock cycles on one session, timed by the shared
             harness (``_harness.Timer``: process CPU of this worker, wall per
             cycle). ``--client``:

             * ``etcdfast`` -- sync ``Mutex`` (the codec twin follows ETCDFAST_PURE);
             * ``etcdfast-async`` -- ``AsyncMutex`` on an ``AsyncClient``;
             * ``raw`` -- grpcio replaying Go's request sequence for one
               uncontended cycle (the acquire Txn, then the unlock DeleteRange),
               request bytes built once by etcdfast's request builders before
               timing, sent with ``channel.unary_unary(path)`` and no
               serializers, responses not decoded (the floor);
             * ``ab`` -- ``raw`` and ``etcdfast`` alternating in blocks in this
               one process (``_harness.run_ab``), the precise CPU ratio;
             * ``etcd3`` -- python-etcd3's ``Lock`` (acquire/release), in its venv;
             * ``etcdctl`` -- ``etcdctl lock NAME -- true`` per cycle, process included.

``contend``  ``--waiters`` threads in this process, each with its own client and
             session, contend for one lock, each taking it ``-k`` times and
             holding it ``--hold`` seconds; every hold is printed as
             ``{"acquired": t, "released": t}`` on CLOCK_MONOTONIC (shared by all
             processes of the machine), taken right after ``lock()`` returned
             and right after ``unlock()`` returned. With ``--sync`` the worker
             prints ``ready`` once connected and starts on a line from stdin
             (the orchestrator's start signal for one-waiter-per-process runs).
             ``--client etcdctl``: each thread runs ``etcdctl lock NAME`` (no
             command) processes in turn: acquired = its key line read from its
             stdout; released = the process reaped after SIGINT (etcdctl
             unlocks, then exits).

``rtt``      sequential gets of one key: the round-trip unit of the hand-off
             figures (etcdfast's sync client and raw grpcio, p50/p99).

Stdlib plus the client under test only: the python-etcd3 modes run in its own
venv, where etcdfast is not installed, so etcdfast is imported lazily.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import signal
import subprocess
import sys
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

import _harness as h

TIMEOUT = 60.0  # per-call deadline, as the other workers use
Hold = Dict[str, float]


def monotonic() -> float:
    return time.clock_gettime(time.CLOCK_MONOTONIC)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["cycles", "contend", "rtt"])
    parser.add_argument("--client", default="etcdfast",
                        choices=["etcdfast", "etcdfast-async", "raw", "ab", "etcd3", "etcdctl"])
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--name", default="/bench/lock/cycle", help="lock name")
    parser.add_argument("-n", type=int, default=2000, help="cycles (cycles mode), gets (rtt mode)")
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--blocks", type=int, default=20, help="A/B blocks (--client ab)")
    parser.add_argument("--waiters", type=int, default=8)
    parser.add_argument("-k", type=int, default=50, help="acquisitions per waiter (contend)")
    parser.add_argument("--hold", type=float, default=0.001, help="seconds each hold lasts")
    parser.add_argument("--sync", action="store_true", help="print 'ready', start on a stdin line")
    parser.add_argument("--etcdctl", help="path of the etcdctl binary")
    parser.add_argument("--profile", help="cProfile the timed cycles into this file (cycles mode)")
    return parser.parse_args()


# -- uncontended cycles -----------------------------------------------------------


def time_cycles(name: str, op: Callable[[int], Any], n: int, warmup: int,
                check: Callable[[Any], None], profile: Optional[str] = None) -> None:
    """_harness.run for one workload, plus the CPU of child processes (etcdctl)."""
    for i in range(warmup):
        op(i)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    profiler = None
    if profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    timer, last = h.Timer(), None
    for i in timer.steps(n):
        last = op(i)
    if profiler is not None and profile:
        profiler.disable()
        profiler.dump_stats(profile)
    child = child_cpu(children)
    check(last)
    h.emit(name, "cycle", {**timer.result(), "child_cpu_us_per_op": child / n * 1e6})


def child_cpu(since: Any) -> float:
    """CPU seconds of reaped child processes (etcdctl) since the ``since`` rusage."""
    now = resource.getrusage(resource.RUSAGE_CHILDREN)
    return float((now.ru_utime + now.ru_stime) - (since.ru_utime + since.ru_stime))


Cycle = Tuple[Callable[[int], Any], Callable[[Any], None]]


def etcdfast_cycle(args: argparse.Namespace, mutex: Any) -> Cycle:
    lock, unlock = mutex.lock, mutex.unlock

    def op(i: int) -> int:
        lock()
        revision = mutex.revision
        unlock()
        return revision  # type: ignore[no-any-return]

    def check(revision: Any) -> None:
        assert revision > 0 and not mutex.locked, "the lock was not taken and released"

    return op, check


class RawLock:
    """Go's uncontended cycle on a plain grpcio channel, requests encoded once.

    The acquire Txn is exactly ``Mutex.Lock``'s (clientv3/concurrency/mutex.go):
    if create_revision(key) == 0 then put(key, "", lease) and
    get(prefix, sort by create ascending, limit 1), else get(key) and the same
    get; the unlock is ``Delete(key)``. Built with etcdfast's request builders
    (the same bytes Go sends: see ``check``), sent without serializers.
    """

    def __init__(self, channel: Any, name: str) -> None:
        from etcdfast.api import kv, lease
        from etcdfast.api.txn import Compare, Op, txn

        grant = lease.grant(3600)
        self._grant_decode = grant.decode
        self.lease = grant.decode(channel.unary_unary(grant.method)(grant.payload, timeout=TIMEOUT), None).id
        self._revoke = lease.revoke(self.lease)
        prefix = name.encode() + b"/"
        self.key = prefix + b"%x" % self.lease
        owner = Op.get(prefix, prefix=True, sort_target="create", sort_order="ascend", limit=1)
        acquire = txn(compare=[Compare.create_revision(self.key) == 0],
                      success=[Op.put(self.key, b"", lease=self.lease), owner],
                      failure=[Op.get(self.key), owner])
        release = kv.delete(self.key)
        self._decode_txn = acquire.decode
        self.acquire_payload, self.release_payload = acquire.payload, release.payload
        self._channel = channel
        # Plain multicallables: no request serializer, no response deserializer.
        self.txn = channel.unary_unary(acquire.method)
        self.delete = channel.unary_unary(release.method)

    def op(self) -> Callable[[int], Any]:
        txn, delete = self.txn, self.delete
        acquire, release = self.acquire_payload, self.release_payload

        def cycle(i: int) -> bytes:
            answer = txn(acquire, timeout=TIMEOUT)
            delete(release, timeout=TIMEOUT)
            return answer  # type: ignore[no-any-return]

        return cycle

    def check(self, answer: Any) -> None:
        """Untimed: the last acquire put our key and found it the owner."""
        result = self._decode_txn(answer, None)
        owner = result.get_result(1).kvs
        assert result.succeeded and owner and owner[0].key == self.key, "raw acquire did not own the lock"
        assert owner[0].create_revision == result.header.revision

    def close(self) -> None:
        self._channel.unary_unary(self._revoke.method)(self._revoke.payload, timeout=TIMEOUT)


def cycles(args: argparse.Namespace) -> None:
    if args.client == "etcdfast":
        import etcdfast

        with etcdfast.Client(args.endpoint, timeout=TIMEOUT) as client, client.session(ttl=60) as session:
            op, check = etcdfast_cycle(args, session.mutex(args.name))
            time_cycles(f"etcdfast-{etcdfast.IMPLEMENTATION}", op, args.n, args.warmup, check, args.profile)
    elif args.client == "etcdfast-async":
        asyncio.run(async_cycles(args))
    elif args.client == "raw":
        import grpc

        with grpc.insecure_channel(args.endpoint) as channel:
            raw = RawLock(channel, args.name)
            time_cycles("raw-grpcio", raw.op(), args.n, args.warmup, raw.check, args.profile)
            raw.close()
    elif args.client == "ab":
        ab_cycles(args)
    elif args.client == "etcd3":
        etcd3_cycles(args)
    else:
        etcdctl_cycles(args)


async def async_cycles(args: argparse.Namespace) -> None:
    import etcdfast

    async with etcdfast.AsyncClient(args.endpoint, timeout=TIMEOUT) as client:
        async with await client.session(ttl=60) as session:
            mutex = session.mutex(args.name)
            lock, unlock = mutex.lock, mutex.unlock
            for _ in range(args.warmup):
                await lock()
                await unlock()
            timer, revision = h.Timer(), -1
            for _ in timer.steps(args.n):
                await lock()
                revision = mutex.revision
                await unlock()
            assert revision > 0 and not mutex.locked, "the lock was not taken and released"
            h.emit(f"etcdfast-async-{etcdfast.IMPLEMENTATION}", "cycle",
                   {**timer.result(), "child_cpu_us_per_op": 0.0})


def ab_cycles(args: argparse.Namespace) -> None:
    """raw (A) and etcdfast (B) in alternating blocks: B's record carries
    ab_cpu_ratio = etcdfast's CPU per cycle / raw's, median over block pairs."""
    import grpc

    import etcdfast

    with grpc.insecure_channel(args.endpoint, options=[("bench.side", "raw")]) as channel, \
            etcdfast.Client(args.endpoint, timeout=TIMEOUT) as client, client.session(ttl=60) as session:
        raw = RawLock(channel, args.name + "-raw")
        op, check = etcdfast_cycle(args, session.mutex(args.name))
        warmup = min(args.warmup, args.n)
        a = h.Workload("cycle", raw.op(), args.n, warmup, raw.check)
        b = h.Workload("cycle", op, args.n, warmup, check)
        h.run_ab(("raw-grpcio", f"etcdfast-{etcdfast.IMPLEMENTATION}"), [a], [b], args.blocks)
        raw.close()


def etcd3_client(endpoint: str) -> Any:
    import etcd3  # type: ignore[import-not-found]  # python-etcd3's venv only

    host, port = h.host_port(endpoint)
    return etcd3.client(host, port, timeout=TIMEOUT)


def etcd3_cycles(args: argparse.Namespace) -> None:
    """python-etcd3's Lock: acquire = LeaseGrant + Txn (a new lease per
    acquisition), release = Txn (compare the value, delete)."""
    client = etcd3_client(args.endpoint)
    try:
        lock = client.lock(args.name.replace("/", "-"), ttl=60)

        def op(i: int) -> bool:
            acquired = lock.acquire(timeout=10)
            released = lock.release()
            return bool(acquired and released)

        def check(ok: Any) -> None:
            assert ok, "python-etcd3's Lock was not acquired and released"

        time_cycles("python-etcd3", op, args.n, args.warmup, check, args.profile)
    finally:
        client.close()


def etcdctl_cycles(args: argparse.Namespace) -> None:
    command = [args.etcdctl, f"--endpoints={args.endpoint}", "lock", args.name, "--", "true"]
    env = {**os.environ, "ETCDCTL_API": "3"}

    def op(i: int) -> int:
        return subprocess.run(command, env=env, stdout=subprocess.DEVNULL, check=False).returncode

    def check(code: Any) -> None:
        assert code == 0, f"etcdctl lock exited {code}"

    time_cycles("etcdctl", op, args.n, min(args.warmup, 3), check)


# -- contention -------------------------------------------------------------------


class Contest:
    """The waiters of one contended run: start together, record every hold."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.start = threading.Barrier(args.waiters + 1)
        self.holds: List[Hold] = []
        self.errors: List[str] = []
        self.retries = 0  # python-etcd3: acquisitions that gave up (timed out) and were retried
        self.lock = threading.Lock()

    def record(self, waiter: int, taken: List[Hold]) -> None:
        with self.lock:
            for hold in taken:
                hold["waiter"] = waiter
            self.holds.extend(taken)

    def fail(self, waiter: int, error: BaseException) -> None:
        with self.lock:
            self.errors.append(f"waiter {waiter}: {type(error).__name__}: {error}")
        if not self.start.broken:
            self.start.abort()


def hold_for(seconds: float) -> None:
    time.sleep(seconds)


def etcdfast_waiter(contest: Contest, waiter: int) -> None:
    import etcdfast

    args, taken = contest.args, []
    with etcdfast.Client(args.endpoint, timeout=TIMEOUT) as client, client.session(ttl=60) as session:
        mutex = session.mutex(args.name)
        client.get(b"/bench/lock/warm")  # connected before the start
        contest.start.wait()
        for _ in range(args.k):
            mutex.lock(timeout=300)
            acquired = monotonic()
            hold_for(args.hold)
            mutex.unlock()
            taken.append({"acquired": acquired, "released": monotonic()})
    contest.record(waiter, taken)


def etcd3_attempt(client: Any, lock: Any) -> bool:
    """One attempt of python-etcd3 0.12.0's ``Lock.acquire`` (its inner
    ``_acquire``, verbatim but for the retry decorator): a new lease, then the
    Txn ``create_revision(key) == 0 -> put(key, uuid, lease) else get(key)``."""
    lock.lease = client.lease(lock.ttl)
    success, _ = client.transaction(
        compare=[client.transactions.create(lock.key) == 0],
        success=[client.transactions.put(lock.key, lock.uuid, lease=lock.lease)],
        failure=[client.transactions.get(lock.key)],
    )
    if success is True:
        return True
    lock.lease = None
    return False


def etcd3_waiter(contest: Contest, waiter: int) -> None:
    """python-etcd3's Lock, its acquire loop replayed here.

    0.12.0's ``Lock.acquire`` cannot wait with the tenacity its venv gets
    today (9.x): its wait callback has tenacity's old two-argument signature,
    and tenacity computes the wait after every failed attempt, so any
    contended ``acquire`` raises TypeError. The loop it means is replayed as
    written: an attempt (:func:`etcd3_attempt`), and after a failed one
    ``watch_once(key, remaining)`` -- any event on the key, from the current
    revision -- then a new attempt with a new lease. Every waiter wakes on
    every event (no queue), and a release that lands between a failed attempt
    and its watch is missed until the next event on the key, or the watch's
    timeout (then counted in ``retries``).
    """
    import etcd3.exceptions  # type: ignore[import-not-found]

    args, taken = contest.args, []
    client = etcd3_client(args.endpoint)
    try:
        lock = client.lock(args.name.replace("/", "-"), ttl=60)
        client.get("/bench/lock/warm")
        contest.start.wait()
        for _ in range(args.k):
            while not etcd3_attempt(client, lock):
                try:
                    client.watch_once(lock.key, timeout=10)
                except etcd3.exceptions.WatchTimedOut:
                    with contest.lock:
                        contest.retries += 1
            acquired = monotonic()
            hold_for(args.hold)
            if not lock.release():
                raise RuntimeError("python-etcd3 released a lock it did not hold")
            taken.append({"acquired": acquired, "released": monotonic()})
    finally:
        client.close()
    contest.record(waiter, taken)


def etcdctl_waiter(contest: Contest, waiter: int) -> None:
    """``etcdctl lock NAME`` processes in turn: it prints its key once it holds
    the lock (after one more Get), and on SIGINT unlocks and exits.

    ``released`` is when SIGINT was sent, not when the unlock returned:
    etcdctl does not say when that happens, and its process exit (reaped
    here) comes up to tens of ms after the next holder already has the lock.
    So its hand-off includes the holder's Unlock RPC and the new holder's
    extra Get, on top of what the other clients' figures measure.
    """
    args, taken = contest.args, []
    command = [args.etcdctl, f"--endpoints={args.endpoint}", "lock", args.name]
    env = {**os.environ, "ETCDCTL_API": "3"}
    contest.start.wait()
    for _ in range(args.k):
        process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)
        try:
            assert process.stdout is not None
            line = process.stdout.readline()
            acquired = monotonic()
            if not line.startswith(args.name):
                raise RuntimeError(f"etcdctl lock printed {line!r}")
            hold_for(args.hold)
            released = monotonic()
            process.send_signal(signal.SIGINT)
            code = process.wait(timeout=60)
            if code != 0:
                raise RuntimeError(f"etcdctl lock exited {code}")
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        taken.append({"acquired": acquired, "released": released})
    contest.record(waiter, taken)


def contend(args: argparse.Namespace) -> None:
    waiter_of = {"etcdfast": etcdfast_waiter, "etcd3": etcd3_waiter, "etcdctl": etcdctl_waiter}[args.client]
    contest = Contest(args)

    def run(waiter: int) -> None:
        try:
            waiter_of(contest, waiter)
        except BaseException as exc:  # noqa: B036 - reported in the JSON, the run fails
            contest.fail(waiter, exc)

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(args.waiters)]
    for thread in threads:
        thread.start()
    try:
        if args.sync:
            # Wait until every waiter is connected, then for the orchestrator's go.
            while contest.start.n_waiting < args.waiters and not contest.start.broken:
                time.sleep(0.005)
            print("ready", flush=True)
            sys.stdin.readline()
        contest.start.wait()
    except threading.BrokenBarrierError:
        pass
    cpu0, children = time.process_time(), resource.getrusage(resource.RUSAGE_CHILDREN)
    for thread in threads:
        thread.join(timeout=600)
    if any(thread.is_alive() for thread in threads):
        contest.errors.append("a waiter did not finish in 600 s")
    print(json.dumps({"client": args.client, "pid": os.getpid(), "waiters": args.waiters,
                      "holds": contest.holds, "errors": contest.errors, "retries": contest.retries,
                      "cpu_s": time.process_time() - cpu0, "child_cpu_s": child_cpu(children)}), flush=True)
    sys.exit(1 if contest.errors else 0)


# -- round trip -------------------------------------------------------------------


def rtt(args: argparse.Namespace) -> None:
    import grpc

    import etcdfast
    from etcdfast.api import kv

    key = b"/bench/lock/rtt"
    out: Dict[str, Any] = {"client": f"etcdfast-{etcdfast.IMPLEMENTATION}", "workload": "rtt"}
    with etcdfast.Client(args.endpoint, timeout=TIMEOUT) as client:
        client.put(key, b"x")
        for _ in range(args.warmup):
            client.get(key)
        timer = h.Timer()
        for _ in timer.steps(args.n):
            client.get(key)
        result = timer.result()
        out.update(p50_us=result["p50_us"], p99_us=result["p99_us"], cpu_us_per_op=result["cpu_us_per_op"])
    request = kv.get(key)
    with grpc.insecure_channel(args.endpoint) as channel:
        get = channel.unary_unary(request.method)
        for _ in range(args.warmup):
            get(request.payload, timeout=TIMEOUT)
        timer = h.Timer()
        for _ in timer.steps(args.n):
            get(request.payload, timeout=TIMEOUT)
        result = timer.result()
        out.update(raw_p50_us=result["p50_us"], raw_p99_us=result["p99_us"],
                   raw_cpu_us_per_op=result["cpu_us_per_op"])
    print(json.dumps(out), flush=True)


def main() -> None:
    args = parse_args()
    {"cycles": cycles, "contend": contend, "rtt": rtt}[args.mode](args)


if __name__ == "__main__":
    main()
