"""KV and Txn against a real etcd server, once per client (sync, async) and codec twin."""

from __future__ import annotations

import threading

import pytest
from client_drivers import KINDS, Driver

from etcdfast import Compare, Op
from etcdfast.errors import (
    ClientClosedError,
    CompactedError,
    DuplicateKeyError,
    EmptyKeyError,
    FutureRevisionError,
    InvalidArgumentError,
    InvalidSortOptionError,
    LeaseNotFoundError,
    RequestTooLargeError,
    TooManyOpsError,
    Unavailable,
    ValueProvidedError,
)
from etcdfast.types import DeleteResult, GetResult, KeyValue, PutResult, TxnResult


@pytest.fixture(params=KINDS)
def driver(request, etcd_server, twin):
    """The sync or the async client (through a Driver), once per codec twin."""
    with Driver(request.param, etcd_server.endpoint, timeout=10) as d:
        yield d


def test_put_get_round_trip(driver, etcd_prefix):
    key = etcd_prefix + b"k"
    put = driver.put(key, "välue")
    assert isinstance(put, PutResult) and put.prev_kv is None
    result = driver.get(key)
    assert isinstance(result, GetResult)
    assert result.count == 1 and not result.more
    kv = result.kvs[0]
    assert isinstance(kv, KeyValue)
    assert (kv.key, kv.value, kv.version) == (key, "välue".encode(), 1)
    assert kv.create_revision == kv.mod_revision == put.header.revision
    assert result.header.revision >= put.header.revision
    assert result.header.cluster_id and result.header.member_id and result.header.raft_term
    assert driver.get_value(key) == "välue".encode()
    assert driver.get_value(etcd_prefix + b"missing") is None
    assert driver.get(etcd_prefix + b"missing").kvs == []


def test_binary_keys_and_values(driver, etcd_prefix):
    key = etcd_prefix + b"\x00\xff\xfe"
    driver.put(key, b"\x00\x01\xff")
    assert driver.get_value(key) == b"\x00\x01\xff"


def test_prefix_range_and_from_key(driver, etcd_prefix):
    for name in (b"a", b"b", b"c", b"d"):
        driver.put(etcd_prefix + name, name * 2)
    driver.put(etcd_prefix[:-1] + b"0", b"outside")  # sorts right after the prefix
    assert [kv.key[-1:] for kv in driver.get(etcd_prefix, prefix=True).kvs] == [b"a", b"b", b"c", b"d"]
    ranged = driver.get(etcd_prefix + b"b", range_end=etcd_prefix + b"d")
    assert [kv.key[-1:] for kv in ranged.kvs] == [b"b", b"c"]
    from_c = driver.get(etcd_prefix + b"c", from_key=True, limit=3)
    assert [kv.key for kv in from_c.kvs][:2] == [etcd_prefix + b"c", etcd_prefix + b"d"]


def test_limit_sort_count_keys_only(driver, etcd_prefix):
    for i in range(5):
        driver.put(etcd_prefix + b"%d" % i, b"v%d" % (4 - i))
    limited = driver.get(etcd_prefix, prefix=True, limit=2)
    assert len(limited.kvs) == 2 and limited.more and limited.count == 5
    by_value = driver.get(etcd_prefix, prefix=True, sort_target="value")
    assert [kv.value for kv in by_value.kvs] == [b"v0", b"v1", b"v2", b"v3", b"v4"]
    desc = driver.get(etcd_prefix, prefix=True, sort_order="descend")
    assert [kv.key[-1:] for kv in desc.kvs] == [b"4", b"3", b"2", b"1", b"0"]
    keys_only = driver.get(etcd_prefix, prefix=True, keys_only=True)
    assert all(kv.value == b"" for kv in keys_only.kvs) and len(keys_only.kvs) == 5
    count_only = driver.get(etcd_prefix, prefix=True, count_only=True)
    assert count_only.kvs == [] and count_only.count == 5
    serial = driver.get(etcd_prefix, prefix=True, serializable=True)
    assert serial.count == 5


def test_revision_filters_and_history(driver, etcd_prefix):
    key = etcd_prefix + b"h"
    first = driver.put(key, b"1").header.revision
    second = driver.put(key, b"2").header.revision
    assert driver.get(key, revision=first).kvs[0].value == b"1"
    assert driver.get(key, revision=second).kvs[0].value == b"2"
    other = driver.put(etcd_prefix + b"other", b"x").header.revision
    newer = driver.get(etcd_prefix, prefix=True, min_mod_revision=other)
    assert [kv.key for kv in newer.kvs] == [etcd_prefix + b"other"]
    older = driver.get(etcd_prefix, prefix=True, max_create_revision=first)
    assert [kv.key for kv in older.kvs] == [key]
    created_late = driver.get(etcd_prefix, prefix=True, min_create_revision=other)
    assert [kv.key for kv in created_late.kvs] == [etcd_prefix + b"other"]
    # etcd's count is the size of the range before these filters apply.
    assert driver.get(etcd_prefix, prefix=True, max_mod_revision=first).kvs == []


def test_put_options(driver, etcd_prefix):
    key = etcd_prefix + b"p"
    driver.put(key, b"old")
    assert driver.put(key, b"new", prev_kv=True).prev_kv.value == b"old"
    with pytest.raises(ValueProvidedError):
        driver.put(key, b"x", ignore_value=True)
    # ignore_value on a missing key is refused by the server
    with pytest.raises(InvalidArgumentError):
        driver.put(etcd_prefix + b"absent", b"", ignore_value=True)
    driver.put(key, b"", ignore_value=True)
    assert driver.get_value(key) == b"new"
    with pytest.raises(LeaseNotFoundError):
        driver.put(key, b"v", lease=0x7FFF_FFFF_FFFF)


def test_delete(driver, etcd_prefix):
    for name in (b"a", b"b", b"c"):
        driver.put(etcd_prefix + name, name)
    one = driver.delete(etcd_prefix + b"a", prev_kv=True)
    assert isinstance(one, DeleteResult) and one.deleted == 1 and one.prev_kvs[0].value == b"a"
    assert driver.delete(etcd_prefix + b"zzz").deleted == 0
    rest = driver.delete(etcd_prefix, prefix=True)
    assert rest.deleted == 2 and rest.prev_kvs == []
    assert driver.get(etcd_prefix, prefix=True).count == 0


def test_txn_branches_and_typed_responses(driver, etcd_prefix):
    key = etcd_prefix + b"t"
    missing = driver.txn(
        compare=[Compare.version(key) == 0],
        success=[Op.put(key, b"1"), Op.get(key), Op.delete(etcd_prefix + b"none")],
        failure=[Op.get(key)],
    )
    assert isinstance(missing, TxnResult) and missing.succeeded
    put, got, deleted = missing.responses
    assert isinstance(put, PutResult) and isinstance(got, GetResult) and isinstance(deleted, DeleteResult)
    assert got.kvs[0].value == b"1" and deleted.deleted == 0
    mod = got.kvs[0].mod_revision

    again = driver.txn(compare=[Compare.version(key) == 0], success=[Op.put(key, b"x")],
                       failure=[Op.get(key)])
    assert not again.succeeded and again.responses[0].kvs[0].value == b"1"

    checks = [
        Compare.value(key) == b"1",
        Compare.value(key) != b"2",
        Compare.mod_revision(key) == mod,
        Compare.mod_revision(key) < mod + 1,
        Compare.create_revision(key) > 0,
        Compare.version(key) == 1,
        Compare.lease(key) == 0,
    ]
    assert driver.txn(compare=checks).succeeded
    assert not driver.txn(compare=[Compare.value(key) > b"5"]).succeeded


def test_nested_txn(driver, etcd_prefix):
    key = etcd_prefix + b"n"
    inner = Op.txn(compare=[Compare.version(key) == 0], success=[Op.put(key, b"inner")])
    result = driver.txn(success=[inner, Op.get(key)])
    nested = result.responses[0]
    assert isinstance(nested, TxnResult) and nested.succeeded
    assert result.responses[1].kvs[0].value == b"inner"


def test_compare_over_a_prefix(driver, etcd_prefix):
    driver.put(etcd_prefix + b"a", b"1")
    driver.put(etcd_prefix + b"b", b"1")
    assert driver.txn(compare=[Compare.value(etcd_prefix, prefix=True) == b"1"]).succeeded
    driver.put(etcd_prefix + b"c", b"2")
    assert not driver.txn(compare=[Compare.value(etcd_prefix, prefix=True) == b"1"]).succeeded


def test_txn_limits(driver, etcd_prefix):
    with pytest.raises(TooManyOpsError):
        driver.txn(success=[Op.put(etcd_prefix + b"%d" % i, b"v") for i in range(129)])
    assert driver.get(etcd_prefix, prefix=True).count == 0  # nothing half-applied
    driver.txn(success=[Op.put(etcd_prefix + b"%d" % i, b"v") for i in range(128)])
    assert driver.get(etcd_prefix, prefix=True, count_only=True).count == 128
    with pytest.raises(DuplicateKeyError):
        driver.txn(success=[Op.put(etcd_prefix + b"d", b"1"), Op.put(etcd_prefix + b"d", b"2")])
    assert driver.get(etcd_prefix + b"d").count == 0
    with pytest.raises(InvalidArgumentError):
        driver.txn(success=[Op.put(etcd_prefix + b"x", b"1", timeout=3)])
    with pytest.raises(TypeError):
        driver.txn(success=[(2, b"raw")])


def test_empty_key_is_refused_before_sending(driver):
    before = driver.last_revision
    for call in (lambda: driver.get(""), lambda: driver.put(b"", b"v"), lambda: driver.delete("")):
        with pytest.raises(EmptyKeyError):
            call()
    assert driver.last_revision == before


def test_wrong_types(driver, etcd_prefix):
    with pytest.raises(TypeError):
        driver.get(123)
    with pytest.raises(TypeError):
        driver.put(etcd_prefix + b"k", 1.5)
    with pytest.raises(InvalidSortOptionError):
        driver.get(etcd_prefix, sort_order="sideways")
    with pytest.raises(InvalidArgumentError):
        driver.get(etcd_prefix, limit=-1)
    with pytest.raises(ValueError):
        driver.get(etcd_prefix, timeout=0)


def test_request_size_limits(driver, etcd_prefix):
    limit = 1572864  # etcd's default --max-request-bytes
    driver.put(etcd_prefix + b"fits", b"x" * (limit - 1024))
    assert len(driver.get_value(etcd_prefix + b"fits")) == limit - 1024
    with pytest.raises(RequestTooLargeError):  # refused by the server
        driver.put(etcd_prefix + b"big", b"x" * (limit + 1))
    with pytest.raises(RequestTooLargeError):  # refused by our own send limit
        driver.put(etcd_prefix + b"huge", b"x" * (3 * 1024 * 1024))
    assert driver.get(etcd_prefix + b"big").count == 0
    assert driver.get(etcd_prefix + b"huge").count == 0


def test_large_range_over_grpc_default_limit(driver, etcd_prefix):
    # ~6 MB of values: above grpcio's 4 MiB default receive limit.
    value = b"v" * 60_000
    for i in range(100):
        driver.txn(success=[Op.put(etcd_prefix + b"%03d" % i, value)])
    result = driver.get(etcd_prefix, prefix=True)
    assert len(result.kvs) == 100 and all(kv.value == value for kv in result.kvs)


def test_compaction_and_revision_errors(driver, etcd_prefix):
    key = etcd_prefix + b"c"
    old = driver.put(key, b"1").header.revision
    current = driver.put(key, b"2").header.revision
    driver.compact(current)
    with pytest.raises(CompactedError) as info:
        driver.get(key, revision=old)
    assert info.value.compact_revision is not None and info.value.compact_revision >= current
    assert "compact" in str(info.value)
    with pytest.raises(CompactedError):
        driver.compact(old)
    with pytest.raises(FutureRevisionError):
        driver.get(key, revision=current + 1_000_000)
    assert driver.get_value(key) == b"2"


def test_last_revision_tracks_headers(driver, etcd_prefix):
    assert driver.last_revision == 0  # a new client has seen nothing yet
    seen = []
    for i in range(3):
        seen.append(driver.put(etcd_prefix + b"r", b"%d" % i).header.revision)
        assert driver.last_revision == seen[-1]
    # A historical read answers with the current header revision: no going back.
    driver.get(etcd_prefix + b"r", revision=seen[0])
    assert driver.last_revision >= seen[-1]


def test_threads_share_one_client(driver, etcd_prefix):
    # Four callers at once: threads on the sync client; on the async one, four
    # coroutines in flight together on its loop.
    errors = []

    def writer(n):
        try:
            for i in range(50):
                driver.put(etcd_prefix + b"%d-%d" % (n, i), b"v")
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert driver.get(etcd_prefix, prefix=True, count_only=True).count == 200


def test_results_repr_and_equality(driver, etcd_prefix):
    driver.put(etcd_prefix + b"a", b"1")
    first = driver.get(etcd_prefix + b"a")
    second = driver.get(etcd_prefix + b"a")
    assert first.kvs == second.kvs
    assert "GetResult(count=1" in repr(first) and "KeyValue(key=" in repr(first)
    assert first.kvs[0].key_text.endswith("a") and first.value == b"1"


def test_close_is_idempotent_and_later_calls_raise(driver, etcd_prefix):
    driver.put(etcd_prefix + b"c", b"1")
    driver.close()
    driver.close()  # idempotent
    assert driver.closed
    with pytest.raises(ClientClosedError):
        driver.get(etcd_prefix + b"c")
    with pytest.raises(ClientClosedError):
        driver.put(etcd_prefix + b"c", b"2")


@pytest.mark.parametrize("kind", KINDS)
def test_dead_endpoint_raises_unavailable_naming_it(kind, twin):
    from etcdfast.testing import free_port

    endpoint = f"127.0.0.1:{free_port()}"
    with Driver(kind, endpoint, timeout=5) as driver:
        with pytest.raises(Unavailable) as info:
            driver.get("k")
        assert endpoint in str(info.value)
