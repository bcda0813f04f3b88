"""Bulk work as builders: ``put_many``, range paging, ``count``, ``delete_many``.

``put_many`` and the range readers (``iter_range``, ``iter_range_pages``,
``get_all``) are not single calls: their builders here validate the options
and return them as a :class:`PutManyOptions` / :class:`RangeSpec`, and the
clients' drivers run them on the sans-IO cores of ``etcdfast._core.bulk``
(``BulkLoad``: batches and the ledger of what committed; ``RangePager``: the
pages at one revision). :func:`count` and :func:`delete_many` are plain
request builders, like those of :mod:`etcdfast.api.kv`.

Failure semantics of ``put_many`` (its docstring below repeats them):

* Each batch is one Txn, so it commits entirely or not at all. Batches go out
  in input order, up to ``concurrency`` at a time, and may commit out of order.
* When a batch fails, no new batch is sent; the ones in flight are awaited,
  and :class:`~etcdfast.errors.BulkWriteError` is raised. Its ``committed`` is
  the resume index: every item before it is committed. Batches after it that
  did commit are listed in ``committed_after``; batches whose outcome is
  unknown (a timeout or a broken connection while the Txn was in flight: it
  may or may not have been applied) in ``uncertain``. Writes are never retried
  once they may have reached the server.
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

from typing import AsyncIterable, Callable, Iterable, NamedTuple, Optional, Tuple, Union

from .. import _codec
from . import kv
from .args import lease_id, non_negative, positive
from .kv import KeyLike, LeaseLike
from .request import Observer, Request, check_timeout

__all__ = [
    "DEFAULT_BATCH_OPS",
    "DEFAULT_MAX_BATCH_BYTES",
    "DEFAULT_CONCURRENCY",
    "DEFAULT_PAGE_SIZE",
    "PAGE_BYTES",
    "MIN_PAGE_KEYS",
    "MAX_PAGE_KEYS",
    "ItemLike",
    "PutManyOptions",
    "put_many",
    "RangeSpec",
    "range_pager",
    "ITER_RANGE_DOC",
    "ITER_RANGE_PAGES_DOC",
    "GET_ALL_DOC",
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

ItemLike = Tuple[KeyLike, KeyLike]

RANGE = kv.RANGE
ProgressCallback = Callable[[int], object]


# -- put_many -------------------------------------------------------------------


class PutManyOptions(NamedTuple):
    """A validated ``put_many``: the input and its options (see :func:`put_many`)."""

    items: Union[Iterable[ItemLike], AsyncIterable[ItemLike]]
    batch_ops: int
    max_batch_bytes: int
    concurrency: int
    lease: int
    progress: Optional[ProgressCallback]
    timeout: Optional[float]


def put_many(
    items: Union[Iterable[ItemLike], AsyncIterable[ItemLike]],
    *,
    batch_ops: Optional[int] = None,
    max_batch_bytes: Optional[int] = None,
    concurrency: Optional[int] = None,
    lease: LeaseLike = 0,
    progress: Optional[ProgressCallback] = None,
    timeout: Optional[float] = None,
) -> PutManyOptions:
    """Write many ``(key, value)`` pairs fast: batched Txns, several in flight.

    ``items`` is any iterable of pairs of ``str``/``bytes`` (for the asyncio
    client also an async iterable), read lazily (a generator far larger than
    memory is fine: at most ``concurrency`` batches are in flight plus one
    being filled). Puts are packed into compare-less Txns of at most
    ``batch_ops`` ops (default 128, etcd's ``--max-txn-ops``) and
    ``max_batch_bytes`` request bytes (default 1 MiB, under etcd's 1.5 MiB
    ``--max-request-bytes``); up to ``concurrency`` Txns (default 16) are in
    flight on the client's one channel, each carrying the client's auth token
    and options like any call. A key repeated in the input starts a new batch
    that waits for the one holding the earlier write, so the last write wins.
    ``lease`` attaches every key to a lease; ``progress(n)`` is called on the
    caller's thread (in the event loop) after each batch that extends the
    committed prefix, with the number of items committed so far; ``timeout``
    is each Txn's deadline.

    Returns a :class:`~etcdfast.BulkResult` (keys, batches, first and last
    revision, elapsed seconds).

    Each batch is atomic. If one fails, no new batch is sent, the ones in
    flight are awaited and :class:`~etcdfast.BulkWriteError` is raised:
    every item before its ``.committed`` is committed; ``.cause`` is the
    underlying error; ``.committed_after`` lists later item ranges that
    committed anyway and ``.uncertain`` the ranges whose Txn may or may not
    have been applied (timeout, a connection lost in flight). Resuming with
    the items from ``.committed`` on never loses data; at worst it writes the
    uncertain and committed-after items a second time (puts are idempotent
    in their final state). A bad item (alone over ``max_batch_bytes``:
    :class:`~etcdfast.RequestTooLargeError` naming its index and key; an empty
    key; not a str/bytes pair) or an exception from ``items`` itself ends the
    input there: the items before it are written, then ``BulkWriteError`` is
    raised with that problem as ``.cause`` and ``.committed`` at the bad item
    (unless a batch failed earlier). An exception from ``progress`` stops the
    load the same way.
    """
    if progress is not None and not callable(progress):
        raise TypeError(f"progress must be callable, not {type(progress).__name__}")
    return PutManyOptions(
        items,
        positive("batch_ops", batch_ops, DEFAULT_BATCH_OPS),
        positive("max_batch_bytes", max_batch_bytes, DEFAULT_MAX_BATCH_BYTES),
        positive("concurrency", concurrency, DEFAULT_CONCURRENCY),
        lease_id(lease),
        progress,
        check_timeout(timeout),
    )


# -- range reads ----------------------------------------------------------------


class RangeSpec(NamedTuple):
    """A validated range read in pages (see :func:`range_pager`)."""

    key: bytes
    range_end: bytes
    page_size: Optional[int]
    revision: int
    keys_only: bool
    serializable: bool
    timeout: Optional[float]


def range_pager(
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
) -> RangeSpec:
    """A key, prefix, ``[key, range_end)`` or everything from ``key`` on, read in pages."""
    k, end = _codec.keys.resolve_range(key, range_end, prefix, from_key)
    return RangeSpec(
        k, end,
        None if page_size is None else positive("page_size", page_size, DEFAULT_PAGE_SIZE),
        non_negative("revision", revision), bool(keys_only), bool(serializable),
        check_timeout(timeout),
    )


ITER_RANGE_DOC = """Every key-value of a key, prefix, ``[key, range_end)`` or from ``key``
on, in key order, read page by page in constant memory (``async for`` in the
asyncio client).

``page_size`` fixes the keys per Range call; by default pages are sized to
about 8 MiB of keys and values each (10,000 keys first, then between 100 and
50,000: see ``etcdfast.api.bulk.PAGE_BYTES``), since etcd works harder per key
on small pages of a big range.

All pages are read at one revision: ``revision``, or the one the first page
was served at, so writes made during the iteration are not seen. If that
revision is compacted before the last page, :class:`~etcdfast.CompactedError`
is raised (the revision never changes silently); ``.revision`` of the
returned iterator tells which revision it is (0 before the first page).
Arguments are checked at once; the first call is made on the first
``next()``. ``timeout`` applies to each page.
"""

ITER_RANGE_PAGES_DOC = """Like ``iter_range``, but yields each page (a list of up to
``page_size`` key-values) as it arrives; ``.revision`` is the pinned revision.
"""

GET_ALL_DOC = """``iter_range`` collected into a list (one consistent revision, read in
pages, so no single response hits the message size limit).
"""


# -- small request builders ---------------------------------------------------


def _count(data: bytes, tracker: Optional[Observer]) -> int:
    return int(_codec.wire.decode_range(data, tracker).count)


def _deleted(data: bytes, tracker: Optional[Observer]) -> int:
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
