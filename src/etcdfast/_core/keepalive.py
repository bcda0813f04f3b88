"""Lease keep-alives with no IO: the schedule and the lease handles' shared state.

All of a client's leases are refreshed on one ``LeaseKeepAlive`` stream, as
etcd's Go client does. :class:`KeepAliveSchedule` decides which lease to
refresh when, reads the answers, and tells which leases are lost and how
long to wait before reopening a broken stream. The drivers
(``_sync.lease.KeepAliveStream`` on threads, ``aio.lease.AsyncKeepAliveStream``
on tasks) only move its bytes.

Loss is never silent: when a refresh answers TTL <= 0 (revoked or expired
elsewhere) or no refresh reached the server within the TTL, the lease's
handle is marked lost with :class:`~etcdfast.errors.LeaseExpiredError`, its
``on_lost`` callback runs and ``wait()`` returns. A lease its owner revokes
through the handle (or by leaving its ``with`` block) is *ended*, not lost:
no ``on_lost``, since alerting code would page on every clean shutdown.
"""

from __future__ import annotations

import collections
import logging
from typing import Any, Callable, Deque, Dict, List, Optional, Tuple

from ..api.lease import decode_keepalive, keepalive_request
from ..errors import EtcdError, LeaseExpiredError
from ..types import LeaseGrant
from .backoff import Backoff

__all__ = ["LeaseHandle", "KeepAliveSchedule", "lost_error", "report_lost"]

log = logging.getLogger("etcdfast.lease")


class LeaseHandle:
    """State shared by the sync ``Lease`` and the asyncio ``AsyncLease``."""

    def __init__(self, ttl: int, id: int = 0, on_lost: Optional[Callable[[Any], None]] = None) -> None:
        self.ttl = ttl
        self.id = id
        self.on_lost = on_lost
        #: Why the lease was lost (``LeaseExpiredError``...), or ``None``.
        self.lost: Optional[EtcdError] = None
        #: The lease was revoked through this handle (its owner ended it).
        self.revoked = False
        #: The lease was granted (or adopted) through this handle.
        self.granted = False
        #: Seconds left at the last refresh, and when it was sent (monotonic).
        self.remaining_ttl = ttl
        self.refreshed_at: Optional[float] = None

    @property
    def alive(self) -> bool:
        """False once the lease is lost or was revoked through this handle."""
        return self.lost is None and not self.revoked

    def _granted(self, answer: LeaseGrant) -> None:
        self.id, self.ttl, self.remaining_ttl = answer.id, answer.ttl, answer.ttl
        self.granted = True

    def _mark_lost(self, error: EtcdError) -> None:
        """Lost by expiry or a revoke elsewhere: signal it and call ``on_lost``."""
        if not self.alive:
            return
        self.lost = error
        self._signal_ended()
        if self.on_lost is not None:
            try:
                self.on_lost(self)
            except Exception:  # a user callback must not kill the keep-alive stream
                log.exception("on_lost callback of lease %#x raised", self.id)

    def _mark_revoked(self) -> None:
        """Revoked by its owner: ended, not lost."""
        if self.alive:
            self.revoked = True
            self._signal_ended()

    def _signal_ended(self) -> None:  # pragma: no cover - each driver's event
        raise NotImplementedError

    def __repr__(self) -> str:
        if self.lost is not None:
            state = f"lost: {self.lost}"
        else:
            state = "revoked" if self.revoked else "alive"
        return f"<{type(self).__name__} id={self.id:#x} ttl={self.ttl} {state}>"


def lost_error(handle: LeaseHandle, expired: bool) -> LeaseExpiredError:
    if expired:
        return LeaseExpiredError(
            f"lease {handle.id:#x} expired: no keep-alive reached the server within its TTL"
        )
    return LeaseExpiredError(f"lease {handle.id:#x} is gone (expired or revoked on the server)")


class _Entry:
    __slots__ = ("handle", "due", "deadline", "unanswered")

    def __init__(self, handle: LeaseHandle, now: float) -> None:
        self.handle = handle
        self.due = now  # refresh at once: the caller may have granted it long ago
        self.deadline = now + handle.ttl
        #: Send times of the refreshes not answered yet, oldest first (etcd
        #: answers a stream's requests in order).
        self.unanswered: Deque[float] = collections.deque()


class KeepAliveSchedule:
    """When to refresh which lease, and which leases are lost. Pure logic, no IO.

    A lease is refreshed about every TTL/3 (Go's clientv3 does the same), so
    two refreshes can be lost before it expires. Its *deadline* is the send
    time of the last answered refresh plus the TTL it answered: past that, the
    server has certainly dropped it.

    A driver loops: :meth:`tick` (leases lost, requests to send, how long to
    sleep), :meth:`answer` for each answer read, :meth:`broke` when the stream
    breaks (leases lost, how long to wait before reopening).
    """

    #: Longest sleep between checks, so a lost lease is noticed promptly.
    MAX_WAIT = 0.5
    #: Longest wait before reopening a broken stream: Go's ``retryConnWait``.
    #: A longer backoff (up to 2 s) let short leases expire during rolling
    #: member restarts although the server still held them.
    RECONNECT_MAX = 0.5

    def __init__(self) -> None:
        self._entries: Dict[int, _Entry] = {}
        self._backoff = Backoff(maximum=self.RECONNECT_MAX)

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, lease_id: object) -> bool:
        return lease_id in self._entries

    def add(self, handle: LeaseHandle, now: float) -> None:
        self._entries[handle.id] = _Entry(handle, now)

    def remove(self, lease_id: int) -> Optional[LeaseHandle]:
        entry = self._entries.pop(lease_id, None)
        return entry.handle if entry is not None else None

    def handles(self) -> List[LeaseHandle]:
        return [entry.handle for entry in self._entries.values()]

    # -- the driver's loop -----------------------------------------------------

    def tick(self, now: float) -> Tuple[List[LeaseHandle], List[bytes], float]:
        """Leases lost by now (removed; report them with :func:`report_lost`),
        refresh requests to send, and how long to sleep before the next tick."""
        lost = self.expired(now)
        ready, wait = self.due(now)
        return lost, [keepalive_request(lease_id) for lease_id in ready], wait

    def answer(self, raw: bytes, now: float) -> Optional[LeaseHandle]:
        """Record one raw answer; returns the handle if it says the lease is gone."""
        answer = decode_keepalive(raw, None)
        self._backoff.reset()
        return self.answered(answer.id, answer.ttl, now)

    def broke(self, now: float) -> Tuple[List[LeaseHandle], float]:
        """The stream broke: leases lost meanwhile, and the wait before reopening."""
        self.stream_broke(now)
        return self.expired(now), self._backoff.next_delay()

    # -- the pieces --------------------------------------------------------------

    def due(self, now: float) -> Tuple[List[int], float]:
        """IDs to refresh now, and how long to sleep before asking again."""
        ready = []
        wait = self.MAX_WAIT
        for lease_id, entry in self._entries.items():
            if entry.due <= now:
                ready.append(lease_id)
                entry.unanswered.append(now)
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
        # The answer is to the oldest refresh in flight: the lease's new TTL
        # runs from when *that* one was sent, not from the latest.
        sent = entry.unanswered.popleft() if entry.unanswered else now
        entry.deadline = sent + ttl
        entry.due = sent + max(ttl / 3.0, 0.1)
        entry.handle.remaining_ttl = ttl
        entry.handle.refreshed_at = sent
        return None

    def stream_broke(self, now: float) -> None:
        """Refreshes sent on a broken stream and never answered are lost, so
        those leases are due at once on the next stream."""
        for entry in self._entries.values():
            if entry.unanswered:
                entry.unanswered.clear()
                entry.due = min(entry.due, now)

    def expired(self, now: float) -> List[LeaseHandle]:
        """Remove and return leases whose deadline passed with no refresh."""
        gone = [lease_id for lease_id, entry in self._entries.items() if entry.deadline <= now]
        return [self._entries.pop(lease_id).handle for lease_id in gone]


def report_lost(handles: List[LeaseHandle], expired: bool) -> None:
    """Mark ``handles`` lost (runs their ``on_lost`` callbacks: call it outside locks)."""
    for handle in handles:
        handle._mark_lost(lost_error(handle, expired))

