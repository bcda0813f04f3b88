"""Builders for sessions and STMs (Go's clientv3/concurrency).

A *session* is a lease kept alive in the background whose keys live as long
as the process does: the locks, elections and recipes of a session put their
keys with its lease, so a crashed process lets go of them after the TTL.
"""

from __future__ import annotations

import enum
from typing import Any, Callable, Iterable, NamedTuple, Optional, Tuple, Union

from .. import _codec
from ..errors import InvalidArgumentError
from .args import integer, lease_id
from .kv import KeyLike
from .lease import LeaseLike, LeaseSpec
from .request import check_timeout

__all__ = ["session", "stm", "Isolation", "StmSpec", "DEFAULT_SESSION_TTL"]

#: Go's default session TTL, in seconds.
DEFAULT_SESSION_TTL = 60


def session(
    ttl: int = DEFAULT_SESSION_TTL,
    *,
    lease: LeaseLike = 0,
    on_lost: Optional[Callable[[Any], None]] = None,
) -> LeaseSpec:
    """A session: a lease of ``ttl`` seconds (Go's default: 60), granted now and
    kept alive on the client's keep-alive stream until it is closed
    (``close()`` or leaving ``with`` revokes it). ``lease`` adopts an existing
    lease instead of granting one. ``on_lost(session)`` is called if the lease
    is lost (expired, or revoked elsewhere); ``lost``, ``alive`` and ``wait()``
    tell it too. Locks, elections and recipes made from the session
    (``session.mutex(name)``...) put their keys with its lease."""
    integer("session TTL", ttl, low=1)
    if on_lost is not None and not callable(on_lost):
        raise TypeError(f"on_lost must be callable, not {type(on_lost).__name__}")
    return LeaseSpec(ttl, lease_id(lease), True, on_lost)


class Isolation(enum.Enum):
    """The STM's isolation levels (Go's ``concurrency.Isolation``)."""

    SERIALIZABLE_SNAPSHOT = "serializable_snapshot"
    SERIALIZABLE = "serializable"
    REPEATABLE_READS = "repeatable_reads"
    READ_COMMITTED = "read_committed"


class StmSpec(NamedTuple):
    apply: Callable[[Any], Any]
    isolation: Isolation
    prefetch: Tuple[bytes, ...]
    timeout: Optional[float]


def stm(
    apply: Callable[[Any], Any],
    *,
    isolation: Union[Isolation, str] = Isolation.SERIALIZABLE_SNAPSHOT,
    prefetch: Iterable[KeyLike] = (),
    timeout: Optional[float] = None,
) -> StmSpec:
    """Run ``apply(stm)`` as a transaction over etcd, again until it commits.

    ``apply`` reads with ``stm.get(key)`` (bytes or None) and ``stm.rev(key)``
    and writes with ``stm.put(key, value)`` and ``stm.delete(key)``; the writes
    commit in one Txn if nothing ``apply`` read changed meanwhile, as
    ``isolation`` defines it (Go's four levels: ``"serializable_snapshot"``,
    the default, ``"serializable"``, ``"repeatable_reads"``,
    ``"read_committed"``). ``prefetch`` keys are read in one call before
    ``apply`` runs; ``timeout`` bounds the whole run. Returns the commit's
    TxnResult. In the asyncio client ``apply`` may be a coroutine function,
    and ``stm.get``/``stm.rev`` are awaited. ``apply`` may run several times:
    keep side effects out of it.
    """
    if not callable(apply):
        raise TypeError(f"apply must be callable, not {type(apply).__name__}")
    try:
        level = isolation if isinstance(isolation, Isolation) else Isolation(str(isolation).lower())
    except ValueError:
        names = ", ".join(level.value for level in Isolation)
        raise InvalidArgumentError(f"isolation must be one of {names}; got {isolation!r}") from None
    return StmSpec(apply, level, tuple(_codec.keys.to_bytes(k) for k in prefetch), check_timeout(timeout))
