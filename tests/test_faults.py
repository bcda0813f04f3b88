"""Fault injection on a real 3-member cluster and through our TCP fault proxy.

Each scenario states its pass criterion. The core runs in CI; ``ETCDFAST_SOAK=1``
runs the long version (more leader kills, more writes). Results of the last
runs are in tests/FAULTS.md.
"""

from __future__ import annotations

import os
import threading
import time

import pytest
from conftest import crash_safe_etcd_binary

import etcdfast
from etcdfast import NoLeaderError, Timeout, Unavailable
from etcdfast.errors import EtcdError, OutcomeUnknownError
from etcdfast.testing import EtcdCluster, EtcdServer, FaultProxy

SOAK = os.environ.get("ETCDFAST_SOAK", "") not in ("", "0")
LEADER_KILLS = 20 if SOAK else 4


@pytest.fixture()
def cluster():
    # Acknowledged writes must survive kill -9: not etcd 3.5.0-3.5.2 (etcd#13766).
    with EtcdCluster(3, crash_safe_etcd_binary()) as running:
        yield running


def test_leader_killed_repeatedly_under_writes_and_a_watch(cluster):
    """Pass criterion: every acknowledged put is present exactly once at its
    acknowledged revision; nothing appears that was never attempted; the
    watch saw every revision of the run exactly once, in order, matching a
    replay from the start revision afterwards."""
    endpoints = cluster.endpoints
    acked: dict = {}      # key -> revision the server acknowledged
    unknown: set = set()  # keys whose put ended with an outcome-unknown error
    attempted: set = set()
    stop = threading.Event()
    with etcdfast.Client(endpoints, timeout=3) as client:
        start = client.put("/faults/start", "x").header.revision + 1
        watch = client.watch("/faults/k/", prefix=True, start_revision=start)

        def writer() -> None:
            i = 0
            deadline = time.monotonic() + (240 if SOAK else 60)
            while not stop.is_set() and time.monotonic() < deadline:
                key = b"/faults/k/%06d" % i
                i += 1  # never re-put a key: a duplicate would show as version 2
                attempted.add(key)
                try:
                    acked[key] = client.put(key, key).header.revision
                except OutcomeUnknownError:
                    unknown.add(key)
                except Unavailable:
                    unknown.add(key)  # may have reached a member before it died
                    time.sleep(0.05)

        thread = threading.Thread(target=writer)
        thread.start()
        kills = 0
        try:
            for _ in range(LEADER_KILLS):
                time.sleep(1.0)
                victim = cluster.kill_leader()
                kills += 1
                time.sleep(0.5)
                cluster.restart(victim)
            time.sleep(1.0)
        finally:
            stop.set()
            thread.join(30)
        assert kills == LEADER_KILLS and len(acked) > 50

        final = {kv.key: kv for kv in client.get_all("/faults/k/", prefix=True)}
        for key, revision in acked.items():
            kv = final.get(key)
            assert kv is not None, f"acknowledged {key!r} is missing"
            assert kv.mod_revision == revision and kv.version == 1
        assert set(final) <= attempted, "a key appears that was never written"
        assert all(kv.version == 1 for kv in final.values()), "a put was applied twice"
        assert set(final) - set(acked) <= unknown

        last = max(kv.mod_revision for kv in final.values())
        seen = []
        while not seen or seen[-1].revision < last:
            seen.extend(watch.get(timeout=30))
        revisions = [e.revision for e in seen]
        assert revisions == sorted(set(revisions)), "the watch repeated or reordered an event"
        replay = client.watch("/faults/k/", prefix=True, start_revision=start)
        expected = []
        while len(expected) < len(seen):
            expected.extend(replay.get(timeout=30))
        assert [(e.revision, e.key) for e in seen] == [(e.revision, e.key) for e in expected]
        assert {e.key for e in seen} == set(final)
        _report("leader kills", kills=kills, acked=len(acked), unknown=len(unknown),
                events=len(seen), revisions=last - start + 1)


def test_keep_alive_survives_a_leader_change(cluster):
    """Pass criterion: a key on a 5 s lease kept alive through two leader kills
    is still there after 3 TTLs, and the lease is reported alive."""
    with etcdfast.Client(cluster.endpoints, timeout=3) as client:
        lease = client.lease(5).grant()
        client.put("/faults/leased", "v", lease=lease)
        for _ in range(2):
            victim = cluster.kill_leader()
            time.sleep(1.0)
            cluster.restart(victim)
        time.sleep(15)
        assert lease.alive, lease.lost
        assert client.get_value("/faults/leased") == b"v"


def test_blackholed_member_does_not_stall_a_call():
    """Pass criterion: behind a silent network, a call with timeout=1 fails within
    ~1.5 s (Timeout), and recovers when the network heals."""
    with EtcdServer() as server, FaultProxy(server.endpoint) as proxy:
        with etcdfast.Client(proxy.endpoint, timeout=5, require_leader=True) as client:
            client.put("/bh/k", "v")
            proxy.blackhole()
            started = time.monotonic()
            with pytest.raises((Timeout, Unavailable, NoLeaderError)):
                client.get("/bh/k", timeout=1)
            assert time.monotonic() - started < 1.5
            proxy.pass_through()
            proxy.reset()  # drop the dead connection so the client reconnects
            proxy.pass_through()
            deadline = time.monotonic() + 10
            while True:
                try:
                    assert client.get_value("/bh/k", timeout=1) == b"v"
                    break
                except EtcdError:
                    assert time.monotonic() < deadline
                    time.sleep(0.1)


def test_reset_connections_are_survived_by_watches():
    """Pass criterion: RST of every connection mid-stream loses no watch event."""
    with EtcdServer() as server, FaultProxy(server.endpoint) as proxy:
        with etcdfast.Client(proxy.endpoint, timeout=5) as client, \
                etcdfast.Client(server.endpoint, timeout=5) as direct:
            watch = client.watch("/rst/", prefix=True)
            revisions = []
            for i in range(30):
                revisions.append(direct.put(b"/rst/%02d" % i, b"v").header.revision)
                if i % 10 == 5:
                    proxy.reset()
                    time.sleep(0.2)
                    proxy.pass_through()
            seen = []
            while len(seen) < len(revisions):
                seen.extend(watch.get(timeout=20))
            assert [e.revision for e in seen] == revisions


def test_delay_slows_but_does_not_break_calls():
    with EtcdServer() as server, FaultProxy(server.endpoint) as proxy:
        with etcdfast.Client(proxy.endpoint, timeout=5) as client:
            client.put("/d/k", "v")
            proxy.delay(0.2)
            started = time.monotonic()
            assert client.get_value("/d/k") == b"v"
            assert time.monotonic() - started >= 0.2
            with pytest.raises(Timeout):
                client.get("/d/k", timeout=0.1)


def test_unreachable_endpoints_fail_fast_for_calls_and_watches():
    with EtcdServer() as a, EtcdServer() as b:
        endpoints = [a.endpoint, b.endpoint]
    # both servers are gone now
    with etcdfast.Client(endpoints, timeout=3) as client:
        started = time.monotonic()
        with pytest.raises(Unavailable) as info:
            client.get("k")
        with pytest.raises(Unavailable):
            client.watch("k")
        assert time.monotonic() - started < 6
    assert all(e in str(info.value) for e in endpoints)


def _report(name: str, **numbers: int) -> None:
    print(f"\n[fault report] {name}: " + ", ".join(f"{k}={v}" for k, v in numbers.items()))
