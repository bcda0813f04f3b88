"""DNS SRV messages, with no IO: the query to send and the records in an answer.

etcd's DNS discovery (``--discovery-srv``) looks up ``_etcd-client-ssl._tcp.<domain>``
and ``_etcd-client._tcp.<domain>`` (RFC 2782). The standard library resolves
addresses but not SRV records, so the few bytes of RFC 1035 needed are here;
``etcdfast.discovery`` sends them over UDP (TCP when the answer is truncated).
"""

from __future__ import annotations

import struct
from typing import List, NamedTuple, Tuple

__all__ = ["SrvRecord", "srv_query", "parse_srv_answer", "DnsError", "TYPE_SRV"]

TYPE_SRV = 33
_CLASS_IN = 1
_FLAG_RD = 0x0100  # recursion desired
_FLAG_TC = 0x0200  # truncated
_RCODE_NXDOMAIN = 3
_MAX_POINTERS = 32  # compression pointers followed in one name: more is a loop


class DnsError(Exception):
    """A malformed answer, or the server's refusal (``rcode``)."""

    def __init__(self, message: str, rcode: int = 0) -> None:
        super().__init__(message)
        self.rcode = rcode


class SrvRecord(NamedTuple):
    """One SRV record: where a service listens."""

    priority: int
    weight: int
    port: int
    target: str  # a host name, without the trailing dot


def srv_query(name: str, query_id: int) -> bytes:
    """A standard recursive query for the SRV records of ``name``."""
    encoded = []
    for part in name.rstrip(".").split("."):
        label = part.encode("idna") if part else b""
        if not 0 < len(label) <= 63:
            raise ValueError(f"DNS name {name!r}: labels must be 1-63 bytes")
        encoded.append(bytes((len(label),)) + label)
    header = struct.pack("!HHHHHH", query_id, _FLAG_RD, 1, 0, 0, 0)
    return header + b"".join(encoded) + b"\0" + struct.pack("!HH", TYPE_SRV, _CLASS_IN)


def _name(message: bytes, pos: int) -> Tuple[str, int]:
    """The (possibly compressed) name at ``pos`` and the position after it."""
    labels: List[str] = []
    end = -1
    for _ in range(_MAX_POINTERS):
        if pos >= len(message):
            raise DnsError("truncated name")
        length = message[pos]
        if length & 0xC0 == 0xC0:  # a pointer to an earlier name
            if pos + 1 >= len(message):
                raise DnsError("truncated name pointer")
            if end < 0:
                end = pos + 2
            pos = ((length & 0x3F) << 8) | message[pos + 1]
            continue
        if length == 0:
            return ".".join(labels), (pos + 1 if end < 0 else end)
        label = message[pos + 1:pos + 1 + length]
        if len(label) != length:
            raise DnsError("truncated label")
        labels.append(label.decode("ascii", "replace"))
        pos += 1 + length
    raise DnsError("name compression loop")


def parse_srv_answer(message: bytes, query_id: int) -> Tuple[List[SrvRecord], bool]:
    """The SRV records of an answer to :func:`srv_query`, and whether it was
    truncated (then ask again over TCP). A name that does not exist answers
    no records; any other refusal raises :class:`DnsError`."""
    if len(message) < 12:
        raise DnsError("answer shorter than a DNS header")
    answer_id, flags, questions, answers = struct.unpack_from("!HHHH", message)
    if answer_id != query_id:
        raise DnsError("answer to another query")
    rcode = flags & 0x000F
    if rcode == _RCODE_NXDOMAIN:
        return [], False
    if rcode:
        raise DnsError(f"DNS server refused the query (rcode {rcode})", rcode)
    pos = 12
    for _ in range(questions):
        _, pos = _name(message, pos)
        pos += 4
    records: List[SrvRecord] = []
    for _ in range(answers):
        _, pos = _name(message, pos)
        if pos + 10 > len(message):
            raise DnsError("truncated resource record")
        rtype, rclass, _ttl, length = struct.unpack_from("!HHIH", message, pos)
        pos += 10
        data_end = pos + length
        if data_end > len(message):
            raise DnsError("truncated record data")
        if rtype == TYPE_SRV and rclass == _CLASS_IN:
            if length < 7:
                raise DnsError("SRV record too short")
            priority, weight, port = struct.unpack_from("!HHH", message, pos)
            target, _ = _name(message, pos + 6)
            records.append(SrvRecord(priority, weight, port, target))
        pos = data_end  # CNAMEs and others are skipped
    return records, bool(flags & _FLAG_TC)
