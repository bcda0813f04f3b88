"""etcd's Lease service as Request builders: grant, revoke, time_to_live, leases.

Cold paths, so the generated message classes from :mod:`etcdfast._schema`
encode and decode. The keep-alive stream shared by a client's leases is
``etcdfast._core.keepalive`` (the schedule) driven by ``_sync.lease`` /
``aio.lease``; :func:`keepalive_request` and :func:`keepalive_answer` are its
wire halves, also used by ``keep_alive_once``.
"""

from __future__ import annotations

from typing import Any, Callable, List, NamedTuple, Optional, Union

from .. import _schema
from ..errors import InvalidArgumentError, LeaseNotFoundError
from ..types import LeaseGrant, LeaseKeepAlive, LeaseTimeToLive, ResponseHeader
from .args import integer, lease_id
from .request import Observer, Request, check_timeout

__all__ = [
    "grant",
    "revoke",
    "time_to_live",
    "leases",
    "keep_alive_once",
    "lease",
    "keep_alive",
    "LeaseSpec",
    "keepalive_request",
    "keepalive_answer",
    "decode_keepalive",
    "positive_id",
    "LeaseLike",
    "KEEPALIVE",
]

GRANT = "/etcdserverpb.Lease/LeaseGrant"
REVOKE = "/etcdserverpb.Lease/LeaseRevoke"
KEEPALIVE = "/etcdserverpb.Lease/LeaseKeepAlive"
TIME_TO_LIVE = "/etcdserverpb.Lease/LeaseTimeToLive"
LEASES = "/etcdserverpb.Lease/LeaseLeases"

LeaseLike = Union[int, Any]  # an ID, or a handle with an ``id``


def positive_id(lease: object) -> int:
    """A lease ID ``> 0`` given as an int or a Lease handle."""
    value = lease_id(lease)
    if value == 0:
        raise InvalidArgumentError("lease ID must be > 0, got 0")
    return value


def _serialize(name: str, **fields: Any) -> bytes:
    return _schema.message(f"etcdserverpb.{name}")(**fields).SerializeToString()  # type: ignore[no-any-return]


# -- unary calls (cold path: generated message classes are fine here) --------

_decode_grant = _schema.decoder(
    "etcdserverpb.LeaseGrantResponse", lambda m: LeaseGrant(_schema.header(m), m.ID, m.TTL)
)
_decode_revoke = _schema.decoder("etcdserverpb.LeaseRevokeResponse", _schema.header)


def _ttl_result(m: Any) -> LeaseTimeToLive:
    if m.TTL == -1:
        # etcd answers an unknown lease with TTL -1 rather than an error.
        raise LeaseNotFoundError(f"lease {m.ID:#x} not found (expired, revoked or never granted)")
    return LeaseTimeToLive(_schema.header(m), m.ID, m.TTL, m.grantedTTL, list(m.keys))


_decode_ttl = _schema.decoder("etcdserverpb.LeaseTimeToLiveResponse", _ttl_result)
_decode_leases = _schema.decoder(
    "etcdserverpb.LeaseLeasesResponse", lambda m: sorted(status.ID for status in m.leases)
)
decode_keepalive = _schema.decoder(
    "etcdserverpb.LeaseKeepAliveResponse", lambda m: LeaseKeepAlive(_schema.header(m), m.ID, m.TTL)
)


def grant(
    ttl: int, id: int = 0, *, timeout: Optional[float] = None,
    require_leader: Optional[bool] = None,
) -> Request[LeaseGrant]:
    """Grant a lease of ``ttl`` seconds (etcd may raise short TTLs to its minimum).

    ``id=0`` lets the server choose the ID. Keys attached to the lease are
    deleted when it expires or is revoked.
    """
    integer("lease TTL", ttl, low=1)
    payload = _serialize("LeaseGrantRequest", TTL=ttl, ID=integer("lease ID", id, low=0))
    # Not repeatable: a retried grant could create a second lease.
    return Request(GRANT, payload, _decode_grant, timeout=check_timeout(timeout),
                   require_leader=require_leader)


def revoke(
    lease: LeaseLike, *, timeout: Optional[float] = None,
    require_leader: Optional[bool] = None,
) -> Request[ResponseHeader]:
    """Revoke a lease now; its keys are deleted. Unknown lease: LeaseNotFoundError."""
    payload = _serialize("LeaseRevokeRequest", ID=positive_id(lease))
    return Request(REVOKE, payload, _decode_revoke, repeatable=True, timeout=check_timeout(timeout),
                   require_leader=require_leader)


def time_to_live(
    lease: LeaseLike, keys: bool = False, *, timeout: Optional[float] = None,
    require_leader: Optional[bool] = None,
) -> Request[LeaseTimeToLive]:
    """Remaining TTL and granted TTL of a lease, with its keys if ``keys=True``."""
    payload = _serialize("LeaseTimeToLiveRequest", ID=positive_id(lease), keys=bool(keys))
    return Request(TIME_TO_LIVE, payload, _decode_ttl, repeatable=True, timeout=check_timeout(timeout),
                   require_leader=require_leader)


def leases(
    *, timeout: Optional[float] = None,
    require_leader: Optional[bool] = None,
) -> Request[List[int]]:
    """IDs of all leases the cluster knows, in ascending order."""
    return Request(LEASES, b"", _decode_leases, repeatable=True, timeout=check_timeout(timeout),
                   require_leader=require_leader)


def keepalive_request(lease: int) -> bytes:
    """A ``LeaseKeepAliveRequest`` for the lease ID ``lease``."""
    return _serialize("LeaseKeepAliveRequest", ID=lease)


def keepalive_answer(data: bytes, tracker: Optional[Observer] = None) -> LeaseKeepAlive:
    """Decode a keep-alive answer; TTL <= 0 means the lease is gone (LeaseNotFoundError)."""
    answer = decode_keepalive(data, tracker)
    if answer.ttl <= 0:
        raise LeaseNotFoundError(f"lease {answer.id:#x} not found (expired, revoked or never granted)")
    return answer


def keep_alive_once(
    lease: LeaseLike, *, timeout: Optional[float] = None,
    require_leader: Optional[bool] = None,
) -> Request[LeaseKeepAlive]:
    """Refresh a lease once (one message on a ``LeaseKeepAlive`` stream); returns
    its new TTL. LeaseNotFoundError if it is gone."""
    payload = keepalive_request(positive_id(lease))
    return Request(KEEPALIVE, payload, keepalive_answer, repeatable=True, timeout=check_timeout(timeout),
                   require_leader=require_leader)


# -- lease handles (the clients' ``lease`` and ``keep_alive`` methods) ---------


class LeaseSpec(NamedTuple):
    """A lease handle to make: granted later (``id`` 0: the server picks) or adopted."""

    ttl: int
    id: int
    keep_alive: bool
    on_lost: Optional[Callable[[Any], None]]


def lease(
    ttl: int,
    *,
    id: int = 0,
    keep_alive: bool = True,
    on_lost: Optional[Callable[[Any], None]] = None,
) -> LeaseSpec:
    """A lease of ``ttl`` seconds: granted by ``with`` (``async with``) or its
    ``grant()``, kept alive in the background unless ``keep_alive=False``, and
    revoked when the block ends. ``on_lost(lease)`` is called if it is *lost*
    (expired, or revoked by someone else) while kept alive; revoking it
    yourself ends it without calling ``on_lost``."""
    integer("lease TTL", ttl, low=1)
    integer("lease ID", id, low=0)
    if on_lost is not None and not callable(on_lost):
        raise TypeError(f"on_lost must be callable, not {type(on_lost).__name__}")
    return LeaseSpec(ttl, id, bool(keep_alive), on_lost)


def keep_alive(lease: LeaseLike, *, on_lost: Optional[Callable[[Any], None]] = None) -> LeaseSpec:
    """Keep an existing lease alive in the background; returns its handle
    (its TTL is read from the server first: LeaseNotFoundError if it is gone)."""
    if on_lost is not None and not callable(on_lost):
        raise TypeError(f"on_lost must be callable, not {type(on_lost).__name__}")
    return LeaseSpec(0, positive_id(lease), True, on_lost)
