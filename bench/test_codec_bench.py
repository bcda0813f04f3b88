"""Codec micro-benchmarks: fast twin vs pure twin vs protobuf message objects.

Run:  python -m pytest bench/test_codec_bench.py --benchmark-only --benchmark-group-by=group

Every group times the same work three ways in one run, so the ratios in
bench/RESULTS.md come from a single session on a single machine:

* ``fast``     etcdfast._fast (Cython)
* ``pure``     etcdfast._pure (Python + upb)
* ``protobuf`` the usual client's way: protobuf message objects built and read
               attribute by attribute (what python-etcd3/aetcd do)
"""

from __future__ import annotations

import pytest

from etcdfast import _codec, _schema
from etcdfast.types import Event, EventType, KeyValue

fast_keys, fast_wire, fast_revision, fast_watch, fast_batch, _ = _codec.load("fast")
pure_keys, pure_wire, pure_revision, pure_watch, pure_batch, _ = _codec.load("pure")
RangeResponse = _schema.message("etcdserverpb.RangeResponse")
PutRequest = _schema.message("etcdserverpb.PutRequest")
TxnRequest = _schema.message("etcdserverpb.TxnRequest")

VALUE = b"v" * 128


def range_response(n: int) -> bytes:
    message = RangeResponse(header={"revision": 2_000_000 + n, "cluster_id": 2**60, "raft_term": 5},
                            count=n)
    for i in range(n):
        message.kvs.add(key=b"/bench/key/%010d" % i, value=VALUE, create_revision=1_000_000 + i,
                        mod_revision=1_000_000 + i, version=1)
    return message.SerializeToString()


def protobuf_decode(data: bytes):
    message = RangeResponse.FromString(data)
    return [KeyValue(kv.key, kv.create_revision, kv.mod_revision, kv.version, kv.value, kv.lease)
            for kv in message.kvs]


def touch(records):
    """Read every key and value, as a user of the result does: the records
    are built on access (both twins), so decoding alone would measure a scan."""
    for kv in records:
        kv.key  # noqa: B018 - the reads are the point
        kv.value  # noqa: B018
    return records


def upb_read(data: bytes):
    """The peers' fastest way (etcd-sdk-python, aetcd): upb's message, fields read as they go."""
    return touch(RangeResponse.FromString(data).kvs)


RANGES = {n: range_response(n) for n in (1_000, 100_000)}
DECODERS = {
    "fast": lambda data: touch(fast_wire.decode_range(data).kvs),
    "pure": lambda data: touch(pure_wire.decode_range(data).kvs),
    "protobuf": lambda data: touch(protobuf_decode(data)),
    "upb": upb_read,
}


@pytest.mark.parametrize("impl", list(DECODERS))
@pytest.mark.parametrize("n", sorted(RANGES))
def test_decode_range(benchmark, impl, n):
    benchmark.group = f"decode RangeResponse {n} kvs, read every key and value"
    benchmark.extra_info["keys"] = n
    rounds = 3 if n >= 100_000 else 50
    result = benchmark.pedantic(DECODERS[impl], args=(RANGES[n],), rounds=rounds, warmup_rounds=1)
    assert len(result) == n


KEY = b"/bench/key/0000000042"


def protobuf_put() -> bytes:
    return PutRequest(key=KEY, value=VALUE, lease=0).SerializeToString()


PUTS = {
    "fast": lambda: fast_wire.encode_put(KEY, VALUE, 0, False, False, False),
    "pure": lambda: pure_wire.encode_put(KEY, VALUE, 0, False, False, False),
    "protobuf": protobuf_put,
}


@pytest.mark.parametrize("impl", list(PUTS))
def test_encode_put(benchmark, impl):
    benchmark.group = "encode PutRequest"
    assert benchmark(PUTS[impl]) == protobuf_put()


AuthenticateRequest = _schema.message("etcdserverpb.AuthenticateRequest")
AuthenticateResponse = _schema.message("etcdserverpb.AuthenticateResponse")
TOKEN = "tFdmLXwJqHrWkPpZ.27"  # etcd's simple-token shape: 16 letters, a dot, an index
LOGIN_ANSWER = AuthenticateResponse(header={"revision": 77, "cluster_id": 2**60, "raft_term": 5},
                                    token=TOKEN).SerializeToString()


def protobuf_login() -> str:
    AuthenticateRequest(name="root", password="rootpw").SerializeToString()
    return str(AuthenticateResponse.FromString(LOGIN_ANSWER).token)


LOGINS = {
    "fast": lambda: (fast_wire.encode_authenticate(b"root", b"rootpw"),
                     fast_wire.decode_authenticate(LOGIN_ANSWER))[1],
    "pure": lambda: (pure_wire.encode_authenticate(b"root", b"rootpw"),
                     pure_wire.decode_authenticate(LOGIN_ANSWER))[1],
    "protobuf": protobuf_login,
}


@pytest.mark.parametrize("impl", list(LOGINS))
def test_login_round_trip(benchmark, impl):
    """A client's login: encode the AuthenticateRequest, decode the token.
    (Once per process: what it saves a process -- protobuf's descriptor pool,
    ~17 ms -- shows in bench/cli_startup.py's "auth on" rows, not here.)"""
    benchmark.group = "login: encode AuthenticateRequest + decode AuthenticateResponse"
    assert benchmark(LOGINS[impl]) == TOKEN


ITEMS = [(b"/bench/key/%010d" % i, VALUE) for i in range(128)]


def protobuf_txn() -> bytes:
    request = TxnRequest()
    for key, value in ITEMS:
        put = request.success.add().request_put
        put.key = key
        put.value = value
    return request.SerializeToString()


def ops_txn(wire):
    return lambda: wire.encode_txn(
        [], [(2, wire.encode_put(k, v, 0, False, False, False)) for k, v in ITEMS], []
    )


TXNS = {
    "fast": lambda: fast_wire.encode_put_txn(ITEMS, 0),
    "pure": lambda: pure_wire.encode_put_txn(ITEMS, 0),
    "fast-ops": ops_txn(fast_wire),
    "pure-ops": ops_txn(pure_wire),
    "protobuf": protobuf_txn,
}


@pytest.mark.parametrize("impl", list(TXNS))
def test_encode_txn_128_puts(benchmark, impl):
    benchmark.group = "encode TxnRequest of 128 puts"
    assert benchmark(TXNS[impl]) == protobuf_txn()


TxnResponse = _schema.message("etcdserverpb.TxnResponse")


def bulk_txn_response(n: int) -> bytes:
    """What etcd answers a put_many batch of ``n`` puts: one PutResponse each."""
    message = TxnResponse(header={"revision": 2_000_000 + n, "cluster_id": 2**60, "member_id": 2**61,
                                  "raft_term": 5}, succeeded=True)
    for _ in range(n):
        message.responses.add().response_put.header.revision = 2_000_000 + n
    return message.SerializeToString()


BULK_TXN = bulk_txn_response(128)
TXN_REVISIONS = {
    "fast": fast_wire.decode_txn_revision,
    "pure": pure_wire.decode_txn_revision,
    "fast-decode_txn": lambda data: fast_wire.decode_txn(data).header.revision,
    "pure-decode_txn": lambda data: pure_wire.decode_txn(data).header.revision,
}


@pytest.mark.parametrize("impl", list(TXN_REVISIONS))
def test_txn_revision_128_puts(benchmark, impl):
    # put_many's per-batch work on each answer: the revision its batch got.
    benchmark.group = "revision of a TxnResponse of 128 puts"
    assert benchmark(TXN_REVISIONS[impl], BULK_TXN) == 2_000_128


WatchResponse = _schema.message("etcdserverpb.WatchResponse")


def watch_response(n: int) -> bytes:
    """A busy watch's response: ``n`` puts and deletes of 128-byte values."""
    message = WatchResponse(header={"revision": 2_000_000 + n, "cluster_id": 2**60, "raft_term": 5},
                            watch_id=1)
    for i in range(n):
        event = message.events.add(type=i % 2)
        event.kv.key = b"/bench/key/%010d" % i
        event.kv.value = VALUE
        event.kv.create_revision = event.kv.mod_revision = 1_000_000 + i
        event.kv.version = 1
    return message.SerializeToString()


def protobuf_watch_decode(data: bytes):
    def kv(m):
        return KeyValue(m.key, m.create_revision, m.mod_revision, m.version, m.value, m.lease)

    message = WatchResponse.FromString(data)
    return [Event(EventType(e.type), kv(e.kv), kv(e.prev_kv) if e.HasField("prev_kv") else None)
            for e in message.events]


def read_keys(events):
    for event in events:
        event.key  # noqa: B018 - the read is the point
    return events


WATCH = watch_response(1_000)
WATCH_DECODERS = {
    "fast": lambda data: read_keys(fast_watch.decode_watch(data).events),
    "pure": lambda data: read_keys(pure_watch.decode_watch(data).events),
    "protobuf": lambda data: read_keys(protobuf_watch_decode(data)),
}


@pytest.mark.parametrize("impl", list(WATCH_DECODERS))
def test_decode_watch(benchmark, impl):
    benchmark.group = "decode WatchResponse 1000 events, read every key"
    benchmark.extra_info["events"] = 1_000
    result = benchmark.pedantic(WATCH_DECODERS[impl], args=(WATCH,), rounds=50, warmup_rounds=1)
    assert len(result) == 1_000


#: Each twin's cursor on its own decoder's Events (what the watch hub passes it).
WATCH_EVENTS = {"fast": fast_watch.decode_watch(WATCH).events, "pure": pure_watch.decode_watch(WATCH).events}


def accept_after_resume(revision_module, events):
    # The per-response bookkeeping of a resumed watch: every event is checked.
    def run():
        cursor = revision_module.WatchCursor(1_000_000)
        return cursor.accept(events)

    return run


@pytest.mark.parametrize("impl", ["fast", "pure"])
def test_watch_cursor_accept(benchmark, impl):
    benchmark.group = "WatchCursor.accept 1000 events"
    run = accept_after_resume(fast_revision if impl == "fast" else pure_revision, WATCH_EVENTS[impl])
    assert benchmark(run) is WATCH_EVENTS[impl]


PACKERS = {"fast": fast_batch.BatchPacker, "pure": pure_batch.BatchPacker}
PACKED = 100_000


def bulk_items():
    # Made afresh for every round, as put_many's input usually is: the keys'
    # hashes are not cached yet, so hashing them is part of the cost.
    items = [(b"/bench/bulk/%012d" % i, VALUE) for i in range(PACKED)]
    assert len(items[0][0]) == 24
    return (items,), {}


def pack(packer_class):
    # put_many's per-item work at default settings: fill batches from the
    # input (BulkLoad.fill's loop), release each as its Txn would complete,
    # flush the last one.
    def run(items):
        packer = packer_class(128, 1 << 20, 0)
        source = iter(items)
        batches = 0
        while (batch := packer.fill(source)) is not None:
            packer.release(batch)
            batches += 1
        packer.release(packer.flush())
        return batches + 1

    return run


@pytest.mark.parametrize("impl", list(PACKERS))
def test_pack_100k_items(benchmark, impl):
    benchmark.group = f"BatchPacker: pack {PACKED // 1000}k items (24 B keys, 128 B values)"
    benchmark.extra_info["items"] = PACKED
    batches = benchmark.pedantic(pack(PACKERS[impl]), setup=bulk_items, rounds=7, warmup_rounds=1)
    assert batches == -(-PACKED // 128)
