"""Watches against a real etcd: ranges, history, filters, many watches, faults.

Each behaviour runs for both clients (sync, and async through
``client_drivers.Driver``) and both codec twins; the tests of the sync
stream's leader/follower reading stay sync-only (they name its mechanism).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time
import urllib.request

import pytest
from client_drivers import KINDS, Driver
from conftest import crash_safe_etcd_binary

import etcdfast
from etcdfast import CompactedError, EmptyKeyError, Unavailable
from etcdfast._sync import watch as watch_module
from etcdfast.testing import EtcdServer, FaultProxy, free_port
from etcdfast.types import EventType, Progress


@pytest.fixture(params=KINDS)
def driver(request, etcd_server, twin):
    """The sync or the async client (through a Driver), once per codec twin."""
    with Driver(request.param, etcd_server.endpoint, timeout=10) as d:
        yield d


def take(watch, n, timeout=10.0):
    """The next ``n`` items of a watch (fails instead of hanging)."""
    items = []
    deadline = time.monotonic() + timeout
    while len(items) < n:
        left = deadline - time.monotonic()
        assert left > 0, f"only {len(items)} of {n} items: {items}"
        items.extend(watch.get(timeout=left))
    return items


class Collector:
    """Iterates a watch on a thread of its own (the path where the consumer
    reads the stream itself), keeping the items and the error that ended it."""

    def __init__(self, watch):
        self.watch = watch
        self.items = []
        self.error = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        try:
            for item in self.watch:
                self.items.append(item)
        except BaseException as exc:  # noqa: B036 - kept for the test to check
            self.error = exc

    def wait_for(self, n, timeout=20.0):
        deadline = time.monotonic() + timeout
        while len(self.items) < n and self.error is None:
            assert time.monotonic() < deadline, f"only {len(self.items)} of {n} items"
            time.sleep(0.01)
        return self.items

    def finish(self, timeout=10.0):
        self.watch.cancel()
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the iterating consumer did not end"


def test_put_and_delete_events_on_a_key(driver, etcd_prefix):
    key = etcd_prefix + b"k"
    with driver.watch(key) as watch:
        r1 = driver.put(key, b"1").header.revision
        r2 = driver.put(key, b"2").header.revision
        r3 = driver.delete(key).header.revision
        driver.put(etcd_prefix + b"other", b"x")
        events = take(watch, 3)
    assert [(e.type, e.key, e.value, e.revision) for e in events] == [
        (EventType.PUT, key, b"1", r1),
        (EventType.PUT, key, b"2", r2),
        (EventType.DELETE, key, b"", r3),
    ]
    assert events[1].kv.version == 2 and events[1].is_put and events[2].is_delete
    assert watch.revision == r3 + 1


def test_prefix_range_and_from_key(driver, etcd_prefix):
    p = etcd_prefix
    with driver.watch(p + b"a/", prefix=True) as by_prefix, \
            driver.watch(p + b"b", range_end=p + b"d") as by_range, \
            driver.watch(p + b"c", from_key=True) as from_key:
        for name in (b"a/1", b"a/2", b"b", b"c", b"d", b"e"):
            driver.put(p + name, name)
        assert [e.key for e in take(by_prefix, 2)] == [p + b"a/1", p + b"a/2"]
        assert [e.key for e in take(by_range, 2)] == [p + b"b", p + b"c"]
        assert [e.key for e in take(from_key, 3)] == [p + b"c", p + b"d", p + b"e"]


def test_start_revision_replays_history_and_prev_kv(driver, etcd_prefix):
    key = etcd_prefix + b"h"
    first = driver.put(key, b"v1").header.revision
    driver.put(key, b"v2")
    driver.delete(key)
    with driver.watch(key, start_revision=first, prev_kv=True) as watch:
        events = take(watch, 3)
    assert [e.value for e in events] == [b"v1", b"v2", b""]
    assert [e.prev_kv and e.prev_kv.value for e in events] == [None, b"v1", b"v2"]


def test_filters(driver, etcd_prefix):
    key = etcd_prefix + b"f"
    with driver.watch(key, no_put=True) as deletes, driver.watch(key, no_delete=True) as puts:
        driver.put(key, b"1")
        driver.delete(key)
        driver.put(key, b"2")
        assert [e.type for e in take(deletes, 1)] == [EventType.DELETE]
        assert [e.value for e in take(puts, 2)] == [b"1", b"2"]


def test_batches_group_a_txn_into_one_response(driver, etcd_prefix):
    from etcdfast import Op

    with driver.watch(etcd_prefix, prefix=True) as watch:
        driver.txn(success=[Op.put(etcd_prefix + b"x", b"1"), Op.put(etcd_prefix + b"y", b"2")])
        batch = next(watch.batches(timeout=10))
    assert [e.key for e in batch.events] == [etcd_prefix + b"x", etcd_prefix + b"y"]
    assert len({e.revision for e in batch.events}) == 1


def test_cancel_ends_iteration(driver, etcd_prefix):
    watch = driver.watch(etcd_prefix + b"c")
    driver.put(etcd_prefix + b"c", b"1")
    got = []

    def consume():
        got.extend(watch)  # ends when cancelled

    thread = threading.Thread(target=consume)
    thread.start()
    time.sleep(0.5)
    watch.cancel()
    thread.join(5)
    assert not thread.is_alive()
    assert [e.value for e in got] == [b"1"]
    watch.cancel()  # idempotent


def test_get_times_out_when_nothing_comes_and_the_watch_goes_on(driver, etcd_prefix):
    with driver.watch(etcd_prefix + b"quiet") as watch:
        with pytest.raises(etcdfast.Timeout):
            watch.get(timeout=0.2)
        revision = driver.put(etcd_prefix + b"quiet", b"1").header.revision
        assert [e.revision for e in take(watch, 1)] == [revision]


def test_progress_notifications(driver, etcd_prefix):
    with driver.watch(etcd_prefix + b"p", progress_notify=True) as watch:
        revision = driver.put(etcd_prefix + b"unrelated", b"x").header.revision
        driver.request_progress()
        items = take(watch, 1)
    assert isinstance(items[0], Progress) and items[0].revision >= revision
    assert watch.progress_revision >= revision


def _metric(server: EtcdServer, name: str) -> float:
    body = urllib.request.urlopen(f"{server.client_url}/metrics", timeout=5).read().decode()
    return sum(float(line.split()[-1]) for line in body.splitlines() if line.startswith(name + " "))


@pytest.mark.parametrize("kind", KINDS)
def test_a_thousand_watches_share_one_stream(etcd_server, etcd_prefix, twin, kind):
    streams_before = _metric(etcd_server, "etcd_debugging_mvcc_watch_stream_total")
    with Driver(kind, etcd_server.endpoint, timeout=30) as client:
        watches = [client.watch(etcd_prefix + b"%04d" % i) for i in range(1000)]
        # Streams of earlier tests' clients may still be closing, so bound it:
        # 1,000 watchers exist on the server, and at most one more stream.
        assert _metric(etcd_server, "etcd_debugging_mvcc_watcher_total") >= 1000
        assert 1 <= _metric(etcd_server, "etcd_debugging_mvcc_watch_stream_total") <= streams_before + 1
        client.put(etcd_prefix + b"0999", b"last")
        client.put(etcd_prefix + b"0000", b"first")
        assert take(watches[999], 1)[0].value == b"last"
        assert take(watches[0], 1)[0].value == b"first"
        for watch in watches:
            watch.cancel()


def test_watch_on_empty_key_is_refused(driver):
    with pytest.raises(EmptyKeyError):
        driver.watch(b"")
    with pytest.raises(EmptyKeyError):
        driver.watch("")


def test_watch_on_a_compacted_revision_raises_with_the_compact_revision(driver, etcd_prefix):
    key = etcd_prefix + b"old"
    old = driver.put(key, b"1").header.revision
    latest = driver.put(key, b"2").header.revision
    driver.compact(latest)
    watch = driver.watch(key, start_revision=old)
    with pytest.raises(CompactedError) as info:
        take(watch, 1)
    assert info.value.compact_revision == latest
    assert watch.error is info.value


@pytest.mark.parametrize("kind", KINDS)
def test_watcher_on_a_dead_endpoint_raises(twin, kind):
    with Driver(kind, f"127.0.0.1:{free_port()}", timeout=5) as client:
        started = time.monotonic()
        with pytest.raises(Unavailable):
            client.watch("k")
        assert time.monotonic() - started < 5


def test_callback_form_and_a_callback_that_raises(driver, etcd_prefix):
    seen, errors = [], []
    ok = driver.add_watch_callback(etcd_prefix + b"cb", seen.append)

    def explode(event):
        raise ValueError("bad callback")

    bad = driver.add_watch_callback(etcd_prefix + b"cb", explode, on_error=errors.append)
    driver.put(etcd_prefix + b"cb", b"1")
    driver.put(etcd_prefix + b"cb", b"2")
    deadline = time.monotonic() + 10
    while (len(seen) < 2 or not errors) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [e.value for e in seen] == [b"1", b"2"]  # the other watch is unaffected
    assert isinstance(errors[0], ValueError) and isinstance(bad.error, ValueError)
    ok.cancel()


@pytest.mark.parametrize("kind", KINDS)
def test_close_leaves_no_threads(etcd_server, etcd_prefix, kind):
    # The workers differ by design: etcdfast-* threads (sync; the whole
    # process's, hence the comparison with before), tasks on the loop (async).
    with Driver(kind, etcd_server.endpoint, timeout=10) as client:
        before = client.workers()
        watch = client.watch(etcd_prefix + b"t")
        client.add_watch_callback(etcd_prefix + b"t2", lambda e: None)
        assert client.workers() - before, "no reader, no callback worker?"
        client.close()
        with pytest.raises(etcdfast.ClientClosedError):
            list(watch)
        time.sleep(0.3)
        assert client.workers() <= before


_WRITER = textwrap.dedent("""
    import sys, time, etcdfast
    endpoint, prefix, count = sys.argv[1], sys.argv[2].encode(), int(sys.argv[3])
    deadline = time.monotonic() + 90
    with etcdfast.Client(endpoint, timeout=2) as client:
        i = 0
        while i < count and time.monotonic() < deadline:
            try:
                client.put(prefix + b"%06d" % i, b"v%d" % i)
                i += 1
            except etcdfast.EtcdError:
                time.sleep(0.05)  # server down: retry (a retried put may land twice; fine)
    print(i)
""")


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("consume", ["get", "iterate"])
def test_watch_survives_kill_9_and_restart_without_loss_or_repeats(twin, consume, kind):
    count = 600
    # etcd 3.5.0-3.5.2 may lose acknowledged writes on kill -9 (etcd#13766),
    # which would look like lost events: use a binary without that bug.
    with EtcdServer(crash_safe_etcd_binary()) as server:
        with Driver(kind, server.endpoint, timeout=10) as client:
            prefix = b"/fault/"
            start = client.put(b"/fault-start", b"x").header.revision + 1
            watch = client.watch(prefix, prefix=True, start_revision=start)
            writer = subprocess.Popen(
                [sys.executable, "-c", _WRITER, server.endpoint, prefix.decode(), str(count)],
                stdout=subprocess.PIPE, text=True,
            )
            # "get" waits on the watch's queue; "iterate" (sync) reads the
            # stream itself while it waits, and hands the failure to the
            # background thread that reconnects.
            collector = Collector(watch) if consume == "iterate" else None
            seen = collector.items if collector else []

            def pull():
                if collector is None:
                    seen.extend(watch.get(timeout=20))
                else:
                    collector.wait_for(len(seen) + 1)
                    assert collector.error is None, collector.error

            try:
                while len(seen) < 150:
                    pull()
                server.kill()
                time.sleep(0.5)
                server.restart()
                assert writer.wait(timeout=120) == 0
                assert int(writer.stdout.read()) == count
                final = client.get(prefix, prefix=True, count_only=True).header.revision
                while not seen or seen[-1].revision < final:
                    pull()
            finally:
                if writer.poll() is None:
                    writer.kill()
                if collector is not None:
                    collector.finish()
            revisions = [e.revision for e in seen]
            assert revisions == sorted(set(revisions)), "an event was repeated or reordered"
            replay = client.watch(prefix, prefix=True, start_revision=start)
            expected = []
            while len(expected) < len(seen):
                expected.extend(replay.get(timeout=20))
            assert [(e.revision, e.key, e.value) for e in seen] == [
                (e.revision, e.key, e.value) for e in expected
            ]
            assert {e.key for e in seen} == {prefix + b"%06d" % i for i in range(count)}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("consume", ["get", "iterate"])
def test_compaction_while_disconnected_ends_the_watch_with_the_compact_revision(twin, consume, kind):
    # The watcher reaches etcd through a proxy that refuses it (RST) while
    # another client writes and compacts: the watch cannot come back before
    # the compaction, however long anything takes on a loaded machine.
    with EtcdServer() as server, FaultProxy(server.endpoint) as proxy:
        with Driver(kind, proxy.endpoint, timeout=10) as watcher_client:
            watch = watcher_client.watch("/c/", prefix=True)
            watcher_client.put("/c/1", "a")
            collector = Collector(watch) if consume == "iterate" else None
            first = collector.wait_for(1) if collector else take(watch, 1)
            assert first[0].value == b"a"
            proxy.reset()
            with etcdfast.Client(server.endpoint, timeout=10) as other:
                other.put("/c/2", "b")
                latest = other.put("/c/3", "c").header.revision
                other.compact(latest)
            proxy.pass_through()
            if collector is None:
                with pytest.raises(CompactedError) as info:
                    take(watch, 10, timeout=15)
                error = info.value
            else:
                collector.thread.join(15)
                assert not collector.thread.is_alive(), "the consumer stalled"
                error = collector.error
                assert isinstance(error, CompactedError) and len(collector.items) == 1
            assert error.compact_revision == latest


# -- consumers that read the stream themselves (leader/follower) ----------------
# The sync stream's read role: tests naming it (``_reader``, the dozing
# background thread, a signal in the reading consumer) are sync-only.


def test_an_iterating_consumer_reads_the_stream_itself(client, etcd_prefix):
    # Sync-only: the read role.
    watch = client.watch(etcd_prefix, prefix=True)
    collector = Collector(watch)
    try:
        client.put(etcd_prefix + b"1", b"1")
        collector.wait_for(1)
        stream = client._watch_stream
        deadline = time.monotonic() + 5
        # Nothing is queued for it: the consumer takes the read role and
        # waits in the gRPC call, not on a hand-off from the background thread.
        while stream._reader is not watch:
            assert time.monotonic() < deadline, f"read role held by {stream._reader!r}"
            time.sleep(0.01)
        revisions = [client.put(etcd_prefix + b"%d" % i, b"v").header.revision for i in range(2, 50)]
        assert [e.revision for e in collector.wait_for(49)[1:]] == revisions
    finally:
        collector.finish()
    assert collector.error is None


def test_a_timed_get_wakes_a_dozing_background_thread(client, etcd_prefix, monkeypatch):
    # Sync-only: the read role and the background thread's doze.
    # On a stream with one watch, the background thread checks the unused
    # read role only every _SOLO_IDLE_ROLE_S. A consumer that then waits in
    # get(timeout) never reads the stream itself, so it must wake that thread.
    # The doze is stretched to 60 s: only the wake-up can deliver within 10 s.
    monkeypatch.setattr(watch_module, "_SOLO_IDLE_ROLE_S", 60.0)
    watch = client.watch(etcd_prefix, prefix=True)
    stream = client._watch_stream
    iterated = []

    def iterate_two():
        for event in watch:
            iterated.append(event)
            if len(iterated) == 2:
                return  # stops iterating without cancelling: nobody reads now

    thread = threading.Thread(target=iterate_two, daemon=True)
    thread.start()
    client.put(etcd_prefix + b"1", b"1")
    deadline = time.monotonic() + 10
    while stream._reader is not watch:  # the consumer leads: it reads event 2 itself
        assert time.monotonic() < deadline, f"read role held by {stream._reader!r}"
        time.sleep(0.01)
    client.put(etcd_prefix + b"2", b"2")
    thread.join(10)
    assert [e.key for e in iterated] == [etcd_prefix + b"1", etcd_prefix + b"2"]
    while not (stream._background_dozing and stream._reader is None):
        assert time.monotonic() < deadline, "the background thread never dozed"
        time.sleep(0.01)
    revision = client.put(etcd_prefix + b"3", b"3").header.revision
    assert [e.revision for e in watch.get(timeout=10)] == [revision]
    watch.cancel()


def test_a_busy_consumer_does_not_hold_up_the_other_watches(driver, etcd_prefix):
    # Behaviour of both clients; the sync one's mechanism is the read role.
    release = threading.Event()
    busy_items = []

    def busy_consumer():
        for event in busy:
            busy_items.append(event)
            if len(busy_items) == 1:
                release.wait(30)  # user code that takes its time, while holding no role
            if len(busy_items) == 4:
                return

    busy = driver.watch(etcd_prefix + b"busy/", prefix=True)
    other = driver.watch(etcd_prefix + b"other/", prefix=True)
    thread = threading.Thread(target=busy_consumer, daemon=True)
    thread.start()
    try:
        driver.put(etcd_prefix + b"busy/1", b"1")
        deadline = time.monotonic() + 10
        while not busy_items:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        for i in range(3):
            driver.put(etcd_prefix + b"busy/%d" % (i + 2), b"x")
            driver.put(etcd_prefix + b"other/%d" % i, b"y")
        # The background thread takes the unused read role back: the other
        # watch sees its events while the busy consumer is still in user code.
        assert [e.key for e in take(other, 3, timeout=5)] == [
            etcd_prefix + b"other/%d" % i for i in range(3)
        ]
        assert len(busy_items) == 1
    finally:
        release.set()
        thread.join(10)
    assert [e.key for e in busy_items] == [etcd_prefix + b"busy/%d" % i for i in range(1, 5)]
    busy.cancel()
    other.cancel()


class _Interrupt(BaseException):
    """Stands for KeyboardInterrupt without disturbing pytest."""


def test_an_interrupted_consumer_leaves_the_stream_working(client, etcd_prefix):
    # Sync-only: a signal in the consumer holding the read role.
    import signal

    watch = client.watch(etcd_prefix, prefix=True)
    stream = client._watch_stream
    events = iter(watch)
    # Put while the consumer waits, so the background thread hands it the
    # read role with the event; its next wait is then in the gRPC call.
    writer = threading.Timer(0.2, client.put, (etcd_prefix + b"first", b"0"))
    writer.start()
    assert next(events).key == etcd_prefix + b"first"
    writer.join()
    leading = []

    def interrupt(signum, frame):
        leading.append(stream._reader is watch)
        raise _Interrupt()

    previous = signal.signal(signal.SIGALRM, interrupt)  # pytest runs tests on the main thread
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.3)
        with pytest.raises(_Interrupt):
            next(events)  # nothing to read
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert leading == [True], "the interrupt did not reach a consumer reading the stream"
    revision = client.put(etcd_prefix + b"after", b"1").header.revision
    events = iter(watch)
    assert next(events).revision == revision  # the stream and the role survived
    again = client.put(etcd_prefix + b"again", b"2").header.revision
    assert next(events).revision == again
    watch.cancel()


def test_close_ends_a_consumer_waiting_in_the_stream(driver, etcd_prefix):
    collector = Collector(driver.watch(etcd_prefix + b"closing"))
    driver.put(etcd_prefix + b"closing", b"1")  # the first item hands the consumer the role
    collector.wait_for(1)
    if driver.kind == "sync":  # it waits in the gRPC call itself (async: on its queue)
        deadline = time.monotonic() + 5
        while driver.client._watch_stream._reader is not collector.watch:
            assert time.monotonic() < deadline
            time.sleep(0.01)
    driver.close()
    collector.thread.join(10)
    assert not collector.thread.is_alive()
    assert isinstance(collector.error, etcdfast.ClientClosedError)


def test_many_iterating_consumers_each_get_exactly_their_events(driver, etcd_prefix):
    # Behaviour of both clients. On the sync one, consumers take the read role
    # from one another and from the background thread all the time here: a
    # lost wake-up shows as a stall, a misrouted response as a wrong or
    # missing event.
    collectors = [Collector(driver.watch(etcd_prefix + b"%d/" % n, prefix=True)) for n in range(8)]
    try:
        expected = {n: [] for n in range(8)}
        for i in range(400):
            n = i % 8
            key = etcd_prefix + b"%d/%04d" % (n, i)
            expected[n].append((key, driver.put(key, b"v").header.revision))
        for n, collector in enumerate(collectors):
            items = collector.wait_for(50)
            assert collector.error is None
            assert [(e.key, e.revision) for e in items] == expected[n]
    finally:
        for collector in collectors:
            collector.finish()
