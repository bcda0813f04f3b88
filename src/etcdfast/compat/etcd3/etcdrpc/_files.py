"""Module namespaces over the runtime schema: what python-etcd3's generated ``*_pb2`` modules held.

Each ``etcdrpc`` module resolves its names on first use from the descriptors
of etcdfast's compiled schema (``etcdfast._schema``): message classes,
top-level enum types (protobuf's ``EnumTypeWrapper``) and their values
(``NOSPACE``...). Nested enum values are class attributes of the messages, as
in generated code (``RangeRequest.KEY``, ``Compare.EQUAL``). No generated code,
no second descriptor pool: these are the classes etcdfast itself decodes with.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Dict, List, MutableMapping, Sequence, Tuple

from .... import _schema

__all__ = ["Namespace", "module_hooks"]

# One message of each file: the way in to its FileDescriptor.
_ANCHORS = {
    "etcd/etcdserverpb/rpc.proto": "etcdserverpb.ResponseHeader",
    "etcd/mvccpb/kv.proto": "mvccpb.KeyValue",
    "etcd/authpb/auth.proto": "authpb.User",
}


def _file(name: str) -> Any:
    return _schema.message(_ANCHORS[name]).DESCRIPTOR.file


@functools.lru_cache(maxsize=None)
def _enum_wrapper_class() -> Any:
    # protobuf's EnumTypeWrapper, taken from a nested enum of a message
    # class (only etcdfast._schema imports protobuf itself).
    return type(_schema.message("etcdserverpb.RangeRequest").SortOrder)


class Namespace:
    """The names of some .proto files, resolved lazily for a module's ``__getattr__``."""

    def __init__(self, files: Sequence[str]) -> None:
        self._files = list(files)

    @functools.cached_property
    def _table(self) -> Dict[str, Tuple[str, Any]]:
        table: Dict[str, Tuple[str, Any]] = {}
        for name in self._files:
            file = _file(name)
            for message in file.message_types_by_name:
                table.setdefault(message, ("message", f"{file.package}.{message}"))
            for enum_name, enum in file.enum_types_by_name.items():
                table.setdefault(enum_name, ("enum", enum))
                for value in enum.values:
                    table.setdefault(value.name, ("value", value.number))
        return table

    def names(self) -> List[str]:
        return sorted(self._table)

    def resolve(self, module: str, name: str) -> Any:
        if name == "__all__":  # from etcdrpc import *
            return self.names()
        if name == "DESCRIPTOR" and len(self._files) == 1:
            return _file(self._files[0])
        try:
            kind, what = self._table[name]
        except KeyError:
            raise AttributeError(f"module {module!r} has no attribute {name!r}") from None
        if kind == "message":
            return _schema.message(what)
        if kind == "enum":
            return _enum_wrapper_class()(what)
        return what


def module_hooks(module: str, namespace: MutableMapping[str, Any],
                 files: Sequence[str]) -> Tuple[Callable[[str], Any], Callable[[], List[str]]]:
    """A module's ``__getattr__`` and ``__dir__`` over the names of ``files``: each name
    resolved on first use, then kept in the module's ``namespace`` as a plain attribute."""
    names = Namespace(files)

    def getattr_(name: str) -> Any:
        value = names.resolve(module, name)
        namespace[name] = value
        return value

    def dir_() -> List[str]:
        return sorted(set(namespace) | set(names.names()))

    return getattr_, dir_
