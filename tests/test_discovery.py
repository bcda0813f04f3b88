"""Finding and trusting members: DNS SRV discovery, ``unix://`` endpoints and
``insecure_skip_verify``, against real etcd servers and a real DNS server.

The DNS server is Debian's dnsmasq, started by the test on a free loopback
port with the SRV records below and stopped by its PID (the tests skip
without it, except in CI). Clients find it through ``ETCDFAST_NAMESERVERS``.
Both clients (the async one through ``client_drivers.Driver``).

What the expired-certificate test found: ``insecure_skip_verify`` trusts
the chain and name a member presents but not an expired certificate --
grpc's TLS still checks the validity period, and the call fails with
:class:`~etcdfast.errors.TLSError` (an Unavailable), as with verification on.
"""

from __future__ import annotations

import http.client
import os
import pwd
import ssl
import subprocess
import time
from typing import Any, Iterator

import pytest
from client_drivers import KINDS, Driver

import etcdfast
from etcdfast import Unavailable
from etcdfast.discovery import srv_endpoints
from etcdfast.testing import Certificates, EtcdServer, free_port, make_certificates

DNSMASQ = "/usr/sbin/dnsmasq"
WAIT_S = 20.0


@pytest.fixture(params=KINDS)
def kind(request) -> str:
    return request.param  # type: ignore[no-any-return]


# -- servers ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certs(tmp_path_factory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="module")
def tls_server(certs) -> Iterator[EtcdServer]:
    with EtcdServer(name="tls", tls=certs) as server:
        yield server


@pytest.fixture(scope="module")
def unix_server(tmp_path_factory) -> Iterator[Any]:
    """etcd serving on a unix socket as well as TCP (its health check). etcd
    makes ``unix://localhost:<port>`` a socket file named ``localhost:<port>``
    in its working directory: it is started from a temporary one."""
    directory = tmp_path_factory.mktemp("unix")
    client_port, socket_port = free_port(), free_port()
    server = EtcdServer(name="unix", client_port=client_port, peer_port=free_port(), extra_args=[
        "--listen-client-urls", f"http://127.0.0.1:{client_port},unix://localhost:{socket_port}",
        "--advertise-client-urls", f"http://127.0.0.1:{client_port}"])
    here = os.getcwd()
    os.chdir(directory)  # only while etcd starts: the child takes its working directory from here
    try:
        server.start()
    finally:
        os.chdir(here)
    try:
        server.socket = str(directory / f"localhost:{socket_port}")  # type: ignore[attr-defined]
        assert os.path.exists(server.socket)  # type: ignore[attr-defined]
        yield server
    finally:
        server.close()


class _UnverifiedHealth(EtcdServer):
    """A TLS server whose own health check does not verify its certificate
    (an expired one, say: what is under test is the client's verdict)."""

    def _http_connection(self, timeout: float) -> http.client.HTTPConnection:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return http.client.HTTPSConnection("127.0.0.1", self.client_port, timeout=timeout, context=context)


def _self_signed(directory: str) -> Certificates:
    """A self-signed server certificate made with openssl, for a name no endpoint uses."""
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", "self.key", "-out", "self.crt", "-days", "2", "-subj", "/CN=selfsigned.test",
         "-addext", "subjectAltName=DNS:selfsigned.test"],
        cwd=directory, check=True, capture_output=True, timeout=60)
    crt, key = os.path.join(directory, "self.crt"), os.path.join(directory, "self.key")
    return Certificates(crt, crt, key, crt, key, crt, key, crt)


@pytest.fixture(scope="module")
def self_signed_server(tmp_path_factory) -> Iterator[EtcdServer]:
    certificate = _self_signed(str(tmp_path_factory.mktemp("self")))
    with _UnverifiedHealth(name="selfsigned", tls=certificate) as server:
        yield server


@pytest.fixture(scope="module")
def expired_server(certs) -> Iterator[EtcdServer]:
    expired = certs._replace(server_cert=certs.expired_cert, server_key=certs.expired_key)
    with _UnverifiedHealth(name="expired", tls=expired) as server:
        yield server


@pytest.fixture(scope="module")
def dns(etcd_server, tls_server, unix_server) -> Iterator[str]:
    """dnsmasq on a free port with the records; yields its ``host:port``."""
    if not os.access(DNSMASQ, os.X_OK):
        if os.environ.get("CI"):
            pytest.fail(f"CI needs Debian's dnsmasq at {DNSMASQ}")
        pytest.skip(f"no dnsmasq at {DNSMASQ}")
    port = free_port()
    records = [
        # plain.test: plaintext only (dropped unless insecure_discovery)
        f"_etcd-client._tcp.plain.test,localhost,{etcd_server.client_port},0,10",
        # both.test: TLS and plaintext, each at its own server
        f"_etcd-client-ssl._tcp.both.test,localhost,{tls_server.client_port},0,10",
        f"_etcd-client._tcp.both.test,localhost,{etcd_server.client_port},0,10",
        # the cluster named "blue" in plain.test: another server
        f"_etcd-client-blue._tcp.plain.test,localhost,{unix_server.client_port},0,10",
        # localhost: TLS, under the name the certificates carry
        f"_etcd-client-ssl._tcp.localhost,localhost,{tls_server.client_port},0,10",
    ]
    process = subprocess.Popen(
        [DNSMASQ, "--no-daemon", f"--port={port}", "--listen-address=127.0.0.1", "--bind-interfaces",
         "--no-resolv", "--no-hosts", "--conf-file=/dev/null", "--pid-file=",
         f"--user={pwd.getpwuid(os.getuid()).pw_name}",  # no switch to "nobody": no root needed
         *[f"--srv-host={record}" for record in records]],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + WAIT_S
        while True:  # until it answers
            try:
                srv_endpoints("plain.test", nameservers=[f"127.0.0.1:{port}"], insecure=True, timeout=0.5)
                break
            except Unavailable:
                assert process.poll() is None, process.stderr.read() if process.stderr else ""
                assert time.monotonic() < deadline, "dnsmasq did not answer"
                time.sleep(0.05)
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()  # the process we started, by its PID
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        if process.stderr is not None:
            process.stderr.close()


@pytest.fixture()
def nameserver(dns, monkeypatch) -> str:
    monkeypatch.setenv("ETCDFAST_NAMESERVERS", dns)
    return dns


# -- DNS SRV discovery -------------------------------------------------------------------------


def test_srv_records_by_scheme_and_name(nameserver, etcd_server, tls_server, unix_server):
    ns = [nameserver]
    plain, tls = f"http://localhost:{etcd_server.client_port}", f"https://localhost:{tls_server.client_port}"
    assert srv_endpoints("both.test", nameservers=ns, insecure=True) == [tls, plain]  # TLS first
    assert srv_endpoints("both.test", nameservers=ns) == [tls]  # plaintext dropped
    assert srv_endpoints("plain.test", nameservers=ns, insecure=True) == [plain]
    assert srv_endpoints("plain.test", "blue", nameservers=ns, insecure=True) == [
        f"http://localhost:{unix_server.client_port}"]
    with pytest.raises(Unavailable, match="no usable endpoint"):
        srv_endpoints("plain.test", nameservers=ns)
    with pytest.raises(Unavailable):
        srv_endpoints("nothing.test", nameservers=ns, insecure=True)
    with pytest.raises(etcdfast.InvalidArgumentError):
        srv_endpoints("", nameservers=ns)


def test_a_client_from_discovery(kind, nameserver, etcd_server, unix_server, certs, etcd_prefix):
    with pytest.raises(Unavailable):
        etcdfast.Client(discovery_srv="plain.test")  # plaintext only: nothing usable
    with Driver(kind, None, discovery_srv="plain.test", insecure_discovery=True, timeout=10) as client:
        assert client.endpoints == [f"localhost:{etcd_server.client_port}"]
        client.put(etcd_prefix + b"k", b"v")
    with etcdfast.Client(etcd_server.endpoint) as direct:
        assert direct.get_value(etcd_prefix + b"k") == b"v"  # the same server
    # The cluster named "blue": another server.
    with Driver(kind, None, discovery_srv="plain.test", discovery_srv_name="blue", insecure_discovery=True,
                timeout=10) as blue:
        assert blue.get_value(etcd_prefix + b"k") is None
        with etcdfast.Client(unix_server.endpoint) as other:
            assert blue.status().header.member_id == other.status().header.member_id


def test_tls_from_discovery(kind, nameserver, tls_server, certs, etcd_prefix):
    # The domain is the name the certificates must carry (etcdctl's rule): localhost here.
    with Driver(kind, None, discovery_srv="localhost", ca_cert=certs.ca, timeout=10) as client:
        assert client.endpoints == [f"https://localhost:{tls_server.client_port}"]
        client.put(etcd_prefix + b"k", b"tls")
        assert client.get_value(etcd_prefix + b"k") == b"tls"
    # both.test is not on the certificate: refused, unless server_name names one that is.
    with Driver(kind, None, discovery_srv="both.test", ca_cert=certs.ca, timeout=5) as wrong_name:
        with pytest.raises(etcdfast.TLSError):
            wrong_name.get(etcd_prefix + b"k")
    with Driver(kind, None, discovery_srv="both.test", ca_cert=certs.ca, server_name="localhost",
                timeout=10) as named:
        assert named.get_value(etcd_prefix + b"k") == b"tls"


# -- unix sockets -------------------------------------------------------------------------------


def test_unix_socket_endpoints(kind, unix_server, etcd_prefix):
    with Driver(kind, "unix://" + unix_server.socket, timeout=10) as client:
        assert client.endpoints == ["unix://" + unix_server.socket]
        watch = client.watch(etcd_prefix + b"k")
        client.put(etcd_prefix + b"k", b"over a socket")
        assert [e.kv.value for e in watch.get(timeout=WAIT_S)] == [b"over a socket"]
        with client.lease(10) as lease:
            assert lease.alive
        assert client.status().version.startswith("3.")
        # Pinned maintenance calls take the socket too.
        assert client.status(endpoint="unix://" + unix_server.socket).header.member_id
    with etcdfast.Client(unix_server.endpoint) as tcp:
        assert tcp.get_value(etcd_prefix + b"k") == b"over a socket"  # the same server
    with Driver(kind, "unix://" + unix_server.socket + ".missing", timeout=2, dial_timeout=None,
                max_retries=1) as nowhere:
        with pytest.raises(Unavailable):
            nowhere.get("k")


# -- insecure_skip_verify ---------------------------------------------------------------------


def test_skip_verify_against_a_self_signed_certificate(kind, self_signed_server, etcd_prefix):
    with Driver(kind, self_signed_server.endpoint, timeout=5) as verifying:
        with pytest.raises(etcdfast.TLSError):  # no CA trusts it, and its name is not the endpoint's
            verifying.get("k")
    with Driver(kind, self_signed_server.endpoint, timeout=10, insecure_skip_verify=True) as client:
        client.put(etcd_prefix + b"k", b"trusted as presented")
        assert client.get_value(etcd_prefix + b"k") == b"trusted as presented"
    # An http:// endpoint gets TLS too with insecure_skip_verify (it implies TLS).
    plain_scheme = self_signed_server.endpoint.replace("https://", "")
    with Driver(kind, plain_scheme, timeout=10, insecure_skip_verify=True) as implied:
        assert implied.get_value(etcd_prefix + b"k") == b"trusted as presented"


def test_skip_verify_against_a_ca_signed_certificate(kind, tls_server, etcd_prefix):
    with Driver(kind, tls_server.endpoint, timeout=10, insecure_skip_verify=True) as client:  # no ca_cert
        client.put(etcd_prefix + b"k", b"v")
        assert client.get_value(etcd_prefix + b"k") == b"v"


def test_an_expired_certificate_is_refused_unless_skip_verify(kind, expired_server, certs, etcd_prefix):
    # Go's InsecureSkipVerify checks nothing, the validity period included; so
    # does ours (its TLS tunnels verify nothing: see etcdfast._trust).
    with Driver(kind, expired_server.endpoint, timeout=5, ca_cert=certs.ca) as client:
        with pytest.raises(etcdfast.TLSError) as refused:
            client.get("k")
        assert "expired" in str(refused.value).lower() or "certificate" in str(refused.value).lower(), \
            str(refused.value)
    with Driver(kind, expired_server.endpoint, timeout=5, insecure_skip_verify=True) as client:
        client.put(etcd_prefix + b"k", b"v")
        assert client.get_value(etcd_prefix + b"k") == b"v"


def test_a_silent_name_server_is_unavailable_not_a_hang():
    port = free_port()  # nothing answers there
    with pytest.raises(Unavailable, match=f"127.0.0.1:{port}"):
        srv_endpoints("plain.test", nameservers=[f"127.0.0.1:{port}"], timeout=0.2)
