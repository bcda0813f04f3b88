# Protobuf wire primitives shared by the Cython codec modules.
#
# Plain C over a (pointer, end) pair, in the spirit of asyncpg's frb.pxd: no
# Python objects, no exceptions. Readers return the advanced pointer, or NULL
# when the bytes are malformed; the caller turns NULL into ProtocolError with
# the message name. The acceptance rules copy upb (the protobuf runtime's C
# parser, which the pure twin uses), so both twins agree on every input:
#   * varints are at most 10 bytes, bits past 64 are dropped;
#   * tags and lengths are varint32: at most 5 bytes, tag <= 0xFFFFFFFF;
#   * field number 0, wire types 6 and 7, and an unmatched END_GROUP are errors
#     (upb does not check the field number inside a skipped group: 0 is fine there);
#   * a known field with an unexpected wire type is skipped as unknown;
#   * submessages and groups share one nesting limit of 100.

from libc.stdint cimport int32_t, int64_t, uint32_t, uint64_t
from libc.string cimport memcpy

ctypedef const unsigned char* cptr

cdef enum:
    WT_VARINT = 0
    WT_I64 = 1
    WT_LEN = 2
    WT_SGROUP = 3
    WT_EGROUP = 4
    WT_I32 = 5
    MAX_DEPTH = 100


cdef inline cptr read_varint(cptr p, cptr end, uint64_t* out) noexcept nogil:
    cdef uint64_t value = 0
    cdef uint64_t byte
    cdef int shift = 0
    while shift < 70:
        if p >= end:
            return NULL
        byte = p[0]
        p += 1
        if shift < 64:
            value |= (byte & 0x7F) << shift
        if byte < 0x80:
            out[0] = value
            return p
        shift += 7
    return NULL


cdef inline cptr read_varint32(cptr p, cptr end, uint64_t* out) noexcept nogil:
    # Tags and lengths: five bytes at most; the value may still exceed 32 bits
    # here, callers check the range they need.
    cdef uint64_t value = 0
    cdef uint64_t byte
    cdef int shift = 0
    while shift < 35:
        if p >= end:
            return NULL
        byte = p[0]
        p += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            out[0] = value
            return p
        shift += 7
    return NULL


cdef inline cptr read_group_tag(cptr p, cptr end, uint32_t* field, uint32_t* wire_type) noexcept nogil:
    """A tag inside a skipped group, where upb lets field number 0 pass."""
    cdef uint64_t tag
    if p < end and p[0] < 0x80:  # one-byte tags: every field etcd's KV service uses
        tag = p[0]
        p += 1
    else:
        p = read_varint32(p, end, &tag)
        if p == NULL or (tag >> 32) != 0:
            return NULL
    field[0] = <uint32_t>(tag >> 3)
    wire_type[0] = <uint32_t>(tag & 7)
    if wire_type[0] > WT_I32:
        return NULL
    return p


cdef inline cptr read_tag(cptr p, cptr end, uint32_t* field, uint32_t* wire_type) noexcept nogil:
    p = read_group_tag(p, end, field, wire_type)
    if p == NULL or field[0] == 0:
        return NULL
    return p


cdef inline cptr read_len(cptr p, cptr end, cptr* sub_end) noexcept nogil:
    """Read a length prefix; ``sub_end`` gets the end of the payload."""
    cdef uint64_t length
    if p < end and p[0] < 0x80:
        length = p[0]
        p += 1
    else:
        p = read_varint32(p, end, &length)
        if p == NULL:
            return NULL
    if length > <uint64_t>(end - p):
        return NULL
    sub_end[0] = p + length
    return p


cdef inline cptr skip_field(cptr p, cptr end, uint32_t field, uint32_t wire_type, int depth) noexcept nogil:
    """Skip one field's payload; ``depth`` is the nesting level of the message
    holding it (a group adds one)."""
    cdef uint64_t ignored
    cdef cptr sub_end
    cdef uint32_t inner_field, inner_type
    if wire_type == WT_VARINT:
        return read_varint(p, end, &ignored)
    if wire_type == WT_LEN:
        p = read_len(p, end, &sub_end)
        return sub_end if p != NULL else NULL
    if wire_type == WT_I64:
        return p + 8 if end - p >= 8 else NULL
    if wire_type == WT_I32:
        return p + 4 if end - p >= 4 else NULL
    if wire_type == WT_SGROUP:
        if depth + 1 > MAX_DEPTH:
            return NULL
        while True:
            p = read_group_tag(p, end, &inner_field, &inner_type)
            if p == NULL:
                return NULL
            if inner_type == WT_EGROUP:
                return p if inner_field == field else NULL
            p = skip_field(p, end, inner_field, inner_type, depth + 1)
            if p == NULL:
                return NULL
    return NULL  # a stray END_GROUP


# -- writing: callers size the message first, then fill a bytes object in place


cdef inline Py_ssize_t varint_size(uint64_t value) noexcept nogil:
    cdef Py_ssize_t n = 1
    while value >= 0x80:
        value >>= 7
        n += 1
    return n


cdef inline unsigned char* write_varint(unsigned char* p, uint64_t value) noexcept nogil:
    while value >= 0x80:
        p[0] = <unsigned char>(value | 0x80)
        value >>= 7
        p += 1
    p[0] = <unsigned char>value
    return p + 1


cdef inline Py_ssize_t len_field_size(Py_ssize_t tag_size, Py_ssize_t length) noexcept nogil:
    return tag_size + varint_size(<uint64_t>length) + length


cdef inline unsigned char* write_len_field(
    unsigned char* p, unsigned char tag, const char* data, Py_ssize_t length
) noexcept nogil:
    p[0] = tag
    p = write_varint(p + 1, <uint64_t>length)
    memcpy(p, data, length)
    return p + length


cdef inline Py_ssize_t int_field_size(int64_t value) noexcept nogil:
    # one-byte tag + varint; zero is the proto3 default and is not written
    return 1 + varint_size(<uint64_t>value) if value != 0 else 0


cdef inline unsigned char* write_int_field(unsigned char* p, unsigned char tag, int64_t value) noexcept nogil:
    if value == 0:
        return p
    p[0] = tag
    return write_varint(p + 1, <uint64_t>value)


cdef inline unsigned char* write_flag(unsigned char* p, unsigned char tag, bint value) noexcept nogil:
    if not value:
        return p
    p[0] = tag
    p[1] = 1
    return p + 2


from cpython.number cimport PyNumber_Index


# Integer arguments go through PyNumber_Index so a float is a TypeError, as
# with operator.index() in the pure twin; Cython's own C-integer conversion
# would silently truncate it. Range errors raise OverflowError in both.
cdef inline int64_t as_int64(object value) except? -1:
    return PyNumber_Index(value)


cdef inline int32_t as_int32(object value) except? -1:
    return PyNumber_Index(value)
