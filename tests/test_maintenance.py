"""Maintenance calls and snapshots against a real etcd, through both clients.

The module runs its own single-member server: alarms (NOSPACE refuses
writes), leader moves and defragmentation must not disturb other tests.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import subprocess
import tracemalloc
from pathlib import Path
from typing import Any, Iterator, List, Tuple

import pytest
from client_drivers import Driver
from conftest import run

import etcdfast
from etcdfast import (
    Alarm,
    AlarmType,
    DefragmentResult,
    HashKVResult,
    HashResult,
    MoveLeaderResult,
    SnapshotIntegrityError,
    SnapshotResult,
    StatusResult,
    _codec,
    _schema,
)
from etcdfast._core.snapshot import SnapshotWriter, snapshot_revision, verify_snapshot
from etcdfast.errors import (
    BadLeaderTransfereeError,
    InvalidArgumentError,
    NoSpaceError,
    ProtocolError,
    Unavailable,
)
from etcdfast.testing import EtcdServer, etcd_version, find_etcd_binary, free_port


def decode_snapshot_chunk(data: bytes) -> Any:
    return _codec.wire.decode_snapshot_chunk(data)


UNKNOWN_ID = 0x0BAD_0000_0000_0002


@pytest.fixture(scope="module")
def server() -> Iterator[EtcdServer]:
    with EtcdServer(name="maint") as s:
        yield s


@pytest.fixture(params=["sync", "async"])
def cli(request: pytest.FixtureRequest, server: EtcdServer) -> Iterator[Driver]:
    with Driver(request.param, server.endpoint, timeout=10) as driver:
        yield driver


# -- unary calls ------------------------------------------------------------------


def test_status_of_a_single_member(cli: Driver, server: EtcdServer) -> None:
    status = cli.status()
    assert isinstance(status, StatusResult)
    assert status.version == ".".join(map(str, etcd_version(server.binary)))
    assert status.leader == status.header.member_id != 0 and status.is_leader
    assert status.db_size > 0 and 0 < status.db_size_in_use <= status.db_size
    assert status.raft_term >= 1 and 0 < status.raft_applied_index <= status.raft_index
    assert status.errors == [] and status.is_learner is False
    assert f"leader={status.leader:#x}" in repr(status)


def test_defragment(cli: Driver, etcd_prefix: bytes) -> None:
    for i in range(50):
        cli.put(etcd_prefix + b"%03d" % i, b"x" * 2048)
    revision = cli.delete(etcd_prefix, prefix=True).header.revision
    cli.compact(revision, physical=True)
    before = cli.status()
    result = cli.defragment(timeout=30)
    assert isinstance(result, DefragmentResult)
    after = cli.status()
    assert after.db_size <= before.db_size
    assert after.db_size_in_use <= after.db_size
    assert cli.put(etcd_prefix + b"after", b"ok").header.revision > revision  # still serving


def test_alarms_list_activate_disarm(cli: Driver, etcd_prefix: bytes) -> None:
    assert cli.alarms() == []
    assert cli.alarm_disarm() == []  # nothing to clear
    own = cli.status().header.member_id
    try:
        assert cli.alarm_activate(own, AlarmType.NOSPACE) == [Alarm(own, AlarmType.NOSPACE)]
        assert cli.alarms() == [Alarm(own, AlarmType.NOSPACE)]
        assert repr(cli.alarms()[0]) == f"Alarm(member_id={own:#x}, alarm=NOSPACE)"
        assert any("NOSPACE" in error for error in cli.status().errors)
        with pytest.raises(NoSpaceError):
            cli.put(etcd_prefix + b"k", b"refused")
        # A wildcard that matches nothing clears nothing.
        assert cli.alarm_disarm(own, AlarmType.CORRUPT) == []
        assert cli.alarm_disarm(UNKNOWN_ID) == []
        assert cli.alarms() == [Alarm(own, AlarmType.NOSPACE)]
        assert cli.alarm_disarm() == [Alarm(own, AlarmType.NOSPACE)]  # all
        assert cli.alarms() == []
        # And the exact form: one member, one type.
        cli.alarm_activate(own, AlarmType.NOSPACE)
        assert cli.alarm_disarm(own, AlarmType.NOSPACE) == [Alarm(own, AlarmType.NOSPACE)]
    finally:
        cli.alarm_disarm()
    assert cli.alarms() == [] and cli.status().errors == []
    assert cli.put(etcd_prefix + b"k", b"accepted").header.revision > 0
    with pytest.raises(InvalidArgumentError):
        cli.alarm_activate(own, AlarmType.NONE)
    with pytest.raises(InvalidArgumentError):
        cli.alarm_disarm(own, 7)


def test_hash_and_hash_kv(cli: Driver, etcd_prefix: bytes) -> None:
    cli.put(etcd_prefix + b"a", b"1")
    whole = cli.hash()
    assert isinstance(whole, HashResult) and isinstance(whole.hash, int)
    revision = cli.status().header.revision
    first = cli.hash_kv(revision)
    assert isinstance(first, HashKVResult) and first.header.revision >= revision
    assert cli.hash_kv(revision).hash == first.hash  # stable at one revision
    cli.put(etcd_prefix + b"a", b"2")
    current = cli.hash_kv()
    assert current.header.revision == revision + 1 and current.hash != first.hash
    assert cli.hash_kv(revision).hash == first.hash  # the past does not change
    with pytest.raises(InvalidArgumentError):
        cli.hash_kv(-1)


def test_move_leader_to_itself_and_to_nobody(cli: Driver) -> None:
    leader = cli.status().leader
    assert isinstance(cli.move_leader(leader), MoveLeaderResult)
    assert cli.status().leader == leader
    with pytest.raises(BadLeaderTransfereeError):
        cli.move_leader(UNKNOWN_ID)
    with pytest.raises(InvalidArgumentError):
        cli.move_leader(0)


# -- snapshots --------------------------------------------------------------------


def _etcd_tool() -> List[str]:
    """``etcdutl snapshot status`` (or 3.5's deprecated ``etcdctl snapshot status``)."""
    directory = os.path.dirname(find_etcd_binary())
    for tool in ("etcdutl", "etcdctl"):
        path = os.path.join(directory, tool)
        if os.access(path, os.X_OK):
            return [path]
    return []


def test_snapshot_to_file_is_verified(cli: Driver, etcd_prefix: bytes, tmp_path: Path) -> None:
    for i in range(40):
        cli.put(etcd_prefix + b"%02d" % i, os.urandom(1024))
    revision = cli.status().header.revision
    calls: List[Tuple[int, int]] = []
    target = tmp_path / "etcd.db"
    result = cli.snapshot(target, progress=lambda written, remaining: calls.append((written, remaining)))

    assert isinstance(result, SnapshotResult) and result.path == str(target)
    data = target.read_bytes()
    assert result.size == len(data) > 32 and len(data) % 512 == 32  # etcd's "has checksum" rule
    assert hashlib.sha256(data[:-32]).digest() == data[-32:]
    assert result.sha256 == data[-32:].hex()
    assert result.revision == revision
    assert not (tmp_path / "etcd.db.part").exists()
    # One progress call per chunk; byte counts grow to the file size, the
    # server's remaining count falls to 0.
    assert len(calls) >= 2 and calls[-1] == (len(data), 0)
    assert [w for w, _ in calls] == sorted(w for w, _ in calls)
    assert [r for _, r in calls] == sorted((r for _, r in calls), reverse=True)

    assert verify_snapshot(target) == result._replace(version="")

    tool = _etcd_tool()
    if tool:
        out = subprocess.run(tool + ["snapshot", "status", str(target), "-w", "json"],
                             capture_output=True, text=True, timeout=60, check=True).stdout
        status = json.loads(out)
        assert status["revision"] == revision
        assert status["totalSize"] == len(data) - 32


def test_snapshot_streams_in_constant_memory(server: EtcdServer, etcd_prefix: bytes,
                                             tmp_path: Path) -> None:
    with etcdfast.Client(server.endpoint, timeout=30) as client:
        client.put_many((etcd_prefix + b"%05d" % i, os.urandom(1024)) for i in range(3000))
        tracemalloc.start()
        try:
            result = client.snapshot(tmp_path / "big.db")
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        client.delete(etcd_prefix, prefix=True)
    assert result.size > 3_000_000
    assert peak < 1_000_000, f"{peak} bytes of Python memory for a {result.size}-byte snapshot"
    assert verify_snapshot(result.path).sha256 == result.sha256


def test_corrupt_or_truncated_snapshot_is_detected(cli: Driver, tmp_path: Path) -> None:
    good = tmp_path / "good.db"
    result = cli.snapshot(good)
    data = bytearray(good.read_bytes())
    for where in (0, len(data) // 2, len(data) - 33, len(data) - 1):  # content and checksum bytes
        bad = tmp_path / f"flip-{where}.db"
        flipped = bytearray(data)
        flipped[where] ^= 0x01
        bad.write_bytes(bytes(flipped))
        with pytest.raises(SnapshotIntegrityError, match="sha256 mismatch"):
            verify_snapshot(bad)
    short = tmp_path / "short.db"
    short.write_bytes(bytes(data[:-100]))
    with pytest.raises(SnapshotIntegrityError):
        verify_snapshot(short)
    tiny = tmp_path / "tiny.db"
    tiny.write_bytes(b"x" * 32)
    with pytest.raises(SnapshotIntegrityError, match="too short"):
        verify_snapshot(tiny)
    assert verify_snapshot(good).sha256 == result.sha256
    assert issubclass(SnapshotIntegrityError, etcdfast.EtcdError)


def test_failed_snapshot_leaves_no_file(cli: Driver, tmp_path: Path) -> None:
    target = tmp_path / "never.db"

    def stop(written: int, remaining: int) -> None:
        raise RuntimeError("enough")

    with pytest.raises(RuntimeError, match="enough"):
        cli.snapshot(target, progress=stop)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(FileNotFoundError):  # checked before anything is asked of the server
        cli.snapshot(tmp_path / "missing-dir" / "x.db")
    with pytest.raises(ValueError):
        cli.snapshot(target, timeout=0)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_snapshot_from_an_unreachable_server_is_unavailable(kind: str, tmp_path: Path) -> None:
    with Driver(kind, f"127.0.0.1:{free_port()}", timeout=2) as driver:
        with pytest.raises(Unavailable):
            driver.snapshot(tmp_path / "x.db", timeout=2)
    assert list(tmp_path.iterdir()) == []


def test_async_snapshot_awaits_a_coroutine_progress(server: EtcdServer, tmp_path: Path) -> None:
    seen: List[int] = []

    async def progress(written: int, remaining: int) -> None:
        await asyncio.sleep(0)
        seen.append(written)

    async def main() -> SnapshotResult:
        async with etcdfast.AsyncClient(server.endpoint, timeout=10) as client:
            return await client.snapshot(tmp_path / "a.db", progress=progress)

    result = run(main())
    assert seen and seen[-1] == result.size == os.path.getsize(result.path)
    assert verify_snapshot(result.path).sha256 == result.sha256


# -- the writer and decoder, without a server -----------------------------------------


def _chunk(blob: bytes, remaining: int) -> bytes:
    message = _schema.message("etcdserverpb.SnapshotResponse")
    return message(remaining_bytes=remaining, blob=blob).SerializeToString()  # type: ignore[no-any-return]


def _stream(content: bytes, sizes: List[int]) -> List[bytes]:
    """``content`` + its sha256 cut into chunks of the given sizes (then the rest)."""
    whole = content + hashlib.sha256(content).digest()
    chunks, pos = [], 0
    for size in sizes + [len(whole)]:
        piece = whole[pos:pos + size]
        pos += len(piece)
        chunks.append(_chunk(piece, max(len(content) - pos, 0)))
        if pos >= len(whole):
            break
    return chunks


@pytest.mark.parametrize("sizes", [[4096], [1, 2, 3], [31, 1, 32, 33], [4095, 30], [4090, 10, 10, 10, 4]])
def test_writer_checks_the_trailing_sha256_across_any_chunking(tmp_path: Path, sizes: List[int]) -> None:
    content = os.urandom(4096)
    writer = SnapshotWriter(tmp_path / "s.db")
    for raw in _stream(content, sizes):
        writer.write(raw)
    result = writer.finish()
    assert result.size == 4096 + 32 and result.sha256 == hashlib.sha256(content).hexdigest()
    assert result.revision is None  # random bytes are no bbolt database
    assert (tmp_path / "s.db").read_bytes() == content + hashlib.sha256(content).digest()


@pytest.mark.parametrize("damage", ["flip", "short", "announced"])
def test_writer_refuses_a_bad_stream_and_deletes_the_part_file(tmp_path: Path, damage: str) -> None:
    content = os.urandom(2048)
    chunks = _stream(content, [1000])
    if damage == "flip":
        first = bytearray(chunks[0])
        first[-1] ^= 0xFF
        chunks[0] = bytes(first)
    elif damage == "short":
        chunks = chunks[:-1]
    else:
        chunks[-1] = _chunk(decode_snapshot_chunk(chunks[-1]).blob.tobytes(), 5)
    writer = SnapshotWriter(tmp_path / "s.db")
    for raw in chunks:
        writer.write(raw)
    with pytest.raises(SnapshotIntegrityError):
        writer.finish()
    assert list(tmp_path.iterdir()) == []
    writer.abort()  # idempotent


def test_writer_abort_keeps_an_existing_target(tmp_path: Path) -> None:
    target = tmp_path / "s.db"
    target.write_bytes(b"previous snapshot")
    writer = SnapshotWriter(target)
    writer.write(_chunk(b"partial", 100))
    assert (tmp_path / "s.db.part").exists()
    writer.abort()
    assert target.read_bytes() == b"previous snapshot" and not (tmp_path / "s.db.part").exists()


def test_decoder_reads_the_newer_version_field_and_refuses_garbage() -> None:
    # etcd 3.6 added `string version = 4`; our 3.5 schema lacks it.
    raw = _chunk(b"abc", 7) + b"\x22\x053.6.0"
    chunk = decode_snapshot_chunk(raw)
    assert (chunk.remaining_bytes, bytes(chunk.blob), chunk.version) == (7, b"abc", "3.6.0")
    assert decode_snapshot_chunk(b"").remaining_bytes == 0
    for garbage in (b"\x1a\x05ab", b"\x10", b"\x1f"):
        with pytest.raises(ProtocolError):
            decode_snapshot_chunk(garbage)


def test_writer_decodes_with_either_twin(twin: Any, tmp_path: Path) -> None:
    # SnapshotWriter decodes through the active codec twin (looked up per
    # chunk): etcd 3.6's version field and unknown fields are handled by both.
    content = os.urandom(3000)
    chunks = _stream(content, [1000, 1000])
    chunks[0] += b"\x22\x053.6.0\x48\x01"  # version, then an unknown varint field
    writer = SnapshotWriter(tmp_path / "s.db")
    for raw in chunks:
        writer.write(raw)
    result = writer.finish()
    assert (result.size, result.version) == (3000 + 32, "3.6.0")
    assert result.sha256 == hashlib.sha256(content).hexdigest()
    assert decode_snapshot_chunk(chunks[0]).version == "3.6.0"
    bad = SnapshotWriter(tmp_path / "t.db")
    with pytest.raises(ProtocolError):
        bad.write(b"\x1a\x05ab")
    bad.abort()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.db"]


def test_decoding_looks_the_codec_up_at_call_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # decode_snapshot_chunk and SnapshotWriter go through _codec.wire at call
    # time, so a switched twin (the twin fixture) is the one used.
    from types import SimpleNamespace

    from etcdfast import _codec

    calls = []

    def decode(data: bytes) -> Any:
        calls.append(data)
        return _codec.load("pure")[1].decode_snapshot_chunk(data)

    monkeypatch.setattr(_codec, "wire", SimpleNamespace(decode_snapshot_chunk=decode))
    writer = SnapshotWriter(tmp_path / "s.db")
    writer.write(_chunk(b"abc", 5))
    writer.abort()
    assert calls == [_chunk(b"abc", 5)]


def test_snapshot_revision_of_a_non_database_is_none(tmp_path: Path) -> None:
    path = tmp_path / "junk.db"
    path.write_bytes(os.urandom(10000))
    assert snapshot_revision(path) is None
    assert snapshot_revision(tmp_path / "absent.db") is None


def test_methods_are_on_both_clients() -> None:
    names = ("status", "defragment", "alarms", "alarm_activate", "alarm_disarm", "hash",
             "hash_kv", "move_leader", "snapshot")
    for cls in (etcdfast.Client, etcdfast.AsyncClient):
        for name in names:
            assert getattr(cls, name).__doc__, (cls, name)

