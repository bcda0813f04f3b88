"""What only the asyncio client's watches have: ``async for``/``async with``,
watches created together with ``asyncio.gather``, coroutine callbacks, and
the tasks that close() must end.

Every watch behaviour runs for both clients in test_watch.py (through
``client_drivers.Driver``); these tests use the async API directly.
"""

from __future__ import annotations

import asyncio
import time

from conftest import run

import etcdfast
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


def test_async_for_and_async_with(etcd_server, etcd_prefix, twin):
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
            async for item in watch:  # leaving an async for keeps the watch
                got.append(item)
                if len(got) == 2:
                    break
            assert [e.key for e in got] == [etcd_prefix + b"a", etcd_prefix + b"b"]
            client.request_progress()
            assert isinstance((await take(watch, 1))[0], Progress)
            batches = watch.batches(timeout=10)
            await client.put(etcd_prefix + b"c", b"z")
            assert [e.key for e in (await batches.__anext__()).events] == [etcd_prefix + b"c"]
            await batches.aclose()
            await watch.cancel()
            assert [item async for item in watch] == []

    run(main())


def test_async_gathered_watches_coroutine_callbacks_and_close(etcd_server, etcd_prefix, twin):
    async def main():
        async with etcdfast.AsyncClient(etcd_server.endpoint, timeout=30) as client:
            watches = await asyncio.gather(*(client.watch(etcd_prefix + b"%03d" % i) for i in range(200)))
            await client.put(etcd_prefix + b"199", b"z")
            assert (await take(watches[199], 1))[0].value == b"z"
            seen, errors = [], []

            async def async_callback(event):
                await asyncio.sleep(0)
                seen.append(event)

            async def async_on_error(error):
                await asyncio.sleep(0)
                errors.append(error)

            def broken(event):
                raise RuntimeError("boom")

            await client.add_watch_callback(etcd_prefix + b"cb", async_callback)
            bad = await client.add_watch_callback(etcd_prefix + b"cb", broken, on_error=async_on_error)
            await client.put(etcd_prefix + b"cb", b"1")
            for _ in range(100):
                if seen and errors:
                    break
                await asyncio.sleep(0.05)
            assert [e.value for e in seen] == [b"1"]
            assert isinstance(bad.error, RuntimeError) and errors == [bad.error]
            assert _our_tasks()  # the reader and a callback task run
        # close() cancelled the callback tasks and the reader: nothing left running
        assert _our_tasks() == []

    run(main())
