"""Printing results the way etcdctl does: ``simple``, ``json`` and ``table``.

Keys and values are bytes and are written to stdout as bytes (``simple``
output of a binary value is the value itself, as with etcdctl); ``--hex``
turns every byte into a ``\\xNN`` escape instead. ``json`` output follows
etcdctl's ``-w json`` exactly: Go's encoding of the protobuf response, so
keys and values are base64, numbers are JSON numbers and zero-valued fields
are left out (``omitempty``).
"""

from __future__ import annotations

import base64
import json
from typing import TYPE_CHECKING, Any, Dict, Iterable, List, Optional, Sequence, TextIO, Union

if TYPE_CHECKING:
    from ..types import CompactResult, KeyValue, OpResult, ResponseHeader

__all__ = [
    "Output",
    "hex_escape",
    "header_json",
    "kv_json",
    "result_json",
    "dumps",
    "render_table",
    "lease_hex",
    "go_quote",
    "fields_header",
    "fields_kv",
]

Text = Union[str, bytes]


class Output:
    """Bytes-safe writer over a text stream (uses its binary buffer when it has one)."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self._binary = getattr(stream, "buffer", None)
        self._text_pending = False

    def write(self, data: Text) -> None:
        if isinstance(data, str):
            self.stream.write(data)
            self._text_pending = True
            return
        if self._binary is not None:
            if self._text_pending:  # keep text written earlier in order
                self.stream.flush()
                self._text_pending = False
            self._binary.write(data)
        else:
            self.stream.write(data.decode("utf-8", "surrogateescape"))

    def line(self, data: Text = b"") -> None:
        self.write(data + "\n" if isinstance(data, str) else data + b"\n")

    def flush(self) -> None:
        self.stream.flush()
        self._text_pending = False
        if self._binary is not None:
            self._binary.flush()


def hex_escape(data: bytes) -> bytes:
    """etcdctl's ``--hex``: every byte as ``\\xNN``."""
    return b"".join(b"\\x%02x" % byte for byte in data)


def lease_hex(lease_id: int) -> str:
    """Lease IDs print as 16 hex digits, as etcdctl does."""
    return f"{lease_id:016x}"


def dumps(obj: Any) -> str:
    """Compact JSON, like Go's encoding/json."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


_GO_ESCAPES = {7: "\\a", 8: "\\b", 12: "\\f", 10: "\\n", 13: "\\r", 9: "\\t", 11: "\\v",
               0x5C: "\\\\", 0x22: '\\"'}


def go_quote(data: Union[bytes, str]) -> str:
    """Go's ``%q`` of a string (strconv.Quote): printable text as is, escapes otherwise."""
    raw = data.encode("utf-8", "surrogateescape") if isinstance(data, str) else data
    text = raw.decode("utf-8", "surrogateescape")
    out = ['"']
    for ch in text:
        code = ord(ch)
        if 0xDC80 <= code <= 0xDCFF:  # a byte that is not UTF-8
            out.append(f"\\x{code - 0xDC00:02x}")
        elif code < 0x80:
            if code in _GO_ESCAPES:
                out.append(_GO_ESCAPES[code])
            elif 0x20 <= code < 0x7F:
                out.append(ch)
            else:
                out.append(f"\\x{code:02x}")
        elif ch.isprintable():
            out.append(ch)
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)


def fields_header(header: Optional["ResponseHeader"]) -> str:
    """etcdctl's ``-w fields`` header lines."""
    h = header
    return (f'"ClusterID" : {h.cluster_id if h else 0}\n"MemberID" : {h.member_id if h else 0}\n'
            f'"Revision" : {h.revision if h else 0}\n"RaftTerm" : {h.raft_term if h else 0}\n')


def fields_kv(kv: "KeyValue", prefix: str = "") -> str:
    """etcdctl's ``-w fields`` lines of one key-value."""
    return (f'"{prefix}Key" : {go_quote(kv.key)}\n"{prefix}CreateRevision" : {kv.create_revision}\n'
            f'"{prefix}ModRevision" : {kv.mod_revision}\n"{prefix}Version" : {kv.version}\n'
            f'"{prefix}Value" : {go_quote(kv.value)}\n"{prefix}Lease" : {kv.lease}\n')


def header_json(header: Optional["ResponseHeader"]) -> Dict[str, int]:
    if header is None:
        return {}
    fields = (
        ("cluster_id", header.cluster_id),
        ("member_id", header.member_id),
        ("revision", header.revision),
        ("raft_term", header.raft_term),
    )
    return {name: value for name, value in fields if value}


def kv_json(kv: "KeyValue") -> Dict[str, Any]:
    """One ``mvccpb.KeyValue`` as etcdctl prints it (base64 key/value, omitempty)."""
    out: Dict[str, Any] = {}
    if kv.key:
        out["key"] = _b64(kv.key)
    for name in ("create_revision", "mod_revision", "version"):
        value = getattr(kv, name)
        if value:
            out[name] = value
    if kv.value:
        out["value"] = _b64(kv.value)
    if kv.lease:
        out["lease"] = kv.lease
    return out


def _with_header(header: "ResponseHeader") -> Dict[str, Any]:
    out: Dict[str, Any] = {}
    h = header_json(header)
    if h:
        out["header"] = h
    return out


def result_json(result: Union["OpResult", "CompactResult", None]) -> Dict[str, Any]:
    """A Range/Put/DeleteRange/Txn/Compaction response as etcdctl's JSON object."""
    from ..types import CompactResult, DeleteResult, GetResult, PutResult, TxnResult

    if result is None:
        return {}
    if isinstance(result, GetResult):
        out = _with_header(result.header)
        if result.kvs:
            out["kvs"] = [kv_json(kv) for kv in result.kvs]
        if result.more:
            out["more"] = True
        if result.count:
            out["count"] = result.count
        return out
    if isinstance(result, PutResult):
        out = _with_header(result.header)
        if result.prev_kv is not None:
            out["prev_kv"] = kv_json(result.prev_kv)
        return out
    if isinstance(result, DeleteResult):
        out = _with_header(result.header)
        if result.deleted:
            out["deleted"] = result.deleted
        if result.prev_kvs:
            out["prev_kvs"] = [kv_json(kv) for kv in result.prev_kvs]
        return out
    if isinstance(result, TxnResult):
        out = _with_header(result.header)
        if result.succeeded:
            out["succeeded"] = True
        responses = []
        for response in result.responses:
            responses.append({"Response": _txn_op_json(response)} if response is not None else {})
        if responses:
            out["responses"] = responses
        return out
    if isinstance(result, CompactResult):
        return _with_header(result.header)
    raise TypeError(f"cannot print {type(result).__name__} as JSON")


def _txn_op_json(response: "OpResult") -> Dict[str, Any]:
    from ..types import DeleteResult, GetResult, PutResult, TxnResult

    name = {
        GetResult: "response_range",
        PutResult: "response_put",
        DeleteResult: "response_delete_range",
        TxnResult: "response_txn",
    }[type(response)]
    return {name: result_json(response)}


def _width(cell: bytes) -> int:
    # Columns line up by characters, not bytes ("µs" is 3 bytes, 2 characters).
    return len(cell.decode("utf-8", "replace"))


def _pad(cell: bytes, width: int, align: str) -> bytes:
    room = width - _width(cell)
    if align == "center":
        left = room // 2
        return b" " * left + cell + b" " * (room - left)
    return b" " * room + cell


def render_table(headers: Sequence[str], rows: Iterable[Sequence[Text]]) -> bytes:
    """An ASCII table in etcdctl's style (centred headers, right-aligned cells)."""
    cells: List[List[bytes]] = [
        [c.encode() if isinstance(c, str) else c for c in row] for row in rows
    ]
    head = [h.encode() for h in headers]
    widths = [_width(h) for h in head]
    for row in cells:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], _width(cell))
    rule = b"+" + b"+".join(b"-" * (w + 2) for w in widths) + b"+\n"
    lines = [rule, b"|" + b"|".join(b" " + _pad(h, w, "center") + b" " for h, w in zip(head, widths))
             + b"|\n", rule]
    for row in cells:
        lines.append(b"|" + b"|".join(b" " + _pad(c, w, "right") + b" " for c, w in zip(row, widths))
                     + b"|\n")
    lines.append(rule)
    return b"".join(lines)
