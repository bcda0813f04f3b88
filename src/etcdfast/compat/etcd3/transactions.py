"""python-etcd3's transaction builders: comparisons (``Value``, ``Version``, ``Create``,
``Mod``) and operations (``Put``, ``Get``, ``Delete``, ``Txn``).

They are python-etcd3's mutable objects (``client.transactions.value(key) ==
b"v"`` sets ``.op`` and ``.value`` and returns the comparison itself);
:func:`native_compares` and :func:`native_ops` turn them into etcdfast's
encoded :class:`etcdfast.Compare`/:class:`etcdfast.Op` requests when the
transaction is sent. ``build_message()`` returns the ``etcdrpc.Compare``
message those bytes decode to.
"""

from __future__ import annotations

import operator
from typing import Any, Callable, Dict, Iterable, List, Optional, Union

from ...api.request import Request
from ...api.txn import Compare as _Compare
from ...api.txn import CompareTarget, Comparison
from ...api.txn import Op as _Op
from . import etcdrpc, utils

__all__ = ["BaseCompare", "Value", "Version", "Create", "Mod", "Put", "Get", "Delete", "Txn",
           "native_compares", "native_ops"]

KeyLike = Union[str, bytes]

# etcdserverpb.Compare.CompareResult
_EQUAL, _GREATER, _LESS, _NOT_EQUAL = 0, 1, 2, 3
_OPERATORS = {_EQUAL: "==", _NOT_EQUAL: "!=", _LESS: "<", _GREATER: ">"}
_APPLY: Dict[int, Callable[[CompareTarget, Any], Comparison]] = {
    _EQUAL: operator.eq, _NOT_EQUAL: operator.ne, _LESS: operator.lt, _GREATER: operator.gt,
}


class BaseCompare:
    """A comparison on ``key`` (or on every key of ``[key, range_end)``)."""

    #: etcdfast's builder of this comparison's target.
    _target: Callable[..., CompareTarget]

    def __init__(self, key: KeyLike, range_end: Optional[KeyLike] = None) -> None:
        self.key = key
        self.range_end = range_end
        self.value: Any = None
        self.op: Optional[int] = None

    # python-etcd3's comparisons record the operator and return themselves.
    def __eq__(self, other: object) -> "BaseCompare":  # type: ignore[override]
        self.value, self.op = other, _EQUAL
        return self

    def __ne__(self, other: object) -> "BaseCompare":  # type: ignore[override]
        self.value, self.op = other, _NOT_EQUAL
        return self

    def __lt__(self, other: object) -> "BaseCompare":
        self.value, self.op = other, _LESS
        return self

    def __gt__(self, other: object) -> "BaseCompare":
        self.value, self.op = other, _GREATER
        return self

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        keys = self.key if self.range_end is None else f"[{self.key!r}, {self.range_end!r})"
        return f"{self.__class__}: {keys!r} {_OPERATORS.get(self.op)} '{self.value!r}'"  # type: ignore[arg-type]

    def _operand(self) -> Any:
        return int(self.value)  # python-etcd3 took int() of version/revision operands ('0' too)

    def comparison(self) -> Comparison:
        """This comparison, encoded by etcdfast."""
        if self.op is None:
            raise ValueError("op must be one of =, !=, < or >")
        range_end = None if self.range_end is None else utils.to_bytes(self.range_end)
        target = type(self)._target(utils.to_bytes(self.key), range_end=range_end)
        return _APPLY[self.op](target, self._operand())

    def build_message(self) -> Any:
        """The ``etcdrpc.Compare`` message this comparison is sent as."""
        return etcdrpc.Compare.FromString(self.comparison().payload)


class Value(BaseCompare):
    """Compare the value (bytes, or str as UTF-8)."""

    _target = _Compare.value

    def _operand(self) -> Any:
        return utils.to_bytes(self.value)


class Version(BaseCompare):
    """Compare the version (0: the key does not exist)."""

    _target = _Compare.version


class Create(BaseCompare):
    """Compare the create revision (0: the key does not exist)."""

    _target = _Compare.create_revision


class Mod(BaseCompare):
    """Compare the last modification's revision."""

    _target = _Compare.mod_revision


class Put:
    """Set ``key`` to ``value`` (optionally on a lease, returning the previous pair)."""

    def __init__(self, key: KeyLike, value: KeyLike, lease: Any = None, prev_kv: bool = False) -> None:
        self.key = key
        self.value = value
        self.lease = lease
        self.prev_kv = prev_kv


class Get:
    """Read ``key`` (or ``[key, range_end)``)."""

    def __init__(self, key: KeyLike, range_end: Optional[KeyLike] = None) -> None:
        self.key = key
        self.range_end = range_end


class Delete:
    """Delete ``key`` (or ``[key, range_end)``)."""

    def __init__(self, key: KeyLike, range_end: Optional[KeyLike] = None, prev_kv: bool = False) -> None:
        self.key = key
        self.range_end = range_end
        self.prev_kv = prev_kv


class Txn:
    """A transaction nested in a transaction's branch (etcd >= 3.3)."""

    def __init__(self, compare: Iterable[BaseCompare], success: Optional[Iterable[Any]] = None,
                 failure: Optional[Iterable[Any]] = None) -> None:
        self.compare = compare
        self.success = success
        self.failure = failure


def native_compares(compare: Iterable[BaseCompare]) -> List[Comparison]:
    """etcdfast's comparisons for python-etcd3 ones."""
    return [c.comparison() for c in compare]


def _range_end(range_end: Optional[KeyLike]) -> Optional[bytes]:
    return None if range_end is None else utils.to_bytes(range_end)


def native_ops(ops: Optional[Iterable[Any]]) -> List[Request[Any]]:
    """etcdfast's transaction ops for python-etcd3's ``Put``/``Get``/``Delete``/``Txn``
    (``None``: no ops)."""
    requests: List[Request[Any]] = []
    for op in () if ops is None else ops:
        if isinstance(op, Put):
            requests.append(_Op.put(utils.to_bytes(op.key), utils.to_bytes(op.value),
                                    lease=utils.lease_to_id(op.lease), prev_kv=op.prev_kv))
        elif isinstance(op, Get):
            requests.append(_Op.get(utils.to_bytes(op.key), range_end=_range_end(op.range_end)))
        elif isinstance(op, Delete):
            requests.append(_Op.delete(utils.to_bytes(op.key), range_end=_range_end(op.range_end),
                                       prev_kv=op.prev_kv))
        elif isinstance(op, Txn):
            requests.append(_Op.txn(native_compares(op.compare), native_ops(op.success),
                                    native_ops(op.failure)))
        else:
            raise Exception(f"Unknown request class {op.__class__}")  # python-etcd3's own (bare) Exception
    return requests
