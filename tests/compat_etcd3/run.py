"""Run python-etcd3 0.12.0's own test suite, unchanged, against etcdfast.compat.etcd3.

::

    python tests/compat_etcd3/run.py [--cache DIR] [--junit FILE] [-- PYTEST_ARGS...]

1. Fetches python-etcd3's sdist (``pip download etcd3==0.12.0 --no-binary
   :all:``) into the cache directory (``--cache``, ``$ETCDFAST_COMPAT_CACHE``,
   default ``~/.cache/etcdfast-compat``), checks its SHA-256, and extracts its
   ``tests/`` -- not its ``etcd3`` package -- into a temporary directory. No
   python-etcd3 code enters this repository.
2. Runs ``tests/test_etcd3.py`` there with pytest and the plugin beside this
   file (``python_etcd3_suite.py``: ``import etcd3`` is the compat module, a
   real 3-member etcd, the suite's etcdctl on PATH), in this interpreter if it
   has the suite's test dependencies (hypothesis, mock, six, tenacity), else in
   a cached venv that adds them on top of this interpreter's packages.
3. Fails unless every collected test passed: no failure, no error, no skip.
   The tests listed in ``not_applicable.txt`` (each with its reason) are the
   only ones deselected.

Any failure to get the sdist or the dependencies is an error, never a skip.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import venv
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Dict, List

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from python_etcd3_suite import read_not_applicable  # noqa: E402

SDIST = "etcd3-0.12.0.tar.gz"
#: pip checks PyPI's hash when downloading; this pins the release for the cache too.
SDIST_SHA256 = "89a704cb389bf0a010a1fa050ce19342d23bf6371ebda1c21cfe8ff3ed488726"
#: What python-etcd3's tests import besides etcd3, pytest and grpc.
SUITE_DEPS = ["hypothesis", "mock", "six", "tenacity"]
SUITE_TIMEOUT = 20 * 60


class SetupError(RuntimeError):
    """The suite could not be prepared (download, dependencies): fatal, never a skip."""


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 16), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch_sdist(cache: Path) -> Path:
    cache.mkdir(parents=True, exist_ok=True)
    path = cache / SDIST
    if not path.exists():
        with tempfile.TemporaryDirectory() as download:
            cmd = [sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "--no-deps",
                   "--no-binary", ":all:", "-d", download, "etcd3==0.12.0"]
            done = subprocess.run(cmd, capture_output=True, text=True)
            if done.returncode != 0:
                raise SetupError(f"cannot download python-etcd3's sdist ({' '.join(cmd)}):\n"
                                 f"{done.stdout}{done.stderr}")
            shutil.move(os.path.join(download, SDIST), path)
    digest = _sha256(path)
    if digest != SDIST_SHA256:
        raise SetupError(f"{path} has SHA-256 {digest}, not python-etcd3 0.12.0's {SDIST_SHA256}")
    return path


def extract_tests(sdist: Path, into: Path) -> Path:
    """The sdist's tests/ (test file and TLS fixtures) under ``into``; returns the
    directory the suite must run from (its relative paths start there)."""
    with tarfile.open(sdist) as tar:
        members = [m for m in tar.getmembers()
                   if m.isfile() and m.name.startswith("etcd3-0.12.0/tests/")]
        for member in members:
            target = into / member.name
            target.parent.mkdir(parents=True, exist_ok=True)
            source = tar.extractfile(member)
            assert source is not None
            target.write_bytes(source.read())
    return into / "etcd3-0.12.0"


def _has_deps(python: str) -> bool:
    probe = "import " + ", ".join(SUITE_DEPS)
    return subprocess.run([python, "-c", probe], capture_output=True).returncode == 0


def suite_python(cache: Path) -> str:
    """An interpreter with etcdfast (this one's packages) and the suite's dependencies."""
    if _has_deps(sys.executable):
        return sys.executable
    env_dir = cache / f"venv-py{sys.version_info[0]}{sys.version_info[1]}"
    python = str(env_dir / "bin" / "python")
    if not os.access(python, os.X_OK):
        venv.create(env_dir, system_site_packages=True, with_pip=True)
    if not _has_deps(python):
        cmd = [python, "-m", "pip", "install", "-q", "--disable-pip-version-check", *SUITE_DEPS]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0 or not _has_deps(python):
            raise SetupError(f"cannot install the suite's dependencies ({' '.join(cmd)}):\n"
                             f"{done.stdout}{done.stderr}")
    return python


def read_junit(path: Path) -> Dict[str, List[str]]:
    """Test ids by outcome (passed, failed, error, skipped)."""
    outcomes: Dict[str, List[str]] = {"passed": [], "failed": [], "error": [], "skipped": []}
    for case in ET.parse(path).getroot().iter("testcase"):
        test = f"{case.get('classname', '').rsplit('.', 1)[-1]}::{case.get('name')}"
        kinds = {child.tag for child in case}
        if "failure" in kinds:
            outcomes["failed"].append(test)
        elif "error" in kinds:
            outcomes["error"].append(test)
        elif "skipped" in kinds:
            outcomes["skipped"].append(test)
        else:
            outcomes["passed"].append(test)
    return outcomes


def main(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", type=Path,
                        default=Path(os.environ.get("ETCDFAST_COMPAT_CACHE")
                                     or Path.home() / ".cache" / "etcdfast-compat"))
    parser.add_argument("--junit", type=Path, help="keep the suite's JUnit XML here")
    parser.add_argument("pytest_args", nargs="*", help="extra pytest arguments (after --)")
    args = parser.parse_args(argv)
    try:
        sdist = fetch_sdist(args.cache)
        python = suite_python(args.cache)
    except SetupError as exc:
        print(f"run.py: {exc}", file=sys.stderr)
        return 2
    not_applicable = read_not_applicable()
    with tempfile.TemporaryDirectory(prefix="etcdfast-python-etcd3-suite-") as work:
        root = extract_tests(sdist, Path(work))
        junit = Path(work) / "junit.xml"
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(HERE), env.get("PYTHONPATH", "")) if p)
        cmd = [python, "-m", "pytest", "tests/test_etcd3.py", "-p", "python_etcd3_suite",
               "-p", "no:cacheprovider", "-q", "-rfEs", f"--junitxml={junit}", *args.pytest_args]
        started = time.monotonic()
        env.pop("ETCDCTL_ENDPOINTS", None)
        suite = subprocess.Popen(cmd, cwd=root, env=env)
        try:
            returncode = suite.wait(SUITE_TIMEOUT)
        except BaseException:  # the timeout, or ^C: let the suite stop its etcd members
            suite.terminate()
            suite.wait(60)
            raise
        elapsed = time.monotonic() - started
        if not junit.exists():
            print(f"run.py: pytest exited {returncode} without results", file=sys.stderr)
            return 1
        if args.junit:
            shutil.copy(junit, args.junit)
        outcomes = read_junit(junit)
    bad = {kind: tests for kind, tests in outcomes.items() if kind != "passed" and tests}
    counts = [f"{len(outcomes['passed'])} passed",
              f"{len(not_applicable)} not applicable (tests/compat_etcd3/not_applicable.txt)",
              *(f"{len(tests)} {kind}" for kind, tests in bad.items())]
    print(f"\npython-etcd3 0.12.0's suite on etcdfast.compat.etcd3: {', '.join(counts)} in {elapsed:.0f} s")
    for kind, tests in bad.items():
        for test in tests:
            print(f"  {kind}: {test}")
    if bad or returncode != 0 or not outcomes["passed"]:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
