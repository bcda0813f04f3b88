"""Throw-away TLS material for tests: :func:`make_certificates` and :class:`Certificates`."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from typing import NamedTuple

__all__ = ["Certificates", "make_certificates"]


class Certificates(NamedTuple):
    """PEM files made by :func:`make_certificates` (paths)."""

    ca: str
    server_cert: str
    server_key: str
    client_cert: str
    client_key: str
    #: A server certificate that expired the moment it was made.
    expired_cert: str
    expired_key: str
    #: A CA that signed none of the above, for "unknown authority" tests.
    other_ca: str


def _openssl(*args: str, cwd: str) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        raise FileNotFoundError("make_certificates needs the openssl command")
    subprocess.run([openssl, *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_certificates(directory: str | os.PathLike[str], client_name: str = "root") -> Certificates:
    """Make a throw-away CA and certificates for TLS tests (P-256 keys; uses ``openssl``).

    The server certificate is valid for ``127.0.0.1`` and ``localhost``; the
    client certificate's CN is ``client_name`` (etcd maps it to a user when
    ``--client-cert-auth`` is on and no password is given).
    """
    d = os.fspath(directory)
    os.makedirs(d, exist_ok=True)
    key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    for ca in ("ca", "other-ca"):
        _openssl("req", "-x509", *key, "-keyout", f"{ca}.key", "-out", f"{ca}.crt",
                 "-days", "2", "-subj", f"/CN=etcdfast test {ca}", cwd=d)
    with open(os.path.join(d, "server.ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n")
    with open(os.path.join(d, "client.ext"), "w") as f:
        f.write("extendedKeyUsage=clientAuth\n")
    for name, cn, ext, days in (("server", "localhost", "server.ext", "2"),
                                ("client", client_name, "client.ext", "2"),
                                ("expired", "localhost", "server.ext", "0")):
        _openssl("req", *key, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={cn}", cwd=d)
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                 "-CAcreateserial", "-out", f"{name}.crt", "-days", days, "-extfile", ext, cwd=d)
    path = functools.partial(os.path.join, d)
    return Certificates(
        path("ca.crt"), path("server.crt"), path("server.key"), path("client.crt"),
        path("client.key"), path("expired.crt"), path("expired.key"), path("other-ca.crt"),
    )
