"""Differential tests: the Cython and pure twins must be indistinguishable.

Same public names and signatures; same results *and types* for any input,
including random, mutated, truncated and pathologically nested bytes (where
the pure twin follows upb, the protobuf runtime's parser).
"""

from __future__ import annotations

import inspect

import pytest
from codec_helpers import agree as agree_in
from codec_helpers import mutated, outcome, varint
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from etcdfast import ProtocolError, _codec, _schema

DECODERS = [
    "decode_range", "decode_put", "decode_delete", "decode_txn", "decode_txn_revision",
    "decode_compaction", "decode_authenticate", "decode_snapshot_chunk",
]


def agree(twins, decoder: str, data: bytes) -> None:
    agree_in(twins, "wire", decoder, data)


def revision_agrees_with_txn(twins, data: bytes) -> None:
    """In each twin, decode_txn_revision accepts exactly what decode_txn accepts
    (raising the same exception type otherwise) and returns its header.revision."""
    for twin in (twins.fast, twins.pure):
        full = outcome(twin.wire.decode_txn, data)
        revision = outcome(twin.wire.decode_txn_revision, data)
        if isinstance(full, type):
            assert revision is full, (twin.name, data.hex(), revision, full)
        else:
            assert type(revision) is int and revision == full.header.revision, (twin.name, data.hex())


def all_agree(twins, data: bytes) -> None:
    for decoder in DECODERS:
        agree(twins, decoder, data)
    revision_agrees_with_txn(twins, data)


def same_parameters(f, p, name: str) -> None:
    fast_params = list(inspect.signature(f).parameters.values())
    pure_params = list(inspect.signature(p).parameters.values())
    assert [x.name for x in fast_params] == [x.name for x in pure_params], name
    assert [x.default for x in fast_params] == [x.default for x in pure_params], name


def public(cls) -> list:
    return sorted(n for n in dir(cls) if not n.startswith("_"))


# Arguments for the classes whose constructor has required parameters.
CONSTRUCTOR_ARGS = {"Batch": (3, 10, 20, b"payload", [], -1), "BatchPacker": (128, 1 << 20, 7)}


def data(obj) -> dict:
    """An object's public data attributes (properties, slots, Cython attributes)."""
    cls = type(obj)
    return {n: getattr(obj, n) for n in public(cls) if inspect.isdatadescriptor(getattr(cls, n))}


@pytest.mark.parametrize("module", _codec.MODULES)
def test_same_public_names_and_signatures(twins, module):
    fast, pure = getattr(twins.fast, module), getattr(twins.pure, module)
    assert sorted(fast.__all__) == sorted(pure.__all__)
    for name in pure.__all__:
        f, p = getattr(fast, name), getattr(pure, name)
        if not inspect.isclass(p):
            same_parameters(f, p, name)
            continue
        assert public(f) == public(p), name
        for member in public(p):
            if inspect.isdatadescriptor(getattr(p, member)):  # a property or a slot
                assert inspect.isdatadescriptor(getattr(f, member)), f"{name}.{member}"
            else:
                same_parameters(getattr(f, member), getattr(p, member), f"{name}.{member}")
        # An extension type hides its __init__ signature: call both with the
        # pure twin's keywords (and any required arguments) instead.
        defaults = {
            x.name: x.default for x in inspect.signature(p).parameters.values() if x.default is not x.empty
        }
        args = CONSTRUCTOR_ARGS.get(name, ())
        made_fast, made_pure = f(*args, **defaults), p(*args, **defaults)
        assert data(made_fast) == data(made_pure), name
        if type(made_pure).__repr__ is not object.__repr__:
            assert repr(made_fast) == repr(made_pure), name


def test_fast_twin_is_really_compiled(twins):
    assert twins.fast.wire.__file__.endswith((".so", ".pyd"))


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=48))
def test_random_bytes(twins, data):
    all_agree(twins, data)


def _valid_samples():
    pb = lambda name: _schema.message(f"etcdserverpb.{name}")  # noqa: E731
    rng = pb("RangeResponse")(
        header={"revision": 77, "cluster_id": 2**63, "raft_term": 3},
        kvs=[{"key": b"a", "value": b"b", "create_revision": 300, "lease": -1}, {"key": b"c"}],
        more=True, count=2,
    )
    put = pb("PutResponse")(header={"revision": 5}, prev_kv={"key": b"k", "version": 4})
    txn = pb("TxnResponse")(header={"revision": 9}, succeeded=True)
    txn.responses.add().response_range.CopyFrom(rng)
    txn.responses.add().response_put.CopyFrom(put)
    txn.responses.add().response_txn.responses.add().response_delete_range.deleted = 3
    bulk = pb("TxnResponse")(header={"revision": 2**63 - 1, "cluster_id": 7}, succeeded=True)
    for _ in range(3):
        bulk.responses.add().response_put.header.revision = 2**63 - 1
    # Every submessage field of the TxnResponse tree, at two levels: mutations
    # must find each of them for decode_txn_revision's walk to be checked.
    deep = pb("TxnResponse")(header={"revision": 12})
    inner = deep.responses.add().response_txn
    inner.header.revision = 11
    inner.responses.add().response_delete_range.CopyFrom(
        pb("DeleteRangeResponse")(header={"revision": 10}, deleted=1, prev_kvs=[{"key": b"d", "version": 2}])
    )
    inner.responses.add().response_range.CopyFrom(rng)
    inner.responses.add().response_put.CopyFrom(put)
    chunk = _schema.message("etcdserverpb.SnapshotResponse")(
        header={"revision": 4}, remaining_bytes=300, blob=b"snapshot bytes"
    )
    login = pb("AuthenticateResponse")(header={"revision": 6, "member_id": 9}, token="tok\u00e9n.27")
    version = b"\x22\x053.6.0"  # etcd 3.6's SnapshotResponse.version
    samples = [m.SerializeToString() for m in (rng, put, txn, bulk, deep, login, chunk)]
    return samples + [samples[-1] + version + b"\x49" + b"\x00" * 8 + b"\x5d\x00\x00\x00\x00"]


VALID = _valid_samples()


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated(VALID))
def test_mutated_messages(twins, data):
    all_agree(twins, data)


@pytest.mark.parametrize("sample", range(len(VALID)))
def test_every_truncation(twins, sample):
    data = VALID[sample]
    for cut in range(len(data) + 1):
        all_agree(twins, data[:cut])


# Hand-made wire cases around upb's rules (see _fast/buffer.pxd).
EDGE_CASES = {
    "10-byte varint, high bits dropped": b"\x20" + b"\xff" * 9 + b"\x7f",
    "11-byte varint": b"\x20" + b"\xff" * 10 + b"\x01",
    "field number 0": b"\x00\x01",
    "tag over 32 bits": b"\x80\x80\x80\x80\x10\x01",
    "largest tag": b"\xf8\xff\xff\xff\x0f\x01",
    "padded 5-byte tag": b"\xa0\x80\x80\x80\x00\x05",
    "padded 6-byte tag": b"\xa0\x80\x80\x80\x80\x00\x05",
    "wire type 6": b"\x0e",
    "wire type 7": b"\x0f",
    "stray end group": b"\x0c",
    "unknown group": b"\x4b\x08\x01\x4c\x20\x05",
    "group end mismatch": b"\x4b\x08\x01\x54",
    "unterminated group": b"\x4b\x08\x01",
    "group on a message field": b"\x0b\x18\x05\x0c\x20\x05",
    "LEN on a varint field": b"\x22\x01\x05",
    "varint on a message field": b"\x08\x05",
    "length past the end": b"\x0a\x05\x18",
    "padded 5-byte length": b"\x0a\x82\x80\x80\x80\x00\x18\x05",
    "padded 6-byte length": b"\x0a\x82\x80\x80\x80\x80\x00\x18\x05",
    "bool 2": b"\x18\x02",
    "bool wrapping to zero": b"\x18" + b"\x80" * 9 + b"\x02",
    "merged header": b"\x0a\x02\x18\x05\x0a\x02\x20\x07",
    "fixed64 unknown": b"\x49" + b"\x00" * 8,
    "fixed64 truncated": b"\x49" + b"\x00" * 7,
    "fixed32 on an int field": b"\x25" + b"\x00" * 4,
    "uint64 cluster id": b"\x0a\x0b\x08" + b"\xff" * 9 + b"\x01",
    "end group inside a submessage": b"\x0a\x01\x0c",
    "repeated prev_kv merges": b"\x12\x03\x0a\x01a\x12\x02\x20\x05",
    "oneof switch": b"\x1a\x04\x0a\x00\x12\x00",
    "oneof member twice merges": b"\x1a\x08\x12\x02\x0a\x00\x12\x02\x12\x00",
    "oneof back to the first member": b"\x1a\x08\x0a\x02\x20\x01\x12\x00\x0a\x00",
    # upb checks no field number inside a skipped group: 0 passes there only
    "field 0 varint in a group": b"\x4b\x00\x00\x4c",
    "field 0 in a group on a message field": b"\x13\x00\x00\x14",
    "field 0 fixed64, bytes, fixed32 in a group":
        b"\x4b\x01" + b"\x00" * 8 + b"\x02\x00\x05" + b"\x00" * 4 + b"\x4c",
    "field 0 group in a group": b"\x4b\x03\x08\x01\x04\x4c",
    "field 0 in a nested group": b"\x4b\x53\x00\x00\x54\x4c",
    "field 0 end group in a group": b"\x4b\x04\x4c",
    "field 0 in a group in a header": b"\x0a\x04\x4b\x00\x00\x4c",
    "field 0 in a header": b"\x0a\x02\x00\x00",
    "field 0 fixed64": b"\x01" + b"\x00" * 8,
    "wire type 6 in a group": b"\x4b\x0e\x4c",
    "bad KeyValue deep in a txn": b"\x1a\x08\x22\x06\x1a\x04\x12\x02\x12\x05",
    "group inside a nested header": b"\x1a\x06\x12\x04\x0a\x02\x4b\x4c",
    "unknown LEN in a ResponseOp": b"\x1a\x03\x2a\x01\x00",
    "put header revision only": b"\x1a\x06\x12\x04\x0a\x02\x18\x09",
    "negative revision": b"\x0a\x0b\x18" + b"\xff" * 9 + b"\x01",
    # snapshot chunks: the hand-written parser's rules (see _pure/wire.py)
    "snapshot 10-byte varint past 64 bits": b"\x10" + b"\xff" * 9 + b"\x7f",
    "snapshot tag past 64 bits": b"\x90" + b"\x80" * 8 + b"\x02\x05",
    "snapshot length past 64 bits": b"\x1a" + b"\x80" * 9 + b"\x02",
    "snapshot padded 6-byte length": b"\x1a\x81\x80\x80\x80\x80\x00x",
    "snapshot version not UTF-8": b"\x22\x03a\xff\xfe",
    "snapshot fixed32 at the very end": b"\x1a\x01a\x0d\x00\x00\x00\x00",
    "snapshot fixed64 one short": b"\x1a\x01a\x09" + b"\x00" * 7,
}


@pytest.mark.parametrize("name", sorted(EDGE_CASES))
def test_edge_cases(twins, name):
    all_agree(twins, EDGE_CASES[name])


def nested_txn(levels: int, groups: int = 0) -> bytes:
    """A TxnResponse with ``levels`` submessage levels below it (TxnResponse ->
    ResponseOp -> TxnResponse ...), and ``groups`` nested unknown groups at
    the bottom."""
    body = b"\x4b" * groups + b"\x4c" * groups
    for level in range(levels, 0, -1):
        tag = b"\x1a" if level % 2 else b"\x22"  # responses=3 / response_txn=4
        body = tag + varint(len(body)) + body
    return body


@pytest.mark.parametrize(("levels", "groups"), [(98, 0), (99, 0), (100, 0), (101, 0), (102, 0),
                                                (98, 2), (98, 3), (0, 100), (0, 101)])
def test_nesting_limit_matches_upb(twins, levels, groups):
    agree(twins, "decode_txn", nested_txn(levels, groups))
    agree(twins, "decode_txn_revision", nested_txn(levels, groups))
    revision_agrees_with_txn(twins, nested_txn(levels, groups))


def test_nesting_limit_is_one_hundred(twins):
    # Pin the limit itself, not just agreement, so a change in upb is noticed.
    for decode in (twins.fast.wire.decode_txn, twins.fast.wire.decode_txn_revision):
        decode(nested_txn(100))
        with pytest.raises(ProtocolError):
            decode(nested_txn(101))


def test_nesting_limit_at_the_leaves(twins):
    # A header or KeyValue (parsed in C by both Cython decoders) at the bottom
    # of the nesting, holding 0-3 nested unknown groups: each level counts
    # towards the limit, wherever it falls.
    outcomes = set()
    for levels in range(95, 101):
        for kind in ("header", "kvs"):
            for leaf in (b"\x4b" * groups + b"\x4c" * groups for groups in range(4)):
                member = (b"\x0a" if kind == "header" else b"\x12") + varint(len(leaf)) + leaf
                if levels % 2:  # the innermost level is a ResponseOp: hold a RangeResponse
                    body = b"\x0a" + varint(len(member)) + member
                elif kind == "header":  # a TxnResponse: its own header
                    body = member
                else:
                    continue
                for level in range(levels, 0, -1):
                    tag = b"\x1a" if level % 2 else b"\x22"
                    body = tag + varint(len(body)) + body
                agree(twins, "decode_txn", body)
                revision_agrees_with_txn(twins, body)
                result = outcome(twins.pure.wire.decode_txn_revision, body)
                outcomes.add(result if isinstance(result, type) else type(result))
    assert outcomes == {int, ProtocolError}  # the limit falls inside the range tried


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(min_value=-(2**63), max_value=2**63 - 1), max_size=20))
def test_revision_trackers_agree(twins, revisions):
    fast, pure = twins.fast.revision.RevisionTracker(), twins.pure.revision.RevisionTracker()
    for seen, revision in enumerate(revisions, start=1):
        fast.observe(revision)
        pure.observe(revision)
        assert fast.last == pure.last == max([0, *revisions[:seen]])


def test_fast_records_are_not_tracked_by_the_cyclic_gc(twins):
    # Records of atoms cannot form cycles; tracking 100k of them only costs
    # collections during a big decode (see records.h). Nor can a KeyValues,
    # which holds the response bytes only; the result tuple stays tracked.
    import gc

    message = _schema.message("etcdserverpb.RangeResponse")()
    message.header.revision = 7
    message.kvs.add(key=b"k", value=b"v", mod_revision=3)
    result = twins.fast.wire.decode_range(message.SerializeToString())
    assert not gc.is_tracked(result.kvs[0]) and not gc.is_tracked(result.header)
    assert not gc.is_tracked(result.kvs) and gc.is_tracked(result)
    assert result == twins.pure.wire.decode_range(message.SerializeToString())


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    items=st.lists(st.tuples(st.binary(max_size=200), st.binary(max_size=200)), max_size=12),
    lease=st.sampled_from([0, 1, 2**40, -1]),
)
def test_put_txn_and_put_encoders_agree_with_protobuf(twins, items, lease):
    # The pure twin has fast paths for the common case (non-empty key and
    # value, no lease): both twins and protobuf itself must produce the same bytes.
    txn = _schema.message("etcdserverpb.TxnRequest")()
    for key, value in items:
        txn.success.add().request_put.CopyFrom(
            _schema.message("etcdserverpb.PutRequest")(key=key, value=value, lease=lease)
        )
    expected = txn.SerializeToString()
    assert twins.fast.wire.encode_put_txn(items, lease) == expected
    assert twins.pure.wire.encode_put_txn(items, lease) == expected
    for key, value in items[:3]:
        put = _schema.message("etcdserverpb.PutRequest")(key=key, value=value, lease=lease)
        assert twins.pure.wire.encode_put(key, value, lease, False, False, False) == put.SerializeToString()
        assert twins.fast.wire.encode_put(key, value, lease, False, False, False) == put.SerializeToString()


@settings(max_examples=300, deadline=None)
@given(
    blob=st.binary(max_size=100),
    remaining=st.integers(min_value=0, max_value=2**64 - 1),
    extra=st.lists(
        st.sampled_from([b"\x22\x053.6.0", b"\x0a\x02\x18\x05", b"\x48\x01", b"\x1a\x00",
                         b"\x49" + b"\x01" * 8, b"\x5d\x01\x02\x03\x04", b"\x00\x00", b"\x12\x00"]),
        max_size=4,
    ),
)
def test_snapshot_chunks_agree(twins, blob, remaining, extra):
    message = _schema.message("etcdserverpb.SnapshotResponse")(remaining_bytes=remaining, blob=blob)
    data = message.SerializeToString() + b"".join(extra)
    chunk = agree_in(twins, "wire", "decode_snapshot_chunk", data)
    assert chunk.blob.obj is data
    for cut in range(len(data)):
        agree_in(twins, "wire", "decode_snapshot_chunk", data[:cut])
