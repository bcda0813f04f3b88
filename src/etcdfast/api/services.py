"""etcd's server-side Lock and Election services (``v3lock``, ``v3election``),
as thin calls.

The server runs the same algorithms as the client-side :class:`~etcdfast.Mutex`
and :class:`~etcdfast.Election` (and takes part in the same locks and
elections: the key layouts are the same), holding the waiting call open
instead of a client watch. They take a lease the caller keeps alive; use a
session's (``session.id``). Cold paths: generated message classes.
"""

from __future__ import annotations

from typing import Any, Optional, Union

from .. import _codec, _schema
from ..errors import EmptyKeyError
from ..types import CampaignResult, KeyValue, LeaderKey, LockResult, ResponseHeader
from .args import lease_id
from .kv import KeyLike
from .lease import LeaseLike, positive_id
from .request import Request, check_timeout

__all__ = [
    "lock", "unlock", "election_campaign", "election_proclaim", "election_leader",
    "election_observe", "election_resign",
]

_LOCK = "/v3lockpb.Lock/"
_ELECTION = "/v3electionpb.Election/"


def _message(message_name: str, **fields: Any) -> bytes:
    return _schema.message(message_name)(**fields).SerializeToString()  # type: ignore[no-any-return]


def _key(name: KeyLike, what: str = "name") -> bytes:
    key: bytes = _codec.keys.to_bytes(name)
    if not key:
        raise EmptyKeyError(f"the {what} must not be empty")
    return key


def _leader(m: Any) -> LeaderKey:
    return LeaderKey(m.name, m.key, m.rev, m.lease)


def _kv(m: Any) -> KeyValue:
    return KeyValue(m.key, m.create_revision, m.mod_revision, m.version, m.value, m.lease)


_decode_lock = _schema.decoder("v3lockpb.LockResponse", lambda m: LockResult(_schema.header(m), m.key))
_decode_unlock = _schema.decoder("v3lockpb.UnlockResponse", _schema.header)
_decode_campaign = _schema.decoder(
    "v3electionpb.CampaignResponse", lambda m: CampaignResult(_schema.header(m), _leader(m.leader))
)
_decode_header = _schema.decoder("v3electionpb.ProclaimResponse", _schema.header)
_decode_resign = _schema.decoder("v3electionpb.ResignResponse", _schema.header)
_decode_leader = _schema.decoder("v3electionpb.LeaderResponse", lambda m: _kv(m.kv))


def lock(name: KeyLike, *, lease: LeaseLike, timeout: Optional[float] = None) -> Request[LockResult]:
    """Acquire the lock ``name`` with ``lease`` on the server (v3lock's Lock),
    waiting while others hold it -- the client's default timeout applies
    unless ``timeout`` says otherwise (``math.inf``: wait as long as it takes).
    Returns the key that holds it; release it with :func:`unlock`."""
    payload = _message("v3lockpb.LockRequest", name=_key(name), lease=positive_id(lease))
    return Request(_LOCK + "Lock", payload, _decode_lock, timeout=check_timeout(timeout))


def unlock(key: Union[KeyLike, LockResult], *, timeout: Optional[float] = None) -> Request[ResponseHeader]:
    """Release a lock taken with :func:`lock` (its ``key``, or the LockResult)."""
    held = key.key if isinstance(key, LockResult) else key
    payload = _message("v3lockpb.UnlockRequest", key=_key(held, "key"))
    return Request(_LOCK + "Unlock", payload, _decode_unlock, repeatable=True, timeout=check_timeout(timeout))


def election_campaign(name: KeyLike, value: KeyLike, *, lease: LeaseLike,
                      timeout: Optional[float] = None) -> Request[CampaignResult]:
    """Campaign in the election ``name`` with ``value`` and ``lease``, waiting
    until elected (the client's default timeout applies unless ``timeout``
    says otherwise). Returns the leadership (a :class:`~etcdfast.types.LeaderKey`)."""
    payload = _message("v3electionpb.CampaignRequest", name=_key(name), lease=positive_id(lease),
                       value=_codec.keys.to_bytes(value))
    return Request(_ELECTION + "Campaign", payload, _decode_campaign, timeout=check_timeout(timeout))


def _leader_message(leader: LeaderKey) -> Any:
    if not isinstance(leader, LeaderKey):
        raise TypeError(f"leader must be the LeaderKey a campaign returned, not {type(leader).__name__}")
    return _schema.message("v3electionpb.LeaderKey")(
        name=leader.name, key=leader.key, rev=leader.rev, lease=lease_id(leader.lease))


def election_proclaim(leader: LeaderKey, value: KeyLike, *,
                      timeout: Optional[float] = None) -> Request[ResponseHeader]:
    """Change the value of a leadership won with :func:`election_campaign`."""
    payload = _message("v3electionpb.ProclaimRequest", leader=_leader_message(leader),
                       value=_codec.keys.to_bytes(value))
    return Request(_ELECTION + "Proclaim", payload, _decode_header, timeout=check_timeout(timeout))


def election_leader(name: KeyLike, *, timeout: Optional[float] = None) -> Request[KeyValue]:
    """The leader of the election ``name`` (its key and value)."""
    payload = _message("v3electionpb.LeaderRequest", name=_key(name))
    return Request(_ELECTION + "Leader", payload, _decode_leader, repeatable=True,
                   timeout=check_timeout(timeout))


def election_observe(name: KeyLike) -> Request[KeyValue]:
    """A stream of the leader's key-value of ``name``, now and at each change
    (the server's Observe; no deadline)."""
    payload = _message("v3electionpb.LeaderRequest", name=_key(name))
    return Request(_ELECTION + "Observe", payload, _decode_leader, repeatable=True, timeout=float("inf"))


def election_resign(leader: LeaderKey, *, timeout: Optional[float] = None) -> Request[ResponseHeader]:
    """Give up a leadership won with :func:`election_campaign`."""
    payload = _message("v3electionpb.ResignRequest", leader=_leader_message(leader))
    return Request(_ELECTION + "Resign", payload, _decode_resign, timeout=check_timeout(timeout))
