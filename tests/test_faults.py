"""Fault injection on real etcd: a 3-member EtcdCluster and our TCP FaultProxy. No mocks.

Each scenario states its pass criterion in its docstring; tests/FAULTS.md has
the table and the numbers of the last runs. Every loop is bounded in count
and time. The core runs in CI (about a minute on 2 cores); ``ETCDFAST_SOAK=1``
runs the long version (40 leader kills + 12 pauses, 12 lease kills; ~2.5 min)::

    ETCDFAST_SOAK=1 python -m pytest tests/test_faults.py -s

The kill -9 scenarios use a crash-safe etcd (not 3.5.0-3.5.2, etcd#13766,
which can lose acknowledged writes -- a server bug these checks would report).
With ``-s`` each scenario prints a ``[fault report]`` line with its numbers;
``ETCDFAST_FAULT_REPORT=<file>`` also appends them there as JSON lines.
"""

from __future__ import annotations

import asyncio
import collections
import json
import os
import random
import threading
import time
from typing import Dict, List, Optional, Tuple

import pytest
from conftest import crash_safe_etcd_binary, run

import etcdfast
from etcdfast import EventType, NoLeaderError, Timeout, Unavailable
from etcdfast.errors import EtcdError, OutcomeUnknownError
from etcdfast.testing import (
    EtcdCluster,
    EtcdServer,
    EtcdStartError,
    FaultProxy,
    free_port,
    make_certificates,
)

SOAK = os.environ.get("ETCDFAST_SOAK", "") not in ("", "0")
#: Scenario a: leader kills (and, in the soak, leader pauses) under load.
LEADER_KILLS = 40 if SOAK else 5
LEADER_PAUSES = 12 if SOAK else 0
#: Scenario d: members killed while a lease is kept alive.
LEASE_KILLS = 12 if SOAK else 3
#: The client's deadline for each call in the load scenarios.
CALL_TIMEOUT = 3.0
#: Writes per second (the box has 2 cores for 3 etcd members, the client and pytest).
WRITE_RATE = 250
MAX_WRITES = 100_000
#: Hard cap on every load loop, whatever happens to the test driving it.
LOAD_SECONDS = 900 if SOAK else 180


@pytest.fixture()
def cluster():
    # Acknowledged writes must survive kill -9: not etcd 3.5.0-3.5.2 (etcd#13766).
    with EtcdCluster(3, crash_safe_etcd_binary()) as running:
        yield running


def _report(name: str, **numbers: object) -> None:
    print(f"\n[fault report] {name}: " + ", ".join(f"{k}={v}" for k, v in numbers.items()))
    path = os.environ.get("ETCDFAST_FAULT_REPORT")
    if path:
        with open(path, "a") as f:
            f.write(json.dumps({"scenario": name, "soak": SOAK, **numbers}) + "\n")


def _pids_alive(pids: List[int]) -> List[int]:
    alive = []
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] != "Z":
                    alive.append(pid)
        except OSError:
            pass
    return alive


# -- the harness itself ------------------------------------------------------------


def test_cluster_harness_controls():
    """Pass criterion: start() returns with one leader that every member follows;
    kill/restart/pause/resume/kill_leader do what they say, by PID; close() leaves
    no process and no directory behind."""
    with EtcdCluster(3) as cluster:
        assert len(cluster) == 3 and len(set(cluster.endpoints)) == 3
        assert sorted(os.listdir(cluster.root)) == ["m0.etcd", "m0.log", "m1.etcd", "m1.log",
                                                    "m2.etcd", "m2.log"]
        leader = cluster.wait_for_leader(5)
        assert cluster.leader() == leader
        pids = [m.pid for m in cluster.members]
        with etcdfast.Client(cluster.endpoints, timeout=5) as client:
            client.put("/h/k", "1")
            follower = (leader + 1) % 3
            cluster.kill(follower)
            assert not cluster.members[follower].running
            assert cluster.wait_for_leader(5) == leader  # two of three keep the leader
            cluster.restart(follower)
            assert cluster.wait_for_leader(10) == leader
            paused = cluster.pause_leader()
            assert paused == leader
            new = cluster.leader(10)  # the other two elect one of themselves
            assert new != paused
            cluster.resume(paused)
            assert cluster.wait_for_leader(10) in range(3)
            killed = cluster.kill_leader()
            assert not cluster.members[killed].running
            cluster.restart(killed)
            cluster.wait_for_leader(10)
            assert client.get_value("/h/k") == b"1"
        pids = [m.pid for m in cluster.members] + pids
        root = cluster.root
    assert _pids_alive([p for p in pids if p]) == []
    assert not os.path.exists(root)
    cluster.close()  # idempotent


def test_cluster_serves_tls(tmp_path):
    """Pass criterion: with tls=, every member serves https, the leader is still found
    (metrics over TLS), and clients (sync and async) given all three endpoints and
    the CA verify every member's certificate against its IP."""
    certs = make_certificates(tmp_path)
    tls = {"ca_cert": certs.ca, "cert": certs.client_cert, "key": certs.client_key, "timeout": 5}
    with EtcdCluster(3, tls=certs, client_cert_auth=True) as cluster:
        assert all(e.startswith("https://127.0.0.1:") for e in cluster.endpoints)
        assert cluster.leader() in range(3)
        with etcdfast.Client(cluster.endpoints, **tls) as client:
            for i in range(6):  # round-robin: every member answers some
                client.put(f"/tls/{i}", "v")
            assert client.get_value("/tls/5") == b"v"

        async def main() -> bytes:
            async with etcdfast.AsyncClient(cluster.endpoints, **tls) as aclient:
                await aclient.put("/tls/async", "v")
                return await aclient.get_value("/tls/async")

        assert run(main()) == b"v"


def test_cluster_arguments_are_checked():
    with pytest.raises(ValueError):
        EtcdCluster(0)
    with pytest.raises(ValueError, match="5 \\* heartbeat"):
        EtcdCluster(3, heartbeat_ms=100, election_ms=300)


# -- a + b: leader killed under writes, reads and a watch -----------------------------

PREFIX = b"/faults/k/"


def key_of(i: int) -> bytes:
    return PREFIX + b"%06d" % i


def value_of(key: bytes) -> bytes:
    return b"value-" + key[len(PREFIX):]


class Load:
    """A writer, a reader and a watch consumer on one client, recording everything."""

    def __init__(self, client: etcdfast.Client, start: int) -> None:
        self.client = client
        self.start = start
        self.stop = threading.Event()
        self.acked: Dict[bytes, int] = {}  # key -> revision the put returned
        self.acked_order: List[bytes] = []  # append-only, for the reader
        self.ack_times: List[float] = []
        self.sent_at: Dict[bytes, float] = {}
        self.unknown: Dict[bytes, str] = {}  # key -> the error its put raised
        self.put_errors: "collections.Counter[str]" = collections.Counter()
        self.slowest_put = 0.0
        self.reads_ok = 0
        self.read_errors: "collections.Counter[str]" = collections.Counter()
        self.violations: List[str] = []
        self.crashed: List[BaseException] = []
        self.events: List[etcdfast.Event] = []
        self.max_event_lag = 0.0
        self.watch = client.watch(PREFIX, prefix=True, start_revision=start)
        self.deadline = time.monotonic() + LOAD_SECONDS
        self.threads = [threading.Thread(target=self._guard, args=(f,), name=f"load-{f.__name__}")
                        for f in (self._write, self._read, self._consume)]

    def __enter__(self) -> "Load":
        for thread in self.threads:
            thread.start()
        return self

    def running(self) -> bool:
        return not self.stop.is_set() and time.monotonic() < self.deadline

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(CALL_TIMEOUT * 4)
        assert not any(t.is_alive() for t in self.threads), "a load thread is stuck"

    def _guard(self, body) -> None:
        try:
            body()
        except BaseException as exc:  # reported by the test, on its own thread
            self.crashed.append(exc)

    def _write(self) -> None:
        began = time.monotonic()
        for i in range(MAX_WRITES):
            if not self.running():
                return
            pause = began + i / WRITE_RATE - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            key = key_of(i)  # never re-put a key: a second apply would show as version 2
            self.sent_at[key] = started = time.monotonic()
            try:
                revision = self.client.put(key, value_of(key), timeout=CALL_TIMEOUT).header.revision
            except (OutcomeUnknownError, Unavailable) as exc:  # Timeout is OutcomeUnknown
                self.unknown[key] = type(exc).__name__
                self.put_errors[type(exc).__name__] += 1
                time.sleep(0.02)
            else:
                self.acked[key] = revision
                self.acked_order.append(key)
                self.ack_times.append(time.monotonic())
            self.slowest_put = max(self.slowest_put, time.monotonic() - started)

    def _read(self) -> None:
        rng = random.Random(7)
        while self.running():
            time.sleep(0.01)
            if not self.acked_order:
                continue
            key = self.acked_order[rng.randrange(len(self.acked_order))]
            try:
                kvs = self.client.get(key, timeout=CALL_TIMEOUT).kvs  # linearizable
            except (Unavailable, Timeout) as exc:
                self.read_errors[type(exc).__name__] += 1
                continue
            self.reads_ok += 1
            # The key was acknowledged before this read began: a linearizable
            # read must see exactly that write.
            expected = (key, value_of(key), self.acked[key], 1)
            got = [(kv.key, kv.value, kv.mod_revision, kv.version) for kv in kvs]
            if got != [expected]:
                self.violations.append(f"read of {key!r} returned {got}, expected {expected}")

    def _consume(self) -> None:
        while self.running():
            try:
                batch = self.watch.get(timeout=0.2)
            except Timeout:
                continue
            now = time.monotonic()
            for event in batch:
                self.events.append(event)
                sent_at = self.sent_at.get(event.key)
                if sent_at is not None:  # how long after its put was sent it showed up
                    self.max_event_lag = max(self.max_event_lag, now - sent_at)

    def drain_watch(self, last_revision: int, timeout: float = 60.0) -> None:
        """After the load stopped: take events until ``last_revision`` arrived."""
        deadline = time.monotonic() + timeout
        while (not self.events or self.events[-1].revision < last_revision) and time.monotonic() < deadline:
            try:
                self.events.extend(self.watch.get(timeout=max(deadline - time.monotonic(), 0.1)))
            except Timeout:
                break


def test_leader_killed_repeatedly_under_writes_reads_and_a_watch(cluster):
    """a. Writes and reads while the leader is killed (kill -9) and restarted
    repeatedly (5 times; soak: 40, plus 12 leader pauses of 1.5 s), all through one
    Client(endpoints=cluster.endpoints).

    Pass criterion: every acknowledged put is present exactly once, at its
    acknowledged revision (mod_revision == create_revision == acked, version 1,
    value intact); every key present was acknowledged or its put raised an
    outcome-unknown/Unavailable error (nothing else appears); every linearizable
    read of an acknowledged key saw it; no call outlived its deadline by more
    than 2 s; writes resumed after every fault within 10 s.

    b. A watch from the start revision over the whole run. Pass criterion: it
    saw every revision of the run exactly once and in order (the prefix's
    revisions are contiguous: nothing else writes), only PUTs of keys in the
    final read, with their final values, and equals a replay from the start
    revision afterwards.
    """
    began = time.monotonic()
    faults: List[Tuple[str, int, float]] = []
    recoveries: List[float] = []
    with etcdfast.Client(cluster.endpoints, timeout=CALL_TIMEOUT) as client:
        start = client.put("/faults/start", "x").header.revision + 1
        with Load(client, start) as load:
            plan = ["kill"] * LEADER_KILLS + ["pause"] * LEADER_PAUSES
            random.Random(11).shuffle(plan)
            for kind in plan:
                time.sleep(1.0)
                at = time.monotonic()
                if kind == "kill":
                    victim = cluster.kill_leader()
                    time.sleep(0.5)
                    cluster.restart(victim)
                else:  # frozen long enough for an election, then back
                    victim = cluster.pause_leader()
                    time.sleep(1.5)
                    cluster.resume(victim)
                cluster.wait_for_leader(20)
                faults.append((kind, victim, at))
                # Writes must flow again: one acknowledged after this fault began.
                deadline = time.monotonic() + 10
                while not (load.ack_times and load.ack_times[-1] > at):
                    assert time.monotonic() < deadline, f"no write acknowledged 10 s after {kind} {victim}"
                    assert not load.crashed, load.crashed
                    time.sleep(0.05)
                recoveries.append(next(t for t in load.ack_times if t > at) - at)
            time.sleep(1.0)
        assert not load.crashed, load.crashed
        assert len(faults) == LEADER_KILLS + LEADER_PAUSES
        assert len(load.acked) > 100, "too few writes acknowledged to say anything"
        assert load.slowest_put < CALL_TIMEOUT + 2, f"a put took {load.slowest_put:.1f} s"
        assert not load.violations, load.violations[:5]
        assert load.max_event_lag < 15, f"an event came {load.max_event_lag:.1f} s after its put was sent"

        # -- a: the final read against what was acknowledged
        final = {kv.key: kv for kv in client.get_all(PREFIX, prefix=True)}
        for key, revision in load.acked.items():
            kv = final.get(key)
            assert kv is not None, f"acknowledged {key!r} (revision {revision}) is missing"
            assert (kv.mod_revision, kv.create_revision, kv.version, kv.value) == (
                revision, revision, 1, value_of(key)), f"acknowledged {key!r}: {kv}"
        unexplained = set(final) - set(load.acked) - set(load.unknown)
        assert not unexplained, f"keys never acknowledged nor in flight: {sorted(unexplained)[:5]}"
        for kv in final.values():  # the unknown ones that did land: once, intact
            assert kv.version == 1 and kv.value == value_of(kv.key) and kv.create_revision == kv.mod_revision
        unknown_applied = len(set(load.unknown) & set(final))

        # -- b: the live watch against the final read and a replay
        last = max(kv.mod_revision for kv in final.values())
        load.drain_watch(last)
        seen = load.events
        revisions = [e.revision for e in seen]
        assert revisions == list(range(start, last + 1)), (
            "the watch missed, repeated or reordered a revision: "
            f"{len(revisions)} events for revisions {start}..{last}"
        )
        for event in seen:
            kv = final.get(event.key)
            assert event.type == EventType.PUT and kv is not None, f"event for a key never written: {event}"
            assert (event.kv.mod_revision, event.value) == (kv.mod_revision, kv.value)
        assert {e.key for e in seen} == set(final)
        with client.watch(PREFIX, prefix=True, start_revision=start) as replay:
            expected: List[etcdfast.Event] = []
            deadline = time.monotonic() + 60
            while len(expected) < len(seen) and time.monotonic() < deadline:
                expected.extend(replay.get(timeout=30))
        assert [(e.revision, e.key, e.value, e.type) for e in seen] == [
            (e.revision, e.key, e.value, e.type) for e in expected
        ]

    _report(
        "a+b leader faults under load",
        leader_kills=sum(k == "kill" for k, _, _ in faults),
        leader_pauses=sum(k == "pause" for k, _, _ in faults),
        puts=len(load.acked) + len(load.unknown), acked_checked=len(load.acked),
        unknown=len(load.unknown), unknown_applied=unknown_applied,
        put_errors=dict(load.put_errors), reads_checked=load.reads_ok,
        read_errors=dict(load.read_errors), events_checked=len(seen),
        slowest_put_s=round(load.slowest_put, 2), slowest_recovery_s=round(max(recoveries), 2),
        max_event_lag_s=round(load.max_event_lag, 2),
        duration_s=round(time.monotonic() - began, 1),
    )


# -- c: a silent member, and a member cut off from its peers ---------------------------


def _timed(call) -> Tuple[float, Optional[BaseException]]:
    started = time.monotonic()
    try:
        call()
    except Exception as exc:
        return time.monotonic() - started, exc
    return time.monotonic() - started, None


def test_blackholed_or_paused_member_never_stalls_a_require_leader_call(cluster):
    """c1. The client's only endpoint is a member behind FaultProxy in blackhole
    mode (then, the member itself paused with SIGSTOP).

    Pass criterion: every require_leader=True call with timeout=1 -- reads and
    writes, 3 rounds each -- fails with Timeout/NoLeaderError/Unavailable within
    1.5 s, never stalls; a write that timed out in the blackhole was not applied
    (its bytes never left the proxy); after healing, calls succeed within 10 s.
    """
    member = cluster.members[0]
    rounds = 3
    durations: List[float] = []
    with FaultProxy(member.endpoint) as proxy, \
            etcdfast.Client(proxy.endpoint, timeout=5, require_leader=True) as client:
        client.put("/c1/k", "before")
        for fault in ("blackhole", "pause"):
            if fault == "blackhole":
                proxy.blackhole()
            else:
                cluster.pause(0)
            try:
                for i in range(rounds):
                    value = f"{fault}-{i}"
                    for call in (lambda: client.get("/c1/k", timeout=1),
                                 lambda v=value: client.put("/c1/k", v, timeout=1)):
                        took, error = _timed(call)
                        durations.append(took)
                        assert isinstance(error, (Timeout, NoLeaderError, Unavailable)), (fault, error)
                        assert took < 1.5, f"{fault}: a call took {took:.2f} s"
            finally:
                proxy.pass_through()
                cluster.resume(0)
            deadline = time.monotonic() + 10
            while True:
                took, error = _timed(lambda: client.get("/c1/k", timeout=1))
                if error is None:
                    break
                assert time.monotonic() < deadline, f"no recovery after the {fault}: {error!r}"
                time.sleep(0.1)
            if fault == "blackhole":
                # The timed-out writes never reached etcd: nothing was applied.
                assert client.get_value("/c1/k") == b"before"
    _report("c1 blackholed/paused member", calls=len(durations),
            slowest_call_s=round(max(durations), 2))


def _async_watch_until_error(endpoint: str, created: threading.Event,
                             ended: List[Tuple[float, BaseException]]) -> None:
    """On its own thread: an AsyncClient require_leader watch, run until it raises."""
    async def main() -> None:
        async with etcdfast.AsyncClient(endpoint, timeout=5, require_leader=True) as aclient:
            watch = await aclient.watch("/c2/", prefix=True)
            created.set()
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                try:
                    await watch.get(timeout=1)
                except Timeout:
                    continue
                except EtcdError as exc:
                    ended.append((time.monotonic(), exc))
                    return

    asyncio.run(main())


def test_member_cut_off_from_its_peers_fails_require_leader_calls_fast(cluster):
    """c2. Members 1 and 2 are paused: member 0 is alone, without a quorum.

    Pass criterion: within 3 s (the election timeout is 0.5 s) require_leader
    calls on member 0 fail with NoLeaderError; from then on every such read and
    write fails with NoLeaderError within 0.5 s, and the write is not an
    outcome-unknown error (it was refused before being proposed); no call takes
    more than 1.5 s; a plain serializable read is still answered locally.
    require_leader watches (sync and async clients) on member 0 end with
    NoLeaderError within 5 s of the cut (etcd cancels them after ~3 election
    timeouts) instead of stalling; once the peers resume, calls succeed again
    and a re-watch from ``watch.revision`` picks up the next write.
    """
    isolated = cluster.members[0]
    with etcdfast.Client(isolated.endpoint, timeout=5, require_leader=True) as client, \
            etcdfast.Client(isolated.endpoint, timeout=2) as plain:
        client.put("/c2/k", "v")  # applied on member 0 before it returns
        watch = client.watch("/c2/", prefix=True)
        created = threading.Event()
        async_ended: List[Tuple[float, BaseException]] = []
        async_thread = threading.Thread(target=_async_watch_until_error,
                                        args=(isolated.endpoint, created, async_ended))
        async_thread.start()
        assert created.wait(10)
        cut_at = time.monotonic()
        cluster.pause(1)
        cluster.pause(2)
        try:
            first_no_leader: Optional[float] = None
            calls = 0
            while first_no_leader is None:
                assert time.monotonic() - cut_at < 3, "member 0 still claims a leader after 3 s"
                took, error = _timed(lambda: client.get("/c2/k", timeout=1))
                calls += 1
                assert took < 1.5
                if isinstance(error, NoLeaderError):
                    first_no_leader = time.monotonic() - cut_at
                else:
                    assert error is None or isinstance(error, (Timeout, Unavailable)), error
            for i in range(5):
                for call in (lambda: client.get("/c2/k", timeout=1),
                             lambda v=f"w{i}": client.put("/c2/k", v, timeout=1)):
                    took, error = _timed(call)
                    calls += 1
                    assert isinstance(error, NoLeaderError), error
                    assert not isinstance(error, OutcomeUnknownError)
                    assert took < 0.5, f"NoLeaderError took {took:.2f} s"
            assert plain.get("/c2/k", serializable=True).kvs[0].value == b"v"
            with pytest.raises(NoLeaderError):
                while time.monotonic() - cut_at < 5:
                    try:
                        watch.get(timeout=0.2)
                    except Timeout:
                        pass
                raise AssertionError("the require_leader watch still runs 5 s after the cut")
            watch_ended = time.monotonic() - cut_at
            async_thread.join(10)
            assert async_ended and isinstance(async_ended[0][1], NoLeaderError), async_ended
            async_watch_ended = async_ended[0][0] - cut_at
            assert async_watch_ended < 5
        finally:
            cluster.resume(1)
            cluster.resume(2)
            async_thread.join(20)
        cluster.wait_for_leader(15)
        deadline = time.monotonic() + 10
        while _timed(lambda: client.get("/c2/k", timeout=1))[1] is not None:
            assert time.monotonic() < deadline, "no recovery after the partition healed"
            time.sleep(0.1)
        assert client.get_value("/c2/k") == b"v"  # the refused writes left no trace
        with client.watch("/c2/", prefix=True, start_revision=watch.revision) as again:
            revision = client.put("/c2/after", "x").header.revision
            assert [(e.key, e.revision) for e in again.get(timeout=10)] == [(b"/c2/after", revision)]
    _report("c2 member cut off from its peers", calls=calls,
            no_leader_after_s=round(first_no_leader, 2), watch_ended_after_s=round(watch_ended, 2),
            async_watch_ended_after_s=round(async_watch_ended, 2))


# -- d: lease keep-alive through leader changes -------------------------------------------


def test_lease_keep_alive_survives_leader_changes(cluster):
    """d. A 5 s lease kept alive by client.lease(5).grant() while members are
    killed and restarted in turn -- the leader first, then every member not yet
    killed (so whichever member carries the keep-alive stream dies at least once);
    soak: 12 kills.

    Pass criterion: the lease never dies -- ``lease.alive`` stays True, its key
    is present in every successful read during the run and still there 3 TTLs
    after the first kill (and 1 TTL after the last restart), the server
    reports a positive TTL, and the keep-alive was answered after the last
    restart.
    """
    ttl = 5
    began = time.monotonic()
    lost: List[object] = []
    with etcdfast.Client(cluster.endpoints, timeout=CALL_TIMEOUT) as client:
        lease = client.lease(ttl, on_lost=lost.append).grant()
        client.put("/d/leased", "v", lease=lease)
        missing: List[float] = []
        reads = 0
        stop = threading.Event()

        def check() -> None:
            nonlocal reads
            deadline = time.monotonic() + LOAD_SECONDS
            while not stop.wait(0.2) and time.monotonic() < deadline:
                try:
                    value = client.get_value("/d/leased", timeout=CALL_TIMEOUT)
                except (Unavailable, Timeout):
                    continue
                reads += 1
                if value != b"v":
                    missing.append(time.monotonic() - began)

        checker = threading.Thread(target=check)
        checker.start()
        first_kill = time.monotonic()
        killed: List[int] = []
        this_round: set = set()  # every round of three kills each member once, the leader first
        try:
            for _ in range(LEASE_KILLS):
                if len(this_round) == 3:
                    this_round = set()
                leader = cluster.leader()
                victim = leader if leader not in this_round else min({0, 1, 2} - this_round)
                this_round.add(victim)
                cluster.kill(victim)
                killed.append(victim)
                time.sleep(1.0)
                cluster.restart(victim)
                cluster.wait_for_leader(20)
            restarted = time.monotonic()
            time.sleep(max(0.0, first_kill + 3 * ttl - time.monotonic(), restarted + ttl - time.monotonic()))
        finally:
            stop.set()
            checker.join(CALL_TIMEOUT * 3)
        assert len(set(killed[:3])) == 3 or LEASE_KILLS < 3, killed
        assert lease.alive and not lost, lease.lost
        assert not missing, f"the leased key was missing at {missing[:5]} s"
        assert client.get_value("/d/leased") == b"v"
        assert client.time_to_live(lease).ttl > 0
        assert lease.refreshed_at is not None and lease.refreshed_at > restarted - 0.5 - ttl / 3
        lease.revoke()
    _report("d lease keep-alive", kills=len(killed), members_killed=sorted(set(killed)),
            reads_checked=reads, duration_s=round(time.monotonic() - began, 1))


# -- e: every endpoint unreachable -------------------------------------------------------------


def test_unreachable_endpoints_fail_fast_for_calls_and_watches():
    """e. A client whose endpoints are all dead: never-listening ports, and a
    cluster whose members were all killed under a connected client.

    Pass criterion: get, put, lease grant and watch() each raise Unavailable
    naming every endpoint, within 2 s; the put is not an outcome-unknown error
    (nothing was sent).
    """
    def check(client: etcdfast.Client, endpoints: List[str]) -> List[float]:
        durations = []
        for call in (lambda: client.get("k"), lambda: client.put("k", "v"),
                     lambda: client.lease(5).grant(), lambda: client.watch("k")):
            took, error = _timed(call)
            durations.append(took)
            assert isinstance(error, Unavailable), error
            assert not isinstance(error, OutcomeUnknownError), error
            assert all(e in str(error) for e in endpoints), f"{error} does not name {endpoints}"
            assert took < 2.0, f"{error!r} took {took:.2f} s"
        return durations

    never = [f"127.0.0.1:{free_port()}" for _ in range(3)]
    with etcdfast.Client(never, timeout=3) as client:
        durations = check(client, never)

    with EtcdCluster(3) as cluster:
        endpoints = cluster.endpoints
        with etcdfast.Client(endpoints, timeout=3) as client:
            client.put("k", "v")
            for i in range(3):
                cluster.kill(i)
            durations += check(client, endpoints)
    _report("e unreachable endpoints", calls=len(durations), slowest_call_s=round(max(durations), 2))


# -- f: every connection reset while another client writes ---------------------------------


def test_watch_through_connection_resets_loses_and_repeats_nothing():
    """f. A watch through FaultProxy while a second client, connected directly,
    makes 30 puts; the proxy RSTs every connection three times in the middle
    (and refuses new ones for 0.2 s each time).

    Pass criterion: the watch resumes after every reset and delivers the 30
    puts exactly once, in revision order, with their values -- including the
    ones committed while it was disconnected.
    """
    with EtcdServer() as server, FaultProxy(server.endpoint) as proxy, \
            etcdfast.Client(proxy.endpoint, timeout=5) as client, \
            etcdfast.Client(server.endpoint, timeout=5) as direct:
        watch = client.watch("/f/", prefix=True)
        written = []
        for i in range(30):
            key, value = b"/f/%02d" % i, b"v%d" % i
            written.append((direct.put(key, value).header.revision, key, value))
            if i % 10 == 5:
                connected = time.monotonic() + 10
                while proxy.connections == 0:  # reset a live connection, not the backoff
                    assert time.monotonic() < connected, "the client did not reconnect in 10 s"
                    time.sleep(0.01)
                proxy.reset()
                time.sleep(0.2)
                proxy.pass_through()
        resets = proxy.resets
        seen: List[Tuple[int, bytes, bytes]] = []
        deadline = time.monotonic() + 30
        while len(seen) < len(written) and time.monotonic() < deadline:
            try:
                seen += [(e.revision, e.key, e.value) for e in watch.get(timeout=1)]
            except Timeout:
                continue
        assert seen == written
        assert resets >= 3
    _report("f connection resets", resets=resets, events_checked=len(seen))


def test_wait_for_leader_names_the_members_when_there_is_none(cluster):
    """The harness reports a lost quorum clearly instead of hanging."""
    cluster.kill(1)
    cluster.kill(2)
    with pytest.raises(EtcdStartError, match="m1:down"):
        cluster.wait_for_leader(2)
    with pytest.raises(EtcdError):
        with etcdfast.Client(cluster.endpoints[0], timeout=1, require_leader=True) as client:
            client.get("k")
