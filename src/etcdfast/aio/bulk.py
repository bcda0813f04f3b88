"""Bulk drivers for the asyncio client: ``put_many`` and the range readers.

The logic is ``etcdfast._core.bulk``; here one task per in-flight Txn runs
the executor's ordinary call path, and the range readers await page by page.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any, AsyncIterable, AsyncIterator, Dict, Iterator, List, Optional, Sequence

from .._core.bulk import Batch, BulkLoad, RangePager
from ..api.bulk import PutManyOptions, RangeSpec
from ..types import BulkResult, KeyValue

if TYPE_CHECKING:
    from .client import AsyncClient

__all__ = ["put_many", "AsyncRangePages", "AsyncRangeIterator", "get_all"]


async def put_many(client: "AsyncClient", options: PutManyOptions) -> BulkResult:
    """``AsyncClient.put_many``: see :func:`etcdfast.api.bulk.put_many`."""
    load = BulkLoad(options)
    items = options.items
    source: Optional[Iterator[Any]] = None
    asource: Optional[AsyncIterator[Any]] = None
    if isinstance(items, AsyncIterable):
        asource = items.__aiter__()
    else:
        source = iter(items)
    client._check_open()
    run = client._executor.run
    tasks: "Dict[asyncio.Task[int], int]" = {}

    async def settle() -> None:
        finished, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in sorted(finished, key=tasks.__getitem__):
            seq = tasks.pop(task)
            try:
                load.completed(seq, task.result())
            except Exception as exc:  # an EtcdError from the call machine
                load.failed(seq, exc)

    started = time.perf_counter()
    try:
        while not load.stopped:
            if asource is not None:
                batch = await _afill(load, asource)
            else:
                assert source is not None
                batch = load.fill(source)
            if batch is None:
                break
            while load.must_wait(batch):
                await settle()
            if load.stopped:
                break
            load.sent(batch)
            tasks[asyncio.ensure_future(run(load.request(batch)))] = batch.seq
        while tasks:
            await settle()
    except BaseException:
        for task in tasks:
            task.cancel()
        raise
    return load.result(time.perf_counter() - started)


async def _afill(load: BulkLoad, source: AsyncIterator[Any]) -> Optional[Batch]:
    # BulkLoad.fill for an async source: only the pull differs.
    if load.exhausted:
        return None
    while True:
        try:
            item = await source.__anext__()
        except StopAsyncIteration:
            return load.finish()
        except Exception as exc:
            return load.input_failed(exc)
        batch = load.add(item)
        if batch is not None or load.exhausted:
            return batch


class AsyncRangePages(AsyncIterator[Sequence[KeyValue]]):
    """The asyncio twin of :class:`etcdfast._sync.bulk.RangePages` (``async for page in ...``)."""

    def __init__(self, client: "AsyncClient", spec: RangeSpec) -> None:
        self._client = client
        self._pager = RangePager(spec)

    @property
    def revision(self) -> int:
        return self._pager.revision

    def __aiter__(self) -> "AsyncRangePages":
        return self

    async def __anext__(self) -> Sequence[KeyValue]:
        pager = self._pager
        while not pager.done:
            page = pager.feed(await self._client._run(pager.request()))
            if page:
                return page
        raise StopAsyncIteration


class AsyncRangeIterator(AsyncIterator[KeyValue]):
    """The asyncio twin of :class:`etcdfast._sync.bulk.RangeIterator` (``async for kv in ...``)."""

    def __init__(self, pages: AsyncRangePages) -> None:
        self.pages = pages
        self._page: Sequence[KeyValue] = []
        self._next = 0

    @property
    def revision(self) -> int:
        return self.pages.revision

    def __aiter__(self) -> "AsyncRangeIterator":
        return self

    async def __anext__(self) -> KeyValue:
        while self._next >= len(self._page):
            self._page = await self.pages.__anext__()
            self._next = 0
        item = self._page[self._next]
        self._next += 1
        return item


def iter_range(client: "AsyncClient", spec: RangeSpec) -> AsyncRangeIterator:
    return AsyncRangeIterator(AsyncRangePages(client, spec))


async def get_all(client: "AsyncClient", spec: RangeSpec) -> List[KeyValue]:
    out: List[KeyValue] = []
    async for page in AsyncRangePages(client, spec):
        out += page
    return out
