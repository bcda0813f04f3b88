"""Mirrors (``client.mirror(prefix)``, Go's ``mirror.Syncer``) between two real etcd servers.

Both clients (the async one through ``client_drivers.Driver``, its
destination client on the driver's loop). The large test copies a
100 000-key prefix while a writer keeps changing it and the source server is
restarted (gracefully: etcd 3.5.1 can lose acknowledged writes on kill -9)
mid-copy; the destination must end up equal to the source, renamed, with
every change applied exactly once -- told by the keys' versions: a change
applied twice or never shows as a version off by one.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

import pytest
from client_drivers import KINDS, Driver

import etcdfast
from etcdfast import InvalidArgumentError
from etcdfast.testing import EtcdServer

BASE_KEYS = 100_000
#: The writer's bounds: changes made, and seconds.
WRITES = 1200
WRITER_S = 60.0
WAIT_S = 60.0
SOURCE = b"/mirror-src/"


@pytest.fixture(scope="module")
def servers() -> Iterator[Tuple[EtcdServer, EtcdServer]]:
    with EtcdServer(name="source") as source, EtcdServer(name="dest") as dest:
        with etcdfast.Client(source.endpoint, timeout=30) as loader:
            loader.put_many(((SOURCE + b"base/%06d" % i, b"v%d" % i) for i in range(BASE_KEYS)))
        yield source, dest


class Copy:
    """``syncer.copy_to(dest, ...)`` running on a thread of its own until :meth:`stop`,
    for either client: the async one's destination client and stop event live on
    the driver's loop."""

    def __init__(self, driver: Driver, dest_endpoint: str) -> None:
        self.driver = driver
        self.dest: Any = driver.call(
            etcdfast.Client if driver.loop is None else etcdfast.AsyncClient, dest_endpoint, timeout=30)
        self._stop: Any = threading.Event() if driver.loop is None else driver.call(asyncio.Event)
        self.result: Optional[int] = None
        self.error: Optional[BaseException] = None
        self._thread: Optional[threading.Thread] = None

    def start(self, syncer: Any, **options: Any) -> "Copy":
        def run() -> None:
            try:
                self.result = self.driver.run(syncer.copy_to(self.dest, stop=self._stop, **options))
            except BaseException as exc:  # reported by stop()
                self.error = exc

        self._thread = threading.Thread(target=run, name="test-mirror-copy", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> int:
        if self.driver.loop is None:
            self._stop.set()
        else:
            self.driver.loop.call_soon_threadsafe(self._stop.set)
        assert self._thread is not None
        self._thread.join(WAIT_S)
        assert not self._thread.is_alive(), "copy_to did not stop"
        if self.error is not None:
            raise self.error
        assert self.result is not None
        return self.result

    def close(self) -> None:
        self.driver.call(self.dest.close)


def wait_until(condition: Callable[[], bool], what: str, wait: float = WAIT_S) -> None:
    deadline = time.monotonic() + wait
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not within {wait} s"
        time.sleep(0.02)


def renamed(kvs: List[Any], source: bytes, dest: bytes) -> Dict[bytes, Any]:
    return {dest + kv.key[len(source):]: kv for kv in kvs}


@pytest.mark.parametrize("kind", KINDS)
def test_a_large_prefix_mirrored_while_written_and_the_source_restarted(kind, servers):
    source, dest = servers
    target = b"/mirror-dest/%s/" % kind.encode()
    mine = SOURCE + b"w/%s/" % kind.encode()  # this run's writes: no key of them is in the base
    progress: List[Tuple[int, int]] = []
    committed: List[int] = []
    writer_errors: List[BaseException] = []
    with Driver(kind, source.endpoint, timeout=30) as driver, \
            etcdfast.Client(source.endpoint, timeout=5) as writer_client:
        copy = Copy(driver, dest.endpoint)
        try:
            copy.start(driver.mirror(SOURCE), dest_prefix=target, max_txn_ops=16,
                       progress=lambda copied, revision: progress.append((copied, revision)))

            second_half = threading.Event()

            def write() -> None:
                # Puts (each key several times, a txn now and then) and deletes of
                # base keys: half while the base is copied, half while the updates
                # are and the source restarts; a change that fails is tried again.
                deadline = time.monotonic() + WRITER_S
                offset = 0 if kind == "sync" else BASE_KEYS // 2
                n = 0
                while n < WRITES and time.monotonic() < deadline:
                    if n == WRITES // 2:
                        second_half.wait(WAIT_S)
                    try:
                        if n % 10 == 9:
                            header = writer_client.delete(SOURCE + b"base/%06d" % (offset + n)).header
                        elif n % 10 == 5:
                            header = writer_client.txn(success=[  # one revision, several events
                                etcdfast.Op.put(mine + b"t%d" % n, b"a"),
                                etcdfast.Op.put(mine + b"%03d" % (n % 37), b"%d" % n)]).header
                        else:
                            header = writer_client.put(mine + b"%03d" % (n % 37), b"%d" % n).header
                    except (etcdfast.Unavailable, etcdfast.Timeout) as exc:  # the source restarts: again
                        writer_errors.append(exc)
                        time.sleep(0.05)
                        continue
                    committed.append(header.revision)
                    n += 1

            # The base revision is fixed by the first page: write from then on.
            wait_until(lambda: bool(progress), "the first page of the base")
            writer = threading.Thread(target=write, name="test-mirror-writer", daemon=True)
            writer.start()
            # The base is done once an update was copied (the first half is after it).
            wait_until(lambda: progress[-1][1] > 0, "the base")
            second_half.set()
            wait_until(lambda: len(committed) >= WRITES // 2 + 50 or not writer.is_alive(), "more writes")
            before_restart = len(committed)
            source.stop()
            source.restart()
            writer.join(WRITER_S + 10)
            assert not writer.is_alive()
            assert len(committed) == WRITES, f"the writer made {len(committed)} changes in {WRITER_S} s"
            assert before_restart < WRITES  # the writer went on after the restart...
            last = max(committed)  # ...and the copy must get there
            wait_until(lambda: bool(progress) and progress[-1][1] >= last, "the copy to catch up")
            resume_from = copy.stop()
        finally:
            copy.close()
        assert resume_from >= last
        base_done = [i for i, (_, revision) in enumerate(progress) if revision][0]
        assert progress[base_done - 1][0] >= BASE_KEYS // 2  # the base went first, in pages
        updates = [revision for _, revision in progress[base_done:]]
        assert updates == sorted(set(updates)), "a revision reported twice, or out of order"
        with etcdfast.Client(dest.endpoint, timeout=30) as check:
            copied = {kv.key: kv for kv in check.get_all(target, prefix=True)}
        original = renamed(driver.get_all(SOURCE, prefix=True), SOURCE, target)
    assert copied.keys() == original.keys()
    wrong = [key for key, kv in original.items() if copied[key].value != kv.value]
    assert not wrong, wrong[:5]
    # Versions: a base key untouched since is put once (put_many); each key
    # this run wrote was created after the base, so it got each change once.
    for key, kv in original.items():
        if kv.key.startswith(mine):
            assert copied[key].version == kv.version, (key, copied[key], kv)
        elif kv.key.startswith(SOURCE + b"base/"):
            assert copied[key].version == 1, (key, copied[key])
    deleted = [SOURCE + b"base/%06d" % i for i in range(BASE_KEYS) if target + b"base/%06d" % i not in copied]
    assert len(deleted) >= WRITES // 10


@pytest.mark.parametrize("kind", KINDS)
def test_a_resumed_syncer_copies_only_what_came_after(kind, servers, etcd_prefix):
    source, dest = servers
    prefix = etcd_prefix + b"src/"
    with Driver(kind, source.endpoint, timeout=10) as driver:
        for i in range(5):
            driver.put(prefix + b"k%d" % i, b"base")
        first = Copy(driver, dest.endpoint)
        try:
            seen: List[int] = []
            first.start(driver.mirror(prefix), dest_prefix=etcd_prefix + b"full/",
                        progress=lambda copied, revision: seen.append(revision))
            wait_until(lambda: bool(seen), "the base")
            before = driver.put(prefix + b"k0", b"update").header.revision
            wait_until(lambda: seen[-1] >= before, "the update")
            stopped_at = first.stop()
        finally:
            first.close()
        assert stopped_at == before
        # Changes while no mirror runs...
        driver.put(prefix + b"k1", b"later")
        driver.delete(prefix + b"k2")
        last = driver.put(prefix + b"new", b"later").header.revision
        # ...are all a syncer resumed from the stopped revision copies.
        resumed = driver.mirror(prefix, revision=stopped_at)
        assert resumed.revision == stopped_at
        for dest_prefix in (etcd_prefix + b"full/", etcd_prefix + b"after/"):
            seen.clear()
            copy = Copy(driver, dest.endpoint).start(driver.mirror(prefix, revision=stopped_at),
                                                     dest_prefix=dest_prefix,
                                                     progress=lambda c, revision: seen.append(revision))
            try:
                wait_until(lambda: bool(seen) and seen[-1] >= last, "the changes after the stop")
                assert copy.stop() == last
            finally:
                copy.close()
        with etcdfast.Client(dest.endpoint, timeout=10) as check:
            after = {kv.key[len(etcd_prefix + b"after/"):]: kv.value
                     for kv in check.get_all(etcd_prefix + b"after/", prefix=True)}
            full = {kv.key[len(etcd_prefix + b"full/"):]: kv.value
                    for kv in check.get_all(etcd_prefix + b"full/", prefix=True)}
        assert after == {b"k1": b"later", b"new": b"later"}  # nothing from before the stop
        assert full == {kv.key[len(prefix):]: kv.value for kv in driver.get_all(prefix, prefix=True)}
        assert full == {b"k0": b"update", b"k1": b"later", b"k3": b"base", b"k4": b"base", b"new": b"later"}


@pytest.mark.parametrize("kind", KINDS)
def test_base_then_updates_by_hand(kind, servers, etcd_prefix):
    source, _ = servers
    with Driver(kind, source.endpoint, timeout=10) as driver:
        for i in range(7):
            driver.put(etcd_prefix + b"%d" % i, b"v")
        syncer = driver.mirror(etcd_prefix)
        with pytest.raises(InvalidArgumentError):
            driver.run(syncer.updates())  # no base read yet: no revision to start from
        pages = driver.run(_pages(driver, syncer, page_size=3))
        assert [len(p) for p in pages] == [3, 3, 1]
        at = syncer.revision
        assert at > 0 and all(kv.mod_revision <= at for p in pages for kv in p)
        written = driver.put(etcd_prefix + b"9", b"after").header.revision
        with driver.run(syncer.updates()) as watch:
            events = watch.get(timeout=10)
        assert [(e.kv.key, e.kv.mod_revision) for e in events] == [(etcd_prefix + b"9", written)]


async def _apages(syncer: Any, page_size: int) -> List[Any]:
    return [page async for page in syncer.base(page_size=page_size)]


def _pages(driver: Driver, syncer: Any, page_size: int) -> Any:
    """The base's pages (a coroutine for the async client, a list for the sync one)."""
    if driver.loop is not None:
        return _apages(syncer, page_size)
    return list(syncer.base(page_size=page_size))
