"""What only the asyncio client's bulk methods have: async iterable input,
``async for`` over the range readers, and cancelling a load's task.

Every bulk behaviour runs for both clients in test_bulk.py (through
``client_drivers.Driver``); these tests use the async API directly.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools

import pytest
from bulk_helpers import revision_runs
from conftest import run

import etcdfast
from etcdfast.errors import BulkWriteError
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
    # An async generator as input, read back with async for.
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
            pages = [len(page) async for page in client.iter_range_pages(etcd_prefix, prefix=True,
                                                                          page_size=7000)]
            assert pages == [7000, 7000, 6000]
            assert await client.delete_many(etcd_prefix, prefix=True) == n

    run(scenario())


def test_async_input_raising(etcd_server, etcd_prefix, twin):
    key = etcd_prefix + b"%04d"

    class Broken(Exception):
        pass

    async def broken_source():
        for i in range(150):
            yield key % i, b"v"
        raise Broken("stream cut")

    async def scenario():
        async with etcdfast.AsyncClient(etcd_server.endpoint, timeout=10) as client:
            with pytest.raises(BulkWriteError) as info:
                await client.put_many(broken_source(), batch_ops=64)
            assert isinstance(info.value.cause, Broken) and info.value.committed == 150
            assert "stream cut" in str(info.value)
            assert await client.count(etcd_prefix, prefix=True) == 150

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
