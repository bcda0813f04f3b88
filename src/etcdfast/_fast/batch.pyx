"""Packing ``put_many`` items into Txn batches (Cython twin of ``_pure/batch.py``).

Only the per-item path is compiled. ``Batch`` and the errors for bad items
(cold paths) are the pure twin's own objects, imported, so the twins cannot
disagree on them.
"""

from cpython.bytes cimport PyBytes_GET_SIZE
from cpython.list cimport PyList_GET_SIZE
from cpython.long cimport PyLong_AsSsize_t
from cpython.tuple cimport PyTuple_GET_ITEM, PyTuple_GET_SIZE
from libc.stdint cimport int64_t

from .buffer cimport int_field_size, len_field_size

from .._pure.batch import Batch, _in_range, _not_a_pair, _rejected
from .keys import to_bytes
from .wire import encode_put_txn

__all__ = ["Batch", "BatchPacker"]


cdef inline Py_ssize_t _item_size(Py_ssize_t key_len, Py_ssize_t value_len,
                                  Py_ssize_t lease_size) noexcept nogil:
    # See the pure twin's _item_size: the same bytes, counted with buffer.pxd.
    cdef Py_ssize_t put = lease_size
    if key_len:
        put += len_field_size(1, key_len)
    if value_len:
        put += len_field_size(1, value_len)
    return len_field_size(1, len_field_size(1, put))


cdef inline bytes _exact_bytes(object value):
    # str -> UTF-8, a bytes subclass -> a plain copy, anything else the keys
    # twin's TypeError: what the pure twin's bytes(to_bytes(value)) does.
    cdef object b = to_bytes(value)
    return <bytes>b if type(b) is bytes else bytes(b)


cdef class BatchPacker:
    """See ``_pure/batch.py``."""

    cdef readonly int64_t batch_ops
    cdef readonly int64_t max_batch_bytes
    cdef readonly int64_t lease
    cdef readonly Py_ssize_t index
    cdef Py_ssize_t _lease_size
    cdef dict _keys
    cdef list _items
    cdef int64_t _size
    cdef Py_ssize_t _after
    cdef Py_ssize_t _seq
    # _seq as one int object, the value of every key of the batch being
    # filled: no int is made per item, and "is this key in the current batch"
    # is a pointer comparison (no other batch has an equal seq).
    cdef object _seq_int
    cdef Py_ssize_t _start

    def __init__(self, batch_ops, max_batch_bytes, lease):
        self.batch_ops = _in_range("batch_ops", batch_ops, 1)
        self.max_batch_bytes = _in_range("max_batch_bytes", max_batch_bytes, 1)
        self.lease = _in_range("lease ID", lease, 0)
        self._lease_size = int_field_size(self.lease)
        self._keys = {}
        self._items = []
        self._size = 0
        self._after = -1
        self._seq = 0
        self._seq_int = 0
        self._start = 0
        self.index = 0

    def item_size(self, key, value):
        """See ``_pure/batch.py``."""
        return _item_size(len(key), len(value), self._lease_size)

    def add(self, item):
        """See ``_pure/batch.py``."""
        return self._add(item)

    def fill(self, source):
        """See ``_pure/batch.py``."""
        cdef object batch
        for item in source:
            batch = self._add(item)
            if batch is not None:
                return batch
        return None

    cdef object _add(self, object item):
        cdef Py_ssize_t index = self.index
        cdef object key, value, owner, batch = None
        cdef bytes k, v
        cdef Py_ssize_t n, seq
        if type(item) is tuple and PyTuple_GET_SIZE(item) == 2:
            key = <object>PyTuple_GET_ITEM(item, 0)
            value = <object>PyTuple_GET_ITEM(item, 1)
        else:
            try:
                key, value = item
            except (TypeError, ValueError) as exc:
                raise _not_a_pair(index, item, exc) from exc
        k = <bytes>key if type(key) is bytes else _exact_bytes(key)
        v = <bytes>value if type(value) is bytes else _exact_bytes(value)
        n = _item_size(PyBytes_GET_SIZE(k), PyBytes_GET_SIZE(v), self._lease_size)
        if PyBytes_GET_SIZE(k) == 0 or n > self.max_batch_bytes:
            raise _rejected(index, k, n, self.max_batch_bytes)
        owner = self._keys.get(k)
        if (
            owner is self._seq_int
            or PyList_GET_SIZE(self._items) >= self.batch_ops
            or self._size + n > self.max_batch_bytes
        ):
            batch = self._cut()
        if owner is not None and owner is not self._seq_int:
            seq = PyLong_AsSsize_t(owner)
            if seq > self._after:
                self._after = seq
        self._keys[k] = self._seq_int
        # An exact tuple of exact bytes is already the (k, v) pair to keep.
        self._items.append(item if k is key and v is value and type(item) is tuple else (k, v))
        self._size += n
        self.index = index + 1
        return batch

    def flush(self):
        """See ``_pure/batch.py``."""
        return self._cut() if self._items else None

    cdef object _cut(self):
        cdef list items = self._items
        batch = Batch(self._seq_int, self._start, self.index, encode_put_txn(items, self.lease), items,
                      self._after)
        self._seq += 1
        self._seq_int = self._seq
        self._start = self.index
        self._items = []
        self._size = 0
        self._after = -1
        return batch

    def release(self, batch):
        """See ``_pure/batch.py``."""
        items = batch.items
        batch.items = None
        if not items:
            return
        cdef dict keys = self._keys
        cdef object seq = batch.seq, owner
        for k, _ in items:
            owner = keys.get(k)
            # Our own batches hold the very int stored in the index: compare
            # pointers first, values only for a Batch made elsewhere.
            if owner is seq or (owner is not None and owner == seq):
                del keys[k]
