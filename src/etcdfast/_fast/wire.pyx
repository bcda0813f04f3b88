"""KV wire codec (Cython twin of ``_pure/wire.py``).

Requests are sized first, then written straight into one bytes object: no
intermediate buffers or message objects. Responses are parsed from the bytes
gRPC hands us into C structs (``Header``, ``KV``, declared in messages.pxd)
and turned into our result tuples once each message ends. Every byte is
checked up front, but the key-values of a range (and a delete's prev_kvs) are
not built then: they become a ``KeyValues`` sequence (records.pyx) holding the
response bytes and where each KeyValue lies, and each record is built when it
is first read. Malformed input follows upb's rules (see buffer.pxd) and raises
ProtocolError, as the pure twin does.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.long cimport PyLong_FromLongLong, PyLong_FromUnsignedLongLong
from cpython.number cimport PyNumber_Index
from cpython.unicode cimport PyUnicode_DecodeUTF8
from libc.stdint cimport int32_t, int64_t, uint32_t, uint64_t
from libc.string cimport memcpy, memset

from .buffer cimport (
    WT_I32, WT_I64, WT_LEN, WT_VARINT, as_int32, as_int64, cptr, int_field_size, len_field_size,
    read_len, read_tag, read_varint, skip_field, varint_size, write_flag, write_int_field, write_len_field,
    write_varint,
)
from .messages cimport KV, Header, enter, parse_header, parse_kv
from .records cimport (
    KeyValues, etcdfast_new_atomic_record, etcdfast_new_record, kv_record, new_key_values, set_item,
)
# wire.pxd (this module's own declarations, shared with watch.pyx) brings the
# request-writing helpers.

from ..errors import ProtocolError
from ..types import (
    CompactResult, DeleteResult, GetResult, KeyValue, PutResult, ResponseHeader, SnapshotChunk,
    TxnResult,
)

__all__ = [
    "encode_range", "encode_put", "encode_delete", "encode_compaction", "encode_authenticate",
    "encode_compare", "encode_txn", "encode_put_txn",
    "decode_range", "decode_put", "decode_delete", "decode_txn", "decode_txn_revision",
    "decode_compaction", "decode_authenticate", "decode_snapshot_chunk",
]

# RequestOp oneof field numbers double as op kinds everywhere in the codec.
OP_RANGE, OP_PUT, OP_DELETE, OP_TXN = 1, 2, 3, 4
cdef enum:
    KIND_RANGE = 1
    KIND_PUT = 2
    KIND_DELETE = 3
    KIND_TXN = 4
    COMPARE_VALUE = 3
    # the other messages of a TxnResponse tree, for _validate below
    KIND_OP = 5
    KIND_HEADER = 6
    KIND_KV = 7

cdef inline const char* _data(bytes b) noexcept:
    return PyBytes_AS_STRING(b)


# -- requests -----------------------------------------------------------------


def encode_range(
    bytes key not None,
    bytes range_end not None,
    limit,
    revision,
    sort_order,
    sort_target,
    bint serializable,
    bint keys_only,
    bint count_only,
    min_mod_revision,
    max_mod_revision,
    min_create_revision,
    max_create_revision,
):
    """Encode an ``etcdserverpb.RangeRequest``."""
    cdef int64_t c_limit = as_int64(limit)
    cdef int64_t c_revision = as_int64(revision)
    cdef int32_t c_sort_order = as_int32(sort_order)
    cdef int32_t c_sort_target = as_int32(sort_target)
    cdef int64_t c_min_mod_revision = as_int64(min_mod_revision)
    cdef int64_t c_max_mod_revision = as_int64(max_mod_revision)
    cdef int64_t c_min_create_revision = as_int64(min_create_revision)
    cdef int64_t c_max_create_revision = as_int64(max_create_revision)
    cdef Py_ssize_t size = (
        opt_len_size(key) + opt_len_size(range_end)
        + int_field_size(c_limit) + int_field_size(c_revision)
        + int_field_size(c_sort_order) + int_field_size(c_sort_target)
        + 2 * (serializable + keys_only + count_only)
        + int_field_size(c_min_mod_revision) + int_field_size(c_max_mod_revision)
        + int_field_size(c_min_create_revision) + int_field_size(c_max_create_revision)
    )
    cdef unsigned char* start
    cdef bytes out = new_bytes(size, &start)
    cdef unsigned char* p = write_opt_len(start, 0x0A, key)
    p = write_opt_len(p, 0x12, range_end)
    p = write_int_field(p, 0x18, c_limit)
    p = write_int_field(p, 0x20, c_revision)
    p = write_int_field(p, 0x28, c_sort_order)
    p = write_int_field(p, 0x30, c_sort_target)
    p = write_flag(p, 0x38, serializable)
    p = write_flag(p, 0x40, keys_only)
    p = write_flag(p, 0x48, count_only)
    p = write_int_field(p, 0x50, c_min_mod_revision)
    p = write_int_field(p, 0x58, c_max_mod_revision)
    p = write_int_field(p, 0x60, c_min_create_revision)
    p = write_int_field(p, 0x68, c_max_create_revision)
    check_size(p, start, size)
    return out


cdef inline Py_ssize_t _put_size(bytes key, bytes value, int64_t lease, bint prev_kv,
                                 bint ignore_value, bint ignore_lease) noexcept:
    return (opt_len_size(key) + opt_len_size(value) + int_field_size(lease)
            + 2 * (prev_kv + ignore_value + ignore_lease))


cdef inline unsigned char* _write_put(unsigned char* p, bytes key, bytes value, int64_t lease,
                                      bint prev_kv, bint ignore_value, bint ignore_lease) noexcept:
    p = write_opt_len(p, 0x0A, key)
    p = write_opt_len(p, 0x12, value)
    p = write_int_field(p, 0x18, lease)
    p = write_flag(p, 0x20, prev_kv)
    p = write_flag(p, 0x28, ignore_value)
    return write_flag(p, 0x30, ignore_lease)


def encode_put(bytes key not None, bytes value not None, lease, bint prev_kv,
               bint ignore_value, bint ignore_lease):
    """Encode an ``etcdserverpb.PutRequest``."""
    cdef int64_t c_lease = as_int64(lease)
    cdef Py_ssize_t size = _put_size(key, value, c_lease, prev_kv, ignore_value, ignore_lease)
    cdef unsigned char* start
    cdef bytes out = new_bytes(size, &start)
    cdef unsigned char* p = _write_put(start, key, value, c_lease, prev_kv, ignore_value, ignore_lease)
    check_size(p, start, size)
    return out


def encode_delete(bytes key not None, bytes range_end not None, bint prev_kv):
    """Encode an ``etcdserverpb.DeleteRangeRequest``."""
    cdef Py_ssize_t size = opt_len_size(key) + opt_len_size(range_end) + 2 * prev_kv
    cdef unsigned char* start
    cdef bytes out = new_bytes(size, &start)
    cdef unsigned char* p = write_opt_len(start, 0x0A, key)
    p = write_opt_len(p, 0x12, range_end)
    p = write_flag(p, 0x18, prev_kv)
    check_size(p, start, size)
    return out


def encode_compaction(revision, bint physical):
    """Encode an ``etcdserverpb.CompactionRequest``."""
    cdef int64_t c_revision = as_int64(revision)
    cdef Py_ssize_t size = int_field_size(c_revision) + 2 * physical
    cdef unsigned char* start
    cdef bytes out = new_bytes(size, &start)
    cdef unsigned char* p = write_int_field(start, 0x08, c_revision)
    p = write_flag(p, 0x10, physical)
    check_size(p, start, size)
    return out


def encode_authenticate(bytes name not None, bytes password not None):
    """Encode an ``etcdserverpb.AuthenticateRequest`` from UTF-8 ``name`` and
    ``password`` (a login; see :func:`decode_authenticate`)."""
    cdef Py_ssize_t size = opt_len_size(name) + opt_len_size(password)
    cdef unsigned char* start
    cdef bytes out = new_bytes(size, &start)
    cdef unsigned char* p = write_opt_len(start, 0x0a, name)
    p = write_opt_len(p, 0x12, password)
    check_size(p, start, size)
    return out


def encode_compare(bytes key not None, bytes range_end not None, target, result,
                   operand):
    """Encode an ``etcdserverpb.Compare`` (see the pure twin for the contract)."""
    cdef int32_t c_target = as_int32(target)
    cdef int32_t c_result = as_int32(result)
    if not 0 <= c_target <= 4:
        raise ValueError(f"unknown compare c_target {c_target}")
    cdef bytes value = None
    cdef int64_t number = 0
    cdef Py_ssize_t member_size
    if c_target == COMPARE_VALUE:
        if type(operand) is not bytes:
            raise TypeError(f"expected bytes, got {type(operand).__name__}")
        value = <bytes>operand
        member_size = len_field_size(1, PyBytes_GET_SIZE(value))
    else:
        number = as_int64(operand)
        member_size = 1 + varint_size(<uint64_t>number)
    cdef Py_ssize_t end_size = len_field_size(2, PyBytes_GET_SIZE(range_end)) if range_end else 0
    cdef Py_ssize_t size = (int_field_size(c_result) + int_field_size(c_target)
                            + opt_len_size(key) + member_size + end_size)
    cdef unsigned char* start
    cdef bytes out = new_bytes(size, &start)
    cdef unsigned char* p = write_int_field(start, 0x08, c_result)
    p = write_int_field(p, 0x10, c_target)
    p = write_opt_len(p, 0x1A, key)
    if c_target == COMPARE_VALUE:
        p = write_len_field(p, 0x3A, _data(value), PyBytes_GET_SIZE(value))
    else:
        p[0] = <unsigned char>((c_target + 4) << 3)  # version=4 create=5 mod=6 lease=8, varint
        p = write_varint(p + 1, <uint64_t>number)
    if end_size:
        p[0] = 0x82  # field 64 (range_end), wire type 2: a two-byte tag
        p[1] = 0x04
        p = write_varint(p + 2, <uint64_t>PyBytes_GET_SIZE(range_end))
        memcpy(p, _data(range_end), PyBytes_GET_SIZE(range_end))
        p += PyBytes_GET_SIZE(range_end)
    check_size(p, start, size)
    return out


cdef inline tuple _op_parts(object op):
    kind, payload = op
    kind = PyNumber_Index(kind)  # TypeError for non-integers, as the pure twin's index()
    if not KIND_RANGE <= kind <= KIND_TXN:
        raise ValueError(f"unknown op kind {kind}")
    if type(payload) is not bytes:
        raise TypeError(f"expected bytes, got {type(payload).__name__}")
    return (kind, payload)


cdef Py_ssize_t _ops_size(list ops) except -1:
    cdef Py_ssize_t total = 0, inner
    cdef tuple op
    for op in ops:
        inner = len_field_size(1, PyBytes_GET_SIZE(<bytes>op[1]))
        total += len_field_size(1, inner)
    return total


cdef unsigned char* _write_ops(unsigned char* p, unsigned char branch_tag, list ops) noexcept:
    cdef tuple op
    cdef bytes payload
    cdef int kind
    cdef Py_ssize_t n
    for op in ops:
        kind = op[0]
        payload = <bytes>op[1]
        n = PyBytes_GET_SIZE(payload)
        p[0] = branch_tag
        p = write_varint(p + 1, <uint64_t>len_field_size(1, n))
        p = write_len_field(p, <unsigned char>(kind << 3 | WT_LEN), PyBytes_AS_STRING(payload), n)
    return p


def encode_txn(compare, success, failure):
    """Encode an ``etcdserverpb.TxnRequest`` from pre-encoded parts.

    ``compare`` holds :func:`encode_compare` outputs; each op is
    ``(kind, request_bytes)`` with kind 1 range, 2 put, 3 delete, 4 txn.
    """
    cdef list compares = []
    cdef Py_ssize_t size = 0
    for c in compare:
        if type(c) is not bytes:
            raise TypeError(f"expected bytes, got {type(c).__name__}")
        compares.append(c)
        size += len_field_size(1, PyBytes_GET_SIZE(<bytes>c))
    cdef list ok = [_op_parts(op) for op in success]
    cdef list ko = [_op_parts(op) for op in failure]
    size += _ops_size(ok) + _ops_size(ko)
    cdef unsigned char* start
    cdef bytes out = new_bytes(size, &start)
    cdef unsigned char* p = start
    cdef bytes c_bytes
    for c_bytes in compares:
        p = write_len_field(p, 0x0A, PyBytes_AS_STRING(c_bytes), PyBytes_GET_SIZE(c_bytes))
    p = _write_ops(p, 0x12, ok)
    p = _write_ops(p, 0x1A, ko)
    check_size(p, start, size)
    return out


def encode_put_txn(items, lease):
    """A compare-less TxnRequest putting every ``(key, value)`` pair: a bulk-load batch."""
    cdef int64_t c_lease = as_int64(lease)
    cdef list pairs = []
    cdef Py_ssize_t size = 0, put
    cdef object key, value
    for item in items:
        key, value = item
        if type(key) is not bytes or type(value) is not bytes:
            bad = key if type(key) is not bytes else value
            raise TypeError(f"expected bytes, got {type(bad).__name__}")
        pairs.append((key, value))
        put = _put_size(key, value, c_lease, False, False, False)
        size += len_field_size(1, len_field_size(1, put))
    cdef unsigned char* start
    cdef bytes out = new_bytes(size, &start)
    cdef unsigned char* p = start
    cdef tuple pair
    for pair in pairs:
        key = pair[0]
        value = pair[1]
        put = _put_size(key, value, c_lease, False, False, False)
        p[0] = 0x12  # TxnRequest.success
        p = write_varint(p + 1, <uint64_t>len_field_size(1, put))
        p[0] = 0x12  # RequestOp.request_put
        p = write_varint(p + 1, <uint64_t>put)
        p = _write_put(p, key, value, c_lease, False, False, False)
    check_size(p, start, size)
    return out


# -- responses ----------------------------------------------------------------

cdef object header_record(Header* h):
    cdef object rec = etcdfast_new_atomic_record(ResponseHeader, 4)
    set_item(rec, 0, PyLong_FromUnsignedLongLong(h.cluster_id))
    set_item(rec, 1, PyLong_FromUnsignedLongLong(h.member_id))
    set_item(rec, 2, PyLong_FromLongLong(h.revision))
    set_item(rec, 3, PyLong_FromUnsignedLongLong(h.raft_term))
    return rec


cdef object malformed(str name):
    # Not inline: shared with watch.pyx through wire.pxd, and only on the error path.
    raise ProtocolError(f"malformed {name}: truncated or invalid protobuf")


# Messages holding Python objects (lists of records) parse into small state
# objects that stay mutable until the enclosing message ends, so that merging
# a repeated singular submessage keeps protobuf's semantics.

cdef class _Message:
    cdef Header header
    cdef bytes data  # the whole response, which a KeyValues keeps

    cdef cptr parse(self, cptr p, cptr end, int depth) except NULL:
        raise NotImplementedError

    cdef object finish(self):
        raise NotImplementedError

    cdef cptr parse_header(self, cptr p, cptr end, int depth) except NULL:
        cdef cptr sub_end
        p = enter(p, end, &sub_end, depth + 1)
        if p == NULL or parse_header(p, sub_end, &self.header, depth + 1) == NULL:
            malformed("ResponseHeader")
        return sub_end


cdef class _Range(_Message):
    cdef KeyValues kvs
    cdef bint more
    cdef int64_t count

    cdef cptr parse(self, cptr p, cptr end, int depth) except NULL:
        cdef uint32_t field, wt
        cdef uint64_t v
        cdef cptr sub_end, at
        cdef KV kv
        while p < end:
            p = read_tag(p, end, &field, &wt)
            if p == NULL:
                malformed("RangeResponse")
            if wt == WT_LEN and field == 2:
                at = p
                p = enter(p, end, &sub_end, depth + 1)
                if p == NULL or parse_kv(p, sub_end, &kv, depth + 1) == NULL:
                    malformed("KeyValue")
                if self.kvs is None:
                    self.kvs = new_key_values(self.data)
                self.kvs.add(at, 0)
                p = sub_end
            elif wt == WT_LEN and field == 1:
                p = self.parse_header(p, end, depth)
            elif wt == WT_VARINT and (field == 3 or field == 4):
                p = read_varint(p, end, &v)
                if p == NULL:
                    malformed("RangeResponse")
                if field == 3:
                    self.more = v != 0
                else:
                    self.count = <int64_t>v
            else:
                p = skip_field(p, end, field, wt, depth)
                if p == NULL:
                    malformed("RangeResponse")
        return p

    cdef object finish(self):
        cdef object rec = etcdfast_new_record(GetResult, 4)
        set_item(rec, 0, header_record(&self.header))
        set_item(rec, 1, _finished(self.kvs, self.data))
        set_item(rec, 2, bool(self.more))
        set_item(rec, 3, PyLong_FromLongLong(self.count))
        return rec


cdef class _Put(_Message):
    cdef KV prev_kv
    cdef bint has_prev_kv

    cdef cptr parse(self, cptr p, cptr end, int depth) except NULL:
        cdef uint32_t field, wt
        cdef cptr sub_end
        while p < end:
            p = read_tag(p, end, &field, &wt)
            if p == NULL:
                malformed("PutResponse")
            if wt == WT_LEN and field == 1:
                p = self.parse_header(p, end, depth)
            elif wt == WT_LEN and field == 2:
                p = enter(p, end, &sub_end, depth + 1)
                if p == NULL or parse_kv(p, sub_end, &self.prev_kv, depth + 1) == NULL:
                    malformed("KeyValue")
                self.has_prev_kv = True
                p = sub_end
            else:
                p = skip_field(p, end, field, wt, depth)
                if p == NULL:
                    malformed("PutResponse")
        return p

    cdef object finish(self):
        cdef object rec = etcdfast_new_record(PutResult, 2)
        set_item(rec, 0, header_record(&self.header))
        set_item(rec, 1, kv_record(&self.prev_kv) if self.has_prev_kv else None)
        return rec


cdef class _Delete(_Message):
    cdef int64_t deleted
    cdef KeyValues prev_kvs

    cdef cptr parse(self, cptr p, cptr end, int depth) except NULL:
        cdef uint32_t field, wt
        cdef uint64_t v
        cdef cptr sub_end, at
        cdef KV kv
        while p < end:
            p = read_tag(p, end, &field, &wt)
            if p == NULL:
                malformed("DeleteRangeResponse")
            if wt == WT_LEN and field == 3:
                at = p
                p = enter(p, end, &sub_end, depth + 1)
                if p == NULL or parse_kv(p, sub_end, &kv, depth + 1) == NULL:
                    malformed("KeyValue")
                if self.prev_kvs is None:
                    self.prev_kvs = new_key_values(self.data)
                self.prev_kvs.add(at, 0)
                p = sub_end
            elif wt == WT_LEN and field == 1:
                p = self.parse_header(p, end, depth)
            elif wt == WT_VARINT and field == 2:
                p = read_varint(p, end, &v)
                if p == NULL:
                    malformed("DeleteRangeResponse")
                self.deleted = <int64_t>v
            else:
                p = skip_field(p, end, field, wt, depth)
                if p == NULL:
                    malformed("DeleteRangeResponse")
        return p

    cdef object finish(self):
        cdef object rec = etcdfast_new_record(DeleteResult, 3)
        set_item(rec, 0, header_record(&self.header))
        set_item(rec, 1, PyLong_FromLongLong(self.deleted))
        set_item(rec, 2, _finished(self.prev_kvs, self.data))
        return rec


cdef class _Compaction(_Message):
    cdef cptr parse(self, cptr p, cptr end, int depth) except NULL:
        cdef uint32_t field, wt
        while p < end:
            p = read_tag(p, end, &field, &wt)
            if p == NULL:
                malformed("CompactionResponse")
            if wt == WT_LEN and field == 1:
                p = self.parse_header(p, end, depth)
            else:
                p = skip_field(p, end, field, wt, depth)
                if p == NULL:
                    malformed("CompactionResponse")
        return p

    cdef object finish(self):
        cdef object rec = etcdfast_new_record(CompactResult, 1)
        set_item(rec, 0, header_record(&self.header))
        return rec


cdef class _Authenticate(_Message):
    cdef str token

    cdef cptr parse(self, cptr p, cptr end, int depth) except NULL:
        cdef uint32_t field, wt
        cdef cptr sub_end
        self.token = ""
        while p < end:
            p = read_tag(p, end, &field, &wt)
            if p == NULL:
                malformed("AuthenticateResponse")
            if wt == WT_LEN and field == 1:
                p = self.parse_header(p, end, depth)
            elif wt == WT_LEN and field == 2:
                p = read_len(p, end, &sub_end)
                if p == NULL:
                    malformed("AuthenticateResponse")
                # upb checks every occurrence of a proto3 string, the last one wins.
                try:
                    self.token = PyUnicode_DecodeUTF8(<const char*>p, sub_end - p, NULL)
                except UnicodeDecodeError:
                    malformed("AuthenticateResponse")
                p = sub_end
            else:
                p = skip_field(p, end, field, wt, depth)
                if p == NULL:
                    malformed("AuthenticateResponse")
        return p

    cdef object finish(self):
        return self.token


cdef _Message _new_op_message(uint32_t kind, bytes data):
    cdef _Message message
    if kind == KIND_RANGE:
        message = _Range()
    elif kind == KIND_PUT:
        message = _Put()
    elif kind == KIND_DELETE:
        message = _Delete()
    else:
        message = _Txn()
    message.data = data
    return message


cdef KeyValues _finished(KeyValues records, bytes data):
    """The parsed KeyValues, trimmed to size; an empty one if there were none."""
    if records is None:
        return new_key_values(data)
    records.trim()
    return records


cdef object _parse_response_op(cptr p, cptr end, int depth, bytes data):
    """One ResponseOp (a oneof of the four results) at nesting level ``depth``."""
    cdef uint32_t field, wt, kind = 0
    cdef cptr sub_end
    cdef _Message member = None
    while p < end:
        p = read_tag(p, end, &field, &wt)
        if p == NULL:
            malformed("ResponseOp")
        if wt == WT_LEN and KIND_RANGE <= field <= KIND_TXN:
            p = enter(p, end, &sub_end, depth + 1)
            if p == NULL:
                malformed("ResponseOp")
            if field != kind:  # setting another oneof member discards the current one
                member = _new_op_message(field, data)
                kind = field
            member.parse(p, sub_end, depth + 1)
            p = sub_end
        else:
            p = skip_field(p, end, field, wt, depth)
            if p == NULL:
                malformed("ResponseOp")
    return None if member is None else member.finish()


cdef class _Txn(_Message):
    cdef bint succeeded
    cdef list responses

    def __cinit__(self):
        self.responses = []

    cdef cptr parse(self, cptr p, cptr end, int depth) except NULL:
        cdef uint32_t field, wt
        cdef uint64_t v
        cdef cptr sub_end
        while p < end:
            p = read_tag(p, end, &field, &wt)
            if p == NULL:
                malformed("TxnResponse")
            if wt == WT_LEN and field == 3:
                p = enter(p, end, &sub_end, depth + 1)
                if p == NULL:
                    malformed("TxnResponse")
                self.responses.append(_parse_response_op(p, sub_end, depth + 1, self.data))
                p = sub_end
            elif wt == WT_LEN and field == 1:
                p = self.parse_header(p, end, depth)
            elif wt == WT_VARINT and field == 2:
                p = read_varint(p, end, &v)
                if p == NULL:
                    malformed("TxnResponse")
                self.succeeded = v != 0
            else:
                p = skip_field(p, end, field, wt, depth)
                if p == NULL:
                    malformed("TxnResponse")
        return p

    cdef object finish(self):
        cdef object rec = etcdfast_new_record(TxnResult, 3)
        set_item(rec, 0, header_record(&self.header))
        set_item(rec, 1, bool(self.succeeded))
        set_item(rec, 2, self.responses)
        return rec


cdef inline object _decode(_Message message, bytes data, object tracker):
    if data is None:
        raise TypeError("expected bytes, got NoneType")
    message.data = data
    cdef cptr p = <cptr>PyBytes_AS_STRING(data)
    message.parse(p, p + PyBytes_GET_SIZE(data), 0)
    feed_tracker(tracker, message.header.revision)
    return message.finish()


def decode_range(bytes data, tracker=None):
    """Decode an ``etcdserverpb.RangeResponse``; feed its revision to ``tracker``."""
    return _decode(_Range(), data, tracker)


def decode_put(bytes data, tracker=None):
    """Decode an ``etcdserverpb.PutResponse``; feed its revision to ``tracker``."""
    return _decode(_Put(), data, tracker)


def decode_delete(bytes data, tracker=None):
    """Decode an ``etcdserverpb.DeleteRangeResponse``; feed its revision to ``tracker``."""
    return _decode(_Delete(), data, tracker)


def decode_txn(bytes data, tracker=None):
    """Decode an ``etcdserverpb.TxnResponse``; feed its revision to ``tracker``."""
    return _decode(_Txn(), data, tracker)


def decode_compaction(bytes data, tracker=None):
    """Decode an ``etcdserverpb.CompactionResponse``; feed its revision to ``tracker``."""
    return _decode(_Compaction(), data, tracker)


def decode_authenticate(bytes data, tracker=None):
    """The token of an ``etcdserverpb.AuthenticateResponse``; feed its revision to ``tracker``."""
    return _decode(_Authenticate(), data, tracker)


# -- TxnResponse revision -----------------------------------------------------
#
# A bulk-load batch answers with a TxnResponse of 128 PutResponses that nobody
# reads. _validate walks the same tree as _Txn.parse, with the same enter /
# read_tag / skip_field calls and the same leaf parsers (parse_header,
# parse_kv) at the same depths, so it accepts exactly the bytes decode_txn
# accepts; it only builds nothing. The field tables of the message classes
# above are restated once, in _submessage.

cdef inline int _submessage(int kind, uint32_t field) noexcept nogil:
    """The kind of message a length-delimited ``field`` of a ``kind`` message
    (a response or ResponseOp) holds; 0 if none (unknown: skipped)."""
    if kind == KIND_OP:  # the oneof's field numbers are the op kinds
        return <int>field if KIND_RANGE <= field <= KIND_TXN else 0
    if field == 1:
        return KIND_HEADER
    if kind == KIND_TXN:
        return KIND_OP if field == 3 else 0
    if kind == KIND_DELETE:
        return KIND_KV if field == 3 else 0  # prev_kvs
    return KIND_KV if field == 2 else 0  # RangeResponse.kvs, PutResponse.prev_kv


cdef cptr _validate(cptr p, cptr end, int kind, int depth, Header* header) noexcept nogil:
    """Check a ``kind`` message at nesting level ``depth`` as its decoder would;
    its own headers merge into ``header``. NULL when malformed."""
    cdef uint32_t field, wt
    cdef int sub
    cdef cptr sub_end
    cdef Header inner
    cdef KV kv
    while p < end:
        p = read_tag(p, end, &field, &wt)
        if p == NULL:
            return NULL
        sub = _submessage(kind, field) if wt == WT_LEN else 0
        if sub == 0:
            p = skip_field(p, end, field, wt, depth)
            if p == NULL:
                return NULL
            continue
        p = enter(p, end, &sub_end, depth + 1)
        if p == NULL:
            return NULL
        if sub == KIND_HEADER:
            p = parse_header(p, sub_end, header, depth + 1)
        elif sub == KIND_KV:
            p = parse_kv(p, sub_end, &kv, depth + 1)
        else:
            p = _validate(p, sub_end, sub, depth + 1, &inner)
        if p == NULL:
            return NULL
        p = sub_end
    return p


def decode_txn_revision(bytes data, tracker=None):
    """``header.revision`` of an ``etcdserverpb.TxnResponse``; feed it to ``tracker``.

    Accepts exactly the bytes :func:`decode_txn` accepts, building no results.
    """
    if data is None:
        raise TypeError("expected bytes, got NoneType")
    cdef Header header
    memset(&header, 0, sizeof(Header))
    cdef cptr p = <cptr>PyBytes_AS_STRING(data)
    if _validate(p, p + PyBytes_GET_SIZE(data), KIND_TXN, 0, &header) == NULL:
        malformed("TxnResponse")
    feed_tracker(tracker, header.revision)
    return PyLong_FromLongLong(header.revision)


# -- snapshots ----------------------------------------------------------------
#
# Not upb's rules: these are the pure twin's (see _pure/wire.py), which keep
# the hand-written parser etcdfast has always used for snapshot chunks. Tags,
# lengths and values are 10-byte varints whose bits past 64 still count (Python
# ints do not overflow); any field number is fine; groups are errors.

cdef inline cptr _wide_varint(cptr p, cptr end, uint64_t* low, uint64_t* high) noexcept nogil:
    """read_varint, and in ``high`` the bits past 64 that it drops."""
    cdef cptr q = read_varint(p, end, low)
    high[0] = q[-1] >> 1 if q != NULL and q - p == 10 else 0
    return q


cdef struct Chunk:
    uint64_t remaining
    uint64_t remaining_high  # bits 64 and up
    cptr blob
    Py_ssize_t blob_len
    cptr version
    Py_ssize_t version_len


cdef cptr _parse_chunk(cptr p, cptr end, Chunk* c) noexcept nogil:
    cdef uint64_t key, value, high, field, wt
    while p < end:
        p = _wide_varint(p, end, &key, &high)
        if p == NULL:
            return NULL
        field = key >> 3 if high == 0 else 0  # past 64 bits: none of ours
        wt = key & 7
        if wt == WT_VARINT:
            p = _wide_varint(p, end, &value, &high)
            if p == NULL:
                return NULL
            if field == 2:
                c.remaining, c.remaining_high = value, high
        elif wt == WT_LEN:
            p = _wide_varint(p, end, &value, &high)
            if p == NULL or high != 0 or value > <uint64_t>(end - p):
                return NULL
            if field == 3:
                c.blob, c.blob_len = p, <Py_ssize_t>value
            elif field == 4:
                c.version, c.version_len = p, <Py_ssize_t>value
            p += value
        elif wt == WT_I64 or wt == WT_I32:
            value = 8 if wt == WT_I64 else 4
            if <uint64_t>(end - p) < value:
                return NULL
            p += value
        else:  # groups, wire types 6 and 7
            return NULL
    return p


def decode_snapshot_chunk(bytes data):
    """Decode an ``etcdserverpb.SnapshotResponse`` without copying its blob."""
    if data is None:
        raise TypeError("expected bytes, got NoneType")
    cdef cptr start = <cptr>PyBytes_AS_STRING(data)
    cdef Chunk c
    memset(&c, 0, sizeof(Chunk))
    c.blob = start
    if _parse_chunk(start, start + PyBytes_GET_SIZE(data), &c) == NULL:
        raise ProtocolError("malformed SnapshotResponse: truncated or invalid protobuf")
    cdef object remaining = PyLong_FromUnsignedLongLong(c.remaining)
    if c.remaining_high:
        remaining |= PyLong_FromUnsignedLongLong(c.remaining_high) << 64
    cdef Py_ssize_t blob_at = c.blob - start
    cdef object rec = etcdfast_new_record(SnapshotChunk, 3)
    set_item(rec, 0, remaining)
    set_item(rec, 1, memoryview(data)[blob_at:blob_at + c.blob_len])
    set_item(rec, 2, PyUnicode_DecodeUTF8(<const char*>c.version, c.version_len, "replace")
             if c.version_len else "")
    return rec
