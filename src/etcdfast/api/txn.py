"""Builders for transactions: ``Compare`` conditions and ``Op`` operations.

::

    from etcdfast import Compare, Op

    client.txn(
        compare=[Compare.value("/config") == b"v1", Compare.mod_revision("/lock") < 7],
        success=[Op.put("/config", "v2"), Op.get("/config", prev_kv=False)],
        failure=[Op.get("/config")],
    )

A comparison is encoded as soon as it is written, so building a transaction
costs one small bytes object per condition and per op.
"""

from __future__ import annotations

from typing import Iterable, List, Optional, Tuple, Union

from .. import _codec
from ..errors import InvalidArgumentError
from ..types import TxnResult
from . import kv
from .args import integer, lease_id
from .kv import KeyLike, LeaseLike
from .request import Request, check_timeout

__all__ = ["Compare", "Comparison", "CompareTarget", "Op", "txn", "LeaseLike", "MAX_TXN_DEPTH"]

TXN = kv.TXN

#: How deeply txns may nest inside txns. etcd executes deeper ones, but the
#: answer then nests past protobuf's recursion limit (100 message levels in
#: upb, which the Cython twin mirrors) and could not be decoded: such a txn
#: is refused before it is sent rather than applied and reported unreadable.
MAX_TXN_DEPTH = 32

# etcdserverpb.Compare.CompareResult and CompareTarget
_EQUAL, _GREATER, _LESS, _NOT_EQUAL = 0, 1, 2, 3
_VERSION, _CREATE, _MOD, _VALUE, _LEASE = 0, 1, 2, 3, 4
_TARGET_NAMES = {_VERSION: "version", _CREATE: "create_revision", _MOD: "mod_revision",
                 _VALUE: "value", _LEASE: "lease"}
_RESULT_SYMBOLS = {_EQUAL: "==", _GREATER: ">", _LESS: "<", _NOT_EQUAL: "!="}


class Comparison:
    """One encoded condition of a transaction (built by :class:`Compare`)."""

    __slots__ = ("payload", "_text")

    def __init__(self, payload: bytes, text: str) -> None:
        self.payload = payload
        self._text = text

    def __repr__(self) -> str:
        return f"<Comparison {self._text}>"


class CompareTarget:
    """The left-hand side of a comparison; compare it with ``== != < >``."""

    __slots__ = ("_key", "_range_end", "_target")
    __hash__ = None  # type: ignore[assignment]  # == builds a Comparison, not a bool

    def __init__(self, key: bytes, range_end: bytes, target: int) -> None:
        self._key = key
        self._range_end = range_end
        self._target = target

    def _compare(self, result: int, operand: object) -> Comparison:
        if self._target == _VALUE:
            value: Union[int, bytes] = _codec.keys.to_bytes(operand)  # type: ignore[arg-type]
        elif self._target == _LEASE:
            value = lease_id(operand)
        else:
            value = integer(_TARGET_NAMES[self._target], operand)
        payload = _codec.wire.encode_compare(self._key, self._range_end, self._target, result, value)
        where = repr(self._key) + (f"..{self._range_end!r}" if self._range_end else "")
        text = f"{_TARGET_NAMES[self._target]}({where}) {_RESULT_SYMBOLS[result]} {value!r}"
        return Comparison(payload, text)

    def __eq__(self, other: object) -> Comparison:  # type: ignore[override]
        return self._compare(_EQUAL, other)

    def __ne__(self, other: object) -> Comparison:  # type: ignore[override]
        return self._compare(_NOT_EQUAL, other)

    def __lt__(self, other: object) -> Comparison:
        return self._compare(_LESS, other)

    def __gt__(self, other: object) -> Comparison:
        return self._compare(_GREATER, other)


class _TargetBuilder:
    """Builds the left-hand side of a comparison for one compare target."""

    __slots__ = ("_target",)

    def __init__(self, target: int) -> None:
        self._target = target

    def __call__(
        self, key: KeyLike, *, range_end: Optional[KeyLike] = None, prefix: bool = False
    ) -> CompareTarget:
        """Compare this attribute of ``key`` (or of every key in the range or
        prefix: the condition must then hold for all of them)."""
        k, end = _codec.keys.resolve_range(key, range_end, prefix, False)
        return CompareTarget(k, end, self._target)

    def __repr__(self) -> str:
        return f"Compare.{_TARGET_NAMES[self._target]}"


class Compare:
    """Conditions on a key's value, version, create/mod revision or lease.

    ``Compare.version(k) == 0`` holds when ``k`` does not exist;
    ``Compare.create_revision(k) == 0`` too. ``Compare.lease(k) == lease``
    checks which lease a key is attached to.
    """

    value = _TargetBuilder(_VALUE)
    version = _TargetBuilder(_VERSION)
    create_revision = _TargetBuilder(_CREATE)
    mod_revision = _TargetBuilder(_MOD)
    lease = _TargetBuilder(_LEASE)



def _ops(ops: Iterable[Request[object]], branch: str) -> Tuple[List[Tuple[int, bytes]], int]:
    parts = []
    depth = 0
    for op in ops:
        if not isinstance(op, Request) or not op.kind:
            raise TypeError(
                f"{branch} ops must be built with Op.get/put/delete/txn, not {type(op).__name__}"
            )
        if op.timeout is not None:
            raise InvalidArgumentError("timeout applies to the whole txn, not to one of its ops")
        if op.require_leader is not None:
            raise InvalidArgumentError("require_leader applies to the whole txn, not to one of its ops")
        parts.append((op.kind, op.payload))
        depth = max(depth, op.depth)
    return parts, depth


def txn(
    compare: Iterable[Comparison] = (),
    success: Iterable[Request[object]] = (),
    failure: Iterable[Request[object]] = (),
    *,
    timeout: Optional[float] = None,
    require_leader: Optional[bool] = None,
) -> Request[TxnResult]:
    """Atomically: if every ``compare`` holds, run the ``success`` ops, else the
    ``failure`` ops.

    Build compares with :class:`etcdfast.Compare` (``Compare.value(k) == b"v"``,
    ``Compare.mod_revision(k) < 7``...) and ops with :class:`etcdfast.Op`
    (``Op.txn`` nests a txn, up to :data:`MAX_TXN_DEPTH` levels).
    ``.succeeded`` says which branch ran; ``.responses`` holds one result per op.
    """
    compares: List[bytes] = []
    for c in compare:
        if not isinstance(c, Comparison):
            raise TypeError(f"compare items must be built with Compare, not {type(c).__name__}")
        compares.append(c.payload)
    then, then_depth = _ops(success, "success")
    otherwise, otherwise_depth = _ops(failure, "failure")
    depth = max(then_depth, otherwise_depth) + 1
    if depth > MAX_TXN_DEPTH:
        raise InvalidArgumentError(
            f"txn nested {depth} levels deep; at most {MAX_TXN_DEPTH} levels can be decoded"
        )
    payload = _codec.wire.encode_txn(compares, then, otherwise)
    return Request(TXN, payload, _codec.wire.decode_txn, kind=kv.OP_TXN,
                   timeout=check_timeout(timeout), require_leader=require_leader, depth=depth)


class Op:
    """Operations for a transaction's ``success``/``failure`` branches.

    They take exactly the options of the client methods of the same name
    (they *are* those request builders), except ``timeout``, which belongs to
    the whole transaction.
    """

    get = staticmethod(kv.get)
    put = staticmethod(kv.put)
    delete = staticmethod(kv.delete)
    txn = staticmethod(txn)

