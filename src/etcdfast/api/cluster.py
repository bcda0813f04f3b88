"""Cluster membership: list, add, remove, update and promote members.

Builders return :class:`~etcdfast.api.request.Request` objects that both
``Client`` and ``AsyncClient`` execute (``client.member_list()``...). These
are cold calls, so they use the generated message classes from
:mod:`etcdfast._schema`.

Retry safety follows Go's clientv3: ``member_list`` is repeatable; adding,
removing, updating and promoting are not (a repeated ``member_add`` could
add a second member), so they are retried only when the request provably
never left the client.

Membership rules worth knowing (enforced by the server, which answers with a
typed error): with etcd's default ``--strict-reconfig-check`` a *voting*
member can only be added while the started members still make a quorum of
the grown cluster (:class:`~etcdfast.errors.NotEnoughStartedMembersError`;
etcd makes one exception, a second member for a 1-member cluster, which
loses quorum until the new member starts). A learner can always be added --
it does not vote -- and is the safe way to grow a cluster. A learner is
promoted only once its log has caught up with the leader's
(:class:`~etcdfast.errors.LearnerNotReadyError` until then: retry). Adding or
removing members is refused with :class:`~etcdfast.errors.UnhealthyClusterError`
until the answering member has been connected to its voting peers for etcd's
health interval (5 s), e.g. just after a member joined: retry later.
"""

from __future__ import annotations

from typing import Any, Iterable, List, Optional, Union

from .. import _schema
from ..errors import InvalidArgumentError
from ..types import Member, MemberAddResult, MemberListResult
from .request import Request, check_timeout

__all__ = [
    "member_list",
    "member_add",
    "member_remove",
    "member_update",
    "member_promote",
    "MemberLike",
]

MEMBER_ADD = "/etcdserverpb.Cluster/MemberAdd"
MEMBER_REMOVE = "/etcdserverpb.Cluster/MemberRemove"
MEMBER_UPDATE = "/etcdserverpb.Cluster/MemberUpdate"
MEMBER_LIST = "/etcdserverpb.Cluster/MemberList"
MEMBER_PROMOTE = "/etcdserverpb.Cluster/MemberPromote"

#: A member ID, or anything with an ``id`` (a :class:`~etcdfast.types.Member`).
MemberLike = Union[int, Member]

_MAX_ID = (1 << 64) - 1


def member_id(member: object) -> int:
    """The uint64 ID of a member given as an int or a ``Member``."""
    value = getattr(member, "id", member)
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"member must be an int ID or a Member, not {type(member).__name__}")
    if not 0 < value <= _MAX_ID:
        raise InvalidArgumentError(f"member ID must be a uint64 > 0, got {value}")
    return value


def _urls(urls: Union[str, Iterable[str]]) -> List[str]:
    # A single string is one URL, not an iterable of characters.
    items = [urls] if isinstance(urls, str) else list(urls)
    if not items:
        raise InvalidArgumentError("at least one peer URL is needed")
    for url in items:
        if not isinstance(url, str):
            raise TypeError(f"peer URLs must be str, not {type(url).__name__}")
    # Whether a URL is well-formed is the server's call (it answers
    # MemberBadURLsError): its rules are the authoritative ones.
    return items


def _serialize(name: str, **fields: Any) -> bytes:
    return _schema.message(f"etcdserverpb.{name}")(**fields).SerializeToString()  # type: ignore[no-any-return]


def _member(m: Any) -> Member:
    return Member(m.ID, m.name, list(m.peerURLs), list(m.clientURLs), m.isLearner)


def _members(m: Any) -> MemberListResult:
    return MemberListResult(_schema.header(m), [_member(x) for x in m.members])


_decode_list = _schema.decoder("etcdserverpb.MemberListResponse", _members)
_decode_remove = _schema.decoder("etcdserverpb.MemberRemoveResponse", _members)
_decode_update = _schema.decoder("etcdserverpb.MemberUpdateResponse", _members)
_decode_promote = _schema.decoder("etcdserverpb.MemberPromoteResponse", _members)
_decode_add = _schema.decoder(
    "etcdserverpb.MemberAddResponse",
    lambda m: MemberAddResult(_schema.header(m), _member(m.member), [_member(x) for x in m.members]),
)


def member_list(
    linearizable: bool = False, *, timeout: Optional[float] = None
) -> Request[MemberListResult]:
    """All members of the cluster, as the answering member knows them.

    ``linearizable=True`` (etcd >= 3.5) makes the member confirm its view
    with the leader first, so a just-finished membership change is seen.
    """
    payload = _serialize("MemberListRequest", linearizable=bool(linearizable))
    return Request(MEMBER_LIST, payload, _decode_list, repeatable=True, timeout=check_timeout(timeout))


def member_add(
    peer_urls: Union[str, Iterable[str]],
    is_learner: bool = False,
    *,
    timeout: Optional[float] = None,
) -> Request[MemberAddResult]:
    """Add a member that will listen on ``peer_urls``; start it afterwards with
    ``--initial-cluster-state existing``.

    ``is_learner=True`` adds a non-voting learner, which catches up without
    affecting quorum and can then be promoted with :func:`member_promote`.
    Returns the new member (with an empty name until it starts) and the full
    member list. Errors: :class:`~etcdfast.errors.MemberBadURLsError`,
    :class:`~etcdfast.errors.PeerURLExistsError`,
    :class:`~etcdfast.errors.NotEnoughStartedMembersError`,
    :class:`~etcdfast.errors.TooManyLearnersError`.
    """
    payload = _serialize("MemberAddRequest", peerURLs=_urls(peer_urls), isLearner=bool(is_learner))
    return Request(MEMBER_ADD, payload, _decode_add, timeout=check_timeout(timeout))


def member_remove(member: MemberLike, *, timeout: Optional[float] = None) -> Request[MemberListResult]:
    """Remove a member (by ID or ``Member``); returns the remaining members.

    An unknown ID raises :class:`~etcdfast.errors.MemberNotFoundError`. The
    removed member's etcd process shuts itself down once it learns of it.
    """
    payload = _serialize("MemberRemoveRequest", ID=member_id(member))
    return Request(MEMBER_REMOVE, payload, _decode_remove, timeout=check_timeout(timeout))


def member_update(
    member: MemberLike,
    peer_urls: Union[str, Iterable[str]],
    *,
    timeout: Optional[float] = None,
) -> Request[MemberListResult]:
    """Replace a member's peer URLs; returns the members after the change."""
    payload = _serialize("MemberUpdateRequest", ID=member_id(member), peerURLs=_urls(peer_urls))
    return Request(MEMBER_UPDATE, payload, _decode_update, timeout=check_timeout(timeout))


def member_promote(member: MemberLike, *, timeout: Optional[float] = None) -> Request[MemberListResult]:
    """Turn a learner into a voting member; returns the members after the change.

    :class:`~etcdfast.errors.LearnerNotReadyError` while the learner is still
    catching up (retry later); :class:`~etcdfast.errors.MemberNotLearnerError`
    if it already votes.
    """
    payload = _serialize("MemberPromoteRequest", ID=member_id(member))
    return Request(MEMBER_PROMOTE, payload, _decode_promote, timeout=check_timeout(timeout))
