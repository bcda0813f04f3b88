"""Watches and leases through the AsyncClient (same behaviour as the sync client)."""

from __future__ import annotations

import asyncio
import time

import pytest
from conftest import run

import etcdfast
from etcdfast import CompactedError, EmptyKeyError, LeaseNotFoundError, Unavailable
from etcdfast.testing import EtcdServer, free_port
from etcdfast.types import EventType, Progress


def _our_tasks():
    # grpc.aio keeps a few internal tasks of its own for a moment; ours are named.
    return [t for t in asyncio.all_tasks() if t.get_name().startswith("etcdfast-")]


async def take(watch, n, timeout=10.0):
    items = []
    deadline = time.monotonic() + timeout
    while len(items) < n:
        left = deadline - time.monotonic()
        assert left > 0, f"only {len(items)} of {n} items"
        items.extend(await watch.get(timeout=left))
    return items


def test_async_watch_events_history_filters_progress(etcd_server, etcd_prefix, twin):
    async def main():
        async with etcdfast.AsyncClient(etcd_server.endpoint, timeout=10) as client:
            key = etcd_prefix + b"k"
            first = (await client.put(key, b"1")).header.revision
            async with await client.watch(key, start_revision=first, prev_kv=True) as watch:
                await client.delete(key)
                events = await take(watch, 2)
            assert [(e.type, e.value) for e in events] == [(EventType.PUT, b"1"), (EventType.DELETE, b"")]
            assert events[1].prev_kv.value == b"1"

            watch = await client.watch(etcd_prefix, prefix=True, no_delete=True, progress_notify=True)
            await client.put(etcd_prefix + b"a", b"x")
            await client.delete(etcd_prefix + b"a")
            await client.put(etcd_prefix + b"b", b"y")
            got = []
            async for item in watch:
                got.append(item)
                if len(got) == 2:
                    break
            assert [e.key for e in got] == [etcd_prefix + b"a", etcd_prefix + b"b"]
            client.request_progress()
            assert isinstance((await take(watch, 1))[0], Progress)
            await watch.cancel()
            assert [item async for item in watch] == []

            with pytest.raises(EmptyKeyError):
                await client.watch(b"")

    run(main())


def test_async_many_watches_and_callbacks(etcd_server, etcd_prefix, twin):
    async def main():
        async with etcdfast.AsyncClient(etcd_server.endpoint, timeout=30) as client:
            watches = await asyncio.gather(*(client.watch(etcd_prefix + b"%03d" % i) for i in range(200)))
            await client.put(etcd_prefix + b"199", b"z")
            assert (await take(watches[199], 1))[0].value == b"z"
            seen, errors = [], []

            async def async_callback(event):
                seen.append(event)

            def broken(event):
                raise RuntimeError("boom")

            await client.add_watch_callback(etcd_prefix + b"cb", async_callback)
            bad = await client.add_watch_callback(etcd_prefix + b"cb", broken, on_error=errors.append)
            await client.put(etcd_prefix + b"cb", b"1")
            for _ in range(100):
                if seen and errors:
                    break
                await asyncio.sleep(0.05)
            assert [e.value for e in seen] == [b"1"]
            assert isinstance(bad.error, RuntimeError) and errors == [bad.error]
        # close() cancelled the callback tasks and the reader: nothing left running
        assert _our_tasks() == []

    run(main())


def test_async_compacted_and_dead_endpoint(etcd_server, etcd_prefix, twin):
    async def main():
        async with etcdfast.AsyncClient(etcd_server.endpoint, timeout=10) as client:
            key = etcd_prefix + b"old"
            old = (await client.put(key, b"1")).header.revision
            latest = (await client.put(key, b"2")).header.revision
            await client.compact(latest)
            watch = await client.watch(key, start_revision=old)
            with pytest.raises(CompactedError) as info:
                await take(watch, 1)
            assert info.value.compact_revision == latest
        async with etcdfast.AsyncClient(f"127.0.0.1:{free_port()}", timeout=5) as dead:
            with pytest.raises(Unavailable):
                await dead.watch("k")

    run(main())


def test_async_watch_resumes_after_restart(twin):
    async def main(server):
        async with etcdfast.AsyncClient(server.endpoint, timeout=10) as client:
            watch = await client.watch("/r/", prefix=True)
            revisions = [(await client.put("/r/%d" % i, "v")).header.revision for i in range(5)]
            seen = await take(watch, 5)
            server.kill()
            await asyncio.sleep(0.3)
            server.restart()
            for i in range(5, 10):
                for _ in range(100):
                    try:
                        revisions.append((await client.put("/r/%d" % i, "v")).header.revision)
                        break
                    except Unavailable:
                        await asyncio.sleep(0.1)
            seen += await take(watch, 5, timeout=20)
            assert [e.revision for e in seen] == revisions

    with EtcdServer() as server:
        run(main(server))


def test_async_lease(etcd_server, etcd_prefix, twin):
    async def main():
        async with etcdfast.AsyncClient(etcd_server.endpoint, timeout=10) as client:
            async with client.lease(2) as lease:
                await client.put(etcd_prefix + b"l", b"v", lease=lease)
                await asyncio.sleep(4)
                assert await client.get_value(etcd_prefix + b"l") == b"v" and lease.alive
                info = await lease.time_to_live(keys=True)
                assert info.keys == [etcd_prefix + b"l"]
            assert await client.get_value(etcd_prefix + b"l") is None
            assert lease.id not in await client.leases()
            with pytest.raises(LeaseNotFoundError):
                await client.keep_alive_once(lease.id)
            lost = client.lease(3)
            await lost.grant()
            await client.revoke(lost.id)
            assert await lost.wait(timeout=5)
        assert _our_tasks() == []

    run(main())
