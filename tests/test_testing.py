"""The real-etcd harness itself: binary lookup, lifecycle, crash and restart."""

from __future__ import annotations

import os
import stat

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

