"""Packing ``put_many`` items into Txn batches (pure-Python twin of ``_fast/batch.pyx``).

:meth:`BatchPacker.add` runs once for every item of a bulk load, so it is
the client's per-key cost of ``put_many`` besides grpcio's own. The Cython
twin compiles only that per-item path; :class:`Batch` and the errors for bad
items are defined here once and the Cython twin imports them, so the two
cannot disagree on a batch's shape or an error's message.
"""

from __future__ import annotations

from collections.abc import Sized
from operator import index as as_index
from typing import Any, Dict, Iterator, List, Optional, Tuple

from ..errors import EmptyKeyError, InvalidArgumentError, RequestTooLargeError
from .keys import to_bytes

__all__ = ["Batch", "BatchPacker"]


def _varint_len(n: int) -> int:
    if n < 0x80:
        return 1
    if n < 0x4000:
        return 2
    return (n.bit_length() + 6) // 7


def _item_size(key_len: int, value_len: int, lease_size: int) -> int:
    # TxnRequest.success -> RequestOp.request_put -> PutRequest{key, value, lease}:
    # a tag byte and a varint length per level; an empty key or value is a
    # proto3 default and not written. Inlined for the common sizes: this runs
    # once per item.
    put = lease_size
    if key_len:
        put += key_len + (2 if key_len < 0x80 else 3 if key_len < 0x4000 else 1 + _varint_len(key_len))
    if value_len:
        put += value_len + (
            2 if value_len < 0x80 else 3 if value_len < 0x4000 else 1 + _varint_len(value_len)
        )
    op = put + (2 if put < 0x80 else 3 if put < 0x4000 else 1 + _varint_len(put))
    return op + (2 if op < 0x80 else 3 if op < 0x4000 else 1 + _varint_len(op))


class Batch:
    """One Txn of puts: items ``[start, stop)`` of the input, encoded.

    ``after`` is the ``seq`` of an earlier batch that writes one of the same
    keys (-1: none); it must finish before this one is sent, so that the later
    value wins.
    """

    __slots__ = ("seq", "start", "stop", "payload", "items", "after")

    def __init__(
        self, seq: int, start: int, stop: int, payload: bytes,
        items: List[Tuple[bytes, bytes]], after: int,
    ) -> None:
        self.seq = seq
        self.start = start
        self.stop = stop
        self.payload = payload
        self.items: Optional[List[Tuple[bytes, bytes]]] = items
        self.after = after

    def __repr__(self) -> str:
        return f"<Batch {self.seq} items [{self.start}, {self.stop}) {len(self.payload)} bytes>"


class BatchPacker:
    """Packs ``(key, value)`` items into batches (:class:`Batch`) of at most
    ``batch_ops`` puts and ``max_batch_bytes`` request bytes.

    :meth:`add` returns the previous batch when the new item does not fit in
    it (the item then starts the next one), so one batch is being filled while
    the others are in flight. A key already in the batch being filled also
    starts a new one (etcd refuses a Txn that writes a key twice); a key held
    by an unfinished earlier batch makes the new batch wait for that one
    (:attr:`Batch.after`). The key index holds only keys of unfinished batches:
    :meth:`release` drops a finished batch's keys.

    ``batch_ops`` and ``max_batch_bytes`` must be >= 1 and ``lease`` >= 0,
    all under 2**63 (the Cython twin keeps them in C integers).
    """

    __slots__ = (
        "_batch_ops", "_max_batch_bytes", "_lease", "_lease_size", "_keys", "_items", "_size",
        "_after", "_seq", "_start", "_index",
    )

    def __init__(self, batch_ops: int, max_batch_bytes: int, lease: int) -> None:
        self._batch_ops = _in_range("batch_ops", batch_ops, 1)
        self._max_batch_bytes = _in_range("max_batch_bytes", max_batch_bytes, 1)
        self._lease = _in_range("lease ID", lease, 0)
        self._lease_size = 1 + _varint_len(self._lease) if self._lease else 0
        #: key -> seq of the unfinished batch that writes it last.
        self._keys: Dict[bytes, int] = {}
        self._items: List[Tuple[bytes, bytes]] = []
        self._size = 0
        self._after = -1
        self._seq = 0
        self._start = 0
        self._index = 0

    @property
    def batch_ops(self) -> int:
        return self._batch_ops

    @property
    def max_batch_bytes(self) -> int:
        return self._max_batch_bytes

    @property
    def lease(self) -> int:
        return self._lease

    @property
    def index(self) -> int:
        """Items accepted so far (the index of the next item)."""
        return self._index

    def item_size(self, key: bytes, value: bytes) -> int:
        """Bytes one put adds to the TxnRequest (exactly what ``encode_put_txn`` writes)."""
        return _item_size(len(key), len(value), self._lease_size)

    def add(self, item: Any) -> Optional[Batch]:
        """Take the next item; return a finished batch if one is ready.

        Raises ``TypeError``/``ValueError`` (not a pair of str/bytes),
        :class:`EmptyKeyError` or :class:`RequestTooLargeError` for a bad item,
        which is then not taken.
        """
        index = self._index
        try:
            key, value = item
        except (TypeError, ValueError) as exc:
            raise _not_a_pair(index, item, exc) from exc
        k = key if key.__class__ is bytes else bytes(to_bytes(key))
        v = value if value.__class__ is bytes else bytes(to_bytes(value))
        n = _item_size(len(k), len(v), self._lease_size)
        if not k or n > self._max_batch_bytes:
            raise _rejected(index, k, n, self._max_batch_bytes)
        keys = self._keys
        owner = keys.get(k)
        batch = None
        if (
            owner == self._seq
            or len(self._items) >= self._batch_ops
            or self._size + n > self._max_batch_bytes
        ):
            batch = self._cut()
        if owner is not None and owner != self._seq and owner > self._after:
            self._after = owner
        keys[k] = self._seq
        self._items.append((k, v))
        self._size += n
        self._index = index + 1
        return batch

    def fill(self, source: Iterator[Any]) -> Optional[Batch]:
        """:meth:`add` items from ``source`` until a batch is ready; ``None`` when it runs out.

        The loop of ``put_many``: the compiled twin runs it in C, without a
        Python call per item. An exception from ``source`` or a bad item
        propagates; the items before it are taken, the failing one is not.
        """
        add = self.add
        for item in source:
            batch = add(item)
            if batch is not None:
                return batch
        return None

    def flush(self) -> Optional[Batch]:
        """The batch being filled, if it holds anything."""
        return self._cut() if self._items else None

    def _cut(self) -> Batch:
        items = self._items
        from .wire import encode_put_txn  # here: the fast twin imports this module, not _pure.wire

        batch = Batch(self._seq, self._start, self._index, encode_put_txn(items, self._lease), items,
                      self._after)
        self._seq += 1
        self._start = self._index
        self._items = []
        self._size = 0
        self._after = -1
        return batch

    def release(self, batch: Batch) -> None:
        """Forget the keys of a finished (or abandoned) batch."""
        items, batch.items = batch.items, None
        if items:
            keys, seq = self._keys, batch.seq
            for k, _ in items:
                if keys.get(k) == seq:
                    del keys[k]


# -- shared with the Cython twin: the cold paths, so both say the same thing ---


def _in_range(name: str, value: int, low: int) -> int:
    # operator.index: a float or a str is a TypeError, as a C integer
    # conversion in the Cython twin would be.
    value = as_index(value)
    if not low <= value < 1 << 63:
        raise InvalidArgumentError(f"{name} must be >= {low} and < 2**63, got {value}")
    return value


def _not_a_pair(index: int, item: object, error: Exception) -> Exception:
    # The interpreter's own unpacking messages differ between CPython
    # versions and from Cython's, so both twins replace them with this one
    # (the original stays chained as __cause__). The type is kept: TypeError
    # for something that is not iterable, ValueError for a wrong length.
    what = type(item).__name__
    if isinstance(error, TypeError):
        return TypeError(f"item {index}: expected a (key, value) pair, got {what}")
    if isinstance(item, Sized):
        what += f" of length {len(item)}"
    return ValueError(f"item {index}: expected a (key, value) pair, got {what}")


def _rejected(index: int, key: bytes, size: int, limit: int) -> Exception:
    if not key:
        return EmptyKeyError(f"item {index}: the key is empty")
    return RequestTooLargeError(
        f"item {index} (key {_short(key)}) needs {size} request bytes, more than "
        f"max_batch_bytes={limit}; raise max_batch_bytes (up to a few "
        "KiB under the server's --max-request-bytes, 1.5 MiB by default) or skip it"
    )


def _short(key: bytes, limit: int = 200) -> str:
    # Keep both ends: long keys usually differ at the end.
    text = repr(key)
    half = (limit - 3) // 2
    return text if len(text) <= limit else text[:half] + "..." + text[-half:]
