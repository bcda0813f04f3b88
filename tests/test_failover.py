"""Multi-endpoint behaviour on a real 3-member etcd cluster: failover, endpoint sync,
require_leader. (Members are plain EtcdServers joined with --initial-cluster.)"""

from __future__ import annotations

import threading
import time
import uuid

import pytest

import etcdfast
from etcdfast import NoLeaderError
from etcdfast.testing import EtcdServer, free_port


def _leader_index(members) -> int:
    for i, member in enumerate(members):
        with etcdfast.Client(member.endpoint, timeout=5) as client:
            status = client.status()
            if status.leader == status.header.member_id:
                return i
    raise AssertionError("no leader")


@pytest.fixture()
def cluster():
    ports = [(free_port(), free_port()) for _ in range(3)]
    initial = ",".join(f"m{i}=http://127.0.0.1:{peer}" for i, (_, peer) in enumerate(ports))
    token = uuid.uuid4().hex[:12]
    members = [
        EtcdServer(
            name=f"m{i}", client_port=client, peer_port=peer, startup_timeout=60,
            extra_args=["--initial-cluster", initial, "--initial-cluster-token", token,
                        "--heartbeat-interval", "50", "--election-timeout", "500"],
        )
        for i, (client, peer) in enumerate(ports)
    ]
    # Each member is healthy only once a quorum exists: start them together.
    errors = []

    def start(member):
        try:
            member.start()
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(m,)) for m in members]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        if errors:
            raise errors[0]
        yield members
    finally:
        for member in members:
            member.close()


def test_calls_fail_over_when_the_leader_dies(cluster, twin):
    endpoints = [m.endpoint for m in cluster]
    with etcdfast.Client(endpoints, timeout=5) as client:
        client.put("/fo/k", "before")
        leader = _leader_index(cluster)
        cluster[leader].kill()
        # Reads are repeatable: retried on another member, they just work.
        deadline = time.monotonic() + 20
        while True:
            try:
                assert client.get_value("/fo/k") == b"before"
                client.put("/fo/k", "after")  # a new leader takes writes
                break
            except (etcdfast.Unavailable, etcdfast.Timeout):  # election under way
                assert time.monotonic() < deadline, "no failover"
                time.sleep(0.1)
        for _ in range(20):  # every call keeps working on the survivors
            assert client.get_value("/fo/k") == b"after"


def test_sync_endpoints_finds_every_member_and_survives_the_seed_member(cluster, twin):
    seed = cluster[0]
    with etcdfast.Client(seed.endpoint, timeout=5, auto_sync_interval=0.3) as client:
        deadline = time.monotonic() + 10
        while len(client.endpoints) < 3:
            assert time.monotonic() < deadline, client.endpoints
            time.sleep(0.1)
        assert sorted(client.endpoints) == sorted(m.endpoint for m in cluster)
        client.put("/fo/sync", "1")
        with client.watch("/fo/sync") as watch:
            seed.kill()  # the only endpoint the client was given
            deadline = time.monotonic() + 20
            while True:
                try:
                    client.put("/fo/sync", "2")
                    break
                except (etcdfast.Unavailable, etcdfast.Timeout):  # election under way
                    assert time.monotonic() < deadline
                    time.sleep(0.1)
            assert client.get_value("/fo/sync") == b"2"
            # the watch moved to a surviving member and lost nothing
            assert [e.value for e in watch.get(timeout=20)][-1:] == [b"2"]


def test_require_leader_fails_fast_on_a_member_cut_off_from_its_leader(cluster, twin):
    isolated = cluster[0]
    for other in cluster[1:]:
        other.pause()
    try:
        time.sleep(1.5)  # three election timeouts: the member knows it has no leader
        with etcdfast.Client(isolated.endpoint, timeout=5, require_leader=True) as client:
            started = time.monotonic()
            with pytest.raises(NoLeaderError):
                client.get("/fo/x")
            assert time.monotonic() - started < 1.5
        with etcdfast.Client(isolated.endpoint, timeout=1) as plain:
            # without require_leader a serializable read is still answered locally
            assert plain.get("/fo/x", serializable=True).kvs == []
    finally:
        for other in cluster[1:]:
            other.resume()
