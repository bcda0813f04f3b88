"""Bulk loading and streaming reads (etcdfast.bulk).

Everything that touches the network runs against a real etcd, once per
client (sync, and async through ``client_drivers.Driver``) and codec twin;
the fault test kills its own etcd server mid-load and resumes. The sans-IO
core (packer, ledger, page sizing) is tested without a server.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import threading
import time

import pytest
from bulk_helpers import crash_safe_etcd, revision_runs
from client_drivers import KINDS, Driver

import etcdfast
from etcdfast import _schema
from etcdfast._core import bulk
from etcdfast.errors import (
    BulkWriteError,
    ClientClosedError,
    ClosedDuringCallError,
    CompactedError,
    ConnectionLostError,
    EmptyKeyError,
    EtcdError,
    InvalidArgumentError,
    LeaseNotFoundError,
    ProtocolError,
    RequestTooLargeError,
    Timeout,
    Unavailable,
)
from etcdfast.testing import EtcdServer
from etcdfast.types import BulkResult, KeyValue


@pytest.fixture(params=KINDS)
def driver(request, etcd_server, twin):
    """The sync or the async client (through a Driver), once per codec twin."""
    with Driver(request.param, etcd_server.endpoint, timeout=10) as d:
        yield d


def keys_of(prefix: bytes, n: int, start: int = 0) -> list:
    return [prefix + b"%07d" % i for i in range(start, n)]


def grant_lease(client: Driver, ttl: int) -> int:
    return int(client.grant(ttl).id)


# -- put_many -----------------------------------------------------------------


def test_put_many_round_trip(driver, etcd_prefix, twin):
    # 200k keys once (sync client, fast twin); the others check the same on
    # fewer keys (the async iter_range is driven one blocking step per key).
    n = 200_000 if twin.name == "fast" and driver.kind == "sync" else 20_000
    result = driver.put_many((etcd_prefix + b"%07d" % i, b"value-%d" % i) for i in range(n))
    assert isinstance(result, BulkResult)
    assert result.keys == n and result.batches == -(-n // 128)
    assert 0 < result.first_revision <= result.last_revision and result.elapsed > 0
    assert driver.count(etcd_prefix, prefix=True) == n

    kvs = []
    revisions = set()
    for i, kv in enumerate(driver.iter_range(etcd_prefix, prefix=True, page_size=5000)):
        assert kv.key == etcd_prefix + b"%07d" % i and kv.value == b"value-%d" % i
        assert kv.version == 1 and kv.lease == 0 and kv.create_revision == kv.mod_revision
        kvs.append(kv)
        revisions.add(kv.mod_revision)
    assert len(kvs) == n
    # Each Txn is one contiguous run of input items sharing one mod_revision.
    runs = revision_runs(kvs)
    assert len(runs) == len(revisions) == result.batches
    assert runs == [128] * (n // 128) + ([n % 128] if n % 128 else [])
    assert min(revisions) == result.first_revision and max(revisions) == result.last_revision
    assert driver.last_revision >= result.last_revision
    assert driver.delete_many(etcd_prefix, prefix=True) == n


def test_generator_input_is_read_lazily(driver, etcd_prefix):
    # An endless generator: put_many must never read more than it can send.
    produced = 0
    ahead = []

    def endless():
        nonlocal produced
        for i in itertools.count():
            produced += 1
            yield etcd_prefix + b"%07d" % i, b"v"

    class Enough(Exception):
        pass

    def progress(committed):
        ahead.append(produced - committed)
        if committed >= 3000:
            raise Enough()

    with pytest.raises(BulkWriteError) as info:
        driver.put_many(endless(), batch_ops=50, concurrency=1, progress=progress)
    error = info.value
    assert isinstance(error.cause, Enough) and error.__cause__ is error.cause
    assert error.committed >= 3000 and error.uncertain == []
    # One batch in flight, one being filled, plus the item that closed it.
    assert max(ahead) <= 2 * 50 + 1
    assert produced <= error.committed + 2 * 50 + 1
    assert driver.count(etcd_prefix, prefix=True) == error.committed + sum(
        b - a for a, b in error.committed_after
    )


def test_duplicate_keys_last_write_wins(driver, etcd_prefix):
    # 1000 writes over 37 keys: every batch is cut where a key repeats, and a
    # batch writing a key waits for the earlier batch that wrote it.
    items = [(etcd_prefix + b"%02d" % (i % 37), b"%d" % i) for i in range(1000)]
    result = driver.put_many(items, concurrency=8)
    assert result.keys == 1000 and result.batches == -(-1000 // 37)
    final = dict(items)
    got = driver.get_all(etcd_prefix, prefix=True)
    assert {kv.key: kv.value for kv in got} == final
    writes = {key: sum(1 for k, _ in items if k == key) for key in final}
    assert {kv.key: kv.version for kv in got} == writes

    # The same key back to back: one batch each, in order.
    key = etcd_prefix + b"same"
    result = driver.put_many([(key, b"1"), (key, "2"), (key, b"3")])
    assert result.batches == 3 and driver.get_value(key) == b"3"


def test_str_and_bytes_items_and_options(driver, etcd_prefix):
    prefix = etcd_prefix.decode()
    result = driver.put_many(
        [(prefix + "s", "välue"), (etcd_prefix + b"b", b"\x00\xff"), (prefix + "e", "")],
        batch_ops=1, max_batch_bytes=200, concurrency=2, timeout=5,
    )
    assert result.keys == 3 and result.batches == 3
    assert driver.get_value(prefix + "s") == "välue".encode()
    assert driver.get_value(etcd_prefix + b"b") == b"\x00\xff"
    assert driver.get_value(prefix + "e") == b""


def test_empty_input(driver):
    result = driver.put_many([])
    assert (result.keys, result.batches, result.first_revision, result.last_revision) == (0, 0, 0, 0)
    assert driver.put_many(iter(())).keys == 0


def test_progress_reports_the_committed_prefix(driver, etcd_prefix):
    seen = []
    n = 1000
    result = driver.put_many(
        ((etcd_prefix + b"%04d" % i, b"v") for i in range(n)),
        batch_ops=64, concurrency=4, progress=seen.append,
    )
    assert len(seen) == result.batches == -(-n // 64)
    assert seen == sorted(seen) and seen[-1] == n
    assert all(total % 64 == 0 for total in seen[:-1])


def _running_loop():
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def test_progress_runs_on_the_callers_thread(driver, etcd_prefix):
    # The caller's thread: the test's (sync), the event loop's, in the loop (async).
    threads, loops = set(), set()

    def progress(_):
        threads.add(threading.get_ident())
        loops.add(_running_loop())

    driver.put_many(
        ((etcd_prefix + b"%04d" % i, b"v") for i in range(500)),
        batch_ops=10, concurrency=8, progress=progress,
    )
    assert threads == {driver.calling_thread()}
    assert loops == {driver.loop}  # None for the sync client


def test_lease_is_attached(driver, etcd_prefix):
    lease = grant_lease(driver, 120)
    result = driver.put_many(((etcd_prefix + b"%03d" % i, b"v") for i in range(300)), lease=lease)
    assert result.keys == 300
    assert {kv.lease for kv in driver.iter_range(etcd_prefix, prefix=True)} == {lease}


def test_missing_lease_fails_before_anything_is_written(driver, etcd_prefix):
    with pytest.raises(BulkWriteError) as info:
        driver.put_many(((etcd_prefix + b"%03d" % i, b"v") for i in range(600)),
                        lease=0x7FFF_FFFF_FFFF, concurrency=4)
    error = info.value
    assert isinstance(error.cause, LeaseNotFoundError)
    assert error.committed == 0 and error.committed_batches == 0
    # A refused Txn is known not to be applied: nothing is uncertain.
    assert error.uncertain == [] and error.committed_after == []
    assert driver.count(etcd_prefix, prefix=True) == 0


def test_oversize_item_is_refused_before_its_batch_is_sent(driver, etcd_prefix):
    key = etcd_prefix + b"%04d"
    items = [(key % i, b"v") for i in range(300)] + [(key % 300, b"x" * 5000)]
    items += [(key % i, b"v") for i in range(301, 400)]
    with pytest.raises(BulkWriteError) as info:
        driver.put_many(items, max_batch_bytes=4096, batch_ops=100)
    error = info.value
    assert isinstance(error.cause, RequestTooLargeError)
    assert "item 300" in str(error.cause) and repr(key % 300) in str(error.cause)
    assert error.committed == 300 and error.committed_batches >= 3
    assert error.uncertain == [] and error.committed_after == []
    assert "resume from item 300" in str(error)
    assert driver.count(etcd_prefix, prefix=True) == 300
    assert driver.get(key % 300).count == 0

    # As the very first item: nothing at all is sent.
    with pytest.raises(BulkWriteError) as info:
        driver.put_many([(etcd_prefix + b"big", b"x" * 5000), (etcd_prefix + b"z", b"v")],
                        max_batch_bytes=4096)
    assert info.value.committed == 0 and isinstance(info.value.cause, RequestTooLargeError)
    assert driver.count(etcd_prefix + b"big") == 0 and driver.count(etcd_prefix + b"z") == 0


def test_batch_refused_by_the_server_midway(driver, etcd_prefix):
    # Batch 1 holds three 600 kB values: under the driver's limits, over
    # etcd's 1.5 MiB --max-request-bytes. Batches 0-3 are all in flight
    # together; 2 and 3 commit after 1 is refused.
    key = etcd_prefix + b"%04d"
    big = b"x" * 600_000
    items = [(key % i, big if 128 <= i < 131 else b"v") for i in range(512)]
    with pytest.raises(BulkWriteError) as info:
        driver.put_many(items, max_batch_bytes=1_900_000, concurrency=4)
    error = info.value
    assert isinstance(error.cause, RequestTooLargeError)
    assert error.committed == 128 and error.committed_batches == 1
    assert error.uncertain == []  # refused outright: known not applied
    assert error.committed_after == [(256, 512)]
    present = {kv.key for kv in driver.iter_range(etcd_prefix, prefix=True, keys_only=True)}
    assert present == {key % i for i in itertools.chain(range(128), range(256, 512))}


def test_bad_input_items(driver, etcd_prefix):
    def good(n):
        return [(etcd_prefix + b"%03d" % i, b"v") for i in range(n)]

    cases = [
        (good(10) + [(etcd_prefix + b"x", 123)], TypeError, 10),
        (good(5) + [(b"", b"v")], EmptyKeyError, 5),
        (good(7) + [(etcd_prefix + b"x",)], ValueError, 7),
        (good(3) + [None], TypeError, 3),
    ]
    for items, cause, index in cases:
        driver.delete_many(etcd_prefix, prefix=True)
        with pytest.raises(BulkWriteError) as info:
            driver.put_many(items + good(20), batch_ops=4)
        assert isinstance(info.value.cause, cause), info.value
        assert info.value.committed == index
        assert driver.count(etcd_prefix, prefix=True) == index


def test_input_iterable_raising(driver, etcd_prefix):
    class Broken(Exception):
        pass

    def source():
        for i in range(250):
            yield etcd_prefix + b"%03d" % i, b"v"
        raise Broken("disk on fire")

    with pytest.raises(BulkWriteError) as info:
        driver.put_many(source(), batch_ops=100)
    assert isinstance(info.value.cause, Broken) and info.value.committed == 250
    assert "disk on fire" in str(info.value)
    assert driver.count(etcd_prefix, prefix=True) == 250


def test_invalid_arguments_raise_at_once(driver, etcd_prefix):
    items = [(etcd_prefix + b"k", b"v")]
    for options, error in [
        ({"batch_ops": 0}, InvalidArgumentError),
        ({"max_batch_bytes": -1}, InvalidArgumentError),
        ({"concurrency": 0}, InvalidArgumentError),
        ({"concurrency": 1.5}, TypeError),
        ({"progress": "nope"}, TypeError),
        ({"timeout": 0}, ValueError),
        ({"lease": -1}, InvalidArgumentError),
    ]:
        with pytest.raises(error):
            driver.put_many(items, **options)
    with pytest.raises(TypeError):
        driver.put_many(42)
    assert driver.count(etcd_prefix, prefix=True) == 0


def test_closed_client(driver):
    driver.close()
    with pytest.raises(ClientClosedError):
        driver.put_many([(b"k", b"v")])


@pytest.mark.parametrize("kind", KINDS)
def test_kill_server_midway_then_resume(twin, tmp_path, kind):
    """A real crash mid-load: BulkWriteError says where to resume, and resuming
    from ``.committed`` writes every key exactly once more at most."""
    n = 30_000
    prefix = b"/resume/"
    killed = threading.Event()
    lock = threading.Lock()

    def freeze_then_kill():
        # Frozen first, so that batches are likely in flight (sent, unanswered)
        # when kill -9 lands.
        server.pause()
        time.sleep(0.3)
        server.kill()
        killed.set()

    killer = threading.Thread(target=freeze_then_kill)

    def crash():
        # kill -9 from another thread, once, while batches are in flight.
        with lock:
            if not killer.is_alive() and not killed.is_set():
                killer.start()

    def progress(committed):
        if committed >= 8000:
            crash()

    def items(start=0):
        for i in range(start, n):
            if i == 20_000 and not killed.is_set():
                crash()  # in case the committed prefix lagged behind
                assert killed.wait(20)  # the rest of the input goes out after the crash
            yield prefix + b"%06d" % i, b"final-%d" % i

    with EtcdServer(crash_safe_etcd(), log_path=tmp_path / "etcd.log") as server:
        with Driver(kind, server.endpoint, timeout=5) as client:
            with pytest.raises(BulkWriteError) as info:
                client.put_many(items(), batch_ops=64, concurrency=4, progress=progress)
        killer.join()
        error = info.value
        assert isinstance(error.cause, EtcdError), error
        # The crash cut Txns mid-call (ConnectionLostError: outcome unknown, so
        # listed in .uncertain), or, when it fell between two batches (the
        # input generator can hold the loop or the caller's thread while the
        # server dies), refused the next one before it was sent: a known
        # outcome. Both are Unavailable; either way the resume point holds.
        assert isinstance(error.cause, Unavailable), error
        if bulk.outcome_unknown(error.cause):
            assert error.uncertain and error.uncertain[0][0] == error.committed
        assert error.committed <= 20_000
        assert error.committed_batches == error.committed // 64

        server.restart()
        with Driver(kind, server.endpoint, timeout=10) as client:
            resumed = client.put_many(items(error.committed))
            assert resumed.keys == n - error.committed
            kvs = client.get_all(prefix, prefix=True)

    assert [kv.key for kv in kvs] == [prefix + b"%06d" % i for i in range(n)]
    assert all(kv.value == b"final-%d" % i for i, kv in enumerate(kvs))
    maybe_twice = {i for a, b in error.uncertain for i in range(a, b)}
    twice = {i for a, b in error.committed_after for i in range(a, b)}
    for i, kv in enumerate(kvs):
        if i in twice:
            assert kv.version == 2, i
        elif i in maybe_twice:
            assert kv.version in (1, 2), i
        else:
            assert kv.version == 1, i


# -- iter_range, get_all ------------------------------------------------------


def fill(client, prefix: bytes, n: int, value: bytes = b"v") -> list:
    keys = keys_of(prefix, n)
    client.put_many((k, value) for k in keys)
    return keys


def test_iter_range_reads_one_revision_while_writes_happen(driver, etcd_prefix):
    keys = fill(driver, etcd_prefix, 50, b"old")
    pages = driver.iter_range_pages(etcd_prefix, prefix=True, page_size=10)
    assert pages.revision == 0
    first = next(pages)
    pinned = pages.revision
    assert pinned >= driver.last_revision - 0 and len(first) == 10
    # Writes after the first page: overwrite, add keys inside the range, delete.
    driver.put_many((k, b"new") for k in keys)
    driver.put_many((k + b"+", b"added") for k in keys)
    driver.delete(keys[-1])
    rest = list(pages)
    assert [len(page) for page in rest] == [10, 10, 10, 10]
    seen = first + [kv for page in rest for kv in page]
    assert [kv.key for kv in seen] == keys
    assert all(kv.value == b"old" and kv.mod_revision <= pinned for kv in seen)
    assert pages.revision == pinned
    # A new iteration sees the present.
    now = driver.get_all(etcd_prefix, prefix=True)
    assert len(now) == 99 and all(kv.value in (b"new", b"added") for kv in now)


def test_iter_range_page_sizes(driver, etcd_prefix, monkeypatch):
    keys = fill(driver, etcd_prefix, 10)
    calls = []
    execute = driver.client._run

    def counting(request):
        calls.append(request)
        return execute(request)  # the async client awaits what this answers

    monkeypatch.setattr(driver.client, "_run", counting)
    for page_size, sizes in [(1, [1] * 10), (5, [5, 5]), (3, [3, 3, 3, 1]), (10, [10]), (11, [10])]:
        calls.clear()
        pages = list(driver.iter_range_pages(etcd_prefix, prefix=True, page_size=page_size))
        assert [len(p) for p in pages] == sizes, page_size
        assert [kv.key for p in pages for kv in p] == keys
        # An exact multiple needs no extra call for an empty last page.
        assert len(calls) == len(sizes), page_size
    calls.clear()
    for bad, error in [(0, InvalidArgumentError), (-1, InvalidArgumentError), (True, TypeError)]:
        with pytest.raises(error):
            driver.iter_range(etcd_prefix, prefix=True, page_size=bad)
    assert calls == []  # checked before any call


def test_page_size_for_aims_at_page_bytes_within_bounds():
    def pairs(n, key_len, value_len):
        return [etcdfast.KeyValue(b"k" * key_len, 1, 1, 1, b"v" * value_len, 0) for _ in range(n)]

    assert bulk.page_size_for(pairs(1000, 24, 128)) == bulk.MAX_PAGE_KEYS  # 55k would fit
    assert bulk.page_size_for(pairs(10, 24, 1 << 20)) == bulk.MIN_PAGE_KEYS  # 8 would fit
    assert bulk.page_size_for(pairs(500, 100, 50_000 - 100)) == bulk.PAGE_BYTES // 50_000
    # Sampled, not summed: a page of mixed sizes is judged by its spread-out sample.
    mixed = pairs(5000, 10, 90) + pairs(5000, 10, 990)
    assert bulk.page_size_for(mixed) == pytest.approx(bulk.PAGE_BYTES / 550, rel=0.05)


def test_default_pages_are_sized_by_bytes(driver, etcd_prefix, monkeypatch):
    # Scaled down: 10 keys first, then ~2,000 bytes per page within [5, 50].
    monkeypatch.setattr(bulk, "DEFAULT_PAGE_SIZE", 10)
    monkeypatch.setattr(bulk, "PAGE_BYTES", 2000)
    monkeypatch.setattr(bulk, "MIN_PAGE_KEYS", 5)
    monkeypatch.setattr(bulk, "MAX_PAGE_KEYS", 50)
    small = [(etcd_prefix + b"a%03d" % i, b"v" * (100 - len(etcd_prefix) - 4)) for i in range(70)]
    large = [(etcd_prefix + b"b%03d" % i, b"w" * 700) for i in range(30)]
    driver.put_many(small + large)
    pages = list(driver.iter_range_pages(etcd_prefix, prefix=True))
    sizes = [len(p) for p in pages]
    # 100-byte pairs: 20 per page; after a page of 700-byte pairs, 5 (the floor).
    assert sizes[:4] == [10, 20, 20, 20], sizes
    assert sizes[-1] <= 5 and set(sizes[5:-1]) <= {5}, sizes
    assert [kv.key for p in pages for kv in p] == [k for k, _ in small + large]
    # A page_size given is kept, whatever the pairs weigh.
    assert {len(p) for p in driver.iter_range_pages(etcd_prefix, prefix=True, page_size=25)} == {25}


def test_iter_range_empty_and_single_key(driver, etcd_prefix):
    empty = driver.iter_range(etcd_prefix, prefix=True)
    assert list(empty) == [] and empty.revision > 0
    assert list(driver.iter_range_pages(etcd_prefix + b"nothing")) == []
    assert driver.get_all(etcd_prefix, prefix=True) == []
    driver.put(etcd_prefix + b"one", b"1")
    driver.put(etcd_prefix + b"one-two", b"2")
    only = list(driver.iter_range(etcd_prefix + b"one", page_size=1))
    assert [(kv.key, kv.value) for kv in only] == [(etcd_prefix + b"one", b"1")]
    assert isinstance(only[0], KeyValue)


def test_iter_range_bounds_and_options(driver, etcd_prefix):
    keys = fill(driver, etcd_prefix, 20)
    ranged = driver.get_all(keys[5], range_end=keys[12], page_size=3)
    assert [kv.key for kv in ranged] == keys[5:12]
    # from_key runs to the end of the keyspace (other tests' keys follow ours).
    tail = list(itertools.islice(driver.iter_range(keys[17], from_key=True, page_size=2), 3))
    assert [kv.key for kv in tail] == keys[17:]
    keys_only = driver.get_all(etcd_prefix, prefix=True, keys_only=True, page_size=7)
    assert [kv.key for kv in keys_only] == keys and {kv.value for kv in keys_only} == {b""}
    serial = driver.get_all(etcd_prefix, prefix=True, serializable=True, page_size=6, timeout=5)
    assert [kv.key for kv in serial] == keys
    # A given revision: the past, read in pages.
    before = driver.put(etcd_prefix + b"%07d" % 0, b"changed").header.revision - 1
    old = driver.get_all(etcd_prefix, prefix=True, revision=before, page_size=4)
    assert [kv.value for kv in old] == [b"v"] * 20
    it = driver.iter_range(etcd_prefix, prefix=True, revision=before)
    assert it.revision == before
    with pytest.raises(InvalidArgumentError):
        driver.iter_range(etcd_prefix, prefix=True, from_key=True)


def test_iter_range_compacted_mid_iteration(driver, etcd_prefix):
    fill(driver, etcd_prefix, 6)
    pages = driver.iter_range_pages(etcd_prefix, prefix=True, page_size=2)
    next(pages)
    pinned = pages.revision
    current = driver.put(etcd_prefix + b"later", b"x").header.revision
    driver.compact(current)
    with pytest.raises(CompactedError) as info:
        next(pages)
    assert info.value.compact_revision is not None and info.value.compact_revision > pinned
    assert pages.revision == pinned  # never silently moved on

    # The same one key at a time: the keys of the first page, then the error.
    items = driver.iter_range(etcd_prefix, prefix=True, page_size=2)
    got = [next(items), next(items)]
    pinned = items.revision
    current = driver.put(etcd_prefix + b"later", b"y").header.revision
    driver.compact(current)
    with pytest.raises(CompactedError) as info:
        got.extend(items)
    assert len(got) == 2 and items.revision == pinned
    assert info.value.compact_revision is not None and info.value.compact_revision > pinned


# -- count, delete_many -------------------------------------------------------


def test_count(driver, etcd_prefix):
    keys = fill(driver, etcd_prefix, 30)
    assert driver.count(etcd_prefix, prefix=True) == 30
    assert driver.count(keys[10], range_end=keys[20]) == 10
    assert driver.count(keys[0]) == 1 and driver.count(etcd_prefix + b"missing") == 0
    assert driver.count(keys[25], from_key=True) >= 5
    revision = driver.delete(keys[0]).header.revision
    assert driver.count(etcd_prefix, prefix=True) == 29
    assert driver.count(etcd_prefix, prefix=True, revision=revision - 1) == 30
    assert driver.count(etcd_prefix, prefix=True, serializable=True, timeout=5) == 29
    with pytest.raises(EmptyKeyError):
        driver.count("")


def test_delete_many(driver, etcd_prefix):
    keys = fill(driver, etcd_prefix, 30)
    assert driver.delete_many(keys[0]) == 1
    assert driver.delete_many(keys[0]) == 0
    assert driver.delete_many(keys[10], range_end=keys[20]) == 10
    assert driver.delete_many(keys[25], prefix=True) == 1
    assert driver.delete_many(etcd_prefix, prefix=True) == 18
    assert driver.count(etcd_prefix, prefix=True) == 0


# -- the sans-IO core, without a server ---------------------------------------


def test_packer_respects_ops_and_bytes(twin):
    rng = random.Random(4)
    items = [(b"k%06d" % i, b"v" * rng.choice([0, 1, 100, 3000])) for i in range(2000)]
    for batch_ops, max_bytes in [(128, 1 << 20), (7, 1 << 20), (128, 9000), (1, 4000)]:
        packer = twin.batch.BatchPacker(batch_ops, max_bytes, 0)
        batches = [b for b in map(packer.add, items) if b is not None] + [packer.flush()]
        assert [b.seq for b in batches] == list(range(len(batches)))
        assert batches[0].start == 0 and batches[-1].stop == len(items)
        for before, after in zip(batches, batches[1:]):
            assert before.stop == after.start
        for b in batches:
            assert 0 < b.stop - b.start <= batch_ops and len(b.payload) <= max_bytes
            assert b.payload == twin.wire.encode_put_txn(items[b.start:b.stop], 0)
            assert b.after == -1


def test_packer_orders_repeated_keys(twin):
    packer = twin.batch.BatchPacker(4, 1 << 20, 0)
    out = [packer.add((k, b"v")) for k in [b"a", b"b", b"a", b"c", b"d", b"e", b"f", b"b"]]
    first, second = out[2], out[6]
    assert (first.start, first.stop, first.after) == (0, 2, -1)  # cut at the repeated b"a"
    assert (second.start, second.stop, second.after) == (2, 6, 0)  # must wait for batch 0
    last = packer.flush()
    assert (last.start, last.stop, last.after) == (6, 8, 0)  # b"b" is still held by batch 0
    packer.release(first)
    packer.release(second)
    # A finished batch's keys are forgotten: no dependency on it.
    again = twin.batch.BatchPacker(2, 1 << 20, 0)
    again.add((b"x", b"1"))
    again.add((b"y", b"1"))
    again.release(again.add((b"z", b"1")))
    assert again.add((b"x", b"2")) is None and again.flush().after == -1


def test_ledger_folds_out_of_order_outcomes():
    seen = []
    ledger = bulk.BulkLedger(seen.append)
    batches = [bulk.Batch(i, i * 10, i * 10 + 10, b"x", [], -1) for i in range(5)]
    for b in batches:
        ledger.sent(b)
    ledger.succeeded(2, 30)
    ledger.succeeded(0, 10)
    assert (ledger.committed, seen) == (10, [10])
    ledger.failed(1, Timeout("slow"))
    ledger.failed(3, LeaseNotFoundError("gone"))
    ledger.succeeded(4, 50)
    assert ledger.stopped and ledger.committed == 10 and seen == [10]
    with pytest.raises(BulkWriteError) as info:
        ledger.result(1.0)
    error = info.value
    assert isinstance(error.cause, Timeout)  # the earliest failure in input order
    assert error.committed == 10 and error.committed_batches == 1
    assert error.uncertain == [(10, 20)]  # the timeout; the lease error is a clear refusal
    assert error.committed_after == [(20, 30), (40, 50)]
    assert error.code == "DEADLINE_EXCEEDED"


def test_outcome_unknown_classification():
    # What the call machine raises says whether a batch may have been applied.
    assert bulk.outcome_unknown(ConnectionLostError("down after sending"))
    assert bulk.outcome_unknown(ClosedDuringCallError("closed in flight"))
    assert bulk.outcome_unknown(Timeout("slow"))
    assert bulk.outcome_unknown(ProtocolError("applied, unreadable answer"))
    assert bulk.outcome_unknown(RuntimeError("?"))  # not ours: assume the worst
    assert not bulk.outcome_unknown(Unavailable("connection refused: never sent"))
    assert not bulk.outcome_unknown(ClientClosedError("closed before sending"))
    assert not bulk.outcome_unknown(RequestTooLargeError("big"))
    assert not bulk.outcome_unknown(LeaseNotFoundError("gone"))


def test_txn_revision_matches_the_codec(codec):
    TxnResponse = _schema.message("etcdserverpb.TxnResponse")
    rng = random.Random(7)
    messages = []
    for _ in range(200):
        m = TxnResponse(succeeded=rng.random() < 0.9)
        if rng.random() < 0.95:
            m.header.revision = rng.choice([0, 1, 127, 128, 2**31, 2**62])
            m.header.cluster_id = rng.getrandbits(64)
            m.header.member_id = rng.getrandbits(64)
            m.header.raft_term = rng.getrandbits(20)
        for _ in range(rng.randrange(4)):
            m.responses.add().response_put.header.revision = 5
        messages.append(m.SerializeToString())
    # Unusual encodings go through the full decoder: header not first, header
    # with an unknown length-delimited field.
    messages.append(TxnResponse(succeeded=True).SerializeToString() + b"\x0a\x02\x18\x05")
    messages.append(b"\x0a\x05\x18\x09\x2a\x01z")
    for data in messages:
        expected = codec.wire.decode_txn(data, None).header.revision
        tracker = codec.revision.RevisionTracker()
        assert codec.wire.decode_txn_revision(data, tracker) == expected
        assert tracker.last == expected
