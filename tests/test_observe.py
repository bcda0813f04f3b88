"""Observability against real etcd: the ``on_call`` hook and ``ETCD_CLIENT_DEBUG``.

The hook is checked in-process for both clients (unary calls that succeed,
fail and are retried; a server stream; the sessions of a watch stream, one
of them broken by a FaultProxy). The debug switch is checked in
subprocesses (it configures logging once per process): a fail-over to
another endpoint and a token refresh must show in their stderr, and nothing
shows without the switch.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from typing import Any, Callable, List

import pytest
from client_drivers import KINDS, Driver

import etcdfast
from etcdfast import CallInfo, LeaseNotFoundError, Unavailable
from etcdfast.testing import FaultProxy, free_port

WAIT_S = 20.0
SCRIPT_S = 120.0


@pytest.fixture(params=KINDS)
def kind(request) -> str:
    return request.param  # type: ignore[no-any-return]


def wait_for(condition: Callable[[], Any], what: str) -> Any:
    deadline = time.monotonic() + WAIT_S
    while True:
        answer = condition()
        if answer:
            return answer
        assert time.monotonic() < deadline, f"{what}: not within {WAIT_S} s"
        time.sleep(0.02)


# -- the on_call hook ------------------------------------------------------------------------


def test_the_hook_sees_unary_calls(kind, etcd_server, etcd_prefix):
    infos: List[CallInfo] = []
    with Driver(kind, etcd_server.endpoint, timeout=10, on_call=infos.append) as driver:
        driver.put(etcd_prefix + b"k", b"v")
        assert driver.get_value(etcd_prefix + b"k") == b"v"
        with pytest.raises(LeaseNotFoundError) as failed:
            driver.revoke(0x7FFF_0000_0000_0042)
    put, get, revoke = infos[-3:]
    assert (put.method, get.method, revoke.method) == (
        "/etcdserverpb.KV/Put", "/etcdserverpb.KV/Range", "/etcdserverpb.Lease/LeaseRevoke")
    for info in (put, get):
        assert (info.endpoint, info.code, info.error, info.retries, info.kind, info.ok) == (
            etcd_server.endpoint, "OK", None, 0, "unary", True)
        assert isinstance(info.duration, float) and info.duration >= 0
    assert (revoke.endpoint, revoke.code, revoke.retries, revoke.ok) == (etcd_server.endpoint, "NOT_FOUND", 0,
                                                                        False)
    assert revoke.error is failed.value  # the very error the caller got


def test_the_hook_counts_retries(kind):
    infos: List[CallInfo] = []
    nowhere = f"127.0.0.1:{free_port()}"  # nothing listens: every attempt is refused
    with Driver(kind, nowhere, timeout=10, dial_timeout=None, max_retries=3, retry_backoff=(0.01, 0.02),
                on_call=infos.append) as driver:
        with pytest.raises(Unavailable) as failed:
            driver.get("k")
    (info,) = infos
    assert (info.method, info.code, info.retries, info.kind) == ("/etcdserverpb.KV/Range", "UNAVAILABLE", 3,
                                                                "unary")
    assert info.error is failed.value and info.endpoint == nowhere


def test_the_hook_sees_a_server_stream(kind, etcd_server, tmp_path):
    infos: List[CallInfo] = []
    with Driver(kind, etcd_server.endpoint, timeout=10, on_call=infos.append) as driver:
        driver.snapshot(tmp_path / "snap.db")
    (info,) = [i for i in infos if i.kind == "server_stream"]
    assert (info.method, info.endpoint, info.code, info.error, info.retries) == (
        "/etcdserverpb.Maintenance/Snapshot", etcd_server.endpoint, "OK", None, 0)


def test_the_hook_sees_each_watch_stream_session(kind, etcd_server, etcd_prefix):
    infos: List[CallInfo] = []
    key = etcd_prefix + b"w"
    with FaultProxy(etcd_server.endpoint) as proxy:
        with Driver(kind, proxy.endpoint, timeout=10, on_call=infos.append) as driver:
            watch = driver.watch(key)
            driver.put(key, b"1")
            assert [e.kv.value for e in watch.get(timeout=WAIT_S)] == [b"1"]
            proxy.reset()  # the stream breaks: its first session ends with an error
            broken = wait_for(lambda: [i for i in infos if i.kind == "bidi_stream"], "the broken session")
            proxy.pass_through()
            driver.put(key, b"2")  # retried until the proxy passes again
            assert [e.kv.value for e in watch.get(timeout=WAIT_S)] == [b"2"]  # resumed
        sessions = [i for i in infos if i.kind == "bidi_stream" and i.method == "/etcdserverpb.Watch/Watch"]
    first = broken[0]
    assert first.method == "/etcdserverpb.Watch/Watch" and not first.ok and first.code == "UNAVAILABLE"
    assert first.retries == 0 and first.endpoint == proxy.endpoint
    # Sessions opened while the proxy was resetting may have ended too; the
    # last one ends when the client closes, the one before it a reconnect.
    assert len(sessions) >= 2
    assert [s.retries for s in sessions] == list(range(len(sessions)))
    assert isinstance(sessions[-1].duration, float)


def test_a_hook_that_raises_never_breaks_the_call(kind, etcd_server, etcd_prefix):
    def broken_hook(info: CallInfo) -> None:
        raise RuntimeError("a broken metrics exporter")

    with Driver(kind, etcd_server.endpoint, timeout=10, on_call=broken_hook) as driver:
        driver.put(etcd_prefix + b"k", b"v")
        assert driver.get_value(etcd_prefix + b"k") == b"v"
    with pytest.raises(TypeError):
        etcdfast.Client(etcd_server.endpoint, on_call="not callable")


# -- ETCD_CLIENT_DEBUG ----------------------------------------------------------------------


def run_script(code: str, *args: str, debug: bool = True) -> "subprocess.CompletedProcess[str]":
    env = {k: v for k, v in os.environ.items() if k != "ETCD_CLIENT_DEBUG"}
    if debug:
        env["ETCD_CLIENT_DEBUG"] = "1"
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code), *args], env=env,
                          capture_output=True, text=True, timeout=SCRIPT_S)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


FAILOVER = """
    import sys, threading, time
    import etcdfast
    from etcdfast.testing import FaultProxy

    server = sys.argv[1]
    retried = []
    with FaultProxy(server) as proxy:
        # Two endpoints: the server itself and the same server behind a proxy.
        with etcdfast.Client([server, proxy.endpoint], timeout=10,
                             on_call=lambda info: info.retries and retried.append(info)) as client:
            for _ in range(4):  # both connected
                client.status()
            for attempt in range(20):  # rounds until a call was in flight on the proxy when it reset
                proxy.delay(2.0)
                calls = [threading.Thread(target=client.get, args=("/debug/k",)) for _ in range(2)]
                for call in calls:
                    call.start()
                calls[0].join(0.5)
                proxy.reset()
                for call in calls:
                    call.join(30)
                proxy.pass_through()
                if retried:
                    break
    print("retried" if retried else "never retried")
"""


def test_the_debug_switch_logs_a_failover(etcd_server):
    done = run_script(FAILOVER, etcd_server.endpoint)
    assert done.stdout.strip() == "retried", done.stderr[-3000:]
    lines = [line for line in done.stderr.splitlines() if "etcdfast.call" in line]
    assert any("/etcdserverpb.KV/Range failed on" in line and "retry 1 of" in line
               and "on the next member" in line for line in lines), done.stderr[-3000:]


TOKEN_REFRESH = """
    import sys, time
    import etcdfast

    with etcdfast.Client(sys.argv[1], user="root", password="rootpw", timeout=10) as client:
        client.put("/debug/token", "1")
        time.sleep(3.0)  # the server's token clock: nothing to poll, the token expires unused after 2 s
        print(client.get_value("/debug/token").decode())
"""


def test_the_debug_switch_logs_a_token_refresh(auth_server):
    done = run_script(TOKEN_REFRESH, auth_server.endpoint)
    assert done.stdout.strip() == "1"
    assert "auth token refused" in done.stderr and "logging in again" in done.stderr, done.stderr[-3000:]
    assert done.stderr.count("authenticated as 'root': new auth token") >= 2, done.stderr[-3000:]
    # Never the password.
    assert "rootpw" not in done.stderr


def test_without_the_switch_nothing_is_logged(etcd_server):
    done = run_script("""
        import sys, etcdfast
        with etcdfast.Client(["127.0.0.1:1", sys.argv[1]], timeout=10) as client:
            client.put("/debug/quiet", "1")
            print(client.get_value("/debug/quiet").decode())
    """, etcd_server.endpoint, debug=False)
    assert done.stdout.strip() == "1"
    assert "etcdfast" not in done.stderr
