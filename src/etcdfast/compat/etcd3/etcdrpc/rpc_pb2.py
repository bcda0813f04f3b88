"""etcd's v3 API (rpc.proto): what python-etcd3's generated ``rpc_pb2`` held,
from etcdfast's runtime schema."""

from __future__ import annotations

from typing import Any, List

from ._files import Namespace

_NAMES = Namespace(["etcd/etcdserverpb/rpc.proto"])


def __getattr__(name: str) -> Any:
    value = _NAMES.resolve(__name__, name)
    globals()[name] = value  # the next lookup is a plain attribute
    return value


def __dir__() -> List[str]:
    return _NAMES.names()
