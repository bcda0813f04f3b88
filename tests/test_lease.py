"""Leases against a real etcd: unary calls, the Lease handle, background keep-alive."""

from __future__ import annotations

import threading
import time

import pytest

import etcdfast
from etcdfast import InvalidArgumentError, LeaseNotFoundError
from etcdfast._core.keepalive import KeepAliveSchedule, LeaseHandle
from etcdfast.errors import LeaseExpiredError
from etcdfast.testing import EtcdServer


def _etcdfast_threads() -> list:
    return [t for t in threading.enumerate() if t.name.startswith("etcdfast-")]


def test_grant_ttl_revoke_list(client, etcd_prefix):
    granted = client.grant(30)
    assert granted.id > 0 and granted.ttl == 30
    client.put(etcd_prefix + b"a", b"1", lease=granted.id)
    info = client.time_to_live(granted.id, keys=True)
    assert info.granted_ttl == 30 and 0 < info.ttl <= 30
    assert info.keys == [etcd_prefix + b"a"]
    assert client.time_to_live(granted.id).keys == []
    assert granted.id in client.leases()
    assert client.keep_alive_once(granted.id).ttl == 30
    client.revoke(granted.id)
    assert client.get_value(etcd_prefix + b"a") is None  # the key went with the lease
    assert granted.id not in client.leases()


def test_grant_with_chosen_id(client):
    chosen = 0x5EED0000 + int(time.time()) % 1000
    assert client.grant(10, chosen).id == chosen
    client.revoke(chosen)


@pytest.mark.parametrize("ttl", [0, -5])
def test_bad_ttl_is_refused_before_sending(client, ttl):
    with pytest.raises(InvalidArgumentError):
        client.grant(ttl)
    with pytest.raises(TypeError):
        client.grant(1.5)


def test_unknown_lease_is_lease_not_found(client):
    unknown = 0x7FFF_0000_0000_0001
    with pytest.raises(LeaseNotFoundError):
        client.revoke(unknown)
    with pytest.raises(LeaseNotFoundError):
        client.time_to_live(unknown)
    with pytest.raises(LeaseNotFoundError):
        client.keep_alive_once(unknown)
    with pytest.raises(LeaseNotFoundError):
        client.put("/lease-test/k", "v", lease=unknown)
    with pytest.raises(InvalidArgumentError):
        client.revoke(0)


def test_lease_context_manager_keeps_key_alive_then_revokes(client, etcd_prefix):
    key = etcd_prefix + b"alive"
    with client.lease(2) as lease:
        assert lease.granted and lease.alive and lease.ttl == 2
        client.put(key, b"up", lease=lease)
        time.sleep(5)  # 2.5 TTLs: only the background keep-alive holds it
        assert client.get_value(key) == b"up"
        assert lease.alive and lease.refreshed_at is not None
    assert client.get_value(key) is None
    # Ended by its owner: not alive, and not lost (no on_lost, no alert).
    assert not lease.alive and lease.revoked and lease.lost is None


@pytest.mark.slow
def test_key_survives_ten_seconds_with_keep_alive(client, etcd_prefix):
    key = etcd_prefix + b"ten"
    lease = client.lease(2).grant()
    client.put(key, b"v", lease=lease)
    time.sleep(10)
    assert client.get_value(key) == b"v"
    lease.revoke()
    assert client.get_value(key) is None


def test_lease_revoked_elsewhere_is_reported_lost(client, etcd_prefix):
    lost = []
    lease = client.lease(3, on_lost=lost.append).grant()
    client.revoke(lease.id)  # as another process would
    assert lease.wait(timeout=5), "the loss was not noticed"
    assert not lease.alive and isinstance(lease.lost, LeaseExpiredError)
    assert lost == [lease]


def test_callback_that_raises_does_not_kill_keep_alive(client):
    def bad(_):
        raise RuntimeError("callback bug")

    doomed = client.lease(2, on_lost=bad).grant()
    survivor = client.lease(2).grant()
    client.revoke(doomed.id)
    assert doomed.wait(timeout=5)
    time.sleep(3)
    assert survivor.alive
    assert client.time_to_live(survivor.id).ttl > 0
    survivor.revoke()


def test_keep_alive_of_an_existing_lease(client):
    granted = client.grant(2)
    handle = client.keep_alive(granted.id)
    time.sleep(3)
    assert client.time_to_live(granted.id).ttl > 0 and handle.alive
    handle.revoke()


def test_keep_alive_survives_a_server_restart():
    with EtcdServer() as server:
        with etcdfast.Client(server.endpoint, timeout=5) as client:
            lease = client.lease(6).grant()
            client.put("k", "v", lease=lease)
            server.kill()
            time.sleep(1)
            server.restart()
            time.sleep(8)  # past the TTL: only a resumed keep-alive saves it
            assert lease.alive, lease.lost
            assert client.get_value("k") == b"v"


def test_lease_expired_while_server_down_is_reported():
    with EtcdServer() as server:
        with etcdfast.Client(server.endpoint, timeout=5) as client:
            lease = client.lease(2).grant()
            server.pause()  # the stream stays open but nothing answers
            try:
                assert lease.wait(timeout=6), "expiry was not reported"
            finally:
                server.resume()
            assert isinstance(lease.lost, LeaseExpiredError)


def test_close_stops_keep_alive_threads(etcd_server):
    before = set(_etcdfast_threads())
    client = etcdfast.Client(etcd_server.endpoint, timeout=5)
    lease = client.lease(5).grant()
    assert any(t.name == "etcdfast-keepalive" for t in _etcdfast_threads())
    client.close()
    time.sleep(0.2)
    assert set(_etcdfast_threads()) <= before
    client2 = etcdfast.Client(etcd_server.endpoint, timeout=5)
    client2.revoke(lease.id)
    client2.close()


class _Handle(LeaseHandle):
    def _signal_lost(self) -> None:
        pass


def test_schedule_logic_without_io():
    schedule = KeepAliveSchedule()
    a = _Handle(9, 1)
    schedule.add(a, now=100.0)
    ready, _ = schedule.due(100.0)
    assert ready == [1]
    assert schedule.due(101.0)[0] == []  # not again before a third of the TTL
    assert schedule.answered(1, 9, now=100.01) is None
    assert schedule.due(102.9)[0] == [] and schedule.due(103.0)[0] == [1]
    assert schedule.expired(108.9) == []
    assert schedule.expired(109.0) == [a]  # sent at 100, TTL 9: gone at 109
    assert 1 not in schedule
    b = _Handle(9, 2)
    schedule.add(b, now=0.0)
    schedule.due(0.0)
    assert schedule.answered(2, 0, now=0.1) is b and len(schedule) == 0


def test_a_refresh_lost_with_its_stream_is_sent_again_at_once():
    """A refresh sent on a stream that broke before answering is due again at
    once on the next stream, not a third of the TTL later; a lease whose
    refresh was answered keeps its schedule."""
    schedule = KeepAliveSchedule()
    answered, unanswered = _Handle(9, 1), _Handle(9, 2)
    schedule.add(answered, now=100.0)
    schedule.add(unanswered, now=100.0)
    assert schedule.due(100.0)[0] == [1, 2]
    schedule.answered(1, 9, now=100.01)
    assert schedule.due(101.0)[0] == []  # both sent at 100: not due again before 103
    schedule.stream_broke(101.0)
    assert schedule.due(101.0)[0] == [2]
    assert schedule.due(101.5)[0] == []  # sent again at 101: due at 104
    assert schedule.due(103.0)[0] == [1]
