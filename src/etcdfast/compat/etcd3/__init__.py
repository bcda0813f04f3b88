"""python-etcd3, on etcdfast: ``import etcdfast.compat.etcd3 as etcd3``.

The public API of python-etcd3 0.12.0 (``import etcd3``) and of its fork
etcd-sdk-python 0.0.7 (``import pyetcd``: ``MultiEndpointEtcd3Client``,
``Endpoint``, range options on every read), translated onto etcdfast's
:class:`etcdfast.Client`. Module names match python-etcd3's (``etcd3.client``,
``etcd3.exceptions``, ``etcd3.utils``, ``etcd3.events``, ``etcd3.leases``,
``etcd3.locks``, ``etcd3.members``, ``etcd3.transactions``, ``etcd3.watch``,
``etcd3.etcdrpc``), so code that imports them keeps working with
``sys.modules`` aliases or by changing the import.

What behaves differently from python-etcd3 is listed in the README
("Migrating from python-etcd3"): in short, what python-etcd3 got wrong is
fixed (watches resume instead of dying, every range option is honoured, the
auth token is refreshed, locks wait for the release), and results are
etcdfast's records with the protobuf messages' field names.
"""

from __future__ import annotations

from . import etcdrpc
from ._rpc import RpcError
from .client import Endpoint, Etcd3Client, MultiEndpointEtcd3Client, Transactions, client
from .exceptions import Etcd3Exception
from .leases import Lease
from .locks import Lock
from .members import Member

#: The python-etcd3 API this module provides.
__version__ = "0.12.0"

__all__ = (
    "etcdrpc",
    "Endpoint",
    "Etcd3Client",
    "Etcd3Exception",
    "MultiEndpointEtcd3Client",
    "RpcError",
    "Transactions",
    "client",
    "Lease",
    "Lock",
    "Member",
)
