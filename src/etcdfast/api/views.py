"""Views of a client, with no IO: a namespace (Go's ``namespace``) and read
ordering (Go's ``ordering``).

A view is a client-like object (``client.namespace(b"/tenant/")``,
``client.ordered()``) that has the KV, txn, watch, lease and recipe methods
of the client and runs them through the client's executor. What differs is
here, written once for the sync and the asyncio faces
(``etcdfast._sync.views``, ``etcdfast.aio.views``):

* :class:`Namespace` rewrites each Request on its way out -- every key, range
  end, compare and op under the prefix (the codec's ``prefix_request``) --
  and strips the prefix from what comes back; watches are created on the
  prefixed range and their events come back unprefixed.
* :class:`Ordering` runs each read (a range or a txn) as a small plan that
  checks the answer's store revision against the newest this view has seen,
  and asks again -- grpc balances the retry to another member -- when a
  member that is behind answered.
"""

from __future__ import annotations

import copy
from typing import Any, Callable, List, Optional, Sequence, TypeVar

from .. import _codec
from ..errors import StaleReadError
from ..types import (
    DeleteResult,
    Event,
    GetResult,
    KeyValue,
    LeaseTimeToLive,
    PutResult,
    TxnResult,
    WatchResponse,
)
from . import kv as _kv
from . import lease as _lease
from .plan import Apply, Plan, Steps
from .request import Observer, Request
from .watch import WatchSpec

__all__ = ["Namespace", "Ordering", "ViolationHandler"]

T = TypeVar("T")

#: The method -> the codec's kind of request, for the calls a namespace rewrites.
_KINDS = {_kv.RANGE: _kv.OP_RANGE, _kv.PUT: _kv.OP_PUT, _kv.DELETE_RANGE: _kv.OP_DELETE, _kv.TXN: _kv.OP_TXN}
#: ``prefix_request``'s kind for an encoded Compare.
COMPARE_KIND = 6


class Namespace:
    """Every key of the calls made through it lives under ``prefix``.

    As in Go's ``namespace`` package: keys and range ends get the prefix
    (``from_key``/an empty-key ``prefix=True`` -- "to the end of the
    keyspace" -- become "to the end of the namespace"), results and watch
    events lose it, and lease ``time_to_live(keys=True)`` lists only the
    namespace's keys. Calls that carry no keys (compact, grant, status...)
    pass through unchanged.
    """

    __slots__ = ("prefix", "_cut")

    def __init__(self, prefix: bytes) -> None:
        if not prefix:
            raise ValueError("a namespace needs a non-empty prefix")
        self.prefix = prefix
        self._cut = len(prefix)

    def __repr__(self) -> str:
        return f"<Namespace {self.prefix!r}>"

    def nested(self, prefix: bytes) -> "Namespace":
        """The namespace ``prefix`` inside this one."""
        return Namespace(self.prefix + prefix)

    # -- requests ------------------------------------------------------------

    def request(self, request: "Request[T]") -> "Request[T]":
        """``request`` with its keys under the prefix and its result stripped of it."""
        kind = _KINDS.get(request.method)
        if kind is not None:
            moved = copy.copy(request)
            moved.payload = _codec.keys.prefix_request(kind, request.payload, self.prefix)
            moved.decode = self._decoder(request.decode)
            return moved
        if request.method == _lease.TIME_TO_LIVE:
            moved = copy.copy(request)
            moved.decode = self._decoder(request.decode)
            return moved
        return request

    def _decoder(self, decode: Callable[[bytes, Optional[Observer]], T]) -> Callable[..., T]:
        strip = self.strip

        def decode_stripped(raw: bytes, tracker: Optional[Observer]) -> T:
            return strip(decode(raw, tracker))  # type: ignore[no-any-return]

        return decode_stripped

    def watch_spec(self, spec: "WatchSpec[Any]") -> "WatchSpec[Any]":
        """The watch of ``spec``'s range inside the namespace; its events come back unprefixed."""
        moved = copy.copy(spec)
        moved.key = self.prefix + spec.key
        # The codec's rule for range ends (see prefix_request), on the spec's fields.
        if spec.range_end == b"\x00":
            moved.range_end = _codec.keys.prefix_range_end(self.prefix)
        elif spec.range_end:
            moved.range_end = self.prefix + spec.range_end
        inner = spec.transform
        strip = self.strip
        moved.transform = strip if inner is None else (lambda response: inner(strip(response)))
        return moved

    # -- results -------------------------------------------------------------

    def key(self, key: bytes) -> bytes:
        """A key as the namespace sees it."""
        return key[self._cut:] if key.startswith(self.prefix) else key

    def _kv(self, kv: KeyValue) -> KeyValue:
        return KeyValue(self.key(kv.key), kv.create_revision, kv.mod_revision, kv.version, kv.value, kv.lease)

    def _maybe_kv(self, kv: Optional[KeyValue]) -> Optional[KeyValue]:
        return None if kv is None else self._kv(kv)

    def _kvs(self, kvs: Sequence[KeyValue]) -> List[KeyValue]:
        cut, prefix = self._cut, self.prefix
        return [
            KeyValue(kv.key[cut:] if kv.key.startswith(prefix) else kv.key, kv.create_revision,
                     kv.mod_revision, kv.version, kv.value, kv.lease)
            for kv in kvs
        ]

    def strip(self, result: Any) -> Any:
        """``result`` (any decoded answer or watch response) without the prefix in its keys."""
        if isinstance(result, GetResult):
            return GetResult(result.header, self._kvs(result.kvs), result.more, result.count)
        if isinstance(result, PutResult):
            return PutResult(result.header, self._maybe_kv(result.prev_kv))
        if isinstance(result, DeleteResult):
            return DeleteResult(result.header, result.deleted, self._kvs(result.prev_kvs))
        if isinstance(result, TxnResult):
            return TxnResult(result.header, result.succeeded, [self.strip(r) for r in result.responses])
        if isinstance(result, WatchResponse):
            if not result.events:
                return result
            events = [Event(e.type, self._kv(e.kv), self._maybe_kv(e.prev_kv)) for e in result.events]
            return result._replace(events=events)
        if isinstance(result, LeaseTimeToLive):
            keys = [k[self._cut:] for k in result.keys if k.startswith(self.prefix)]
            return LeaseTimeToLive(result.header, result.id, result.ttl, result.granted_ttl, keys)
        return result  # a value, a count, a list of leases...


#: What ``client.ordered(on_violation=...)`` calls when a member behind the
#: newest revision seen answered: ``handler(error)`` -- raise to refuse the
#: read, return to ask again (another member, by round robin).
ViolationHandler = Callable[[StaleReadError], Any]

#: Reads that carry a store revision worth checking: ranges and txns (Go's ordering).
_ORDERED = (_kv.RANGE, _kv.TXN)


class Ordering:
    """Refuses reads older than what was already seen, across endpoint switches.

    Go's ``ordering`` KV: a range or txn answered at a store revision below
    the newest one this view has received came from a member that is behind
    (a serializable read on a partitioned member, say). The read is asked
    again -- the client's round robin sends it to the next member -- up to
    ``5 x endpoints`` times (Go's ``NewOrderViolationSwitchEndpointClosure``),
    then :class:`~etcdfast.errors.StaleReadError`. With ``on_violation``,
    that handler decides instead: it raises to refuse, returns to retry.
    """

    __slots__ = ("seen", "on_violation", "max_retries")

    def __init__(self, endpoints: int, on_violation: Optional[ViolationHandler] = None) -> None:
        if on_violation is not None and not callable(on_violation):
            raise TypeError(f"on_violation must be callable, not {type(on_violation).__name__}")
        #: The newest store revision any read through this view answered.
        self.seen = 0
        self.on_violation = on_violation
        self.max_retries = 5 * max(1, endpoints)

    def checks(self, request: "Request[Any]") -> bool:
        return request.method in _ORDERED

    def plan(self, request: "Request[T]") -> "Plan[T]":
        """The read of ``request`` that is retried while a member behind answers it."""
        return Plan(self._steps(request))

    def _steps(self, request: "Request[T]") -> "Steps[T]":
        seen = self.seen  # as the read starts: concurrent reads may raise it meanwhile
        for attempt in range(self.max_retries + 1):
            # Each attempt is a fresh Request: a plan step's timeout may be set by the runner.
            result = yield copy.copy(request)
            revision = _revision_of(result)
            if revision is None or revision >= seen:
                if revision is not None and revision > self.seen:
                    self.seen = revision
                return result  # type: ignore[no-any-return]
            error = StaleReadError(
                f"{request.method} was answered at revision {revision}, older than {seen} already "
                "seen: a member that is behind answered",
                revision=revision, seen=seen,
            )
            if self.on_violation is not None:
                yield Apply(self.on_violation, error)  # raises to refuse
            elif attempt == self.max_retries:
                raise StaleReadError(
                    f"no member answered {request.method} at a revision >= {seen} in "
                    f"{self.max_retries + 1} attempts (newest answer: {revision})",
                    revision=revision, seen=seen,
                )
        raise StaleReadError(f"{request.method}: gave up after {self.max_retries + 1} stale answers",
                             seen=seen)


def _revision_of(result: Any) -> Optional[int]:
    header = getattr(result, "header", None)
    return None if header is None else int(header.revision)
