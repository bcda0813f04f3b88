"""etcd's protobuf message classes, built by the installed protobuf runtime.

No ``*_pb2.py`` is generated or shipped. ``setup.py`` compiles ``protos/`` into
a serialized FileDescriptorSet (``_schema.binpb``); here the *installed*
runtime turns that into message classes. Descriptors are plain protobuf data
whose format has not changed since protobuf 3, so whatever runtime is
installed (4.21 ... 7.x) builds classes it fully understands: there is no
generated code whose version could disagree with it.

The classes live in a private DescriptorPool, not the default one, so
etcdfast can be imported next to python-etcd3 or any other package that
registers etcd's ``etcdserverpb`` files without "duplicate file" conflicts.

Only cold paths (Lease grant, Cluster, Maintenance, Auth) and the pure twin's
decoders use these classes; the Cython twin never does. Nothing is built, and
protobuf is not even imported, before the first such call: decoders made at
import time resolve their class on first use, so a process that only reads
and writes keys (``etcdfast get``) never pays for the descriptor pool.
"""

from __future__ import annotations

import functools
from importlib import resources
from typing import TYPE_CHECKING, Any, Callable, List, Optional, Protocol, Type, TypeVar

from .errors import ProtocolError
from .types import ResponseHeader

if TYPE_CHECKING:
    from google.protobuf.message import DecodeError, Message

__all__ = ["message", "decoder", "header", "DecodeError", "Message", "SCHEMA_FILE"]


def __getattr__(name: str) -> Any:
    # DecodeError and Message, imported (with protobuf) only when asked for.
    if name in ("DecodeError", "Message"):
        from google.protobuf import message as _message

        return getattr(_message, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

R = TypeVar("R")


class _Observer(Protocol):
    def observe(self, revision: int) -> None: ...

SCHEMA_FILE = "_schema.binpb"


def _message_class_factory(pool: Any) -> Callable[[Any], Type["Message"]]:
    # protobuf >= 4.22 has message_factory.GetMessageClass; 4.21 only has
    # MessageFactory.GetPrototype (removed in 5.x). Pick whichever exists.
    from google.protobuf import message_factory

    get_class = getattr(message_factory, "GetMessageClass", None)
    if get_class is not None:
        return get_class  # type: ignore[no-any-return]
    return message_factory.MessageFactory(pool).GetPrototype  # type: ignore[no-any-return]


@functools.lru_cache(maxsize=None)
def _pool() -> Any:
    try:
        data = resources.files("etcdfast").joinpath(SCHEMA_FILE).read_bytes()
    except FileNotFoundError:  # pragma: no cover - only in a raw, unbuilt checkout
        raise ImportError(
            "etcdfast/_schema.binpb is missing: install the package "
            "(pip install .) so that setup.py compiles protos/"
        ) from None
    from google.protobuf import descriptor_pb2, descriptor_pool

    pool = descriptor_pool.DescriptorPool()
    for file_proto in descriptor_pb2.FileDescriptorSet.FromString(data).file:
        pool.Add(file_proto)
    return pool


@functools.lru_cache(maxsize=None)
def message(full_name: str) -> Type["Message"]:
    """The message class for a full protobuf name, e.g. ``"etcdserverpb.RangeRequest"``."""
    pool = _pool()
    return _message_class_factory(pool)(pool.FindMessageTypeByName(full_name))


def header(message: Any) -> ResponseHeader:
    """The ``ResponseHeader`` of a decoded response message."""
    h = message.header
    return ResponseHeader(h.cluster_id, h.member_id, h.revision, h.raft_term)


def decoder(full_name: str, convert: Callable[[Any], R]) -> Callable[[bytes, Optional[_Observer]], R]:
    """A response decoder for the drivers: parse ``full_name``, ``convert`` it, feed the tracker.

    Malformed bytes become :class:`ProtocolError`. Every etcd response has a
    ``header``; its revision goes to the client's revision tracker.
    """
    resolved: List[Any] = []  # [parse, DecodeError], filled by the first call

    def decode(data: bytes, tracker: Optional[_Observer] = None) -> R:
        if type(data) is not bytes:
            raise TypeError(f"expected bytes, got {type(data).__name__}")
        if not resolved:
            from google.protobuf.message import DecodeError

            resolved[:] = [message(full_name).FromString, DecodeError]
        parse, decode_error = resolved
        try:
            parsed = parse(data)
        except decode_error as exc:
            raise ProtocolError(f"malformed {full_name}: {exc}") from None
        if tracker is not None:
            tracker.observe(parsed.header.revision)
        return convert(parsed)

    decode.__doc__ = f"Decode an ``{full_name}``; feed its revision to ``tracker``."
    return decode
