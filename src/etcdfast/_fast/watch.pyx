"""Watch stream codec (Cython twin of ``_pure/watch.py``).

The hot path of a busy watch: a response can carry a thousand events. Each
event is checked in C (messages.pxd's parse_event, with the KeyValue parser
the KV decoders use) and recorded in an ``Events`` sequence (records.pyx) by
where it lies and its revision; its ``Event`` record is built when the
consumer reaches it. Malformed input follows upb's rules (buffer.pxd) and
raises ProtocolError, as the pure twin does; so does a ``cancel_reason`` that
is not UTF-8 (upb checks proto3 strings).

Event types: an unknown ``Event.type`` number stays a plain ``int``, as
protobuf keeps unknown numbers of an open enum (see the pure twin for why
that beats failing the response).
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from cpython.long cimport PyLong_FromLong, PyLong_FromLongLong
from cpython.unicode cimport PyUnicode_DecodeUTF8
from libc.stdint cimport int32_t, int64_t, uint32_t, uint64_t
from libc.string cimport memset

from .buffer cimport (
    WT_LEN, WT_VARINT, as_int64, cptr, int_field_size, read_len, read_tag, read_varint, skip_field,
    varint_size, write_flag, write_int_field, write_varint,
)
from .messages cimport EventFields, Header, enter, parse_event, parse_header
from .records cimport Events, etcdfast_new_record, new_events, set_item
from .wire cimport (
    check_size, feed_tracker, header_record, malformed, new_bytes, opt_len_size, write_opt_len,
)

from ..errors import ProtocolError
from ..types import WatchResponse

__all__ = [
    "encode_watch_create",
    "encode_watch_cancel",
    "encode_watch_progress",
    "decode_watch",
]


# -- requests -----------------------------------------------------------------


def encode_watch_create(
    bytes key not None,
    bytes range_end not None,
    start_revision,
    bint progress_notify,
    bint no_put,
    bint no_delete,
    bint prev_kv,
    watch_id,
    bint fragment,
):
    """Encode a ``WatchRequest`` holding a ``WatchCreateRequest``.

    ``start_revision`` 0 watches from now; ``watch_id`` 0 lets the server pick
    the id. ``no_put``/``no_delete`` become the NOPUT/NODELETE filters.
    """
    cdef int64_t c_start_revision = as_int64(start_revision)
    cdef int64_t c_watch_id = as_int64(watch_id)
    # filters (field 5) is a packed repeated enum: tag, length, one byte per
    # filter (NOPUT = 0, NODELETE = 1). A requested NOPUT is written although
    # 0 is the enum default: it is an element of a list, not an unset scalar.
    cdef Py_ssize_t n_filters = no_put + no_delete
    cdef Py_ssize_t create_size = (
        opt_len_size(key) + opt_len_size(range_end) + int_field_size(c_start_revision)
        + 2 * progress_notify + (2 + n_filters if n_filters else 0) + 2 * prev_kv
        + int_field_size(c_watch_id) + 2 * fragment
    )
    # The oneof member is written even when empty: that is what selects it.
    cdef Py_ssize_t size = 1 + varint_size(<uint64_t>create_size) + create_size
    cdef unsigned char* start
    cdef bytes out = new_bytes(size, &start)
    start[0] = 0x0A  # WatchRequest.create_request
    cdef unsigned char* p = write_varint(start + 1, <uint64_t>create_size)
    p = write_opt_len(p, 0x0A, key)
    p = write_opt_len(p, 0x12, range_end)
    p = write_int_field(p, 0x18, c_start_revision)
    p = write_flag(p, 0x20, progress_notify)
    if n_filters:
        p[0] = 0x2A
        p[1] = <unsigned char>n_filters
        p += 2
        if no_put:
            p[0] = 0
            p += 1
        if no_delete:
            p[0] = 1
            p += 1
    p = write_flag(p, 0x30, prev_kv)
    p = write_int_field(p, 0x38, c_watch_id)
    p = write_flag(p, 0x40, fragment)
    check_size(p, start, size)
    return out


def encode_watch_cancel(watch_id):
    """Encode a ``WatchRequest`` holding a ``WatchCancelRequest`` for ``watch_id``."""
    cdef int64_t c_watch_id = as_int64(watch_id)
    cdef Py_ssize_t cancel_size = int_field_size(c_watch_id)  # at most 11 bytes
    cdef Py_ssize_t size = 2 + cancel_size
    cdef unsigned char* start
    cdef bytes out = new_bytes(size, &start)
    start[0] = 0x12  # WatchRequest.cancel_request
    start[1] = <unsigned char>cancel_size
    cdef unsigned char* p = write_int_field(start + 2, 0x08, c_watch_id)
    check_size(p, start, size)
    return out


cdef bytes _PROGRESS_REQUEST = b"\x1a\x00"  # the empty WatchProgressRequest, present: it is the request


def encode_watch_progress():
    """Encode a ``WatchRequest`` holding a ``WatchProgressRequest``."""
    return _PROGRESS_REQUEST


# -- responses ----------------------------------------------------------------

cdef str _NO_REASON = ""


cdef str _text(cptr p, cptr end):
    try:
        return PyUnicode_DecodeUTF8(<const char*>p, end - p, NULL)
    except UnicodeDecodeError:
        raise ProtocolError("malformed WatchResponse: cancel_reason is not UTF-8") from None


def decode_watch(bytes data, tracker=None):
    """Decode an ``etcdserverpb.WatchResponse``; feed its revision to ``tracker``."""
    if data is None:
        raise TypeError("expected bytes, got NoneType")
    cdef cptr p = <cptr>PyBytes_AS_STRING(data)
    cdef cptr end = p + PyBytes_GET_SIZE(data)
    cdef cptr sub_end, at
    cdef uint32_t field, wt
    cdef uint64_t v
    cdef Header header
    memset(&header, 0, sizeof(Header))
    cdef int64_t watch_id = 0
    cdef int64_t compact_revision = 0
    cdef bint created = False, canceled = False, fragment = False
    cdef str cancel_reason = _NO_REASON
    cdef Events events = new_events(data)
    cdef EventFields event
    while p < end:
        p = read_tag(p, end, &field, &wt)
        if p == NULL:
            malformed("WatchResponse")
        if wt == WT_LEN and field == 11:
            at = p
            p = enter(p, end, &sub_end, 1)
            if p == NULL:
                malformed("WatchResponse")
            if parse_event(p, sub_end, &event, 1) == NULL:
                malformed("Event")
            events.add(at, event.kv.mod_revision)
            p = sub_end
        elif wt == WT_VARINT and 2 <= field <= 7 and field != 6:
            p = read_varint(p, end, &v)
            if p == NULL:
                malformed("WatchResponse")
            if field == 2:
                watch_id = <int64_t>v
            elif field == 3:
                created = v != 0
            elif field == 4:
                canceled = v != 0
            elif field == 5:
                compact_revision = <int64_t>v
            else:
                fragment = v != 0
        elif wt == WT_LEN and field == 1:
            p = enter(p, end, &sub_end, 1)
            if p == NULL or parse_header(p, sub_end, &header, 1) == NULL:
                malformed("ResponseHeader")
            p = sub_end
        elif wt == WT_LEN and field == 6:
            p = read_len(p, end, &sub_end)
            if p == NULL:
                malformed("WatchResponse")
            # Every occurrence is checked, as upb does, though the last one wins.
            cancel_reason = _text(p, sub_end)
            p = sub_end
        else:
            p = skip_field(p, end, field, wt, 0)
            if p == NULL:
                malformed("WatchResponse")
    feed_tracker(tracker, header.revision)
    cdef object rec = etcdfast_new_record(WatchResponse, 8)
    set_item(rec, 0, header_record(&header))
    set_item(rec, 1, PyLong_FromLongLong(watch_id))
    set_item(rec, 2, True if created else False)
    set_item(rec, 3, True if canceled else False)
    set_item(rec, 4, PyLong_FromLongLong(compact_revision))
    set_item(rec, 5, cancel_reason)
    set_item(rec, 6, True if fragment else False)
    events.trim()
    set_item(rec, 7, events)
    return rec
