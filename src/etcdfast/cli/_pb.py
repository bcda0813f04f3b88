"""``-w protobuf``: a response written back as etcd's protobuf bytes, as etcdctl prints it.

etcdctl prints the raw ``Marshal()`` of the response it received. The client
decodes responses into records, so the CLI encodes them again here: fields in
field-number order, zero values left out (proto3), the header always present
(a Go pointer) -- the same bytes gogoproto writes. The field numbers are
etcd's (``rpc.proto``, ``kv.proto``); only the responses etcdctl can print
this way are covered.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional

from .._pure.keys import _varint  # the codec's encoder (no protobuf: cheap to import)

if TYPE_CHECKING:
    from ..types import KeyValue, ResponseHeader

__all__ = ["encode_response"]


def _int(field: int, value: int) -> bytes:
    return _varint(field << 3) + _varint(value) if value else b""


def _bytes(field: int, data: bytes, *, always: bool = False) -> bytes:
    if not data and not always:
        return b""
    return _varint(field << 3 | 2) + _varint(len(data)) + data


def header(h: Optional["ResponseHeader"]) -> bytes:
    if h is None:
        return b""
    body = _int(1, h.cluster_id) + _int(2, h.member_id) + _int(3, h.revision) + _int(4, h.raft_term)
    return _bytes(1, body, always=True)


def kv(k: "KeyValue") -> bytes:
    return (_bytes(1, k.key) + _int(2, k.create_revision) + _int(3, k.mod_revision)
            + _int(4, k.version) + _bytes(5, k.value) + _int(6, k.lease))


def encode_response(result: Any) -> bytes:
    """The protobuf bytes of a KV, txn, compaction, watch or lease response."""
    from ..types import (
        CompactResult,
        DeleteResult,
        GetResult,
        LeaseGrant,
        LeaseKeepAlive,
        LeaseTimeToLive,
        PutResult,
        TxnResult,
        WatchResponse,
    )

    if isinstance(result, GetResult):
        return (header(result.header) + b"".join(_bytes(2, kv(k), always=True) for k in result.kvs)
                + _int(3, int(result.more)) + _int(4, result.count))
    if isinstance(result, PutResult):
        prev = _bytes(2, kv(result.prev_kv), always=True) if result.prev_kv is not None else b""
        return header(result.header) + prev
    if isinstance(result, DeleteResult):
        return (header(result.header) + _int(2, result.deleted)
                + b"".join(_bytes(3, kv(k), always=True) for k in result.prev_kvs))
    if isinstance(result, TxnResult):
        ops = b""
        for response in result.responses:
            body = b""
            if response is not None:
                field = {GetResult: 1, PutResult: 2, DeleteResult: 3, TxnResult: 4}[type(response)]
                body = _bytes(field, encode_response(response), always=True)
            ops += _bytes(3, body, always=True)
        return header(result.header) + _int(2, int(result.succeeded)) + ops
    if isinstance(result, CompactResult):
        return header(result.header)
    if isinstance(result, WatchResponse):
        events = b""
        for event in result.events:
            body = _int(1, int(event.type)) + _bytes(2, kv(event.kv), always=True)
            if event.prev_kv is not None:
                body += _bytes(3, kv(event.prev_kv), always=True)
            events += _bytes(11, body, always=True)
        return (header(result.header) + _int(2, result.watch_id) + _int(3, int(result.created))
                + _int(4, int(result.canceled)) + _int(5, result.compact_revision) + events)
    if isinstance(result, (LeaseGrant, LeaseKeepAlive)):
        return header(result.header) + _int(2, result.id) + _int(3, result.ttl)
    if isinstance(result, LeaseTimeToLive):
        return (header(result.header) + _int(2, result.id) + _int(3, result.ttl) + _int(4, result.granted_ttl)
                + b"".join(_bytes(5, k, always=True) for k in result.keys))
    raise TypeError(f"marshal unsupported for type {type(result).__name__}")
