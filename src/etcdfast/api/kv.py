"""etcd's KV service: get, put, delete and compact, as Request builders (txn: ``api.txn``).

Each function validates its arguments, encodes the request with the codec
twin and returns a :class:`~etcdfast.api.request.Request`; nothing here does IO.
``Client``/``AsyncClient`` expose the same functions as methods, and
:class:`etcdfast.Op` reuses them as transaction ops, so every option is
defined once. Go's functional options (``clientv3.WithPrefix()``...) are
keyword arguments.
"""

from __future__ import annotations

from typing import Optional, Protocol, Tuple, Union

from .. import _codec
from ..errors import (
    InvalidSortOptionError,
    LeaseProvidedError,
    ValueProvidedError,
)
from ..types import (
    CompactResult,
    DeleteResult,
    GetResult,
    PutResult,
    SortOrder,
    SortTarget,
)
from .args import lease_id, non_negative
from .request import Observer, Request, check_timeout

__all__ = ["get", "get_value", "put", "delete", "compact", "KeyLike", "LeaseLike", "lease_id"]

KeyLike = Union[str, bytes]
LeaseLike = Union[int, "HasLeaseId"]

RANGE = "/etcdserverpb.KV/Range"
PUT = "/etcdserverpb.KV/Put"
DELETE_RANGE = "/etcdserverpb.KV/DeleteRange"
TXN = "/etcdserverpb.KV/Txn"
COMPACT = "/etcdserverpb.KV/Compact"

OP_RANGE, OP_PUT, OP_DELETE, OP_TXN = 1, 2, 3, 4


class HasLeaseId(Protocol):
    """Anything with an integer ``id`` (e.g. a Lease handle)."""

    @property
    def id(self) -> int: ...


def _enum(kind: type, value: object, default: int) -> int:
    if value is None:
        return default
    try:
        if isinstance(value, str):
            return int(kind[value.upper()])  # type: ignore[index]
        return int(kind(value))
    except (KeyError, ValueError):
        names = ", ".join(m.name.lower() for m in kind)  # type: ignore[attr-defined]
        raise InvalidSortOptionError(f"{kind.__name__} must be one of {names}; got {value!r}") from None


_UNSORTED = (int(SortOrder.NONE), int(SortTarget.KEY))


def _sort(
    sort_order: Union[SortOrder, str, None], sort_target: Union[SortTarget, str, None]
) -> Tuple[int, int]:
    if sort_order is None and sort_target is None:
        return _UNSORTED  # most gets: no enum lookups
    # Naming only a target means ascending by it; naming only an order means by key.
    order = _enum(SortOrder, sort_order, SortOrder.ASCEND if sort_target is not None else SortOrder.NONE)
    target = _enum(SortTarget, sort_target, SortTarget.KEY)
    return order, target


def get(
    key: KeyLike,
    *,
    prefix: bool = False,
    range_end: Optional[KeyLike] = None,
    from_key: bool = False,
    limit: int = 0,
    revision: int = 0,
    sort_order: Union[SortOrder, str, None] = None,
    sort_target: Union[SortTarget, str, None] = None,
    serializable: bool = False,
    keys_only: bool = False,
    count_only: bool = False,
    min_mod_revision: int = 0,
    max_mod_revision: int = 0,
    min_create_revision: int = 0,
    max_create_revision: int = 0,
    timeout: Optional[float] = None,
    require_leader: Optional[bool] = None,
) -> Request[GetResult]:
    """Read a key, a prefix (``prefix=True``), ``[key, range_end)``, or every key
    from ``key`` on (``from_key=True``; with an empty key: the whole keyspace).

    ``limit`` caps the number of keys (0: no cap; ``.more`` says whether more
    matched); ``revision`` reads the store as it was at that revision;
    ``sort_order`` (``"ascend"``/``"descend"``) and ``sort_target``
    (``"key"``, ``"version"``, ``"create"``, ``"mod"``, ``"value"``) sort the
    result; ``serializable=True`` lets the member answer from its local state
    without a quorum round-trip (faster, possibly stale); ``keys_only`` omits
    values; ``count_only`` returns only ``.count``; the ``min_*``/``max_*``
    revisions filter keys by their mod/create revision. ``timeout`` is this
    call's deadline in seconds (default: the client's); ``require_leader``
    overrides the client's for this call (a member cut off from its leader
    refuses it with NoLeaderError instead of answering or stalling).
    """
    k, end = _codec.keys.resolve_range(key, range_end, prefix, from_key)
    order, target = _sort(sort_order, sort_target)
    payload = _codec.wire.encode_range(
        k,
        end,
        non_negative("limit", limit),
        non_negative("revision", revision),
        order,
        target,
        serializable,
        keys_only,
        count_only,
        non_negative("min_mod_revision", min_mod_revision),
        non_negative("max_mod_revision", max_mod_revision),
        non_negative("min_create_revision", min_create_revision),
        non_negative("max_create_revision", max_create_revision),
    )
    return Request(
        RANGE, payload, _codec.wire.decode_range,
        kind=OP_RANGE, repeatable=True, timeout=check_timeout(timeout),
        require_leader=require_leader,
    )


def _first_value(data: bytes, tracker: Optional[Observer]) -> Optional[bytes]:
    return _codec.wire.decode_range(data, tracker).value


def get_value(
    key: KeyLike,
    *,
    revision: int = 0,
    serializable: bool = False,
    timeout: Optional[float] = None,
    require_leader: Optional[bool] = None,
) -> Request[Optional[bytes]]:
    """The value of one key, or ``None`` if it does not exist."""
    request = get(key, revision=revision, serializable=serializable, timeout=timeout)
    return Request(RANGE, request.payload, _first_value, repeatable=True, timeout=request.timeout,
                   require_leader=require_leader)


def put(
    key: KeyLike,
    value: KeyLike,
    *,
    lease: LeaseLike = 0,
    prev_kv: bool = False,
    ignore_value: bool = False,
    ignore_lease: bool = False,
    timeout: Optional[float] = None,
    require_leader: Optional[bool] = None,
) -> Request[PutResult]:
    """Set ``key`` to ``value``.

    ``lease`` attaches the key to a lease (an ID or a Lease); ``prev_kv=True``
    returns the previous key-value in ``.prev_kv``; ``ignore_value=True``
    keeps the current value (pass ``b""``) and ``ignore_lease=True`` the
    current lease, updating only the other.
    """
    k, _ = _codec.keys.resolve_range(key, None, False, False)
    v = _codec.keys.to_bytes(value)
    lid = lease_id(lease)
    if ignore_value and v:
        raise ValueProvidedError("ignore_value=True needs an empty value")
    if ignore_lease and lid:
        raise LeaseProvidedError("ignore_lease=True cannot be combined with a lease")
    payload = _codec.wire.encode_put(k, v, lid, prev_kv, ignore_value, ignore_lease)
    return Request(PUT, payload, _codec.wire.decode_put, kind=OP_PUT, timeout=check_timeout(timeout),
                   require_leader=require_leader)


def delete(
    key: KeyLike,
    *,
    prefix: bool = False,
    range_end: Optional[KeyLike] = None,
    from_key: bool = False,
    prev_kv: bool = False,
    timeout: Optional[float] = None,
    require_leader: Optional[bool] = None,
) -> Request[DeleteResult]:
    """Delete a key, a prefix, ``[key, range_end)`` or every key from ``key`` on.

    ``.deleted`` counts the keys removed; ``prev_kv=True`` returns them.
    """
    k, end = _codec.keys.resolve_range(key, range_end, prefix, from_key)
    payload = _codec.wire.encode_delete(k, end, prev_kv)
    return Request(
        DELETE_RANGE, payload, _codec.wire.decode_delete, kind=OP_DELETE, timeout=check_timeout(timeout),
        require_leader=require_leader,
    )


def compact(
    revision: int, *, physical: bool = False, timeout: Optional[float] = None
) -> Request[CompactResult]:
    """Discard history before ``revision``; ``physical=True`` waits until the
    space is reclaimed on disk. Revision 0 discards nothing (etcd accepts it,
    as ``etcdctl compaction 0`` shows); one at or below the last compaction
    raises CompactedError."""
    non_negative("revision", revision)
    payload = _codec.wire.encode_compaction(revision, physical)
    return Request(COMPACT, payload, _codec.wire.decode_compaction, timeout=check_timeout(timeout))
