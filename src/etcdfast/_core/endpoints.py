"""etcd endpoints: parsing, resolution, the gRPC target, membership updates.

Pure data: which addresses a client talks to and how grpc should be told
(one target balanced round-robin over every member, as Go's client does).
Opening the channel is the executors' job.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any, Iterable, List, Optional, Sequence, Tuple, Union
from urllib.parse import urlsplit

__all__ = ["Endpoint", "EndpointsLike", "parse_endpoints", "channel_target", "synced_endpoints"]

EndpointsLike = Union[str, Sequence[str]]


class Endpoint:
    """One etcd member address: ``host:port``, ``http(s)://host:port``, or a
    unix socket: ``unix://path`` (``unixs://`` with TLS).

    A unix endpoint's path is taken as etcd spells it: ``unix://localhost:2379``
    is the socket file ``localhost:2379`` in the current directory (what
    ``etcd --listen-client-urls unix://localhost:2379`` creates in its own),
    ``unix:///run/etcd.sock`` an absolute path.
    """

    __slots__ = ("host", "port", "secure", "unix")

    def __init__(self, host: str, port: int, secure: bool = False, unix: bool = False) -> None:
        self.host = host  # a unix endpoint's socket path
        self.port = port  # 0 for a unix endpoint
        self.secure = secure
        self.unix = unix

    @classmethod
    def parse(cls, text: str) -> "Endpoint":
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"endpoint must be a non-empty 'host:port' string, got {text!r}")
        raw = text.strip()
        secure = False
        if "://" in raw:
            scheme, _, rest = raw.partition("://")
            if scheme in ("unix", "unixs"):
                if not rest:
                    raise ValueError(f"endpoint {text!r}: a unix socket needs a path")
                return cls(rest, 0, scheme == "unixs", unix=True)
            parts = urlsplit(raw)
            if parts.scheme not in ("http", "https"):
                raise ValueError(f"endpoint {text!r}: scheme must be http, https, unix or unixs")
            secure = parts.scheme == "https"
            if parts.path not in ("", "/"):
                raise ValueError(f"endpoint {text!r}: a path is not allowed")
            raw = parts.netloc
        host, sep, port_text = raw.rpartition(":")
        if not sep or not host or not port_text.isdigit():
            raise ValueError(f"endpoint {text!r} is not 'host:port'")
        port = int(port_text)
        if not 0 < port < 65536:
            raise ValueError(f"endpoint {text!r}: port out of range")
        return cls(host.strip("[]"), port, secure)

    @property
    def address(self) -> str:
        """The gRPC target of this one member (``host:port``, ``unix:path``)."""
        if self.unix:
            return f"unix:{self.host}"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def __str__(self) -> str:
        if self.unix:
            return ("unixs://" if self.secure else "unix://") + self.host
        return ("https://" if self.secure else "") + self.address

    def __repr__(self) -> str:
        return f"Endpoint({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Endpoint) and str(self) == str(other)

    def __hash__(self) -> int:
        return hash(str(self))


def parse_endpoints(endpoints: EndpointsLike) -> List[Endpoint]:
    """Accept one endpoint or a list (a comma-separated string works too)."""
    items = endpoints.split(",") if isinstance(endpoints, str) else list(endpoints)
    parsed = [Endpoint.parse(item) for item in items]
    if not parsed:
        raise ValueError("at least one endpoint is needed")
    if len({e.secure for e in parsed}) > 1:
        raise ValueError("endpoints mix http and https")
    return parsed


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _resolve(endpoint: Endpoint) -> Optional[Endpoint]:
    """The endpoint with its host name resolved to one IP address (None if it does not resolve)."""
    if _is_ip(endpoint.host):
        return endpoint
    try:
        infos = socket.getaddrinfo(endpoint.host, endpoint.port, type=socket.SOCK_STREAM)
    except OSError:
        return None
    # Prefer IPv4: one balanced target cannot mix address families.
    infos.sort(key=lambda info: info[0] != socket.AF_INET)
    return Endpoint(str(infos[0][4][0]), endpoint.port, endpoint.secure) if infos else None


def channel_target(endpoints: Sequence[Endpoint]) -> Tuple[str, List[Tuple[str, Any]]]:
    """The gRPC target string and extra options for a set of endpoints.

    Several endpoints become one ``ipv4:``/``ipv6:`` target balanced
    round-robin by grpc itself, with per-call failover between the members
    it is connected to. Host names are resolved once here (grpc's dns
    resolver takes a single name); TLS then checks certificates against the
    first host name, which every member's certificate should carry.
    """
    if len(endpoints) == 1 or any(e.unix for e in endpoints):
        # grpc balances only over IP address lists: a unix socket stands alone.
        return endpoints[0].address, []
    resolved = [_resolve(e) for e in endpoints]
    usable = [e for e in resolved if e is not None]
    family = {ipaddress.ip_address(e.host).version for e in usable}
    if len(family) != 1:
        return endpoints[0].address, []  # nothing to balance over
    scheme = "ipv4" if family == {4} else "ipv6"
    target = f"{scheme}:" + ",".join(e.address for e in usable)
    options: List[Tuple[str, Any]] = [("grpc.lb_policy_name", "round_robin")]
    names = [e for e, r in zip(endpoints, resolved) if r is not None and not _is_ip(e.host)]
    # The authority -- with TLS, the name certificates are checked against --
    # is the first endpoint, as in Go. Left alone, grpc uses the whole
    # "a:1,b:2,..." address list, which no certificate names.
    options.append(("grpc.default_authority", (names or usable)[0].address))
    return target, options


def synced_endpoints(members: Iterable[Any], current: Sequence[Endpoint]) -> Optional[List[Endpoint]]:
    """Endpoints from a member list, or None when nothing changed (or nothing usable).

    Learners are left out: they refuse most requests. The scheme of the
    ``current`` endpoints is kept (TLS stays TLS).
    """
    secure = current[0].secure
    found: List[Endpoint] = []
    for member in members:
        if member.is_learner:
            continue
        for url in member.client_urls:
            try:
                endpoint = Endpoint.parse(url)
            except ValueError:
                continue
            endpoint.secure = secure
            if endpoint not in found:
                found.append(endpoint)
    if not found or set(found) == set(current):
        return None
    return found
