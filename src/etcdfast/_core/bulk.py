"""The sans-IO cores of bulk work: :class:`BulkLoad` (``put_many``) and
:class:`RangePager` (``iter_range`` and friends).

* :class:`BulkLoad` packs ``(key, value)`` items into compare-less Txn batches
  (the codec's ``BatchPacker``: its per-item loop is compiled in the fast
  twin) and keeps the books on what each batch did (:class:`BulkLedger`): the
  committed prefix, batches that committed after a failure, batches whose
  outcome is unknown, and the final :class:`~etcdfast.types.BulkResult` or
  :class:`~etcdfast.errors.BulkWriteError`. Each batch is a
  :class:`~etcdfast.api.request.Request` that the executors run through the
  same call machine as any call (token, ``hasleader``, retry rules), so what
  a failure means -- applied or not -- is decided there.
* :class:`RangePager` builds each page's Range request at one pinned revision
  and moves past the last key.

The drivers (``_sync.bulk``, ``aio.bulk``) differ only in how they wait.
The failure semantics are described in :mod:`etcdfast.api.bulk`.
"""

from __future__ import annotations

from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

from .. import _codec
from ..api import kv
from ..api.bulk import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_KEYS,
    MIN_PAGE_KEYS,
    PAGE_BYTES,
    ProgressCallback,
    PutManyOptions,
    RangeSpec,
)
from ..api.request import Request
from ..errors import BulkWriteError
from ..types import BulkResult, GetResult, KeyValue
from .calls import outcome_unknown

__all__ = ["Batch", "BatchPacker", "BulkLedger", "BulkLoad", "RangePager", "page_size_for"]

TXN = kv.TXN

# The packer is the codec twin's (its per-item loop is compiled in the fast
# twin); the names stay importable from here.
Batch = _codec.batch.Batch
BatchPacker = _codec.batch.BatchPacker


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

    def failed(self, seq: int, error: BaseException) -> Batch:
        batch = self.inflight.pop(seq)
        batch.payload = b""
        self.stopped = True
        self.failures.append((batch.start, error))
        if outcome_unknown(error):
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


class BulkLoad:
    """The sans-IO core of one ``put_many`` call: packer + ledger + options.

    A driver loops: :meth:`fill` (or :meth:`add` per item for async input)
    until a batch is ready, waits while :meth:`must_wait`, calls :meth:`sent`
    and runs :meth:`request` (the batch's Txn, whose result is the revision it
    committed at), then reports each outcome with :meth:`completed` or
    :meth:`failed`; finally :meth:`result`.
    """

    def __init__(self, options: PutManyOptions) -> None:
        self.concurrency = options.concurrency
        self.timeout = options.timeout
        self.packer = _codec.batch.BatchPacker(options.batch_ops, options.max_batch_bytes, options.lease)
        self.ledger = BulkLedger(options.progress)
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

    def request(self, batch: Batch) -> "Request[int]":
        """The batch's Txn; its result is the header revision (the codec reads
        nothing else of the answer: one PutResponse per put nobody reads)."""
        return Request(TXN, batch.payload, _codec.wire.decode_txn_revision, timeout=self.timeout)

    def completed(self, seq: int, revision: int) -> None:
        """A batch's Txn committed at ``revision``."""
        self.packer.release(self.ledger.succeeded(seq, revision))

    def failed(self, seq: int, error: BaseException) -> None:
        """A batch's Txn failed with ``error`` (an EtcdError from the call machine,
        which says whether it may have been applied)."""
        self.packer.release(self.ledger.failed(seq, error))

    def result(self, elapsed: float) -> BulkResult:
        return self.ledger.result(elapsed)


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

    def __init__(self, spec: RangeSpec) -> None:
        self.key, self.range_end = spec.key, spec.range_end
        #: ``page_size=None``: pages sized by bytes (see ``PAGE_BYTES``).
        self.adaptive = spec.page_size is None
        self.page_size = spec.page_size or DEFAULT_PAGE_SIZE
        self.revision = spec.revision
        self.keys_only = spec.keys_only
        self.serializable = spec.serializable
        self.timeout = spec.timeout
        self.done = False

    def request(self) -> Request[GetResult]:
        """The Range request for the next page."""
        return kv.get(
            self.key, range_end=self.range_end, limit=self.page_size, revision=self.revision,
            keys_only=self.keys_only, serializable=self.serializable, timeout=self.timeout,
        )

    def feed(self, result: GetResult) -> Sequence[KeyValue]:
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


