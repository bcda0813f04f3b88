"""Key normalisation and range arithmetic (pure-Python twin of ``_fast/keys.pyx``).

etcd keys are bytes. ``str`` is accepted as a UTF-8 convenience; nothing is
ever decoded implicitly. A range is ``[key, range_end)``; ``range_end ==
b"\\0"`` means "to the end of the keyspace" and ``key == b"\\0"`` with it
means "every key".
"""

from __future__ import annotations

from typing import Optional, Tuple, Union

from ..errors import EmptyKeyError, InvalidArgumentError

__all__ = ["to_bytes", "prefix_range_end", "resolve_range"]

KeyLike = Union[str, bytes]

_ALL = b"\x00"


def to_bytes(value: KeyLike) -> bytes:
    """``bytes`` unchanged, ``str`` encoded as UTF-8, anything else ``TypeError``."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    raise TypeError(f"etcd keys and values are str or bytes, not {type(value).__name__}")


def prefix_range_end(prefix: bytes) -> bytes:
    """The smallest key greater than every key that starts with ``prefix``.

    Increment the last byte that is not 0xff and drop what follows it; if
    there is none (empty or all-0xff prefix) every key qualifies, which etcd
    spells ``b"\\0"``.
    """
    end = prefix.rstrip(b"\xff")
    if not end:
        return _ALL
    return end[:-1] + bytes((end[-1] + 1,))


def resolve_range(
    key: KeyLike, range_end: Optional[KeyLike], prefix: bool, from_key: bool
) -> Tuple[bytes, bytes]:
    """Turn the user's range options into the ``(key, range_end)`` pair on the wire.

    Raises :class:`EmptyKeyError` for an empty key unless ``prefix`` or
    ``from_key`` makes it mean "all keys", and :class:`InvalidArgumentError`
    when more than one of ``range_end``/``prefix``/``from_key`` is given.
    """
    k = to_bytes(key)
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
