"""KV wire codec: requests to protobuf bytes, responses to result tuples.

Pure-Python twin of ``_fast/wire.pyx``; both expose the same functions with the
same signatures and return the same types.

* Encoding is hand-written: etcd's requests are a handful of scalar and bytes
  fields, and joining their bytes in Python is several times cheaper than
  filling a protobuf message object attribute by attribute. The output is
  canonical protobuf (fields in number order, proto3 defaults omitted, oneof
  members always written), byte-identical to what the protobuf runtime
  serializes for the same fields.
* Decoding uses the protobuf runtime's C parser (upb) and turns its messages
  into our tuples with C-level ``attrgetter``/``map`` calls, the fastest
  route available to Python code. The Cython twin parses the bytes itself and
  follows upb's rules exactly, including on malformed input.
"""

from __future__ import annotations

from operator import attrgetter, index
from typing import Any, Callable, Dict, List, Sequence, Tuple, TypeVar, Union

from .. import _schema
from ..errors import ProtocolError
from ..types import (
    CompactResult,
    DeleteResult,
    GetResult,
    PutResult,
    ResponseHeader,
    SnapshotChunk,
    TxnResult,
    WatchResponse,
)
from .keys import _ONE_BYTE, _read_varint, _varint
from .records import KeyValues, kv_record
from .revision import _int64

__all__ = [
    "encode_range",
    "encode_put",
    "encode_delete",
    "encode_compaction",
    "encode_authenticate",
    "encode_compare",
    "encode_txn",
    "encode_put_txn",
    "decode_range",
    "decode_put",
    "decode_delete",
    "decode_txn",
    "decode_txn_revision",
    "decode_compaction",
    "decode_authenticate",
    "decode_snapshot_chunk",
]

# RequestOp oneof field numbers double as op kinds everywhere in the codec.
OP_RANGE, OP_PUT, OP_DELETE, OP_TXN = 1, 2, 3, 4

_INT32_MIN, _INT32_MAX = -(1 << 31), (1 << 31) - 1
_TxnRequest = _schema.message("etcdserverpb.TxnRequest")


# -- encoding primitives ------------------------------------------------------


def _int32(value: Any) -> int:
    value = index(value)
    if not _INT32_MIN <= value <= _INT32_MAX:
        raise OverflowError("value out of int32 range")
    return value  # type: ignore[no-any-return]


def _bytes(value: Any) -> bytes:
    if type(value) is not bytes:
        raise TypeError(f"expected bytes, got {type(value).__name__}")
    return value


def _len_field(tag: bytes, data: bytes) -> bytes:
    return tag + _varint(len(data)) + data


def _int_field(tag: bytes, value: int) -> bytes:
    return tag + _varint(value) if value else b""


def _flag(tag: bytes, value: object) -> bytes:
    return tag + b"\x01" if value else b""


# -- requests -----------------------------------------------------------------


def encode_range(
    key: bytes,
    range_end: bytes,
    limit: int,
    revision: int,
    sort_order: int,
    sort_target: int,
    serializable: bool,
    keys_only: bool,
    count_only: bool,
    min_mod_revision: int,
    max_mod_revision: int,
    min_create_revision: int,
    max_create_revision: int,
) -> bytes:
    """Encode an ``etcdserverpb.RangeRequest``."""
    key, range_end = _bytes(key), _bytes(range_end)
    return b"".join(
        (
            _len_field(b"\x0a", key) if key else b"",
            _len_field(b"\x12", range_end) if range_end else b"",
            _int_field(b"\x18", _int64(limit)),
            _int_field(b"\x20", _int64(revision)),
            _int_field(b"\x28", _int32(sort_order)),
            _int_field(b"\x30", _int32(sort_target)),
            _flag(b"\x38", serializable),
            _flag(b"\x40", keys_only),
            _flag(b"\x48", count_only),
            _int_field(b"\x50", _int64(min_mod_revision)),
            _int_field(b"\x58", _int64(max_mod_revision)),
            _int_field(b"\x60", _int64(min_create_revision)),
            _int_field(b"\x68", _int64(max_create_revision)),
        )
    )


def encode_put(
    key: bytes, value: bytes, lease: int, prev_kv: bool, ignore_value: bool, ignore_lease: bool
) -> bytes:
    """Encode an ``etcdserverpb.PutRequest``."""
    if (type(key) is bytes and type(value) is bytes and key and value and type(lease) is int
            and not (lease or prev_kv or ignore_value or ignore_lease)):
        # The common put, written without the general path's per-field calls.
        key_len, value_len = len(key), len(value)
        return b"".join((
            b"\x0a", _ONE_BYTE[key_len] if key_len < 0x80 else _varint(key_len), key,
            b"\x12", _ONE_BYTE[value_len] if value_len < 0x80 else _varint(value_len), value,
        ))
    key, value = _bytes(key), _bytes(value)
    return b"".join(
        (
            _len_field(b"\x0a", key) if key else b"",
            _len_field(b"\x12", value) if value else b"",
            _int_field(b"\x18", _int64(lease)),
            _flag(b"\x20", prev_kv),
            _flag(b"\x28", ignore_value),
            _flag(b"\x30", ignore_lease),
        )
    )


def encode_delete(key: bytes, range_end: bytes, prev_kv: bool) -> bytes:
    """Encode an ``etcdserverpb.DeleteRangeRequest``."""
    key, range_end = _bytes(key), _bytes(range_end)
    return b"".join(
        (
            _len_field(b"\x0a", key) if key else b"",
            _len_field(b"\x12", range_end) if range_end else b"",
            _flag(b"\x18", prev_kv),
        )
    )


def encode_compaction(revision: int, physical: bool) -> bytes:
    """Encode an ``etcdserverpb.CompactionRequest``."""
    return _int_field(b"\x08", _int64(revision)) + _flag(b"\x10", physical)


# Compare.target -> tag of its target_union member (version, create, mod, value, lease).
_COMPARE_OPERAND_TAGS = (b"\x20", b"\x28", b"\x30", b"\x3a", b"\x40")
_COMPARE_VALUE = 3


def encode_authenticate(name: bytes, password: bytes) -> bytes:
    """Encode an ``etcdserverpb.AuthenticateRequest`` from UTF-8 ``name`` and
    ``password`` (a login; see :func:`decode_authenticate`)."""
    name, password = _bytes(name), _bytes(password)
    return (_len_field(b"\x0a", name) if name else b"") + (
        _len_field(b"\x12", password) if password else b"")


def encode_compare(
    key: bytes, range_end: bytes, target: int, result: int, operand: Union[int, bytes]
) -> bytes:
    """Encode an ``etcdserverpb.Compare``.

    ``target`` is 0..4 (VERSION, CREATE, MOD, VALUE, LEASE) and picks which
    ``target_union`` member ``operand`` fills: ``bytes`` for VALUE, an int
    otherwise. The member is written even when zero, as protobuf does for a
    set oneof.
    """
    key, range_end = _bytes(key), _bytes(range_end)
    target, result = _int32(target), _int32(result)
    if not 0 <= target < len(_COMPARE_OPERAND_TAGS):
        raise ValueError(f"unknown compare target {target}")
    tag = _COMPARE_OPERAND_TAGS[target]
    if target == _COMPARE_VALUE:
        member = _len_field(tag, _bytes(operand))
    else:
        member = tag + _varint(_int64(operand))
    return b"".join(
        (
            _int_field(b"\x08", result),
            _int_field(b"\x10", target),
            _len_field(b"\x1a", key) if key else b"",
            member,
            _len_field(b"\x82\x04", range_end) if range_end else b"",
        )
    )


_OP_TAGS = (b"", b"\x0a", b"\x12", b"\x1a", b"\x22")


def _ops(branch_tag: bytes, ops: Sequence[Tuple[int, bytes]]) -> List[bytes]:
    out = []
    for kind, payload in ops:
        kind = index(kind)
        if not OP_RANGE <= kind <= OP_TXN:
            raise ValueError(f"unknown op kind {kind}")
        out.append(_len_field(branch_tag, _len_field(_OP_TAGS[kind], _bytes(payload))))
    return out


def encode_txn(
    compare: Sequence[bytes],
    success: Sequence[Tuple[int, bytes]],
    failure: Sequence[Tuple[int, bytes]],
) -> bytes:
    """Encode an ``etcdserverpb.TxnRequest`` from pre-encoded parts.

    ``compare`` holds :func:`encode_compare` outputs; each op is
    ``(kind, request_bytes)`` with kind 1 range, 2 put, 3 delete, 4 txn.
    """
    parts = [_len_field(b"\x0a", _bytes(c)) for c in compare]
    parts += _ops(b"\x12", success)
    parts += _ops(b"\x1a", failure)
    return b"".join(parts)


def encode_put_txn(items: Sequence[Tuple[bytes, bytes]], lease: int) -> bytes:
    """A compare-less TxnRequest putting every ``(key, value)`` pair: a bulk-load batch."""
    lease = _int64(lease)
    # The bulk-load hot path of the pure twin. Filling a message in place and
    # serializing it runs in upb's C code; measured, that beats assembling the
    # bytes in Python about 2:1 for 128 puts (it is the protobuf baseline of
    # bench/test_codec_bench.py). The bytes are the same: protobuf writes
    # fields in number order and omits defaults, as the Cython twin does.
    request = _TxnRequest()
    add = request.success.add
    for key, value in items:
        if type(key) is not bytes or type(value) is not bytes:
            bad = key if type(key) is not bytes else value
            raise TypeError(f"expected bytes, got {type(bad).__name__}")
        put = add().request_put
        put.key = key
        put.value = value
        if lease:
            put.lease = lease
    return request.SerializeToString()  # type: ignore[no-any-return]


# -- responses ----------------------------------------------------------------

_new = tuple.__new__
_header_fields = attrgetter("cluster_id", "member_id", "revision", "raft_term")


def _header(message: Any) -> ResponseHeader:
    return _new(ResponseHeader, _header_fields(message.header))


def _range(m: Any) -> GetResult:
    return _new(GetResult, (_header(m), KeyValues(m.kvs), m.more, m.count))


def _put(m: Any) -> PutResult:
    prev = kv_record(m.prev_kv) if m.HasField("prev_kv") else None
    return _new(PutResult, (_header(m), prev))


def _delete(m: Any) -> DeleteResult:
    return _new(DeleteResult, (_header(m), m.deleted, KeyValues(m.prev_kvs)))


def _compaction(m: Any) -> CompactResult:
    return _new(CompactResult, (_header(m),))


def _txn(m: Any) -> TxnResult:
    return _new(TxnResult, (_header(m), m.succeeded, [_op(r) for r in m.responses]))


_OP_RESULTS: Dict[str, Callable[[Any], Any]] = {
    "response_range": _range,
    "response_put": _put,
    "response_delete_range": _delete,
    "response_txn": _txn,
}


def _op(response_op: Any) -> Any:
    which = response_op.WhichOneof("response")
    if which is None:
        return None
    return _OP_RESULTS[which](getattr(response_op, which))


R = TypeVar("R", GetResult, PutResult, DeleteResult, TxnResult, CompactResult, WatchResponse)


def _decoder(message_name: str, convert: Callable[[Any], R]) -> Callable[..., R]:
    return _schema.decoder(f"etcdserverpb.{message_name}", convert)


decode_range = _decoder("RangeResponse", _range)
decode_range.__name__ = decode_range.__qualname__ = "decode_range"
decode_put = _decoder("PutResponse", _put)
decode_put.__name__ = decode_put.__qualname__ = "decode_put"
decode_delete = _decoder("DeleteRangeResponse", _delete)
decode_delete.__name__ = decode_delete.__qualname__ = "decode_delete"
decode_txn = _decoder("TxnResponse", _txn)
decode_txn.__name__ = decode_txn.__qualname__ = "decode_txn"
# The bulk-load path reads only the revision its batch got: the same parse as
# decode_txn (so exactly the same bytes are accepted), minus building results.
_header_revision: Callable[[Any], int] = attrgetter("header.revision")
decode_txn_revision = _schema.decoder("etcdserverpb.TxnResponse", _header_revision)
decode_txn_revision.__name__ = decode_txn_revision.__qualname__ = "decode_txn_revision"
decode_txn_revision.__doc__ = (
    "``header.revision`` of an ``etcdserverpb.TxnResponse``; feed it to ``tracker``."
)
decode_compaction = _decoder("CompactionResponse", _compaction)
decode_compaction.__name__ = decode_compaction.__qualname__ = "decode_compaction"
decode_authenticate = _schema.decoder("etcdserverpb.AuthenticateResponse", attrgetter("token"))
decode_authenticate.__name__ = decode_authenticate.__qualname__ = "decode_authenticate"
decode_authenticate.__doc__ = (
    "The token of an ``etcdserverpb.AuthenticateResponse``; feed its revision to ``tracker``."
)


# -- snapshots ----------------------------------------------------------------
#
# A SnapshotResponse is read straight from the wire format rather than through
# a message class: the blob is then a view, not a copy, and the ``version``
# field that etcd 3.6 added (field 4) is picked up although our 3.5 schema
# lacks it. The rules (not upb's; the Cython twin copies them exactly):
#   * varints (tags, lengths, values) are at most 10 bytes and keep every bit,
#     so a 10-byte varint may exceed 64 bits;
#   * wire types 0, 1, 2 and 5 are skipped when the field is not one of ours
#     (any field number, 0 included); 3, 4 (groups), 6 and 7 are errors;
#   * a field 2/3/4 of another wire type is skipped; a repeated one: last wins.


def decode_snapshot_chunk(data: bytes) -> SnapshotChunk:
    """Decode an ``etcdserverpb.SnapshotResponse`` without copying its blob."""
    if type(data) is not bytes:
        raise TypeError(f"expected bytes, got {type(data).__name__}")
    view = memoryview(data)
    remaining = 0
    blob = view[0:0]
    version = ""
    pos, end = 0, len(data)
    while pos < end:
        key, pos = _read_varint(data, pos, 10, "SnapshotResponse")
        field, wire_type = key >> 3, key & 7
        if wire_type == 0:
            value, pos = _read_varint(data, pos, 10, "SnapshotResponse")
            if field == 2:
                remaining = value
        elif wire_type == 2:
            length, pos = _read_varint(data, pos, 10, "SnapshotResponse")
            if pos + length > end:
                raise ProtocolError("malformed SnapshotResponse: truncated field")
            if field == 3:
                blob = view[pos:pos + length]
            elif field == 4:
                version = data[pos:pos + length].decode("utf-8", "replace")
            pos += length
        elif wire_type == 1:
            pos += 8
        elif wire_type == 5:
            pos += 4
        else:
            raise ProtocolError(f"malformed SnapshotResponse: wire type {wire_type}")
    if pos != end:
        raise ProtocolError("malformed SnapshotResponse: truncated field")
    return _new(SnapshotChunk, (remaining, blob, version))
