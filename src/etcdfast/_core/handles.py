"""What every lock, election and recipe handle holds: its session or client.

The faces (``_sync.concurrency``, ``aio.concurrency``) run a handle's plans
with ``self._client`` (see ``_core.methods.sync_plan``); a handle made from a
session puts its keys with the session's lease (``self._lease``).
"""

from __future__ import annotations

from typing import Any

__all__ = ["OnClient", "OnSession"]


class OnClient:
    """A handle made from a client (a barrier, a queue)."""

    def __init__(self, client: Any) -> None:
        self._client = client


class OnSession(OnClient):
    """A handle made from a session (a lock, an election): its keys live as long as the session."""

    def __init__(self, session: Any) -> None:
        super().__init__(session._client)
        #: The session whose lease this handle's keys carry.
        self.session = session
        self._lease: int = session.id
