"""Leases for the sync client: the :class:`Lease` handle and the keep-alive thread.

The schedule (which lease to refresh when, which are lost) is
:class:`etcdfast._core.keepalive.KeepAliveSchedule`; :class:`KeepAliveStream`
only moves its bytes over one grpcio ``LeaseKeepAlive`` stream shared by
all of a client's leases, as etcd's Go client does.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any, Callable, Iterator, Optional, TypeVar

from .._core.keepalive import KeepAliveSchedule, LeaseHandle, report_lost
from .._core.observe import StreamSession
from ..api.lease import KEEPALIVE
from ..errors import LeaseNotFoundError
from ..types import LeaseKeepAlive, LeaseTimeToLive
from .executor import stop_stream

if TYPE_CHECKING:
    from .client import Client
    from .executor import Executor

__all__ = ["Lease", "KeepAliveStream"]

L = TypeVar("L", bound="Lease")

log = logging.getLogger("etcdfast.lease")


class Lease(LeaseHandle):
    """A lease owned by this process; a context manager that grants and revokes it.

    ::

        with client.lease(10) as lease:           # granted, kept alive
            client.put("/service/me", "up", lease=lease)
            ...                                   # revoked on exit: the key goes

    If the lease is *lost* while kept alive -- it expired, or someone else
    revoked it -- ``lease.alive`` turns False, ``lease.lost`` holds the reason
    and ``on_lost(lease)`` is called (from the keep-alive thread: keep it
    short). Revoking it yourself (:meth:`revoke`, or leaving the ``with``
    block) ends it without calling ``on_lost``. :meth:`wait` blocks until the
    lease ends either way.
    """

    def __init__(
        self,
        client: "Client",
        ttl: int,
        id: int = 0,
        *,
        keep_alive: bool = True,
        on_lost: Optional[Callable[["Lease"], None]] = None,
    ) -> None:
        super().__init__(ttl, id, on_lost)
        self._client = client
        self._keep_alive = keep_alive
        self._ended = threading.Event()

    def grant(self: L, *, timeout: Optional[float] = None) -> L:
        """Grant the lease (once) and start keeping it alive if asked to."""
        if not self.granted:
            self._granted(self._client.grant(self.ttl, self.id, timeout=timeout))
            if self._keep_alive:
                self._client._keepalive().add(self)
        return self

    def revoke(self, *, timeout: Optional[float] = None) -> None:
        """Stop keeping it alive and revoke it; a lease already gone is not an error."""
        self._client._keepalive().remove(self.id)
        try:
            self._client.revoke(self.id, timeout=timeout)
        except LeaseNotFoundError:
            pass
        self._mark_revoked()

    def time_to_live(self, keys: bool = False, *, timeout: Optional[float] = None) -> LeaseTimeToLive:
        return self._client.time_to_live(self.id, keys, timeout=timeout)

    def keep_alive_once(self, *, timeout: Optional[float] = None) -> LeaseKeepAlive:
        return self._client.keep_alive_once(self.id, timeout=timeout)

    @property
    def done(self) -> threading.Event:
        """Set once the lease ends, lost or revoked here (a session's: Go's ``Session.Done``)."""
        return self._ended

    def wait(self, timeout: Optional[float] = None) -> bool:
        """Block until the lease ends -- lost, or revoked here -- (True) or
        ``timeout`` passes (False). ``lost`` tells which."""
        return self._ended.wait(timeout)

    def _signal_ended(self) -> None:
        self._ended.set()

    def __enter__(self: L) -> L:
        return self.grant()

    def __exit__(self, *exc: object) -> None:
        if self._client.closed:
            return
        self.revoke()


class KeepAliveStream:
    """One ``LeaseKeepAlive`` stream refreshing all of a sync client's leases.

    The request iterator handed to grpc *is* the scheduler: grpc pulls from
    it on its own thread, and it sleeps until the next refresh is due. A
    reader thread takes the answers. The stream (and the thread) exist only
    while there are leases to keep; after a break, they reconnect with
    backoff, and leases whose deadline passes meanwhile are reported lost.
    """

    def __init__(self, executor: "Executor") -> None:
        self._executor = executor
        self._clock = executor.state._clock
        self._schedule = KeepAliveSchedule()
        self._cond = threading.Condition()
        self._thread: Optional[threading.Thread] = None
        self._call: Any = None
        self._attempt = 0
        self._closed = False

    def add(self, handle: LeaseHandle) -> None:
        with self._cond:
            if self._closed:
                return
            self._schedule.add(handle, self._clock())
            self._cond.notify_all()
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="etcdfast-keepalive", daemon=True)
                self._thread.start()

    def remove(self, lease_id: int) -> None:
        with self._cond:
            self._schedule.remove(lease_id)
            self._cond.notify_all()

    def close(self) -> None:
        """Stop refreshing and join the thread (leases themselves are left to expire)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            call, thread = self._call, self._thread
        stop_stream(call, thread)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _requests(self, attempt: int) -> Iterator[bytes]:
        while True:
            with self._cond:
                if self._closed or attempt != self._attempt or not self._schedule:
                    return
                lost, requests, wait = self._schedule.tick(self._clock())
                if not requests and not lost:
                    self._cond.wait(wait)
                    continue
            report_lost(lost, expired=True)  # outside the lock: callbacks run here
            yield from requests

    def _run(self) -> None:
        while True:
            with self._cond:
                if self._closed or not self._schedule:
                    self._thread = None
                    return
                self._attempt += 1
                attempt = self._attempt
            session = StreamSession(self._executor.state, KEEPALIVE)
            failure: Optional[BaseException] = None
            try:
                self._executor.login_if_needed()
                call = self._executor.open_stream(KEEPALIVE, self._requests(attempt))
                with self._cond:
                    self._call = call
                    if self._closed:
                        call.cancel()
                for raw in call:
                    with self._cond:
                        gone = self._schedule.answer(raw, self._clock())
                        self._cond.notify_all()
                    if gone is not None:
                        report_lost([gone], expired=False)
            except Exception as exc:  # grpc's error, a failed login, a malformed answer: start over
                failure = exc
                log.debug("keep-alive stream broke: %s", self._executor.state._stream_error(exc))
            session.end(failure)
            with self._cond:
                self._attempt += 1  # ends this attempt's request iterator
                self._call = None
                if self._closed or not self._schedule:
                    continue
                lost, delay = self._schedule.broke(self._clock())
            report_lost(lost, expired=True)
            with self._cond:
                if not self._closed:
                    self._cond.wait(delay)
