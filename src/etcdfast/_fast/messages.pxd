# C parsers of the etcd messages that hold only scalars and bytes: the
# ResponseHeader, mvccpb.KeyValue and mvccpb.Event. Plain C over buffer.pxd's
# primitives, no Python objects: the decoders (wire.pyx, watch.pyx) run them
# once to check a response, and records.pyx runs them again on the same bytes
# when a record is first asked for, so both passes accept exactly the same input.

from libc.stdint cimport int32_t, int64_t, uint32_t, uint64_t
from libc.string cimport memset

from .buffer cimport MAX_DEPTH, WT_LEN, WT_VARINT, cptr, read_len, read_tag, read_varint, skip_field


cdef struct Header:
    uint64_t cluster_id
    uint64_t member_id
    int64_t revision
    uint64_t raft_term


cdef struct KV:
    cptr key
    Py_ssize_t key_len
    int64_t create_revision
    int64_t mod_revision
    int64_t version
    cptr value
    Py_ssize_t value_len
    int64_t c_lease


# -- parsing ------------------------------------------------------------------

cdef inline cptr enter(cptr p, cptr end, cptr* sub_end, int depth) noexcept nogil:
    """Open a length-delimited submessage at nesting level ``depth``."""
    if depth > MAX_DEPTH:
        return NULL
    return read_len(p, end, sub_end)


# Header and KeyValue hold only scalars and bytes, so they parse in plain C. A
# repeated occurrence of a singular submessage merges into the same struct,
# field by field, exactly as protobuf merges it.

cdef inline cptr parse_header(cptr p, cptr end, Header* h, int depth) noexcept nogil:
    cdef uint32_t field, wt
    cdef uint64_t v
    while p < end:
        p = read_tag(p, end, &field, &wt)
        if p == NULL:
            return NULL
        if wt == WT_VARINT and field <= 4:
            p = read_varint(p, end, &v)
            if p == NULL:
                return NULL
            if field == 1:
                h.cluster_id = v
            elif field == 2:
                h.member_id = v
            elif field == 3:
                h.revision = <int64_t>v
            else:
                h.raft_term = v
        else:
            p = skip_field(p, end, field, wt, depth)
            if p == NULL:
                return NULL
    return p


cdef inline cptr parse_kv(cptr p, cptr end, KV* kv, int depth) noexcept nogil:
    cdef uint32_t field, wt
    cdef uint64_t v
    cdef cptr sub_end
    while p < end:
        p = read_tag(p, end, &field, &wt)
        if p == NULL:
            return NULL
        if wt == WT_VARINT and 2 <= field <= 6 and field != 5:
            p = read_varint(p, end, &v)
            if p == NULL:
                return NULL
            if field == 2:
                kv.create_revision = <int64_t>v
            elif field == 3:
                kv.mod_revision = <int64_t>v
            elif field == 4:
                kv.version = <int64_t>v
            else:
                kv.c_lease = <int64_t>v
        elif wt == WT_LEN and (field == 1 or field == 5):
            p = read_len(p, end, &sub_end)
            if p == NULL:
                return NULL
            if field == 1:
                kv.key = p
                kv.key_len = sub_end - p
            else:
                kv.value = p
                kv.value_len = sub_end - p
            p = sub_end
        else:
            p = skip_field(p, end, field, wt, depth)
            if p == NULL:
                return NULL
    return p


cdef struct EventFields:
    int32_t type
    KV kv
    KV prev_kv
    bint has_prev_kv


cdef inline cptr parse_event(cptr p, cptr end, EventFields* ev, int depth) noexcept nogil:
    """One ``mvccpb.Event`` payload at nesting level ``depth`` into ``ev`` (zeroed here).
    A missing kv stays the empty KeyValue, as protobuf's default instance; a
    repeated kv/prev_kv merges into the same struct, as protobuf merges it."""
    cdef uint32_t field, wt
    cdef uint64_t v
    cdef cptr sub_end
    memset(ev, 0, sizeof(EventFields))
    while p < end:
        p = read_tag(p, end, &field, &wt)
        if p == NULL:
            return NULL
        if wt == WT_LEN and (field == 2 or field == 3):
            p = enter(p, end, &sub_end, depth + 1)
            if p == NULL or parse_kv(p, sub_end, &ev.kv if field == 2 else &ev.prev_kv, depth + 1) == NULL:
                return NULL
            if field == 3:
                ev.has_prev_kv = True
            p = sub_end
        elif wt == WT_VARINT and field == 1:
            p = read_varint(p, end, &v)
            if p == NULL:
                return NULL
            ev.type = <int32_t>v  # an enum is an int32: upb drops the upper bits too
        else:
            p = skip_field(p, end, field, wt, depth)
            if p == NULL:
                return NULL
    return p
