# What wire.pyx shares with the other Cython codec modules (watch.pyx).
#
# The header record and the helpers that write requests live here once (the
# message parsers are in messages.pxd, the record builders in records.pxd).
# The C-only helpers are inline (each module's compiler inlines them into its
# own loops); header_record and malformed are reached through wire's C API.

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from libc.stdint cimport int64_t, uint64_t

from .buffer cimport cptr, len_field_size, write_len_field
from .messages cimport Header
from .revision cimport RevisionTracker


# -- results ------------------------------------------------------------------

cdef object header_record(Header* h)
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
