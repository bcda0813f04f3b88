"""Bulk loading and streaming reads: ``put_many``, ``iter_range``, ``count``...

The logic lives here once. ``Client`` and ``AsyncClient`` expose thin methods
over the drivers below, and the drivers differ only in how they wait:

* :class:`BulkLoad` is the sans-IO core of ``put_many``: it packs ``(key,
  value)`` items into compare-less Txn batches (:class:`BatchPacker`) and
  keeps the books on what each batch did (:class:`BulkLedger`): the committed
  prefix, batches that committed after a failure, batches whose outcome is
  unknown, and the final :class:`~etcdfast.types.BulkResult` or
  :class:`~etcdfast.errors.BulkWriteError`.
* :class:`RangePager` is the sans-IO core of ``iter_range``: it builds each
  page's Range request at one pinned revision and moves past the last key.
* :func:`put_many` and :class:`RangePages` drive them with grpcio (futures
  for concurrent Txns); :func:`put_many_async` and :class:`AsyncRangePages`
  with grpc.aio (one task per Txn).
* :func:`count` and :func:`delete_many` are plain request builders, like
  those in :mod:`etcdfast.kv`.

Failure semantics of ``put_many`` (the clients' docstrings repeat them):

* Each batch is one Txn, so it commits entirely or not at all. Batches go out
  in input order, up to ``concurrency`` at a time, and may commit out of order.
* When a batch fails, no new batch is sent; the ones in flight are awaited,
  and :class:`~etcdfast.errors.BulkWriteError` is raised. Its ``committed`` is
  the resume index: every item before it is committed. Batches after it that
  did commit are listed in ``committed_after``; batches whose outcome is
  unknown (a timeout or UNAVAILABLE while the Txn was in flight: it may or may
  not have been applied) in ``uncertain``. Writes are never retried.
* Resuming with the items from ``committed`` on never loses data: puts are
  idempotent in their final state, so at worst the items in ``uncertain`` and
  ``committed_after`` are written a second time (their ``version`` then counts
  two writes and they get a new ``mod_revision``).
* A bad input item (over ``max_batch_bytes`` alone, empty key, not a pair of
  str/bytes) and an exception raised by the input iterable itself stop the
  load the same way: the items before it are sent (their batch never contains
  the bad item), then ``BulkWriteError`` is raised with the problem as
  ``cause`` and, if nothing else failed, ``committed`` == the bad item's index.
"""

from __future__ import annotations

import asyncio
import itertools
import queue
import time
from typing import (
    TYPE_CHECKING,
    Any,
    AsyncIterable,
    AsyncIterator,
    Callable,
    Dict,
    Iterable,
    Iterator,
    List,
    Optional,
    Sequence,
    Tuple,
    Union,
)

import grpc

from . import _codec, kv
from ._request import Request, check_timeout
from .errors import (
    AuthError,
    BulkWriteError,
    CancelledError,
    ClientClosedError,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
    ResourceExhaustedError,
    RevisionError,
    Unavailable,
)
from .kv import KeyLike, LeaseLike
from .types import BulkResult, GetResult, KeyValue

if TYPE_CHECKING:
    from ._pure.revision import RevisionTracker
    from .aio.client import AsyncClient
    from .client import Client

__all__ = [
    "DEFAULT_BATCH_OPS",
    "DEFAULT_MAX_BATCH_BYTES",
    "DEFAULT_CONCURRENCY",
    "DEFAULT_PAGE_SIZE",
    "PAGE_BYTES",
    "MIN_PAGE_KEYS",
    "MAX_PAGE_KEYS",
    "page_size_for",
    "Batch",
    "BatchPacker",
    "BulkLedger",
    "BulkLoad",
    "RangePager",
    "RangePages",
    "RangeIterator",
    "AsyncRangePages",
    "AsyncRangeIterator",
    "outcome_unknown",
    "put_many",
    "put_many_async",
    "get_all",
    "get_all_async",
    "count",
    "delete_many",
]

#: etcd's default ``--max-txn-ops``.
DEFAULT_BATCH_OPS = 128
#: Well under etcd's default ``--max-request-bytes`` (1.5 MiB), which counts
#: the whole raft request (the Txn plus a small header).
DEFAULT_MAX_BATCH_BYTES = 1024 * 1024
#: Txns in flight at once. Measured with bench/bulk_put_many.py (2 shared
#: cores: client and etcd 3.5.1 on tmpfs with --unsafe-no-fsync, other jobs
#: running; 100k keys of 24 B with 128 B values, fast twin, sync client):
#:
#:   concurrency          1     2     4     8    16
#:   keys/s, median     69k   92k  118k   86k  101k   (5 runs, quietest hour)
#:   keys/s, best       98k  141k  157k  166k  158k
#:   keys/s, median     46k   60k   76k   51k   80k   (9 runs, busy box)
#:   client CPU us/key  4.9   4.0   3.7   3.2   3.0   (~2.2 of it is grpcio's
#:                                                       ~270 us per call)
#:
#: At 1M keys (bench/bulk_e2e.py, 3 interleaved reps) 16 in flight beat 4
#: clearly: 167k vs 121k keys/s and 2.49 vs 3.04 us of client CPU per key
#: (fewer idle wake-ups per call), so 16 it is. Memory stays bounded: at most
#: 16 batches of <= 1 MiB are in flight.
DEFAULT_CONCURRENCY = 16
#: Pages of ``iter_range`` and friends, when no ``page_size`` is given: the
#: first page has ``DEFAULT_PAGE_SIZE`` keys; each later one is sized from the
#: pairs read so far to about ``PAGE_BYTES`` of keys and values, between
#: ``MIN_PAGE_KEYS`` and ``MAX_PAGE_KEYS``. Why bytes and big pages: etcd
#: (3.4, 3.5) counts every remaining key of the range for each page, so small
#: pages make a big range quadratic for the server -- 1M keys of 152 bytes read
#: at 90k keys/s in 10,000-key pages and 294k in 50,000 (bench/RESULTS.md) --
#: while a key count alone would not bound memory when values are large.
DEFAULT_PAGE_SIZE = 10_000
PAGE_BYTES = 8 << 20
MIN_PAGE_KEYS = 100
#: 50,000 pairs of ~150 bytes: +70 MB of peak RSS over a 1M-key read.
MAX_PAGE_KEYS = 50_000

TXN = kv.TXN
RANGE = kv.RANGE

ItemLike = Tuple[KeyLike, KeyLike]
ProgressCallback = Callable[[int], object]


# -- put_many: planning -------------------------------------------------------


def _positive(name: str, value: Optional[int], default: int) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if value < 1:
        raise InvalidArgumentError(f"{name} must be >= 1, got {value}")
    return value


# The packer is the codec twin's (its per-item loop is compiled in the fast
# twin); the names stay importable from here.
Batch = _codec.batch.Batch
BatchPacker = _codec.batch.BatchPacker


# -- put_many: book-keeping ---------------------------------------------------

# Errors that prove the server did not apply the Txn: it was refused before it
# was proposed (bad argument, auth, quota, missing lease...). Anything else that
# ends a sent Txn -- timeouts, UNAVAILABLE, a lost connection, a cancel, an
# unparsable answer -- leaves its outcome unknown.
_NOT_APPLIED = (
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
    AuthError,
    ResourceExhaustedError,
    FailedPreconditionError,
    RevisionError,
)


def outcome_unknown(error: BaseException) -> bool:
    """Whether a write that failed with ``error`` may nevertheless have been applied."""
    if isinstance(error, Unavailable):
        return True
    return not isinstance(error, _NOT_APPLIED)


def _merged(ranges: List[Tuple[int, int]]) -> List[Tuple[int, int]]:
    out: List[Tuple[int, int]] = []
    for start, stop in sorted(ranges):
        if out and out[-1][1] == start:
            out[-1] = (out[-1][0], stop)
        else:
            out.append((start, stop))
    return out


class BulkLedger:
    """What happened to each sent batch, folded into a committed prefix.

    Outcomes arrive in any order; they are folded in input order, so
    ``committed`` only ever covers a contiguous prefix of the input, and
    ``progress`` sees it grow batch by batch.
    """

    def __init__(self, progress: Optional[ProgressCallback]) -> None:
        self._progress = progress
        self.inflight: Dict[int, Batch] = {}
        self._outcomes: Dict[int, Tuple[Batch, bool]] = {}
        self._next = 0
        self._blocked = False
        self.committed = 0
        self.committed_batches = 0
        self.first_revision = 0
        self.last_revision = 0
        #: ``(input position, error)`` of everything that went wrong.
        self.failures: List[Tuple[int, BaseException]] = []
        self.uncertain: List[Tuple[int, int]] = []
        self.committed_after: List[Tuple[int, int]] = []
        #: No new batch may be sent (a batch or the progress callback failed).
        self.stopped = False

    def sent(self, batch: Batch) -> None:
        self.inflight[batch.seq] = batch

    def succeeded(self, seq: int, revision: int) -> Batch:
        batch = self.inflight.pop(seq)
        batch.payload = b""  # finished: keep only the bookkeeping until it folds
        if not self.first_revision or revision < self.first_revision:
            self.first_revision = revision
        if revision > self.last_revision:
            self.last_revision = revision
        self._outcomes[seq] = (batch, True)
        self._fold()
        return batch

    def failed(self, seq: int, error: BaseException, *, sent: bool = True) -> Batch:
        batch = self.inflight.pop(seq)
        batch.payload = b""
        self.stopped = True
        self.failures.append((batch.start, error))
        if sent and outcome_unknown(error):
            self.uncertain.append((batch.start, batch.stop))
        self._outcomes[seq] = (batch, False)
        self._fold()
        return batch

    def input_failed(self, position: int, error: BaseException) -> None:
        self.failures.append((position, error))

    def _fold(self) -> None:
        outcomes = self._outcomes
        while self._next in outcomes:
            batch, ok = outcomes.pop(self._next)
            self._next += 1
            if not ok:
                self._blocked = True
            elif self._blocked:
                self.committed_after.append((batch.start, batch.stop))
            else:
                self.committed = batch.stop
                self.committed_batches += 1
                if self._progress is not None:
                    self._report()

    def _report(self) -> None:
        assert self._progress is not None
        try:
            self._progress(self.committed)
        except Exception as exc:  # the caller's callback: stop the load, report it
            self._progress = None
            self.stopped = True
            self.failures.append((self.committed, exc))

    def result(self, elapsed: float) -> BulkResult:
        """The summary, or raise :class:`BulkWriteError` if anything failed."""
        if not self.failures:
            return BulkResult(
                self.committed, self.committed_batches, self.first_revision, self.last_revision,
                elapsed,
            )
        _, cause = min(self.failures, key=lambda failure: failure[0])
        uncertain = _merged(self.uncertain)
        after = _merged(self.committed_after)
        message = (
            f"put_many stopped: {type(cause).__name__}: {cause}. Items [0, {self.committed}) "
            f"are committed ({self.committed_batches} batches); resume from item {self.committed}."
        )
        if uncertain:
            message += f" Outcome unknown (may or may not be applied) for items {_ranges(uncertain)}."
        if after:
            message += f" Also committed: items {_ranges(after)}."
        raise BulkWriteError(
            message,
            committed=self.committed,
            committed_batches=self.committed_batches,
            cause=cause,
            uncertain=uncertain,
            committed_after=after,
        ) from cause


def _ranges(ranges: List[Tuple[int, int]], limit: int = 6) -> str:
    text = ", ".join(f"[{a}, {b})" for a, b in ranges[:limit])
    return text + (f" and {len(ranges) - limit} more" if len(ranges) > limit else "")


def txn_revision(data: bytes, tracker: Optional["RevisionTracker"]) -> int:
    """``header.revision`` of a TxnResponse: the revision its writes got.

    A bulk batch's response holds one PutResponse per put that nobody reads,
    so the header (etcd writes it first) is read directly; anything unusual
    goes through the codec's full decoder.
    """
    revision = _header_revision(data)
    if revision is None:
        return int(_codec.wire.decode_txn(data, tracker).header.revision)
    if tracker is not None:
        tracker.observe(revision)
    return revision


def _read_varint(data: bytes, pos: int) -> Tuple[int, int]:
    value = shift = 0
    while shift < 64:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
    raise ValueError("varint too long")


def _header_revision(data: bytes) -> Optional[int]:
    if data[:1] != b"\x0a":  # field 1 (header), length-delimited
        return None
    try:
        length, pos = _read_varint(data, 1)
        end = pos + length
        if end > len(data):
            return None
        revision = 0
        while pos < end:
            tag, pos = _read_varint(data, pos)
            if tag & 7:  # every ResponseHeader field is a varint
                return None
            value, pos = _read_varint(data, pos)
            if tag == 0x18:  # revision = 3
                revision = value
        if pos != end or revision >= 1 << 63:
            return None
        return revision
    except (IndexError, ValueError):
        return None


class BulkLoad:
    """The sans-IO core of one ``put_many`` call: packer + ledger + options.

    A driver loops: :meth:`fill` (or :meth:`add` per item for async input)
    until a batch is ready, waits while :meth:`must_wait`, calls :meth:`sent`
    and starts the Txn, then reports each outcome with :meth:`completed` or
    :meth:`failed`; finally :meth:`result`.
    """

    def __init__(
        self,
        *,
        batch_ops: Optional[int] = None,
        max_batch_bytes: Optional[int] = None,
        concurrency: Optional[int] = None,
        lease: LeaseLike = 0,
        progress: Optional[ProgressCallback] = None,
        timeout: Optional[float] = None,
    ) -> None:
        if progress is not None and not callable(progress):
            raise TypeError(f"progress must be callable, not {type(progress).__name__}")
        self.concurrency = _positive("concurrency", concurrency, DEFAULT_CONCURRENCY)
        self.timeout = check_timeout(timeout)
        self.packer = _codec.batch.BatchPacker(
            _positive("batch_ops", batch_ops, DEFAULT_BATCH_OPS),
            _positive("max_batch_bytes", max_batch_bytes, DEFAULT_MAX_BATCH_BYTES),
            kv.lease_id(lease),
        )
        self.ledger = BulkLedger(progress)
        #: The input is used up (or failed): after the last batch, stop.
        self.exhausted = False

    # -- input side --

    def add(self, item: Any) -> Optional[Batch]:
        """One input item; a bad item ends the input (see :meth:`input_failed`)."""
        try:
            return self.packer.add(item)
        except Exception as exc:
            return self.input_failed(exc)

    def fill(self, source: Iterator[Any]) -> Optional[Batch]:
        """Pull items from a sync iterator until a batch is ready (``None``: no more)."""
        if self.exhausted:
            return None
        try:
            batch = self.packer.fill(source)  # the per-item loop, in the codec twin
        except Exception as exc:  # a bad item, or raised by the input iterable itself
            return self.input_failed(exc)
        return batch if batch is not None else self.finish()

    def finish(self) -> Optional[Batch]:
        """The input ended: the last, partly filled batch."""
        self.exhausted = True
        return self.packer.flush()

    def input_failed(self, error: BaseException) -> Optional[Batch]:
        """The input failed at the current item: end it, keep the items before it."""
        self.ledger.input_failed(self.packer.index, error)
        return self.finish()

    # -- output side --

    @property
    def stopped(self) -> bool:
        return self.ledger.stopped

    def must_wait(self, batch: Batch) -> bool:
        """Whether ``batch`` must wait for an in-flight one to finish first."""
        ledger = self.ledger
        if ledger.stopped:
            return False
        return len(ledger.inflight) >= self.concurrency or batch.after in ledger.inflight

    def sent(self, batch: Batch) -> None:
        self.ledger.sent(batch)

    def completed(self, seq: int, data: bytes, tracker: Optional["RevisionTracker"]) -> None:
        """A batch's Txn answered ``data``."""
        try:
            revision = txn_revision(data, tracker)
        except Exception as exc:  # ProtocolError: applied, but we cannot tell at which revision
            self.failed(seq, exc)
            return
        self.packer.release(self.ledger.succeeded(seq, revision))

    def failed(self, seq: int, error: BaseException, *, sent: bool = True) -> None:
        self.packer.release(self.ledger.failed(seq, error, sent=sent))

    def result(self, elapsed: float) -> BulkResult:
        return self.ledger.result(elapsed)


def _call_error(client: Any, exc: BaseException) -> BaseException:
    """The typed error for a failed Txn call (shared by both drivers)."""
    if client._closed:
        return ClientClosedError("the client was closed during put_many")
    if isinstance(exc, grpc.RpcError):
        return client._error(exc)  # type: ignore[no-any-return]
    if isinstance(exc, (asyncio.CancelledError, grpc.FutureCancelledError)):
        return CancelledError("the Txn was cancelled")
    return exc


def _settle(load: BulkLoad, client: Any, seq: int, outcome: Callable[[], bytes]) -> None:
    try:
        data = outcome()
    except (Exception, asyncio.CancelledError) as exc:
        load.failed(seq, _call_error(client, exc))
    else:
        load.completed(seq, data, client._revisions)


# -- put_many: drivers --------------------------------------------------------


def put_many(
    client: "Client",
    items: Iterable[ItemLike],
    *,
    batch_ops: Optional[int] = None,
    max_batch_bytes: Optional[int] = None,
    concurrency: Optional[int] = None,
    lease: LeaseLike = 0,
    progress: Optional[ProgressCallback] = None,
    timeout: Optional[float] = None,
) -> BulkResult:
    """The sync driver of ``Client.put_many`` (grpcio futures on the client's channel).

    Outcomes are collected on the caller's thread, so ``progress`` runs there.
    """
    load = BulkLoad(batch_ops=batch_ops, max_batch_bytes=max_batch_bytes,
                    concurrency=concurrency, lease=lease, progress=progress, timeout=timeout)
    source = iter(items)
    if client._closed:
        raise ClientClosedError("the client is closed")
    handle = client._handle(TXN)
    deadline = client._deadline(load.timeout)
    done: "queue.SimpleQueue[int]" = queue.SimpleQueue()
    calls: Dict[int, Any] = {}

    def settle() -> None:
        seq = done.get()
        _settle(load, client, seq, calls.pop(seq).result)

    started = time.perf_counter()
    try:
        while not load.stopped:
            batch = load.fill(source)
            if batch is None:
                break
            while load.must_wait(batch):
                settle()
            if load.stopped:
                break
            load.sent(batch)
            try:
                call = handle.future(batch.payload, timeout=deadline)
            except Exception as exc:  # e.g. the channel was closed: nothing was sent
                load.failed(batch.seq, _call_error(client, exc), sent=False)
                break
            calls[batch.seq] = call
            call.add_done_callback(lambda _, seq=batch.seq: done.put(seq))
        while calls:
            settle()
    except BaseException:
        for call in calls.values():
            call.cancel()
        raise
    return load.result(time.perf_counter() - started)


async def put_many_async(
    client: "AsyncClient",
    items: Union[Iterable[ItemLike], AsyncIterable[ItemLike]],
    *,
    batch_ops: Optional[int] = None,
    max_batch_bytes: Optional[int] = None,
    concurrency: Optional[int] = None,
    lease: LeaseLike = 0,
    progress: Optional[ProgressCallback] = None,
    timeout: Optional[float] = None,
) -> BulkResult:
    """The asyncio driver of ``AsyncClient.put_many`` (one grpc.aio task per batch)."""
    load = BulkLoad(batch_ops=batch_ops, max_batch_bytes=max_batch_bytes,
                    concurrency=concurrency, lease=lease, progress=progress, timeout=timeout)
    source: Optional[Iterator[Any]] = None
    asource: Optional[AsyncIterator[Any]] = None
    if isinstance(items, AsyncIterable):
        asource = items.__aiter__()
    else:
        source = iter(items)
    handle = client._handle(TXN)
    deadline = client._deadline(load.timeout)
    tasks: Dict["asyncio.Task[bytes]", int] = {}

    async def call(payload: bytes) -> bytes:
        return await handle(payload, timeout=deadline)  # type: ignore[no-any-return]

    async def settle() -> None:
        finished, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in sorted(finished, key=tasks.__getitem__):
            _settle(load, client, tasks.pop(task), task.result)

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
            tasks[asyncio.ensure_future(call(batch.payload))] = batch.seq
        while tasks:
            await settle()
    except BaseException:
        for task in tasks:
            task.cancel()
        raise
    return load.result(time.perf_counter() - started)


async def _afill(load: BulkLoad, source: AsyncIterator[Any]) -> Optional[Batch]:
    # The async twin of BulkLoad.fill: only the pull differs.
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


# -- streaming reads ----------------------------------------------------------


class RangePager:
    """Pages through ``[key, range_end)`` in key order at one revision.

    The first page pins the revision from its header (unless ``revision`` was
    given); each following page starts right after the last key seen
    (``last + b"\\0"``). If the pinned revision is compacted meanwhile, the
    next page raises :class:`~etcdfast.errors.CompactedError`: the pager never
    moves to another revision.
    """

    __slots__ = ("key", "range_end", "page_size", "adaptive", "revision", "keys_only",
                 "serializable", "timeout", "done")

    def __init__(
        self,
        key: KeyLike,
        *,
        prefix: bool = False,
        range_end: Optional[KeyLike] = None,
        from_key: bool = False,
        page_size: Optional[int] = None,
        revision: int = 0,
        keys_only: bool = False,
        serializable: bool = False,
        timeout: Optional[float] = None,
    ) -> None:
        self.key, self.range_end = _codec.keys.resolve_range(key, range_end, prefix, from_key)
        #: ``page_size=None``: pages sized by bytes (see ``PAGE_BYTES``).
        self.adaptive = page_size is None
        self.page_size = _positive("page_size", page_size, DEFAULT_PAGE_SIZE)
        if isinstance(revision, bool) or not isinstance(revision, int):
            raise TypeError(f"revision must be an int, not {type(revision).__name__}")
        if revision < 0:
            raise InvalidArgumentError(f"revision must be >= 0, got {revision}")
        self.revision = revision
        self.keys_only = bool(keys_only)
        self.serializable = bool(serializable)
        self.timeout = check_timeout(timeout)
        self.done = False

    def request(self) -> Request[GetResult]:
        """The Range request for the next page."""
        return kv.get(
            self.key, range_end=self.range_end, limit=self.page_size, revision=self.revision,
            keys_only=self.keys_only, serializable=self.serializable, timeout=self.timeout,
        )

    def feed(self, result: GetResult) -> List[KeyValue]:
        """Take a page's answer; return its key-values (in key order)."""
        if not self.revision:
            self.revision = result.header.revision
        kvs = result.kvs
        if result.more and kvs:
            self.key = kvs[-1].key + b"\x00"
            if self.adaptive:
                self.page_size = page_size_for(kvs)
        else:
            self.done = True
        return kvs


def page_size_for(kvs: Sequence[KeyValue]) -> int:
    """Keys per page that make about ``PAGE_BYTES``, judging by ``kvs``.

    Estimated from up to 64 pairs spread over the page: the size is a budget,
    not a limit, and summing a 50,000-key page would cost more than it saves.
    """
    step = max(1, len(kvs) // 64)
    sample = kvs[::step]
    pair_bytes = sum(len(kv.key) + len(kv.value) for kv in sample) / len(sample)
    return max(MIN_PAGE_KEYS, min(MAX_PAGE_KEYS, int(PAGE_BYTES / max(pair_bytes, 1.0))))


class RangePages(Iterator[List[KeyValue]]):
    """The pages of a range, read one Range call at a time (sync).

    Returned by ``Client.iter_range_pages``. Each page is a non-empty list of
    key-values in key order; ``revision`` is the revision every page is read
    at (0 until the first page arrives, unless one was asked for) -- for
    example, to watch for changes from ``revision + 1`` after a full read.
    """

    def __init__(self, client: "Client", pager: RangePager) -> None:
        self._client = client
        self._pager = pager

    @property
    def revision(self) -> int:
        return self._pager.revision

    def __iter__(self) -> "RangePages":
        return self

    def __next__(self) -> List[KeyValue]:
        pager = self._pager
        while not pager.done:
            page = pager.feed(self._client._execute(pager.request()))
            if page:
                return page
        raise StopIteration


class RangeIterator(Iterator[KeyValue]):
    """The key-values of a range one by one, read page by page (sync).

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


def get_all(client: "Client", pager: RangePager) -> List[KeyValue]:
    """Every key-value of the range, at one revision, in a list (sync)."""
    out: List[KeyValue] = []
    for page in RangePages(client, pager):
        out += page
    return out


class AsyncRangePages(AsyncIterator[List[KeyValue]]):
    """The asyncio twin of :class:`RangePages` (``async for page in ...``)."""

    def __init__(self, client: "AsyncClient", pager: RangePager) -> None:
        self._client = client
        self._pager = pager

    @property
    def revision(self) -> int:
        return self._pager.revision

    def __aiter__(self) -> "AsyncRangePages":
        return self

    async def __anext__(self) -> List[KeyValue]:
        pager = self._pager
        while not pager.done:
            page = pager.feed(await self._client._execute(pager.request()))
            if page:
                return page
        raise StopAsyncIteration


class AsyncRangeIterator(AsyncIterator[KeyValue]):
    """The asyncio twin of :class:`RangeIterator` (``async for kv in ...``)."""

    def __init__(self, pages: AsyncRangePages) -> None:
        self.pages = pages
        self._page: List[KeyValue] = []
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


async def get_all_async(client: "AsyncClient", pager: RangePager) -> List[KeyValue]:
    """Every key-value of the range, at one revision, in a list (asyncio)."""
    out: List[KeyValue] = []
    async for page in AsyncRangePages(client, pager):
        out += page
    return out


# -- small request builders ---------------------------------------------------


def _count(data: bytes, tracker: Optional["RevisionTracker"]) -> int:
    return int(_codec.wire.decode_range(data, tracker).count)


def _deleted(data: bytes, tracker: Optional["RevisionTracker"]) -> int:
    return int(_codec.wire.decode_delete(data, tracker).deleted)


def count(
    key: KeyLike,
    *,
    prefix: bool = False,
    range_end: Optional[KeyLike] = None,
    from_key: bool = False,
    revision: int = 0,
    serializable: bool = False,
    timeout: Optional[float] = None,
) -> Request[int]:
    """The number of keys in a key, prefix, ``[key, range_end)`` or from ``key``
    on (a ``count_only`` Range: no key or value crosses the wire)."""
    request = kv.get(
        key, prefix=prefix, range_end=range_end, from_key=from_key, revision=revision,
        serializable=serializable, count_only=True, timeout=timeout,
    )
    return Request(RANGE, request.payload, _count, repeatable=True, timeout=request.timeout)


def delete_many(
    key: KeyLike,
    *,
    prefix: bool = False,
    range_end: Optional[KeyLike] = None,
    from_key: bool = False,
    timeout: Optional[float] = None,
) -> Request[int]:
    """Delete a key, a prefix, ``[key, range_end)`` or every key from ``key`` on,
    in one atomic DeleteRange; returns how many keys were deleted."""
    request = kv.delete(key, prefix=prefix, range_end=range_end, from_key=from_key, timeout=timeout)
    return Request(request.method, request.payload, _deleted, timeout=request.timeout)
