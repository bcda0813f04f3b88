"""Namespaces (``client.namespace(prefix)``, Go's ``namespace``) against a real etcd.

Every behaviour runs for both clients (the async one through
``client_drivers.Driver``) and both codec twins (the rewrite of encoded
requests is the codec's). Around each namespace the tests put "neighbour"
keys -- the same names outside it, the key just before the prefix's range and
the one just past its end -- and check that no call through the view sees,
compares against, deletes or watches them.
"""

from __future__ import annotations

from typing import Any, List

import pytest
from client_drivers import KINDS, Driver

from etcdfast import Compare, EmptyKeyError, EventType, Op

#: How long a watch may take to deliver what the test is waiting for.
WAIT_S = 10.0


@pytest.fixture(params=KINDS)
def driver(request, etcd_server, twin):
    """The sync or the async client, once per codec twin."""
    with Driver(request.param, etcd_server.endpoint, timeout=10) as d:
        yield d


@pytest.fixture()
def space(driver, etcd_prefix):
    """``(view, prefix)``: a namespace under the test's prefix, its neighbours written
    (``<test>/a``, ``<test>/ns``, ``<test>/ns0`` and ``<test>/ns0x`` hold "outside")."""
    prefix = etcd_prefix + b"ns/"
    for neighbour in (b"a", b"b", b"ns", b"ns0", b"ns0x"):
        driver.put(etcd_prefix + neighbour, b"outside")
    yield driver.view(driver.namespace(prefix)), prefix
    driver.delete(etcd_prefix, prefix=True)


def neighbours_intact(driver: Any, etcd_prefix: bytes) -> None:
    outside = driver.get(etcd_prefix, prefix=True).kvs
    found = {kv.key: kv.value for kv in outside if not kv.key.startswith(etcd_prefix + b"ns/")}
    assert found == {etcd_prefix + k: b"outside" for k in (b"a", b"b", b"ns", b"ns0", b"ns0x")}


def keys(kvs: List[Any]) -> List[bytes]:
    return [kv.key for kv in kvs]


def test_kv_stays_inside_the_namespace(driver, space, etcd_prefix):
    ns, prefix = space
    assert ns.put("a", "1").prev_kv is None
    assert ns.put("b", "2").header.revision > 0
    assert ns.put("a", "1'", prev_kv=True).prev_kv.key == b"a"  # stripped
    assert driver.get_value(prefix + b"a") == b"1'"  # stored under the prefix
    assert driver.get_value(etcd_prefix + b"a") == b"outside"
    assert ns.get_value("a") == b"1'"
    assert keys(ns.get("a").kvs) == [b"a"]
    assert ns.get("ns").kvs == [] and ns.get_value("missing") is None
    # The whole namespace: an empty key with prefix or from_key, never beyond it.
    assert keys(ns.get("", prefix=True).kvs) == [b"a", b"b"]
    assert keys(ns.get("", from_key=True).kvs) == [b"a", b"b"]
    assert keys(ns.get("a", from_key=True).kvs) == [b"a", b"b"]
    assert keys(ns.get("b", from_key=True).kvs) == [b"b"]
    assert keys(ns.get("a", range_end="b").kvs) == [b"a"]
    assert ns.get("", prefix=True, count_only=True).count == 2
    assert ns.count("", prefix=True) == 2
    assert keys(ns.get_all("", prefix=True)) == [b"a", b"b"]
    assert keys(list(ns.iter_range("", prefix=True, page_size=1))) == [b"a", b"b"]
    with pytest.raises(EmptyKeyError):
        ns.get("")
    deleted = ns.delete("", prefix=True, prev_kv=True)
    assert deleted.deleted == 2 and keys(deleted.prev_kvs) == [b"a", b"b"]
    assert ns.get("", from_key=True).kvs == []
    neighbours_intact(driver, etcd_prefix)
    # delete_many and from_key deletes stay inside too.
    for name in (b"x", b"y", b"z"):
        ns.put(name, b"v")
    assert ns.delete("y", from_key=True).deleted == 2
    assert ns.delete_many("", prefix=True) == 1
    neighbours_intact(driver, etcd_prefix)


def test_txn_compares_and_ops_inside_the_namespace(driver, space, etcd_prefix):
    ns, prefix = space
    ns.put("a", "1")
    # The neighbour <test>/a holds "outside": a compare that ran on it would fail.
    result = ns.txn(
        [Compare.value("a") == "1", Compare.version("", prefix=True) > 0],
        [Op.put("b", "from-txn"), Op.get("a"), Op.get("", prefix=True),
         # etcd evaluates a nested txn's compares before any op of the outer one runs.
         Op.txn([Compare.value("a") == "1"], [Op.put("c", "nested"), Op.get("a")], [Op.delete("a")])],
        [Op.delete("a")],
    )
    assert result.succeeded
    put, got, everything, nested = result.responses
    assert keys(got.kvs) == [b"a"] and got.kvs[0].value == b"1"
    assert keys(everything.kvs) == [b"a", b"b"]
    assert nested.succeeded
    assert keys(nested.responses[1].kvs) == [b"a"]
    assert driver.get_value(prefix + b"c") == b"nested"
    assert driver.get_value(prefix + b"b") == b"from-txn"
    # A failing compare runs the failure ops, inside the namespace too.
    failed = ns.txn([Compare.value("a") == "outside"], [Op.put("never", "x")],
                    [Op.txn([Compare.create_revision("zzz") != 0], [Op.put("never", "x")],
                            [Op.delete("", prefix=True, prev_kv=True)])])
    assert not failed.succeeded and not failed.responses[0].succeeded
    assert keys(failed.responses[0].responses[0].prev_kvs) == [b"a", b"b", b"c"]
    assert ns.get("", prefix=True).kvs == []
    neighbours_intact(driver, etcd_prefix)


def test_watch_sees_only_the_namespace_and_without_the_prefix(driver, space, etcd_prefix):
    ns, prefix = space
    with ns.watch("", prefix=True, prev_kv=True) as everything, ns.watch("a") as one:
        driver.put(etcd_prefix + b"a", b"outside, again")  # a neighbour: never seen
        driver.put(etcd_prefix + b"ns0", b"outside, again")
        ns.put("a", "1")
        ns.put("a", "2")
        driver.put(prefix + b"b", b"written outside the view, inside the prefix")
        ns.delete("a")
        ns.put("zz", "last")
        events: List[Any] = []
        while not events or events[-1].kv.key != b"zz":
            events += everything.get(timeout=WAIT_S)
        assert [(e.type, e.kv.key) for e in events] == [
            (EventType.PUT, b"a"), (EventType.PUT, b"a"), (EventType.PUT, b"b"),
            (EventType.DELETE, b"a"), (EventType.PUT, b"zz")]
        assert events[1].prev_kv.key == b"a" and events[1].prev_kv.value == b"1"
        assert events[3].prev_kv.key == b"a"
        mine: List[Any] = []
        while len(mine) < 3:
            mine += one.get(timeout=WAIT_S)
        assert [(e.type, e.kv.key, e.kv.value) for e in mine] == [
            (EventType.PUT, b"a", b"1"), (EventType.PUT, b"a", b"2"), (EventType.DELETE, b"a", b"")]
    # From a revision, in the namespace.
    start = events[0].kv.mod_revision
    with ns.watch("a", start_revision=start) as replay:
        assert [e.kv.value for e in replay.get(timeout=WAIT_S)][:1] == [b"1"]


def test_lease_lists_only_the_namespace_keys(driver, space, etcd_prefix):
    ns, prefix = space
    lease = ns.grant(30)
    ns.put("leased", "1", lease=lease.id)
    driver.put(etcd_prefix + b"leased-outside", b"1", lease=lease.id)
    assert ns.time_to_live(lease.id, keys=True).keys == [b"leased"]
    assert sorted(driver.time_to_live(lease.id, keys=True).keys) == [etcd_prefix + b"leased-outside",
                                                                    prefix + b"leased"]
    assert lease.id in ns.leases()
    assert ns.get("leased").kvs[0].lease == lease.id
    ns.revoke(lease.id)
    assert driver.get_value(prefix + b"leased") is None
    assert driver.get_value(etcd_prefix + b"leased-outside") is None
    with ns.lease(10) as handle:
        ns.put("handled", "1", lease=handle)
        assert ns.time_to_live(handle.id, keys=True).keys == [b"handled"]
    assert driver.get_value(prefix + b"handled") is None  # revoked at the end of the with


def test_nested_namespaces(driver, space, etcd_prefix):
    ns, prefix = space
    inner = driver.view(ns.client.namespace("in/"))
    assert inner.prefix == prefix + b"in/"
    inner.put("x", "1")
    ns.put("y", "2")
    assert driver.get_value(prefix + b"in/x") == b"1"
    assert keys(inner.get("", prefix=True).kvs) == [b"x"]
    assert keys(ns.get("", prefix=True).kvs) == [b"in/x", b"y"]
    with inner.watch("", prefix=True) as watch:
        ns.put("y", "3")  # outside the inner namespace
        inner.put("x", "4")
        assert [(e.kv.key, e.kv.value) for e in watch.get(timeout=WAIT_S)] == [(b"x", b"4")]
    assert ns.txn([Compare.value("in/x") == "4"], [Op.delete("in/", prefix=True)]).succeeded
    assert inner.get("", prefix=True).kvs == []
    neighbours_intact(driver, etcd_prefix)


def test_a_mutex_of_a_namespace_session_lives_under_the_prefix(driver, space, etcd_prefix):
    ns, prefix = space
    session = ns.session(ttl=10)
    other = ns.session(ttl=10)
    try:
        mutex = session.mutex("lock")
        driver.run(mutex.lock())
        assert mutex.key.startswith(b"lock/") and not mutex.key.startswith(prefix)
        held = driver.get(prefix + b"lock/", prefix=True).kvs
        assert keys(held) == [prefix + mutex.key]
        assert held[0].lease == session.id
        # The same name in the same namespace contends; outside it, it does not.
        assert driver.run(other.mutex("lock").try_lock()) is False
        outside = driver.session(ttl=10)
        try:
            assert driver.run(outside.mutex(etcd_prefix + b"lock").try_lock()) is True
        finally:
            outside.close()
        driver.run(mutex.unlock())
        assert driver.get(prefix + b"lock/", prefix=True).kvs == []
    finally:
        session.close()
        other.close()
