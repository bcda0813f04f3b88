from libc.stdint cimport int64_t

from .records cimport Events


cdef class RevisionTracker:
    cdef int64_t _last
    cpdef void observe(self, int64_t revision)


cdef class WatchCursor:
    cdef int64_t _next
    cdef int64_t _compact
    cdef int64_t _progress
    cdef object _accept_records(self, Events events)
    cdef object _accept_list(self, list events)
