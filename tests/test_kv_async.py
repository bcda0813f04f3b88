"""What only the asyncio client has: coroutine methods, ``async with``, many
calls in flight on one loop.

Every KV behaviour runs for both clients in test_kv.py (through
``client_drivers.Driver``); these tests use the async API directly.
"""

from __future__ import annotations

import asyncio
import inspect

from conftest import run

import etcdfast
from etcdfast import Compare, Op


def test_async_client_mirrors_sync_client():
    for name in ("get", "get_value", "put", "delete", "compact", "txn"):
        sync_sig = inspect.signature(getattr(etcdfast.Client, name))
        async_sig = inspect.signature(getattr(etcdfast.AsyncClient, name))
        assert list(sync_sig.parameters) == list(async_sig.parameters), name
        assert inspect.iscoroutinefunction(getattr(etcdfast.AsyncClient, name)), name


def test_async_calls_in_flight_together_on_one_loop(etcd_server, etcd_prefix, twin):
    # asyncio.gather: 40 calls in flight at once on the client's one channel.
    async def scenario():
        async with etcdfast.AsyncClient(etcd_server.endpoint, timeout=10) as client:
            puts = await asyncio.gather(*(client.put(etcd_prefix + b"k%02d" % i, b"v") for i in range(40)))
            assert len({put.header.revision for put in puts}) == 40
            assert client.last_revision == max(put.header.revision for put in puts)
            listing = await client.get(etcd_prefix + b"k", prefix=True, keys_only=True)
            assert len(listing.kvs) == 40
            txn, value = await asyncio.gather(
                client.txn(compare=[Compare.version(etcd_prefix + b"k00") == 1],
                           success=[Op.put(etcd_prefix + b"a", b"2"), Op.get(etcd_prefix + b"a")]),
                client.get_value(etcd_prefix + b"k39"),
            )
            assert txn.succeeded and txn.responses[1].kvs[0].value == b"2" and value == b"v"
            deleted = await client.delete(etcd_prefix, prefix=True, prev_kv=True)
            assert deleted.deleted == 41 and len(deleted.prev_kvs) == 41
        assert client.closed

    run(scenario())
