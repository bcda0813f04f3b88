"""``check perf`` and ``check datascale`` against a real etcd, beside etcdctl for the refusals."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from typing import Dict

import pytest

import etcdfast
from etcdfast.testing import EtcdServer

ETCDCTL34 = "/usr/bin/etcdctl"
FAST = [sys.executable, "-m", "etcdfast"]


def _env() -> Dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("ETCDCTL_")}


def run(binary, endpoint, *args):
    return subprocess.run([*binary, "--endpoints", endpoint, *args], capture_output=True, text=True,
                          timeout=180, env=_env())


@pytest.fixture(scope="module")
def server():
    with EtcdServer(name="check") as srv:
        yield srv


def test_check_perf_reports_as_etcdctl_and_cleans_up(server):
    # A performance check: whether it passes depends on the machine's load
    # (no timing assertion here); what it prints and exits with must agree.
    done = run(FAST, server.endpoint, "check", "perf", "--duration", "2", "--auto-compact", "--auto-defrag")
    lines = done.stdout.splitlines()
    assert re.fullmatch(r"(PASS: Throughput is|FAIL: Throughput too low:) \d+ writes/s", lines[0]), done
    assert re.fullmatch(r"(PASS: Slowest request took|Slowest request took too long:) \d+\.\d{6}s", lines[1])
    assert re.fullmatch(r"(PASS: Stddev is|Stddev too high:) \d+\.\d{6}s", lines[2])
    verdict = "PASS" if all(line.startswith("PASS") for line in lines[:3]) else "FAIL"
    assert lines[3:] == [verdict] and done.returncode == (0 if verdict == "PASS" else 1)
    with etcdfast.Client(server.endpoint, timeout=10) as client:
        assert client.count("/etcdctl-check-perf/", prefix=True) == 0


def test_check_datascale_reports_the_memory_used(server):
    done = run(FAST, server.endpoint, "check", "datascale", "--keys", "2000")
    assert done.returncode == 0, done
    first, last = done.stdout.splitlines()
    assert first == ("Start data scale check for work load [2000 key-value pairs, 1024 bytes per "
                     "key-value, 50 concurrent clients].")
    assert re.fullmatch(r"PASS: Approximate system memory used : -?\d+\.\d\d MB\.", last)
    with etcdfast.Client(server.endpoint, timeout=10) as client:
        assert client.count("/etcdctl-check-datascale/", prefix=True) == 0


@pytest.mark.parametrize("verb", ["perf", "datascale"])
def test_check_refusals_match_etcdctl(server, verb):
    with etcdfast.Client(server.endpoint, timeout=10) as client:
        client.put(f"/used-{verb}/k", "v")
    for args in (["check", verb, "--load", "zz"], ["check", verb, "--prefix", f"/used-{verb}/"]):
        ctl, fast = (run(binary, server.endpoint, *args) for binary in ([ETCDCTL34], FAST))
        assert (fast.returncode, fast.stdout) == (ctl.returncode, ctl.stdout), (args, ctl, fast)
        assert fast.stderr.strip().splitlines()[-1] == ctl.stderr.strip().splitlines()[-1], (args, ctl, fast)


def test_compaction_zero_is_what_etcd_makes_of_it():
    # etcd accepts revision 0 (nothing to discard) once; after that it is compacted.
    outs = []
    for binary in ([ETCDCTL34], FAST):
        with EtcdServer(name="compact0") as fresh:
            first = run(binary, fresh.endpoint, "compaction", "0")
            second = run(binary, fresh.endpoint, "compaction", "0")
        outs.append((first.returncode, first.stdout, second.returncode, second.stdout,
                     second.stderr.strip().splitlines()[-1]))
    assert outs[0] == outs[1] == (0, "compacted revision 0\n", 1, "",
                                  "Error: etcdserver: mvcc: required revision has been compacted")
