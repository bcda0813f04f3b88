"""python-etcd3's exceptions (``etcd3.exceptions``), plus etcd-sdk-python's ``NoServerAvailableError``.

The compat client raises these for the gRPC status codes python-etcd3 mapped
(``INTERNAL``, ``UNAVAILABLE``, ``DEADLINE_EXCEEDED``, ``FAILED_PRECONDITION``),
with etcdfast's own, more precise error as ``__cause__``. Any other status is
raised as a :class:`grpc.RpcError` (:class:`etcdfast.compat.etcd3.RpcError`), as
python-etcd3 did; errors etcdfast detects without a status (a closed client,
malformed bytes) are raised as etcdfast's own.
"""

from __future__ import annotations

__all__ = [
    "Etcd3Exception",
    "WatchTimedOut",
    "InternalServerError",
    "ConnectionFailedError",
    "ConnectionTimeoutError",
    "PreconditionFailedError",
    "RevisionCompactedError",
    "NoServerAvailableError",
]


class Etcd3Exception(Exception):
    """Root of python-etcd3's own exceptions."""


class WatchTimedOut(Etcd3Exception):
    """A watch was not created, or no event came, within the time allowed."""


class InternalServerError(Etcd3Exception):
    """gRPC ``INTERNAL``."""


class ConnectionFailedError(Etcd3Exception):
    """gRPC ``UNAVAILABLE``: no etcd member could be reached (after etcdfast's retries)."""

    def __str__(self) -> str:
        return "etcd connection failed"


class ConnectionTimeoutError(Etcd3Exception):
    """gRPC ``DEADLINE_EXCEEDED``: the call's deadline (the client's ``timeout``) passed."""

    def __str__(self) -> str:
        return "etcd connection timeout"


class PreconditionFailedError(Etcd3Exception):
    """gRPC ``FAILED_PRECONDITION``."""


class RevisionCompactedError(Etcd3Exception):
    """A watch's start revision (or where it would resume) has been compacted.

    ``compacted_revision`` is the oldest revision still available: watch again from it.
    """

    def __init__(self, compacted_revision: int) -> None:
        self.compacted_revision = compacted_revision
        super().__init__()


class NoServerAvailableError(Etcd3Exception):
    """etcd-sdk-python's: every endpoint has failed. etcdfast fails over per call
    and raises :class:`ConnectionFailedError` when none answers; this class is
    kept so that ``except`` clauses naming it still import."""
