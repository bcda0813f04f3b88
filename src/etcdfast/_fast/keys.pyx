"""Key normalisation and range arithmetic (Cython twin of ``_pure/keys.py``)."""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.unicode cimport PyUnicode_AsUTF8String
from libc.string cimport memcpy

from ..errors import EmptyKeyError, InvalidArgumentError

__all__ = ["to_bytes", "prefix_range_end", "resolve_range"]

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
