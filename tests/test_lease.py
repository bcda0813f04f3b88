"""Leases against a real etcd: unary calls, the Lease handle, background keep-alive.

Each behaviour runs for both clients (sync, and async through
``client_drivers.Driver``); the keep-alive schedule is tested without IO.
"""

from __future__ import annotations

import threading
import time

import pytest
from client_drivers import KINDS, Driver

from etcdfast import InvalidArgumentError, LeaseNotFoundError
from etcdfast._core.keepalive import KeepAliveSchedule, LeaseHandle
from etcdfast.errors import LeaseExpiredError
from etcdfast.testing import EtcdServer


@pytest.fixture(params=KINDS)
def driver(request, etcd_server, twin):
    """The sync or the async client (through a Driver), once per codec twin."""
    with Driver(request.param, etcd_server.endpoint, timeout=10) as d:
        yield d


def _name(worker) -> str:
    """A worker's name: a thread's (sync) or a task's (async)."""
    return worker.name if isinstance(worker, threading.Thread) else worker.get_name()


def test_grant_ttl_revoke_list(driver, etcd_prefix):
    granted = driver.grant(30)
    assert granted.id > 0 and granted.ttl == 30
    driver.put(etcd_prefix + b"a", b"1", lease=granted.id)
    info = driver.time_to_live(granted.id, keys=True)
    assert info.granted_ttl == 30 and 0 < info.ttl <= 30
    assert info.keys == [etcd_prefix + b"a"]
    assert driver.time_to_live(granted.id).keys == []
    assert granted.id in driver.leases()
    assert driver.keep_alive_once(granted.id).ttl == 30
    driver.revoke(granted.id)
    assert driver.get_value(etcd_prefix + b"a") is None  # the key went with the lease
    assert granted.id not in driver.leases()


def test_grant_with_chosen_id(driver):
    chosen = 0x5EED0000 + int(time.time()) % 1000
    assert driver.grant(10, chosen).id == chosen
    driver.revoke(chosen)


@pytest.mark.parametrize("ttl", [0, -5])
def test_bad_ttl_is_refused_before_sending(driver, ttl):
    with pytest.raises(InvalidArgumentError):
        driver.grant(ttl)
    with pytest.raises(TypeError):
        driver.grant(1.5)


def test_unknown_lease_is_lease_not_found(driver):
    unknown = 0x7FFF_0000_0000_0001
    with pytest.raises(LeaseNotFoundError):
        driver.revoke(unknown)
    with pytest.raises(LeaseNotFoundError):
        driver.time_to_live(unknown)
    with pytest.raises(LeaseNotFoundError):
        driver.keep_alive_once(unknown)
    with pytest.raises(LeaseNotFoundError):
        driver.put("/lease-test/k", "v", lease=unknown)
    with pytest.raises(InvalidArgumentError):
        driver.revoke(0)


def test_lease_context_manager_keeps_key_alive_then_revokes(driver, etcd_prefix):
    key = etcd_prefix + b"alive"
    with driver.lease(2) as lease:
        assert lease.granted and lease.alive and lease.ttl == 2
        driver.put(key, b"up", lease=lease)
        time.sleep(5)  # 2.5 TTLs: only the background keep-alive holds it
        assert driver.get_value(key) == b"up"
        assert lease.alive and lease.refreshed_at is not None
        info = lease.time_to_live(keys=True)
        assert info.keys == [key] and info.granted_ttl == 2
    assert driver.get_value(key) is None
    # Ended by its owner: not alive, and not lost (no on_lost, no alert).
    assert not lease.alive and lease.revoked and lease.lost is None
    assert lease.wait(timeout=0)  # it ended
    assert lease.id not in driver.leases()
    with pytest.raises(LeaseNotFoundError):
        driver.keep_alive_once(lease.id)


@pytest.mark.slow
def test_key_survives_ten_seconds_with_keep_alive(driver, etcd_prefix):
    key = etcd_prefix + b"ten"
    lease = driver.lease(2).grant()
    driver.put(key, b"v", lease=lease)
    time.sleep(10)
    assert driver.get_value(key) == b"v"
    lease.revoke()
    assert driver.get_value(key) is None


def test_lease_revoked_elsewhere_is_reported_lost(driver, etcd_prefix):
    lost = []
    lease = driver.lease(3, on_lost=lost.append).grant()
    driver.revoke(lease.id)  # as another process would
    assert lease.wait(timeout=5), "the loss was not noticed"
    assert not lease.alive and isinstance(lease.lost, LeaseExpiredError)
    assert lost == [lease]


def test_callback_that_raises_does_not_kill_keep_alive(driver):
    def bad(_):
        raise RuntimeError("callback bug")

    doomed = driver.lease(2, on_lost=bad).grant()
    survivor = driver.lease(2).grant()
    driver.revoke(doomed.id)
    assert doomed.wait(timeout=5)
    time.sleep(3)
    assert survivor.alive
    assert driver.time_to_live(survivor.id).ttl > 0
    survivor.revoke()


def test_keep_alive_of_an_existing_lease(driver):
    granted = driver.grant(2)
    handle = driver.keep_alive(granted.id)
    time.sleep(3)
    assert driver.time_to_live(granted.id).ttl > 0 and handle.alive
    handle.revoke()


@pytest.mark.parametrize("kind", KINDS)
def test_keep_alive_survives_a_server_restart(kind):
    with EtcdServer() as server:
        with Driver(kind, server.endpoint, timeout=5) as client:
            lease = client.lease(6).grant()
            client.put("k", "v", lease=lease)
            server.kill()
            time.sleep(1)
            server.restart()
            time.sleep(8)  # past the TTL: only a resumed keep-alive saves it
            assert lease.alive, lease.lost
            assert client.get_value("k") == b"v"


@pytest.mark.parametrize("kind", KINDS)
def test_lease_expired_while_server_down_is_reported(kind):
    with EtcdServer() as server:
        with Driver(kind, server.endpoint, timeout=5) as client:
            lease = client.lease(2).grant()
            server.pause()  # the stream stays open but nothing answers
            try:
                assert lease.wait(timeout=6), "expiry was not reported"
            finally:
                server.resume()
            assert isinstance(lease.lost, LeaseExpiredError)


@pytest.mark.parametrize("kind", KINDS)
def test_close_stops_keep_alive_threads(etcd_server, kind):
    # The workers differ by design: etcdfast-* threads (sync; the whole
    # process's, hence the comparison with before), tasks on the loop (async).
    with Driver(kind, etcd_server.endpoint, timeout=5) as client:
        before = client.workers()
        lease = client.lease(5).grant()
        assert any(_name(w) == "etcdfast-keepalive" for w in client.workers())
        client.close()
        time.sleep(0.2)
        assert client.workers() <= before
    with Driver(kind, etcd_server.endpoint, timeout=5) as client2:
        client2.revoke(lease.id)


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
