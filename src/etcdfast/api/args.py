"""Argument checks shared by the request builders.

etcd's integers are int64 (revisions, limits, lease IDs, compare operands)
or uint64 (member IDs). A Python int outside that range cannot be encoded;
without these checks the codec would raise a bare ``OverflowError``. Every
check names the argument, so the caller knows which one was wrong.
"""

from __future__ import annotations

from typing import Optional

from .._core.endpoints import Endpoint
from ..errors import InvalidArgumentError

__all__ = ["INT64_MAX", "UINT64_MAX", "integer", "non_negative", "positive", "lease_id", "member_endpoint"]

INT64_MAX = (1 << 63) - 1
INT64_MIN = -(1 << 63)
UINT64_MAX = (1 << 64) - 1


def integer(name: str, value: object, *, low: int = INT64_MIN, high: int = INT64_MAX) -> int:
    """``value`` as an int in ``[low, high]`` (a bool or a float is a TypeError)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if value < low:
        raise InvalidArgumentError(f"{name} must be >= {low}, got {value}")
    if value > high:
        raise InvalidArgumentError(f"{name} must be <= {high} (etcd's int64 limit), got {value}")
    return value


def non_negative(name: str, value: object) -> int:
    """An int64 ``>= 0``."""
    # The common case, a plain int in range, at a third of integer()'s cost:
    # this runs six times per get. A bool is not ``int`` here; it takes the full check.
    if value.__class__ is int and 0 <= value <= INT64_MAX:
        return value
    return integer(name, value, low=0)


def positive(name: str, value: Optional[int], default: int) -> int:
    """An int64 ``>= 1``, or ``default`` for ``None``."""
    if value is None:
        return default
    return integer(name, value, low=1)


def lease_id(lease: object, *, name: str = "lease") -> int:
    """A lease ID (``>= 0``; 0 means no lease) given as an int or any object with an ``id``."""
    if lease.__class__ is int and 0 <= lease <= INT64_MAX:
        return lease  # the common case: an ID (often 0)
    value = getattr(lease, "id", lease)
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int ID or a Lease, not {type(lease).__name__}")
    return integer(f"{name} ID", value, low=0)


def member_endpoint(endpoint: Optional[str]) -> Optional[str]:
    """The ``endpoint=`` of a call pinned to one member, as ``host:port`` (None: any member).

    Any member's client URL works, not only the client's own endpoints (Go's
    maintenance client dials it with the client's TLS and credentials); the
    scheme follows the client: a TLS client talks TLS to it.
    """
    if endpoint is None:
        return None
    try:
        return Endpoint.parse(endpoint).address
    except ValueError as exc:
        raise InvalidArgumentError(str(exc)) from None
