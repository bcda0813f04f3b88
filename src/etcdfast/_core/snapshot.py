"""Saving a snapshot stream to disk safely, and checking saved snapshots.

:class:`SnapshotWriter` holds everything about a snapshot that is not IO-driver
specific -- decoding chunks (with the codec), writing them to
``path + ".part"``, hashing, progress, the final checksum check, fsync and
rename -- so both clients only iterate the stream. Memory use is one chunk
(etcd sends 32 KiB at a time) whatever the database size.

Integrity: after the database bytes, etcd sends the SHA-256 of those bytes
as a last 32-byte chunk (``maintenanceServer.Snapshot`` in etcd's
``v3rpc/maintenance.go``), and ``etcdutl snapshot restore`` checks the last
32 bytes of the file against the SHA-256 of everything before them. The file
is saved exactly as streamed, checksum included, so etcdutl accepts it; the
same check runs here before the file is renamed into place, and
:func:`verify_snapshot` repeats it on any saved file.
"""

from __future__ import annotations

import os
import struct
from typing import Any, BinaryIO, Callable, Optional, Union

from .. import _codec
from ..errors import SnapshotIntegrityError
from ..types import SnapshotResult

__all__ = ["SnapshotWriter", "verify_snapshot", "snapshot_revision", "CHECKSUM_SIZE"]

#: Size of the SHA-256 checksum etcd appends to a snapshot.
CHECKSUM_SIZE = 32

ProgressCallback = Callable[[int, int], Any]


class SnapshotWriter:
    """Writes a snapshot stream to ``path`` safely; shared by both clients.

    Chunks go to ``path + ".part"`` (created at once, mode 0600, so a bad
    path fails before anything is asked of the server). :meth:`write` takes
    each raw ``SnapshotResponse``; :meth:`finish` checks the checksum, fsyncs,
    renames the file into place and returns a :class:`SnapshotResult`;
    :meth:`abort` deletes the part file. Only the last 32 bytes seen are
    kept in memory besides the current chunk.
    """

    def __init__(self, path: Union[str, "os.PathLike[str]"], progress: Optional[ProgressCallback] = None):
        self.path = os.fspath(path)
        self.part_path = self.path + ".part"
        self._progress = progress
        fd = os.open(self.part_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        self._file: Optional[BinaryIO] = os.fdopen(fd, "wb")
        # hashlib here, not at import: loading OpenSSL's digests costs ~5 ms,
        # and every client imports this module, most of them never to save a snapshot.
        import hashlib

        self._sha = hashlib.sha256()
        self._tail = b""  # the last CHECKSUM_SIZE bytes: not hashed (yet)
        #: Bytes written so far, and what the server said was still to come.
        self.size = 0
        self.remaining_bytes: Optional[int] = None
        self.version = ""
        self.chunks = 0

    def write(self, raw: bytes) -> Any:
        """Write one raw ``SnapshotResponse``; returns what ``progress`` returned
        (the async client awaits it if it is awaitable)."""
        if self._file is None:
            raise ValueError("the snapshot writer is closed")
        chunk = _codec.wire.decode_snapshot_chunk(raw)
        blob = chunk.blob
        if blob:
            self._file.write(blob)
            self._hash_all_but_tail(blob)
            self.size += len(blob)
        self.remaining_bytes = chunk.remaining_bytes
        self.version = chunk.version or self.version
        self.chunks += 1
        if self._progress is not None:
            return self._progress(self.size, chunk.remaining_bytes)
        return None

    def _hash_all_but_tail(self, blob: memoryview) -> None:
        if len(blob) >= CHECKSUM_SIZE:
            self._sha.update(self._tail)
            self._sha.update(blob[:-CHECKSUM_SIZE])
            self._tail = bytes(blob[-CHECKSUM_SIZE:])
        else:
            joined = self._tail + bytes(blob)
            cut = max(len(joined) - CHECKSUM_SIZE, 0)
            self._sha.update(joined[:cut])
            self._tail = joined[cut:]

    def finish(self) -> SnapshotResult:
        """Verify the checksum, fsync, rename to ``path``; the part file is
        deleted on any failure (SnapshotIntegrityError on a bad checksum)."""
        if self._file is None:
            raise ValueError("the snapshot writer is closed")
        try:
            if self.size <= CHECKSUM_SIZE:
                raise SnapshotIntegrityError(
                    f"snapshot stream ended after {self.size} bytes, too short to hold "
                    "a database and its sha256 checksum"
                )
            if self.remaining_bytes:
                raise SnapshotIntegrityError(
                    f"snapshot stream ended with {self.remaining_bytes} bytes still announced"
                )
            digest = self._sha.digest()
            if digest != self._tail:
                raise SnapshotIntegrityError(
                    f"snapshot sha256 mismatch: the stream's checksum is {self._tail.hex()}, "
                    f"its {self.size - CHECKSUM_SIZE} database bytes hash to {digest.hex()}"
                )
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            self._file = None
            os.replace(self.part_path, self.path)
        except BaseException:
            self.abort()
            raise
        _fsync_directory(os.path.dirname(os.path.abspath(self.path)))
        return SnapshotResult(self.path, self.size, digest.hex(), snapshot_revision(self.path), self.version)

    def abort(self) -> None:
        """Close and delete the part file (idempotent; ``path`` is never touched)."""
        file, self._file = self._file, None
        if file is not None:
            file.close()
        try:
            os.unlink(self.part_path)
        except FileNotFoundError:
            pass

    def __repr__(self) -> str:
        state = "open" if self._file is not None else "closed"
        return f"<SnapshotWriter {self.part_path!r} {self.size} bytes {state}>"


def _fsync_directory(directory: str) -> None:
    # Make the rename itself durable. Not every platform can open a directory.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def verify_snapshot(path: Union[str, "os.PathLike[str]"], *, block_size: int = 1 << 20) -> SnapshotResult:
    """Check a saved snapshot: its last 32 bytes must be the SHA-256 of the rest.

    This is the check ``etcdutl snapshot restore`` makes. Reads the file in
    ``block_size`` pieces (constant memory). Returns a :class:`SnapshotResult`
    (``version`` is empty: the file does not record it); raises
    :class:`~etcdfast.errors.SnapshotIntegrityError` if the file is too short
    or the checksum does not match.
    """
    path = os.fspath(path)
    size = os.path.getsize(path)
    if size <= CHECKSUM_SIZE:
        raise SnapshotIntegrityError(f"{path}: {size} bytes is too short for a snapshot with a checksum")
    import hashlib  # see SnapshotWriter

    sha = hashlib.sha256()
    left = size - CHECKSUM_SIZE
    with open(path, "rb") as f:
        while left:
            block = f.read(min(block_size, left))
            if not block:
                raise SnapshotIntegrityError(f"{path}: the file shrank while being read")
            sha.update(block)
            left -= len(block)
        expected = f.read(CHECKSUM_SIZE)
    digest = sha.digest()
    if digest != expected:
        raise SnapshotIntegrityError(
            f"{path}: sha256 mismatch: the file's checksum is {expected.hex()}, "
            f"its {size - CHECKSUM_SIZE} database bytes hash to {digest.hex()}"
        )
    return SnapshotResult(path, size, digest.hex(), snapshot_revision(path), "")


# -- reading the revision back from the saved bbolt database -------------------
# etcd's backend is a bbolt file. The newest revision is the last key of its
# "key" bucket (8-byte big-endian main revision, "_", sub revision), which is
# what `etcdutl snapshot status` reports. Finding it needs only the meta page
# and one root-to-leaf walk, so this reads a handful of pages.

_BOLT_MAGIC = 0xED0CDAED
_BRANCH, _LEAF = 0x01, 0x02
_BUCKET_LEAF = 0x01
_PAGE_HEADER = struct.Struct("<QHHI")  # id, flags, count, overflow
_ELEMENT = struct.Struct("<IIII")  # branch: pos, ksize, pgid(2x u32); leaf: flags, pos, ksize, vsize
_META = struct.Struct("<IIIIQQQQQQ")  # magic version page_size flags root seq freelist pgid txid checksum


def _fnv64a(data: bytes) -> int:
    h = 0xCBF29CE484222325
    for byte in data:
        h = ((h ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


class _Bolt:
    def __init__(self, f: BinaryIO) -> None:
        self.f = f
        best: Optional["tuple[int, int, int]"] = None  # txid, page size, root
        # Two meta pages (0 and 1); the valid one with the higher txid wins.
        # The second starts one page in, and the first tells the page size.
        second = 4096
        for offset in (0, -1):
            f.seek((second if offset < 0 else 0) + _PAGE_HEADER.size)
            raw = f.read(_META.size)
            if len(raw) < _META.size:
                continue
            magic, version, page_size, _, root, _, _, _, txid, checksum = _META.unpack(raw)
            if (magic != _BOLT_MAGIC or version != 2 or _fnv64a(raw[:-8]) != checksum
                    or page_size < 512 or page_size & (page_size - 1)):
                continue
            if offset == 0:
                second = page_size
            if best is None or txid > best[0]:
                best = (txid, page_size, root)
        if best is None:
            raise ValueError("not a bbolt database")
        _, self.page_size, self.root = best

    def page(self, pgid: int) -> bytes:
        self.f.seek(pgid * self.page_size)
        head = self.f.read(self.page_size)
        _, _, _, overflow = _PAGE_HEADER.unpack_from(head)
        if overflow:
            head += self.f.read(overflow * self.page_size)
        return head

    @staticmethod
    def elements(page: bytes) -> "list[tuple[int, bytes, Any]]":
        """(flags, key, value-or-child-pgid) of every element of a branch or leaf page."""
        _, flags, count, _ = _PAGE_HEADER.unpack_from(page)
        out: "list[tuple[int, bytes, Any]]" = []
        for i in range(count):
            at = _PAGE_HEADER.size + i * _ELEMENT.size
            a, b, c, d = _ELEMENT.unpack_from(page, at)
            if flags & _BRANCH:
                pos, ksize, child = a, b, c | (d << 32)
                out.append((_BRANCH, page[at + pos:at + pos + ksize], child))
            elif flags & _LEAF:
                eflags, pos, ksize, vsize = a, b, c, d
                key = page[at + pos:at + pos + ksize]
                out.append((eflags, key, page[at + pos + ksize:at + pos + ksize + vsize]))
            else:
                raise ValueError(f"unexpected page flags {flags:#x}")
        return out

    def bucket(self, root_page: bytes, name: bytes) -> Optional[bytes]:
        """The root page (or inline page) of a top-level bucket, or None."""
        page = root_page
        for _ in range(64):
            _, flags, _, _ = _PAGE_HEADER.unpack_from(page)
            items = self.elements(page)
            if flags & _BRANCH:
                child = None
                for _, key, pgid in items:
                    if key <= name:
                        child = pgid
                if child is None:
                    return None
                page = self.page(child)
                continue
            for eflags, key, value in items:
                if key == name and eflags & _BUCKET_LEAF:
                    broot = struct.unpack_from("<Q", value)[0]
                    return value[16:] if broot == 0 else self.page(broot)
            return None
        raise ValueError("bbolt tree too deep")

    def last_key(self, page: bytes) -> Optional[bytes]:
        for _ in range(64):
            _, flags, count, _ = _PAGE_HEADER.unpack_from(page)
            if count == 0:
                return None
            items = self.elements(page)
            if flags & _BRANCH:
                page = self.page(items[-1][2])
                continue
            return bytes(items[-1][1])
        raise ValueError("bbolt tree too deep")


def snapshot_revision(path: Union[str, "os.PathLike[str]"]) -> Optional[int]:
    """The newest store revision in a snapshot (or etcd data) file, as
    ``etcdutl snapshot status`` reports it; ``None`` if the file holds no key
    or cannot be read as a bbolt database."""
    try:
        with open(os.fspath(path), "rb") as f:
            bolt = _Bolt(f)
            keys = bolt.bucket(bolt.page(bolt.root), b"key")
            last = bolt.last_key(keys) if keys is not None else None
    except (OSError, ValueError, struct.error, IndexError):
        return None
    if last is None or len(last) < 8:
        return None
    return int.from_bytes(last[:8], "big")
