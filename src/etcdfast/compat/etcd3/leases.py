"""python-etcd3's :class:`Lease`: a granted lease and its operations.

Not kept alive in the background (python-etcd3 never did): call
:meth:`Lease.refresh` within its TTL, or use etcdfast's ``client.lease()``,
which is.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, List, Optional

if TYPE_CHECKING:
    from .client import MultiEndpointEtcd3Client

__all__ = ["Lease"]


class Lease:
    """A lease.

    :ivar id: ID of the lease
    :ivar ttl: time to live the server granted, in seconds
    """

    def __init__(self, lease_id: int, ttl: int,
                 etcd_client: Optional["MultiEndpointEtcd3Client"] = None) -> None:
        self.id = lease_id
        self.ttl = ttl
        self.etcd_client = etcd_client

    def _client(self) -> "MultiEndpointEtcd3Client":
        if self.etcd_client is None:
            raise ValueError("this Lease has no client")
        return self.etcd_client

    def _get_lease_info(self) -> Any:
        return self._client().get_lease_info(self.id)

    def revoke(self) -> None:
        """Revoke this lease: its keys are deleted."""
        self._client().revoke_lease(self.id)

    def refresh(self) -> List[Any]:
        """Refresh the lease's TTL once; the ``LeaseKeepAliveResponse`` messages
        (``TTL`` 0: the lease is gone)."""
        return list(self._client().refresh_lease(self.id))

    @property
    def remaining_ttl(self) -> int:
        """Seconds left (-1: the lease is gone)."""
        return int(self._get_lease_info().TTL)

    @property
    def granted_ttl(self) -> int:
        """The TTL the lease was granted with."""
        return int(self._get_lease_info().grantedTTL)

    @property
    def keys(self) -> List[bytes]:
        """The keys attached to this lease."""
        return list(self._get_lease_info().keys)
