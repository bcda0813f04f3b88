"""Records built on access: ``KeyValues`` and ``Events`` behave as read-only lists.

Both twins' sequences are checked against the plain list of the records the
protobuf runtime decodes from the same bytes, operation by operation; records
must outlive their sequence, their result and the response bytes, and a
sequence must outlive its result.
"""

from __future__ import annotations

import copy
import gc
import pickle
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from etcdfast import _schema
from etcdfast.types import Event, EventType, GetResult, KeyValue, Records

RangeResponse = _schema.message("etcdserverpb.RangeResponse")
DeleteRangeResponse = _schema.message("etcdserverpb.DeleteRangeResponse")
WatchResponse = _schema.message("etcdserverpb.WatchResponse")
TxnResponse = _schema.message("etcdserverpb.TxnResponse")

INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
KV = st.fixed_dictionaries({
    "key": st.binary(max_size=12), "value": st.binary(max_size=40), "create_revision": INT64,
    "mod_revision": INT64, "version": INT64, "lease": INT64,
})


def expect_kv(m) -> KeyValue:
    return KeyValue(m.key, m.create_revision, m.mod_revision, m.version, m.value, m.lease)


def expect_event(m) -> Event:
    prev = expect_kv(m.prev_kv) if m.HasField("prev_kv") else None
    kind = EventType(m.type) if m.type in (0, 1) else m.type
    return Event(kind, expect_kv(m.kv), prev)


def range_bytes(kvs) -> bytes:
    return RangeResponse(header={"revision": 9}, kvs=kvs, count=len(kvs)).SerializeToString()


def sample_kvs(n: int):
    return [{"key": b"/k/%04d" % i, "value": b"v%d" % i, "create_revision": 100 + i // 3,
             "mod_revision": 100 + i // 3, "version": 1 + i % 2, "lease": i % 5} for i in range(n)]


def watch_bytes(n: int) -> bytes:
    message = WatchResponse(header={"revision": 500}, watch_id=3)
    for i in range(n):
        event = message.events.add(type=i % 2)
        event.kv.key = b"/w/%04d" % i
        event.kv.value = b"x" * (i % 7)
        event.kv.mod_revision = 400 + i
        if i % 3 == 0:
            event.prev_kv.key = b"/w/%04d" % i
            event.prev_kv.version = i
    return message.SerializeToString()


def sequences(codec):
    """(decoded sequence, the expected list) for each kind of record sequence."""
    kvs = sample_kvs(7)
    data = range_bytes(kvs)
    expected_kvs = [expect_kv(k) for k in RangeResponse.FromString(data).kvs]
    deleted = DeleteRangeResponse(deleted=7, prev_kvs=kvs).SerializeToString()
    events = watch_bytes(6)
    return [
        (codec.wire.decode_range(data).kvs, expected_kvs),
        (codec.wire.decode_delete(deleted).prev_kvs, expected_kvs),
        (codec.watch.decode_watch(events).events,
         [expect_event(e) for e in WatchResponse.FromString(events).events]),
    ]


def test_sequences_are_records_of_the_twins_class(codec):
    for seq, _ in sequences(codec):
        assert isinstance(seq, Records) and isinstance(seq, codec.records.__dict__[type(seq).__name__])
    empty = codec.wire.decode_range(b"")
    assert type(empty.kvs) is codec.records.KeyValues and empty.kvs == [] and not empty.kvs


INDEXES = st.integers(min_value=-9, max_value=9)
SLICES = st.builds(slice, st.none() | INDEXES, st.none() | INDEXES,
                   st.none() | st.integers(min_value=-3, max_value=3).filter(bool))


@settings(max_examples=200, deadline=None)
@given(index=INDEXES, part=SLICES)
def test_indexing_and_slicing_as_a_list(codec, index, part):
    for seq, expected in sequences(codec):
        assert len(seq) == len(expected)
        if -len(expected) <= index < len(expected):
            assert type(seq[index]) is type(expected[index]) and seq[index] == expected[index]
        else:
            with pytest.raises(IndexError):
                seq[index]
        sliced = seq[part]
        assert type(sliced) is list and sliced == expected[part]


def test_list_behaviour(codec):
    for seq, expected in sequences(codec):
        assert list(seq) == expected and list(reversed(seq)) == expected[::-1]
        assert seq == expected and expected == seq and not seq != expected and seq != expected[:-1]
        assert seq != tuple(expected) and seq != None  # noqa: E711 - a list equals lists only
        assert repr(seq) == repr(expected)
        assert expected[2] in seq and "nothing" not in seq
        assert seq.index(expected[3]) == 3 and seq.count(expected[3]) == 1 and seq.count(None) == 0
        assert seq.index(expected[3], 1, 5) == 3
        with pytest.raises(ValueError):
            seq.index(expected[3], 4)
        assert seq + [1] == expected + [1] and [1] + seq == [1] + expected and seq + seq == expected * 2
        assert bool(seq) and len(seq) == len(expected)
        with pytest.raises(TypeError):
            hash(seq)
        with pytest.raises(TypeError):
            seq["0"]
        with pytest.raises(TypeError):
            seq + (1,)
        with pytest.raises(TypeError):
            seq[0] = expected[0]
        with pytest.raises(IndexError):
            seq[2**70]
        assert pickle.loads(pickle.dumps(seq)) == expected
        assert copy.copy(seq) == expected and copy.deepcopy(seq) == expected
        assert sorted(seq, key=lambda r: r[1] if isinstance(r, Event) else r.key) == sorted(
            expected, key=lambda r: r[1] if isinstance(r, Event) else r.key)


def test_the_twins_sequences_equal_each_other(twins):
    for (fast, _), (pure, expected) in zip(sequences(twins.fast), sequences(twins.pure)):
        assert fast == pure and pure == fast and fast == expected


def test_records_are_plain_immutable_values(codec):
    for seq, expected in sequences(codec):
        record = seq[0]
        assert record == expected[0] and hash(record) == hash(expected[0])
        assert pickle.loads(pickle.dumps(record)) == record
        assert seq[0] == seq[0]  # built on access (anew or not: equal either way)
        with pytest.raises(AttributeError):
            record.key = b"changed"  # type: ignore[misc]
    kv = sequences(codec)[0][0][1]
    assert kv.key_text == "/k/0001" and kv.value_text == "v1"


def test_records_and_sequences_outlive_the_result_and_the_bytes(codec):
    data = range_bytes(sample_kvs(50))
    result = codec.wire.decode_range(bytes(data))  # a private copy of the bytes
    kvs, first, pickled = result.kvs, result.kvs[0], pickle.dumps(result)
    del result
    gc.collect()
    assert kvs == [expect_kv(k) for k in RangeResponse.FromString(data).kvs]
    del kvs
    gc.collect()
    assert first == expect_kv(RangeResponse.FromString(data).kvs[0])
    again = pickle.loads(pickled)
    assert isinstance(again, GetResult)
    assert again.kvs == [expect_kv(k) for k in RangeResponse.FromString(data).kvs]
    events = codec.watch.decode_watch(watch_bytes(5)).events
    one = events[1]
    del events
    gc.collect()
    assert one == expect_event(WatchResponse.FromString(watch_bytes(5)).events[1])


def test_fast_sequence_releases_the_response_bytes(twins):
    # The Cython twin keeps the response bytes while a sequence lives, and only then.
    data = range_bytes(sample_kvs(10))
    before = sys.getrefcount(data)
    result = twins.fast.wire.decode_range(data)
    kv = result.kvs[3]
    assert sys.getrefcount(data) > before
    del result
    gc.collect()
    assert sys.getrefcount(data) == before and kv.key == b"/k/0003"
    events = twins.fast.watch.decode_watch(data := watch_bytes(4)).events
    held = sys.getrefcount(data)
    del events
    assert sys.getrefcount(data) == held - 1


@settings(max_examples=150, deadline=None)
@given(kvs=st.lists(KV, max_size=8), index=INDEXES, part=SLICES)
def test_random_ranges_in_a_txn(twins, kvs, index, part):
    # A range nested in a txn keeps the whole response: its records come out right.
    message = TxnResponse(header={"revision": 3}, succeeded=True)
    message.responses.add().response_put.header.revision = 3
    inner = message.responses.add().response_range
    inner.header.revision = 3  # present even with no kvs
    for k in kvs:
        inner.kvs.add(**k)
    data = message.SerializeToString()
    expected = [expect_kv(k) for k in TxnResponse.FromString(data).responses[1].response_range.kvs]
    for codec in (twins.fast, twins.pure):
        seq = codec.wire.decode_txn(data).responses[1].kvs
        assert seq == expected and seq[part] == expected[part]
        if -len(expected) <= index < len(expected):
            assert seq[index] == expected[index]


def test_constructed_empty(codec):
    assert codec.records.KeyValues() == [] and codec.records.Events() == []
    assert repr(codec.records.KeyValues()) == "[]"


def test_iteration_keeps_every_record_it_handed_out_intact(codec):
    # The Cython twin's iterator refills in place a record nobody holds any
    # more (see _fast/records.pyx): whatever was kept must stay as it was.
    data = range_bytes(sample_kvs(40))
    expected = [expect_kv(k) for k in RangeResponse.FromString(data).kvs]
    kvs = codec.wire.decode_range(data).kvs
    kept, keys, seen = [], [], set()
    for i, kv in enumerate(kvs):
        keys.append(kv.key)
        if i % 3 == 0:
            kept.append(kv)
        if i % 5 == 0:
            seen.add(kv)
    assert keys == [kv.key for kv in expected] and kept == expected[::3]
    assert seen == set(expected[::5]) and all(kv in seen for kv in expected[::5])
    iterator = iter(kvs)
    first, second = next(iterator), next(iterator)
    rest = list(iterator)
    assert [first, second, *rest] == expected
    assert [kv.value for kv in kvs] == [kv.value for kv in expected]
    assert list(zip(kvs, kvs)) == list(zip(expected, expected))
    pairs = {kv.key: kv for kv in kvs}
    assert list(pairs.values()) == expected
