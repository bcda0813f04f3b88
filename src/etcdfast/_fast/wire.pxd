# What wire.pyx shares with the other Cython codec modules (watch.pyx).
#
# ResponseHeader and KeyValue appear in every etcd response, so their C
# parsers and the helpers that write requests live here once. The C-only
# helpers are inline (each module's compiler inlines them into its own loops);
# the record builders need the result types, so they are defined in wire.pyx
# and reached through its C API (``from .wire cimport kv_record``).

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.ref cimport Py_INCREF
from cpython.tuple cimport PyTuple_SET_ITEM
from libc.stdint cimport int64_t, uint32_t, uint64_t

from .buffer cimport (
    MAX_DEPTH, WT_LEN, WT_VARINT, cptr, len_field_size, read_len, read_tag, read_varint, skip_field,
    write_len_field,
)
from .revision cimport RevisionTracker


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


# -- results ------------------------------------------------------------------

cdef extern from "records.h":
    object etcdfast_new_record(object record_type, Py_ssize_t n)
    object etcdfast_new_atomic_record(object record_type, Py_ssize_t n)


cdef inline void set_item(object record, Py_ssize_t i, object value) noexcept:
    """Fill slot ``i`` of a fresh record from records.h."""
    Py_INCREF(value)  # PyTuple_SET_ITEM steals a reference
    PyTuple_SET_ITEM(record, i, value)


cdef object header_record(Header* h)
cdef object kv_record(KV* kv)
cdef object malformed(str name)


cdef inline int feed_tracker(object tracker, int64_t revision) except -1:
    """``tracker.observe(revision)``, without a Python call for our own tracker."""
    if tracker is not None:
        if type(tracker) is RevisionTracker:
            (<RevisionTracker>tracker).observe(revision)
        else:
            tracker.observe(revision)
    return 0


# -- writing requests ---------------------------------------------------------

cdef inline Py_ssize_t opt_len_size(bytes b) noexcept:
    # optional bytes field with a one-byte tag; empty is the default, not written
    cdef Py_ssize_t n = PyBytes_GET_SIZE(b)
    return len_field_size(1, n) if n else 0


cdef inline unsigned char* write_opt_len(unsigned char* p, unsigned char tag, bytes b) noexcept:
    cdef Py_ssize_t n = PyBytes_GET_SIZE(b)
    return write_len_field(p, tag, PyBytes_AS_STRING(b), n) if n else p


cdef inline bytes new_bytes(Py_ssize_t size, unsigned char** out):
    cdef bytes result = PyBytes_FromStringAndSize(NULL, size)
    out[0] = <unsigned char*>PyBytes_AS_STRING(result)
    return result


cdef inline int check_size(unsigned char* p, unsigned char* start, Py_ssize_t size) except -1:
    # The size pass and the write pass must agree; a mismatch is a codec bug,
    # and raising beats handing gRPC a corrupt request.
    if p - start != size:
        raise AssertionError(f"etcdfast codec size mismatch: wrote {p - start} of {size}")
    return 0
