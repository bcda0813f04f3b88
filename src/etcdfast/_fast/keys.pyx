"""Key normalisation and range arithmetic (Cython twin of ``_pure/keys.py``)."""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.unicode cimport PyUnicode_AsUTF8String
from libc.stdint cimport uint32_t, uint64_t
from libc.string cimport memcpy

from .buffer cimport (
    WT_I32, WT_I64, WT_LEN, WT_VARINT, cptr, read_len, read_varint, read_varint32, varint_size,
    write_varint,
)

from ..errors import EmptyKeyError, InvalidArgumentError, ProtocolError

__all__ = ["to_bytes", "prefix_range_end", "resolve_range", "prefix_request"]

cdef bytes _ALL = b"\x00"


cpdef bytes to_bytes(value):
    """``bytes`` unchanged, ``str`` encoded as UTF-8, anything else ``TypeError``."""
    if isinstance(value, bytes):
        return <bytes>value
    if isinstance(value, str):
        return PyUnicode_AsUTF8String(value)
    raise TypeError(f"etcd keys and values are str or bytes, not {type(value).__name__}")


cpdef bytes prefix_range_end(bytes prefix):
    """The smallest key greater than every key that starts with ``prefix``."""
    if prefix is None:
        raise TypeError("prefix must be bytes, not None")
    cdef const unsigned char* p = <const unsigned char*>PyBytes_AS_STRING(prefix)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(prefix)
    while n > 0 and p[n - 1] == 0xFF:
        n -= 1
    if n == 0:
        return _ALL
    # Allocate uninitialised (NULL source) so CPython hands us a fresh object:
    # with a source it returns its shared one-byte singletons, which must
    # never be written to.
    cdef bytes end = PyBytes_FromStringAndSize(NULL, n)
    cdef unsigned char* out = <unsigned char*>PyBytes_AS_STRING(end)
    memcpy(out, p, n)
    out[n - 1] += 1
    return end


def resolve_range(key, range_end, bint prefix, bint from_key):
    """Turn the user's range options into the ``(key, range_end)`` pair on the wire."""
    cdef bytes k = to_bytes(key)
    if range_end is not None:
        if prefix or from_key:
            raise InvalidArgumentError("range_end cannot be combined with prefix or from_key")
        if not k:
            raise EmptyKeyError("key is empty")
        return k, to_bytes(range_end)
    if prefix:
        if from_key:
            raise InvalidArgumentError("prefix and from_key cannot be combined")
        if not k:
            return _ALL, _ALL
        return k, prefix_range_end(k)
    if from_key:
        return (k or _ALL), _ALL
    if not k:
        raise EmptyKeyError("key is empty")
    return k, b""


# -- namespaces (see _pure/keys.py for the rules; both twins follow them) ------

cdef enum:
    _REQUEST_OP = 5
    _COMPARE = 6
    _NS_MAX_DEPTH = 100


cdef inline void _layout(int kind, uint32_t* key_field, uint32_t* end_field) noexcept nogil:
    if kind == 1 or kind == 3:  # RangeRequest, DeleteRangeRequest
        key_field[0], end_field[0] = 1, 2
    elif kind == 2:  # PutRequest
        key_field[0], end_field[0] = 1, 0
    elif kind == _COMPARE:
        key_field[0], end_field[0] = 3, 64
    else:  # TxnRequest, RequestOp: no keys of their own
        key_field[0], end_field[0] = 0, 0


cdef inline int _submessage(int kind, uint32_t field) noexcept nogil:
    """The kind of the submessage in ``field`` of a ``kind`` message, 0 if none."""
    if kind == 4:  # TxnRequest: compare, success, failure
        if field == 1:
            return _COMPARE
        if field == 2 or field == 3:
            return _REQUEST_OP
    elif kind == _REQUEST_OP and 1 <= field <= 4:
        return <int>field
    return 0


cdef bytes _len_field(uint32_t field, bytes data):
    cdef uint64_t tag = (<uint64_t>field << 3) | WT_LEN
    cdef Py_ssize_t n = PyBytes_GET_SIZE(data)
    cdef bytes out = PyBytes_FromStringAndSize(NULL, varint_size(tag) + varint_size(<uint64_t>n) + n)
    cdef unsigned char* p = <unsigned char*>PyBytes_AS_STRING(out)
    p = write_varint(p, tag)
    p = write_varint(p, <uint64_t>n)
    memcpy(p, PyBytes_AS_STRING(data), n)
    return out


cdef bytes _prefixed(int kind, const unsigned char[:] data, bytes prefix, bytes prefix_end, int depth):
    if depth > _NS_MAX_DEPTH:
        raise ProtocolError("malformed request: nested too deeply")
    cdef uint32_t key_field, end_field, field, wire_type
    _layout(kind, &key_field, &end_field)
    cdef list out = []
    cdef bint key_written = key_field == 0
    cdef Py_ssize_t size = data.shape[0]
    if size == 0:
        return _len_field(key_field, prefix) if not key_written else b""
    cdef cptr base = &data[0]
    cdef cptr end = base + size
    cdef cptr p = base
    cdef cptr start
    cdef cptr sub_end
    cdef uint64_t tag, ignored
    cdef int sub
    cdef bytes value
    while p < end:
        start = p
        p = read_varint32(p, end, &tag)
        if p == NULL or (tag >> 32) != 0 or (tag >> 3) == 0:
            raise ProtocolError("malformed request: bad tag" if p != NULL else "malformed request: bad varint")
        field = <uint32_t>(tag >> 3)
        wire_type = <uint32_t>(tag & 7)
        if not key_written and field > key_field:
            out.append(_len_field(key_field, prefix))
            key_written = True
        if wire_type == WT_LEN:
            p = read_len(p, end, &sub_end)
            if p == NULL:
                raise ProtocolError("malformed request: truncated field")
            value = PyBytes_FromStringAndSize(<const char*>p, sub_end - p)
            p = sub_end
            sub = _submessage(kind, field)
            if field == key_field:
                out.append(_len_field(field, prefix + value))
                key_written = True
            elif field == end_field and PyBytes_GET_SIZE(value) > 0:
                out.append(_len_field(field, prefix_end if value == _ALL else prefix + value))
            elif sub:
                out.append(_len_field(field, _prefixed(sub, value, prefix, prefix_end, depth + 1)))
            else:
                out.append(PyBytes_FromStringAndSize(<const char*>start, p - start))
            continue
        if wire_type == WT_VARINT:
            p = read_varint(p, end, &ignored)
            if p == NULL:
                raise ProtocolError("malformed request: bad varint")
        elif wire_type == WT_I64 or wire_type == WT_I32:
            if end - p < (8 if wire_type == WT_I64 else 4):
                raise ProtocolError("malformed request: truncated field")
            p += 8 if wire_type == WT_I64 else 4
        else:
            raise ProtocolError(f"malformed request: wire type {wire_type}")
        out.append(PyBytes_FromStringAndSize(<const char*>start, p - start))
    if not key_written:
        out.append(_len_field(key_field, prefix))
    return b"".join(out)


def prefix_request(int kind, payload, prefix):
    """``payload`` -- an encoded RangeRequest (``kind`` 1), PutRequest (2),
    DeleteRangeRequest (3), TxnRequest (4) or Compare (6) -- with every key
    and range end moved under ``prefix``."""
    if type(payload) is not bytes or type(prefix) is not bytes:
        raise TypeError("payload and prefix must be bytes")
    if not (1 <= kind <= 4 or kind == _COMPARE):
        raise ValueError(f"unknown request kind {kind}")
    return _prefixed(kind, payload, prefix, prefix_range_end(prefix), 0)
