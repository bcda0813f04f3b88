"""A python-etcd3 0.12.0 process and an etcdfast.compat.etcd3 process share one lock.

The point of the compat lock's layout (``/locks/<name>``, a UUID value, a
lease of ``ttl``): during a migration, old and new processes take the same
locks and still exclude each other. Here each side takes the lock 50 times,
concurrently, and inside it does a read-modify-write of a shared counter
(tests/compat_etcd3/lock_interop_worker.py): the counter ends at 100, no side
ever finds the other inside, and the critical sections never overlap in time.

python-etcd3 runs in its own venv (``$ETCDFAST_COMPAT_ETCD3_VENV``, else
``$BENCH_VENVS/etcd3``, default /tmp/bench-venvs/etcd3 as for bench/; made
here if missing), with the pure-Python
protobuf runtime its generated code needs today, and ``tenacity < 7``:
python-etcd3 0.12.0's Lock waits through a tenacity callback of the old
signature, which tenacity 7 dropped (with a newer one, any contended
``acquire()`` raises TypeError). Without the venv this test skips and says
why, except under ``ETCDFAST_REQUIRE_COMPAT_INTEROP=1`` (CI), where it fails.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Dict, List

import pytest

import etcdfast
from etcdfast.testing import EtcdServer

WORKER = Path(__file__).resolve().parent / "compat_etcd3" / "lock_interop_worker.py"
VENV = Path(os.environ.get("ETCDFAST_COMPAT_ETCD3_VENV")
            or Path(os.environ.get("BENCH_VENVS", "/tmp/bench-venvs")) / "etcd3")
REQUIRED = os.environ.get("ETCDFAST_REQUIRE_COMPAT_INTEROP", "") not in ("", "0")
PACKAGES = ["etcd3==0.12.0", "grpcio", "protobuf", "tenacity<7"]
COUNT = 50

_PROBE = (
    "import importlib.metadata as m, etcd3, tenacity; "
    "print(m.version('etcd3'), m.version('tenacity').split('.')[0])"
)


def _python_etcd3_env() -> Dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION"] = "python"
    return env


def _run(cmd: List[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=_python_etcd3_env())


def _prepare_venv() -> str:
    """The venv's Python, made (or given tenacity < 7) if needed; raises RuntimeError why not."""
    python = VENV / "bin" / "python"
    if not python.exists():
        made = _run([sys.executable, "-m", "venv", str(VENV)])
        if made.returncode != 0:
            raise RuntimeError(f"cannot create {VENV}: {made.stderr.strip()}")
    probe = _run([str(python), "-c", _PROBE])
    versions = probe.stdout.split()
    if probe.returncode != 0 or versions[0] != "0.12.0" or int(versions[1]) >= 7:
        installed = _run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                          *PACKAGES])
        probe = _run([str(python), "-c", _PROBE])
        if installed.returncode != 0 or probe.returncode != 0:
            raise RuntimeError(f"cannot install {' '.join(PACKAGES)} into {VENV}: "
                               f"{(installed.stderr or probe.stderr).strip()[-2000:]}")
    return str(python)


@pytest.fixture(scope="module")
def python_etcd3() -> str:
    try:
        return _prepare_venv()
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
        reason = f"no python-etcd3 0.12.0 venv for the lock interop test: {exc}"
        if REQUIRED:
            pytest.fail(reason)
        pytest.skip(reason)


def test_python_etcd3_and_compat_locks_exclude_each_other(python_etcd3: str, etcd_server: EtcdServer,
                                                          etcd_prefix: bytes) -> None:
    name = f"interop-{uuid.uuid4().hex}"
    counter = (etcd_prefix + b"counter").decode()
    common = ["--endpoint", etcd_server.endpoint, "--name", name, "--counter", counter,
              "--count", str(COUNT)]
    sides = [
        subprocess.Popen([python_etcd3, str(WORKER), "--impl", "etcd3", *common], env=_python_etcd3_env(),
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True),
        subprocess.Popen([sys.executable, str(WORKER), "--impl", "compat", *common],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True),
    ]
    try:
        for side in sides:
            assert side.stdout is not None and side.stdout.readline().strip() == "ready", side.stderr
        for side in sides:  # go together
            assert side.stdin is not None
            side.stdin.write("go\n")
            side.stdin.flush()
        outputs = [side.communicate(timeout=300) for side in sides]
    finally:
        for side in sides:
            if side.poll() is None:
                side.kill()
                side.wait()
    results = []
    for side, (out, err) in zip(sides, outputs):
        assert side.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))

    assert [r["acquired"] for r in results] == [COUNT, COUNT]
    assert [r["overlaps"] for r in results] == [0, 0]
    with etcdfast.Client(etcd_server.endpoint, timeout=10) as client:
        assert client.get_value(counter) == str(2 * COUNT).encode()  # no increment lost
        assert client.get(b"/locks/" + name.encode()).count == 0  # both released it
    sections = sorted((start, end, r["impl"]) for r in results for start, end in r["sections"])
    for (_, end, _), (start, _, _) in zip(sections, sections[1:]):
        assert end <= start  # one holder at a time, on the clock both processes share
    handovers = sum(a[2] != b[2] for a, b in zip(sections, sections[1:]))
    assert handovers >= 2, f"the two sides barely contended ({handovers} hand-overs)"
    print(f"lock interop: {handovers} hand-overs between python-etcd3 and compat in {2 * COUNT} "
          f"acquisitions; python-etcd3 timed out {results[0]['timed_out']}x, "
          f"compat {results[1]['timed_out']}x")
