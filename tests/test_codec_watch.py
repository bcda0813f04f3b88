"""The watch codec and WatchCursor, on both twins and against each other.

Requests must be byte-identical to what protobuf serializes for the same
fields; responses serialized by protobuf must decode to the expected tuples;
for any other bytes the twins must agree (same result, or both raise the
same exception type). WatchCursor must behave identically in both twins.
"""

from __future__ import annotations

import pytest
from codec_helpers import agree, mutated, outcome, same, varint
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule
from test_codec_wire import BLOB, HEADER, INT64, KV, expect_header, expect_kv

from etcdfast import _codec, _schema
from etcdfast.errors import ProtocolError
from etcdfast.types import Event, EventType, KeyValue, ResponseHeader, WatchResponse

WatchRequest = _schema.message("etcdserverpb.WatchRequest")
WatchResponseMessage = _schema.message("etcdserverpb.WatchResponse")

NO_HEADER = ResponseHeader(0, 0, 0, 0)
EMPTY_KV = KeyValue(b"", 0, 0, 0, b"", 0)


# -- requests -----------------------------------------------------------------


def create_request(key, end, start, progress_notify, no_put, no_delete, prev_kv, watch_id, fragment):
    message = WatchRequest()
    create = message.create_request
    create.SetInParent()  # the oneof member is selected even when all its fields are defaults
    create.key, create.range_end, create.start_revision = key, end, start
    create.progress_notify, create.prev_kv, create.watch_id, create.fragment = (
        progress_notify, prev_kv, watch_id, fragment
    )
    filters = create.DESCRIPTOR.fields_by_name["filters"].enum_type.values_by_name
    create.filters.extend(
        [filters[name].number for name, on in (("NOPUT", no_put), ("NODELETE", no_delete)) if on]
    )
    return message


@settings(max_examples=300, deadline=None)
@given(
    key=BLOB, end=BLOB, start=INT64, watch_id=INT64,
    flags=st.tuples(*[st.booleans()] * 5),
)
def test_encode_watch_create_matches_protobuf(codec, key, end, start, watch_id, flags):
    progress_notify, no_put, no_delete, prev_kv, fragment = flags
    args = (key, end, start, progress_notify, no_put, no_delete, prev_kv, watch_id, fragment)
    ours = codec.watch.encode_watch_create(*args)
    expected = create_request(*args)
    assert ours == expected.SerializeToString()
    parsed = WatchRequest.FromString(ours)
    assert parsed == expected and parsed.WhichOneof("request_union") == "create_request"


def test_requested_filters_are_on_the_wire(codec):
    encode = codec.watch.encode_watch_create
    # NOPUT is enum value 0, yet an element of a repeated field: it must be written (packed).
    assert encode(b"k", b"", 0, False, True, False, False, 0, False) == b"\x0a\x06\x0a\x01k\x2a\x01\x00"
    assert encode(b"k", b"", 0, False, False, True, False, 0, False) == b"\x0a\x06\x0a\x01k\x2a\x01\x01"
    assert encode(b"", b"", 0, False, True, True, False, 0, False) == b"\x0a\x04\x2a\x02\x00\x01"
    assert list(WatchRequest.FromString(encode(b"", b"", 0, False, True, True, False, 0, False))
                .create_request.filters) == [0, 1]


def test_an_all_default_create_request_is_still_a_create_request(codec):
    data = codec.watch.encode_watch_create(b"", b"", 0, False, False, False, False, 0, False)
    assert data == b"\x0a\x00"
    assert WatchRequest.FromString(data).WhichOneof("request_union") == "create_request"


@settings(max_examples=200, deadline=None)
@given(INT64)
def test_encode_watch_cancel_matches_protobuf(codec, watch_id):
    expected = WatchRequest()
    expected.cancel_request.SetInParent()
    expected.cancel_request.watch_id = watch_id
    ours = codec.watch.encode_watch_cancel(watch_id)
    assert ours == expected.SerializeToString()
    assert WatchRequest.FromString(ours).WhichOneof("request_union") == "cancel_request"


def test_encode_watch_progress(codec):
    expected = WatchRequest()
    expected.progress_request.SetInParent()
    assert codec.watch.encode_watch_progress() == expected.SerializeToString() == b"\x1a\x00"


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda w: w.encode_watch_create("k", b"", 0, 0, 0, 0, 0, 0, 0), TypeError),
        (lambda w: w.encode_watch_create(b"k", None, 0, 0, 0, 0, 0, 0, 0), TypeError),
        (lambda w: w.encode_watch_create(b"k", b"", 2**63, 0, 0, 0, 0, 0, 0), OverflowError),
        (lambda w: w.encode_watch_create(b"k", b"", -(2**63) - 1, 0, 0, 0, 0, 0, 0), OverflowError),
        (lambda w: w.encode_watch_create(b"k", b"", 1.0, 0, 0, 0, 0, 0, 0), TypeError),
        (lambda w: w.encode_watch_create(b"k", b"", 0, 0, 0, 0, 0, None, 0), TypeError),
        (lambda w: w.encode_watch_cancel(2**63), OverflowError),
        (lambda w: w.encode_watch_cancel("1"), TypeError),
        (lambda w: w.decode_watch("x"), TypeError),
        (lambda w: w.decode_watch(bytearray(b"")), TypeError),
        (lambda w: w.decode_watch(None), TypeError),
    ],
)
def test_bad_arguments(codec, call, error):
    with pytest.raises(error):
        call(codec.watch)


# -- responses ----------------------------------------------------------------

EVENT_TYPE = st.one_of(
    st.sampled_from([0, 1]), st.integers(min_value=-(2**31), max_value=2**31 - 1)
)


@st.composite
def event_messages(draw):
    event = {"type": draw(EVENT_TYPE)}
    if draw(st.integers(min_value=0, max_value=5)):  # now and then no kv at all
        event["kv"] = draw(KV)
    if draw(st.booleans()):
        event["prev_kv"] = draw(KV)
    return event


@st.composite
def watch_messages(draw):
    kwargs = {
        "watch_id": draw(INT64),
        "created": draw(st.booleans()),
        "canceled": draw(st.booleans()),
        "compact_revision": draw(st.one_of(st.just(0), INT64)),
        "cancel_reason": draw(st.text(max_size=20)),
        "fragment": draw(st.booleans()),
        "events": draw(st.lists(event_messages(), max_size=6)),
    }
    if draw(st.integers(min_value=0, max_value=4)):
        kwargs["header"] = draw(HEADER)
    return WatchResponseMessage(**kwargs)


def expect_event(m) -> Event:
    kind = EventType(m.type) if m.type in (0, 1) else m.type  # unknown numbers stay ints
    return Event(kind, expect_kv(m.kv), expect_kv(m.prev_kv) if m.HasField("prev_kv") else None)


def expect_watch(m) -> WatchResponse:
    return WatchResponse(
        expect_header(m.header), m.watch_id, m.created, m.canceled, m.compact_revision,
        m.cancel_reason, m.fragment, [expect_event(e) for e in m.events],
    )


@settings(max_examples=300, deadline=None)
@given(watch_messages())
def test_decode_watch_matches_protobuf(codec, message):
    decoded = codec.watch.decode_watch(message.SerializeToString())
    assert same(decoded, expect_watch(message))


def test_empty_response_gives_defaults(codec):
    assert same(codec.watch.decode_watch(b""), WatchResponse(NO_HEADER, 0, False, False, 0, "", False, []))


def test_missing_header_and_kv_give_defaults(codec):
    # One event with neither kv nor type: an empty KeyValue and PUT, as protobuf reads it.
    decoded = codec.watch.decode_watch(b"\x5a\x00")
    assert same(decoded.header, NO_HEADER)
    assert same(decoded.events, [Event(EventType.PUT, EMPTY_KV, None)])


def test_unknown_event_types_stay_ints(codec):
    # 5, -1 (a 10-byte varint) and 2**32 + 1 (an int32 enum: upper bits dropped -> DELETE).
    data = b"".join(
        b"\x5a" + varint(len(body)) + body
        for body in (b"\x08\x05", b"\x08" + b"\xff" * 9 + b"\x01", b"\x08" + varint(2**32 + 1))
    )
    types = [event.type for event in codec.watch.decode_watch(data).events]
    assert same(types, [5, -1, EventType.DELETE])


def test_progress_and_control_responses(codec):
    progress = WatchResponseMessage(header={"revision": 77}).SerializeToString()
    decoded = codec.watch.decode_watch(progress)
    assert decoded.is_progress_notify and decoded.header.revision == 77
    reason = "mvcc: required revision has been compacted"
    canceled = WatchResponseMessage(
        watch_id=4, canceled=True, compact_revision=50, cancel_reason=reason
    ).SerializeToString()
    decoded = codec.watch.decode_watch(canceled)
    assert (decoded.canceled, decoded.compact_revision, decoded.watch_id) == (True, 50, 4)
    assert decoded.cancel_reason.startswith("mvcc:")


@pytest.mark.parametrize(
    "reason",
    [b"\xff", b"\xc0\x80", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"ok\xe2\x82", b"\xff\x32\x01a"],
    ids=["ff", "overlong", "surrogate", "above-10ffff", "truncated", "invalid-then-valid"],
)
def test_cancel_reason_must_be_utf8(codec, reason):
    # The last case holds two cancel_reason fields: upb checks every occurrence.
    with pytest.raises(ProtocolError):
        codec.watch.decode_watch(b"\x32" + varint(len(reason)) + reason)


def test_decode_feeds_the_revision_tracker(codec):
    tracker = codec.revision.RevisionTracker()
    for revision in (5, 9, 7):
        data = WatchResponseMessage(header={"revision": revision}).SerializeToString()
        codec.watch.decode_watch(data, tracker)
    assert tracker.last == 9

    class Recorder:
        def __init__(self):
            self.seen = []

        def observe(self, revision):
            self.seen.append(revision)

    recorder = Recorder()
    codec.watch.decode_watch(WatchResponseMessage(header={"revision": 3}).SerializeToString(), recorder)
    codec.watch.decode_watch(b"", recorder)
    assert recorder.seen == [3, 0]
    with pytest.raises(ProtocolError):
        codec.watch.decode_watch(b"\x5a\x05", recorder)  # truncated: the tracker hears nothing
    assert recorder.seen == [3, 0]


def big_watch_response(n: int, prev_kv: bool = False) -> WatchResponseMessage:
    message = WatchResponseMessage(header={"revision": 10**9 + n, "member_id": 2**64 - 1}, watch_id=1)
    for i in range(n):
        event = message.events.add(type=i % 2)
        event.kv.key = b"/k/%08d" % i
        event.kv.value = b"v" * 64
        event.kv.create_revision = event.kv.mod_revision = 10**9 + i
        event.kv.version = 1
        if prev_kv:
            event.prev_kv.key = b"/k/%08d" % i
    return message


def test_large_response_round_trips(codec):
    message = big_watch_response(5000, prev_kv=True)
    decoded = codec.watch.decode_watch(message.SerializeToString())
    assert len(decoded.events) == 5000
    assert same(decoded.events[4999], Event(
        EventType.DELETE, KeyValue(b"/k/00004999", 10**9 + 4999, 10**9 + 4999, 1, b"v" * 64, 0),
        KeyValue(b"/k/00004999", 0, 0, 0, b"", 0),
    ))
    assert same(decoded, expect_watch(message))


# -- the twins against each other -------------------------------------------


def _valid_samples():
    full = WatchResponseMessage(
        header={"revision": 77, "cluster_id": 2**63, "member_id": 2**64 - 1, "raft_term": 3},
        watch_id=9, created=True, fragment=True, compact_revision=5, cancel_reason="naïve ✓ 𝄞",
    )
    event = full.events.add(type=1)
    event.kv.key, event.kv.mod_revision, event.kv.lease = b"a", 300, -1
    event.prev_kv.key, event.prev_kv.value = b"a", b"old"
    full.events.add().kv.key = b"b"
    return [full.SerializeToString(), big_watch_response(3).SerializeToString(), b"\x5a\x00\x32\x01x"]


VALID = _valid_samples()


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=48))
def test_random_bytes(twins, data):
    agree(twins, "watch", "decode_watch", data)


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated(VALID))
def test_mutated_messages(twins, data):
    agree(twins, "watch", "decode_watch", data)


@pytest.mark.parametrize("sample", range(len(VALID)))
def test_every_truncation(twins, sample):
    data = VALID[sample]
    for cut in range(len(data) + 1):
        agree(twins, "watch", "decode_watch", data[:cut])


@settings(max_examples=1000, deadline=None)
@given(st.binary(max_size=12))
def test_random_cancel_reasons(twins, reason):
    # Python's strict UTF-8 decoder (fast twin) against upb's validator (pure twin).
    agree(twins, "watch", "decode_watch", b"\x32" + varint(len(reason)) + reason)


def event(body: bytes) -> bytes:
    return b"\x5a" + varint(len(body)) + body


EDGE_CASES = {
    "kv twice merges": event(b"\x12\x03\x0a\x01a\x12\x02\x18\x07"),
    "prev_kv twice merges": event(b"\x1a\x03\x0a\x01a\x1a\x02\x20\x02"),
    "empty prev_kv is present": event(b"\x1a\x00"),
    "type twice, last wins": event(b"\x08\x01\x08\x00"),
    "type as LEN is unknown": event(b"\x0a\x01\x01"),
    "kv as varint is unknown": event(b"\x10\x05"),
    "group inside an event": event(b"\x23\x08\x01\x24"),
    "stray end group in an event": event(b"\x0c"),
    "header twice merges": b"\x0a\x02\x18\x05\x0a\x02\x20\x07",
    "events as varint": b"\x58\x01",
    "cancel_reason as varint": b"\x30\x01",
    "created as LEN": b"\x1a\x01\x01",
    "bool 2": b"\x18\x02\x20\x02\x38\x02",
    "bool wrapping to zero": b"\x18" + b"\x80" * 9 + b"\x02",
    "10-byte watch id": b"\x10" + b"\xff" * 9 + b"\x01",
    "11-byte varint": b"\x10" + b"\xff" * 10 + b"\x01",
    "two cancel reasons, last wins": b"\x32\x01a\x32\x01b",
    "event length past the end": b"\x5a\x05\x08\x01",
    "kv length past the event": event(b"\x12\x05\x0a\x01a"),
    "unknown fixed64": b"\x49" + b"\x00" * 8,
    "field number 0 in a kv": event(b"\x12\x02\x00\x01"),
}


@pytest.mark.parametrize("name", sorted(EDGE_CASES))
def test_edge_cases(twins, name):
    agree(twins, "watch", "decode_watch", EDGE_CASES[name])


def nested_groups_in_kv(groups: int) -> bytes:
    # WatchResponse (0) -> Event (1) -> KeyValue (2) -> ``groups`` nested unknown groups.
    kv = b"\x4b" * groups + b"\x4c" * groups
    return event(b"\x12" + varint(len(kv)) + kv)


@pytest.mark.parametrize("groups", [96, 97, 98, 99, 100])
def test_nesting_limit_matches_upb(twins, groups):
    agree(twins, "watch", "decode_watch", nested_groups_in_kv(groups))


def test_nesting_limit_is_one_hundred(twins):
    twins.fast.watch.decode_watch(nested_groups_in_kv(98))
    with pytest.raises(ProtocolError):
        twins.fast.watch.decode_watch(nested_groups_in_kv(99))


def test_each_twin_keeps_its_own_module_shape(twins):
    assert twins.fast.watch.__file__.endswith((".so", ".pyd"))
    assert twins.pure.watch.decode_watch.__name__ == "decode_watch"
    assert _codec.watch in (twins.fast.watch, twins.pure.watch)


# -- WatchCursor --------------------------------------------------------------


def put(revision: int, key: bytes = b"k") -> Event:
    return Event(EventType.PUT, KeyValue(key, revision, revision, 1, b"v", 0), None)


def state(cursor) -> tuple:
    return cursor.next_revision, cursor.progress_revision, cursor.compact_revision


def test_cursor_starts_empty_or_at_the_start_revision(codec):
    assert state(codec.revision.WatchCursor()) == (0, 0, 0)
    assert state(codec.revision.WatchCursor(start_revision=42)) == (42, 0, 0)
    assert repr(codec.revision.WatchCursor(7)) == (
        "WatchCursor(next_revision=7, progress_revision=0, compact_revision=0)"
    )


def test_created_fixes_a_watch_from_now(codec):
    cursor = codec.revision.WatchCursor()
    cursor.created(100)
    assert cursor.next_revision == 101
    cursor.created(200)  # known already: a second confirmation does not move it
    assert cursor.next_revision == 101
    started = codec.revision.WatchCursor(50)
    started.created(100)
    assert started.next_revision == 50


def test_accept_moves_past_the_last_event_without_copying(codec):
    cursor = codec.revision.WatchCursor()
    cursor.created(10)
    events = [put(11), put(12), put(12, b"j"), put(15)]
    assert cursor.accept(events) is events
    assert state(cursor) == (16, 15, 0)
    empty = []
    assert cursor.accept(empty) is empty
    assert state(cursor) == (16, 15, 0)


def test_accept_drops_what_a_resume_sends_again(codec):
    cursor = codec.revision.WatchCursor()
    cursor.created(10)
    cursor.accept([put(11), put(12)])
    # The stream broke; the watch resumes at 13, but the server replays from 12.
    events = [put(12), put(13), put(14)]
    delivered = cursor.accept(events)
    assert delivered is not events and delivered == [put(13), put(14)]
    assert events == [put(12), put(13), put(14)]  # the caller's list is left alone
    assert state(cursor) == (15, 14, 0)
    assert cursor.accept([put(13), put(14)]) == []
    assert state(cursor) == (15, 14, 0)


def test_accept_before_the_revision_is_known_drops_nothing(codec):
    cursor = codec.revision.WatchCursor()
    events = [put(3), put(9)]
    assert cursor.accept(events) is events
    assert state(cursor) == (10, 9, 0)


def test_progress_and_compaction(codec):
    cursor = codec.revision.WatchCursor()
    cursor.created(10)
    cursor.progress(30)
    assert state(cursor) == (31, 30, 0)
    cursor.progress(20)  # an older notification moves nothing back
    assert state(cursor) == (31, 30, 0)
    assert cursor.accept([put(25), put(31)]) == [put(31)]
    assert state(cursor) == (32, 31, 0)
    cursor.compacted(17)
    assert state(cursor) == (32, 31, 17)


def test_cursor_properties_are_read_only(codec):
    cursor = codec.revision.WatchCursor()
    for name in ("next_revision", "progress_revision", "compact_revision"):
        with pytest.raises(AttributeError):
            setattr(cursor, name, 5)


INT64_MAX = 2**63 - 1


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda c: c.WatchCursor(1.5), TypeError),
        (lambda c: c.WatchCursor(2**63), OverflowError),
        (lambda c: c.WatchCursor().created(INT64_MAX), OverflowError),
        (lambda c: c.WatchCursor().created("1"), TypeError),
        (lambda c: c.WatchCursor().progress(INT64_MAX), OverflowError),
        (lambda c: c.WatchCursor().compacted(2**64), OverflowError),
        (lambda c: c.WatchCursor().accept((put(1),)), TypeError),
        (lambda c: c.WatchCursor().accept(None), TypeError),
        (lambda c: c.WatchCursor().accept(type("Events", (list,), {})()), TypeError),  # exactly a list
        (lambda c: c.WatchCursor().accept([put(INT64_MAX)]), OverflowError),
        (lambda c: c.WatchCursor().accept([object()]), AttributeError),
    ],
)
def test_cursor_bad_arguments(codec, call, error):
    with pytest.raises(error):
        call(codec.revision)


def test_cursor_overflow_leaves_the_state_alone(codec):
    cursor = codec.revision.WatchCursor(5)
    with pytest.raises(OverflowError):
        cursor.accept([put(7), put(INT64_MAX)])
    assert state(cursor) == (5, 0, 0)
    cursor.created(INT64_MAX)  # next_revision is known: nothing to compute, nothing to overflow
    assert state(cursor) == (5, 0, 0)


def test_cursor_accepts_events_decoded_by_either_twin(twins):
    data = big_watch_response(50).SerializeToString()
    for decoder in (twins.fast.watch, twins.pure.watch):
        for cursor_module in (twins.fast.revision, twins.pure.revision):
            events = decoder.decode_watch(data).events
            cursor = cursor_module.WatchCursor(10**9 + 10)
            delivered = cursor.accept(events)
            assert delivered == events[10:]
            assert state(cursor) == (10**9 + 50, 10**9 + 49, 0)


REVISION = st.one_of(st.integers(min_value=-3, max_value=40), st.sampled_from([INT64_MAX, -(2**63)]))


class CursorsAgree(RuleBasedStateMachine):
    """Random call sequences on both twins' cursors: same results, same state."""

    twins = None  # set by the test below

    @initialize(start=st.one_of(st.just(0), REVISION))
    def start(self, start):
        self.fast = self.twins.fast.revision.WatchCursor(start)
        self.pure = self.twins.pure.revision.WatchCursor(start)

    def both(self, method, *args):
        fast = outcome(getattr(self.fast, method), *args)
        pure = outcome(getattr(self.pure, method), *args)
        assert same(fast, pure), (method, args, fast, pure)
        return fast, pure

    @rule(revision=REVISION)
    def created(self, revision):
        self.both("created", revision)

    @rule(revision=REVISION)
    def progress(self, revision):
        self.both("progress", revision)

    @rule(revision=REVISION)
    def compacted(self, revision):
        self.both("compacted", revision)

    @rule(revisions=st.lists(REVISION, max_size=6), sort=st.booleans())
    def accept(self, revisions, sort):
        events = [put(r) for r in (sorted(revisions) if sort else revisions)]
        fast_events, pure_events = list(events), list(events)
        fast = outcome(self.fast.accept, fast_events)
        pure = outcome(self.pure.accept, pure_events)
        assert same(fast, pure), (revisions, fast, pure)
        assert (fast is fast_events) == (pure is pure_events)

    @invariant()
    def same_state(self):
        if hasattr(self, "fast"):
            assert state(self.fast) == state(self.pure)
            assert repr(self.fast) == repr(self.pure)


def test_cursors_agree(twins):
    CursorsAgree.twins = twins
    CursorsAgree.TestCase.settings = settings(max_examples=300, stateful_step_count=20, deadline=None)
    CursorsAgree.TestCase().runTest()
