"""Bulk loading and streaming reads with the asyncio client, once per codec twin.

The planning and book-keeping are shared with the sync client (and tested in
test_bulk.py); these tests cover what the asyncio driver does itself: async
input, tasks in flight, failures while awaiting, and the async iterators.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import threading

import pytest
from bulk_helpers import crash_safe_etcd, revision_runs
from conftest import run

import etcdfast
from etcdfast.errors import (
    BulkWriteError,
    ClientClosedError,
    CompactedError,
    EmptyKeyError,
    InvalidArgumentError,
    LeaseNotFoundError,
    RequestTooLargeError,
    Unavailable,
)
from etcdfast.testing import EtcdServer
from etcdfast.types import BulkResult

BULK_METHODS = ("put_many", "iter_range", "iter_range_pages", "get_all", "count", "delete_many")


def test_async_bulk_methods_mirror_sync_ones():
    for name in BULK_METHODS:
        sync_sig = inspect.signature(getattr(etcdfast.Client, name))
        async_sig = inspect.signature(getattr(etcdfast.AsyncClient, name))
        assert list(sync_sig.parameters) == list(async_sig.parameters), name
        for param in sync_sig.parameters.values():
            assert async_sig.parameters[param.name].default == param.default, (name, param)
    for name in ("put_many", "get_all", "count", "delete_many"):
        assert inspect.iscoroutinefunction(getattr(etcdfast.AsyncClient, name)), name
    for name in ("iter_range", "iter_range_pages"):  # async iterators, not coroutines
        assert not inspect.iscoroutinefunction(getattr(etcdfast.AsyncClient, name)), name


def test_async_put_many_round_trip(etcd_server, etcd_prefix, twin):
    n = 20_000

    async def source():
        for i in range(n):
            yield etcd_prefix + b"%06d" % i, b"value-%d" % i

    async def scenario():
        async with etcdfast.AsyncClient(etcd_server.endpoint, timeout=10) as client:
            seen = []
            result = await client.put_many(source(), concurrency=4, progress=seen.append)
            assert isinstance(result, BulkResult)
            assert result.keys == n and result.batches == -(-n // 128) == len(seen)
            assert seen == sorted(seen) and seen[-1] == n
            assert await client.count(etcd_prefix, prefix=True) == n
            kvs = []
            iterator = client.iter_range(etcd_prefix, prefix=True, page_size=3000)
            async for kv in iterator:
                kvs.append(kv)
            assert iterator.revision >= result.last_revision
            assert [kv.key for kv in kvs] == [etcd_prefix + b"%06d" % i for i in range(n)]
            assert all(kv.value == b"value-%d" % i and kv.version == 1 for i, kv in enumerate(kvs))
            runs = revision_runs(kvs)
            assert len(runs) == len({kv.mod_revision for kv in kvs}) == result.batches
            assert min(kv.mod_revision for kv in kvs) == result.first_revision
            assert max(kv.mod_revision for kv in kvs) == result.last_revision
            assert await client.delete_many(etcd_prefix, prefix=True) == n

    run(scenario())


def test_async_put_many_sync_input_and_duplicates(etcd_server, etcd_prefix, twin):
    items = [(etcd_prefix + b"%02d" % (i % 13), "%d" % i) for i in range(500)]

    async def scenario():
        async with etcdfast.AsyncClient(etcd_server.endpoint, timeout=10) as client:
            result = await client.put_many(iter(items), concurrency=8, batch_ops=50)
            assert result.keys == 500 and result.batches == -(-500 // 13)
            got = await client.get_all(etcd_prefix, prefix=True, page_size=4)
            assert {kv.key: kv.value.decode() for kv in got} == dict(items)
            assert {kv.version for kv in got} <= {38, 39}
            empty = await client.put_many([])
            assert (empty.keys, empty.batches) == (0, 0)

    run(scenario())


def test_async_put_many_failures(etcd_server, etcd_prefix, twin):
    key = etcd_prefix + b"%04d"

    class Broken(Exception):
        pass

    async def broken_source():
        for i in range(150):
            yield key % i, b"v"
        raise Broken("stream cut")

    async def scenario():
        async with etcdfast.AsyncClient(etcd_server.endpoint, timeout=10) as client:
            items = [(key % i, b"v") for i in range(300)] + [(key % 300, b"x" * 5000)]
            with pytest.raises(BulkWriteError) as info:
                await client.put_many(items + [(key % 301, b"v")], max_batch_bytes=4096)
            error = info.value
            assert isinstance(error.cause, RequestTooLargeError) and "item 300" in str(error.cause)
            assert error.committed == 300 and error.uncertain == [] == error.committed_after
            assert await client.count(etcd_prefix, prefix=True) == 300
            await client.delete_many(etcd_prefix, prefix=True)

            with pytest.raises(BulkWriteError) as info:
                await client.put_many(broken_source(), batch_ops=64)
            assert isinstance(info.value.cause, Broken) and info.value.committed == 150
            await client.delete_many(etcd_prefix, prefix=True)

            with pytest.raises(BulkWriteError) as info:
                await client.put_many([(key % 0, b"v"), (b"", b"v")])
            assert isinstance(info.value.cause, EmptyKeyError) and info.value.committed == 1

            with pytest.raises(BulkWriteError) as info:
                await client.put_many(((key % i, b"v") for i in range(1000)),
                                      lease=0x7FFF_FFFF_FFFF, concurrency=4)
            error = info.value
            assert isinstance(error.cause, LeaseNotFoundError)
            assert error.committed == 0 and error.uncertain == [] == error.committed_after
            assert await client.count(key % 1) == 0

            for options in ({"concurrency": 0}, {"batch_ops": -3}):
                with pytest.raises(InvalidArgumentError):
                    await client.put_many([(key % 0, b"v")], **options)

        closed = etcdfast.AsyncClient(etcd_server.endpoint)
        await closed.close()
        with pytest.raises(ClientClosedError):
            await closed.put_many([(b"k", b"v")])

    run(scenario())


def test_async_batch_refused_midway(etcd_server, etcd_prefix, twin):
    key = etcd_prefix + b"%04d"
    big = b"x" * 600_000
    items = [(key % i, big if 128 <= i < 131 else b"v") for i in range(512)]

    async def scenario():
        async with etcdfast.AsyncClient(etcd_server.endpoint, timeout=10) as client:
            with pytest.raises(BulkWriteError) as info:
                await client.put_many(items, max_batch_bytes=1_900_000, concurrency=4)
            error = info.value
            assert isinstance(error.cause, RequestTooLargeError)
            assert (error.committed, error.uncertain, error.committed_after) == (128, [], [(256, 512)])
            assert await client.count(etcd_prefix, prefix=True) == 128 + 256

    run(scenario())


def test_async_kill_server_midway_then_resume(twin, tmp_path):
    n = 20_000
    prefix = b"/resume-async/"
    killed = threading.Event()

    def items(start=0):
        for i in range(start, n):
            yield prefix + b"%06d" % i, b"final-%d" % i

    async def scenario(server):
        loop = asyncio.get_running_loop()
        crash = []

        def progress(committed):
            # kill -9 from a worker thread while Txn tasks are in flight.
            if committed >= 5000 and not crash:
                crash.append(loop.run_in_executor(None, lambda: (server.kill(), killed.set())))

        async def source():
            for i, item in enumerate(items()):
                if i == 12_000 and not killed.is_set():
                    progress(5000)
                    await crash[0]
                yield item

        async with etcdfast.AsyncClient(server.endpoint, timeout=5) as client:
            with pytest.raises(BulkWriteError) as info:
                await client.put_many(source(), batch_ops=64, concurrency=4, progress=progress)
        await crash[0]
        error = info.value
        # The earliest failure: a Txn the crash cut off (outcome unknown) or one
        # sent after it (refused, never sent); either way the resume point holds.
        assert isinstance(error.cause, Unavailable)
        assert error.committed <= 12_000
        server.restart()
        async with etcdfast.AsyncClient(server.endpoint, timeout=10) as client:
            resumed = await client.put_many(items(error.committed))
            assert resumed.keys == n - error.committed
            return error, await client.get_all(prefix, prefix=True)

    with EtcdServer(crash_safe_etcd(), log_path=tmp_path / "etcd.log") as server:
        error, kvs = run(scenario(server))
    assert [(kv.key, kv.value) for kv in kvs] == list(items())
    maybe_twice = {i for a, b in error.uncertain + error.committed_after for i in range(a, b)}
    assert all(kv.version == 1 or (i in maybe_twice and kv.version == 2) for i, kv in enumerate(kvs))


def test_async_iter_range(etcd_server, etcd_prefix, twin):
    keys = [etcd_prefix + b"%03d" % i for i in range(30)]

    async def scenario():
        async with etcdfast.AsyncClient(etcd_server.endpoint, timeout=10) as client:
            await client.put_many((k, b"old") for k in keys)
            pages = client.iter_range_pages(etcd_prefix, prefix=True, page_size=7)
            assert pages.revision == 0
            first = await pages.__anext__()
            pinned = pages.revision
            await client.put_many((k, b"new") for k in keys)
            await client.put(etcd_prefix + b"999", b"added")
            rest = [page async for page in pages]
            assert [len(p) for p in [first] + rest] == [7, 7, 7, 7, 2]
            seen = first + [kv for page in rest for kv in page]
            assert [kv.key for kv in seen] == keys
            assert all(kv.value == b"old" and kv.mod_revision <= pinned for kv in seen)

            exact = [len(p) async for p in client.iter_range_pages(keys[0], range_end=keys[10],
                                                                    page_size=5)]
            assert exact == [5, 5]
            assert [kv async for kv in client.iter_range(etcd_prefix + b"none", prefix=True)] == []
            tail = []
            async for kv in client.iter_range(keys[28], from_key=True, page_size=1):
                tail.append(kv.key)
                if len(tail) == 3:
                    break
            assert tail == keys[28:] + [etcd_prefix + b"999"]
            only = await client.get_all(keys[3], keys_only=True)
            assert [(kv.key, kv.value) for kv in only] == [(keys[3], b"")]
            old = await client.get_all(etcd_prefix, prefix=True, revision=pinned, page_size=9)
            assert [kv.value for kv in old] == [b"old"] * 30
            with pytest.raises(InvalidArgumentError):
                client.iter_range(etcd_prefix, prefix=True, page_size=0)

            assert await client.count(etcd_prefix, prefix=True) == 31
            assert await client.count(etcd_prefix, prefix=True, revision=pinned) == 30
            assert await client.count(keys[0], range_end=keys[5]) == 5
            assert await client.delete_many(keys[0], range_end=keys[5]) == 5
            assert await client.delete_many(keys[5]) == 1
            assert await client.delete_many(etcd_prefix, prefix=True) == 25

    run(scenario())


def test_async_iter_range_compacted(etcd_server, etcd_prefix, twin):
    async def scenario():
        async with etcdfast.AsyncClient(etcd_server.endpoint, timeout=10) as client:
            await client.put_many((etcd_prefix + b"%d" % i, b"v") for i in range(6))
            iterator = client.iter_range(etcd_prefix, prefix=True, page_size=2)
            got = [await iterator.__anext__() for _ in range(2)]
            pinned = iterator.revision
            now = (await client.put(etcd_prefix + b"x", b"x")).header.revision
            await client.compact(now)
            with pytest.raises(CompactedError) as info:
                got.extend([kv async for kv in iterator])
            assert len(got) == 2 and iterator.revision == pinned
            assert info.value.compact_revision is not None and info.value.compact_revision > pinned

    run(scenario())


def test_async_cancel_stops_the_load(etcd_server, etcd_prefix, twin):
    # Cancelling put_many cancels its in-flight Txns and lets CancelledError through.
    async def scenario():
        async with etcdfast.AsyncClient(etcd_server.endpoint, timeout=10) as client:
            started = asyncio.Event()

            async def source():
                for i in itertools.count():
                    if i == 1000:
                        started.set()
                    yield etcd_prefix + b"%07d" % i, b"v"

            task = asyncio.ensure_future(client.put_many(source(), concurrency=4))
            await asyncio.wait_for(started.wait(), 10)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert await client.count(etcd_prefix, prefix=True) >= 0  # the client still works

    run(scenario())
