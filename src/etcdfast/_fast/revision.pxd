from libc.stdint cimport int64_t


cdef class RevisionTracker:
    cdef int64_t _last
    cpdef void observe(self, int64_t revision)


cdef class WatchCursor:
    cdef int64_t _next
    cdef int64_t _compact
    cdef int64_t _progress
