"""``insecure_skip_verify``: trust the certificate a member presents, as it is.

grpcio has no switch to skip certificate verification (Go's
``InsecureSkipVerify``), so the executors do the next best thing when asked:
before opening a channel they make one TLS handshake of their own with no
verification, take the certificates the member presents, and give grpc those
as the trusted roots, with the name the leaf certificate carries as the name
to check. Chain and host name then always match; the validity period is
still checked by grpc's TLS (an expired certificate is refused).
"""

from __future__ import annotations

import os
import socket
import ssl
import tempfile
from typing import Any, Dict, List, Optional, Tuple

from .errors import Unavailable

__all__ = ["presented_certificates", "trust_presented"]

#: How long fetching one member's certificate may take.
FETCH_TIMEOUT = 5.0


def _connect(address: str, timeout: float) -> Tuple[socket.socket, Optional[str]]:
    if address.startswith("unix:"):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        sock.connect(address[len("unix:"):])
        return sock, None
    host, _, port = address.rpartition(":")
    host = host.strip("[]")
    return socket.create_connection((host, int(port)), timeout), host


def _decoded(der: bytes) -> Dict[str, Any]:
    """The fields of a DER certificate, as ``SSLSocket.getpeercert()`` gives them."""
    with tempfile.NamedTemporaryFile("w", suffix=".pem", delete=False) as file:
        file.write(ssl.DER_cert_to_PEM_cert(der))
    try:
        return ssl._ssl._test_decode_cert(file.name)  # type: ignore[attr-defined,no-any-return]
    finally:
        os.unlink(file.name)


def _name_in(info: Dict[str, Any]) -> Optional[str]:
    """A name the certificate is valid for: a DNS name, else its common name, else an IP."""
    alternatives = info.get("subjectAltName", ())
    for kind, value in alternatives:
        if kind == "DNS" and "*" not in value:
            return str(value)
    for rdn in info.get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return str(value)
    for kind, value in alternatives:
        if kind == "IP Address":
            return str(value).strip()
    return None


def presented_certificates(address: str, timeout: float = FETCH_TIMEOUT) -> Tuple[bytes, Optional[str]]:
    """The certificates (PEM) the member at ``address`` (a gRPC target:
    ``host:port`` or ``unix:path``) presents, and a name its leaf carries."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(["h2"])
    sock, host = _connect(address, timeout)
    with sock:
        sni = host if host and not _is_ip(host) else None
        with context.wrap_socket(sock, server_hostname=sni) as tls:
            ders: List[bytes]
            chain = getattr(tls._sslobj, "get_unverified_chain", None)  # type: ignore[attr-defined]
            if chain is not None:  # Python >= 3.10: the whole presented chain
                ders = [c.public_bytes(ssl._ssl.ENCODING_DER) for c in chain()]  # type: ignore[attr-defined]
            else:
                leaf = tls.getpeercert(binary_form=True)
                ders = [leaf] if leaf else []
    if not ders:
        raise ssl.SSLError(f"{address} presented no certificate")
    pem = "".join(ssl.DER_cert_to_PEM_cert(der) for der in ders).encode()
    return pem, _name_in(_decoded(ders[0]))


def _is_ip(host: str) -> bool:
    try:
        socket.inet_pton(socket.AF_INET6 if ":" in host else socket.AF_INET, host)
    except OSError:
        return False
    return True


def trust_presented(addresses: List[str]) -> Tuple[bytes, Optional[str]]:
    """Roots and a name for a channel to ``addresses`` that trusts what each presents.

    The name is the first member's: grpc checks one name per channel, so the
    members of one balanced channel must share it (they do, when their
    certificates come from one set-up; otherwise pin calls with ``endpoint=``).
    """
    roots: List[bytes] = []
    name: Optional[str] = None
    errors: List[str] = []
    for address in addresses:
        try:
            pem, leaf_name = presented_certificates(address)
        except (OSError, ValueError) as exc:
            errors.append(f"{address}: {exc}")
            continue
        roots.append(pem)
        name = name or leaf_name
    if not roots:
        raise Unavailable("insecure_skip_verify: no member presented a certificate ("
                          + "; ".join(errors) + ")", endpoint=",".join(addresses))
    return b"".join(roots), name
