"""Differential tests: the Cython and pure twins must be indistinguishable.

Same public names and signatures; same results *and types* for any input,
including random, mutated, truncated and pathologically nested bytes (where
the pure twin follows upb, the protobuf runtime's parser).
"""

from __future__ import annotations

import inspect

import pytest
from codec_helpers import agree as agree_in
from codec_helpers import mutated, varint
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from etcdfast import ProtocolError, _codec, _schema

DECODERS = ["decode_range", "decode_put", "decode_delete", "decode_txn", "decode_compaction"]


def agree(twins, decoder: str, data: bytes) -> None:
    agree_in(twins, "wire", decoder, data)


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
    for decoder in DECODERS:
        agree(twins, decoder, data)


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
    return [m.SerializeToString() for m in (rng, put, txn)]


VALID = _valid_samples()


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated(VALID))
def test_mutated_messages(twins, data):
    for decoder in DECODERS:
        agree(twins, decoder, data)


@pytest.mark.parametrize("sample", range(len(VALID)))
def test_every_truncation(twins, sample):
    data = VALID[sample]
    for cut in range(len(data) + 1):
        for decoder in DECODERS:
            agree(twins, decoder, data[:cut])


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
}


@pytest.mark.parametrize("name", sorted(EDGE_CASES))
def test_edge_cases(twins, name):
    for decoder in DECODERS:
        agree(twins, decoder, EDGE_CASES[name])


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


def test_nesting_limit_is_one_hundred(twins):
    # Pin the limit itself, not just agreement, so a change in upb is noticed.
    twins.fast.wire.decode_txn(nested_txn(100))
    with pytest.raises(ProtocolError):
        twins.fast.wire.decode_txn(nested_txn(101))


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
    # collections during a big decode (see records.h). Containers stay tracked.
    import gc

    message = _schema.message("etcdserverpb.RangeResponse")()
    message.header.revision = 7
    message.kvs.add(key=b"k", value=b"v", mod_revision=3)
    result = twins.fast.wire.decode_range(message.SerializeToString())
    assert not gc.is_tracked(result.kvs[0]) and not gc.is_tracked(result.header)
    assert gc.is_tracked(result.kvs)
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
