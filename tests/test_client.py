"""Client lifecycle, endpoints, deadlines and transport faults."""

from __future__ import annotations

import inspect
import time
from concurrent import futures

import grpc
import pytest

import etcdfast
from etcdfast._core.endpoints import Endpoint, channel_target, parse_endpoints
from etcdfast.errors import CancelledError, ClientClosedError, ProtocolError, Timeout, Unavailable, classify
from etcdfast.testing import EtcdServer, free_port


@pytest.mark.parametrize(
    ("text", "address", "secure"),
    [
        ("127.0.0.1:2379", "127.0.0.1:2379", False),
        ("http://localhost:2379", "localhost:2379", False),
        ("https://etcd.example:2379/", "etcd.example:2379", True),
        ("[::1]:2379", "[::1]:2379", False),
    ],
)
def test_endpoint_parsing(text, address, secure):
    endpoint = Endpoint.parse(text)
    assert endpoint.address == address and endpoint.secure is secure


@pytest.mark.parametrize("text", ["", "localhost", "ftp://h:1", "h:0", "h:99999", "h:x", "http://h:1/p"])
def test_bad_endpoints(text):
    with pytest.raises(ValueError):
        Endpoint.parse(text)


def test_endpoint_lists():
    assert [str(e) for e in parse_endpoints("a:1,b:2")] == ["a:1", "b:2"]
    target, options = channel_target(parse_endpoints(["10.0.0.1:1", "10.0.0.2:2"]))
    assert target == "ipv4:10.0.0.1:1,10.0.0.2:2" and ("grpc.lb_policy_name", "round_robin") in options
    # The authority TLS checks certificates against: the first endpoint, as in
    # Go -- not grpc's default, the whole address list, which no certificate names.
    assert ("grpc.default_authority", "10.0.0.1:1") in options
    with pytest.raises(ValueError):
        parse_endpoints(["http://a:1", "https://b:2"])
    with pytest.raises(ValueError):
        parse_endpoints([])


def test_the_servers_own_expired_context_is_a_timeout():
    """etcd 3.4 (older grpc-go) reports its own expired or cancelled context
    with code UNKNOWN; the deadline was the caller's, so it is still a Timeout
    (outcome unknown), and a cancel a CancelledError."""
    assert classify("UNKNOWN", "context deadline exceeded")[0] is Timeout
    assert classify("UNKNOWN", "context canceled")[0] is CancelledError


def test_methods_show_their_real_signature():
    signature = inspect.signature(etcdfast.Client.get)
    assert list(signature.parameters)[:3] == ["self", "key", "prefix"]
    assert "timeout" in signature.parameters and "max_create_revision" in signature.parameters
    assert signature.return_annotation == "GetResult"
    assert "prefix" in etcdfast.Client.get.__doc__


def test_close_is_idempotent_and_final(etcd_server):
    client = etcdfast.Client(etcd_server.endpoint)
    client.put("/close-test", "v")
    client.close()
    client.close()
    assert client.closed and "closed" in repr(client)
    with pytest.raises(ClientClosedError):
        client.get("/close-test")


def test_dead_endpoint_raises_unavailable_naming_it():
    endpoint = f"127.0.0.1:{free_port()}"
    with etcdfast.Client(endpoint, timeout=5) as client:
        started = time.monotonic()
        with pytest.raises(Unavailable) as info:
            client.get("k")
        assert time.monotonic() - started < 5  # fails fast, does not hang
    assert endpoint in str(info.value) and info.value.endpoint == endpoint
    assert isinstance(info.value, ConnectionError)


def test_deadline_on_a_paused_server():
    with EtcdServer() as server:
        with etcdfast.Client(server.endpoint, timeout=10) as client:
            client.put("k", "v")
            server.pause()
            try:
                started = time.monotonic()
                with pytest.raises(Timeout):
                    client.get("k", timeout=0.5)
                assert time.monotonic() - started < 3
                with pytest.raises(TimeoutError):  # the builtin catches it too
                    client.get("k", timeout=0.3)
            finally:
                server.resume()
            assert client.get_value("k") == b"v"


def test_server_restart_is_survived_by_the_client():
    with EtcdServer() as server:
        with etcdfast.Client(server.endpoint, timeout=10) as client:
            client.put("k", "v1")
            server.kill()
            with pytest.raises(Unavailable):
                client.get("k", timeout=2)
            server.restart()
            deadline = time.monotonic() + 15
            while True:  # reconnects on its own once the server is back
                try:
                    assert client.get_value("k") == b"v1"
                    break
                except Unavailable:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)


class _GarbageKV:
    """A fake KV server answering every Range with bytes that are not protobuf.

    A real etcd never sends malformed responses, so this is the one fault we
    must fake to test that the client reports it instead of crashing.
    """

    def __init__(self, answer: bytes) -> None:
        self.answer = answer

    def service(self) -> grpc.GenericRpcHandler:
        handler = grpc.unary_unary_rpc_method_handler(lambda request, context: self.answer)
        return grpc.method_handlers_generic_handler("etcdserverpb.KV", {"Range": handler})


@pytest.mark.parametrize("answer", [b"\x0a\x05\x18", b"\x0f", b"\x12\x7f" + b"x" * 10])
def test_malformed_response_raises_protocol_error(twin, answer):
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    port = server.add_insecure_port("127.0.0.1:0")
    server.add_generic_rpc_handlers((_GarbageKV(answer).service(),))
    server.start()
    try:
        with etcdfast.Client(f"127.0.0.1:{port}", timeout=5) as client:
            with pytest.raises(ProtocolError):
                client.get("k")
    finally:
        server.stop(0)


class _FlakyKV:
    """A fake KV answering every call with UNAVAILABLE after receiving it.

    A real etcd cannot be made to fail *after* a request arrived on demand;
    this is what tells a client "the call may or may not have run".
    """

    def __init__(self) -> None:
        self.calls: dict = {}

    def service(self) -> grpc.GenericRpcHandler:
        def answer(name):
            def handler(request, context):
                self.calls[name] = self.calls.get(name, 0) + 1
                context.abort(grpc.StatusCode.UNAVAILABLE, "etcdserver: leader changed")
            return grpc.unary_unary_rpc_method_handler(handler)

        return grpc.method_handlers_generic_handler(
            "etcdserverpb.KV", {name: answer(name) for name in ("Range", "Put", "Txn")}
        )


def test_go_retry_rules_reads_retried_writes_not(twin):
    flaky = _FlakyKV()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    port = server.add_insecure_port("127.0.0.1:0")
    server.add_generic_rpc_handlers((flaky.service(),))
    server.start()
    try:
        with etcdfast.Client(f"127.0.0.1:{port}", timeout=5, max_retries=2) as client:
            with pytest.raises(Unavailable):
                client.get("k")
            with pytest.raises(Unavailable):
                client.put("k", "v")
            with pytest.raises(Unavailable):
                client.txn(success=[etcdfast.Op.put("k", "v")])
    finally:
        server.stop(0)
    # the read was repeated, the writes reached the server once and stayed that way
    assert flaky.calls == {"Range": 3, "Put": 1, "Txn": 1}


def test_writes_to_a_dead_endpoint_are_retried_within_the_deadline():
    # Nothing can have been sent, so even a put is retried -- and still
    # fails fast, as Unavailable, inside its deadline.
    with etcdfast.Client(f"127.0.0.1:{free_port()}", timeout=3, max_retries=2) as client:
        started = time.monotonic()
        with pytest.raises(Unavailable) as info:
            client.put("k", "v")
        assert time.monotonic() - started < 3
    from etcdfast._core.calls import never_sent

    assert never_sent(info.value)
