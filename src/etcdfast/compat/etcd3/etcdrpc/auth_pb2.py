"""authpb's users, roles and permissions (auth.proto): what python-etcd3's generated ``auth_pb2`` held,
from etcdfast's runtime schema."""

from __future__ import annotations

from typing import Any, List

from ._files import Namespace

_NAMES = Namespace(["etcd/authpb/auth.proto"])


def __getattr__(name: str) -> Any:
    value = _NAMES.resolve(__name__, name)
    globals()[name] = value  # the next lookup is a plain attribute
    return value


def __dir__() -> List[str]:
    return _NAMES.names()
