"""The wire codec against the protobuf runtime as oracle, on both twins.

Requests: our bytes must equal what protobuf serializes for the same fields
(so they also parse back to the same fields). Responses: what protobuf
serializes must decode to the expected result objects.
"""

from __future__ import annotations

import pytest
from codec_helpers import same, varint
from hypothesis import given, settings
from hypothesis import strategies as st

from etcdfast import _schema
from etcdfast.errors import ProtocolError
from etcdfast.types import (
    CompactResult,
    DeleteResult,
    GetResult,
    KeyValue,
    PutResult,
    ResponseHeader,
    SnapshotChunk,
    TxnResult,
)


def pb(name: str):
    return _schema.message(f"etcdserverpb.{name}")


INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
UINT64 = st.integers(min_value=0, max_value=2**64 - 1)
REV = st.one_of(st.just(0), st.integers(min_value=1, max_value=2**40), INT64)
ENUM = st.one_of(st.integers(min_value=0, max_value=4), st.integers(min_value=-(2**31), max_value=2**31 - 1))
BLOB = st.binary(max_size=40)


# -- requests -----------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(
    key=BLOB, end=BLOB, limit=REV, revision=REV, order=ENUM, target=ENUM,
    flags=st.tuples(st.booleans(), st.booleans(), st.booleans()),
    bounds=st.tuples(REV, REV, REV, REV),
)
def test_encode_range_matches_protobuf(codec, key, end, limit, revision, order, target, flags, bounds):
    ours = codec.wire.encode_range(key, end, limit, revision, order, target, *flags, *bounds)
    expected = pb("RangeRequest")(
        key=key, range_end=end, limit=limit, revision=revision, sort_order=order,
        sort_target=target, serializable=flags[0], keys_only=flags[1], count_only=flags[2],
        min_mod_revision=bounds[0], max_mod_revision=bounds[1],
        min_create_revision=bounds[2], max_create_revision=bounds[3],
    )
    assert ours == expected.SerializeToString()
    assert pb("RangeRequest").FromString(ours) == expected


@settings(max_examples=200, deadline=None)
@given(key=BLOB, value=st.binary(max_size=300), lease=REV, flags=st.tuples(*[st.booleans()] * 3))
def test_encode_put_matches_protobuf(codec, key, value, lease, flags):
    ours = codec.wire.encode_put(key, value, lease, *flags)
    expected = pb("PutRequest")(
        key=key, value=value, lease=lease, prev_kv=flags[0], ignore_value=flags[1], ignore_lease=flags[2]
    )
    assert ours == expected.SerializeToString()


@settings(max_examples=100, deadline=None)
@given(key=BLOB, end=BLOB, prev=st.booleans(), revision=REV, physical=st.booleans())
def test_encode_delete_and_compaction_match_protobuf(codec, key, end, prev, revision, physical):
    assert codec.wire.encode_delete(key, end, prev) == pb("DeleteRangeRequest")(
        key=key, range_end=end, prev_kv=prev
    ).SerializeToString()
    assert codec.wire.encode_compaction(revision, physical) == pb("CompactionRequest")(
        revision=revision, physical=physical
    ).SerializeToString()


COMPARE_MEMBER = {0: "version", 1: "create_revision", 2: "mod_revision", 3: "value", 4: "lease"}


@st.composite
def compares(draw):
    target = draw(st.integers(min_value=0, max_value=4))
    operand = draw(BLOB) if target == 3 else draw(REV)
    return draw(BLOB), draw(BLOB), target, draw(st.integers(min_value=0, max_value=3)), operand


def compare_message(key, end, target, result, operand):
    return pb("Compare")(
        key=key, range_end=end, target=target, result=result, **{COMPARE_MEMBER[target]: operand}
    )


@settings(max_examples=200, deadline=None)
@given(compares())
def test_encode_compare_matches_protobuf(codec, args):
    assert codec.wire.encode_compare(*args) == compare_message(*args).SerializeToString()


def test_compare_writes_a_zero_operand(codec):
    # Compare.version(k) == 0 ("k does not exist") must still carry the member.
    assert codec.wire.encode_compare(b"k", b"", 0, 0, 0) == b"\x1a\x01k\x20\x00"


@settings(max_examples=100, deadline=None)
@given(
    cmp=st.lists(compares(), max_size=3),
    ok=st.lists(st.tuples(st.integers(min_value=1, max_value=4), BLOB), max_size=5),
    ko=st.lists(st.tuples(st.integers(min_value=1, max_value=4), BLOB), max_size=5),
)
def test_encode_txn_matches_protobuf(codec, cmp, ok, ko):
    ours = codec.wire.encode_txn([codec.wire.encode_compare(*c) for c in cmp], ok, ko)
    kind_field = {1: "request_range", 2: "request_put", 3: "request_delete_range", 4: "request_txn"}
    kind_class = {1: "RangeRequest", 2: "PutRequest", 3: "DeleteRangeRequest", 4: "TxnRequest"}

    def op(kind, payload):
        message = pb("RequestOp")()
        # Payload bytes are opaque here; merge them into the right member.
        getattr(message, kind_field[kind]).MergeFromString(payload)
        getattr(message, kind_field[kind]).SetInParent()
        return message

    # Only well-formed payloads parse as their message; build ops from real encodings.
    payloads_ok = all(_parses(kind_class[k], p) for k, p in ok + ko)
    if not payloads_ok:
        return
    expected = pb("TxnRequest")(
        compare=[compare_message(*c) for c in cmp],
        success=[op(k, p) for k, p in ok],
        failure=[op(k, p) for k, p in ko],
    )
    assert pb("TxnRequest").FromString(ours) == expected


def _parses(name, payload):
    try:
        message = pb(name).FromString(payload)
    except _schema.DecodeError:
        return False
    # Re-serialising must give the same bytes, or equality of parsed trees is moot.
    return message.SerializeToString() == payload


def test_encode_put_txn_equals_txn_of_puts(codec):
    items = [(b"/bulk/%04d" % i, b"v" * (i % 7)) for i in range(50)]
    puts = [(2, codec.wire.encode_put(k, v, 7, False, False, False)) for k, v in items]
    assert codec.wire.encode_put_txn(items, 7) == codec.wire.encode_txn([], puts, [])


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda w: w.encode_put("k", b"", 0, False, False, False), TypeError),
        (lambda w: w.encode_put(b"k", None, 0, False, False, False), TypeError),
        (lambda w: w.encode_put(b"k", b"", 2**63, False, False, False), OverflowError),
        (lambda w: w.encode_put(b"k", b"", 1.5, False, False, False), TypeError),
        (lambda w: w.encode_range(b"k", b"", 0, 0, 2**31, 0, 0, 0, 0, 0, 0, 0, 0), OverflowError),
        (lambda w: w.encode_compare(b"k", b"", 5, 0, 0), ValueError),
        (lambda w: w.encode_compare(b"k", b"", 3, 0, 5), TypeError),
        (lambda w: w.encode_compare(b"k", b"", 0, 0, b"x"), TypeError),
        (lambda w: w.encode_txn([], [(9, b"")], []), ValueError),
        (lambda w: w.encode_txn([], [(1.0, b"")], []), TypeError),
        (lambda w: w.encode_txn([], [(1, "x")], []), TypeError),
        (lambda w: w.encode_txn(["x"], [], []), TypeError),
        (lambda w: w.encode_put_txn([(b"k", "v")], 0), TypeError),
        (lambda w: w.encode_put_txn([(b"k",)], 0), ValueError),
        (lambda w: w.decode_range("x"), TypeError),
        (lambda w: w.decode_range(bytearray(b"")), TypeError),
        (lambda w: w.decode_txn_revision("x"), TypeError),
        (lambda w: w.decode_txn_revision(bytearray(b"")), TypeError),
        (lambda w: w.decode_txn_revision(None), TypeError),
        (lambda w: w.decode_txn_revision(memoryview(b"")), TypeError),
        (lambda w: w.decode_snapshot_chunk("x"), TypeError),
        (lambda w: w.decode_snapshot_chunk(bytearray(b"")), TypeError),
        (lambda w: w.decode_snapshot_chunk(None), TypeError),
        (lambda w: w.decode_snapshot_chunk(memoryview(b"")), TypeError),
        (lambda w: w.encode_authenticate("root", b"pw"), TypeError),
        (lambda w: w.encode_authenticate(b"root", None), TypeError),
        (lambda w: w.decode_authenticate("x"), TypeError),
        (lambda w: w.decode_authenticate(None), TypeError),
    ],
)
def test_bad_arguments(codec, call, error):
    with pytest.raises(error):
        call(codec.wire)


# -- responses ----------------------------------------------------------------

HEADER = st.fixed_dictionaries(
    {"cluster_id": UINT64, "member_id": UINT64, "revision": INT64, "raft_term": UINT64}
)
KV = st.fixed_dictionaries(
    {
        "key": BLOB,
        "create_revision": INT64,
        "mod_revision": INT64,
        "version": INT64,
        "value": st.binary(max_size=200),
        "lease": INT64,
    }
)


def expect_header(m) -> ResponseHeader:
    return ResponseHeader(m.cluster_id, m.member_id, m.revision, m.raft_term)


def expect_kv(m) -> KeyValue:
    return KeyValue(m.key, m.create_revision, m.mod_revision, m.version, m.value, m.lease)


def expect_op(m):
    which = m.WhichOneof("response")
    if which is None:
        return None
    inner = getattr(m, which)
    return {
        "response_range": expect_range,
        "response_put": expect_put,
        "response_delete_range": expect_delete,
        "response_txn": expect_txn,
    }[which](inner)


def expect_range(m):
    return GetResult(expect_header(m.header), [expect_kv(k) for k in m.kvs], m.more, m.count)


def expect_put(m):
    return PutResult(expect_header(m.header), expect_kv(m.prev_kv) if m.HasField("prev_kv") else None)


def expect_delete(m):
    return DeleteResult(expect_header(m.header), m.deleted, [expect_kv(k) for k in m.prev_kvs])


def expect_txn(m):
    return TxnResult(expect_header(m.header), m.succeeded, [expect_op(r) for r in m.responses])


@st.composite
def range_messages(draw):
    return pb("RangeResponse")(
        header=draw(HEADER), kvs=draw(st.lists(KV, max_size=6)), more=draw(st.booleans()),
        count=draw(INT64),
    )


@st.composite
def put_messages(draw):
    kwargs = {"header": draw(HEADER)}
    if draw(st.booleans()):
        kwargs["prev_kv"] = draw(KV)
    return pb("PutResponse")(**kwargs)


@st.composite
def delete_messages(draw):
    return pb("DeleteRangeResponse")(
        header=draw(HEADER), deleted=draw(INT64), prev_kvs=draw(st.lists(KV, max_size=4))
    )


def txn_messages(depth: int = 2):
    @st.composite
    def build(draw):
        ops = []
        for _ in range(draw(st.integers(min_value=0, max_value=4))):
            choice = draw(st.integers(min_value=0, max_value=4 if depth else 3))
            op = pb("ResponseOp")()
            if choice == 1:
                op.response_range.CopyFrom(draw(range_messages()))
            elif choice == 2:
                op.response_put.CopyFrom(draw(put_messages()))
            elif choice == 3:
                op.response_delete_range.CopyFrom(draw(delete_messages()))
            elif choice == 4:
                op.response_txn.CopyFrom(draw(txn_messages(depth - 1)))
            ops.append(op)  # choice 0: an empty ResponseOp
        return pb("TxnResponse")(header=draw(HEADER), succeeded=draw(st.booleans()), responses=ops)

    return build()


DECODERS = [
    ("decode_range", range_messages(), expect_range),
    ("decode_put", put_messages(), expect_put),
    ("decode_delete", delete_messages(), expect_delete),
    ("decode_txn", txn_messages(), expect_txn),
]


@pytest.mark.parametrize(("decoder", "messages", "expect"), DECODERS, ids=[d[0] for d in DECODERS])
def test_decode_matches_protobuf(codec, decoder, messages, expect):
    @settings(max_examples=150, deadline=None)
    @given(messages)
    def check(message):
        decoded = getattr(codec.wire, decoder)(message.SerializeToString())
        assert same(decoded, expect(message))

    check()


def test_decode_compaction(codec):
    data = pb("CompactionResponse")(header={"revision": 42}).SerializeToString()
    assert same(codec.wire.decode_compaction(data), CompactResult(ResponseHeader(0, 0, 42, 0)))


TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=200)  # encodable


@settings(max_examples=200, deadline=None)
@given(name=TEXT, password=TEXT)
def test_encode_authenticate_matches_protobuf(codec, name, password):
    ours = codec.wire.encode_authenticate(name.encode(), password.encode())
    assert ours == pb("AuthenticateRequest")(name=name, password=password).SerializeToString()


@settings(max_examples=150, deadline=None)
@given(token=st.text(max_size=300), revision=REV, extra=st.binary(max_size=20))
def test_decode_authenticate_matches_protobuf(codec, token, revision, extra):
    message = pb("AuthenticateResponse")(header={"revision": revision}, token=token)
    tracker = codec.revision.RevisionTracker()
    assert codec.wire.decode_authenticate(message.SerializeToString(), tracker) == token
    assert tracker.last == max(revision, 0)
    # Repeated: the last token wins; an unknown field is skipped.
    again = message.SerializeToString() + b"\x12" + varint(len(extra)) + extra
    try:
        expected = pb("AuthenticateResponse").FromString(again).token
    except Exception:  # the extra bytes are no UTF-8 text: both refuse them
        with pytest.raises(ProtocolError):
            codec.wire.decode_authenticate(again)
    else:
        assert codec.wire.decode_authenticate(again + b"\x18\x05") == expected


def test_decode_authenticate_refuses_bad_utf8_in_any_occurrence(codec):
    bad = b"\x12\x02\xff\xfe"
    good = b"\x12\x02ok"
    for data in (bad, bad + good, good + bad, b"\x12\x03\xed\xa0\x80"):  # the last: a surrogate
        with pytest.raises(ProtocolError):
            codec.wire.decode_authenticate(data)
    assert codec.wire.decode_authenticate(b"") == ""


def test_decode_empty_messages_give_defaults(codec):
    assert same(codec.wire.decode_range(b""), GetResult(ResponseHeader(0, 0, 0, 0), [], False, 0))
    assert same(codec.wire.decode_put(b""), PutResult(ResponseHeader(0, 0, 0, 0), None))


def test_decode_feeds_the_revision_tracker(codec):
    tracker = codec.revision.RevisionTracker()
    for revision in (5, 9, 7):
        data = pb("PutResponse")(header={"revision": revision}).SerializeToString()
        codec.wire.decode_put(data, tracker)
    assert tracker.last == 9


def test_large_range_round_trips(codec):
    message = pb("RangeResponse")(header={"revision": 123456789}, count=5000)
    for i in range(5000):
        message.kvs.add(key=b"/k/%08d" % i, value=b"v" * 128, create_revision=10**9 + i,
                        mod_revision=10**9 + i, version=1)
    result = codec.wire.decode_range(message.SerializeToString())
    assert result.count == 5000 and len(result.kvs) == 5000
    assert result.kvs[4999] == KeyValue(b"/k/00004999", 10**9 + 4999, 10**9 + 4999, 1, b"v" * 128, 0)


def test_truncated_messages_raise_protocol_error(codec):
    data = pb("RangeResponse")(
        header={"revision": 300}, kvs=[{"key": b"abc", "value": b"xyz", "version": 2}]
    ).SerializeToString()
    # Cutting inside the header or inside the key-value must fail loudly.
    for cut in (1, 3, len(data) - 1):
        with pytest.raises(ProtocolError):
            codec.wire.decode_range(data[:cut])


# -- the revision of a TxnResponse ---------------------------------------------


@settings(max_examples=150, deadline=None)
@given(txn_messages())
def test_decode_txn_revision_matches_decode_txn(codec, message):
    data = message.SerializeToString()
    revision = codec.wire.decode_txn_revision(data)
    assert type(revision) is int
    assert revision == codec.wire.decode_txn(data).header.revision == message.header.revision


def bulk_txn_response(revision: int, puts: int = 128) -> bytes:
    """What etcd answers a put_many batch: a header, then one PutResponse per put."""
    message = pb("TxnResponse")(
        header={"revision": revision, "cluster_id": 2**63 + 5, "member_id": 9, "raft_term": 4},
        succeeded=True,
    )
    for _ in range(puts):
        message.responses.add().response_put.header.revision = revision
    return message.SerializeToString()


@pytest.mark.parametrize("revision", [0, 1, 127, 128, 2**31, 2**62, 2**63 - 1, -1, -(2**63)])
def test_decode_txn_revision_of_a_bulk_batch(codec, revision):
    # int64 max is etcd's largest revision; negative ones only come from a
    # broken server, but must still read as decode_txn reads them.
    data = bulk_txn_response(revision)
    assert codec.wire.decode_txn_revision(data) == revision
    assert codec.wire.decode_txn(data).header.revision == revision


def test_decode_txn_revision_without_a_header_is_zero(codec):
    message = pb("TxnResponse")(succeeded=True)
    message.responses.add().response_put.header.revision = 99  # an inner header does not count
    for data in (b"", message.SerializeToString()):
        assert codec.wire.decode_txn_revision(data) == 0


def test_decode_txn_revision_of_nested_txns(codec):
    inner = pb("TxnResponse")(header={"revision": 11})
    inner.responses.add().response_range.kvs.add(key=b"k", value=b"v", mod_revision=10)
    inner.responses.add().response_delete_range.prev_kvs.add(key=b"d")
    middle = pb("TxnResponse")(header={"revision": 12})
    middle.responses.add().response_txn.CopyFrom(inner)
    outer = pb("TxnResponse")(header={"revision": 13}, succeeded=True)
    outer.responses.add().response_txn.CopyFrom(middle)
    outer.responses.add().response_put.prev_kv.key = b"p"
    data = outer.SerializeToString()
    assert codec.wire.decode_txn_revision(data) == 13
    # The inner txns are checked all the way down: a broken KeyValue deep
    # inside fails both decoders.
    broken = data.replace(b"\x0a\x01k", b"\x0a\x05k")
    assert broken != data
    for decode in (codec.wire.decode_txn, codec.wire.decode_txn_revision):
        with pytest.raises(ProtocolError):
            decode(broken)


def test_decode_txn_revision_merges_repeated_headers(codec):
    # Like protobuf: a second header merges field by field into the first.
    first = pb("ResponseHeader")(revision=5, raft_term=2).SerializeToString()
    second = pb("ResponseHeader")(raft_term=3).SerializeToString()
    third = pb("ResponseHeader")(revision=8).SerializeToString()
    data = b"\x0a" + bytes([len(first)]) + first + b"\x0a" + bytes([len(second)]) + second
    assert codec.wire.decode_txn_revision(data) == 5
    data += b"\x0a" + bytes([len(third)]) + third
    assert codec.wire.decode_txn_revision(data) == 8 == codec.wire.decode_txn(data).header.revision


def test_decode_txn_revision_feeds_the_revision_tracker(codec):
    tracker = codec.revision.RevisionTracker()
    for revision in (5, 2**63 - 1, 7):
        assert codec.wire.decode_txn_revision(bulk_txn_response(revision, 3), tracker) == revision
    assert tracker.last == 2**63 - 1

    class Recorder:
        def __init__(self):
            self.seen = []

        def observe(self, revision):
            self.seen.append(revision)

    recorder = Recorder()
    codec.wire.decode_txn_revision(bulk_txn_response(42, 1), recorder)
    codec.wire.decode_txn_revision(b"", recorder)
    with pytest.raises(ProtocolError):
        codec.wire.decode_txn_revision(bulk_txn_response(43, 1)[:-1], recorder)
    assert recorder.seen == [42, 0]  # malformed bytes feed nothing


def test_decode_txn_revision_rejects_truncations(codec):
    data = bulk_txn_response(2**40, 4)
    for cut in range(1, len(data)):
        # Every cut either fails in both decoders or leaves a whole message.
        try:
            expected = codec.wire.decode_txn(data[:cut]).header.revision
        except ProtocolError:
            with pytest.raises(ProtocolError):
                codec.wire.decode_txn_revision(data[:cut])
        else:
            assert codec.wire.decode_txn_revision(data[:cut]) == expected


# -- snapshot chunks -------------------------------------------------------------


def snapshot_chunk(blob: bytes = b"", remaining: int = 0, version: str = "") -> bytes:
    """A SnapshotResponse as etcd sends it (3.6 adds ``string version = 4``)."""
    data = pb("SnapshotResponse")(
        header={"revision": 3}, remaining_bytes=remaining, blob=blob
    ).SerializeToString()
    if version:
        raw = version.encode()
        data += b"\x22" + varint(len(raw)) + raw
    return data


def chunk_fields(chunk) -> tuple:
    assert type(chunk) is SnapshotChunk and type(chunk.blob) is memoryview
    assert type(chunk.remaining_bytes) is int and type(chunk.version) is str
    return chunk.remaining_bytes, chunk.blob.tobytes(), chunk.version


@settings(max_examples=150, deadline=None)
@given(blob=st.binary(max_size=300), remaining=UINT64, version=st.sampled_from(["", "3.6.0", "3.7.0-alpha"]))
def test_decode_snapshot_chunk_matches_protobuf(codec, blob, remaining, version):
    data = snapshot_chunk(blob, remaining, version)
    assert chunk_fields(codec.wire.decode_snapshot_chunk(data)) == (remaining, blob, version)


@pytest.mark.parametrize("size", [0, 1, 127, 128, 1 << 16, 4 << 20])
def test_decode_snapshot_chunk_blob_sizes(codec, size):
    blob = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    chunk = codec.wire.decode_snapshot_chunk(snapshot_chunk(blob, 12345))
    assert chunk_fields(chunk) == (12345, blob, "")


def test_decode_snapshot_chunk_blob_is_a_view_of_the_input(codec):
    blob = b"b" * (1 << 20)
    data = snapshot_chunk(blob, 7, "3.6.0")
    chunk = codec.wire.decode_snapshot_chunk(data)
    assert chunk.blob.obj is data and chunk.blob.readonly  # shares the bytes: no copy
    assert chunk.blob == blob and len(chunk.blob) == len(blob)
    # The empty blob of a chunk without one is a view as well.
    empty = codec.wire.decode_snapshot_chunk(b"\x10\x05")
    assert type(empty.blob) is memoryview and empty.blob.obj == b"\x10\x05" and len(empty.blob) == 0


# The parser etcdfast has always used for snapshots (moved here from
# maintenance.py unchanged): hand-written, not upb. Pinned per twin so that
# its rules cannot drift; test_codec_twins.py checks that the twins agree.
SNAPSHOT_VALID = {
    "empty": (b"", (0, b"", "")),
    "remaining only": (b"\x10\x07", (7, b"", "")),
    "empty blob field": (b"\x1a\x00", (0, b"", "")),
    "version": (b"\x22\x053.6.0", (0, b"", "3.6.0")),
    "non-UTF-8 version is replaced": (b"\x22\x03a\xff\xfe", (0, b"", "a\ufffd\ufffd")),
    "header and unknown fields skipped": (
        b"\x0a\x02\x18\x05\x48\x01\x31" + b"\x00" * 8 + b"\x3d" + b"\x00" * 4 + b"\x5a\x01z\x1a\x01b",
        (0, b"b", ""),
    ),
    "unknown field with a two-byte tag": (b"\x82\x04\x01z\x10\x02", (2, b"", "")),
    "field number 0 skipped": (b"\x00\x05\x10\x01", (1, b"", "")),
    "blob as a varint is skipped": (b"\x18\x05", (0, b"", "")),
    "remaining as bytes is skipped": (b"\x12\x01x\x10\x03", (3, b"", "")),
    "last blob wins": (b"\x1a\x01a\x10\x04\x1a\x02bc\x10\x02", (2, b"bc", "")),
    "uint64 max remaining": (b"\x10" + b"\xff" * 9 + b"\x01", (2**64 - 1, b"", "")),
    "10-byte varint keeps its bits past 64": (b"\x10" + b"\xff" * 9 + b"\x7f", (2**70 - 1, b"", "")),
    "padded 10-byte tag": (b"\x90" + b"\x80" * 8 + b"\x00\x05", (5, b"", "")),
    "tag past 64 bits is no field of ours": (b"\x90" + b"\x80" * 8 + b"\x02\x05", (0, b"", "")),
    "padded 6-byte length": (b"\x1a\x81\x80\x80\x80\x80\x00x", (0, b"x", "")),
}

SNAPSHOT_MALFORMED = {
    "truncated tag": b"\x80",
    "truncated varint": b"\x10",
    "truncated value varint": b"\x10\x80",
    "length past the end": b"\x1a\x05ab",
    "truncated length": b"\x1a\x80",
    "length past 64 bits": b"\x1a" + b"\x80" * 9 + b"\x02",
    "11-byte varint": b"\x10" + b"\xff" * 10 + b"\x01",
    "11-byte tag": b"\x90" + b"\x80" * 9 + b"\x00\x05",
    "fixed64 truncated": b"\x09" + b"\x00" * 7,
    "fixed32 truncated": b"\x0d" + b"\x00" * 3,
    "start group": b"\x0b\x0c",
    "end group": b"\x0c",
    "wire type 6": b"\x1e",
    "wire type 7": b"\x1f",
    "garbage after a good chunk": b"\x1a\x01a\x10",
}


@pytest.mark.parametrize("name", sorted(SNAPSHOT_VALID))
def test_decode_snapshot_chunk_valid_encodings(codec, name):
    data, expected = SNAPSHOT_VALID[name]
    assert chunk_fields(codec.wire.decode_snapshot_chunk(data)) == expected


@pytest.mark.parametrize("name", sorted(SNAPSHOT_MALFORMED))
def test_decode_snapshot_chunk_malformed(codec, name):
    with pytest.raises(ProtocolError):
        codec.wire.decode_snapshot_chunk(SNAPSHOT_MALFORMED[name])


def test_decode_snapshot_chunk_truncations(codec):
    data = snapshot_chunk(b"0123456789" * 20, 99, "3.6.0")
    whole = chunk_fields(codec.wire.decode_snapshot_chunk(data))
    boundaries = set()
    pos = 0
    while pos < len(data):  # the end of every top-level field
        tag = data[pos]
        pos += 1
        if tag & 7 == 0:
            while data[pos] & 0x80:
                pos += 1
            pos += 1
        else:
            length = data[pos]
            if length & 0x80:
                length = (length & 0x7F) | data[pos + 1] << 7
                pos += 1
            pos += 1 + length
        boundaries.add(pos)
    for cut in range(len(data) + 1):
        if cut == 0 or cut in boundaries:
            codec.wire.decode_snapshot_chunk(data[:cut])
        else:
            with pytest.raises(ProtocolError):
                codec.wire.decode_snapshot_chunk(data[:cut])
    assert whole == (99, b"0123456789" * 20, "3.6.0")
