"""etcdfast.compat.etcd3 against real etcd: the exception mapping, and each python-etcd3 mistake it fixes.

python-etcd3's own suite (tests/compat_etcd3/run.py) shows the compat module
behaves as python-etcd3 does; these tests show where it deliberately does
not (README, "Migrating from python-etcd3"), and cover with real faults what
the upstream tests listed as not applicable could only check with mocks:
the exception mapping, watch-creation timeouts, serializable reads without
a quorum.
"""

from __future__ import annotations

import io
import os
import tempfile
import threading
import time
from typing import Any, Iterator, List

import grpc
import pytest

import etcdfast
import etcdfast.compat.etcd3 as etcd3
from etcdfast import errors
from etcdfast.compat.etcd3 import etcdrpc, exceptions, utils
from etcdfast.compat.etcd3._rpc import RpcError, translate
from etcdfast.compat.etcd3.client import KVMetadata, ResponseOp
from etcdfast.compat.etcd3.events import DeleteEvent, PutEvent
from etcdfast.testing import EtcdCluster, EtcdServer, make_certificates

WAIT = 20  # seconds: the most a test waits for something that should come at once


def compat(server: EtcdServer, **options: Any) -> etcd3.Etcd3Client:
    options.setdefault("timeout", 10)
    return etcd3.client(host="127.0.0.1", port=server.client_port, **options)


@pytest.fixture()
def etcd(etcd_server: EtcdServer) -> Iterator[etcd3.Etcd3Client]:
    with compat(etcd_server) as client:
        yield client


@pytest.fixture()
def private_server() -> Iterator[EtcdServer]:
    """A server of the test's own, to stop, pause and restart."""
    with EtcdServer() as server:
        yield server


def collect(iterator: Iterator[Any], into: List[Any], count: int) -> threading.Thread:
    """Append ``count`` items of ``iterator`` to ``into`` on a thread (an exception too)."""

    def run() -> None:
        try:
            for item in iterator:
                into.append(item)
                if len(into) == count:
                    return
        except BaseException as exc:  # noqa: B036 - recorded for the test to check
            into.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


# -- the exception mapping ----------------------------------------------------------------


@pytest.mark.parametrize(("native", "expected", "status"), [
    (errors.InternalError("boom"), exceptions.InternalServerError, None),
    (errors.Unavailable("down"), exceptions.ConnectionFailedError, None),
    (errors.ConnectionLostError("cut"), exceptions.ConnectionFailedError, None),
    (errors.RequestTimedOutError("etcdserver: request timed out", code="UNAVAILABLE"),
     exceptions.ConnectionFailedError, None),
    (errors.Timeout("late"), exceptions.ConnectionTimeoutError, None),
    # etcd's own deadline comes as UNKNOWN "context deadline exceeded": still a timeout
    (errors.Timeout("context deadline exceeded", code="UNKNOWN"), exceptions.ConnectionTimeoutError, None),
    (errors.NoLeaderError("etcdserver: no leader", code="UNKNOWN"), exceptions.ConnectionFailedError, None),
    (errors.FailedPreconditionError("no"), exceptions.PreconditionFailedError, None),
    (errors.NotLeaderError("etcdserver: not leader"), exceptions.PreconditionFailedError, None),
    (errors.CompactedError("gone", compact_revision=7), RpcError, grpc.StatusCode.OUT_OF_RANGE),
    (errors.EmptyKeyError("key is empty"), RpcError, grpc.StatusCode.INVALID_ARGUMENT),
    (errors.PermissionDeniedError("denied"), RpcError, grpc.StatusCode.PERMISSION_DENIED),
    (errors.LeaseNotFoundError("no lease"), RpcError, grpc.StatusCode.NOT_FOUND),
    (errors.CorruptError("bad"), RpcError, grpc.StatusCode.DATA_LOSS),
    (errors.EtcdError("odd", code="SOMETHING_NEW"), RpcError, grpc.StatusCode.UNKNOWN),
])
def test_the_status_codes_python_etcd3_mapped_and_the_others(native, expected, status):
    translated = translate(native)
    assert type(translated) is expected
    if status is None:
        assert isinstance(translated, exceptions.Etcd3Exception)
    else:
        # python-etcd3 let every other status through as grpc's RpcError
        assert isinstance(translated, grpc.RpcError) and not isinstance(translated, exceptions.Etcd3Exception)
        assert translated.code() is status and translated.details() == native.details


def test_errors_without_a_status_stay_etcdfast_errors():
    closed = errors.ClientClosedError("the client is closed")
    assert translate(closed) is closed


def test_a_stopped_server_is_connection_failed(private_server):
    etcd = compat(private_server, timeout=5)
    etcd.put("k", "v")
    private_server.stop()
    with pytest.raises(exceptions.ConnectionFailedError) as info:
        etcd.get("k")
    assert isinstance(info.value.__cause__, etcdfast.Unavailable)
    etcd.close()


def test_a_frozen_server_is_a_timeout_for_calls_and_watches(private_server):
    etcd = compat(private_server, timeout=1)
    etcd.put("k", "v")
    private_server.pause()
    try:
        with pytest.raises(exceptions.ConnectionTimeoutError):
            etcd.get("k")
        # python-etcd3's test_watch_timeout_on_establishment, with a real stall
        with pytest.raises(exceptions.WatchTimedOut):
            etcd.watch("k")
        with pytest.raises(exceptions.WatchTimedOut):
            etcd.add_watch_callback("k", lambda response: None)
    finally:
        private_server.resume()
    assert etcd.get("k")[0] == b"v"
    etcd.close()


def test_unmapped_statuses_from_a_real_server_are_grpc_rpc_errors(etcd, etcd_prefix):
    revision = etcd.put(etcd_prefix + b"k", "v").header.revision
    etcd.put(etcd_prefix + b"k", "v2")
    etcd.compact(revision)
    with pytest.raises(grpc.RpcError) as info:  # python-etcd3's test_compact
        etcd.compact(revision)
    assert info.value.code() == grpc.StatusCode.OUT_OF_RANGE
    assert isinstance(info.value.__cause__, etcdfast.CompactedError)
    with pytest.raises(grpc.RpcError) as info:
        etcd.get(etcd_prefix + b"k", revision=revision - 1)
    assert info.value.code() == grpc.StatusCode.OUT_OF_RANGE
    with pytest.raises(grpc.RpcError) as info:
        etcd.get("")
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.RpcError) as info:
        etcd.revoke_lease(0x7FFF_FFFF_0000_0001)
    assert info.value.code() == grpc.StatusCode.NOT_FOUND


def test_a_failed_precondition_from_a_real_server(etcd):
    taken = next(etcd.members).peer_urls
    with pytest.raises(exceptions.PreconditionFailedError) as info:
        etcd.add_member(taken)  # "etcdserver: Peer URLs already exists"
    assert isinstance(info.value.__cause__, errors.PeerURLExistsError)


# -- python-etcd3 0.12.0 dropped these range options --------------------------------------


def test_every_range_option_is_honoured(etcd, etcd_prefix):
    p = etcd_prefix
    first = etcd.put(p + b"a", "1").header.revision
    etcd.put(p + b"b", "2")
    etcd.put(p + b"c", "3")
    etcd.put(p + b"a", "4")
    assert [v for v, _ in etcd.get_prefix(p, limit=2)] == [b"4", b"2"]
    assert etcd.get_prefix_response(p, limit=2).more is True
    assert etcd.get(p + b"a", revision=first)[0] == b"1"
    assert [m.key for _, m in etcd.get_prefix(p, revision=first)] == [p + b"a"]
    counted = etcd.get_prefix_response(p, count_only=True)
    assert counted.count == 3 and counted.kvs == []
    assert etcd.get(p + b"a", count_only=True) == (None, None)
    newest = [m.key for _, m in etcd.get_prefix(p, min_mod_revision=first + 1)]
    assert newest == [p + b"a", p + b"b", p + b"c"]
    assert [m.key for _, m in etcd.get_prefix(p, max_mod_revision=first + 1)] == [p + b"b"]
    # etcd-sdk-python sent min/max_create_revision as min_mod_revision
    assert [m.key for _, m in etcd.get_prefix(p, min_create_revision=first + 1)] == [p + b"b", p + b"c"]
    assert [m.key for _, m in etcd.get_prefix(p, max_create_revision=first)] == [p + b"a"]
    ranged = etcd.get_range(p + b"a", p + b"c", sort_order="descend", sort_target="value")
    assert [v for v, _ in ranged] == [b"4", b"2"]
    with pytest.raises(ValueError, match="sort order"):
        etcd.get_prefix(p, sort_order="sideways")


def test_prefixes_ending_in_0xff(etcd, etcd_prefix):
    prefix = etcd_prefix + b"\xff"
    etcd.put(prefix + b"\x01", "in")
    etcd.put(etcd_prefix + b"\xfe", "before")
    with pytest.raises(ValueError):  # python-etcd3's prefix end, kept as the helper it was
        utils.increment_last_byte(prefix)
    assert utils.prefix_range_end(b"a\xff") == b"b" and utils.prefix_range_end(b"\xff") == b"\0"
    assert [v for v, _ in etcd.get_prefix(prefix)] == [b"in"]
    events, cancel = etcd.watch_prefix(prefix)
    etcd.put(prefix + b"\x02", "new")
    assert next(events).value == b"new"
    cancel()
    assert etcd.delete_prefix(prefix).deleted == 2


# -- watches never die silently -------------------------------------------------------------


def test_watches_resume_across_a_server_restart(private_server):
    etcd = compat(private_server, timeout=5)
    events: List[Any] = []
    responses: List[Any] = []
    iterator, cancel = etcd.watch("k")
    reader = collect(iterator, events, 3)
    watch_id = etcd.add_watch_callback("k", responses.append)
    etcd.put("k", "1")
    private_server.stop()
    private_server.restart()
    etcd.put("k", "2")  # python-etcd3's watches had died with the connection by now
    etcd.put("k", "3")
    reader.join(WAIT)
    assert [e.value for e in events] == [b"1", b"2", b"3"]  # nothing lost, nothing repeated
    deadline = time.monotonic() + WAIT
    while sum(len(r.events) for r in responses) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [e.value for r in responses for e in r.events] == [b"1", b"2", b"3"]
    cancel()
    etcd.cancel_watch(watch_id)
    etcd.close()


def test_a_watch_that_cannot_go_on_raises_and_tells_its_callback(private_server):
    etcd = compat(private_server, timeout=5)
    etcd.native._watches().reconnect_timeout = 1.0  # instead of a minute
    seen: List[Any] = []
    iterator, _ = etcd.watch("k")
    reader = collect(iterator, seen, 10)
    told = threading.Event()
    errors_seen: List[BaseException] = []

    def callback(response_or_error: Any) -> None:
        if isinstance(response_or_error, BaseException):
            errors_seen.append(response_or_error)
            told.set()

    etcd.add_watch_callback("k", callback)
    private_server.stop()
    reader.join(WAIT)
    assert told.wait(WAIT)
    assert len(seen) == 1 and isinstance(seen[0], exceptions.ConnectionFailedError)
    assert isinstance(errors_seen[0], exceptions.ConnectionFailedError)
    etcd.close()


def test_a_compacted_start_revision_reaches_iterator_and_callback(etcd, etcd_prefix):
    key = etcd_prefix + b"k"
    old = etcd.put(key, "1").header.revision
    etcd.compact(etcd.put(key, "2").header.revision)
    events, _ = etcd.watch(key, start_revision=old)
    with pytest.raises(exceptions.RevisionCompactedError) as info:
        next(events)
    assert info.value.compacted_revision > old
    got: List[Any] = []
    done = threading.Event()
    etcd.add_watch_callback(key, lambda r: (got.append(r), done.set()), start_revision=old)
    assert done.wait(WAIT)
    assert isinstance(got[0], exceptions.RevisionCompactedError)


def test_watch_options_and_event_shapes(etcd, etcd_prefix):
    key = etcd_prefix + b"k"
    etcd.put(key, "old")
    responses, cancel = etcd.watch_response(key, prev_kv=True,
                                            filters=[etcdrpc.WatchCreateRequest.NODELETE])
    etcd.delete(key)  # filtered out
    etcd.put(key, "new")
    response = next(responses)
    (event,) = response.events
    assert isinstance(event, PutEvent) and not isinstance(event, DeleteEvent)
    assert (event.key, event.value, event.prev_value, event.version) == (key, b"new", b"", 1)
    assert event.mod_revision == event.create_revision == response.header.revision
    assert str(event).endswith(f"key={key!r} value=b'new'")
    cancel()
    etcd.put(key, "newer")
    newer = etcd.watch_once(key, timeout=WAIT, start_revision=response.header.revision + 1, prev_kv=True)
    assert isinstance(newer, etcd3.events.Event) and (newer.value, newer.prev_value) == (b"newer", b"new")
    with pytest.raises(exceptions.WatchTimedOut):
        etcd.watch_once(key, timeout=0.2)


# -- auth, TLS, several endpoints -------------------------------------------------------------


def test_an_expired_token_is_refreshed():
    with EtcdServer(extra_args=["--auth-token", "simple", "--auth-token-ttl", "2"]) as server:
        with etcdfast.Client(server.endpoint, timeout=10) as admin:
            admin.user_add("root", "rootpw")
            admin.user_grant_role("root", "root")
            admin.auth_enable()
        etcd = compat(server, user="root", password="rootpw")
        etcd.put("k", "1")
        time.sleep(3.5)  # the token's TTL is 2 s; python-etcd3 now failed with "invalid auth token"
        etcd.put("k", "2")
        assert etcd.watch_once_response("k", timeout=WAIT, start_revision=1).events[0].value == b"1"
        etcd.close()
    with pytest.raises(Exception, match="both user and password"):
        etcd3.client(user="root")


def test_tls_with_a_client_certificate(tmp_path):
    certs = make_certificates(tmp_path)
    with EtcdServer(tls=certs, client_cert_auth=True) as server:
        etcd = compat(server, ca_cert=certs.ca, cert_key=certs.client_key, cert_cert=certs.client_cert)
        assert etcd.uses_secure_channel
        etcd.put("k", "v")
        assert etcd.get("k")[0] == b"v"
        etcd.close()
    with pytest.raises(ValueError):
        etcd3.client(ca_cert=certs.ca, cert_key=certs.client_key)


@pytest.fixture(scope="module")
def cluster() -> Iterator[EtcdCluster]:
    with EtcdCluster(3) as c:
        yield c


def test_serializable_reads_without_a_quorum(cluster):
    # What python-etcd3's serializable tests do by SIGSTOPping two pifpaf members.
    member = cluster.members[0]
    etcd = compat(member, timeout=1)
    etcd.put("/serial", "v")
    others = [1, 2]
    for i in others:
        cluster.pause(i)
    try:
        assert etcd.get("/serial", serializable=True)[0] == b"v"
        assert len(list(etcd.get_prefix("/serial", serializable=True))) == 1
        # A linearizable read needs the quorum: it times out, or fails once the
        # member gives up on its leader (which a loaded machine can make first).
        with pytest.raises((exceptions.ConnectionTimeoutError, exceptions.ConnectionFailedError)):
            etcd.get("/serial")
    finally:
        for i in others:
            cluster.resume(i)
        cluster.wait_for_leader()
    etcd.close()


def test_several_endpoints_fail_over(cluster):
    endpoints = [etcd3.Endpoint("127.0.0.1", m.client_port, secure=False) for m in cluster.members]
    etcd = etcd3.MultiEndpointEtcd3Client(endpoints=endpoints, timeout=5)  # failover=False
    etcd.put("/failover", "1")
    cluster.stop(2)
    try:
        for i in range(6):  # round-robin: some calls go to the stopped member first
            etcd.put("/failover", str(i))
            assert etcd.get("/failover")[0] == str(i).encode()
    finally:
        cluster.restart(2)
    assert len(list(etcd.members)) == 3
    etcd.close()


# -- locks ------------------------------------------------------------------------------------


def test_lock_layout_and_leases(etcd, etcd_prefix):
    name = (etcd_prefix + b"lock").decode()
    lock = etcd.lock(name, ttl=30)
    before = set(etcd.native.leases())
    assert lock.acquire() is True
    value, meta = etcd.get("/locks/" + name)  # python-etcd3's layout
    assert value == lock.uuid and meta.lease_id == lock.lease.id
    assert 0 < etcd.native.time_to_live(lock.lease.id).ttl <= 30
    other = etcd.lock(name, ttl=30)
    assert other.acquire(timeout=0) is False and other.acquire(timeout=0.3) is False
    held = lock.lease.id
    # python-etcd3 left a lease behind per failed attempt; only the holder's exists here
    assert set(etcd.native.leases()) - before == {held}
    assert lock.release() is True and lock.release() is False
    assert held not in etcd.native.leases()  # released: the lease went with the key
    assert etcd.get("/locks/" + name) == (None, None)
    assert etcd.lock(etcd_prefix + b"bytes").key == b"/locks/" + etcd_prefix + b"bytes"


def test_with_lock_waits_for_the_holder(etcd, etcd_prefix):
    name = (etcd_prefix + b"lock").decode()
    holder = etcd.lock(name, ttl=30)
    assert holder.acquire()
    order: List[str] = []

    def waiter() -> None:
        with etcd.lock(name, ttl=30) as lock:  # python-etcd3 went in unlocked after 10 s
            order.append("entered" if lock.is_acquired() else "entered without the lock")

    thread = threading.Thread(target=waiter)
    thread.start()
    time.sleep(0.5)
    order.append("released")
    holder.release()
    thread.join(WAIT)
    assert order == ["released", "entered"]


def test_a_lock_waiting_longer_than_its_ttl(etcd, etcd_prefix):
    name = (etcd_prefix + b"lock").decode()
    first = etcd.lock(name, ttl=2)
    assert first.acquire()
    second = etcd.lock(name, ttl=2)
    assert second.acquire(timeout=WAIT) is True  # after first's lease expired
    assert second.is_acquired() and not first.is_acquired()
    # its own lease, renewed before the last attempt, so still alive here (LeaseNotFoundError if not)
    assert etcd.native.time_to_live(second.lease.id).granted_ttl >= 2
    second.release()


# -- result shapes ------------------------------------------------------------------------------


def test_results_carry_python_etcd3s_field_names(etcd, etcd_prefix):
    key = etcd_prefix + b"k"
    put = etcd.put(key, "v")
    assert put.prev_kv.value == b"" and put.prev_kv.version == 0  # protobuf's empty message
    value, meta = etcd.get(key)
    assert value == b"v" and isinstance(meta, KVMetadata)
    assert (meta.key, meta.version, meta.lease_id) == (key, 1, 0)
    assert meta.response_header.revision == put.header.revision == meta.mod_revision
    proto = etcdrpc.kv_pb2.KeyValue(key=b"x", create_revision=1, mod_revision=2, version=3, lease=4)
    built = KVMetadata(proto, None)  # python-etcd3's constructor
    assert (built.key, built.create_revision, built.mod_revision, built.version, built.lease_id) == (
        b"x", 1, 2, 3, 4)
    tx = etcd.transactions
    ok, responses = etcd.transaction(
        compare=[tx.value(key) == "v", tx.version(key) > 0, tx.create(key) != "0", tx.mod(key) < 10**9],
        success=[tx.put(key, "w", prev_kv=True), tx.get(key), tx.delete(etcd_prefix + b"none"),
                 tx.txn([], [tx.get(key)], [])],
        failure=[],
    )
    put_op, got, deleted, nested = responses
    assert ok is True and isinstance(put_op, ResponseOp)
    assert put_op.WhichOneof("response") == "response_put" and put_op.response_put.prev_kv.value == b"v"
    assert got == [(b"w", got[0][1])] and got[0][1].version == 2
    assert deleted.response_delete_range.deleted == 0
    inner = nested.response_txn
    assert inner.succeeded and inner.responses[0].response_range.kvs[0].value == b"w"
    compare = tx.value(key, etcd_prefix + b"z") == "w"
    message = compare.build_message()
    assert (message.target, message.result, message.range_end) == (
        etcdrpc.Compare.VALUE, etcdrpc.Compare.EQUAL, etcd_prefix + b"z")
    with pytest.raises(ValueError):
        tx.value(key).build_message()  # no operator yet


def test_lease_answers_are_python_etcd3s_messages(etcd, etcd_prefix):
    lease = etcd.lease(30)
    etcd.put(etcd_prefix + b"k", "v", lease=lease)
    info = etcd.get_lease_info(lease.id)
    assert isinstance(info, etcdrpc.LeaseTimeToLiveResponse) and info.keys == [etcd_prefix + b"k"]
    assert lease.refresh()[0].TTL == 30
    lease.revoke()
    assert lease.remaining_ttl == -1 and lease.refresh()[0].TTL == 0  # gone: no exception, as before


def test_etcdrpc_comes_from_the_runtime_schema():
    import etcdfast._schema as schema

    assert etcdrpc.RangeRequest is schema.message("etcdserverpb.RangeRequest")
    assert (etcdrpc.NOSPACE, etcdrpc.CORRUPT, etcdrpc.AlarmType.Name(1)) == (1, 2, "NOSPACE")
    assert etcdrpc.RangeRequest.DESCEND == 2 and etcdrpc.User is schema.message("authpb.User")
    namespace: dict = {}
    exec("from etcdfast.compat.etcd3.etcdrpc import *", namespace)
    assert "PutRequest" in namespace and "NOSPACE" in namespace
    with pytest.raises(AttributeError):
        etcdrpc.KVStub  # noqa: B018 - generated stubs are not provided


def test_snapshot_into_a_file_object(etcd):
    buffer = io.BytesIO()
    etcd.snapshot(buffer)
    assert len(buffer.getvalue()) > 1024
    path = tempfile.gettempdir()
    assert not [n for n in os.listdir(path) if n.startswith("etcdfast-compat-snapshot-")]
