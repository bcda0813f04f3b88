"""Leases: the unary calls, the keep-alive schedule, and the sync driver.

The pieces are layered like the KV ones. Builders (``grant``, ``revoke``...)
return :class:`~etcdfast._request.Request` objects that both clients execute.
:class:`KeepAliveSchedule` is the keep-alive logic with no IO at all: which
lease to refresh when, and which ones are lost. :class:`KeepAliveStream`
(threads, here) and ``etcdfast.aio.lease.AsyncKeepAliveStream`` (asyncio)
only move bytes between the schedule and one ``LeaseKeepAlive`` stream shared
by all of a client's leases, as etcd's Go client does.

Lease loss is never silent: when a refresh answers TTL <= 0 (revoked or
expired) or no refresh reached the server within the TTL, the lease's handle
is marked lost with :class:`~etcdfast.errors.LeaseExpiredError`, its
``on_lost`` callback runs, and :meth:`Lease.wait` returns.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterator, List, Optional, Tuple, Union

import grpc

from . import _schema
from ._backoff import Backoff
from ._request import Request, check_timeout
from .errors import EtcdError, InvalidArgumentError, LeaseExpiredError, LeaseNotFoundError
from .types import LeaseGrant, LeaseKeepAlive, LeaseTimeToLive, ResponseHeader

if TYPE_CHECKING:
    from .client import Client

__all__ = [
    "Lease",
    "KeepAliveSchedule",
    "KeepAliveStream",
    "grant",
    "revoke",
    "time_to_live",
    "leases",
]

log = logging.getLogger("etcdfast.lease")

GRANT = "/etcdserverpb.Lease/LeaseGrant"
REVOKE = "/etcdserverpb.Lease/LeaseRevoke"
KEEPALIVE = "/etcdserverpb.Lease/LeaseKeepAlive"
TIME_TO_LIVE = "/etcdserverpb.Lease/LeaseTimeToLive"
LEASES = "/etcdserverpb.Lease/LeaseLeases"

LeaseLike = Union[int, "LeaseHandle"]


def _positive_id(lease: object) -> int:
    value = getattr(lease, "id", lease)
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"lease must be an int ID or a Lease, not {type(lease).__name__}")
    if value <= 0:
        raise InvalidArgumentError(f"lease ID must be > 0, got {value}")
    return value


def _serialize(name: str, **fields: Any) -> bytes:
    return _schema.message(f"etcdserverpb.{name}")(**fields).SerializeToString()  # type: ignore[no-any-return]


# -- unary calls (cold path: generated message classes are fine here) --------

_decode_grant = _schema.decoder(
    "etcdserverpb.LeaseGrantResponse", lambda m: LeaseGrant(_schema.header(m), m.ID, m.TTL)
)
_decode_revoke = _schema.decoder("etcdserverpb.LeaseRevokeResponse", _schema.header)


def _ttl_result(m: Any) -> LeaseTimeToLive:
    if m.TTL == -1:
        # etcd answers an unknown lease with TTL -1 rather than an error.
        raise LeaseNotFoundError(f"lease {m.ID:#x} not found (expired, revoked or never granted)")
    return LeaseTimeToLive(_schema.header(m), m.ID, m.TTL, m.grantedTTL, list(m.keys))


_decode_ttl = _schema.decoder("etcdserverpb.LeaseTimeToLiveResponse", _ttl_result)
_decode_leases = _schema.decoder(
    "etcdserverpb.LeaseLeasesResponse", lambda m: sorted(status.ID for status in m.leases)
)
_decode_keepalive = _schema.decoder(
    "etcdserverpb.LeaseKeepAliveResponse", lambda m: LeaseKeepAlive(_schema.header(m), m.ID, m.TTL)
)


def grant(ttl: int, id: int = 0, *, timeout: Optional[float] = None) -> Request[LeaseGrant]:
    """Grant a lease of ``ttl`` seconds (etcd may raise short TTLs to its minimum).

    ``id=0`` lets the server choose the ID. Keys attached to the lease are
    deleted when it expires or is revoked.
    """
    if isinstance(ttl, bool) or not isinstance(ttl, int):
        raise TypeError(f"ttl must be an int number of seconds, not {type(ttl).__name__}")
    if ttl <= 0:
        raise InvalidArgumentError(f"lease TTL must be > 0 seconds, got {ttl}")
    if isinstance(id, bool) or not isinstance(id, int) or id < 0:
        raise InvalidArgumentError(f"lease ID must be an int >= 0, got {id!r}")
    payload = _serialize("LeaseGrantRequest", TTL=ttl, ID=id)
    # Not repeatable: a retried grant could create a second lease.
    return Request(GRANT, payload, _decode_grant, timeout=check_timeout(timeout))


def revoke(lease: LeaseLike, *, timeout: Optional[float] = None) -> Request[ResponseHeader]:
    """Revoke a lease now; its keys are deleted. Unknown lease: LeaseNotFoundError."""
    payload = _serialize("LeaseRevokeRequest", ID=_positive_id(lease))
    return Request(REVOKE, payload, _decode_revoke, repeatable=True, timeout=check_timeout(timeout))


def time_to_live(
    lease: LeaseLike, keys: bool = False, *, timeout: Optional[float] = None
) -> Request[LeaseTimeToLive]:
    """Remaining TTL and granted TTL of a lease, with its keys if ``keys=True``."""
    payload = _serialize("LeaseTimeToLiveRequest", ID=_positive_id(lease), keys=bool(keys))
    return Request(TIME_TO_LIVE, payload, _decode_ttl, repeatable=True, timeout=check_timeout(timeout))


def leases(*, timeout: Optional[float] = None) -> Request[List[int]]:
    """IDs of all leases the cluster knows, in ascending order."""
    return Request(LEASES, b"", _decode_leases, repeatable=True, timeout=check_timeout(timeout))


def keepalive_request(lease_id: int) -> bytes:
    """A ``LeaseKeepAliveRequest`` (one varint field; cheaper than a message object)."""
    return _serialize("LeaseKeepAliveRequest", ID=lease_id)


def keepalive_answer(data: bytes, lease_id: int) -> LeaseKeepAlive:
    """Decode a keep-alive answer; TTL <= 0 means the lease is gone."""
    answer = _decode_keepalive(data, None)
    if answer.ttl <= 0:
        raise LeaseNotFoundError(f"lease {lease_id:#x} not found (expired, revoked or never granted)")
    return answer


# -- the keep-alive logic, without IO ----------------------------------------


class LeaseHandle:
    """State shared by :class:`Lease` and the asyncio ``AsyncLease``."""

    id: int
    ttl: int

    def __init__(self, ttl: int, id: int = 0, on_lost: Optional[Callable[["LeaseHandle"], None]] = None):
        self.ttl = ttl
        self.id = id
        self.on_lost = on_lost
        #: Why the lease was lost (``LeaseExpiredError``...), or ``None`` while alive.
        self.lost: Optional[EtcdError] = None
        #: Seconds left at the last refresh, and when it was sent (monotonic).
        self.remaining_ttl = ttl
        self.refreshed_at: Optional[float] = None

    @property
    def alive(self) -> bool:
        """False once the lease is known to be lost (or was revoked through this handle)."""
        return self.lost is None

    def _mark_lost(self, error: EtcdError) -> None:
        if self.lost is not None:
            return
        self.lost = error
        self._signal_lost()
        if self.on_lost is not None:
            try:
                self.on_lost(self)
            except Exception:  # a user callback must not kill the keep-alive stream
                log.exception("on_lost callback of lease %#x raised", self.id)

    def _signal_lost(self) -> None:
        raise NotImplementedError

    def __repr__(self) -> str:
        state = "alive" if self.alive else f"lost: {self.lost}"
        return f"<{type(self).__name__} id={self.id:#x} ttl={self.ttl} {state}>"


class _Entry:
    __slots__ = ("handle", "due", "deadline", "sent_at")

    def __init__(self, handle: LeaseHandle, now: float) -> None:
        self.handle = handle
        self.due = now  # refresh at once: the caller may have granted it long ago
        self.deadline = now + handle.ttl
        self.sent_at: Optional[float] = None


class KeepAliveSchedule:
    """When to refresh which lease, and which leases are lost. Pure logic, no IO.

    A lease is refreshed about every TTL/3 (Go's clientv3 does the same), so
    two refreshes can be lost before it expires. Its *deadline* is the send
    time of the last answered refresh plus the TTL it answered: past that, the
    server has certainly dropped it.
    """

    #: Longest sleep between checks, so a lost lease is noticed promptly.
    MAX_WAIT = 0.5
    #: Longest wait before reopening a broken stream: Go's ``retryConnWait``.
    #: A longer backoff (up to 2 s) let short leases expire during rolling
    #: member restarts although the server still held them.
    RECONNECT_MAX = 0.5

    def __init__(self) -> None:
        self._entries: Dict[int, _Entry] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, lease_id: object) -> bool:
        return lease_id in self._entries

    def add(self, handle: LeaseHandle, now: float) -> None:
        self._entries[handle.id] = _Entry(handle, now)

    def remove(self, lease_id: int) -> Optional[LeaseHandle]:
        entry = self._entries.pop(lease_id, None)
        return entry.handle if entry is not None else None

    def due(self, now: float) -> Tuple[List[int], float]:
        """IDs to refresh now, and how long to sleep before asking again."""
        ready = []
        wait = self.MAX_WAIT
        for lease_id, entry in self._entries.items():
            if entry.due <= now:
                ready.append(lease_id)
                entry.sent_at = now
                # If no answer comes, try again after another third of the TTL.
                entry.due = now + max(entry.handle.ttl / 3.0, 0.1)
            wait = min(wait, entry.due - now, entry.deadline - now)
        return ready, max(wait, 0.0)

    def answered(self, lease_id: int, ttl: int, now: float) -> Optional[LeaseHandle]:
        """Record an answer; returns the handle if the answer says the lease is gone."""
        entry = self._entries.get(lease_id)
        if entry is None:
            return None
        if ttl <= 0:
            del self._entries[lease_id]
            return entry.handle
        sent = entry.sent_at if entry.sent_at is not None else now
        entry.deadline = sent + ttl
        entry.due = sent + max(ttl / 3.0, 0.1)
        entry.handle.remaining_ttl = ttl
        entry.handle.refreshed_at = sent
        return None

    def stream_broke(self, now: float) -> None:
        """The stream broke: refreshes sent on it and never answered are lost,
        so those leases are due at once on the next stream."""
        for entry in self._entries.values():
            if entry.sent_at is not None and entry.sent_at != entry.handle.refreshed_at:
                entry.due = min(entry.due, now)

    def expired(self, now: float) -> List[LeaseHandle]:
        """Remove and return leases whose deadline passed with no refresh."""
        gone = [lease_id for lease_id, entry in self._entries.items() if entry.deadline <= now]
        return [self._entries.pop(lease_id).handle for lease_id in gone]

    def handles(self) -> List[LeaseHandle]:
        return [entry.handle for entry in self._entries.values()]


def lost_error(handle: LeaseHandle, expired: bool) -> LeaseExpiredError:
    if expired:
        return LeaseExpiredError(
            f"lease {handle.id:#x} expired: no keep-alive reached the server within its TTL"
        )
    return LeaseExpiredError(f"lease {handle.id:#x} is gone (expired or revoked on the server)")


# -- sync driver ---------------------------------------------------------------


class Lease(LeaseHandle):
    """A lease owned by this process; a context manager that grants and revokes it.

    ::

        with client.lease(10) as lease:           # granted, kept alive
            client.put("/service/me", "up", lease=lease)
            ...                                   # revoked on exit: the key goes

    ``lease.alive`` turns False, ``lease.lost`` holds the reason and
    ``on_lost(lease)`` is called (from the keep-alive thread: keep it short)
    if the lease is lost while kept alive. :meth:`wait` blocks until then.
    """

    def __init__(
        self,
        client: "Client",
        ttl: int,
        id: int = 0,
        *,
        keep_alive: bool = True,
        on_lost: Optional[Callable[[LeaseHandle], None]] = None,
    ) -> None:
        super().__init__(ttl, id, on_lost)
        self._client = client
        self._keep_alive = keep_alive
        self._lost_event = threading.Event()
        self.granted = False

    def grant(self, *, timeout: Optional[float] = None) -> "Lease":
        """Grant the lease (once) and start keeping it alive if asked to."""
        if not self.granted:
            answer = self._client.grant(self.ttl, self.id, timeout=timeout)
            self.id, self.ttl, self.remaining_ttl = answer.id, answer.ttl, answer.ttl
            self.granted = True
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
        self._mark_lost(LeaseNotFoundError(f"lease {self.id:#x} was revoked"))

    def time_to_live(self, keys: bool = False, *, timeout: Optional[float] = None) -> LeaseTimeToLive:
        return self._client.time_to_live(self.id, keys, timeout=timeout)

    def keep_alive_once(self, *, timeout: Optional[float] = None) -> LeaseKeepAlive:
        return self._client.keep_alive_once(self.id, timeout=timeout)

    def wait(self, timeout: Optional[float] = None) -> bool:
        """Block until the lease is lost (True) or ``timeout`` passes (False)."""
        return self._lost_event.wait(timeout)

    def _signal_lost(self) -> None:
        self._lost_event.set()

    def __enter__(self) -> "Lease":
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

    def __init__(
        self,
        open_stream: Callable[[Iterator[bytes]], Any],
        error_of: Optional[Callable[[grpc.RpcError], EtcdError]] = None,
    ) -> None:
        self._open_stream = open_stream
        self._error_of = error_of  # also lets the client drop a stale auth token
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
            self._schedule.add(handle, time.monotonic())
            self._cond.notify_all()
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="etcdfast-keepalive", daemon=True
                )
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
        if call is not None:
            call.cancel()
        if thread is not None and thread is not threading.current_thread():
            thread.join(10)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _requests(self, attempt: int) -> Iterator[bytes]:
        while True:
            with self._cond:
                if self._closed or attempt != self._attempt or not self._schedule:
                    return
                now = time.monotonic()
                lost = self._schedule.expired(now)
                ready, wait = self._schedule.due(now)
                if not ready and not lost:
                    self._cond.wait(wait)
                    continue
            self._report(lost, expired=True)  # outside the lock: callbacks run here
            for lease_id in ready:
                yield keepalive_request(lease_id)

    def _report(self, handles: List[LeaseHandle], expired: bool) -> None:
        for handle in handles:
            handle._mark_lost(lost_error(handle, expired))

    def _run(self) -> None:
        backoff = Backoff(maximum=KeepAliveSchedule.RECONNECT_MAX)
        while True:
            with self._cond:
                if self._closed or not self._schedule:
                    self._thread = None
                    return
                self._attempt += 1
                attempt = self._attempt
                try:
                    self._call = call = self._open_stream(self._requests(attempt))
                except Exception as exc:  # e.g. the channel was closed under us
                    log.debug("keep-alive stream did not open: %r", exc)
                    call = None
            if call is not None:
                try:
                    for raw in call:
                        backoff.reset()
                        self._on_answer(raw)
                except grpc.RpcError as exc:
                    log.debug("keep-alive stream broke: %r",
                              self._error_of(exc) if self._error_of else exc)
                except EtcdError as exc:  # a malformed answer: start over
                    log.warning("keep-alive stream: %s", exc)
            with self._cond:
                self._attempt += 1  # ends this attempt's request iterator
                self._call = None
                if self._closed or not self._schedule:
                    continue
                self._schedule.stream_broke(time.monotonic())
                lost = self._schedule.expired(time.monotonic())
            self._report(lost, expired=True)
            with self._cond:
                if not self._closed:
                    self._cond.wait(backoff.next_delay())

    def _on_answer(self, raw: bytes) -> None:
        answer = _decode_keepalive(raw, None)
        with self._cond:
            gone = self._schedule.answered(answer.id, answer.ttl, time.monotonic())
            self._cond.notify_all()
        if gone is not None:
            self._report([gone], expired=False)
