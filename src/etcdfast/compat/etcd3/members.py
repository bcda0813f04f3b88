"""python-etcd3's :class:`Member`: one member of the cluster, with its operations."""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterable, Iterator, List, Optional

if TYPE_CHECKING:
    from .client import Alarm, MultiEndpointEtcd3Client

__all__ = ["Member"]


class Member:
    """A member of the etcd cluster.

    :ivar id: ID of the member
    :ivar name: human-readable name of the member (empty until an added member starts)
    :ivar peer_urls: URLs the member exposes to the cluster
    :ivar client_urls: URLs the member exposes to clients
    """

    def __init__(self, id: int, name: str, peer_urls: List[str], client_urls: List[str],
                 etcd_client: Optional["MultiEndpointEtcd3Client"] = None) -> None:
        self.id = id
        self.name = name
        self.peer_urls = peer_urls
        self.client_urls = client_urls
        self._etcd_client = etcd_client

    def __str__(self) -> str:
        return f"Member {self.id}: peer urls: {self.peer_urls}, client urls: {self.client_urls}"

    def _client(self) -> "MultiEndpointEtcd3Client":
        if self._etcd_client is None:
            raise ValueError("this Member has no client")
        return self._etcd_client

    def remove(self) -> None:
        """Remove this member from the cluster."""
        self._client().remove_member(self.id)

    def update(self, peer_urls: Iterable[str]) -> None:
        """Replace the peer URLs of this member."""
        self._client().update_member(self.id, peer_urls)

    @property
    def active_alarms(self) -> Iterator["Alarm"]:
        """The alarms raised on this member."""
        return self._client().list_alarms(member_id=self.id)
