"""Regression tests for the bugs the one-call-path redesign fixed (issue 11).

Each runs against real etcd, for both clients (``Driver``) and both codec
twins, and failed on the code before the redesign (where it could run
there at all: see the note on each). The watch and lease ones are in
test_regressions_watch.py.
"""

from __future__ import annotations

import asyncio
import math
import os
import socket
import subprocess
import sys
import threading
import time
from typing import Any, Dict, Iterator, List, Set

import pytest
from client_drivers import Driver

import etcdfast
from etcdfast import Compare, Op
from etcdfast.api import maintenance as api_maintenance
from etcdfast.api.txn import MAX_TXN_DEPTH
from etcdfast.errors import (
    AuthFailedError,
    ClientClosedError,
    ClosedDuringCallError,
    ConnectionLostError,
    EtcdError,
    InvalidArgumentError,
    OutcomeUnknownError,
    ResponseTooLargeError,
    Timeout,
    Unavailable,
    UserAlreadyExistsError,
    UserNotFoundError,
)
from etcdfast.testing import EtcdServer, FaultProxy

KINDS = ["sync", "async"]


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture()
def cli(kind: str, etcd_server: EtcdServer, twin: Any) -> Iterator[Driver]:
    with Driver(kind, etcd_server.endpoint, timeout=10) as driver:
        yield driver


# -- 2. put_many ignored auth ---------------------------------------------------------


def _slow_items(prefix: bytes, n: int, pause_at: int) -> Iterator[tuple]:
    for i in range(n):
        if i == pause_at:
            time.sleep(3.0)  # the token (TTL 2 s) expires: the next batches must log in again
        yield prefix + b"%05d" % i, b"v"


def test_put_many_carries_the_token_and_logs_in_again(auth_server, kind, twin):
    # Before: "BulkWriteError: put_many stopped: UserEmptyError: etcdserver:
    # user name is empty", 0 committed (batches were sent with no token).
    prefix = f"/bulk-auth/{kind}/{twin.name}/".encode()
    with Driver(kind, auth_server.endpoint, user="root", password="rootpw", timeout=10,
                require_leader=True) as client:
        result = client.put_many(_slow_items(prefix, 600, 300), batch_ops=50)
        assert result.keys == 600
        assert client.count(prefix, prefix=True) == 600


def test_cli_load_with_user(auth_server, tmp_path):
    data = tmp_path / "items.jsonl"
    data.write_text("".join(f'{{"key": "/cli-auth/{i}", "value": "v"}}\n' for i in range(300)))
    done = subprocess.run(
        [sys.executable, "-m", "etcdfast", "--endpoints", auth_server.endpoint, "--user", "root:rootpw",
         "load", str(data)], capture_output=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    with etcdfast.Client(auth_server.endpoint, user="root", password="rootpw", timeout=10) as client:
        assert client.count("/cli-auth/", prefix=True) == 300


# -- 3. outcomes misreported ------------------------------------------------------------


def _absent(endpoint: str, keys: Set[bytes]) -> Set[bytes]:
    with etcdfast.Client(endpoint, timeout=10) as reader:
        return {k for k in keys if reader.get_value(k) is None}


def test_sync_close_during_puts_says_what_is_known(etcd_server, etcd_prefix, twin):
    # Before: applied puts raised plain ClientClosedError ("not executed") and
    # some raised grpc's ValueError('Cannot invoke RPC on closed channel!').
    client = etcdfast.Client(etcd_server.endpoint, timeout=10)
    outcomes: Dict[bytes, BaseException] = {}
    started = threading.Barrier(17)

    def writer(t: int) -> None:
        started.wait()
        for i in range(2000):  # bounded; the close comes long before
            key = etcd_prefix + b"%02d-%04d" % (t, i)
            try:
                client.put(key, b"v")
            except BaseException as exc:  # noqa: B036 - every kind is checked below
                outcomes[key] = exc
                return

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(16)]
    for thread in threads:
        thread.start()
    started.wait()
    time.sleep(0.3)
    client.close()
    for thread in threads:
        thread.join(30)
    assert len(outcomes) == 16
    for exc in outcomes.values():
        assert isinstance(exc, (ClosedDuringCallError, ClientClosedError)), repr(exc)
    not_sent = {k for k, exc in outcomes.items() if not isinstance(exc, OutcomeUnknownError)}
    assert _absent(etcd_server.endpoint, not_sent) == not_sent  # "not executed" was true


def test_async_close_during_puts_says_what_is_known(etcd_server, etcd_prefix, twin):
    # Before: in-flight calls raised a bare asyncio.CancelledError from grpc.
    outcomes: Dict[bytes, BaseException] = {}

    async def main() -> None:
        client = etcdfast.AsyncClient(etcd_server.endpoint, timeout=10)

        async def writer(t: int) -> None:
            for i in range(2000):
                key = etcd_prefix + b"%03d-%04d" % (t, i)
                try:
                    await client.put(key, b"v")
                except BaseException as exc:  # noqa: B036 - CancelledError included
                    outcomes[key] = exc
                    return

        tasks = [asyncio.ensure_future(writer(t)) for t in range(64)]
        await asyncio.sleep(0.3)
        await client.close()
        await asyncio.wait(tasks, timeout=30)

    asyncio.run(main())
    assert len(outcomes) == 64
    for exc in outcomes.values():
        assert isinstance(exc, (ClosedDuringCallError, ClientClosedError)), repr(exc)
    assert any(isinstance(exc, ClosedDuringCallError) for exc in outcomes.values())
    not_sent = {k for k, exc in outcomes.items() if not isinstance(exc, OutcomeUnknownError)}
    assert _absent(etcd_server.endpoint, not_sent) == not_sent


@pytest.fixture()
def proxied(etcd_server: EtcdServer) -> Iterator[FaultProxy]:
    with FaultProxy(etcd_server.endpoint) as proxy:
        yield proxy


def _cut(proxy: FaultProxy) -> None:
    """Reset the connections open now; new ones pass again."""
    proxy.reset()
    proxy.pass_through()


def test_unavailable_after_a_write_was_sent_is_outcome_unknown(proxied, etcd_server, etcd_prefix, kind, twin):
    # The put reaches etcd and is applied; its answer is cut off by a reset.
    # Before: a plain Unavailable, which errors.py said meant "not executed".
    key = etcd_prefix + b"cut-off"
    with Driver(kind, proxied.endpoint, timeout=20) as client:
        client.get(b"warm-up")  # connected, so the put is sent at once
        proxied.delay(1.0)  # each chunk held 1 s: request at +1 s, answer at +2 s
        cut = threading.Timer(1.5, _cut, (proxied,))
        cut.start()
        try:
            with pytest.raises(Unavailable) as info:
                client.put(key, b"applied")
        finally:
            cut.cancel()
    assert isinstance(info.value, ConnectionLostError) and isinstance(info.value, OutcomeUnknownError)
    with etcdfast.Client(etcd_server.endpoint, timeout=10) as reader:
        assert reader.get_value(key) == b"applied"  # it was applied: "unknown" was the truth


def test_reads_cut_off_are_retried(proxied, etcd_prefix, kind, twin):
    # The same failure on a repeatable call is retried on a new connection.
    with Driver(kind, proxied.endpoint, timeout=20) as client:
        client.put(etcd_prefix + b"r", b"1")
        proxied.delay(0.5)
        cut = threading.Timer(0.7, _cut, (proxied,))
        cut.start()
        try:
            assert client.get_value(etcd_prefix + b"r") == b"1"
        finally:
            cut.cancel()


# -- 4. timeout=inf ---------------------------------------------------------------------


@pytest.mark.parametrize("timeout", [math.inf, 1e10, 8e9])
def test_infinite_and_huge_timeouts_mean_no_deadline(etcd_server, etcd_prefix, kind, twin, timeout):
    # Before: every call failed at once with Timeout.
    with Driver(kind, etcd_server.endpoint, timeout=timeout) as client:
        client.put(etcd_prefix + b"k", b"v")
        assert client.get_value(etcd_prefix + b"k", timeout=timeout) == b"v"
        assert client.put_many([(etcd_prefix + b"m", b"v")], timeout=timeout).keys == 1
        watch = client.watch(etcd_prefix + b"k", timeout=timeout)
        client.run(watch.cancel())
    with pytest.raises(ValueError):
        etcdfast.Client(etcd_server.endpoint, timeout=math.nan)


# -- 5. a password kept in a traceback frame ------------------------------------------------


def _reachable_text(error: BaseException) -> str:
    """What an error tracker capturing locals could record from ``error``: the
    text of the error chain (causes and contexts, suppressed or not) and the
    repr of every local of every frame of their tracebacks -- containers
    walked, bytes and str as they are -- except the frames of the tests and
    their drivers, which hold what the test itself passed in."""
    seen: Set[int] = set()
    parts: List[str] = []
    tests = os.path.dirname(os.path.abspath(__file__)) + os.sep

    def show(value: Any, depth: int = 0) -> None:
        if isinstance(value, (bytes, bytearray, memoryview)):
            parts.append(bytes(value).decode("latin-1"))
        elif isinstance(value, str):
            parts.append(value)
        elif isinstance(value, dict) and depth < 4:
            for k, v in value.items():
                show(k, depth + 1)
                show(v, depth + 1)
        elif isinstance(value, (list, tuple, set, frozenset)) and depth < 4:
            for item in value:
                show(item, depth + 1)
        elif isinstance(value, BaseException):
            chain(value)
        else:
            parts.append(repr(value))
            payload = getattr(value, "payload", None)  # our Requests hide it in repr
            if isinstance(payload, bytes):
                parts.append(payload.decode("latin-1"))

    def chain(exc: BaseException) -> None:
        if id(exc) in seen:
            return
        seen.add(id(exc))
        parts.append(repr(exc))
        tb = exc.__traceback__
        while tb is not None:
            frame = tb.tb_frame
            if not os.path.abspath(frame.f_code.co_filename).startswith(tests):
                for value in list(frame.f_locals.values()):
                    show(value)
            tb = tb.tb_next
        for linked in (exc.__cause__, exc.__context__):
            if linked is not None:
                chain(linked)

    chain(error)
    return "\n".join(parts)


def test_the_walker_finds_a_secret_in_a_frame():
    # A function compiled as if from another file: its frame is walked.
    scope: Dict[str, Any] = {"EtcdError": EtcdError}
    exec(compile("def leaky(password):\n    raise EtcdError('boom')\n", "<library>", "exec"), scope)
    with pytest.raises(EtcdError) as info:
        scope["leaky"]("hunter2-in-a-frame")
    assert "hunter2-in-a-frame" in _reachable_text(info.value)
    try:
        try:
            scope["leaky"](b"bytes-in-a-cause")
        except EtcdError as exc:
            raise EtcdError("outer") from exc
    except EtcdError as outer:
        assert "bytes-in-a-cause" in _reachable_text(outer)


def test_failing_password_calls_keep_no_secret(cli, etcd_prefix):
    # Before: the error's __cause__ was grpc's, whose frame held the payload.
    secret = "n0t-in-any-frame-" + etcd_prefix.decode()[-8:]
    user = "u" + etcd_prefix.decode().strip("/").replace("/", "-")
    cli.user_add(user, no_password=True)
    try:
        with pytest.raises(UserAlreadyExistsError) as exists:
            cli.user_add(user, secret)
        assert secret not in _reachable_text(exists.value)
        with pytest.raises(UserNotFoundError) as missing:
            cli.user_change_password(user + "-missing", secret)
        assert secret not in _reachable_text(missing.value)
    finally:
        cli.user_delete(user)


def test_a_failed_login_keeps_no_secret(auth_server, kind, twin):
    # Before: raised "from None" inside the except block: __context__ still
    # held grpc's error, whose frames held the login request's bytes.
    secret = "wr0ng-but-secret"
    with Driver(kind, auth_server.endpoint, user="root", password=secret, timeout=10) as client:
        with pytest.raises(AuthFailedError) as info:
            client.get(b"/x")
    assert secret not in _reachable_text(info.value)


# -- 6. integers beyond int64, deep txns, empty watch ranges ----------------------------------


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda c: c.get(b"k", limit=2**63), "limit"),
        (lambda c: c.get(b"k", revision=2**64), "revision"),
        (lambda c: c.get(b"k", min_mod_revision=2**63), "min_mod_revision"),
        (lambda c: c.put(b"k", b"v", lease=2**64), "lease"),
        (lambda c: c.compact(2**63), "revision"),
        (lambda c: c.txn(compare=[Compare.version(b"k") == 2**63]), "version"),
        (lambda c: c.txn(compare=[Compare.mod_revision(b"k") < -(2**63) - 1]), "mod_revision"),
        (lambda c: c.txn(compare=[Compare.lease(b"k") == 2**64]), "lease"),
        (lambda c: c.watch(b"k", start_revision=2**63), "start_revision"),
        (lambda c: c.grant(2**63), "TTL"),
        (lambda c: c.grant(10, 2**63), "lease ID"),
        (lambda c: c.revoke(2**64), "lease"),
        (lambda c: c.time_to_live(2**64), "lease"),
        (lambda c: c.put_many([(b"k", b"v")], lease=2**63), "lease"),
        (lambda c: c.put_many([(b"k", b"v")], batch_ops=2**63), "batch_ops"),
        (lambda c: c.iter_range(b"k", revision=2**63), "revision"),
        (lambda c: c.hash_kv(2**63), "revision"),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_out_of_range_integers_are_invalid_arguments(cli, call, name):
    # Before: OverflowError: Python int too large to convert to C long.
    with pytest.raises(InvalidArgumentError) as info:
        call(cli)
    assert name in str(info.value)


def test_a_too_deep_txn_is_refused_before_it_is_sent(cli, etcd_prefix):
    # Before: etcd executed a 49-deep txn, then the answer was a ProtocolError.
    key = etcd_prefix + b"deep"
    op = Op.put(key, b"v")
    for _ in range(MAX_TXN_DEPTH - 1):
        op = Op.txn(success=[op])
    assert cli.txn(success=[op]).succeeded  # the deepest allowed one round-trips
    cli.delete(key)
    before = cli.get(b"any").header.revision
    with pytest.raises(InvalidArgumentError, match="nested"):
        cli.txn(success=[Op.txn(success=[op])])
    assert cli.get(b"any").header.revision == before
    assert cli.get_value(key) is None


@pytest.mark.parametrize("range_end", [b"a", b"k", b"j\xff"])
def test_a_watch_on_an_empty_range_is_an_invalid_argument(cli, etcd_prefix, range_end):
    # Before: a bare EtcdError from the server's cancel reason.
    with pytest.raises(InvalidArgumentError, match="range_end"):
        cli.watch(etcd_prefix + b"k", range_end=etcd_prefix + range_end)


# -- 7. a response over the receive limit -----------------------------------------------------


def test_a_response_over_the_receive_limit(etcd_server, etcd_prefix, kind, twin):
    # Before: grpcio 1.85 words it "Stream removed (CLIENT: Received message
    # larger than max ...)", which mapped to a plain ResourceExhaustedError.
    with Driver(kind, etcd_server.endpoint, timeout=10, max_receive_message_length=1000) as client:
        client.put(etcd_prefix + b"big", b"x" * 5000)
        with pytest.raises(ResponseTooLargeError, match="max_receive_message_length"):
            client.get(etcd_prefix + b"big")


# -- 9. dial timeout; slow maintenance calls --------------------------------------------------


@pytest.fixture()
def silent_port() -> Iterator[int]:
    """A port that accepts TCP connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    try:
        yield listener.getsockname()[1]
    finally:
        listener.close()


@pytest.mark.parametrize("dial_timeout", [0.5, None])
def test_a_silent_endpoint_fails_the_first_call_with_the_dial_timeout(silent_port, kind, dial_timeout):
    # Before: grpc's own 20 s connection timeout, then retries: ~20 s or more,
    # and an error about a SETTINGS frame. None: the 5 s default.
    endpoint = f"127.0.0.1:{silent_port}"
    options = {} if dial_timeout is None else {"dial_timeout": dial_timeout}
    with Driver(kind, endpoint, timeout=60, **options) as client:
        with pytest.raises(Unavailable) as info:
            client.get(b"k")
    assert "dial_timeout" in str(info.value) and endpoint in str(info.value)
    assert not isinstance(info.value, OutcomeUnknownError)  # nothing was sent


def test_a_refused_endpoint_still_fails_with_the_reason(kind):
    with Driver(kind, "127.0.0.1:1", timeout=10, dial_timeout=5) as client:
        with pytest.raises(Unavailable, match="(?i)connection refused"):
            client.get(b"k")


def test_slow_maintenance_calls_ignore_the_short_default(proxied, kind, twin):
    # Before: defragment used the client's default timeout (the README's
    # timeout=5 timed out defragmenting a 235 MB database).
    # No keepalive: this is about call deadlines. (The "ping timeout" once seen
    # here in CI, and later a defragment that never returned, were the fault
    # proxy stalling a delayed connection: see test_fault_proxy's preemption test.)
    with Driver(kind, proxied.endpoint, timeout=0.5, keepalive_time=None) as client:
        client.get(b"warm-up")
        proxied.delay(0.4)  # a round trip now takes ~0.8 s: over the default
        with pytest.raises(Timeout):
            client.get(b"k")
        client.defragment()  # the slow-call default (15 minutes) applies
        client.status(timeout=30)
    assert api_maintenance.defragment().default_timeout == 15 * 60
    assert api_maintenance.move_leader(1).default_timeout == 15 * 60
