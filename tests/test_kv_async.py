"""The asyncio client against a real etcd, once per codec twin.

The async driver shares every request builder with the sync one, so these
tests focus on what the driver itself does: awaiting, concurrency, errors,
deadlines and closing.
"""

from __future__ import annotations

import asyncio
import inspect

import pytest
from conftest import run

import etcdfast
from etcdfast import Compare, Op
from etcdfast.errors import (
    ClientClosedError,
    CompactedError,
    EmptyKeyError,
    RequestTooLargeError,
    TooManyOpsError,
    Unavailable,
)


def test_async_client_mirrors_sync_client():
    for name in ("get", "get_value", "put", "delete", "compact", "txn"):
        sync_sig = inspect.signature(getattr(etcdfast.Client, name))
        async_sig = inspect.signature(getattr(etcdfast.AsyncClient, name))
        assert list(sync_sig.parameters) == list(async_sig.parameters), name
        assert inspect.iscoroutinefunction(getattr(etcdfast.AsyncClient, name)), name


def test_async_kv(etcd_server, etcd_prefix, twin):
    async def scenario():
        async with etcdfast.AsyncClient(etcd_server.endpoint, timeout=10) as client:
            put = await client.put(etcd_prefix + b"a", b"1")
            assert put.header.revision == client.last_revision
            assert await client.get_value(etcd_prefix + b"a") == b"1"
            await asyncio.gather(*(client.put(etcd_prefix + b"k%02d" % i, b"v") for i in range(40)))
            listing = await client.get(etcd_prefix + b"k", prefix=True, keys_only=True)
            assert len(listing.kvs) == 40
            txn = await client.txn(
                compare=[Compare.value(etcd_prefix + b"a") == b"1"],
                success=[Op.put(etcd_prefix + b"a", b"2"), Op.get(etcd_prefix + b"a")],
            )
            assert txn.succeeded and txn.responses[1].kvs[0].value == b"2"
            deleted = await client.delete(etcd_prefix, prefix=True, prev_kv=True)
            assert deleted.deleted == 41 and len(deleted.prev_kvs) == 41

    run(scenario())


def test_async_errors(etcd_server, etcd_prefix, twin):
    async def scenario():
        client = etcdfast.AsyncClient(etcd_server.endpoint, timeout=10)
        with pytest.raises(EmptyKeyError):
            await client.get("")
        with pytest.raises(TooManyOpsError):
            await client.txn(success=[Op.put(etcd_prefix + b"%d" % i, b"v") for i in range(129)])
        with pytest.raises(RequestTooLargeError):
            await client.put(etcd_prefix + b"big", b"x" * 1_600_000)
        old = (await client.put(etcd_prefix + b"c", b"1")).header.revision
        now = (await client.put(etcd_prefix + b"c", b"2")).header.revision
        await client.compact(now)
        with pytest.raises(CompactedError) as info:
            await client.get(etcd_prefix + b"c", revision=old)
        assert info.value.compact_revision is not None and info.value.compact_revision >= now
        await client.close()
        await client.close()  # idempotent
        with pytest.raises(ClientClosedError):
            await client.get(etcd_prefix + b"c")

    run(scenario())


def test_async_dead_endpoint(twin):
    from etcdfast.testing import free_port

    endpoint = f"127.0.0.1:{free_port()}"

    async def scenario():
        async with etcdfast.AsyncClient(endpoint, timeout=5) as client:
            with pytest.raises(Unavailable) as info:
                await client.get("k")
            assert endpoint in str(info.value)

    run(scenario())
