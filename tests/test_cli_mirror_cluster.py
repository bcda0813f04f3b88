"""``make-mirror`` and ``--cluster`` against the real etcdctl, on real servers.

make-mirror runs until interrupted, so the two binaries are compared by what
they leave in their destinations (the same keys and values), by their usage
errors (same exit code and message), and by etcdfast's own promise: the
revision it prints on Ctrl-C resumes the mirror with ``--rev`` without a
gap or a repeat. ``--cluster`` is compared on a 3-member cluster.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from typing import Callable, Dict, List

import pytest

import etcdfast
from etcdfast.testing import EtcdCluster, EtcdServer, find_etcd_binary

ETCDCTL34 = "/usr/bin/etcdctl"
ETCDCTL35 = os.path.join(os.path.dirname(find_etcd_binary()), "etcdctl")
FAST = [sys.executable, "-m", "etcdfast"]
WAIT_S = 30.0


def _env() -> Dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ETCDCTL_")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def contents(endpoint: str, prefix: str) -> Dict[bytes, bytes]:
    with etcdfast.Client(endpoint, timeout=10) as client:
        return {kv.key: kv.value for kv in client.get(prefix, prefix=True).kvs}


@pytest.fixture()
def servers():
    with EtcdServer(name="src") as src, EtcdServer(name="ctl") as ctl_dest, \
            EtcdServer(name="fast") as fast_dest:
        yield src, ctl_dest, fast_dest


def start_mirror(binary: List[str], source: str, dest: str, *flags: str) -> subprocess.Popen:
    return subprocess.Popen([*binary, "--endpoints", source, "make-mirror", *flags, dest],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env())


def stop(proc: subprocess.Popen) -> "tuple[int, str, str]":
    proc.send_signal(signal.SIGINT)
    try:
        out, err = proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    return proc.returncode, out.decode(), err.decode()


@pytest.mark.parametrize("flags, src_prefix, dest_prefix", [
    ((), "key", "key"),
    (("--prefix", "o_", "--dest-prefix", "d_"), "o_", "d_"),
    (("--prefix", "o_", "--no-dest-prefix"), "o_", ""),
])
def test_make_mirror_copies_what_etcdctl_copies(servers, flags, src_prefix, dest_prefix):
    src, ctl_dest, fast_dest = servers
    with etcdfast.Client(src.endpoint, timeout=10) as client:
        client.put(f"{src_prefix}1", "before")  # the base
        procs = [start_mirror([ETCDCTL35], src.endpoint, ctl_dest.endpoint, *flags),
                 start_mirror(FAST, src.endpoint, fast_dest.endpoint, *flags)]
        try:
            scan = dest_prefix or src_prefix.replace("o_", "")
            wait_until(lambda: all(contents(d.endpoint, scan) for d in (ctl_dest, fast_dest)), "the base")
            client.put(f"{src_prefix}2", "after")  # the updates
            client.put(f"{src_prefix}1", "changed")
            client.delete(f"{src_prefix}2")
            client.put(f"{src_prefix}3", "last")
            expected = {f"{dest_prefix}1".encode(): b"changed", f"{dest_prefix}3".encode(): b"last"}
            if not dest_prefix:
                expected = {k.replace(b"o_", b""): v for k, v in expected.items()}
            for dest in (ctl_dest, fast_dest):
                wait_until(lambda d=dest: contents(d.endpoint, scan) == expected, f"{dest.name}'s copy")
        finally:
            results = [stop(p) for p in procs]
    (ctl_code, _, _), (fast_code, _, fast_err) = results
    assert fast_code == 130, fast_err  # interrupted (etcdctl dies of the signal)
    assert "resume with --rev " in fast_err


def test_make_mirror_usage_errors_match_etcdctl(servers):
    src, _, fast_dest = servers
    both = ["make-mirror", "--prefix", "a", "--dest-prefix", "b", "--no-dest-prefix", fast_dest.endpoint]
    for args in (both, ["make-mirror"]):
        ran = [subprocess.run([*binary, "--endpoints", src.endpoint, *args], capture_output=True, timeout=60,
                              env=_env()) for binary in ([ETCDCTL34], FAST)]
        (ctl, fast) = ran
        assert fast.returncode == ctl.returncode, (args, ctl, fast)
        error = [line for line in fast.stderr.decode().splitlines() if line.startswith("Error:")]
        assert error and error[0] in ctl.stderr.decode(), (args, ctl.stderr, fast.stderr)


def test_make_mirror_resumes_from_the_revision_it_printed(servers):
    src, _, dest = servers
    with etcdfast.Client(src.endpoint, timeout=10) as client, etcdfast.Client(dest.endpoint) as copy:
        for i in range(5):
            client.put(f"/r/{i}", "v1")
        first = start_mirror(FAST, src.endpoint, dest.endpoint, "--prefix", "/r/")
        try:
            wait_until(lambda: copy.count("/r/", prefix=True) == 5, "the base")
            client.put("/r/0", "v2")
            wait_until(lambda: copy.get_value("/r/0") == b"v2", "an update")
        finally:
            code, _, err = stop(first)
        assert code == 130
        revision = int(err.rsplit("--rev ", 1)[1].split()[0])
        assert revision == client.get("/r/0").kvs[0].mod_revision
        # Changes made while no mirror runs: the resumed one applies each once.
        client.put("/r/1", "v2")
        client.delete("/r/2")
        client.put("/r/9", "new")
        second = start_mirror(FAST, src.endpoint, dest.endpoint, "--prefix", "/r/", "--rev", str(revision),
                              "--max-txn-ops", "1")
        try:
            wait_until(lambda: copy.get_value("/r/9") == b"new", "the resumed updates")
        finally:
            stop(second)
        assert contents(dest.endpoint, "/r/") == contents(src.endpoint, "/r/")
        # Each key was written exactly once per source change: its version says how often.
        assert copy.get("/r/1").kvs[0].version == 2 and copy.get("/r/0").kvs[0].version == 2


@pytest.fixture(scope="module")
def cluster():
    with EtcdCluster(3) as c:
        yield c


@pytest.mark.parametrize("verb", [["endpoint", "status"], ["endpoint", "hashkv"], ["endpoint", "health"]])
def test_cluster_flag_lists_every_member_as_etcdctl_does(cluster, verb):
    one = cluster.members[0].endpoint  # one endpoint given: --cluster finds the others
    outs = []
    for binary in ([ETCDCTL35], FAST):
        done = subprocess.run([*binary, "--endpoints", one, *verb, "--cluster", "-w", "json"],
                              capture_output=True, timeout=60, env=_env())
        assert done.returncode == 0, done
        outs.append(json.loads(done.stdout))
    ctl, fast = outs
    assert len(fast) == len(ctl) == 3
    key = "endpoint" if verb[1] == "health" else "Endpoint"
    assert sorted(e[key] for e in fast) == sorted(e[key] for e in ctl) == sorted(
        m.client_url for m in cluster.members)
