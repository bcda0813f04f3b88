"""Records built on access (Cython twin of ``_pure/records.py``).

``GetResult.kvs``, ``DeleteResult.prev_kvs`` and ``WatchResponse.events`` are
:class:`KeyValues` and :class:`Events`: read-only sequences that keep the
response bytes and, per record, where its submessage lies (16-24 bytes). The
decoder has already checked every byte, with the same C parsers
(messages.pxd) that build a ``KeyValue``/``Event`` tuple here when the record
is indexed or iterated. Why: a 100k-key range used to allocate 100k tuples and
200k ``bytes`` up front and free them again later, cold in the cache, which
cost more than the decoding itself; built on access, each record is made and
dropped while its bytes are still in the cache, and a held result is the
response bytes plus its index (bench/RESULTS.md, "Lazy records", has the
measurements behind this choice).

The records are the same immutable ``NamedTuple`` values as always (equal to
the same data, hashable, picklable) and own their ``bytes``: they outlive the
sequence. The sequences behave like read-only lists: ``len``, indexing,
slicing (a ``list`` of records), iteration both ways, ``in``, ``index``,
``count``, ``+`` with lists, equality with lists and with each other, a list's
``repr``; they pickle as lists. A record is built anew on each access: code that
reads the same records many times can keep ``list(result.kvs)``.
"""

cimport cython
from cpython.long cimport PyLong_FromLong, PyLong_FromLongLong
from cpython.mem cimport PyMem_Free, PyMem_Realloc
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.number cimport PyNumber_Index
from libc.stdint cimport int32_t, int64_t
from libc.string cimport memset

from .buffer cimport cptr

from .buffer cimport read_len
from .messages cimport EventFields, KV, parse_event, parse_kv

from ..errors import ProtocolError
from ..types import Event, EventType, KeyValue, Records

__all__ = ["KeyValues", "Events"]


# -- records ------------------------------------------------------------------

# The last revision ints handed out, one slot per field. Keys written
# together share revisions (a txn of 128 puts gives 128 keys one
# mod_revision, and a key written once has create_revision == mod_revision),
# so reusing the int objects saves up to two allocations per record. Ints are
# immutable: the sharing is invisible.
cdef int64_t _last_create = 0
cdef object _last_create_int = 0
cdef int64_t _last_mod = 0
cdef object _last_mod_int = 0


cdef object kv_fill(object rec, KV* kv):
    """Fill a KeyValue record, fresh (empty slots) or recycled (its old fields go)."""
    global _last_create, _last_create_int, _last_mod, _last_mod_int
    etcdfast_replace_item(rec, 0, PyBytes_FromStringAndSize(<const char*>kv.key, kv.key_len))
    if kv.create_revision != _last_create:
        _last_create_int = PyLong_FromLongLong(kv.create_revision)
        _last_create = kv.create_revision
    if kv.mod_revision == kv.create_revision:
        _last_mod, _last_mod_int = _last_create, _last_create_int
    elif kv.mod_revision != _last_mod:
        _last_mod_int = PyLong_FromLongLong(kv.mod_revision)
        _last_mod = kv.mod_revision
    etcdfast_replace_item(rec, 1, _last_create_int)
    etcdfast_replace_item(rec, 2, _last_mod_int)
    etcdfast_replace_item(rec, 3, PyLong_FromLongLong(kv.version))
    etcdfast_replace_item(rec, 4, PyBytes_FromStringAndSize(<const char*>kv.value, kv.value_len))
    etcdfast_replace_item(rec, 5, PyLong_FromLongLong(kv.c_lease))
    return rec


cdef object kv_record(KV* kv):
    return kv_fill(etcdfast_new_atomic_record(KeyValue, 6), kv)


cdef object _PUT = EventType.PUT
cdef object _DELETE = EventType.DELETE


cdef object _event_type(int32_t number):
    # An unknown number stays a plain int, as protobuf keeps unknown numbers
    # of an open enum (see _pure/watch.py for why that beats failing).
    if number == 0:
        return _PUT
    if number == 1:
        return _DELETE
    return PyLong_FromLong(number)


cdef object _changed():
    # The spans were checked by the decoder with the same parser, on bytes
    # nothing can change: reaching this is a codec bug, not bad input.
    raise ProtocolError("etcdfast codec error: a checked record no longer parses")


# -- the sequences --------------------------------------------------------------


@cython.no_gc  # holds bytes and C memory only: it cannot be part of a cycle
cdef class _Records:
    """What KeyValues and Events share: the bytes, the spans, the list behaviour."""

    def __init__(self, messages=()):
        # Made by the decoders (new_key_values/new_events); constructed from
        # Python it is empty, as the pure twin's is without messages.
        if len(messages):
            raise TypeError(f"{type(self).__name__} is made by etcdfast's decoders")

    def __dealloc__(self):
        PyMem_Free(self._at)
        PyMem_Free(self._revisions)

    cdef int _resize(self, Py_ssize_t cap) except -1:
        cdef Py_ssize_t* at = <Py_ssize_t*>PyMem_Realloc(self._at, cap * sizeof(Py_ssize_t))
        if at == NULL:
            raise MemoryError()
        self._at = at
        cdef int64_t* revisions
        if self._with_revisions:
            revisions = <int64_t*>PyMem_Realloc(self._revisions, cap * sizeof(int64_t))
            if revisions == NULL:
                raise MemoryError()
            self._revisions = revisions
        self._cap = cap
        return 0

    cdef int add(self, cptr field, int64_t revision) except -1:
        """One more record: ``field`` is its submessage's length prefix in the data."""
        if self._n == self._cap:
            self._resize(self._cap * 2 if self._cap else 16)
        self._at[self._n] = field - <cptr>PyBytes_AS_STRING(self._data)
        if self._with_revisions:
            self._revisions[self._n] = revision
        self._n += 1
        return 0

    cdef void trim(self) noexcept:
        """Give back the growth slack once the decoder is done."""
        if self._n and self._n < self._cap:
            try:
                self._resize(self._n)
            except MemoryError:  # keeping the larger arrays is fine
                pass

    cdef cptr _payload(self, Py_ssize_t i, cptr* end) noexcept:
        """Record ``i``'s submessage payload (checked by the decoder)."""
        cdef cptr base = <cptr>PyBytes_AS_STRING(self._data)
        return read_len(base + self._at[i], base + PyBytes_GET_SIZE(self._data), end)

    cdef object build(self, Py_ssize_t i):
        raise NotImplementedError

    cdef object refill(self, Py_ssize_t i, object spare):
        return self.build(i)

    def __len__(self):
        return self._n

    def __getitem__(self, index):
        cdef Py_ssize_t i, n = self._n
        if isinstance(index, slice):
            return [self.build(i) for i in range(*index.indices(n))]
        try:
            i = PyNumber_Index(index)
        except TypeError:
            raise TypeError(f"{type(self).__name__} indices must be integers or slices, "
                            f"not {type(index).__name__}") from None
        except OverflowError:
            raise IndexError(f"{type(self).__name__} index out of range") from None
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"{type(self).__name__} index out of range")
        return self.build(i)

    def __iter__(self):
        cdef _RecordIterator it = _RecordIterator.__new__(_RecordIterator)
        it._records = self
        return it

    def __reversed__(self):
        cdef Py_ssize_t i
        for i in range(self._n - 1, -1, -1):
            yield self.build(i)

    def __contains__(self, value):
        cdef Py_ssize_t i
        for i in range(self._n):
            if self.build(i) == value:
                return True
        return False

    def index(self, value, start=0, stop=None):
        """The first position of ``value`` in ``[start, stop)`` (ValueError if absent), as ``list.index``."""
        cdef Py_ssize_t i
        for i in range(*slice(start, stop).indices(self._n)):
            if self.build(i) == value:
                return i
        raise ValueError(f"{value!r} is not in {type(self).__name__}")

    def count(self, value):
        """How many records equal ``value``, as ``list.count``."""
        cdef Py_ssize_t i, found = 0
        for i in range(self._n):
            if self.build(i) == value:
                found += 1
        return found

    def __eq__(self, other):
        cdef Py_ssize_t i
        if not isinstance(other, (list, Records)):
            return NotImplemented
        if len(other) != self._n:
            return False
        for i, item in enumerate(other):
            if self.build(i) != item:
                return False
        return True

    def __ne__(self, other):
        equal = self.__eq__(other)
        return equal if equal is NotImplemented else not equal

    __hash__ = None  # a list's value semantics: equal to a list, so not hashable

    def __add__(self, other):
        if not isinstance(other, (list, Records)):
            return NotImplemented
        return list(self) + list(other)

    def __radd__(self, other):
        if not isinstance(other, (list, Records)):
            return NotImplemented
        return list(other) + list(self)

    def __repr__(self):
        return repr(list(self))

    def __reduce__(self):
        # A list of the same records: the response bytes stay behind.
        return (list, (list(self),))

    def __sizeof__(self):
        return object.__sizeof__(self) + self._cap * (
            sizeof(Py_ssize_t) + (sizeof(int64_t) if self._with_revisions else 0))


@cython.no_gc
@cython.final
cdef class KeyValues(_Records):
    """The ``KeyValue`` records of a range or delete answer, built on access."""

    cdef object build(self, Py_ssize_t i):
        return self.refill(i, etcdfast_new_atomic_record(KeyValue, 6))

    cdef object refill(self, Py_ssize_t i, object spare):
        cdef KV kv
        cdef cptr end
        cdef cptr p = self._payload(i, &end)
        memset(&kv, 0, sizeof(KV))
        if p == NULL or parse_kv(p, end, &kv, 0) == NULL:
            _changed()
        return kv_fill(spare, &kv)


@cython.no_gc
@cython.final
cdef class Events(_Records):
    """The ``Event`` records of a watch response, built on access."""

    cdef object build(self, Py_ssize_t i):
        cdef EventFields ev
        cdef cptr end
        cdef cptr p = self._payload(i, &end)
        if p == NULL or parse_event(p, end, &ev, 0) == NULL:
            _changed()
        cdef object rec = etcdfast_new_atomic_record(Event, 3)
        set_item(rec, 0, _event_type(ev.type))
        set_item(rec, 1, kv_record(&ev.kv))
        set_item(rec, 2, kv_record(&ev.prev_kv) if ev.has_prev_kv else None)
        return rec

    cdef Events since(self, int64_t first):
        """The events whose revision is ``first`` or later (the watch cursor's filter)."""
        cdef Events out = new_events(self._data)
        cdef cptr base = <cptr>PyBytes_AS_STRING(self._data)
        cdef Py_ssize_t i
        for i in range(self._n):
            if self._revisions[i] >= first:
                out.add(base + self._at[i], self._revisions[i])
        out.trim()
        return out


@cython.no_gc
@cython.final
cdef class _RecordIterator:
    cdef _Records _records
    cdef Py_ssize_t _i
    # The last two records handed out. In ``for kv in kvs``, the loop still
    # holds record i-1 while asking for record i, and has dropped record i-2:
    # when nobody else holds that one either, it is refilled in place instead
    # of freeing a tuple and allocating the next (etcdfast_spare_record).
    cdef object _even
    cdef object _odd

    def __iter__(self):
        return self

    def __next__(self):
        cdef Py_ssize_t i = self._i
        if i >= self._records._n:
            raise StopIteration
        self._i = i + 1
        cdef object spare = self._odd if i & 1 else self._even
        if spare is not None and etcdfast_spare_record(spare, 1):  # 1: the local `spare`
            if type(self._records) is KeyValues:  # a final class: a direct call
                return (<KeyValues>self._records).refill(i, spare)
            return self._records.refill(i, spare)
        if type(self._records) is KeyValues:
            spare = (<KeyValues>self._records).build(i)
        else:
            spare = self._records.build(i)
        if i & 1:
            self._odd = spare
        else:
            self._even = spare
        return spare

    def __length_hint__(self):
        return max(0, self._records._n - self._i)


cdef KeyValues new_key_values(bytes data):
    cdef KeyValues records = KeyValues.__new__(KeyValues)
    records._data = data
    return records


cdef Events new_events(bytes data):
    cdef Events records = Events.__new__(Events)
    records._data = data
    records._with_revisions = True
    return records


Records.register(KeyValues)
Records.register(Events)
