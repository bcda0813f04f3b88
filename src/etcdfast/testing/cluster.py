""":class:`EtcdCluster`: ``n`` real etcd members joined as one cluster, with
leader-aware faults (kill, restart, pause the leader or any member)."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import threading
import time
import uuid
from typing import TYPE_CHECKING, Dict, List, Optional, Sequence, Set, Tuple

from .._etcd import EtcdStartError, find_etcd_binary, free_port, register_exit_hook, temp_root
from .server import EtcdServer

if TYPE_CHECKING:
    from .certs import Certificates

__all__ = ["EtcdCluster"]

# Clusters still open at interpreter exit are closed (members killed by PID,
# the root directory removed). The hook is registered by the first start(),
# after the servers' own exit hook, so it runs first; that one then finds
# nothing of theirs left.
_LIVE_CLUSTERS: "Set[EtcdCluster]" = set()
_exit_hook_lock = threading.Lock()
_exit_hook_registered = False


def _close_leftover_clusters() -> None:
    for cluster in list(_LIVE_CLUSTERS):
        if cluster._started_by == os.getpid():  # not in a forked child (see _etcd._kill_leftovers)
            cluster.close()


def _register_exit_hook() -> None:
    global _exit_hook_registered
    with _exit_hook_lock:
        if not _exit_hook_registered:
            register_exit_hook()  # the servers' hook first: atexit runs the last one first
            atexit.register(_close_leftover_clusters)
            _exit_hook_registered = True


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
            tempfile.mkdtemp(prefix="etcdfast-cluster-", dir=temp_root()) if data_root is None
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
        _register_exit_hook()
        self._started_by = os.getpid()
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
