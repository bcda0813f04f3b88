"""python-etcd3's :class:`Lock`, on python-etcd3's key layout, over the compat client.

The protocol is python-etcd3 0.12.0's, so a compat process and a python-etcd3
process exclude each other on the same name: the lock is the key
``/locks/<name>``, created only if absent (``create_revision == 0``) with a
random UUID as its value, on a lease of ``ttl`` seconds that nobody keeps
alive (the lock expires unless :meth:`Lock.refresh` is called in time).

What changed, and why:

* A waiter watches for the key's *deletion* from the revision it read the
  holder at, so it wakes when the lock is released or expires, not on every
  write, and misses no release that happens while it starts watching
  (python-etcd3 woke on any event and could sleep through a release that
  came before its watch existed). python-etcd3 0.12.0's waiting also needs
  tenacity < 7; this one has no such dependency.
* One lease per ``acquire()`` call, renewed before each new attempt (so the
  lock still lives ``ttl`` seconds from when it is acquired) and revoked if
  the call does not get the lock (python-etcd3 granted a new lease per
  attempt and left each to expire).
* :meth:`release` revokes the lease, which deletes the key if it is still
  ours: one round trip, and no lease left behind.
* ``with lock:`` waits until the lock is acquired (python-etcd3 gave up after
  10 s and ran the block without the lock).

What it does not promise (use etcdfast's ``session.mutex()`` for these): no
fencing token that writes can be checked against, no fairness (every waiter
wakes on each release and races; any may win), no keep-alive (a holder that
outlives its ``ttl`` without ``refresh()`` silently loses the lock).
"""

from __future__ import annotations

import time
import uuid
from typing import TYPE_CHECKING, Optional, Union

from ...errors import EtcdError, LeaseNotFoundError
from . import etcdrpc
from ._rpc import raise_translated
from .exceptions import WatchTimedOut

if TYPE_CHECKING:
    from .client import MultiEndpointEtcd3Client
    from .leases import Lease

__all__ = ["Lock"]


class Lock:
    """A distributed lock, usable as a context manager::

        with etcd.lock("report", ttl=20) as lock:
            ...
            lock.refresh()      # before the 20 s are up

    :param name: name of the lock (the key is ``/locks/<name>``)
    :param ttl: seconds the lock lives unless refreshed
    """

    lock_prefix = "/locks/"

    def __init__(self, name: Union[str, bytes], ttl: int = 60,
                 etcd_client: Optional["MultiEndpointEtcd3Client"] = None) -> None:
        self.name = name
        self.ttl = ttl
        if etcd_client is not None:
            self.etcd_client = etcd_client
        self.key: Union[str, bytes] = (
            self.lock_prefix.encode() + name if isinstance(name, bytes) else self.lock_prefix + name
        )
        self.lease: Optional["Lease"] = None
        #: The revision of the holder's key last seen (etcd-sdk-python's attribute).
        self.revision = 0
        # Bytes, as python-etcd3 stored it: compared with the key's value as is.
        self.uuid = uuid.uuid1().bytes

    def acquire(self, timeout: Optional[float] = 10) -> bool:
        """Acquire the lock, waiting at most ``timeout`` seconds (None: as long as
        it takes; 0: one attempt). True if acquired."""
        client = self.etcd_client
        tx = client.transactions
        deadline = None if timeout is None else time.monotonic() + timeout
        lease = client.lease(self.ttl)
        acquired = False
        try:
            while True:
                success, responses = client.transaction(
                    compare=[tx.create(self.key) == 0],
                    success=[tx.put(self.key, self.uuid, lease=lease)],
                    failure=[tx.get(self.key)],
                )
                if success:
                    self.lease, self.revision = lease, responses[0].response_put.header.revision
                    acquired = True
                    return True
                holder = responses[0]
                if holder:
                    _, meta = holder[0]
                    self.revision, seen_at = meta.mod_revision, meta.response_header.revision
                else:  # pragma: no cover - the failure branch runs only when the key exists
                    continue
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                try:
                    # The next deletion after the read that found the holder.
                    client.watch_once(self.key, timeout=remaining, start_revision=seen_at + 1,
                                      filters=[etcdrpc.WatchCreateRequest.NOPUT])
                except WatchTimedOut:
                    return False
                # The lock's TTL runs from when it is acquired: renew the lease
                # for the next attempt (a new one if it expired while we waited).
                if lease.refresh()[0].TTL <= 0:
                    lease = client.lease(self.ttl)
        finally:
            if not acquired:
                self._revoke(lease, quiet=True)

    def _revoke(self, lease: "Lease", quiet: bool = False) -> bool:
        """Revoke ``lease``; False if it was gone already (expired)."""
        try:
            self.etcd_client.native.revoke(lease.id)
            return True
        except LeaseNotFoundError:
            return False
        except EtcdError as exc:
            if quiet:  # already on the way out with another error or a result
                return False
            raise_translated(exc)
            raise  # pragma: no cover - raise_translated always raises

    def release(self) -> bool:
        """Release the lock; False if it was not held (never acquired, or expired)."""
        lease, self.lease = self.lease, None
        if lease is None:
            return False
        # Revoking the lease deletes the lock's key with it: the key can only
        # carry our lease while we hold the lock.
        return self._revoke(lease)

    def refresh(self) -> list:  # type: ignore[type-arg]
        """Refresh the lock's lease once (python-etcd3: its keep-alive responses)."""
        if self.lease is not None:
            return self.lease.refresh()
        raise ValueError("No lease associated with this lock - have you acquired the lock yet?")

    def is_acquired(self) -> bool:
        """Whether this lock holds the key now (one read)."""
        value, _ = self.etcd_client.get(self.key)
        return value is not None and value == self.uuid

    def __enter__(self) -> "Lock":
        self.acquire(timeout=None)
        return self

    def __exit__(self, exception_type: object, exception_value: object, traceback: object) -> None:
        self.release()
