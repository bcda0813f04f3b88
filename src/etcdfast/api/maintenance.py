"""Maintenance: status, defragment, alarms, hashes, leader transfer, snapshots.

Builders of what both clients execute: :class:`~etcdfast.api.request.Request`
objects decoded with the generated message classes (cold paths), a plan of
several calls for :func:`alarm_disarm`, and a :class:`SnapshotPlan` (the
stream and the file) for :func:`snapshot` -- the file writing itself is
``etcdfast._core.snapshot``. Maintenance calls act on *the member that
answers*: pass ``endpoint="host:port"`` to address one member (Go's
maintenance client does the same), e.g. to defragment every member in turn.
"""

from __future__ import annotations

import math
import os
from typing import Any, Callable, List, NamedTuple, Optional, Union

from .. import _schema
from ..errors import InvalidArgumentError
from ..types import (
    Alarm,
    AlarmType,
    DefragmentResult,
    HashKVResult,
    HashResult,
    MoveLeaderResult,
    StatusResult,
)
from .args import member_endpoint, non_negative
from .cluster import member_id as _member_id
from .plan import Plan, Steps
from .request import Request, SlowRequest, check_timeout

__all__ = [
    "status",
    "defragment",
    "alarms",
    "alarm_activate",
    "alarm_disarm",
    "alarm_disarm_one",
    "hash",
    "hash_kv",
    "move_leader",
    "snapshot",
    "SnapshotPlan",
    "SNAPSHOT",
]

ALARM = "/etcdserverpb.Maintenance/Alarm"
STATUS = "/etcdserverpb.Maintenance/Status"
DEFRAGMENT = "/etcdserverpb.Maintenance/Defragment"
HASH = "/etcdserverpb.Maintenance/Hash"
HASH_KV = "/etcdserverpb.Maintenance/HashKV"
SNAPSHOT = "/etcdserverpb.Maintenance/Snapshot"
MOVE_LEADER = "/etcdserverpb.Maintenance/MoveLeader"

# AlarmRequest.AlarmAction
_GET, _ACTIVATE, _DEACTIVATE = 0, 1, 2

ProgressCallback = Callable[[int, int], Any]


def _serialize(name: str, **fields: Any) -> bytes:
    return _schema.message(f"etcdserverpb.{name}")(**fields).SerializeToString()  # type: ignore[no-any-return]


def _alarm_type(alarm: Union[AlarmType, int]) -> AlarmType:
    if isinstance(alarm, bool) or not isinstance(alarm, int):
        raise TypeError(f"alarm must be an AlarmType, not {type(alarm).__name__}")
    try:
        return AlarmType(alarm)
    except ValueError:
        raise InvalidArgumentError(f"unknown alarm type {alarm}") from None


def _alarm_of(raw: Any) -> Alarm:
    try:
        kind = AlarmType(raw.alarm)
    except ValueError:  # an alarm type newer than this client: keep the number
        kind = raw.alarm
    return Alarm(raw.memberID, kind)


# -- unary calls ----------------------------------------------------------------

_decode_status = _schema.decoder(
    "etcdserverpb.StatusResponse",
    lambda m: StatusResult(
        _schema.header(m), m.version, m.dbSize, m.leader, m.raftIndex, m.raftTerm,
        m.raftAppliedIndex, list(m.errors), m.dbSizeInUse, m.isLearner,
    ),
)
_decode_defragment = _schema.decoder(
    "etcdserverpb.DefragmentResponse", lambda m: DefragmentResult(_schema.header(m))
)
_decode_alarms = _schema.decoder(
    "etcdserverpb.AlarmResponse", lambda m: [_alarm_of(a) for a in m.alarms]
)
_decode_hash = _schema.decoder(
    "etcdserverpb.HashResponse", lambda m: HashResult(_schema.header(m), m.hash)
)
_decode_hash_kv = _schema.decoder(
    "etcdserverpb.HashKVResponse",
    lambda m: HashKVResult(_schema.header(m), m.hash, m.compact_revision),
)
_decode_move_leader = _schema.decoder(
    "etcdserverpb.MoveLeaderResponse", lambda m: MoveLeaderResult(_schema.header(m))
)


def status(*, endpoint: Optional[str] = None, timeout: Optional[float] = None) -> Request[StatusResult]:
    """Version, leader, raft indexes, database size and errors of the answering
    member, or of the member at ``endpoint`` (``"host:port"``)."""
    return Request(STATUS, b"", _decode_status, repeatable=True, timeout=check_timeout(timeout),
                   endpoint=member_endpoint(endpoint))


def defragment(
    *, endpoint: Optional[str] = None, timeout: Optional[float] = None
) -> Request[DefragmentResult]:
    """Defragment a member's backend (the one at ``endpoint``, or the one that
    answers), giving free pages back to the OS.

    The member blocks reads and writes while it runs (seconds to minutes for a
    large database): defragment members one at a time, each by its
    ``endpoint``. The client's default timeout does not apply: without
    ``timeout=`` the call may take 15 minutes.
    """
    return SlowRequest(DEFRAGMENT, b"", _decode_defragment, timeout=check_timeout(timeout),
                       endpoint=member_endpoint(endpoint))


def alarms(*, endpoint: Optional[str] = None, timeout: Optional[float] = None) -> Request[List[Alarm]]:
    """The active alarms of the whole cluster (empty when all is well), as the
    member at ``endpoint`` (default: any) knows them."""
    payload = _serialize("AlarmRequest", action=_GET)
    return Request(ALARM, payload, _decode_alarms, repeatable=True, timeout=check_timeout(timeout),
                   endpoint=member_endpoint(endpoint))


def alarm_activate(
    member_id: int, alarm: Union[AlarmType, int], *, endpoint: Optional[str] = None,
    timeout: Optional[float] = None,
) -> Request[List[Alarm]]:
    """Raise ``alarm`` on a member, as etcd itself does when it runs out of space
    (``NOSPACE``: writes are refused) or finds corruption. Meant for tests and
    tools; clear it with ``alarm_disarm``. ``endpoint`` picks the member the
    request goes to (default: any)."""
    kind = _alarm_type(alarm)
    if kind == AlarmType.NONE:
        raise InvalidArgumentError("cannot activate AlarmType.NONE")
    payload = _serialize("AlarmRequest", action=_ACTIVATE, memberID=_member_id(member_id), alarm=kind)
    return Request(ALARM, payload, _decode_alarms, repeatable=True, timeout=check_timeout(timeout),
                   endpoint=member_endpoint(endpoint))


def alarm_disarm_one(
    member_id: int, alarm: Union[AlarmType, int], *, endpoint: Optional[str] = None,
    timeout: Optional[float] = None,
) -> Request[List[Alarm]]:
    """Clear exactly one alarm: ``alarm`` on ``member_id``; answers the alarms cleared."""
    kind = _alarm_type(alarm)
    payload = _serialize("AlarmRequest", action=_DEACTIVATE, memberID=_member_id(member_id), alarm=kind)
    # Repeatable, as in Go: clearing an alarm twice changes nothing.
    return Request(ALARM, payload, _decode_alarms, repeatable=True, timeout=check_timeout(timeout),
                   endpoint=member_endpoint(endpoint))


def alarm_disarm(
    member_id: int = 0,
    alarm: Union[AlarmType, int] = AlarmType.NONE,
    *,
    endpoint: Optional[str] = None,
    timeout: Optional[float] = None,
) -> "Plan[List[Alarm]]":
    """Clear alarms; returns the ones cleared.

    ``member_id=0`` means every member and ``AlarmType.NONE`` every alarm
    type, so the defaults clear all active alarms (as Go's ``AlarmDisarm``
    with an empty member does); the active alarms are listed first then.
    ``endpoint`` picks the member the requests go to (default: any).
    """
    member = 0 if member_id == 0 else _member_id(member_id)
    kind = _alarm_type(alarm)
    check_timeout(timeout)
    member_endpoint(endpoint)
    return Plan(_alarm_disarm_steps(member, kind, endpoint, timeout))


def _alarm_disarm_steps(
    member: int, kind: AlarmType, endpoint: Optional[str], timeout: Optional[float]
) -> "Steps[List[Alarm]]":
    if member and kind != AlarmType.NONE:
        targets = [Alarm(member, kind)]
    else:
        active: List[Alarm] = yield alarms(endpoint=endpoint, timeout=timeout)
        targets = [a for a in active
                   if member in (0, a.member_id) and kind in (AlarmType.NONE, a.alarm)]
    cleared: List[Alarm] = []
    for target in targets:
        cleared += yield alarm_disarm_one(target.member_id, target.alarm, endpoint=endpoint, timeout=timeout)
    return cleared


def hash(*, endpoint: Optional[str] = None, timeout: Optional[float] = None) -> Request[HashResult]:
    """Hash of a member's whole backend (the one at ``endpoint``, or the one
    that answers; for debugging: members differ).

    To compare members' data, use :func:`hash_kv` at one revision instead.
    """
    return Request(HASH, b"", _decode_hash, repeatable=True, timeout=check_timeout(timeout),
                   endpoint=member_endpoint(endpoint))


def hash_kv(
    revision: int = 0, *, endpoint: Optional[str] = None, timeout: Optional[float] = None
) -> Request[HashKVResult]:
    """Hash of a member's key-value history up to ``revision`` (0: the current
    one); ``endpoint`` picks the member (default: the one that answers).

    Healthy members answer the same hash for the same revision (and the same
    ``compact_revision``); a compacted revision raises CompactedError.
    """
    payload = _serialize("HashKVRequest", revision=non_negative("revision", revision))
    return Request(HASH_KV, payload, _decode_hash_kv, repeatable=True, timeout=check_timeout(timeout),
                   endpoint=member_endpoint(endpoint))


def move_leader(
    target_id: int, *, endpoint: Optional[str] = None, timeout: Optional[float] = None
) -> Request[MoveLeaderResult]:
    """Hand leadership to the voting member ``target_id``.

    Must reach the current leader (else :class:`~etcdfast.errors.NotLeaderError`):
    pass the leader's ``endpoint`` (``status(endpoint=...).leader`` tells which
    member leads). A learner or unknown target raises
    :class:`~etcdfast.errors.BadLeaderTransfereeError`; moving it to the leader
    itself succeeds at once.
    """
    payload = _serialize("MoveLeaderRequest", targetID=_member_id(target_id))
    # The leader waits for the target to catch up: not bound by the client's
    # default timeout (15 minutes unless timeout= says otherwise).
    return SlowRequest(MOVE_LEADER, payload, _decode_move_leader, repeatable=True,
                       timeout=check_timeout(timeout), endpoint=member_endpoint(endpoint))


# -- snapshots ---------------------------------------------------------------


class SnapshotPlan(NamedTuple):
    """A snapshot to save: the stream to read and the file to write (see
    ``etcdfast._core.snapshot.SnapshotWriter``)."""

    request: "Request[None]"
    path: str
    progress: Optional[ProgressCallback]


def _raw(data: bytes, tracker: object) -> None:  # pragma: no cover - chunks go to the writer
    return None


def snapshot(
    path: Union[str, "os.PathLike[str]"],
    *,
    progress: Optional[ProgressCallback] = None,
    endpoint: Optional[str] = None,
    timeout: Optional[float] = None,
) -> SnapshotPlan:
    """Save a member's database (the one at ``endpoint``, or the one that
    answers) to ``path``, checksum verified.

    Streams to ``path + ".part"`` in constant memory, calling
    ``progress(bytes_written, remaining_bytes)`` after each chunk (in the
    asyncio client it may be a coroutine function); checks the SHA-256 etcd
    appends (:class:`~etcdfast.errors.SnapshotIntegrityError` if it does not
    match), fsyncs and renames the file into place. On any failure the part
    file is deleted and ``path`` is left untouched. The file is what
    ``etcdctl snapshot save`` writes (``etcdutl snapshot restore`` takes it).
    ``timeout`` bounds the whole transfer; the client's default timeout does
    *not* apply, since a snapshot takes as long as the database is large.
    """
    if progress is not None and not callable(progress):
        raise TypeError(f"progress must be callable, not {type(progress).__name__}")
    timeout = check_timeout(timeout)
    request: Request[None] = Request(SNAPSHOT, b"", _raw, timeout=math.inf if timeout is None else timeout,
                                     endpoint=member_endpoint(endpoint))
    return SnapshotPlan(request, os.fspath(path), progress)
