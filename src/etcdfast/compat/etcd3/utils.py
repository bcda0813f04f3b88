"""python-etcd3's ``etcd3.utils`` helpers (and etcd-sdk-python's ``prefix_range_end``)."""

from __future__ import annotations

from typing import Any, Iterable, Iterator, Union

from ... import _codec

__all__ = ["increment_last_byte", "prefix_range_end", "to_bytes", "lease_to_id", "response_to_event_iterator"]


def increment_last_byte(byte_string: bytes) -> bytes:
    """``byte_string`` with its last byte plus one (python-etcd3's prefix end).

    ``ValueError`` when the last byte is 0xff; use :func:`prefix_range_end`,
    which is right for every prefix.
    """
    s = bytearray(byte_string)
    s[-1] = s[-1] + 1
    return bytes(s)


def prefix_range_end(prefix: bytes) -> bytes:
    """The range end that covers exactly the keys starting with ``prefix``.

    Trailing 0xff bytes are carried over, and an all-0xff (or empty) prefix
    gives ``b"\\0"``, etcd's "to the end of the keyspace" (etcd-sdk-python
    returned the prefix itself there, an empty range).
    """
    return _codec.keys.prefix_range_end(bytes(prefix))


def to_bytes(maybe_bytestring: Union[str, bytes]) -> bytes:
    """``bytes`` unchanged, anything else ``.encode("utf-8")``."""
    if isinstance(maybe_bytestring, bytes):
        return maybe_bytestring
    return maybe_bytestring.encode("utf-8")


def lease_to_id(lease: Any) -> int:
    """The ID of a Lease (anything with ``.id``) or of an int-like; 0 for ``None``."""
    lease_id = 0
    if hasattr(lease, "id"):
        lease_id = lease.id
    else:
        try:
            lease_id = int(lease)
        except TypeError:
            pass
    return lease_id


def response_to_event_iterator(response_iterator: Iterable[Any]) -> Iterator[Any]:
    """The events of each watch response, one by one."""
    for response in response_iterator:
        yield from response.events
