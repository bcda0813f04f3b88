"""Fork safety against a real etcd: a client used before ``os.fork()``, in the child.

The child (forked from the test, with ``os._exit`` at its end) tries the
parent's client -- a call, a write, the next event of a watch made in the
parent -- and a new client of its own, and reports each outcome through a
pipe as a line of JSON. The parent then checks that its own client and watch
are unaffected. An AsyncClient cannot work in a child forked after grpc.aio
started (its process-wide polling thread stays in the parent; gRPC supports
fork with its sync stack only): a new one is refused with ForkedClientError
there, and the child uses the sync Client. Every wait is bounded: a child that hangs is killed by its
PID and the test fails.
"""

from __future__ import annotations

import asyncio
import json
import os
import select
import signal
import time
from typing import Any, Callable, Dict

import pytest
from client_drivers import Driver, unwrap

import etcdfast
from etcdfast import ForkedClientError

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork() is POSIX-only")

#: How long the child may take for everything it does.
CHILD_S = 60.0


#: What the parent's client does in the child: every use refused.
REFUSED = {name: "ForkedClientError" for name in ("get", "put", "watch", "new_watch", "watch_error")}


def fresh_client(endpoint: str, key: bytes) -> str:
    """A new sync client in the child writes and reads back (what it read)."""
    with etcdfast.Client(endpoint, timeout=10) as fresh:
        fresh.put(key + b"/child", b"hello")
        return fresh.get_value(key + b"/child").decode()  # type: ignore[union-attr]


def outcome(step: Callable[[], Any]) -> str:
    """``"ok"``, or the name of the exception ``step`` raised."""
    try:
        step()
    except BaseException as exc:  # reported to the parent by name
        return type(exc).__name__
    return "ok"


def in_child(body: Callable[[], Dict[str, Any]]) -> Dict[str, Any]:
    """Run ``body`` in a forked child; its answer (a JSON-able dict) comes back here."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        status = 0
        try:
            os.close(read_end)
            try:
                report = body()
            except BaseException as exc:  # reported, not raised: there is no pytest here
                report = {"crashed": repr(exc)}
            os.write(write_end, json.dumps(report).encode() + b"\n")
        except BaseException:
            status = 1
        finally:
            os._exit(status)
    os.close(write_end)
    data = b""
    deadline = time.monotonic() + CHILD_S
    try:
        while not data.endswith(b"\n"):
            left = deadline - time.monotonic()
            ready, _, _ = select.select([read_end], [], [], max(0.0, left))
            if not ready:
                pytest.fail(f"the forked child reported nothing within {CHILD_S} s")
            chunk = os.read(read_end, 65536)
            if not chunk:
                pytest.fail(f"the forked child exited without a report (got {data!r})")
            data += chunk
    finally:
        os.close(read_end)
        _reap(pid)
    report: Dict[str, Any] = json.loads(data)
    assert "crashed" not in report, report
    return report


def _reap(pid: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done:
            return
        time.sleep(0.01)
    os.kill(pid, signal.SIGKILL)  # the child we forked, by its PID
    os.waitpid(pid, 0)


def test_a_sync_client_in_a_forked_child(etcd_server, etcd_prefix):
    key = etcd_prefix + b"k"
    with etcdfast.Client(etcd_server.endpoint, timeout=10) as client:
        client.put(key, b"before")
        watch = client.watch(key)

        def child() -> Dict[str, Any]:
            report = {
                "get": outcome(lambda: client.get(key)),
                "put": outcome(lambda: client.put(key, b"from the child")),
                "watch": outcome(lambda: watch.get(timeout=10)),
                "new_watch": outcome(lambda: client.watch(key)),
                "watch_error": type(watch.error).__name__,
                "close": outcome(client.close),
            }
            report["fresh"] = fresh_client(etcd_server.endpoint, key)
            return report

        assert in_child(child) == {**REFUSED, "close": "ok", "fresh": "hello"}
        # The parent: untouched, its watch still delivers.
        assert client.get_value(key) == b"before"
        assert not client.closed
        client.put(key, b"after")
        assert [e.kv.value for e in watch.get(timeout=10)] == [b"after"]
        assert client.get_value(key + b"/child") == b"hello"


def test_an_async_client_in_a_forked_child(etcd_server, etcd_prefix):
    key = etcd_prefix + b"k"
    with Driver("async", etcd_server.endpoint, timeout=10) as driver:
        driver.put(key, b"before")
        watch = driver.watch(key)
        client, handle = driver.client, unwrap(watch)

        def child() -> Dict[str, Any]:
            async def main() -> Dict[str, Any]:  # a new event loop: the parent's does not run here
                report: Dict[str, Any] = {}
                for name, step in (("get", lambda: client.get(key)),
                                   ("put", lambda: client.put(key, b"from the child")),
                                   ("watch", lambda: handle.get(timeout=10)),
                                   ("new_watch", lambda: client.watch(key))):
                    try:
                        await step()
                        report[name] = "ok"
                    except BaseException as exc:  # reported by name
                        report[name] = type(exc).__name__
                report["watch_error"] = type(handle.error).__name__
                await client.close()
                # grpc.aio's polling thread (started by the parent) is not in the
                # child: a new AsyncClient is refused at once instead of hanging.
                try:
                    etcdfast.AsyncClient(etcd_server.endpoint, timeout=10)
                    report["new_async"] = "ok"
                except ForkedClientError as exc:
                    report["new_async"] = "refused: " + ("spawn" if "'spawn'" in str(exc) else str(exc))
                return report

            report = asyncio.run(main())
            report["fresh"] = fresh_client(etcd_server.endpoint, key)  # the sync stack works
            return report

        assert in_child(child) == {**REFUSED, "new_async": "refused: spawn", "fresh": "hello"}
        assert driver.get_value(key) == b"before"
        driver.put(key, b"after")
        assert [e.kv.value for e in watch.get(timeout=10)] == [b"after"]
        assert driver.get_value(key + b"/child") == b"hello"


def test_the_error_says_what_to_do(etcd_server):
    with etcdfast.Client(etcd_server.endpoint, timeout=10) as client:
        client.status()
        report = in_child(lambda: {"message": _message(client)})
        assert "os.fork()" in report["message"] and "new client in the child" in report["message"]
        assert issubclass(ForkedClientError, etcdfast.ClientClosedError)


def _message(client: etcdfast.Client) -> str:
    try:
        client.status()
    except ForkedClientError as exc:
        return str(exc)
    return "no error"
