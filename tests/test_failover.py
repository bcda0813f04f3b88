"""Multi-endpoint behaviour on a real 3-member etcd cluster (etcdfast.testing.EtcdCluster):
failover, endpoint sync, require_leader."""

from __future__ import annotations

import time

import pytest

import etcdfast
from etcdfast import NoLeaderError
from etcdfast.testing import EtcdCluster


@pytest.fixture()
def cluster():
    with EtcdCluster(3) as running:
        yield running


def test_calls_fail_over_when_the_leader_dies(cluster, twin):
    endpoints = cluster.endpoints
    with etcdfast.Client(endpoints, timeout=5) as client:
        client.put("/fo/k", "before")
        cluster.kill_leader()
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
    seed = cluster.members[0]
    with etcdfast.Client(seed.endpoint, timeout=5, auto_sync_interval=0.3) as client:
        deadline = time.monotonic() + 10
        while len(client.endpoints) < 3:
            assert time.monotonic() < deadline, client.endpoints
            time.sleep(0.1)
        assert sorted(client.endpoints) == sorted(cluster.endpoints)
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
    isolated = cluster.members[0]
    for other in cluster.members[1:]:
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
        for other in cluster.members[1:]:
            other.resume()


def test_async_failover_and_endpoint_sync(cluster):
    import asyncio

    from conftest import run

    async def main():
        seed = cluster.members[0]
        async with etcdfast.AsyncClient(seed.endpoint, timeout=5, auto_sync_interval=0.3) as client:
            await client.put("/fo/async", "1")
            deadline = time.monotonic() + 10
            while len(client.endpoints) < 3:
                assert time.monotonic() < deadline, client.endpoints
                await asyncio.sleep(0.1)
            watch = await client.watch("/fo/async")
            seed.kill()
            deadline = time.monotonic() + 20
            while True:
                try:
                    await client.put("/fo/async", "2")
                    break
                except (etcdfast.Unavailable, etcdfast.Timeout):  # election under way
                    assert time.monotonic() < deadline
                    await asyncio.sleep(0.1)
            assert await client.get_value("/fo/async") == b"2"
            assert [e.value for e in await watch.get(timeout=20)][-1:] == [b"2"]

    run(main())
