"""The namespace rewrite of encoded requests (the codec's ``prefix_request``), on both twins.

``prefix_request(kind, payload, prefix)`` walks a request the builders
encoded and moves every key and range end under ``prefix`` (Go's
``namespace`` package rewrites ops before encoding; ours are encoded when
built). Checked three ways: against the real protobuf schema (the rewritten
bytes parse to the keys Go's ``prefixInterval`` gives), differentially (the
compiled and the pure twin give the same bytes, or both raise ProtocolError,
on real payloads and on mutated or truncated ones), and on hand-made edge
cases (fields out of order, an absent key, unknown fields).
"""

from __future__ import annotations

from typing import Any, List, Tuple

import pytest
from codec_helpers import mutated, varint
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from etcdfast import Compare, Op, _schema
from etcdfast._pure.keys import prefix_range_end
from etcdfast.api import kv as _kv
from etcdfast.api import txn as _txn
from etcdfast.api.views import COMPARE_KIND
from etcdfast.errors import ProtocolError

RANGE, PUT, DELETE, TXN = _kv.OP_RANGE, _kv.OP_PUT, _kv.OP_DELETE, _kv.OP_TXN
SCHEMA = {RANGE: "RangeRequest", PUT: "PutRequest", DELETE: "DeleteRangeRequest", TXN: "TxnRequest",
          COMPARE_KIND: "Compare"}


def parse(kind: int, data: bytes) -> Any:
    return _schema.message(f"etcdserverpb.{SCHEMA[kind]}").FromString(data)


def expected(prefix: bytes, key: bytes, end: bytes) -> Tuple[bytes, bytes]:
    """Go's namespace ``prefixInterval``: the key and range end a member gets."""
    if end == b"\0":
        return prefix + key, prefix_range_end(prefix)
    return prefix + key, (prefix + end if end else b"")


def both(twins: Any, kind: int, payload: bytes, prefix: bytes) -> Any:
    """Both twins' answer (bytes, or the exception type): they must agree."""
    answers = []
    for twin in (twins.fast, twins.pure):
        try:
            answers.append(twin.keys.prefix_request(kind, payload, prefix))
        except ProtocolError:
            answers.append(ProtocolError)
    assert answers[0] == answers[1], (kind, payload.hex(), prefix, answers)
    return answers[0]


# -- payloads from the real builders ----------------------------------------------

keys = st.binary(min_size=1, max_size=12)
prefixes = st.one_of(st.binary(min_size=1, max_size=8), st.sampled_from([b"\xff", b"a\xff", b"/t/"]))


@st.composite
def ranges(draw: st.DrawFn) -> Tuple[Any, Tuple[bytes, bytes]]:
    """A ``get`` request (any range form and options) and the (key, end) it encodes."""
    key = draw(keys)
    form = draw(st.sampled_from(["one", "prefix", "end", "from", "all", "all-from"]))
    options: dict[str, Any] = dict(
        limit=draw(st.integers(0, 1000)), revision=draw(st.integers(0, 2**40)),
        serializable=draw(st.booleans()), keys_only=draw(st.booleans()),
        count_only=draw(st.booleans()), sort_order=draw(st.sampled_from([None, "ascend", "descend"])),
        min_mod_revision=draw(st.integers(0, 99)),
    )
    if form == "one":
        request = _kv.get(key, **options)
    elif form == "prefix":
        request = _kv.get(key, prefix=True, **options)
    elif form == "end":
        request = _kv.get(key, range_end=draw(keys), **options)
    elif form == "from":
        request = _kv.get(key, from_key=True, **options)
    elif form == "all":
        request = _kv.get(b"", prefix=True, **options)
    else:
        request = _kv.get(b"", from_key=True, **options)
    message = parse(RANGE, request.payload)
    return request, (message.key, message.range_end)


def ops(depth: int) -> st.SearchStrategy[Any]:
    leaf = st.one_of(
        ranges().map(lambda r: r[0]),
        st.builds(lambda k, v, lease: Op.put(k, v, lease=lease, prev_kv=True), keys, st.binary(max_size=8),
                  st.integers(0, 2**62)),
        st.builds(lambda k: Op.delete(k, prefix=True, prev_kv=True), keys),
        st.builds(lambda k: Op.delete(k), keys),
    )
    if depth == 0:
        return leaf
    return st.one_of(leaf, txns(depth - 1))


compares = st.one_of(
    st.builds(lambda k, v: Compare.value(k) == v, keys, st.binary(max_size=8)),
    st.builds(lambda k, n: Compare.version(k, prefix=True) > n, keys, st.integers(0, 99)),
    st.builds(lambda k, e, n: Compare.mod_revision(k, range_end=e) < n, keys, keys, st.integers(0, 99)),
    st.builds(lambda n: Compare.create_revision(b"", prefix=True) != n, st.integers(0, 99)),
    st.builds(lambda k, n: Compare.lease(k) == n, keys, st.integers(0, 2**40)),
)


def txns(depth: int = 2) -> st.SearchStrategy[Any]:
    return st.builds(
        lambda c, s, f: _txn.txn(c, s, f),
        st.lists(compares, max_size=3), st.lists(ops(depth), max_size=3), st.lists(ops(depth), max_size=3),
    )


def check_ops(prefix: bytes, before: List[Any], after: List[Any]) -> None:
    assert len(before) == len(after)
    for old, new in zip(before, after):
        which = old.WhichOneof("request")
        assert new.WhichOneof("request") == which
        if which == "request_txn":
            check_txn(prefix, old.request_txn, new.request_txn)
            continue
        was, now = getattr(old, which), getattr(new, which)
        if which == "request_put":
            assert now.key == prefix + was.key
            assert (now.value, now.lease, now.prev_kv) == (was.value, was.lease, was.prev_kv)
        else:
            assert (now.key, now.range_end) == expected(prefix, was.key, was.range_end)


def check_txn(prefix: bytes, before: Any, after: Any) -> None:
    assert len(before.compare) == len(after.compare)
    for old, new in zip(before.compare, after.compare):
        assert (new.key, new.range_end) == expected(prefix, old.key, old.range_end)
        # The value compared with is data, not a key: untouched.
        union = old.WhichOneof("target_union")
        assert (new.result, new.target, new.WhichOneof("target_union")) == (old.result, old.target, union)
        if union:
            assert getattr(new, union) == getattr(old, union)
    check_ops(prefix, list(before.success), list(after.success))
    check_ops(prefix, list(before.failure), list(after.failure))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(request=ranges(), prefix=prefixes)
def test_range_keys_move_under_the_prefix(twins, request, prefix):
    request, (key, end) = request
    rewritten = both(twins, RANGE, request.payload, prefix)
    old, new = parse(RANGE, request.payload), parse(RANGE, rewritten)
    assert (new.key, new.range_end) == expected(prefix, key, end)
    # Every other field as it was.
    new.key, new.range_end = old.key, old.range_end
    assert new == old


@settings(max_examples=200, deadline=None)
@given(key=keys, value=st.binary(max_size=16), lease=st.integers(0, 2**62), prefix=prefixes,
       flags=st.tuples(st.booleans(), st.booleans()))
def test_put_key_moves_and_the_value_stays(twins, key, value, lease, prefix, flags):
    request = _kv.put(key, value, lease=lease, prev_kv=flags[0])
    new = parse(PUT, both(twins, PUT, request.payload, prefix))
    assert (new.key, new.value, new.lease, new.prev_kv) == (prefix + key, value, lease, flags[0])
    # The value is never taken for a key, even when it looks like one.
    ignored = parse(PUT, both(twins, PUT, _kv.put(key, b"", ignore_value=True).payload, prefix))
    assert (ignored.key, ignored.value, ignored.ignore_value) == (prefix + key, b"", True)


@settings(max_examples=200, deadline=None)
@given(key=keys, end=st.one_of(st.none(), keys), form=st.sampled_from(["one", "prefix", "from", "end"]),
       prefix=prefixes)
def test_delete_range_moves_under_the_prefix(twins, key, end, form, prefix):
    if form == "end" and end is not None:
        request = _kv.delete(key, range_end=end, prev_kv=True)
    else:
        request = _kv.delete(key, prefix=form == "prefix", from_key=form == "from")
    old = parse(DELETE, request.payload)
    new = parse(DELETE, both(twins, DELETE, request.payload, prefix))
    assert (new.key, new.range_end) == expected(prefix, old.key, old.range_end)
    assert new.prev_kv == old.prev_kv


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(request=txns(), prefix=prefixes)
def test_txn_compares_and_ops_move_under_the_prefix_at_every_depth(twins, request, prefix):
    rewritten = both(twins, TXN, request.payload, prefix)
    check_txn(prefix, parse(TXN, request.payload), parse(TXN, rewritten))


@settings(max_examples=200, deadline=None)
@given(comparison=compares, prefix=prefixes)
def test_a_lone_compare(twins, comparison, prefix):
    old = parse(COMPARE_KIND, comparison.payload)
    new = parse(COMPARE_KIND, both(twins, COMPARE_KIND, comparison.payload, prefix))
    assert (new.key, new.range_end) == expected(prefix, old.key, old.range_end)


def test_the_whole_keyspace_becomes_the_whole_namespace(codec):
    new = parse(RANGE, codec.keys.prefix_request(RANGE, _kv.get(b"", prefix=True).payload, b"/t/"))
    # get("", prefix=True) is [\0, \0): every key; in the namespace [/t/\0, /t0).
    assert (new.key, new.range_end) == (b"/t/\0", b"/t0")
    new = parse(RANGE, codec.keys.prefix_request(RANGE, _kv.get(b"a", from_key=True).payload, b"/t/"))
    assert (new.key, new.range_end) == (b"/t/a", b"/t0")
    # A prefix of 0xff bytes has no end: "to the end of the keyspace" stays that.
    new = parse(RANGE, codec.keys.prefix_request(RANGE, _kv.get(b"a", from_key=True).payload, b"\xff\xff"))
    assert (new.key, new.range_end) == (b"\xff\xffa", b"\0")


def test_nested_prefixes_compose(codec):
    payload = _txn.txn([Compare.value(b"k") == b"v"], [Op.get(b"a", prefix=True)]).payload
    twice = codec.keys.prefix_request(TXN, codec.keys.prefix_request(TXN, payload, b"/in/"), b"/out")
    assert twice == codec.keys.prefix_request(TXN, payload, b"/out/in/")


# -- hand-made and mutated bytes ----------------------------------------------------


def field(number: int, data: bytes) -> bytes:
    return varint(number << 3 | 2) + varint(len(data)) + data


def test_an_absent_key_is_the_empty_key(twins):
    # A RangeRequest with only a limit (field 3): the key goes in before it.
    payload = varint(3 << 3) + varint(5)
    new = parse(RANGE, both(twins, RANGE, payload, b"/t/"))
    assert (new.key, new.limit) == (b"/t/", 5)
    assert parse(PUT, both(twins, PUT, b"", b"/t/")).key == b"/t/"
    assert both(twins, TXN, b"", b"/t/") == b""


def test_fields_out_of_order_and_unknown_fields_pass_through(twins):
    # range_end before key, an unknown length-delimited field 99, a fixed64 and a fixed32.
    payload = field(2, b"z") + field(99, b"junk") + field(1, b"a") + varint(100 << 3 | 1) + b"\0" * 8 \
        + varint(101 << 3 | 5) + b"\1" * 4
    rewritten = both(twins, RANGE, payload, b"/p/")
    assert (parse(RANGE, rewritten).key, parse(RANGE, rewritten).range_end) == (b"/p/a", b"/p/z")
    assert field(99, b"junk") in rewritten and b"\0" * 8 in rewritten


@pytest.mark.parametrize("payload", [
    b"\x0a",  # a key tag, no length
    b"\x0a\x05ab",  # a key shorter than its length
    b"\x00\x01",  # field 0
    b"\x0b",  # a group (wire type 3)
    b"\x0e",  # wire type 6
    b"\x18" + b"\xff" * 10,  # a varint of 11 bytes
    b"\x19\x00\x00",  # a truncated fixed64
    b"\x1d\x00",  # a truncated fixed32
    b"\xff\xff\xff\xff\xff\x01",  # a tag longer than 5 bytes
])
def test_malformed_requests_raise_protocol_error(twins, payload):
    assert both(twins, RANGE, payload, b"/p/") is ProtocolError


def test_a_txn_nested_too_deeply_is_refused(twins):
    payload = b""
    for _ in range(60):  # each level: TxnRequest.success -> RequestOp.request_txn
        payload = field(2, field(4, payload))
    assert both(twins, TXN, payload, b"/p/") is ProtocolError


def test_wrong_arguments(codec):
    with pytest.raises(TypeError):
        codec.keys.prefix_request(RANGE, bytearray(b"\x0a\x01a"), b"/p/")
    with pytest.raises(TypeError):
        codec.keys.prefix_request(RANGE, b"\x0a\x01a", "/p/")
    for kind in (0, 5, 7):
        with pytest.raises(ValueError):
            codec.keys.prefix_request(kind, b"", b"/p/")


SAMPLES: List[Tuple[int, bytes]] = [
    (RANGE, _kv.get(b"key", prefix=True, limit=10, revision=7, serializable=True).payload),
    (PUT, _kv.put(b"key", b"value", lease=0x1234, prev_kv=True).payload),
    (DELETE, _kv.delete(b"key", range_end=b"kez", prev_kv=True).payload),
    (TXN, _txn.txn([Compare.value(b"k") == b"v", Compare.version(b"p", prefix=True) > 2],
                   [Op.put(b"a", b"1"),
                    Op.txn([Compare.mod_revision(b"b") < 9], [Op.get(b"b")], [Op.delete(b"c")])],
                   [Op.get(b"", from_key=True)]).payload),
    (COMPARE_KIND, (Compare.value(b"k", range_end=b"m") == b"v").payload),
]


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sample=st.sampled_from(SAMPLES), data=st.data(), prefix=prefixes)
def test_twins_agree_on_mutated_bytes(twins, sample, data, prefix):
    kind, payload = sample
    broken = data.draw(st.one_of(mutated([payload]), st.integers(0, len(payload)).map(lambda n: payload[:n])))
    answer = both(twins, kind, broken, prefix)
    if answer is ProtocolError:
        return
    # What is rewritten still parses whenever the original bytes did.
    try:
        parse(kind, broken)
    except Exception:
        return
    parse(kind, answer)
