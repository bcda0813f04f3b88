"""The real-etcd harness itself: binary lookup, lifecycle, crash and restart; and
what importing it costs (the pytest plugin is imported by every pytest run)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import textwrap

import pytest

import etcdfast
from etcdfast.testing import (
    EtcdBinaryNotFound,
    EtcdServer,
    EtcdStartError,
    etcd_version,
    find_etcd_binary,
    free_port,
)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_binary_lookup_order(monkeypatch, tmp_path):
    monkeypatch.delenv("ETCD_BIN", raising=False)
    default = find_etcd_binary()
    assert os.access(default, os.X_OK)
    assert etcd_version(default) >= (3, 4, 0)

    monkeypatch.setenv("ETCD_BIN", default)
    assert find_etcd_binary() == default
    fake = tmp_path / "etcd"
    fake.write_text("#!/bin/sh\n")
    monkeypatch.setenv("ETCD_BIN", str(fake))  # not executable
    with pytest.raises(EtcdBinaryNotFound, match="ETCD_BIN"):
        find_etcd_binary()
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    assert find_etcd_binary() == str(fake)
    assert find_etcd_binary(default) == default  # an explicit argument wins


def test_free_port_is_bindable():
    import socket

    port = free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


def test_lifecycle_stop_kill_restart_keep_data(tmp_path):
    server = EtcdServer(log_path=tmp_path / "etcd.log")
    assert not server.running and server.pid is None
    with server:
        assert server.running and server.healthy()
        assert repr(server).endswith("running>")
        first_pid = server.pid
        with etcdfast.Client(server.endpoint, timeout=10) as client:
            client.put("survives", "crash")
        server.kill()  # kill -9: no graceful shutdown
        assert not server.running and not _alive(first_pid)
        server.restart()  # same ports, same data dir
        assert server.pid != first_pid
        with etcdfast.Client(server.endpoint, timeout=10) as client:
            assert client.get_value("survives") == b"crash"
        server.stop()
        assert not server.running
        server.restart()
        assert server.healthy()
        data_root = os.path.dirname(server.data_dir)
    assert not server.running
    assert not os.path.exists(data_root)  # close() removed what it created
    assert (tmp_path / "etcd.log").stat().st_size > 0
    server.close()  # idempotent


def test_pause_and_resume():
    with EtcdServer() as server:
        server.pause()
        assert not server.healthy(timeout=0.3)
        server.resume()
        assert server.healthy(timeout=5)


def test_close_kills_a_paused_server():
    server = EtcdServer().start()
    pid = server.pid
    server.pause()
    server.close()
    assert pid is not None and not _alive(pid)


def test_failed_start_reports_the_log(tmp_path):
    server = EtcdServer(extra_args=["--no-such-flag"], startup_timeout=10)
    with pytest.raises(EtcdStartError, match="no-such-flag"):
        server.start()
    assert not server.running
    server.close()


def test_port_taken_by_someone_else_is_an_error_with_fixed_ports():
    with EtcdServer() as first:
        second = EtcdServer(client_port=first.client_port, peer_port=free_port(), startup_timeout=10)
        with pytest.raises(EtcdStartError):
            second.start()
        second.close()
        assert first.healthy()


def test_plugin_fixtures(etcd_server, etcd_endpoint, etcd_prefix, request):
    assert etcd_endpoint == etcd_server.endpoint
    assert isinstance(etcd_prefix, bytes) and etcd_prefix.endswith(b"/")
    assert request.node.name.split("[")[0].encode() in etcd_prefix



# -- import cost: the plugin, the package, the CLI -----------------------------------

PUBLIC_NAMES = {
    "EtcdServer", "EtcdCluster", "FaultProxy", "Certificates", "make_certificates",
    "EtcdBinaryNotFound", "EtcdStartError", "find_etcd_binary", "find_crash_safe_etcd_binary",
    "etcd_version", "free_port",
}
HEAVY = ["grpc", "asyncio", "etcdfast._sync", "etcdfast.aio", "etcdfast._codec", "etcdfast.testing.server"]

# Makes ``etcdfast`` an empty package object over the real directory, so what a
# submodule imports is measured without what ``etcdfast/__init__.py`` imports.
_STUB_PARENT = """
import importlib.util, sys, types
_spec = importlib.util.find_spec("etcdfast")
_pkg = types.ModuleType("etcdfast")
_pkg.__path__ = list(_spec.submodule_search_locations)
sys.modules["etcdfast"] = _pkg
"""


def _fresh(code: str, *, stub_parent: bool = False, timeout: float = 120) -> dict:
    """Run ``code`` in a new interpreter; it must ``print(json.dumps(...))`` its result last."""
    source = "import json, sys\n" + (_STUB_PARENT if stub_parent else "") + textwrap.dedent(code)
    result = subprocess.run([sys.executable, "-c", source], capture_output=True, text=True,
                            timeout=timeout, check=False)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_plugin_module_imports_nothing_but_pytest():
    # What pytest loads through the entry point, measured on its own: compared
    # with what pytest itself already imported, the plugin (and the package
    # __init__ it sits in) may add only themselves.
    found = _fresh("""
        import pytest
        before = set(sys.modules)
        import etcdfast.testing.plugin
        print(json.dumps({"new": sorted(set(sys.modules) - before), "all": sorted(sys.modules)}))
    """, stub_parent=True)
    assert set(found["new"]) <= {"etcdfast.testing", "etcdfast.testing.plugin"}, found["new"]
    assert not set(HEAVY + ["etcdfast._etcd", "subprocess"]) & set(found["new"])
    assert not set(HEAVY) & set(found["all"])


def test_importing_the_plugin_leaves_heavy_modules_out():
    found = _fresh("""
        import etcdfast.testing.plugin
        print(json.dumps(sorted(sys.modules)))
    """)
    assert not set(HEAVY) & set(found), sorted(set(HEAVY) & set(found))


def test_etcd_module_needs_no_grpc_asyncio_pytest_or_client():
    found = _fresh("""
        import etcdfast._etcd
        print(json.dumps(sorted(sys.modules)))
    """, stub_parent=True)
    assert not {"grpc", "asyncio", "pytest"} & set(found)
    # Nothing else of etcdfast either: no client, no codec, no testing.
    assert [m for m in found if m.startswith("etcdfast")] == ["etcdfast", "etcdfast._etcd"]


def test_cli_embedded_server_does_not_import_testing():
    found = _fresh("""
        import etcdfast.cli._embedded
        print(json.dumps(sorted(sys.modules)))
    """)
    assert "etcdfast._etcd" in found  # what it uses instead
    assert [m for m in found if m.startswith("etcdfast.testing")] == []


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork() is POSIX-only")
def test_a_forked_child_exiting_leaves_its_parents_servers_alone(tmp_path):
    # The child exits through sys.exit, so the exit hooks run in it: they must
    # neither kill the parent's server and cluster nor delete their data.
    found = _fresh(f"""
        import os
        from etcdfast.testing import EtcdCluster, EtcdServer
        server = EtcdServer().start()
        cluster = EtcdCluster(1, data_root={str(tmp_path / "cluster")!r}).start()
        pid = os.fork()
        if pid == 0:
            sys.exit(0)
        _, status = os.waitpid(pid, 0)
        alive = [server.healthy(timeout=5), cluster.members[0].healthy(timeout=5)]
        dirs = [os.path.isdir(server.data_dir), os.path.isdir(cluster.members[0].data_dir)]
        pids = [server.pid, cluster.members[0].pid]
        print(json.dumps({{"status": status, "alive": alive, "dirs": dirs, "pids": pids}}))
    """)
    assert found["status"] == 0
    assert found["alive"] == [True, True] and found["dirs"] == [True, True]
    assert not any(_alive(pid) for pid in found["pids"])  # the parent's own exit did stop them


def test_exit_hooks_are_registered_by_the_first_start_not_by_imports(tmp_path):
    # atexit.register is replaced before anything of etcdfast is imported, so
    # every registration is seen, decorator or call. Then a server and a
    # one-member cluster are started and left running: their hooks must
    # appear then (once each) and kill them when the interpreter exits.
    found = _fresh(f"""
        import atexit, importlib
        seen = []
        _register = atexit.register
        def spy(func, *args, **kwargs):
            seen.append(f"{{func.__module__}}.{{func.__qualname__}}")
            return _register(func, *args, **kwargs)
        atexit.register = spy

        import etcdfast.testing, etcdfast.testing.plugin
        for name in etcdfast.testing.__all__:
            getattr(etcdfast.testing, name)
        for module in ("server", "cluster", "proxy", "certs"):
            importlib.import_module("etcdfast.testing." + module)
        ours = lambda: [c for c in seen if c.startswith("etcdfast")]
        at_import = ours()

        from etcdfast.testing import EtcdCluster, EtcdServer
        EtcdServer(log_path={str(tmp_path / "a.log")!r}).close()  # never started: nothing yet
        after_init = ours()
        server = EtcdServer().start()
        other = EtcdServer().start()
        after_servers = ours()
        cluster = EtcdCluster(1, data_root={str(tmp_path / "cluster")!r}).start()
        after_cluster = ours()
        print(json.dumps({{
            "at_import": at_import, "after_init": after_init, "after_servers": after_servers,
            "after_cluster": after_cluster, "pids": [server.pid, other.pid, cluster.members[0].pid],
        }}))
    """)
    pids = [pid for pid in found["pids"] if pid]
    try:
        assert found["at_import"] == []
        assert found["after_init"] == []
        assert found["after_servers"] == ["etcdfast._etcd._kill_leftovers"]
        assert found["after_cluster"] == [
            "etcdfast._etcd._kill_leftovers", "etcdfast.testing.cluster._close_leftover_clusters",
        ]
        assert len(pids) == 3 and not any(_alive(pid) for pid in pids)  # the hooks did run
    finally:
        for pid in pids:
            if _alive(pid):
                os.kill(pid, 9)


def test_lazy_public_names():
    import importlib

    import etcdfast.testing as testing

    assert PUBLIC_NAMES <= set(testing.__all__)
    assert PUBLIC_NAMES <= set(dir(testing))
    for name in testing.__all__:
        value = getattr(testing, name)
        home = importlib.import_module(value.__module__)
        assert getattr(home, name) is value, name
        assert getattr(testing, name) is value  # the same object the second time
    for unknown in ("NoSuchThing", "_LIVE", "etcd_server", "EtcdProcess"):
        with pytest.raises(AttributeError, match=unknown):
            getattr(testing, unknown)
    with pytest.raises(ImportError):
        exec("from etcdfast.testing import NoSuchThing", {})


def test_package_import_is_lazy():
    found = _fresh("""
        ours = lambda: sorted(m for m in sys.modules if m.startswith(("etcdfast.testing", "etcdfast._etcd")))
        import etcdfast.testing
        at_import = ours()
        etcdfast.testing.FaultProxy
        print(json.dumps({"at_import": at_import, "after_proxy": ours()}))
    """)
    assert found["at_import"] == ["etcdfast.testing"]
    assert found["after_proxy"] == ["etcdfast.testing", "etcdfast.testing.proxy"]
