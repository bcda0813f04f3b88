"""python-etcd3's error contract, on etcdfast's errors: the one compat module that imports grpc.

python-etcd3 turned four gRPC status codes into its own exceptions and let
every other ``grpc.RpcError`` through, so its users catch ``grpc.RpcError``
(e.g. compacting an already compacted revision is ``OUT_OF_RANGE``). etcdfast
never lets a grpc exception out; :func:`translate` rebuilds that contract from
its errors, which carry the status name in ``EtcdError.code``. That needs
grpc's own ``RpcError`` and ``StatusCode`` types, hence the import here.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any, Callable, Dict, Iterator, Type, TypeVar, cast

import grpc

from ...errors import EtcdError, Timeout, Unavailable
from .exceptions import (
    ConnectionFailedError,
    ConnectionTimeoutError,
    Etcd3Exception,
    InternalServerError,
    PreconditionFailedError,
)

__all__ = ["RpcError", "translate", "handle_errors", "raise_translated"]

F = TypeVar("F", bound=Callable[..., Any])

#: python-etcd3's ``_EXCEPTIONS_BY_CODE``.
_BY_CODE: Dict[str, Type[Etcd3Exception]] = {
    "INTERNAL": InternalServerError,
    "UNAVAILABLE": ConnectionFailedError,
    "DEADLINE_EXCEEDED": ConnectionTimeoutError,
    "FAILED_PRECONDITION": PreconditionFailedError,
}


class RpcError(grpc.RpcError):  # type: ignore[misc]  # grpc is untyped
    """A gRPC status python-etcd3 did not map, raised as the ``grpc.RpcError`` it raised.

    ``code()`` is the ``grpc.StatusCode`` and ``details()`` the server's
    message, as on grpc's own error; ``__cause__`` is etcdfast's error
    (e.g. :class:`etcdfast.CompactedError`), which says more.
    """

    def __init__(self, code: "grpc.StatusCode", details: str) -> None:
        super().__init__(details)
        self._code = code
        self._details = details

    def code(self) -> "grpc.StatusCode":
        return self._code

    def details(self) -> str:
        return self._details

    def debug_error_string(self) -> str:
        return f"{self._code.name}: {self._details}"

    def __str__(self) -> str:
        return f"<RpcError of RPC that terminated with status = {self._code}, details = {self._details!r}>"


def _status(name: str) -> "grpc.StatusCode":
    try:
        return grpc.StatusCode[name]
    except KeyError:
        return grpc.StatusCode.UNKNOWN


def translate(exc: EtcdError) -> BaseException:
    """What python-etcd3 raised where etcdfast raised ``exc`` (``exc`` itself
    when there is no status code to go by: a closed client, malformed bytes).

    By status code, as python-etcd3 did; except that a deadline or an outage
    etcd reports under another code (etcd 3.4/3.5 send their own "context
    deadline exceeded" as ``UNKNOWN``, which python-etcd3 let through as a raw
    grpc error) is still ``ConnectionTimeoutError``/``ConnectionFailedError``:
    etcdfast's error class already says which it is.
    """
    code = exc.code
    if code is None:
        return exc
    mapped = _BY_CODE.get(code)
    if mapped is None and isinstance(exc, (Timeout, Unavailable)):
        mapped = ConnectionTimeoutError if isinstance(exc, Timeout) else ConnectionFailedError
    if mapped is not None:
        return mapped(str(exc))
    return RpcError(_status(code), getattr(exc, "details", "") or str(exc))


def raise_translated(exc: EtcdError) -> None:
    """Raise :func:`translate`'s answer for ``exc``, chained to it."""
    new = translate(exc)
    if new is exc:
        raise exc
    raise new from exc


def handle_errors(f: F) -> F:
    """python-etcd3's ``_handle_errors``: translate etcdfast's errors raised by ``f``
    (a function or a generator function)."""
    if inspect.isgeneratorfunction(f):
        @functools.wraps(f)
        def generator(*args: Any, **kwargs: Any) -> Iterator[Any]:
            try:
                yield from f(*args, **kwargs)
            except EtcdError as exc:
                raise_translated(exc)
        return cast(F, generator)

    @functools.wraps(f)
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return f(*args, **kwargs)
        except EtcdError as exc:
            raise_translated(exc)
    return cast(F, call)
