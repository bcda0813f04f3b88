"""Record formats for ``load`` and ``dump``: JSON Lines, CSV and etcdctl's JSON.

Every format round-trips any key and value exactly, binary included:

``jsonl``
    one JSON object per line. Text (valid UTF-8) is written as is:
    ``{"key": "/app/a", "value": "hello"}``; bytes that are not UTF-8 are
    written base64 under ``key_b64``/``value_b64``, field by field:
    ``{"key": "/app/b", "value_b64": "AP8="}``. Also read:
    ``{"key": ..., "value": ..., "encoding": "base64"}`` (both fields base64).
    Other fields are ignored; blank lines are skipped.
``csv``
    columns ``key,value[,encoding]``; ``encoding`` is empty for text and
    ``base64`` when both fields are base64. A first row naming the columns
    (``key,value,encoding`` or ``key_b64,value_b64``) is optional on input
    and always written by ``dump``.
``etcdctl-json``
    what ``etcdctl get --prefix KEY -w json`` (or ``etcdfast get ... -w json``)
    prints: ``{"header": {...}, "kvs": [{"key": <base64>, "value": <base64>,
    ...}], "count": N}``; several such documents may follow each other.

When ``--format`` is omitted it follows the file name (``.jsonl``/``.ndjson``,
``.csv``, ``.json``); for stdin and other names the input is sniffed, and
``dump`` writes ``jsonl``.
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
import json
import os
from typing import IO, Any, Dict, Iterator, List, Optional, Tuple

from .output import dumps, kv_json

__all__ = [
    "FORMATS",
    "InputError",
    "RecordReader",
    "open_reader",
    "format_for_path",
    "RecordWriter",
    "open_writer",
]

FORMATS = ("jsonl", "csv", "etcdctl-json")

_EXTENSIONS = {
    ".jsonl": "jsonl", ".ndjson": "jsonl", ".jsonlines": "jsonl",
    ".csv": "csv",
    ".json": "etcdctl-json",
}

Item = Tuple[bytes, bytes]


class InputError(ValueError):
    """A record that cannot be loaded; ``line`` is its 1-based line number."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"line {line}: {message}")
        self.line = line
        self.problem = message


def format_for_path(path: str) -> Optional[str]:
    """The format a file name implies, or ``None``."""
    return _EXTENSIONS.get(os.path.splitext(path)[1].lower())


def _b64decode(text: Any, field: str, line: int) -> bytes:
    if not isinstance(text, str):
        raise InputError(line, f"{field} must be a base64 string, not {type(text).__name__}")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise InputError(line, f"{field} is not valid base64: {text[:40]!r}") from None


def _text(value: Any, field: str, line: int) -> bytes:
    if not isinstance(value, str):
        raise InputError(line, f"{field} must be a string, not {type(value).__name__} "
                               f"(numbers and null are not keys or values; quote them)")
    try:
        return value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate from a \udXXX escape
        raise InputError(line, f"{field} is not valid Unicode text; use {field}_b64") from None


def _check_encoding(value: Any, line: int) -> bool:
    """True for base64, False for text."""
    if value in (None, "", "text", "utf-8", "utf8"):
        return False
    if value == "base64":
        return True
    raise InputError(line, f"unknown encoding {value!r} (use \"base64\", or leave it out for text)")


class RecordReader:
    """Iterates ``(key, value)`` bytes pairs; a bad record raises :class:`InputError`.

    ``line`` is the line number where the last record started; ``records``
    counts records produced; ``bytes_read`` how far into the input the reader
    is (for progress estimates); ``total`` is the number of records when it
    is known up front (etcdctl JSON), else ``None``.
    """

    def __init__(self, stream: IO[bytes], fmt: str, *, prefix: bytes = b"",
                 max_item_bytes: Optional[int] = None) -> None:
        if fmt not in FORMATS:
            raise ValueError(f"unknown format {fmt!r}")
        self.stream = stream
        self.format = fmt
        self.prefix = prefix
        self.max_item_bytes = max_item_bytes
        self.line = 0
        self.records = 0
        self.bytes_read = 0
        self.total: Optional[int] = None
        self._parsed: Optional[List[Tuple[int, Item]]] = None
        if fmt == "etcdctl-json":
            self._parsed = list(self._etcdctl_json())
            self.total = len(self._parsed)

    def __iter__(self) -> Iterator[Item]:
        if self._parsed is not None:
            for line, item in self._parsed:
                self.line = line
                self.records += 1
                yield item
            return
        source = self._jsonl() if self.format == "jsonl" else self._csv()
        for key, value in source:
            self.records += 1
            yield key, value

    def _item(self, key: bytes, value: bytes) -> Item:
        key = self.prefix + key
        if not key:
            raise InputError(self.line, "the key is empty (etcd keys need at least one byte)")
        if self.max_item_bytes is not None and len(key) + len(value) > self.max_item_bytes:
            raise InputError(
                self.line,
                f"record too large: {len(key) + len(value)} bytes of key and value, "
                f"more than one request may carry ({self.max_item_bytes}; see --max-batch-bytes)",
            )
        return key, value

    # -- jsonl ------------------------------------------------------------------

    def _jsonl(self) -> Iterator[Item]:
        for raw in self.stream:
            self.line += 1
            self.bytes_read += len(raw)
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw.decode("utf-8"))
            except UnicodeDecodeError:
                raise InputError(self.line, "not valid UTF-8 (binary data goes in key_b64/value_b64)") \
                    from None
            except ValueError as exc:
                raise InputError(self.line, f"not valid JSON: {exc}") from None
            if not isinstance(obj, dict):
                raise InputError(self.line, f"expected a JSON object, got {type(obj).__name__}")
            if "kvs" in obj or "header" in obj:
                raise InputError(self.line, "this looks like etcdctl -w json output; "
                                            "use --format etcdctl-json")
            yield self._item(self._field(obj, "key", required=True),
                             self._field(obj, "value", required=True))

    def _field(self, obj: Dict[str, Any], name: str, required: bool) -> bytes:
        line = self.line
        b64 = _check_encoding(obj.get("encoding"), line)
        plain, encoded = obj.get(name), obj.get(f"{name}_b64")
        if plain is not None and encoded is not None:
            raise InputError(line, f"both {name} and {name}_b64 are given; keep one")
        if encoded is not None:
            return _b64decode(encoded, f"{name}_b64", line)
        if plain is None:
            if name in obj:
                raise InputError(line, f"{name} is null")
            raise InputError(line, f"missing {name!r} (or {name}_b64)")
        return _b64decode(plain, name, line) if b64 else _text(plain, name, line)

    # -- csv --------------------------------------------------------------------

    def _csv(self) -> Iterator[Item]:
        text = io.TextIOWrapper(self.stream, encoding="utf-8", errors="strict", newline="")
        reader = csv.reader(text)
        columns: Optional[List[str]] = None
        first = True
        while True:
            start = reader.line_num + 1
            try:
                row = next(reader)
            except StopIteration:
                break
            except UnicodeDecodeError:
                raise InputError(start, "not valid UTF-8 (binary data goes in base64: "
                                        "use the encoding column)") from None
            except csv.Error as exc:
                raise InputError(start, f"bad CSV: {exc}") from None
            self.line = start
            self.bytes_read = self._position(text)
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            if first:
                first = False
                if row[0].strip().lower() in ("key", "key_b64"):
                    columns = [c.strip().lower() for c in row]
                    self._check_columns(columns)
                    continue
            yield self._csv_row(row, columns)
        text.detach()

    def _position(self, text: io.TextIOWrapper) -> int:
        try:
            return int(self.stream.tell())
        except (OSError, ValueError):
            return self.bytes_read

    def _check_columns(self, columns: List[str]) -> None:
        known = {"key", "key_b64", "value", "value_b64", "encoding"}
        unknown = [c for c in columns if c not in known]
        if unknown:
            raise InputError(self.line, f"unknown column(s) {', '.join(unknown)} "
                                        "(expected key,value[,encoding] or key_b64,value_b64)")
        if len(set(columns)) != len(columns):
            raise InputError(self.line, "a column is named twice")
        if not ({"key", "key_b64"} & set(columns)) or not ({"value", "value_b64"} & set(columns)):
            raise InputError(self.line, "the header needs a key and a value column")
        if {"key", "key_b64"} <= set(columns) or {"value", "value_b64"} <= set(columns):
            raise InputError(self.line, "give either key or key_b64 (value or value_b64), not both")

    def _csv_row(self, row: List[str], columns: Optional[List[str]]) -> Item:
        line = self.line
        if columns is None:
            if len(row) not in (2, 3):
                raise InputError(line, f"expected 2 or 3 columns (key,value[,encoding]), got {len(row)}")
            fields = dict(zip(("key", "value", "encoding"), row))
        else:
            if len(row) != len(columns):
                raise InputError(line, f"expected {len(columns)} columns, got {len(row)}")
            fields = dict(zip(columns, row))
        b64 = _check_encoding(fields.get("encoding"), line)
        out = []
        for name in ("key", "value"):
            if f"{name}_b64" in fields:
                out.append(_b64decode(fields[f"{name}_b64"], f"{name}_b64", line))
            elif b64:
                out.append(_b64decode(fields[name], name, line))
            else:
                out.append(fields[name].encode("utf-8"))
        return self._item(out[0], out[1])

    # -- etcdctl -w json ----------------------------------------------------------

    def _etcdctl_json(self) -> Iterator[Tuple[int, Item]]:
        data = self.stream.read()
        self.bytes_read = len(data)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InputError(data.count(b"\n", 0, exc.start) + 1, "not valid UTF-8") from None
        decoder = json.JSONDecoder()
        pos = 0
        while True:
            while pos < len(text) and text[pos].isspace():
                pos += 1
            if pos >= len(text):
                return
            line = text.count("\n", 0, pos) + 1
            try:
                doc, end = decoder.raw_decode(text, pos)
            except ValueError as exc:
                raise InputError(getattr(exc, "lineno", line), f"not valid JSON: {exc}") from None
            if not isinstance(doc, dict) or not ({"kvs", "header", "count"} & set(doc)):
                raise InputError(line, "expected etcdctl -w json output "
                                       '({"header": ..., "kvs": [...]}); for JSON Lines use --format jsonl')
            kvs = doc.get("kvs") or []
            if not isinstance(kvs, list):
                raise InputError(line, "kvs must be a list")
            for index, kv in enumerate(kvs):
                self.line = line
                where = f"kvs[{index}]"
                if not isinstance(kv, dict):
                    raise InputError(line, f"{where} must be an object")
                if "key" not in kv:
                    raise InputError(line, f"{where} has no key")
                key = _b64decode(kv["key"], f"{where}.key", line)
                value = _b64decode(kv.get("value", ""), f"{where}.value", line)
                yield line, self._item(key, value)
            pos = end


def sniff_format(head: bytes) -> str:
    """Guess the format from the first bytes of the input."""
    stripped = head.lstrip()
    if not stripped.startswith(b"{"):
        return "csv"
    first = stripped.split(b"\n", 1)[0]
    try:
        obj = json.loads(first)
    except ValueError:
        # A JSON document spread over lines: etcdctl output pretty-printed.
        return "etcdctl-json"
    if isinstance(obj, dict) and ({"kvs", "header"} & set(obj)):
        return "etcdctl-json"
    return "jsonl"


class _Prefixed(io.RawIOBase):
    """``head`` followed by the rest of ``stream``: puts sniffed bytes back."""

    def __init__(self, head: bytes, stream: IO[bytes]) -> None:
        self._head = head
        self._stream = stream

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._head:
            n = min(len(buffer), len(self._head))
            buffer[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        read1 = getattr(self._stream, "read1", None)
        data = read1(len(buffer)) if read1 is not None else self._stream.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)


def open_reader(stream: IO[bytes], fmt: Optional[str], *, prefix: bytes = b"",
                max_item_bytes: Optional[int] = None) -> RecordReader:
    """A reader for ``stream``; ``fmt=None`` sniffs the format from the first
    non-blank line (which is then read again by the reader)."""
    if fmt is None:
        head = b""
        for _ in range(1000):  # skip a few blank lines, not a whole file of them
            line = stream.readline()
            head += line
            if not line or line.strip():
                break
        fmt = sniff_format(head) if head.strip() else "jsonl"
        stream = io.BufferedReader(_Prefixed(head, stream))
    return RecordReader(stream, fmt, prefix=prefix, max_item_bytes=max_item_bytes)


# -- writing -------------------------------------------------------------------------


def _as_text(data: bytes) -> Optional[str]:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


class RecordWriter:
    """Writes key-values in one format; :meth:`close` finishes the document."""

    def __init__(self, stream: IO[bytes], fmt: str, *, strip: bytes = b"",
                 header: Optional[Dict[str, int]] = None) -> None:
        if fmt not in FORMATS:
            raise ValueError(f"unknown format {fmt!r}")
        self.stream = stream
        self.format = fmt
        self.strip = strip
        self.records = 0
        self._csv: Optional[Any] = None
        self._text: Optional[io.TextIOWrapper] = None
        if fmt == "csv":
            self._text = io.TextIOWrapper(stream, encoding="utf-8", newline="", write_through=True)
            self._csv = csv.writer(self._text, lineterminator="\n")
            self._csv.writerow(["key", "value", "encoding"])
        self._header = header or {}

    def _key(self, key: bytes) -> bytes:
        if self.strip and key.startswith(self.strip):
            return key[len(self.strip):]
        return key

    def write(self, kv: Any) -> None:
        key = self._key(kv.key)
        value: bytes = kv.value
        if self.format == "jsonl":
            obj: Dict[str, Any] = {}
            for name, data in (("key", key), ("value", value)):
                text = _as_text(data)
                if text is None:
                    obj[f"{name}_b64"] = base64.b64encode(data).decode("ascii")
                else:
                    obj[name] = text
            self.stream.write(dumps(obj).encode("utf-8") + b"\n")
        elif self.format == "csv":
            assert self._csv is not None
            k, v = _as_text(key), _as_text(value)
            # NUL is valid UTF-8, but csv modules (Python < 3.11 included) choke on it.
            if k is None or v is None or "\x00" in k or "\x00" in v:
                self._csv.writerow([base64.b64encode(key).decode("ascii"),
                                    base64.b64encode(value).decode("ascii"), "base64"])
            else:
                self._csv.writerow([k, v, ""])
        else:
            item = dumps(kv_json(kv._replace(key=key) if key is not kv.key else kv)).encode()
            if self.records:
                self.stream.write(b"," + item)
            else:
                head = {"header": self._header} if self._header else {}
                self.stream.write(dumps(head)[:-1].encode() + (b"," if head else b"") + b'"kvs":[' + item)
        self.records += 1

    def close(self) -> None:
        if self.format == "etcdctl-json":
            # etcdctl leaves out an empty kvs list and a zero count (omitempty).
            if self.records:
                self.stream.write(b'],"count":%d}\n' % self.records)
            else:
                self.stream.write(dumps({"header": self._header} if self._header else {}).encode() + b"\n")
        if self._text is not None:
            self._text.flush()
            self._text.detach()
            self._text = None
        self.stream.flush()


def open_writer(stream: IO[bytes], fmt: str, **kwargs: Any) -> RecordWriter:
    return RecordWriter(stream, fmt, **kwargs)

