"""Regression tests for the watch and lease bugs of issue 11 (bugs 1 and 8).

Real etcd, both clients (``Driver``: sync and async) and both codec twins.
The bug tests failed on the code before the one-call-path redesign; the
others pin the documented behaviour next to them (see each docstring).

Bug 1: a watch whose creation timed out (or that was cancelled while the
stream reconnected) was dropped from the create FIFO before the server
answered it, so that answer -- and the events of its key -- went to the next
pending watch, and the server-side watch leaked.

Bug 8: ``on_lost`` fired when the owner revoked its lease (``revoke()``,
leaving ``with``); ``watch.cancel()`` followed by ``close()`` made the
reader raise ClientClosedError instead of ending.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import random
import threading
import time
from typing import Any, Callable, Dict, Iterator, List, Optional

import pytest

import etcdfast
from etcdfast.errors import ClientClosedError, Timeout
from etcdfast.testing import EtcdServer, FaultProxy

KINDS = ["sync", "async"]
WATCH_LOGGER = "etcdfast.watch"
UNEXPECTED = "unexpected watch creation answer"


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def server() -> Iterator[EtcdServer]:
    """A private server for this module: tests pause it (and always resume it)."""
    with EtcdServer(name="reg-watch") as s:
        yield s


# -- helpers ---------------------------------------------------------------------------


class Driver:
    """A sync or async client behind one blocking face, kept in this file so
    that it runs on the code before the redesign too (tests/client_drivers.py
    imports new-only modules, etcdfast.aio.bulk). The async client's loop runs only inside
    :meth:`run`: its tasks (watch reader, keep-alives) progress while the test
    waits through :func:`nap`, :func:`wait_until` or a call."""

    def __init__(self, kind: str, endpoint: str, **options: Any) -> None:
        self.kind = kind
        self.loop: Optional[asyncio.AbstractEventLoop] = None
        if kind == "sync":
            self.client: Any = etcdfast.Client(endpoint, **options)
        else:
            self.loop = asyncio.new_event_loop()

            async def make() -> Any:
                return etcdfast.AsyncClient(endpoint, **options)

            self.client = self.loop.run_until_complete(make())

    def run(self, value: Any) -> Any:
        """``value``, awaited on the driver's loop if it is awaitable."""
        if self.loop is not None and inspect.isawaitable(value):
            return self.loop.run_until_complete(value)
        return value

    def __getattr__(self, name: str) -> Callable[..., Any]:
        attribute = getattr(self.client, name)
        return lambda *args, **kwargs: self.run(attribute(*args, **kwargs))

    def close(self) -> None:
        try:
            self.run(self.client.close())
        finally:
            if self.loop is not None and not self.loop.is_closed():
                async def shutdown() -> None:  # as asyncio.run ends
                    tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
                    for task in tasks:
                        task.cancel()
                    await asyncio.gather(*tasks, return_exceptions=True)

                self.loop.run_until_complete(shutdown())
                self.loop.close()

    def __enter__(self) -> "Driver":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def nap(d: Driver, seconds: float) -> None:
    """Sleep, letting the async client's loop run meanwhile."""
    if d.kind == "async":
        d.run(asyncio.sleep(seconds))
    else:
        time.sleep(seconds)


def wait_until(d: Driver, condition: Callable[[], bool], timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        nap(d, 0.02)
    return True


def collect(d: Driver, watch: Any, until: Callable[[List[Any]], bool],
            timeout: float = 10.0, linger: float = 0.3) -> List[Any]:
    """Events of ``watch`` until ``until(events)`` (or ``timeout``), then ``linger``
    seconds more, to catch any stray event that follows."""
    events: List[Any] = []
    deadline = time.monotonic() + timeout
    while not until(events) and time.monotonic() < deadline:
        try:
            events.extend(d.run(watch.get(timeout=0.1)))
        except Timeout:
            pass
    end = time.monotonic() + linger
    while time.monotonic() < end:
        try:
            events.extend(d.run(watch.get(timeout=0.05)))
        except Timeout:
            pass
    return events


def has_key(key: bytes) -> Callable[[List[Any]], bool]:
    return lambda events: any(e.key == key for e in events)


def only_own_events(d: Driver, p: bytes, cancelled: bytes, watches: Dict[bytes, Any]) -> None:
    """Put the cancelled watch's key, then each watch's key: every watch gets
    exactly its own event (a misrouted answer would hand it the cancelled one's)."""
    d.put(p + cancelled, b"0")
    for i, name in enumerate(watches, 1):
        d.put(p + name, b"%d" % i)
    for i, (name, watch) in enumerate(watches.items(), 1):
        got = collect(d, watch, has_key(p + name), linger=0.3 if i == 1 else 0.0)
        assert [(e.key, e.value) for e in got] == [(p + name, b"%d" % i)]


def watchers(server: EtcdServer) -> float:
    """etcd's gauge of server-side watchers (all streams), from /metrics."""
    body = server._http_get("/metrics", timeout=5.0)
    assert body is not None, "no /metrics answer"
    name = "etcd_debugging_mvcc_watcher_total"
    return sum(float(line.split()[-1]) for line in body.decode().splitlines()
               if line.startswith(name + " "))


def settle_watchers(d: Driver, server: EtcdServer, expected: float, timeout: float = 15.0) -> float:
    """Poll the gauge until it reads ``expected`` (bounded); returns the last reading."""
    seen = watchers(server)
    deadline = time.monotonic() + timeout
    while seen != expected and time.monotonic() < deadline:
        nap(d, 0.1)
        seen = watchers(server)
    return seen


def unexpected_answers(caplog: pytest.LogCaptureFixture) -> List[str]:
    return [r.getMessage() for r in caplog.records
            if r.name == WATCH_LOGGER and UNEXPECTED in r.getMessage()]


# -- bug 1 (a): a timed-out creation and the next watch ------------------------------


def test_timed_out_creation_does_not_poison_the_next_watch(kind, twin, caplog):
    """Bug 1a. The stream is open (a watch on another key), the server is
    paused, ``watch(a, timeout=0.5)`` times out; after the resume, ``watch(b)``
    gets b's events only (old code: a's, never its own), and the server-side
    watch on a is cancelled (the watcher gauge returns to 2, not 3)."""
    caplog.set_level(logging.WARNING, logger=WATCH_LOGGER)
    p = b"/reg1a/"
    with EtcdServer(name="reg-1a") as server, Driver(kind, server.endpoint, timeout=10) as d:
        opener = d.watch(p + b"opener")
        assert settle_watchers(d, server, 1) == 1
        server.pause()
        try:
            with pytest.raises(Timeout):
                d.watch(p + b"a", timeout=0.5)
        finally:
            server.resume()
        watch_b = d.watch(p + b"b")
        only_own_events(d, p, b"a", {b"b": watch_b, b"opener": opener})
        # The server-side watch on a is gone: the opener and b remain.
        assert settle_watchers(d, server, 2) == 2
        assert unexpected_answers(caplog) == []
        d.run(watch_b.cancel())
        d.run(opener.cancel())
        assert settle_watchers(d, server, 0) == 0


# -- bug 1 (b): churn with short creation timeouts ----------------------------------------

CHURN_WORKERS = 8
CHURN_SECONDS = 6.0
CHURN_PUTS_PER_S = 1000
#: Creation timeouts, drawn per attempt: the short ones make some creations
#: time out (their answers then arrive late, on a busy stream) even on an idle
#: machine; 50 ms is the "normal" short timeout of the issue's report.
CHURN_CREATE_TIMEOUTS = (0.0005, 0.002, 0.05, 0.05)


class Tally:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.created = 0
        self.timeouts = 0
        self.events = 0
        self.misrouted: List[tuple] = []
        self.unended = 0
        self.errors: List[BaseException] = []
        self.puts = 0

    def check(self, key: bytes, events: List[Any]) -> None:
        with self.lock:
            self.events += len(events)
            self.misrouted.extend((key, e.key) for e in events if e.key != key)


def _writer(endpoint: str, keys: List[bytes], stop: threading.Event, tally: Tally) -> None:
    started = time.monotonic()
    with etcdfast.Client(endpoint, timeout=10) as writer:
        i = 0
        while not stop.is_set():
            ahead = started + i / CHURN_PUTS_PER_S - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)
            writer.put(keys[i % len(keys)], b"%d" % i)
            i += 1
    tally.puts = i


def _sync_worker(d: Driver, key: bytes, deadline: float, tally: Tally) -> None:
    client = d.client
    draw = random.Random(key).choice
    try:
        while time.monotonic() < deadline:
            try:
                watch = client.watch(key, timeout=draw(CHURN_CREATE_TIMEOUTS))
            except Timeout:
                with tally.lock:
                    tally.timeouts += 1
                continue
            with tally.lock:
                tally.created += 1
            for _ in range(2):
                try:
                    tally.check(key, watch.get(timeout=0.02))
                except Timeout:
                    pass
            watch.cancel()
            # What was received before the cancel took effect, then the end.
            while True:
                try:
                    batch = watch.get(timeout=10)
                except Timeout:
                    with tally.lock:
                        tally.unended += 1
                    break
                if not batch:
                    break
                tally.check(key, batch)
    except BaseException as exc:  # noqa: B036 - reported by the test
        tally.errors.append(exc)


async def _async_worker(client: Any, key: bytes, deadline: float, tally: Tally) -> None:
    draw = random.Random(key).choice
    try:
        while time.monotonic() < deadline:
            try:
                watch = await client.watch(key, timeout=draw(CHURN_CREATE_TIMEOUTS))
            except Timeout:
                tally.timeouts += 1
                continue
            tally.created += 1
            for _ in range(2):
                try:
                    tally.check(key, await watch.get(timeout=0.02))
                except Timeout:
                    pass
            await watch.cancel()
            while True:
                try:
                    batch = await watch.get(timeout=10)
                except Timeout:
                    tally.unended += 1
                    break
                if not batch:
                    break
                tally.check(key, batch)
    except Exception as exc:
        tally.errors.append(exc)


def test_churn_of_watches_with_creation_timeouts_never_misroutes(server, kind, twin, caplog):
    """Bug 1b. 8 workers (threads, or tasks) create a watch on their own key
    with a short creation timeout (0.5 ms to 50 ms), read it briefly and cancel it, for 6 s,
    while a writer puts ~1k/s to those keys: no watch ever receives another
    key's event, every cancelled watch ends, and no creation answer is
    unexpected (old code: timed-out creations handed their answer, and
    their key's events, to the next watch)."""
    caplog.set_level(logging.WARNING, logger=WATCH_LOGGER)
    prefix = b"/reg1b/" + kind.encode() + b"/" + twin.name.encode() + b"/"
    keys = [prefix + b"k%d" % i for i in range(CHURN_WORKERS)]
    tally = Tally()
    stop = threading.Event()
    writer = threading.Thread(target=_writer, args=(server.endpoint, keys, stop, tally))
    with Driver(kind, server.endpoint, timeout=10) as d:
        d.watch(prefix + b"opener")  # the stream is open before the churn starts
        writer.start()
        try:
            deadline = time.monotonic() + CHURN_SECONDS
            if kind == "sync":
                threads = [threading.Thread(target=_sync_worker, args=(d, key, deadline, tally))
                           for key in keys]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join(CHURN_SECONDS + 60)
                assert not any(t.is_alive() for t in threads)
            else:
                async def churn() -> None:
                    await asyncio.wait_for(asyncio.gather(
                        *(_async_worker(d.client, key, deadline, tally) for key in keys)),
                        CHURN_SECONDS + 60)
                d.run(churn())
        finally:
            stop.set()
            writer.join(30)
    print(f"\nchurn {kind}/{twin.name}: created={tally.created} timeouts={tally.timeouts} "
          f"events={tally.events} puts={tally.puts} misrouted={len(tally.misrouted)}")
    assert tally.errors == []
    assert tally.created > 0
    assert tally.misrouted[:5] == []
    assert tally.unended == 0
    assert unexpected_answers(caplog)[:3] == []


# -- bug 1 (c): a cancel while the stream reconnects ------------------------------------


def test_cancel_while_the_stream_reconnects_does_not_poison_the_next_watch(server, kind, twin, caplog):
    """Bug 1c. Watches x and a run through a FaultProxy; the server is paused
    and the proxy resets the connection, so the client reconnects and re-sends
    both creates to a server that cannot answer yet. ``a`` is cancelled right
    then; after the resume, a new watch on b gets b's events only (old code:
    a's or x's), x keeps its own, and a has ended."""
    caplog.set_level(logging.WARNING, logger=WATCH_LOGGER)
    p = b"/reg1c/" + kind.encode() + b"/" + twin.name.encode() + b"/"
    with FaultProxy(server.endpoint) as proxy, Driver(kind, proxy.endpoint, timeout=10) as d:
        watch_x = d.watch(p + b"x")
        watch_a = d.watch(p + b"a")
        accepted = proxy.accepted
        server.pause()
        try:
            proxy.reset()  # the stream breaks...
            proxy.pass_through()  # ...and reconnects, to a server that cannot answer
            assert wait_until(d, lambda: proxy.accepted > accepted and proxy.connections > 0)
            nap(d, 0.3)
            assert proxy.connections > 0, "the reconnection did not hold"
            d.run(watch_a.cancel())
            assert d.run(watch_a.get(timeout=5)) == []  # a ended at once
        finally:
            server.resume()
        watch_b = d.watch(p + b"b")
        only_own_events(d, p, b"a", {b"b": watch_b, b"x": watch_x})
        assert unexpected_answers(caplog) == []
        d.run(watch_b.cancel())
        d.run(watch_x.cancel())


# -- bug 8: on_lost only when lost; cancel then close ends cleanly -----------------------


def _lease_block(d: Driver, ttl: int, on_lost: Callable[[Any], None], key: bytes) -> Any:
    """Grant a lease with ``with``/``async with``, put ``key`` on it, leave the block."""
    if d.kind == "sync":
        with d.client.lease(ttl, on_lost=on_lost) as lease:
            d.client.put(key, b"v", lease=lease.id)
        return lease

    async def block() -> Any:
        async with d.client.lease(ttl, on_lost=on_lost) as lease:
            await d.client.put(key, b"v", lease=lease.id)
        return lease

    return d.run(block())


def _assert_ended_not_lost(d: Driver, lease: Any, calls: List[Any], key: bytes) -> None:
    nap(d, 0.5)  # room for a wrong on_lost call to come (it runs on the keep-alive thread/task)
    assert calls == [], "on_lost was called for a lease its owner revoked"
    assert lease.lost is None
    assert lease.revoked is True
    assert lease.alive is False
    assert d.run(lease.wait(5)) is True
    assert d.get(key).kvs == []


def test_leaving_the_lease_block_does_not_call_on_lost(server, kind, twin):
    """Bug 8. Leaving ``with client.lease(...)`` revokes the lease: ended, not
    lost (old code: on_lost was called, lease.lost set)."""
    key = b"/reg8/block/" + kind.encode() + b"/" + twin.name.encode()
    calls: List[Any] = []
    with Driver(kind, server.endpoint, timeout=10) as d:
        lease = _lease_block(d, 5, calls.append, key)
        _assert_ended_not_lost(d, lease, calls, key)


def test_revoke_by_its_owner_does_not_call_on_lost(server, kind, twin):
    """Bug 8. ``lease.revoke()`` ends the lease without on_lost (old code: called it)."""
    key = b"/reg8/revoke/" + kind.encode() + b"/" + twin.name.encode()
    calls: List[Any] = []
    with Driver(kind, server.endpoint, timeout=10) as d:
        lease = d.client.lease(5, on_lost=calls.append)
        d.run(lease.grant())
        d.put(key, b"v", lease=lease.id)
        nap(d, 0.3)  # the keep-alive stream is running
        d.run(lease.revoke())
        _assert_ended_not_lost(d, lease, calls, key)


def test_revoke_by_another_client_calls_on_lost_once(server, kind, twin):
    """Bug 8, the other side (passes before and after): a revoke by someone
    else is a loss -- on_lost exactly once, ``lost`` set, ``wait()`` True; the
    owner's revoke afterwards calls nothing more."""
    calls: List[Any] = []
    with Driver(kind, server.endpoint, timeout=10) as d, \
            etcdfast.Client(server.endpoint, timeout=10) as other:
        lease = d.client.lease(3, on_lost=calls.append)  # refreshed every second
        d.run(lease.grant())
        nap(d, 0.3)
        other.revoke(lease.id)
        assert d.run(lease.wait(10)) is True
        # wait() may return just before the callback runs: poll for it.
        assert wait_until(d, lambda: len(calls) >= 1, timeout=10)
        nap(d, 1.5)  # a second refresh period: no second call
        assert len(calls) == 1 and calls[0] is lease
        assert lease.lost is not None
        assert getattr(lease, "revoked", False) is False
        d.run(lease.revoke())  # already gone: no error, no second on_lost
        nap(d, 0.2)
        assert len(calls) == 1


def _start_reader(d: Driver, watch: Any) -> Callable[[float], Dict[str, Any]]:
    """Iterate ``watch`` in a thread (sync) or a task (async) until it ends.
    Returns ``finish(timeout)`` giving ``{"events": [...], "error": exc or None, "ended": bool}``."""
    outcome: Dict[str, Any] = {"events": [], "error": None, "ended": False}
    if d.kind == "sync":
        def read() -> None:
            try:
                for event in watch:
                    outcome["events"].append(event)
            except BaseException as exc:  # noqa: B036 - reported by the test
                outcome["error"] = exc
            outcome["ended"] = True

        thread = threading.Thread(target=read, daemon=True)
        thread.start()

        def finish(timeout: float) -> Dict[str, Any]:
            thread.join(timeout)
            return outcome

        return finish

    async def read_async() -> None:
        try:
            async for event in watch:
                outcome["events"].append(event)
        except Exception as exc:
            outcome["error"] = exc
        outcome["ended"] = True

    assert d.loop is not None
    task = d.loop.create_task(read_async())

    def finish_async(timeout: float) -> Dict[str, Any]:
        async def join() -> None:
            await asyncio.wait([task], timeout=timeout)

        d.run(join())
        return outcome

    return finish_async


def test_cancel_then_close_ends_the_reader_cleanly(server, kind, twin):
    """Bug 8. A reader iterates a watch; ``cancel()`` then ``close()`` (the
    server paused in between, so the cancel's confirmation cannot come first):
    the iteration ends with no exception (old code: ClientClosedError)."""
    key = b"/reg8/cancel/" + kind.encode() + b"/" + twin.name.encode()
    d = Driver(kind, server.endpoint, timeout=10)
    try:
        watch = d.watch(key)
        finish = _start_reader(d, watch)
        d.put(key, b"1")
        assert wait_until(d, lambda: len(finish(0)["events"]) == 1, timeout=10)
        server.pause()
        try:
            d.run(watch.cancel())
            d.run(d.client.close())
            outcome = finish(15)
        finally:
            server.resume()
        assert outcome["ended"], "the reader is still iterating"
        assert outcome["error"] is None
        assert [e.value for e in outcome["events"]] == [b"1"]
    finally:
        d.close()


def test_close_without_cancel_raises_client_closed_in_the_reader(server, kind, twin):
    """The documented behaviour next to bug 8 (passes before and after): a
    reader blocked in iteration when ``close()`` comes, with no cancel, gets
    ClientClosedError."""
    key = b"/reg8/close/" + kind.encode() + b"/" + twin.name.encode()
    d = Driver(kind, server.endpoint, timeout=10)
    try:
        watch = d.watch(key)
        finish = _start_reader(d, watch)
        d.put(key, b"1")
        assert wait_until(d, lambda: len(finish(0)["events"]) == 1, timeout=10)
        d.run(d.client.close())
        outcome = finish(15)
        assert outcome["ended"], "the reader is still iterating"
        assert isinstance(outcome["error"], ClientClosedError)
        assert [e.value for e in outcome["events"]] == [b"1"]
    finally:
        d.close()
