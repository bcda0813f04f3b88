"""Key normalisation and range arithmetic (pure-Python twin of ``_fast/keys.pyx``).

etcd keys are bytes. ``str`` is accepted as a UTF-8 convenience; nothing is
ever decoded implicitly. A range is ``[key, range_end)``; ``range_end ==
b"\\0"`` means "to the end of the keyspace" and ``key == b"\\0"`` with it
means "every key".
"""

from __future__ import annotations

from typing import Optional, Tuple, Union

from ..errors import EmptyKeyError, InvalidArgumentError, ProtocolError

__all__ = ["to_bytes", "prefix_range_end", "resolve_range", "prefix_request"]

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


# -- namespaces: the same request, with every key under a prefix ----------------
# Go's ``namespace`` package rewrites ops before they are encoded; ours are
# encoded when built, so the rewrite walks the encoded request instead. Every
# field is copied as it is but the keys (``prefix + key``) and range ends
# (``prefix + end``; b"\0", "to the end of the keyspace", becomes the end of
# the prefix's range; an absent or empty end stays as it is: one key), and the
# txn's compares and ops, which are rewritten the same way, recursively.
# Malformed bytes raise ProtocolError: tags and lengths are at most 5 bytes,
# other varints 10, groups and wire types 6/7 are refused, nesting stops at 100.

# Message kinds: the RequestOp field numbers 1-4, then RequestOp and Compare.
_REQUEST_OP, _COMPARE = 5, 6
#: kind -> (key field, range_end field, {field: kind of the submessage}); 0: none.
_LAYOUT = {
    1: (1, 2, {}),  # RangeRequest
    2: (1, 0, {}),  # PutRequest
    3: (1, 2, {}),  # DeleteRangeRequest
    4: (0, 0, {1: _COMPARE, 2: _REQUEST_OP, 3: _REQUEST_OP}),  # TxnRequest
    _REQUEST_OP: (0, 0, {1: 1, 2: 2, 3: 3, 4: 4}),
    _COMPARE: (3, 64, {}),
}
_MAX_DEPTH = 100


def _read_varint(data: bytes, pos: int, max_bytes: int, what: str = "request") -> Tuple[int, int]:
    """The varint at ``pos`` (at most ``max_bytes`` long) and the position after it."""
    result = shift = 0
    for _ in range(max_bytes):
        if pos >= len(data):
            break
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7
    raise ProtocolError(f"malformed {what}: bad varint")


_ONE_BYTE = [bytes((i,)) for i in range(128)]


def _varint(value: int) -> bytes:
    """Unsigned LEB128 of ``value`` (negative int64 as its 64-bit two's complement)."""
    if 0 <= value < 0x80:
        return _ONE_BYTE[value]
    if value < 0:
        value += 1 << 64
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)



def _len_field(field: int, data: bytes) -> bytes:
    return _varint(field << 3 | 2) + _varint(len(data)) + data


def _prefixed(kind: int, data: bytes, prefix: bytes, prefix_end: bytes, depth: int) -> bytes:
    if depth > _MAX_DEPTH:
        raise ProtocolError("malformed request: nested too deeply")
    key_field, end_field, submessages = _LAYOUT[kind]
    out = []
    key_written = key_field == 0
    pos, size = 0, len(data)
    while pos < size:
        start = pos
        tag, pos = _read_varint(data, pos, 5)
        field, wire_type = tag >> 3, tag & 7
        if field == 0 or tag > 0xFFFFFFFF:
            raise ProtocolError("malformed request: bad tag")
        if not key_written and field > key_field:  # an absent key is the empty key
            out.append(_len_field(key_field, prefix))
            key_written = True
        if wire_type == 2:
            length, pos = _read_varint(data, pos, 5)
            if length > size - pos:
                raise ProtocolError("malformed request: truncated field")
            value = data[pos:pos + length]
            pos += length
            if field == key_field:
                out.append(_len_field(field, prefix + value))
                key_written = True
            elif field == end_field and value:
                out.append(_len_field(field, prefix_end if value == b"\0" else prefix + value))
            elif field in submessages:
                inner = _prefixed(submessages[field], value, prefix, prefix_end, depth + 1)
                out.append(_len_field(field, inner))
            else:
                out.append(data[start:pos])
            continue
        if wire_type == 0:
            _, pos = _read_varint(data, pos, 10)
        elif wire_type == 1 or wire_type == 5:
            pos += 8 if wire_type == 1 else 4
            if pos > size:
                raise ProtocolError("malformed request: truncated field")
        else:
            raise ProtocolError(f"malformed request: wire type {wire_type}")
        out.append(data[start:pos])
    if not key_written:
        out.append(_len_field(key_field, prefix))
    return b"".join(out)


def prefix_request(kind: int, payload: bytes, prefix: bytes) -> bytes:
    """``payload`` -- an encoded RangeRequest (``kind`` 1), PutRequest (2),
    DeleteRangeRequest (3), TxnRequest (4) or Compare (6) -- with every key
    and range end moved under ``prefix`` (see the comment above)."""
    if type(payload) is not bytes or type(prefix) is not bytes:
        raise TypeError("payload and prefix must be bytes")
    if kind not in _LAYOUT or kind == _REQUEST_OP:
        raise ValueError(f"unknown request kind {kind}")
    return _prefixed(kind, payload, prefix, prefix_range_end(prefix), 0)
