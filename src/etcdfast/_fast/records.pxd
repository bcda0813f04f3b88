# What records.pyx shares with the other Cython codec modules.
#
# The record builders (one KeyValue or Event tuple from its parsed fields) and
# the lazy sequences that GetResult.kvs, DeleteResult.prev_kvs and
# WatchResponse.events are: a decoder checks the whole response once, then
# keeps the response bytes and where each record's submessage lies; a record
# is built from those bytes when it is indexed or iterated. This module
# imports no other codec module, so wire, watch and revision can all cimport it.

from cpython.ref cimport Py_INCREF
from cpython.tuple cimport PyTuple_SET_ITEM
from libc.stdint cimport int64_t

from .buffer cimport cptr
from .messages cimport KV


cdef extern from "records.h":
    object etcdfast_new_record(object record_type, Py_ssize_t n)
    object etcdfast_new_atomic_record(object record_type, Py_ssize_t n)
    void etcdfast_replace_item(object record, Py_ssize_t i, object value)
    bint etcdfast_spare_record(object record, Py_ssize_t held)


cdef inline void set_item(object record, Py_ssize_t i, object value) noexcept:
    """Fill slot ``i`` of a fresh record from records.h."""
    Py_INCREF(value)  # PyTuple_SET_ITEM steals a reference
    PyTuple_SET_ITEM(record, i, value)


cdef object kv_record(KV* kv)


cdef class _Records:
    cdef bytes _data  # the response: keeps every record's bytes alive
    # Per record, where its submessage's length prefix is in _data (8 bytes a
    # record: a 100k-key range holds 0.8 MB beside its 16 MB of bytes).
    cdef Py_ssize_t* _at
    # Events only (NULL in KeyValues): each event's revision, which the watch
    # cursor reads without building records.
    cdef int64_t* _revisions
    cdef bint _with_revisions
    cdef Py_ssize_t _n
    cdef Py_ssize_t _cap
    cdef int _resize(self, Py_ssize_t cap) except -1
    cdef int add(self, cptr field, int64_t revision) except -1
    cdef void trim(self) noexcept
    cdef cptr _payload(self, Py_ssize_t i, cptr* end) noexcept
    cdef object build(self, Py_ssize_t i)
    cdef object refill(self, Py_ssize_t i, object spare)


cdef class KeyValues(_Records):
    pass


cdef class Events(_Records):
    cdef Events since(self, int64_t first)


cdef KeyValues new_key_values(bytes data)
cdef Events new_events(bytes data)
