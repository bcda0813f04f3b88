"""TLS, mTLS and password auth against real etcd servers (certificates made per run)."""

from __future__ import annotations

import os
import subprocess
import time
import traceback

import pytest
from conftest import run

import etcdfast
from etcdfast import AuthError, PermissionDeniedError
from etcdfast.errors import AuthFailedError, TLSError
from etcdfast.testing import EtcdServer, find_etcd_binary, make_certificates


def etcdctl(server: EtcdServer, *args: str, user: str = "") -> str:
    """Set-up through etcd's own CLI, so these tests do not depend on our auth admin API."""
    binary = os.path.join(os.path.dirname(find_etcd_binary()), "etcdctl")
    if not os.access(binary, os.X_OK):
        binary = "etcdctl"
    command = [binary, f"--endpoints={server.client_url}", *args]
    if user:
        command.insert(1, f"--user={user}")
    env = {**os.environ, "ETCDCTL_API": "3"}
    return subprocess.run(command, capture_output=True, text=True, check=True, timeout=30, env=env).stdout


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return make_certificates(tmp_path_factory.mktemp("certs"))


# -- TLS ------------------------------------------------------------------------


def test_tls_and_mtls(certs):
    with EtcdServer(tls=certs, client_cert_auth=True) as server:
        assert server.endpoint.startswith("https://")
        with etcdfast.Client(server.endpoint, ca_cert=certs.ca, cert=certs.client_cert,
                             key=certs.client_key, timeout=10) as client:
            client.put("k", "v")
            assert client.get_value("k") == b"v"
            with client.watch("k") as watch:  # streams use the same credentials
                client.put("k", "w")
                assert watch.get(timeout=10)[0].value == b"w"

        async def main():
            async with etcdfast.AsyncClient(server.endpoint, ca_cert=certs.ca, cert=certs.client_cert,
                                            key=certs.client_key, timeout=10) as client:
                assert await client.get_value("k") == b"w"

        run(main())

        # PEM bytes work as well as paths
        with open(certs.ca, "rb") as f:
            ca = f.read()
        with etcdfast.Client(server.endpoint, ca_cert=ca, cert=certs.client_cert,
                             key=certs.client_key, timeout=10) as client:
            assert client.get_value("k") == b"w"


@pytest.mark.parametrize(
    ("options", "says"),
    [
        (lambda c: dict(ca_cert=c.other_ca, cert=c.client_cert, key=c.client_key), "not trusted"),
        (lambda c: dict(ca_cert=c.ca), "refused the client certificate"),
    ],
    ids=["unknown-server-ca", "no-client-cert"],
)
def test_tls_failures_are_typed_and_fast(certs, options, says):
    with EtcdServer(tls=certs, client_cert_auth=True) as server:
        with etcdfast.Client(server.endpoint, timeout=5, **options(certs)) as client:
            started = time.monotonic()
            with pytest.raises(TLSError) as info:
                client.get("k")
            assert time.monotonic() - started < 5
    assert says in str(info.value) and server.endpoint in str(info.value)
    assert isinstance(info.value, etcdfast.Unavailable)


def test_expired_server_certificate(certs):
    expired = certs._replace(server_cert=certs.expired_cert, server_key=certs.expired_key)
    time.sleep(1.1)  # made with 0 days of validity: expired one second later
    server = EtcdServer(tls=expired, startup_timeout=10)
    try:
        server._wait_healthy = lambda: time.sleep(1.5)  # its own health check cannot pass
        server.start()
        with etcdfast.Client(server.endpoint, ca_cert=certs.ca, timeout=5) as client:
            with pytest.raises(TLSError, match="expired|not trusted"):
                client.get("k")
    finally:
        server.close()


def test_tls_client_to_a_plain_server_and_missing_files(etcd_server, certs, tmp_path):
    with etcdfast.Client(f"https://{etcd_server.endpoint}", ca_cert=certs.ca, timeout=5) as client:
        with pytest.raises(TLSError):
            client.get("k")
    with pytest.raises(FileNotFoundError, match="CA certificate"):
        etcdfast.Client(etcd_server.endpoint, ca_cert=tmp_path / "missing.pem")
    with pytest.raises(ValueError, match="cert= and key="):
        etcdfast.Client(etcd_server.endpoint, cert=certs.client_cert)


# -- password auth --------------------------------------------------------------


@pytest.fixture(scope="module")
def auth_server():
    """A private server with auth on: root/rootpw, and alice (read-only on /a/)."""
    with EtcdServer(extra_args=["--auth-token", "simple", "--auth-token-ttl", "2"]) as server:
        etcdctl(server, "user", "add", "root:rootpw")
        etcdctl(server, "user", "grant-role", "root", "root")
        etcdctl(server, "user", "add", "alice:s3cret")
        etcdctl(server, "role", "add", "reader")
        etcdctl(server, "role", "grant-permission", "reader", "read", "/a/", "--prefix=true")
        etcdctl(server, "user", "grant-role", "alice", "reader")
        etcdctl(server, "auth", "enable")
        yield server


def test_password_auth_and_permissions(auth_server, twin):
    with etcdfast.Client(auth_server.endpoint, user="root", password="rootpw", timeout=10) as root:
        root.put("/a/x", "1")
        assert "rootpw" not in repr(root) and "root" in repr(root)
    with etcdfast.Client(auth_server.endpoint, user="alice", password="s3cret", timeout=10) as alice:
        assert alice.get_value("/a/x") == b"1"
        with pytest.raises(PermissionDeniedError):
            alice.put("/a/x", "2")
        with pytest.raises(PermissionDeniedError):
            alice.get("/b/")
    with etcdfast.Client(auth_server.endpoint, timeout=10) as anonymous:
        with pytest.raises(AuthError):
            anonymous.put("/a/x", "3")


@pytest.mark.parametrize(("user", "password"), [("alice", "wrong-password"), ("nobody", "whatever")])
def test_bad_credentials(auth_server, user, password):
    with etcdfast.Client(auth_server.endpoint, user=user, password=password, timeout=10) as client:
        with pytest.raises(AuthFailedError) as info:
            client.get("/a/x")
    shown = "".join(traceback.format_exception(type(info.value), info.value, info.value.__traceback__))
    assert "authentication failed" in shown and password not in shown


def test_expired_token_is_refreshed_transparently_on_calls_and_watches(auth_server, twin):
    with etcdfast.Client(auth_server.endpoint, user="root", password="rootpw", timeout=10) as client:
        client.put("/a/t", "0")
        watch = client.watch("/a/t")
        first_token = client._metadata
        for i in range(1, 3):
            time.sleep(3.5)  # the token's TTL is 2 s: it is gone by now
            client.put("/a/t", str(i))  # refused with "invalid auth token", logged in again
            # a new watch on the same stream needs a valid token too
            with client.watch("/a/t", start_revision=client.last_revision) as again:
                assert again.get(timeout=10)[0].value == str(i).encode()
        assert client._metadata != first_token
        assert [e.value for e in watch.get(timeout=10) + watch.get(timeout=10)] == [b"1", b"2"]


def test_async_auth(auth_server):
    async def main():
        async with etcdfast.AsyncClient(auth_server.endpoint, user="root", password="rootpw",
                                        timeout=10) as client:
            await client.put("/a/async", "1")
            watch = await client.watch("/a/async")
            time.sleep(3.5)  # let the token expire (blocking on purpose: nothing else runs)
            await client.put("/a/async", "2")
            assert (await watch.get(timeout=10))[0].value == b"2"
        async with etcdfast.AsyncClient(auth_server.endpoint, user="alice", password="bad",
                                        timeout=10) as client:
            with pytest.raises(AuthFailedError):
                await client.get("/a/async")

    run(main())


def test_cli_over_mtls(certs, capsysbinary):
    from etcdfast import cli

    with EtcdServer(tls=certs, client_cert_auth=True) as server:
        tls = ["--endpoints", server.endpoint, "--cacert", certs.ca,
               "--cert", certs.client_cert, "--key", certs.client_key]
        assert cli.main([*tls, "put", "/cli/tls", "secure"]) == 0
        assert cli.main([*tls, "get", "/cli/tls", "--print-value-only"]) == 0
        out, _ = capsysbinary.readouterr()
        assert out.splitlines()[-1] == b"secure"
        # without the client certificate the server refuses, and the CLI says why
        assert cli.main(["--endpoints", server.endpoint, "--cacert", certs.ca, "get", "/cli/tls"]) == 1
        _, err = capsysbinary.readouterr()
        assert b"client certificate" in err


def test_certificate_common_name_authenticates_the_user(certs):
    # With --client-cert-auth and auth on, etcd takes the user from the client
    # certificate's CN ("root" in make_certificates) when no password is given.
    with EtcdServer(tls=certs, client_cert_auth=True) as server:
        mtls = dict(ca_cert=certs.ca, cert=certs.client_cert, key=certs.client_key, timeout=10)
        with etcdfast.Client(server.endpoint, **mtls) as client:
            client.user_add("root", no_password=True)
            client.role_add("root")
            client.user_grant_role("root", "root")
            client.user_add("alice", "alicepw")
            client.auth_enable()
            client.put("/cn/k", "v")  # still allowed: the certificate says root
            assert client.user_list() == ["alice", "root"]
            with etcdfast.Client(server.endpoint, user="alice", password="alicepw", **mtls) as alice:
                with pytest.raises(PermissionDeniedError):
                    alice.put("/cn/k", "w")  # a password login overrides the CN
            client.auth_disable()


def test_server_name_override(certs):
    with EtcdServer(tls=certs) as server:
        with etcdfast.Client(server.endpoint, ca_cert=certs.ca, server_name="localhost", timeout=5) as ok:
            ok.put("/sn/k", "v")
        with etcdfast.Client(server.endpoint, ca_cert=certs.ca, server_name="not-the-server.example",
                             timeout=5) as wrong:
            with pytest.raises(TLSError, match="does not match"):
                wrong.get("/sn/k")


def test_keep_alive_outlives_expired_tokens(auth_server):
    # The keep-alive stream logs in again when its token goes stale; the lease
    # (TTL 3 s) must outlive several token lifetimes (2 s).
    with etcdfast.Client(auth_server.endpoint, user="root", password="rootpw", timeout=10) as client:
        lease = client.lease(3).grant()
        client.put("/a/leased", "v", lease=lease)
        time.sleep(8)
        assert lease.alive, lease.lost
        assert client.get_value("/a/leased") == b"v"
        lease.revoke()
