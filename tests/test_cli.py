"""The ``etcdfast`` command line, end to end against a real etcd.

Most verbs run in-process through ``cli.main(argv)`` (fast); a representative
set runs as ``python -m etcdfast`` in a subprocess, where stdout and stderr
are pipes (so no progress bar may appear) and signals are real.
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from typing import Any, Dict, List, NamedTuple, Optional

import pytest

import etcdfast
from etcdfast import cli
from etcdfast._progress import ProgressBar, format_duration
from etcdfast.cli import formats
from etcdfast.cli._context import parse_duration, parse_go_duration
from etcdfast.cli._flags import ArgError
from etcdfast.cli.bench import percentile
from etcdfast.cli.cluster import go_duration
from etcdfast.cli.txn import argify, go_unquote, parse_compare
from etcdfast.testing import EtcdServer, find_etcd_binary


class Result(NamedTuple):
    code: int
    out: bytes
    err: str

    @property
    def text(self) -> str:
        return self.out.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.out)


@pytest.fixture(autouse=True)
def _no_etcdctl_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("ETCDCTL_"):
            monkeypatch.delenv(name)


@pytest.fixture()
def client(etcd_server: EtcdServer):
    with etcdfast.Client(etcd_server.endpoint, timeout=10) as c:
        yield c


class _Stdin(io.TextIOWrapper):
    def isatty(self) -> bool:
        return False


@pytest.fixture()
def run(etcd_server: EtcdServer, capsysbinary: pytest.CaptureFixture[bytes]):
    """Run the CLI in-process against the session's etcd: ``run("get", "k")``."""

    def run(*args: str, stdin: bytes = b"", endpoint: Optional[str] = None,
            raw_stdin: Optional[io.TextIOWrapper] = None) -> Result:
        argv = ["--endpoints", endpoint or etcd_server.endpoint, *args]
        fake = raw_stdin if raw_stdin is not None else _Stdin(io.BytesIO(stdin), encoding="utf-8")
        code = cli.main(argv, stdin=fake)
        out, err = capsysbinary.readouterr()
        return Result(code, out, client_logs_removed(err.decode("utf-8", "replace")))

    return run


def client_logs_removed(err: str) -> str:
    """stderr without the client's JSON log lines (etcdctl prints them too:
    see test_failed_calls_are_logged_as_etcdctl_does)."""
    return "".join(line for line in err.splitlines(keepends=True) if not line.startswith('{"level"'))


def _env() -> Dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ETCDCTL_")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def sub(*args: str, stdin: bytes = b"", timeout: float = 120) -> subprocess.CompletedProcess[bytes]:
    """``python -m etcdfast ARGS`` with pipes for stdin, stdout and stderr."""
    return subprocess.run([sys.executable, "-m", "etcdfast", *args], input=stdin,
                          capture_output=True, timeout=timeout, env=_env())


def etcdctl_path() -> Optional[str]:
    path = os.path.join(os.path.dirname(find_etcd_binary()), "etcdctl")
    return path if os.access(path, os.X_OK) else None


def etcdctl(endpoint: str, *args: str, stdin: bytes = b"") -> bytes:
    path = etcdctl_path()
    assert path is not None
    done = subprocess.run([path, "--endpoints", endpoint, *args], input=stdin, capture_output=True,
                          timeout=60, env=_env(), check=True)
    return done.stdout


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


# Keys and values no text format can carry without care.
NASTY = [
    b"plain",
    b"",
    b"\x00",
    b"\xff\xfe\x00\x01",
    bytes(range(256)),
    "ünïcödé ✓".encode(),
    b"a,b;\"quoted\"\n\r\nline",
    b" leading and trailing ",
    b"\xed\xa0\x80",  # an encoded surrogate: not valid UTF-8
    b'{"key": "x"}',
    b"\\x00 not an escape",
]


def nasty_items(prefix: bytes) -> List[tuple]:
    items = []
    for i, data in enumerate(NASTY):
        items.append((prefix + b"k%02d/" % i + data, data))
        items.append((prefix + b"v%02d" % i, data * 3))
    return items


# -- get / put / del ------------------------------------------------------------


def test_put_and_get_simple(run, etcd_prefix):
    key = etcd_prefix.decode()
    assert run("put", key + "a", "1") == (0, b"OK\n", "")
    assert run("put", key + "b", "two words").out == b"OK\n"
    assert run("get", key + "a").out == f"{key}a\n1\n".encode()
    assert run("get", key, "--prefix").out == f"{key}a\n1\n{key}b\ntwo words\n".encode()
    assert run("get", key, "--prefix", "--keys-only").out == f"{key}a\n\n{key}b\n\n".encode()  # as etcdctl
    assert run("get", key, "--prefix", "--print-value-only").out == b"1\ntwo words\n"
    assert run("get", key, "--prefix", "--count-only").out == b"2\n"
    assert run("get", key + "a", "--hex").out == (
        "".join(f"\\x{b:02x}" for b in f"{key}a".encode()) + "\n\\x31\n").encode()
    assert run("get", key + "missing") == (0, b"", "")
    # Global options may also follow the verb.
    assert run("get", key + "a", "-w", "json").json()["count"] == 1


def test_put_value_from_stdin_is_binary_safe(run, client, etcd_prefix):
    key = (etcd_prefix + b"stdin").decode()
    value = bytes(range(256)) + b"\n"
    assert run("put", key, stdin=value).code == 0
    assert client.get_value(key) == value
    assert run("get", key, "--print-value-only").out == value + b"\n"
    empty = run("put", key + "2")
    assert empty.code == 128 and "put command needs 1 argument" in empty.err


def test_put_options(run, client, etcd_prefix):
    key = (etcd_prefix + b"k").decode()
    run("put", key, "v1")
    result = run("put", key, "v2", "--prev-kv")
    assert result.out == f"OK\n{key}\nv1\n".encode()
    lease = client.grant(60)
    assert run("put", key, "--ignore-value", "--lease", f"{lease.id:x}").code == 0
    kv = client.get(key).kvs[0]
    assert (kv.value, kv.lease) == (b"v2", lease.id)
    assert run("put", key, "v3", "--ignore-lease").code == 0
    kv = client.get(key).kvs[0]
    assert (kv.value, kv.lease) == (b"v3", lease.id)
    bad = run("put", key, "v", "--ignore-value")
    assert bad.code == 128 and "ignore-value" in bad.err
    bad = run("put", key, "v", "--lease", "xyz")
    assert bad.code == 128 and "lease" in bad.err
    # A value starting with '-' after '--', as with etcdctl.
    assert run("put", key, "--", "-dash").code == 0
    assert client.get_value(key) == b"-dash"
    client.revoke(lease.id)


def test_get_options(run, client, etcd_prefix):
    p = etcd_prefix.decode()
    first = client.put(p + "a", "1").header.revision
    client.put(p + "b", "22")
    client.put(p + "c", "3")
    client.put(p + "a", "4")
    assert run("get", p, "--prefix", "--limit", "2", "--keys-only").out == f"{p}a\n\n{p}b\n\n".encode()
    assert run("get", p + "a", "--rev", str(first)).out == f"{p}a\n1\n".encode()
    assert run("get", p, "--prefix", "--order", "descend", "--keys-only").out == \
        f"{p}c\n\n{p}b\n\n{p}a\n\n".encode()
    by_mod = run("get", p, "--prefix", "--sort-by", "MODIFY", "--print-value-only").out
    assert by_mod == b"22\n3\n4\n"
    assert run("get", p + "b", p + "c", "--keys-only").out == f"{p}b\n\n".encode()  # [b, c)
    assert run("get", p + "b", "--from-key", "--keys-only", "--limit", "2").out == \
        f"{p}b\n\n{p}c\n\n".encode()
    assert run("get", p, "--prefix", "--consistency", "s", "--count-only").out == b"3\n"
    table = run("get", p + "b", "-w", "table").text
    assert " KEY " in table and f"| {p}b |" in table and re.search(r"\|\s+22 \|", table)
    bad = run("get", p, p + "z", "--prefix")
    assert bad.code == 128 and "too many arguments" in bad.err
    assert run("get", p, "--keys-only", "--count-only").code == 128


def test_del(run, client, etcd_prefix):
    p = etcd_prefix.decode()
    for name in "abcd":
        client.put(p + name, name.upper())
    assert run("del", p + "a").out == b"1\n"
    assert run("del", p + "a").out == b"0\n"
    assert run("del", p + "b", "--prev-kv").out == f"1\n{p}b\nB\n".encode()
    assert run("del", p + "c", p + "e").out == b"2\n"  # [c, e)
    client.put(p + "x/1", "1")
    client.put(p + "x/2", "2")
    result = run("del", p + "x/", "--prefix", "-w", "json").json()
    assert result["deleted"] == 2 and result["header"]["revision"] == client.get("x").header.revision


def test_compact(run, client, etcd_prefix):
    key = (etcd_prefix + b"c").decode()
    old = client.put(key, "1").header.revision
    new = client.put(key, "2").header.revision
    assert run("compact", str(new)).out == f"compacted revision {new}\n".encode()
    gone = run("get", key, "--rev", str(old))
    assert gone.code == 1 and "compacted" in gone.err
    assert run("compact", "0").code == 1  # refused by the client (etcdctl sends it: a no-op)
    assert run("compaction", "x").code == 1 and "invalid syntax" in run("compaction", "x").err


# -- JSON output ----------------------------------------------------------------


def test_get_json_matches_the_clients_view(run, client, etcd_prefix):
    lease = client.grant(60)
    items = nasty_items(etcd_prefix)
    client.put_many(items[:8])
    client.put(etcd_prefix + b"leased", "x", lease=lease.id)
    client.put(etcd_prefix + b"v00", "again")  # version 2
    printed = run("get", etcd_prefix.decode(), "--prefix", "-w", "json").json()
    expected = client.get(etcd_prefix, prefix=True)
    assert printed["header"] == expected.header._asdict()
    assert printed["count"] == expected.count == len(printed["kvs"])
    assert "more" not in printed
    for shown, kv in zip(printed["kvs"], expected.kvs):
        assert base64.b64decode(shown["key"]) == kv.key
        assert base64.b64decode(shown.get("value", "")) == kv.value
        for field in ("create_revision", "mod_revision", "version", "lease"):
            assert shown.get(field, 0) == getattr(kv, field)
    limited = run("get", etcd_prefix.decode(), "--prefix", "--limit", "1", "-w", "json").json()
    assert limited["more"] is True and len(limited["kvs"]) == 1 and limited["count"] == expected.count
    missing = run("get", (etcd_prefix + b"nothing").decode(), "-w", "json").json()
    assert set(missing) == {"header"}
    client.revoke(lease.id)


@pytest.mark.skipif(etcdctl_path() is None, reason="no etcdctl next to the etcd binary")
def test_get_json_is_etcdctls(run, client, etcd_server, etcd_prefix):
    lease = client.grant(60)
    client.put_many(nasty_items(etcd_prefix))
    client.put(etcd_prefix + b"leased", b"", lease=lease.id)
    p = etcd_prefix.decode()
    for args in (["--prefix", p], ["--prefix", p, "--limit", "3"], ["--prefix", p, "--keys-only"],
                 [p + "missing"], ["--prefix", p, "--order", "DESCEND", "--sort-by", "VALUE"]):
        ours = run("get", *args, "-w", "json").json()
        theirs = json.loads(etcdctl(etcd_server.endpoint, "get", *args, "-w", "json"))
        # The revision may move between the two calls; nothing else may differ.
        for doc in (ours, theirs):
            doc["header"].pop("revision")
        assert ours == theirs, args
    # And the simple output, byte for byte (values only: etcdctl prints an
    # empty line per key for --keys-only, which etcdfast does not).
    assert run("get", "--prefix", p).out == etcdctl(etcd_server.endpoint, "get", "--prefix", p)
    client.revoke(lease.id)


# -- txn --------------------------------------------------------------------------


def test_txn_success_and_failure(run, client, etcd_prefix):
    p = etcd_prefix.decode()
    rev = client.put(p + "k", "v").header.revision
    script = (f'value("{p}k") = "v"\nmod("{p}k") = "{rev}"\nversion("{p}k") > "0"\n'
              f'create("{p}k") < "{rev + 1}"\n\n'
              f'put {p}new "hello world"\nget {p}k\n\nput {p}new lost\n\n')
    result = run("txn", stdin=script.encode())
    assert result.code == 0, result.err
    assert result.out == f"SUCCESS\n\nOK\n\n{p}k\nv\n".encode()
    assert client.get_value(p + "new") == b"hello world"
    script = f'value("{p}k") != "v"\n\nput {p}x 1\n\ndel {p}new --prev-kv\nget --prefix {p} --count-only\n'
    result = run("txn", "-i", stdin=script.encode())
    assert result.out == f"FAILURE\n\n1\n{p}new\nhello world\n\n1\n".encode()
    assert client.get_value(p + "x") is None


def test_txn_json_quoting_and_errors(run, client, etcd_prefix):
    p = etcd_prefix.decode()
    script = f'\n"put" "{p}a\\x00b" \'{p} literal\'\n\n'
    # No compares: the success branch runs.
    result = run("txn", "-w", "json", stdin=script.encode())
    assert result.code == 0, result.err
    doc = result.json()
    assert doc["succeeded"] is True and "response_put" in doc["responses"][0]["Response"]
    assert client.get_value(p.encode() + b"a\x00b") == f"{p} literal".encode()
    lease = client.grant(60)
    client.put(p + "l", "x", lease=lease.id)
    result = run("txn", stdin=f'lease("{p}l") = "{lease.id:x}"\n\nget {p}l\n\n'.encode())
    assert result.out.startswith(b"SUCCESS")
    client.revoke(lease.id)
    for script, line in ((f'value("{p}a") = "1"\nbogus("{p}a") = "1"\n\n', 2),
                         (f'value("{p}a") = "1"\n\nput {p}a\n\n', 3),
                         (f'\n\nfrobnicate {p}a\n', 3),
                         (f'mod("{p}a") > "x"\n', 1)):
        bad = run("txn", stdin=script.encode())
        assert bad.code == 3 and f"line {line}" in bad.err, (script, bad)  # etcdctl's ExitInvalidInput


def test_txn_parsing_units():
    assert go_unquote(r'"a\x00\n\u00fc\101"') == b"a\x00\n\xc3\xbcA"
    assert go_unquote("`raw \\n`") == b"raw \\n"
    with pytest.raises(ValueError):
        go_unquote('"bad \\q"')
    assert argify('put "a b" \'c d\' e') == ["put", "a b", "c d", "e"]
    assert "version" in repr(parse_compare('ver("k") = "3"'))
    with pytest.raises(ValueError, match="malformed"):
        parse_compare('value("k") ~ "3"')


# -- lease and watch ------------------------------------------------------------------


def test_lease_verbs(run, client, etcd_prefix):
    granted = run("lease", "grant", "60")
    match = re.fullmatch(rb"lease ([0-9a-f]{16}) granted with TTL\(60s\)\n", granted.out)
    assert match, granted
    lease_hex = match.group(1).decode()
    lease_id = int(lease_hex, 16)
    key = (etcd_prefix + b"leased").decode()
    assert run("put", key, "v", "--lease", lease_hex).code == 0
    ttl = run("lease", "timetolive", lease_hex, "--keys").text
    assert ttl.startswith(f"lease {lease_hex} granted with TTL(60s), remaining(")
    assert ttl.endswith(f"attached keys([{key}])\n")
    doc = run("lease", "timetolive", lease_hex, "--keys", "-w", "json").json()
    assert doc["id"] == lease_id and doc["granted-ttl"] == 60 and doc["keys"] == [b64(key.encode())]
    listed = run("lease", "list").text.splitlines()
    assert listed[0].startswith("found ") and lease_hex in listed[1:]
    assert lease_id in [entry["id"] for entry in run("lease", "list", "-w", "json").json()["leases"]]
    assert run("lease", "keep-alive", "--once", lease_hex).out == \
        f"lease {lease_hex} keepalived with TTL(60)\n".encode()
    assert run("lease", "revoke", lease_hex).out == f"lease {lease_hex} revoked\n".encode()
    assert client.get_value(key) is None
    assert run("lease", "timetolive", lease_hex).out == f"lease {lease_hex} already expired\n".encode()
    gone = run("lease", "revoke", lease_hex)
    assert gone.code == 1
    assert gone.err == "Error: failed to revoke lease (etcdserver: requested lease not found)\n"
    gone = run("lease", "keep-alive", "--once", lease_hex)  # etcdctl: ExitBadConnection, on stderr
    assert (gone.code, gone.out, gone.err) == (2, b"", "Error: etcdserver: requested lease not found\n")
    grant_json = run("lease", "grant", "30", "-w", "json").json()
    assert grant_json["TTL"] == 30 and grant_json["ID"] > 0
    client.revoke(grant_json["ID"])
    assert run("lease", "grant", "x").code == 128


def test_lease_keep_alive_until_ctrl_c(etcd_server, client):
    lease = client.grant(6)
    proc = subprocess.Popen(
        [sys.executable, "-m", "etcdfast", "--endpoints", etcd_server.endpoint, "lease", "keep-alive",
         f"{lease.id:x}"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env(),
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first == f"lease {lease.id:016x} keepalived with TTL(6)\n".encode()
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 130 and b"interrupted" in err
    client.revoke(lease.id)


def test_watch_from_a_revision(run, client, etcd_prefix):
    p = etcd_prefix.decode()
    start = client.put(p + "w", "a").header.revision
    client.put(p + "w", "b")
    client.delete(p + "w")
    result = run("watch", p, "--prefix", "--rev", str(start), "--prev-kv", "--max-events", "3")
    assert result.code == 0, result.err
    assert result.out == f"PUT\n{p}w\na\nPUT\n{p}w\na\n{p}w\nb\nDELETE\n{p}w\nb\n{p}w\n\n".encode()
    lines = run("watch", p + "w", "--rev", str(start), "--max-events", "3", "-w", "json").text.splitlines()
    events = [e for line in lines for e in json.loads(line)["Events"]]
    assert [e.get("type", 0) for e in events] == [0, 0, 1]
    assert base64.b64decode(events[1]["kv"]["value"]) == b"b"


def test_watch_live_in_a_subprocess(etcd_server, client, etcd_prefix):
    key = (etcd_prefix + b"live").decode()
    proc = subprocess.Popen(
        [sys.executable, "-m", "etcdfast", "--endpoints", etcd_server.endpoint, "watch", key,
         "--max-events", "2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env(),
    )
    try:
        deadline = time.monotonic() + 30
        # Keep writing until the watch (started at "now") has seen two events.
        while proc.poll() is None and time.monotonic() < deadline:
            client.put(key, "x")
            time.sleep(0.2)
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert out == f"PUT\n{key}\nx\nPUT\n{key}\nx\n".encode()


# -- endpoint and version ---------------------------------------------------------------


def test_endpoint_health(run, etcd_server):
    healthy = run("endpoint", "health")
    assert healthy.code == 0
    assert re.fullmatch(
        rf"{re.escape(etcd_server.endpoint)} is healthy: successfully committed proposal: "
        r"took = [0-9.]+(ns|µs|ms|s)\n", healthy.text), healthy.text
    doc = run("endpoint", "health", "-w", "json").json()
    assert doc[0]["endpoint"] == etcd_server.endpoint and doc[0]["health"] is True
    both = run("endpoint", "health", endpoint=f"{etcd_server.endpoint},127.0.0.1:1")
    assert both.code == 1
    assert "127.0.0.1:1 is unhealthy" in both.err and "is healthy" in both.text


def test_endpoint_status(run, etcd_server, client):
    line = run("endpoint", "status").text
    member_id = client.status().header.member_id
    assert line.startswith(f"{etcd_server.endpoint}, {member_id:x}, 3.") and ", true, false, " in line
    doc = run("endpoint", "status", "-w", "json").json()
    assert doc[0]["Endpoint"] == etcd_server.endpoint
    assert doc[0]["Status"]["leader"] == member_id and doc[0]["Status"]["dbSize"] > 0
    table = run("endpoint", "status", "-w", "table").text
    assert "RAFT APPLIED INDEX" in table and etcd_server.endpoint in table
    both = run("endpoint", "status", endpoint=f"{etcd_server.endpoint},127.0.0.1:1")
    assert both.code == 1 and "127.0.0.1:1" in both.err and etcd_server.endpoint in both.text
    if etcdctl_path() is not None:
        theirs = json.loads(etcdctl(etcd_server.endpoint, "endpoint", "status", "-w", "json"))
        ours = run("endpoint", "status", "-w", "json").json()
        for doc in (ours, theirs):  # these move with every write
            for name in ("raftIndex", "raftAppliedIndex", "dbSize", "dbSizeInUse"):
                doc[0]["Status"].pop(name, None)
            doc[0]["Status"]["header"].pop("revision")
        assert ours == theirs


def test_member_list(run, etcd_server, client):
    member = client.member_list().members[0]
    assert run("member", "list").text == (
        f"{member.id:x}, started, {member.name}, {','.join(member.peer_urls)}, "
        f"{','.join(member.client_urls)}, false\n")
    assert "PEER ADDRS" in run("member", "list", "-w", "table").text
    ours = run("member", "list", "-w", "json").json()
    assert ours["members"][0]["ID"] == member.id
    if etcdctl_path() is not None:
        assert ours == json.loads(etcdctl(etcd_server.endpoint, "member", "list", "-w", "json"))


def test_snapshot_save(tmp_path):
    with EtcdServer() as server:
        with etcdfast.Client(server.endpoint) as client:
            revision = client.put("k", "v").header.revision
        path = tmp_path / "snap.db"
        done = sub("--endpoints", server.endpoint, "snapshot", "save", str(path))
        assert done.returncode == 0, done.stderr
        assert done.stdout == f"Snapshot saved at {path}\n".encode()  # etcdctl's line
        assert f"revision {revision}".encode() in done.stderr
        assert path.stat().st_size > 0 and not (tmp_path / "snap.db.part").exists()
        etcdutl = os.path.join(os.path.dirname(find_etcd_binary()), "etcdutl")
        if os.access(etcdutl, os.X_OK):
            status = subprocess.run([etcdutl, "snapshot", "status", str(path), "-w", "json"],
                                    capture_output=True, timeout=60, check=True)
            assert json.loads(status.stdout)["revision"] == revision
        two = sub("--endpoints", f"{server.endpoint},127.0.0.1:1", "snapshot", "save", str(path))
        assert two.returncode == 128 and b"one selected node" in two.stderr


def test_version(run):
    result = run("version")
    assert result.out == (f"etcdctl version: 3.4.23\nAPI version: 3.4\n"
                          f"etcdfast version: {etcdfast.__version__}\n").encode()
    assert sub("--version").stdout.decode().startswith("etcdctl version: ")


# -- load and dump --------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", formats.FORMATS)
def test_dump_load_round_trip_of_binary_data(run, client, etcd_prefix, tmp_path, fmt):
    src = etcd_prefix + b"src/"
    items = nasty_items(src)
    client.put_many(items)
    path = tmp_path / f"dump.{fmt}"
    result = run("dump", src.decode(), "-o", str(path), "--format", fmt, "--strip-prefix")
    assert result.code == 0, result.err
    assert f"dumped {len(items)} keys" in result.text
    dst = etcd_prefix + b"dst/"
    loaded = run("load", str(path), "--format", fmt, "--prefix", dst.decode())
    assert loaded.code == 0, loaded.err
    assert loaded.text.startswith(f"loaded {len(items)} keys")
    back = {kv.key[len(dst):]: kv.value for kv in client.get_all(dst, prefix=True)}
    assert back == {k[len(src):]: v for k, v in items}


def test_dump_to_stdout_and_load_from_stdin(run, client, etcd_prefix):
    items = nasty_items(etcd_prefix + b"a/")
    client.put_many(items)
    for fmt in formats.FORMATS:
        dumped = run("dump", (etcd_prefix + b"a/").decode(), "--format", fmt)
        assert dumped.code == 0 and dumped.err == ""
        client.delete(etcd_prefix + b"a/", prefix=True)
        # No --format: the input is sniffed.
        loaded = run("load", "-", stdin=dumped.out)
        assert loaded.code == 0, (fmt, loaded.err)
        assert [(kv.key, kv.value) for kv in client.get_all(etcd_prefix + b"a/", prefix=True)] == \
            sorted(items)


def test_load_etcdctl_json_output(run, client, etcd_server, etcd_prefix, tmp_path):
    items = nasty_items(etcd_prefix + b"e/")
    client.put_many(items)
    if etcdctl_path() is not None:
        exported = etcdctl(etcd_server.endpoint, "get", "--prefix", (etcd_prefix + b"e/").decode(),
                           "-w", "json")
    else:
        exported = run("get", "--prefix", (etcd_prefix + b"e/").decode(), "-w", "json").out
    path = tmp_path / "export.json"
    path.write_bytes(exported)
    client.delete(etcd_prefix + b"e/", prefix=True)
    result = run("load", str(path))
    assert result.code == 0, result.err
    assert [(kv.key, kv.value) for kv in client.get_all(etcd_prefix + b"e/", prefix=True)] == sorted(items)
    # Two documents one after the other, pretty-printed, from stdin.
    doc = json.loads(exported)
    twice = (json.dumps(doc, indent=2) + "\n" + json.dumps(doc)).encode()
    result = run("load", "-", "--prefix", "copy", "-w", "json", stdin=twice)
    assert result.code == 0 and result.json()["keys"] == 2 * len(items)


def test_load_csv_and_jsonl_variants(run, client, etcd_prefix):
    p = etcd_prefix.decode()
    ff, nul = b64(b"\xff"), b64(b"\x00")
    csv_text = f"key_b64,value_b64\n{b64((p + 'x').encode())},{ff}\n".encode()
    assert run("load", "-", "--format", "csv", stdin=csv_text).code == 0
    assert client.get_value(p + "x") == b"\xff"
    no_header = f'{p}y,"a,b"\n{b64((p + "z").encode())},{nul},base64\n'.encode()
    assert run("load", "-", "--format", "csv", stdin=no_header).code == 0
    assert (client.get_value(p + "y"), client.get_value(p + "z")) == (b"a,b", b"\x00")
    jsonl = (json.dumps({"key": p + "j1", "value": "ü"}) + "\n\n"
             + json.dumps({"key": b64((p + "j2").encode()), "value": b64(b"\x01"), "encoding": "base64"})
             + "\n").encode()
    assert run("load", "-", stdin=jsonl).code == 0
    assert (client.get_value(p + "j1"), client.get_value(p + "j2")) == ("ü".encode(), b"\x01")
    dry = run("load", "-", "--dry-run", stdin=jsonl)
    assert dry.code == 0 and "2 records OK" in dry.text


def test_load_bad_line_stops_there_and_resumes(run, client, etcd_prefix, tmp_path):
    p = etcd_prefix.decode()
    lines = [json.dumps({"key": f"{p}{i:04d}", "value": str(i)}) for i in range(600)]
    lines[450] = '{"key": "oops", "value": 12}'
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(lines) + "\n")
    result = run("load", str(path), "--batch-ops", "100")
    assert result.code == 3  # etcdctl's ExitInvalidInput
    assert "line 451" in result.err and "the 450 records before it are committed" in result.err
    assert "--skip 450" in result.err
    # Everything before the bad record is written, nothing after it.
    assert client.count(p, prefix=True) == 450
    lines[450] = json.dumps({"key": f"{p}0450", "value": "450"})
    path.write_text("\n".join(lines) + "\n")
    resumed = run("load", str(path), "--skip", "450")
    assert resumed.code == 0 and resumed.text.startswith("loaded 150 keys")
    assert client.count(p, prefix=True) == 600
    for bad, what in ((b'{"key": "a"}\n', "missing 'value'"), (b'{"key": "", "value": "x"}\n', "empty"),
                      (b"not json\n", "line 1"), (b'{"key_b64": "%%%", "value": ""}\n', "base64"),
                      (b'{"header": {}, "kvs": []}\n', "etcdctl")):
        failed = run("load", "-", "--format", "jsonl", stdin=bad)
        assert failed.code == 3 and what in failed.err, (bad, failed.err)
    failed = run("load", "-", "--format", "etcdctl-json", stdin=b'{"kvs": [{"key": "!!"}]}')
    assert failed.code == 3 and "nothing was written" in failed.err
    assert run("load", str(tmp_path / "missing.jsonl")).code == 6  # etcdctl's ExitIO


class _Interrupting(io.RawIOBase):
    """A file whose reads raise KeyboardInterrupt after ``limit`` bytes (a Ctrl-C mid-load)."""

    def __init__(self, data: bytes, limit: int) -> None:
        self._data = io.BytesIO(data)
        self._limit = limit

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._data.tell() >= self._limit:
            raise KeyboardInterrupt
        chunk = self._data.read(min(len(buffer), 4096))
        buffer[:len(chunk)] = chunk
        return len(chunk)


def test_load_interrupted_prints_the_resume_point(run, client, etcd_prefix, tmp_path):
    p = etcd_prefix.decode()
    data = "".join(json.dumps({"key": f"{p}{i:05d}", "value": "v" * 20}) + "\n" for i in range(3000))
    stdin = _Stdin(io.BufferedReader(_Interrupting(data.encode(), len(data) // 2)), encoding="utf-8")
    result = run("load", "-", "--batch-ops", "50", raw_stdin=stdin)
    assert result.code == 130
    done = int(re.search(r"--skip (\d+)", result.err).group(1))
    assert f"the first {done} records of stdin are committed" in result.err
    assert 0 < done < 3000 and client.count(p, prefix=True) >= done
    path = tmp_path / "all.jsonl"
    path.write_text(data)
    assert run("load", str(path), "--skip", str(done)).code == 0
    assert client.count(p, prefix=True) == 3000


def test_no_progress_artefacts_when_piped(etcd_server, etcd_prefix, tmp_path):
    p = etcd_prefix.decode()
    path = tmp_path / "in.jsonl"
    path.write_text("".join(json.dumps({"key": f"{p}{i:05d}", "value": "x"}) + "\n" for i in range(3000)))
    done = sub("--endpoints", etcd_server.endpoint, "load", str(path))
    assert done.returncode == 0, done.stderr
    assert done.stderr == b"" and b"\r" not in done.stdout
    dumped = sub("--endpoints", etcd_server.endpoint, "dump", p)
    assert dumped.returncode == 0 and dumped.stderr == b""
    assert dumped.stdout.count(b"\n") == 3000 and b"\r" not in dumped.stdout


# -- exit codes -------------------------------------------------------------------------------


def test_exit_codes_in_a_subprocess(etcd_server):
    bad_endpoint = sub("--endpoints", "127.0.0.1:1", "get", "k")
    assert bad_endpoint.returncode == 1
    err = client_logs_removed(bad_endpoint.stderr.decode())
    assert "127.0.0.1:1" in err and err.startswith("Error: ")
    assert sub("get").returncode == 128  # missing key: etcdctl's ExitBadArgs
    assert sub("frobnicate").returncode == 1  # cobra's unknown command
    assert sub("--dial-timeout", "5parsecs", "get", "k").returncode == 1  # pflag's bad value
    ok = sub("--endpoints", etcd_server.endpoint, "put", "/etcdfast-test/cli-sub", "v")
    assert (ok.returncode, ok.stdout, ok.stderr) == (0, b"OK\n", b"")


def test_the_console_entry_point_exits_with_main_s_code_after_freezing_the_heap():
    """``etcdfast`` (the console script) and ``python -m etcdfast`` run
    ``console_main``: main's exit code, atexit hooks still run, and the
    objects alive at exit moved out of the teardown's collections."""
    from importlib.metadata import entry_points

    (script,) = entry_points(group="console_scripts", name="etcdfast")
    assert script.value == "etcdfast.cli:console_main"
    probe = (
        "import atexit, gc, sys\n"
        "atexit.register(lambda: print('frozen', gc.get_freeze_count() > 0, flush=True))\n"
        "sys.argv = ['etcdfast', 'get']\n"
        "from etcdfast.__main__ import console_main\n"
        "console_main()\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=60, env=_env())
    assert done.returncode == 128, done.stderr  # `get` without a key: etcdctl's ExitBadArgs
    assert done.stdout == "frozen True\n"


def test_endpoints_and_timeouts_from_the_environment(etcd_server, monkeypatch, capsys):
    monkeypatch.setenv("ETCDCTL_ENDPOINTS", etcd_server.endpoint)
    monkeypatch.setenv("ETCDCTL_COMMAND_TIMEOUT", "3s")
    monkeypatch.setenv("ETCDCTL_WRITE_OUT", "json")
    assert cli.main(["get", "/etcdfast-test/none"]) == 0
    assert "header" in json.loads(capsys.readouterr().out)
    monkeypatch.setenv("ETCDCTL_DIAL_TIMEOUT", "soon")
    assert cli.main(["get", "x"]) == 1
    assert "ETCDCTL_DIAL_TIMEOUT" in capsys.readouterr().err


def test_security_flags_are_checked_not_ignored(run, tmp_path):
    assert run("--cert", str(tmp_path / "c.pem"), "get", "k").code == 1
    missing = run("--cacert", str(tmp_path / "missing.pem"), "get", "k")
    assert missing.code == 1 and "missing.pem" in missing.err
    assert run("--password", "x", "get", "k").code == 1


@pytest.mark.skipif(etcdctl_path() is None, reason="no etcdctl to enable authentication")
def test_user_and_password(tmp_path):
    with EtcdServer() as server:
        etcdctl(server.endpoint, "user", "add", "root:secret")
        etcdctl(server.endpoint, "auth", "enable")
        base = ["--endpoints", server.endpoint]
        denied = sub(*base, "get", "k")
        assert denied.returncode == 1
        assert sub(*base, "--user", "root:secret", "put", "k", "v").returncode == 0
        got = sub(*base, "--user", "root", "--password", "secret", "get", "k")
        assert got.stdout == b"k\nv\n"
        assert sub(*base, "--user", "root:wrong", "get", "k").returncode == 2  # etcdctl: login is connecting


# -- demo and bench --------------------------------------------------------------------------


def test_demo_with_an_embedded_etcd():
    done = sub("demo", "--keys", "2000", timeout=180)
    assert done.returncode == 0, done.stderr
    out = done.stdout.decode()
    assert "write (put_many)" in out and "read (iter_range)" in out and "2,000" in out
    assert f"codec: {etcdfast.IMPLEMENTATION}" in out and "etcd: 3." in out
    assert "checksum ok" in out and b"\r" not in done.stderr
    assert "watch" in out or "watch check skipped" in done.stderr.decode()


def test_demo_on_a_cluster_cleans_up(run, client):
    result = run("demo", "--keys", "500", "-w", "json")
    assert result.code == 0, result.err
    doc = result.json()
    assert [p["keys"] for p in doc["phases"]][:2] == [500, 500]
    assert client.count("/etcdfast-demo/", prefix=True) == 0


def test_bench_smoke(run, client):
    result = run("bench", "--total", "200", "--concurrency", "4", "--clients", "2", "-w", "json")
    assert result.code == 0, result.err
    rows = {row["workload"]: row for row in result.json()["results"]}
    assert {"put", "get", "range", "txn"} <= set(rows)
    for row in rows.values():
        assert row["ops"] == 200 and row["errors"] == 0
        assert 0 < row["p50_ms"] <= row["p90_ms"] <= row["p99_ms"] <= row["max_ms"]
    assert client.count("/etcdfast-bench/", prefix=True) == 0


def test_bench_in_a_subprocess_embedded():
    done = sub("bench", "put", "get", "--total", "200", "--max-seconds", "30s", timeout=180)
    assert done.returncode == 0, done.stderr
    out = done.stdout.decode()
    assert "OPS/S" in out and "P99 MS" in out and "| put" in out.replace("|      put", "| put")


# -- small pieces ------------------------------------------------------------------------------


def test_parse_duration():
    assert parse_duration("5s") == 5.0
    assert parse_duration("500ms") == 0.5
    assert parse_duration("1m30s") == 90.0
    assert parse_duration("2") == 2.0
    assert parse_duration("1.5h") == 5400.0
    for bad in ("", "5x", "-1s", "0", "s5"):
        with pytest.raises(ArgError):
            parse_duration(bad)
    assert parse_go_duration("0s") == 0.0  # --dial-timeout=0s: no timeout


def test_go_duration_and_percentiles():
    assert go_duration(0.001752246) == "1.752246ms"
    assert go_duration(2.5) == "2.5s"
    assert go_duration(0.0000005) == "500ns"
    values = [float(i) for i in range(1, 101)]
    assert (percentile(values, 50), percentile(values, 99), percentile(values, 100)) == (50.0, 99.0, 100.0)


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_draws_only_on_a_terminal_and_at_most_10_per_second():
    now = [0.0]
    stream = _Tty()
    bar = ProgressBar(1000, label="load", unit="keys", stream=stream, clock=lambda: now[0])
    assert bar.enabled
    for _ in range(1000):
        now[0] += 0.001  # a key per millisecond: 1000 updates over one second
        bar.advance()
    draws = stream.getvalue().count("\r")
    assert 1 <= draws <= 11
    bar.close()
    final = stream.getvalue().split("\r")[-1]
    assert "100%" in final and "1,000/1,000 keys" in final and final.endswith("\n")
    assert "keys/s" in final and "ETA" in final

    quiet = io.StringIO()  # not a terminal
    bar = ProgressBar(10, stream=quiet)
    bar.advance(10)
    bar.close()
    assert quiet.getvalue() == "" and bar.done == 10
    forced_off = ProgressBar(10, stream=_Tty(), enabled=False)
    forced_off.advance(5)
    forced_off.close()
    assert forced_off.stream.getvalue() == ""  # type: ignore[attr-defined]


def test_progress_bar_rate_and_eta():
    now = [0.0]
    bar = ProgressBar(1000, unit="keys", stream=_Tty(), clock=lambda: now[0])
    for _ in range(10):
        now[0] += 0.5
        bar.advance(50)  # 100 keys/s
    assert bar.rate() == pytest.approx(100, rel=0.01)
    assert bar.eta() == pytest.approx(5.0, rel=0.02)
    assert "ETA 0:05" in bar.render(100)
    unknown = ProgressBar(None, unit="keys", stream=_Tty(), clock=lambda: now[0])
    assert "ETA" not in unknown.render(100)
    assert format_duration(3725) == "1:02:05" and format_duration(None) == "--:--"


def test_failed_calls_are_logged_as_etcdctl_does(etcd_server):
    # etcdctl's client logs every failed unary call as a JSON line on stderr,
    # before the command's own "Error:" line; etcd's e2e suite looks for it.
    done = sub("--endpoints", etcd_server.endpoint, "lease", "revoke", "1234abcd")
    lines = done.stderr.decode().splitlines()
    assert done.returncode == 1 and lines[-1].startswith("Error: ")
    (log,) = [json.loads(line) for line in lines if line.startswith('{"level"')]
    assert log["level"] == "warn" and log["msg"] == "retrying of unary invoker failed"
    assert log["error"] == "rpc error: code = NotFound desc = etcdserver: requested lease not found"
    assert log["target"].endswith(etcd_server.endpoint) and log["attempt"] == 0
    ok = sub("--endpoints", etcd_server.endpoint, "get", "/no/such/key")
    assert ok.returncode == 0 and not ok.stderr  # nothing failed, nothing logged
