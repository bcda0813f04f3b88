"""DNS SRV discovery of etcd's client endpoints (``etcdctl --discovery-srv``).

etcd publishes its members under ``_etcd-client-ssl._tcp.<domain>`` (TLS) and
``_etcd-client._tcp.<domain>`` (plaintext), with ``-<name>`` appended to the
service when a cluster name is given (``--discovery-srv-name``), as Go's
``pkg/srv`` reads them. :func:`srv_endpoints` returns those endpoints;
``Client(discovery_srv=...)`` uses it in place of ``endpoints=``::

    client = etcdfast.Client(discovery_srv="example.com")

The records come from the name servers of ``/etc/resolv.conf`` (or
``nameservers=``, or ``ETCDFAST_NAMESERVERS``: a comma-separated list of
``host[:port]``), asked over UDP and, for a truncated answer, TCP.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import struct
from typing import List, Optional, Sequence, Tuple

from ._core.dns import DnsError, SrvRecord, parse_srv_answer, srv_query
from ._core.endpoints import Endpoint
from .errors import InvalidArgumentError, Unavailable

__all__ = ["srv_endpoints", "srv_service", "system_nameservers"]

log = logging.getLogger("etcdfast.discovery")

DEFAULT_TIMEOUT = 2.0
RESOLV_CONF = "/etc/resolv.conf"


def srv_service(scheme: str, service_name: str = "") -> str:
    """The SRV service etcd's clients look up: ``etcd-client[-ssl][-<name>]``."""
    service = "etcd-client-ssl" if scheme == "https" else "etcd-client"
    return f"{service}-{service_name}" if service_name else service


def system_nameservers() -> List[Tuple[str, int]]:
    """``ETCDFAST_NAMESERVERS`` if set, else the ``nameserver`` lines of /etc/resolv.conf."""
    configured = os.environ.get("ETCDFAST_NAMESERVERS", "").strip()
    if configured:
        return [_server(item) for item in configured.split(",") if item.strip()]
    servers: List[Tuple[str, int]] = []
    try:
        with open(RESOLV_CONF) as conf:
            for line in conf:
                fields = line.split()
                if len(fields) >= 2 and fields[0] == "nameserver":
                    servers.append((fields[1], 53))
    except OSError:
        pass
    return servers or [("127.0.0.1", 53)]


def _server(text: str) -> Tuple[str, int]:
    text = text.strip()
    if text.startswith("[") and "]" in text:  # [v6]:port
        host, _, port = text[1:].partition("]")
        return host, int(port.lstrip(":") or 53)
    if text.count(":") == 1:
        host, _, port = text.partition(":")
        return host, int(port)
    return text, 53


def _exchange(query: bytes, query_id: int, server: Tuple[str, int], timeout: float) -> List[SrvRecord]:
    family = socket.AF_INET6 if ":" in server[0] else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as udp:
        udp.settimeout(timeout)
        udp.connect(server)
        udp.send(query)
        while True:
            answer = udp.recv(65535)
            if answer[:2] == query[:2]:  # not a stray datagram
                break
    records, truncated = parse_srv_answer(answer, query_id)
    if not truncated:
        return records
    with socket.create_connection(server, timeout) as tcp:  # RFC 1035 4.2.2: length-prefixed
        tcp.sendall(struct.pack("!H", len(query)) + query)
        length = struct.unpack("!H", _recv_exactly(tcp, 2))[0]
        records, _ = parse_srv_answer(_recv_exactly(tcp, length), query_id)
    return records


def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise DnsError("the DNS server closed the TCP connection early")
        data += chunk
    return data


def lookup_srv(name: str, nameservers: Sequence[Tuple[str, int]], timeout: float) -> List[SrvRecord]:
    """The SRV records of ``name``, by priority (lowest first) then weight
    (highest first); the first name server that answers decides."""
    errors = []
    for server in nameservers:
        query_id = random.randrange(1 << 16)
        try:
            records = _exchange(srv_query(name, query_id), query_id, server, timeout)
        except (OSError, DnsError) as exc:
            errors.append(f"{server[0]}:{server[1]}: {exc}")
            continue
        return sorted(records, key=lambda r: (r.priority, -r.weight))
    raise Unavailable(f"no DNS server answered for {name} ({'; '.join(errors)})")


def srv_endpoints(
    domain: str,
    service_name: str = "",
    *,
    insecure: bool = False,
    nameservers: Optional[Sequence[str]] = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> List[str]:
    """The client endpoints etcd publishes for ``domain`` in DNS SRV records.

    TLS endpoints (``https://host:port``) come first, from
    ``_etcd-client-ssl._tcp.<domain>``; plaintext ones from
    ``_etcd-client._tcp.<domain>`` are dropped unless ``insecure=True``
    (etcdctl's ``--insecure-discovery``), as etcdctl does, with a warning
    logged. ``service_name`` selects a named cluster
    (``_etcd-client-<name>._tcp``). Raises
    :class:`~etcdfast.errors.Unavailable` when no endpoint is found.
    """
    if not isinstance(domain, str) or not domain.strip(". "):
        raise InvalidArgumentError(f"discovery domain must be a non-empty name, got {domain!r}")
    servers = [_server(s) for s in nameservers] if nameservers is not None else system_nameservers()
    found: List[str] = []
    problems: List[str] = []
    for scheme in ("https", "http"):
        name = f"_{srv_service(scheme, service_name)}._tcp.{domain.strip('.')}"
        try:
            records = lookup_srv(name, servers, timeout)
        except Unavailable as exc:
            problems.append(str(exc))
            continue
        if not records:
            problems.append(f"no SRV records for {name}")
        for record in records:
            endpoint = str(Endpoint(record.target.rstrip("."), record.port, scheme == "https"))
            if scheme == "http":
                endpoint = "http://" + endpoint
                if not insecure:
                    log.warning("ignoring discovered insecure endpoint %r", endpoint)
                    continue
            if endpoint not in found:
                found.append(endpoint)
    if not found:
        raise Unavailable(f"DNS discovery of {domain!r} found no usable endpoint: {'; '.join(problems)}")
    return found
