"""Bulk drivers for the sync client: ``put_many`` and the range readers.

The logic is ``etcdfast._core.bulk`` (``BulkLoad``, ``RangePager``); here the
sync client waits on it. ``put_many`` keeps up to ``concurrency`` Txns in
flight as grpc futures of the executor, collected on the caller's thread (so
``progress`` runs there).
"""

from __future__ import annotations

import itertools
import queue
import time
from typing import TYPE_CHECKING, Any, Dict, Iterator, List, Sequence, Tuple

from .._core.bulk import BulkLoad, RangePager
from .._core.calls import Call
from ..api.bulk import PutManyOptions, RangeSpec
from ..types import BulkResult, KeyValue

if TYPE_CHECKING:
    from .client import Client

__all__ = ["put_many", "RangePages", "RangeIterator", "iter_range", "get_all"]


def put_many(client: "Client", options: PutManyOptions) -> BulkResult:
    """``Client.put_many``: see :func:`etcdfast.api.bulk.put_many`."""
    items = options.items
    if not hasattr(items, "__iter__"):
        raise TypeError(
            f"put_many needs an iterable of (key, value) pairs, not {type(items).__name__}"
            " (async iterables: use AsyncClient)"
        )
    load = BulkLoad(options)
    source = iter(items)  # type: ignore[arg-type]
    client._check_open()
    executor = client._executor
    done: "queue.SimpleQueue[int]" = queue.SimpleQueue()
    inflight: Dict[int, Tuple[Call, Any]] = {}

    def settle(seq: int, call: Call, future: Any) -> None:
        try:
            load.completed(seq, executor.outcome(call, future))
        except Exception as exc:  # an EtcdError from the call machine
            load.failed(seq, exc)

    started = time.perf_counter()
    try:
        while not load.stopped:
            batch = load.fill(source)
            if batch is None:
                break
            while load.must_wait(batch):
                seq = done.get()
                settle(seq, *inflight.pop(seq))
            if load.stopped:
                break
            load.sent(batch)
            call = Call(load.request(batch), client)
            future = executor.start(call)
            if future is None:  # not sendable now (log in first, closed...): run it out here
                settle(batch.seq, call, None)
                continue
            inflight[batch.seq] = (call, future)
            future.add_done_callback(lambda _, seq=batch.seq: done.put(seq))
        while inflight:
            seq = done.get()
            settle(seq, *inflight.pop(seq))
    except BaseException:
        for _, future in inflight.values():
            future.cancel()
        raise
    return load.result(time.perf_counter() - started)


class RangePages(Iterator[Sequence[KeyValue]]):
    """The pages of a range, read one Range call at a time.

    Returned by ``Client.iter_range_pages``. Each page is a non-empty sequence of
    key-values in key order; ``revision`` is the revision every page is read
    at (0 until the first page arrives, unless one was asked for) -- for
    example, to watch for changes from ``revision + 1`` after a full read.
    """

    def __init__(self, client: "Client", spec: RangeSpec) -> None:
        self._client = client
        self._pager = RangePager(spec)

    @property
    def revision(self) -> int:
        return self._pager.revision

    def __iter__(self) -> "RangePages":
        return self

    def __next__(self) -> Sequence[KeyValue]:
        pager = self._pager
        while not pager.done:
            page = pager.feed(self._client._run(pager.request()))
            if page:
                return page
        raise StopIteration


class RangeIterator(Iterator[KeyValue]):
    """The key-values of a range one by one, read page by page.

    Returned by ``Client.iter_range``; ``revision`` as in :class:`RangePages`.
    """

    def __init__(self, pages: RangePages) -> None:
        self.pages = pages
        self._items = itertools.chain.from_iterable(pages)

    @property
    def revision(self) -> int:
        return self.pages.revision

    def __iter__(self) -> Iterator[KeyValue]:
        # A for loop drives the C-level chain directly: no Python call per key.
        return self._items

    def __next__(self) -> KeyValue:
        return next(self._items)


def iter_range(client: "Client", spec: RangeSpec) -> RangeIterator:
    return RangeIterator(RangePages(client, spec))


def get_all(client: "Client", spec: RangeSpec) -> List[KeyValue]:
    out: List[KeyValue] = []
    for page in RangePages(client, spec):
        out += page
    return out
