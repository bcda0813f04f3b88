"""python-etcd3's ``etcd3.etcdrpc``: etcd's message classes and enums, from etcdfast's runtime schema.

``etcdrpc.RangeRequest``, ``etcdrpc.Compare.EQUAL``, ``etcdrpc.NOSPACE``... are
the message classes etcdfast builds at import time from its compiled
descriptors (``etcdfast._schema``) with the installed protobuf runtime: no
generated ``*_pb2.py``, no ``PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION`` switch.
As in etcd-sdk-python, the package holds rpc.proto's and auth.proto's names;
``etcdrpc.kv_pb2`` holds ``KeyValue`` and ``Event``. The generated gRPC stubs
(``KVStub``...) are not provided: calls go through etcdfast's client.
"""

from __future__ import annotations

from . import auth_pb2, kv_pb2, rpc_pb2  # noqa: F401 - the modules python-etcd3 had (lazy too)
from ._files import module_hooks

__getattr__, __dir__ = module_hooks(__name__, globals(), ["etcd/etcdserverpb/rpc.proto",
                                                          "etcd/authpb/auth.proto"])
