"""authpb's users, roles and permissions (auth.proto): what python-etcd3's generated ``auth_pb2`` held,
from etcdfast's runtime schema."""

from __future__ import annotations

from ._files import module_hooks

__getattr__, __dir__ = module_hooks(__name__, globals(), ["etcd/authpb/auth.proto"])
