"""The unit of work shared by the sync and async drivers.

Every unary etcd call is described by a :class:`Request`: which gRPC method,
the encoded payload, how to decode the answer, whether a retry is safe, and
the caller's deadline. Builders (``etcdfast.kv``...) produce Requests without
touching the network; ``Client`` and ``AsyncClient`` only execute them. So the
two clients cannot disagree, and every option is written down exactly once.
"""

from __future__ import annotations

import functools
import inspect
import sys
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Generic, Optional, TypeVar

from . import _codec

if sys.version_info >= (3, 10):
    from typing import Concatenate, ParamSpec
else:  # pragma: no cover - Python 3.9
    from typing_extensions import Concatenate, ParamSpec

if TYPE_CHECKING:
    from ._pure.revision import RevisionTracker

__all__ = ["Request", "SecretRequest", "sync_method", "async_method"]

T = TypeVar("T")
P = ParamSpec("P")

Decoder = Callable[[bytes, "Optional[RevisionTracker]"], T]


class Request(Generic[T]):
    """One unary call, ready to send.

    ``kind`` is the op's field number inside a Txn's RequestOp (1 range, 2 put,
    3 delete, 4 txn) for KV requests, which lets a built Request double as a
    transaction op; it is 0 for everything else.
    """

    __slots__ = ("method", "payload", "decode", "kind", "repeatable", "timeout")

    def __init__(
        self,
        method: str,
        payload: bytes,
        decode: Decoder[T],
        *,
        kind: int = 0,
        repeatable: bool = False,
        timeout: Optional[float] = None,
    ) -> None:
        self.method = method
        self.payload = payload
        self.decode = decode
        self.kind = kind
        # Go's clientv3 rule: only calls that cannot change state twice when
        # repeated may be retried after they might have reached the server.
        self.repeatable = repeatable
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"<Request {self.method} {len(self.payload)} bytes>"


class SecretRequest(Request[T]):
    """A Request whose payload carries a secret (a password): its repr does not
    even show the payload's size, which would tell the password's length."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"<Request {self.method} (payload hidden)>"


def check_timeout(timeout: Optional[float]) -> Optional[float]:
    """Validate a per-call ``timeout=`` (seconds, > 0, or ``None`` for the client default)."""
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise TypeError(f"timeout must be a number of seconds, not {type(timeout).__name__}")
    if not timeout > 0:
        raise ValueError(f"timeout must be > 0 seconds, got {timeout}")
    return float(timeout)


def _bind(build: Callable[..., Any], method: Callable[..., Any], returns: str) -> None:
    # Present the builder's own name, docs and signature (plus ``self``) so that
    # help(), IDEs and inspect.signature show the real options.
    functools.update_wrapper(method, build)
    del method.__wrapped__  # type: ignore[attr-defined]
    sig = inspect.signature(build)
    self_param = inspect.Parameter("self", inspect.Parameter.POSITIONAL_ONLY)
    method.__signature__ = sig.replace(  # type: ignore[attr-defined]
        parameters=[self_param, *sig.parameters.values()], return_annotation=returns
    )


def sync_method(
    build: Callable[P, Request[T]], *, secret: bool = False
) -> Callable[Concatenate[Any, P], T]:
    """Make a Client method that builds a Request and executes it.

    ``secret=True`` is for calls whose arguments hold a password: the method
    lets go of its arguments before executing, so no frame of a traceback the
    call raises (as captured with locals by error trackers) holds them.
    """

    def method(self: Any, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return self._execute(build(*args, **kwargs))  # type: ignore[no-any-return]

    def secret_method(self: Any, /, *args: P.args, **kwargs: P.kwargs) -> T:
        request = build(*args, **kwargs)
        del args, kwargs
        return self._execute(request)  # type: ignore[no-any-return]

    chosen = secret_method if secret else method
    _bind(build, chosen, _return_name(build))
    return chosen


def async_method(
    build: Callable[P, Request[T]], *, secret: bool = False
) -> Callable[Concatenate[Any, P], Awaitable[T]]:
    """Make an AsyncClient coroutine method that builds a Request and awaits it
    (``secret``: as for :func:`sync_method`)."""

    async def method(self: Any, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return await self._execute(build(*args, **kwargs))  # type: ignore[no-any-return]

    async def secret_method(self: Any, /, *args: P.args, **kwargs: P.kwargs) -> T:
        request = build(*args, **kwargs)
        del args, kwargs
        return await self._execute(request)  # type: ignore[no-any-return]

    chosen = secret_method if secret else method
    _bind(build, chosen, f"Awaitable[{_return_name(build)}]")
    return chosen


def _return_name(build: Callable[..., Any]) -> str:
    # "Request[GetResult]" -> "GetResult", for the signature shown to users.
    annotation = str(inspect.signature(build).return_annotation)
    if annotation.startswith("Request[") and annotation.endswith("]"):
        return annotation[len("Request[") : -1]
    return annotation


def tracker() -> "RevisionTracker":
    """A revision tracker from the active codec twin."""
    return _codec.revision.RevisionTracker()
