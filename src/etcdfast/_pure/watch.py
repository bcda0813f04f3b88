"""Watch stream codec: requests to protobuf bytes, responses to result tuples.

Pure-Python twin of ``_fast/watch.pyx``; both expose the same functions with
the same signatures and return the same types. Built on the helpers of
``wire.py`` (same encoding rules, same decoder wrapper, same header and
key-value conversion), so watch and KV results can never differ in shape.

Event types: etcd's ``Event.EventType`` is a proto3 (open) enum, so a future
server could send a number we do not know. Such an event keeps its plain
``int`` as ``Event.type`` instead of an :class:`EventType` member, as protobuf
itself keeps unknown enum numbers. Failing the whole response instead would
make the watch unusable: a resume would fetch the same event and fail again.
"""

from __future__ import annotations

from typing import Any

from ..types import WatchResponse
from .records import Events
from .revision import _int64
from .wire import _bytes, _decoder, _flag, _header, _int_field, _len_field, _new

__all__ = [
    "encode_watch_create",
    "encode_watch_cancel",
    "encode_watch_progress",
    "decode_watch",
]

# WatchCreateRequest.filters (field 5) is a packed repeated enum: tag, length,
# then one one-byte varint per filter (NOPUT = 0, NODELETE = 1). An explicitly
# requested NOPUT is written even though 0 is the enum default, because it is
# an element of a repeated field, not an unset scalar.
_FILTERS = {
    (False, False): b"",
    (True, False): b"\x2a\x01\x00",
    (False, True): b"\x2a\x01\x01",
    (True, True): b"\x2a\x02\x00\x01",
}


def encode_watch_create(
    key: bytes,
    range_end: bytes,
    start_revision: int,
    progress_notify: bool,
    no_put: bool,
    no_delete: bool,
    prev_kv: bool,
    watch_id: int,
    fragment: bool,
) -> bytes:
    """Encode a ``WatchRequest`` holding a ``WatchCreateRequest``.

    ``start_revision`` 0 watches from now; ``watch_id`` 0 lets the server pick
    the id. ``no_put``/``no_delete`` become the NOPUT/NODELETE filters.
    """
    key, range_end = _bytes(key), _bytes(range_end)
    create = b"".join(
        (
            _len_field(b"\x0a", key) if key else b"",
            _len_field(b"\x12", range_end) if range_end else b"",
            _int_field(b"\x18", _int64(start_revision)),
            _flag(b"\x20", progress_notify),
            _FILTERS[bool(no_put), bool(no_delete)],
            _flag(b"\x30", prev_kv),
            _int_field(b"\x38", _int64(watch_id)),
            _flag(b"\x40", fragment),
        )
    )
    # The oneof member is written even when empty: that is what selects it.
    return _len_field(b"\x0a", create)


def encode_watch_cancel(watch_id: int) -> bytes:
    """Encode a ``WatchRequest`` holding a ``WatchCancelRequest`` for ``watch_id``."""
    return _len_field(b"\x12", _int_field(b"\x08", _int64(watch_id)))


_PROGRESS_REQUEST = b"\x1a\x00"  # the empty WatchProgressRequest, present: it is the request


def encode_watch_progress() -> bytes:
    """Encode a ``WatchRequest`` holding a ``WatchProgressRequest``."""
    return _PROGRESS_REQUEST


# -- responses ----------------------------------------------------------------


def _watch(m: Any) -> WatchResponse:
    return _new(
        WatchResponse,
        (
            _header(m),
            m.watch_id,
            m.created,
            m.canceled,
            m.compact_revision,
            m.cancel_reason,
            m.fragment,
            Events(m.events),
        ),
    )


# upb does the parsing, including the UTF-8 check on cancel_reason (a proto3
# string): invalid bytes there are a ProtocolError like any malformed input.
decode_watch = _decoder("WatchResponse", _watch)
decode_watch.__name__ = decode_watch.__qualname__ = "decode_watch"
decode_watch.__module__ = __name__
