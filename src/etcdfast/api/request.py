"""The unit of work every client executes: a :class:`Request`.

A Request describes one unary etcd call completely -- the gRPC method, the
encoded payload, how to decode the answer, whether repeating it is safe and
its deadline -- and does no IO. The builders of this package (``api.kv``,
``api.lease``...) make Requests; ``etcdfast._core.calls`` decides what to do
with them (send, log in, retry, give up); the executors in ``etcdfast._sync``
and ``etcdfast.aio`` only move bytes. So an option, a retry rule or an error
translation is written once for both clients.
"""

from __future__ import annotations

import math
from typing import Callable, Generic, Optional, Protocol, TypeVar

__all__ = [
    "Request",
    "SecretRequest",
    "LoginRequest",
    "check_timeout",
    "check_seconds",
    "NO_DEADLINE",
    "LONGEST_DEADLINE",
    "SLOW_CALL_TIMEOUT",
    "Observer",
]

T_co = TypeVar("T_co", covariant=True)

#: The internal spelling of "no deadline" (``timeout=math.inf``).
NO_DEADLINE = math.inf
#: Deadlines longer than this (a year) mean "no deadline": gRPC cannot
#: represent deadlines from ~8e9 seconds on and fails such calls at once.
LONGEST_DEADLINE = 365 * 24 * 3600.0
#: Default deadline of calls that take as long as the database is large
#: (``defragment``) or wait for a member to catch up (``move_leader``): the
#: client's per-call default (30 s) would cut them off on a big database.
SLOW_CALL_TIMEOUT = 15 * 60.0


class Observer(Protocol):
    """What decoders feed each response header's revision to (the client's revision tracker)."""

    def observe(self, revision: int) -> None: ...


Decoder = Callable[[bytes, Optional[Observer]], T_co]


class Request(Generic[T_co]):
    """One unary call, ready to send.

    ``kind`` is the op's field number inside a Txn's RequestOp (1 range, 2 put,
    3 delete, 4 txn) for KV requests, which lets a built Request double as a
    transaction op; it is 0 for everything else. ``depth`` counts how deeply
    a txn request nests other txns (0 for everything else).

    ``timeout`` is the caller's per-call deadline in seconds (``None``: the
    client's default; :data:`NO_DEADLINE`: none). ``default_timeout``, when
    set, replaces the client's default for this kind of call.

    ``endpoint`` pins the call to one member (``"host:port"``, as
    :attr:`Endpoint.address <etcdfast._core.endpoints.Endpoint.address>`
    spells it) instead of the client's balanced endpoints: Go's maintenance
    calls that address one member (``Status(ctx, endpoint)``).

    ``require_leader`` overrides the client's ``require_leader`` for this call
    (etcd's ``hasleader`` metadata: a member without a leader refuses it at
    once with NoLeaderError); None: the client's choice.
    """

    __slots__ = ("method", "payload", "decode", "kind", "repeatable", "timeout", "depth", "endpoint",
                 "require_leader")

    #: The payload holds a secret (a password): never shown, never kept in a
    #: raised error's traceback (see ``_core.calls``).
    secret = False
    #: Sent without the client's auth token (the login itself).
    anonymous = False
    default_timeout: Optional[float] = None

    def __init__(
        self,
        method: str,
        payload: bytes,
        decode: "Decoder[T_co]",
        *,
        kind: int = 0,
        repeatable: bool = False,
        timeout: Optional[float] = None,
        depth: int = 0,
        endpoint: Optional[str] = None,
        require_leader: Optional[bool] = None,
    ) -> None:
        self.method = method
        self.payload = payload
        self.decode = decode
        self.kind = kind
        # Go's clientv3 rule: only calls that cannot change state twice when
        # repeated may be retried after they might have reached the server.
        self.repeatable = repeatable
        self.timeout = timeout
        self.depth = depth
        self.endpoint = endpoint
        self.require_leader = require_leader

    def __repr__(self) -> str:
        return f"<Request {self.method} {len(self.payload)} bytes>"


class SecretRequest(Request[T_co]):
    """A Request whose payload carries a secret (a password): its repr does not
    even show the payload's size, which would tell the password's length."""

    __slots__ = ()
    secret = True

    def __repr__(self) -> str:
        return f"<Request {self.method} (payload hidden)>"


class LoginRequest(SecretRequest[T_co]):
    """The ``Authenticate`` call: secret, and sent without a token."""

    __slots__ = ()
    anonymous = True


class SlowRequest(Request[T_co]):
    """A call whose default deadline is :data:`SLOW_CALL_TIMEOUT`, not the client's."""

    __slots__ = ()
    default_timeout = SLOW_CALL_TIMEOUT


def check_seconds(name: str, value: object) -> float:
    """A duration in seconds: a number ``> 0`` (a bool, a str or NaN is refused)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number of seconds, not {type(value).__name__}")
    if not value > 0:  # also catches NaN
        raise ValueError(f"{name} must be > 0 seconds, got {value}")
    return float(value)


def check_timeout(timeout: Optional[float]) -> Optional[float]:
    """Validate a ``timeout=`` in seconds: ``> 0``; ``None`` for the default;
    ``math.inf`` (or anything over a year) for no deadline."""
    if timeout is None:
        return None
    seconds = check_seconds("timeout", timeout)
    return NO_DEADLINE if seconds > LONGEST_DEADLINE else seconds
