"""One exception tree for everything etcdfast raises.

etcd reports errors as a gRPC status code plus a message string
(``"etcdserver: ..."``), and the code alone is ambiguous: InvalidArgument
covers both an empty key and a too-large request. So errors are mapped by the
exact server message first (the strings are etcd's public ``rpctypes``) and by
status code second. Every class derives from :class:`EtcdError`; many also
derive from the builtin that a Python caller would naturally catch
(``ValueError``, ``ConnectionError``, ``TimeoutError``, ``PermissionError``).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Dict, Optional, Sequence, Tuple, Type

if TYPE_CHECKING:  # grpc is only needed when a real call fails
    import grpc

__all__ = [
    "EtcdError",
    "ProtocolError",
    "ClientClosedError",
    "InvalidArgumentError",
    "EmptyKeyError",
    "KeyNotFoundError",
    "ValueProvidedError",
    "LeaseProvidedError",
    "TooManyOpsError",
    "DuplicateKeyError",
    "InvalidSortOptionError",
    "RequestTooLargeError",
    "ResponseTooLargeError",
    "RevisionError",
    "CompactedError",
    "FutureRevisionError",
    "NotFoundError",
    "FailedPreconditionError",
    "LeaseError",
    "LeaseNotFoundError",
    "LeaseExistsError",
    "LeaseTTLTooLargeError",
    "LeaseExpiredError",
    "ResourceExhaustedError",
    "NoSpaceError",
    "TooManyRequestsError",
    "AuthError",
    "AuthFailedError",
    "PermissionDeniedError",
    "InvalidAuthTokenError",
    "AuthOldRevisionError",
    "AuthNotEnabledError",
    "UserEmptyError",
    "UserNotFoundError",
    "UserAlreadyExistsError",
    "RoleNotFoundError",
    "RoleAlreadyExistsError",
    "RoleNotGrantedError",
    "PermissionNotGrantedError",
    "RootUserNotExistError",
    "RootRoleNotExistError",
    "RoleEmptyError",
    "PermissionNotGivenError",
    "InvalidAuthMgmtError",
    "ClusterError",
    "MemberNotFoundError",
    "MemberExistsError",
    "PeerURLExistsError",
    "MemberBadURLsError",
    "MemberNotLearnerError",
    "LearnerNotReadyError",
    "TooManyLearnersError",
    "NotEnoughStartedMembersError",
    "NotSupportedForLearnerError",
    "BadLeaderTransfereeError",
    "SnapshotIntegrityError",
    "ConcurrencyError",
    "ElectionNotLeaderError",
    "ElectionNoLeaderError",
    "RecipeKeyExistsError",
    "TooManyClientsError",
    "Unavailable",
    "NoLeaderError",
    "TLSError",
    "OutcomeUnknownError",
    "ConnectionLostError",
    "ClosedDuringCallError",
    "NotLeaderError",
    "LeaderChangedError",
    "RequestTimedOutError",
    "ServerStoppedError",
    "UnhealthyClusterError",
    "Timeout",
    "CancelledError",
    "CorruptError",
    "InternalError",
    "BulkWriteError",
    "OldClusterError",
    "StaleReadError",
    "ForkedClientError",
    "from_rpc_error",
    "show_key",
]


class EtcdError(Exception):
    """Root of every error etcdfast raises.

    ``code`` is the gRPC status name (``"INVALID_ARGUMENT"``...) when the error
    came from the wire, else ``None``; ``details`` is the server's message.
    """

    code: Optional[str] = None

    def __init__(self, message: str = "", *, code: Optional[str] = None, details: str = ""):
        super().__init__(message or details or self.__class__.__name__)
        if code is not None:
            self.code = code
        self.details = details or message


class ProtocolError(EtcdError):
    """Bytes from the server are truncated or malformed protobuf.

    Raised by a call, it means the server executed the request and answered
    with bytes that cannot be decoded: its result is unknown.
    """


class ClientClosedError(EtcdError, RuntimeError):
    """The client was closed; create a new one. The call was not sent (see
    :class:`ClosedDuringCallError` for calls that were in flight)."""


class OutcomeUnknownError(EtcdError):
    """Mixin: the request was sent and may or may not have been applied.

    Raised when a call reached the server (or may have) but its result was
    lost: "request timed out", "leader changed", a deadline that expired in
    flight, a connection that broke after sending
    (:class:`ConnectionLostError`), the client closed while the call was in
    flight (:class:`ClosedDuringCallError`). Never retried automatically for
    writes; read the key to find out. An error *without* this base, raised by
    a call, means the request was not executed (a :class:`ProtocolError`
    means it was, and its answer could not be read).
    """


class ClosedDuringCallError(ClientClosedError, OutcomeUnknownError):
    """The client was closed while this call was in flight: it may or may not
    have been applied."""


# -- bad requests (never retried: the server rejected them before doing anything)


class InvalidArgumentError(EtcdError, ValueError):
    """The server (or the client, before sending) rejected an argument."""

    code = "INVALID_ARGUMENT"


class EmptyKeyError(InvalidArgumentError):
    """A key is empty; etcd keys must have at least one byte."""


class KeyNotFoundError(InvalidArgumentError):
    """The key does not exist (used by calls that need an existing key)."""


class ValueProvidedError(InvalidArgumentError):
    """``ignore_value=True`` was combined with a non-empty value."""


class LeaseProvidedError(InvalidArgumentError):
    """``ignore_lease=True`` was combined with a lease."""


class TooManyOpsError(InvalidArgumentError):
    """A transaction branch has more ops than the server's ``--max-txn-ops`` (128)."""


class DuplicateKeyError(InvalidArgumentError):
    """A transaction writes the same key twice."""


class InvalidSortOptionError(InvalidArgumentError):
    """The sort order or target is not one etcd knows."""


class RequestTooLargeError(InvalidArgumentError):
    """The request exceeds the server's ``--max-request-bytes`` (1.5 MiB by default)
    or the client's send limit."""


class ResponseTooLargeError(EtcdError):
    """A response exceeds the client's receive limit (``max_receive_message_length``)."""

    code = "RESOURCE_EXHAUSTED"


# -- revisions


class RevisionError(EtcdError):
    """A revision outside what the store holds."""

    code = "OUT_OF_RANGE"


class CompactedError(RevisionError):
    """The requested revision has been compacted away.

    ``compact_revision`` is the oldest revision still readable, when known.
    """

    def __init__(
        self,
        message: str = "",
        *,
        code: Optional[str] = None,
        details: str = "",
        compact_revision: Optional[int] = None,
    ):
        super().__init__(message, code=code, details=details)
        self.compact_revision = compact_revision

    def __str__(self) -> str:
        base = super().__str__()
        if self.compact_revision is None:
            return base
        return f"{base} (compact revision {self.compact_revision})"


class FutureRevisionError(RevisionError):
    """The requested revision is newer than the store's current revision."""


# -- not found / preconditions


class NotFoundError(EtcdError, LookupError):
    code = "NOT_FOUND"


class FailedPreconditionError(EtcdError):
    code = "FAILED_PRECONDITION"


class LeaseError(EtcdError):
    """Base for lease problems."""


class LeaseNotFoundError(LeaseError, NotFoundError):
    """The lease does not exist (never granted, expired or revoked)."""


class LeaseExistsError(LeaseError, FailedPreconditionError):
    """A lease with the requested ID already exists."""


class LeaseExpiredError(LeaseNotFoundError):
    """A kept-alive lease was lost: it expired (no refresh reached the server in
    time) or was revoked elsewhere. Keys attached to it are gone."""


class LeaseTTLTooLargeError(LeaseError, InvalidArgumentError):
    """The TTL is above etcd's maximum (9,000,000,000 s)."""

    code = "OUT_OF_RANGE"


class ResourceExhaustedError(EtcdError):
    code = "RESOURCE_EXHAUSTED"


class NoSpaceError(ResourceExhaustedError):
    """The server's backend quota is exhausted (NOSPACE alarm); writes are refused."""


class TooManyRequestsError(ResourceExhaustedError):
    """The server is overloaded; the request was not executed and may be retried."""


# -- auth


class AuthError(EtcdError):
    """Base for authentication and authorisation problems."""


class AuthFailedError(AuthError, InvalidArgumentError):
    """Wrong user name or password."""


class PermissionDeniedError(AuthError, PermissionError):
    """The user may not do this on this key."""

    code = "PERMISSION_DENIED"


class InvalidAuthTokenError(AuthError):
    """The auth token is unknown or expired."""

    code = "UNAUTHENTICATED"


class AuthOldRevisionError(AuthError, InvalidArgumentError):
    """The token predates a change of users or roles."""


class AuthNotEnabledError(AuthError, FailedPreconditionError):
    """Authentication is not enabled on the server."""


class UserEmptyError(AuthError, InvalidArgumentError):
    """No user name was given (or the token was lost)."""


class UserNotFoundError(AuthError, FailedPreconditionError):
    pass


class UserAlreadyExistsError(AuthError, FailedPreconditionError):
    pass


class RoleNotFoundError(AuthError, FailedPreconditionError):
    pass


class RoleAlreadyExistsError(AuthError, FailedPreconditionError):
    pass


class RoleNotGrantedError(AuthError, FailedPreconditionError):
    pass


class PermissionNotGrantedError(AuthError, FailedPreconditionError):
    pass


class RootUserNotExistError(AuthError, FailedPreconditionError):
    pass


class RootRoleNotExistError(AuthError, FailedPreconditionError):
    pass


class RoleEmptyError(AuthError, InvalidArgumentError):
    """No role name was given."""


class PermissionNotGivenError(AuthError, InvalidArgumentError):
    """A permission grant without a permission (etcd 3.5+)."""


class InvalidAuthMgmtError(AuthError, InvalidArgumentError):
    """A change that would lock everyone out while auth is on: deleting the
    ``root`` user, or revoking the ``root`` role from it."""


# -- cluster membership


class ClusterError(EtcdError):
    """Base for membership-change problems."""


class MemberNotFoundError(ClusterError, NotFoundError):
    pass


class MemberExistsError(ClusterError, FailedPreconditionError):
    pass


class PeerURLExistsError(ClusterError, FailedPreconditionError):
    pass


class MemberBadURLsError(ClusterError, InvalidArgumentError):
    pass


class MemberNotLearnerError(ClusterError, FailedPreconditionError):
    pass


class LearnerNotReadyError(ClusterError, FailedPreconditionError):
    pass


class TooManyLearnersError(ClusterError, FailedPreconditionError):
    pass


class NotEnoughStartedMembersError(ClusterError, FailedPreconditionError):
    pass


class NotSupportedForLearnerError(ClusterError, FailedPreconditionError):
    """The member is a learner; this call must go to a voting member."""


class BadLeaderTransfereeError(ClusterError, FailedPreconditionError):
    """``move_leader`` names a member that does not exist or is a learner."""


# -- concurrency recipes (Go's clientv3/concurrency and contrib/recipes)


class ConcurrencyError(EtcdError):
    """Base for what the locks, elections and recipes report themselves."""


class ElectionNotLeaderError(ConcurrencyError):
    """The election handle is not (or no longer) the leader: campaign first
    (Go's ``ErrElectionNotLeader``)."""


class ElectionNoLeaderError(ConcurrencyError, LookupError):
    """Nobody leads the election now (Go's ``ErrElectionNoLeader``)."""


class RecipeKeyExistsError(ConcurrencyError, FailedPreconditionError):
    """The key a recipe creates exists already (contrib/recipes' ``ErrKeyExists``)."""


class TooManyClientsError(ConcurrencyError):
    """More processes entered a double barrier than its count (``ErrTooManyClients``)."""


class SnapshotIntegrityError(EtcdError):
    """A snapshot is truncated or its SHA-256 checksum (the last 32 bytes etcd
    appends to the database) does not match its content."""


class OldClusterError(EtcdError):
    """A member runs an etcd older than the client accepts (``reject_old_cluster``;
    Go's ``ErrOldCluster``). ``version`` is what it reported."""

    def __init__(self, message: str = "", *, version: str = "", endpoint: Optional[str] = None):
        super().__init__(message)
        self.version = version
        self.endpoint = endpoint


class StaleReadError(EtcdError):
    """A read through an ordering view (``client.ordered()``) was answered at a
    store revision older than one this view has already seen -- a member
    that is behind -- and no member answered a current one (Go's ordering
    package; ``ErrNoGreaterRev``). ``revision`` is the stale answer's,
    ``seen`` the newest seen before."""

    def __init__(self, message: str = "", *, revision: int = 0, seen: int = 0):
        super().__init__(message)
        self.revision = revision
        self.seen = seen


class ForkedClientError(ClientClosedError):
    """The client was made in another process: gRPC's channels and the client's
    threads do not survive ``os.fork()``. Make a new client in the child
    (the parent's client is unaffected)."""


def show_key(key: bytes) -> str:
    """A key for an error message: as text in quotes when it is printable UTF-8
    (``"/jobs/1"``), else as Python writes bytes (``b'\\x00k'``)."""
    try:
        text = key.decode()
    except UnicodeDecodeError:
        return repr(key)
    return f'"{text}"' if text.isprintable() else repr(key)


# -- availability


class Unavailable(EtcdError, ConnectionError):
    """No usable server: connection refused, server down, no leader...

    ``endpoint`` names the endpoint(s) tried.
    """

    code = "UNAVAILABLE"

    def __init__(
        self,
        message: str = "",
        *,
        code: Optional[str] = None,
        details: str = "",
        endpoint: Optional[str] = None,
    ):
        super().__init__(message, code=code, details=details)
        self.endpoint = endpoint


class ConnectionLostError(Unavailable, OutcomeUnknownError):
    """The connection failed (``UNAVAILABLE``) after the request was sent: a
    write may or may not have been applied. Read the key to find out."""


class ReauthenticatingError(Unavailable):
    """Internal: a stream's auth token went stale; the client logs in again and
    reconnects. Never reaches callers (streams resume, calls are repeated)."""


class TLSError(Unavailable):
    """The TLS handshake failed: untrusted or expired server certificate, a
    client certificate the server refused, or a name mismatch. The message
    says which, and the endpoint."""


class NoLeaderError(Unavailable):
    """The member has no leader (it is partitioned or the cluster lost quorum)."""


class NotLeaderError(Unavailable):
    """The call needs the leader and reached a follower."""

    code = "FAILED_PRECONDITION"


class LeaderChangedError(Unavailable, OutcomeUnknownError):
    """Leadership changed while the request was in flight; a write may or may not
    have been applied."""


class RequestTimedOutError(Unavailable, OutcomeUnknownError):
    """The server gave up waiting for consensus; a write may or may not have been
    applied."""


class ServerStoppedError(Unavailable):
    pass


class UnhealthyClusterError(Unavailable):
    pass


class Timeout(OutcomeUnknownError, TimeoutError):
    """The call did not finish within its deadline (``timeout=``)."""

    code = "DEADLINE_EXCEEDED"


class CancelledError(OutcomeUnknownError):
    """The call was cancelled after it was sent (by the server, or because its
    connection was retired): it may or may not have been applied."""

    code = "CANCELLED"


class CorruptError(EtcdError):
    """The cluster reported data corruption."""

    code = "DATA_LOSS"


class InternalError(OutcomeUnknownError):
    """gRPC or the server failed internally while handling the call."""

    code = "INTERNAL"


class BulkWriteError(EtcdError):
    """``put_many`` stopped part-way; says exactly what is committed.

    * ``committed``: the resume index -- every item before it (counted from
      the start of the input) is committed; ``committed_batches`` Txns hold them.
    * ``cause``: what stopped the load (a typed :class:`EtcdError` from the
      server, or the bad input item's error, or the input's own exception).
    * ``uncertain``: ``(start, stop)`` item ranges whose Txn outcome is unknown
      (a timeout or UNAVAILABLE while in flight: applied or not).
    * ``committed_after``: ``(start, stop)`` item ranges after ``committed``
      that did commit (batches run concurrently and may finish out of order).

    Resuming with the items from ``committed`` on is always safe: puts are
    idempotent in their final state, so at worst the ``uncertain`` and
    ``committed_after`` items are written twice.
    """

    def __init__(
        self,
        message: str = "",
        *,
        committed: int = 0,
        committed_batches: int = 0,
        cause: Optional[BaseException] = None,
        uncertain: Sequence[Tuple[int, int]] = (),
        committed_after: Sequence[Tuple[int, int]] = (),
    ):
        super().__init__(message, code=getattr(cause, "code", None))
        self.committed = committed
        self.committed_batches = committed_batches
        self.cause = cause
        self.uncertain = list(uncertain)
        self.committed_after = list(committed_after)


# Server messages (etcd's rpctypes, identical in 3.4 and 3.5) -> class.
_BY_MESSAGE: Dict[str, Type[EtcdError]] = {
    "etcdserver: key is not provided": EmptyKeyError,
    "etcdserver: key not found": KeyNotFoundError,
    "etcdserver: value is provided": ValueProvidedError,
    "etcdserver: lease is provided": LeaseProvidedError,
    "etcdserver: too many operations in txn request": TooManyOpsError,
    "etcdserver: duplicate key given in txn request": DuplicateKeyError,
    "etcdserver: invalid sort option": InvalidSortOptionError,
    "etcdserver: request is too large": RequestTooLargeError,
    "etcdserver: mvcc: required revision has been compacted": CompactedError,
    "etcdserver: mvcc: required revision is a future revision": FutureRevisionError,
    "etcdserver: mvcc: database space exceeded": NoSpaceError,
    "etcdserver: too many requests": TooManyRequestsError,
    "etcdserver: requested lease not found": LeaseNotFoundError,
    "etcdserver: lease already exists": LeaseExistsError,
    "etcdserver: too large lease TTL": LeaseTTLTooLargeError,
    "etcdserver: authentication failed, invalid user ID or password": AuthFailedError,
    "etcdserver: permission denied": PermissionDeniedError,
    "etcdserver: invalid auth token": InvalidAuthTokenError,
    "etcdserver: revision of auth store is old": AuthOldRevisionError,
    "etcdserver: authentication is not enabled": AuthNotEnabledError,
    "etcdserver: user name is empty": UserEmptyError,
    "etcdserver: user name not found": UserNotFoundError,
    "etcdserver: user name already exists": UserAlreadyExistsError,
    "etcdserver: role name not found": RoleNotFoundError,
    "etcdserver: role name already exists": RoleAlreadyExistsError,
    "etcdserver: role is not granted to the user": RoleNotGrantedError,
    "etcdserver: permission is not granted to the role": PermissionNotGrantedError,
    "etcdserver: root user does not exist": RootUserNotExistError,
    "etcdserver: root user does not have root role": RootRoleNotExistError,
    "etcdserver: role name is empty": RoleEmptyError,
    "etcdserver: permission not given": PermissionNotGivenError,
    "etcdserver: invalid auth management": InvalidAuthMgmtError,
    # Not in rpctypes: the auth store's own error, sent with code UNKNOWN when
    # a password is given for a user created with no_password=True.
    "auth: authentication failed, password was given for no password user": AuthFailedError,
    "etcdserver: member not found": MemberNotFoundError,
    "etcdserver: member ID already exist": MemberExistsError,
    "etcdserver: Peer URLs already exists": PeerURLExistsError,
    "etcdserver: given member URLs are invalid": MemberBadURLsError,
    "etcdserver: can only promote a learner member": MemberNotLearnerError,
    "etcdserver: can only promote a learner member which is in sync with leader": (
        LearnerNotReadyError
    ),
    "etcdserver: too many learner members in cluster": TooManyLearnersError,
    "etcdserver: re-configuration failed due to not enough started members": (
        NotEnoughStartedMembersError
    ),
    "etcdserver: rpc not supported for learner": NotSupportedForLearnerError,
    "etcdserver: bad leader transferee": BadLeaderTransfereeError,
    "etcdserver: no leader": NoLeaderError,
    "etcdserver: not leader": NotLeaderError,
    "etcdserver: leader changed": LeaderChangedError,
    "etcdserver: request timed out": RequestTimedOutError,
    "etcdserver: request timed out, possibly due to previous leader failure": (
        RequestTimedOutError
    ),
    "etcdserver: request timed out, possibly due to connection lost": RequestTimedOutError,
    "etcdserver: request timed out, waiting for the applied index took too long": (
        RequestTimedOutError
    ),
    "etcdserver: server stopped": ServerStoppedError,
    "etcdserver: unhealthy cluster": UnhealthyClusterError,
    "etcdserver: corrupt cluster": CorruptError,
    # etcd's server-side Election service (v3election), sent with code UNKNOWN.
    "election: no leader": ElectionNoLeaderError,
    "election: not leader": ElectionNotLeaderError,
    # mvcc's answer to a watch whose range_end is not after its key (the
    # client checks first; kept for servers reached by other means).
    "mvcc: watcher range is empty": InvalidArgumentError,
    # The server's own context errors: etcd hands them to grpc-go unconverted,
    # and older grpc-go servers (etcd 3.4) send them with code UNKNOWN. The
    # deadline was the caller's, which the server saw expire first.
    "context deadline exceeded": Timeout,
    "context canceled": CancelledError,
}

# Fallback by gRPC status name when the message is not one of etcd's.
_BY_CODE: Dict[str, Type[EtcdError]] = {
    "INVALID_ARGUMENT": InvalidArgumentError,
    "OUT_OF_RANGE": RevisionError,
    "NOT_FOUND": NotFoundError,
    "FAILED_PRECONDITION": FailedPreconditionError,
    "RESOURCE_EXHAUSTED": ResourceExhaustedError,
    "PERMISSION_DENIED": PermissionDeniedError,
    "UNAUTHENTICATED": InvalidAuthTokenError,
    "UNAVAILABLE": Unavailable,
    "DEADLINE_EXCEEDED": Timeout,
    "CANCELLED": CancelledError,
    "DATA_LOSS": CorruptError,
    "INTERNAL": InternalError,
}


_GO_STATUS = re.compile(r"rpc error: code = (\w+) desc = (.*)\Z", re.S)


def classify(code_name: str, details: str) -> Tuple[Type[EtcdError], str]:
    """Pick the exception class for a status code name and server message.

    Returns the class and the message to show. Separated from
    :func:`from_rpc_error` so that watch cancel reasons (a message without a
    status) map through the same table.
    """
    wrapped = _GO_STATUS.match(details)
    if wrapped is not None:
        # A Go status rendered as text (watch cancel reasons): use its parts.
        code_name = re.sub(r"(?<!^)(?=[A-Z])", "_", wrapped.group(1)).upper()
        details = wrapped.group(2)
    cls = _BY_MESSAGE.get(details)
    if cls is not None:
        return cls, details
    if code_name == "RESOURCE_EXHAUSTED":
        lowered = details.lower()
        # grpc's own size limits, wherever the wording puts them (grpc-core
        # prefixes limits it enforces locally with "CLIENT: ", and grpcio 1.85
        # wraps the text in "Stream removed (...)"): "Sent message larger than
        # max" is ours (the client refused to send); the server's "grpc:
        # received message larger than max" is our request over its limit;
        # any other "received message larger than max" is a response over
        # our receive limit.
        if "grpc: received message larger than max" in lowered or "sent message larger than max" in lowered:
            return RequestTooLargeError, details
        if "received message larger than max" in lowered:
            return ResponseTooLargeError, (
                f"{details} -- raise the client's max_receive_message_length "
                "or read the range in pages"
            )
    if details.startswith("etcdserver: request timed out"):
        return RequestTimedOutError, details
    return _BY_CODE.get(code_name, EtcdError), details


# What the BoringSSL reason in grpc's handshake error means, in words.
_TLS_REASONS = (
    ("certificate_verify_failed: certificate has expired", "the server's certificate has expired"),
    ("certificate_verify_failed", "the server's certificate is not trusted by the CA given (ca_cert=)"),
    ("alert_bad_certificate", "the server refused the client certificate (or none was given: cert=/key=)"),
    ("alert_certificate_expired", "the server says the client certificate has expired"),
    ("alert_unknown_ca", "the server does not trust the CA of the client certificate"),
    ("wrong_version_number", "the endpoint does not speak TLS (use http:// or drop ca_cert=)"),
    ("peer name", "the server's certificate does not match the endpoint's name (server_name=)"),
    ("hostname verification", "the server's certificate does not match the endpoint's name (server_name=)"),
)


def _tls_diagnosis(details: str) -> Optional[str]:
    lowered = details.lower()
    if not any(word in lowered for word in ("handshake", "ssl", "hostname verification")):
        return None
    for marker, meaning in _TLS_REASONS:
        if marker in lowered:
            return meaning
    return "the TLS handshake failed"


def from_rpc_error(exc: "grpc.RpcError", endpoints: Sequence[str] = ()) -> EtcdError:
    """Turn a ``grpc.RpcError`` into the matching :class:`EtcdError` subclass."""
    code = exc.code() if hasattr(exc, "code") else None
    code_name = code.name if code is not None else "UNKNOWN"
    details = (exc.details() if hasattr(exc, "details") else None) or str(code_name)
    cls, message = classify(code_name, details)
    where = ", ".join(endpoints)
    if issubclass(cls, Unavailable):
        diagnosis = _tls_diagnosis(details) if cls is Unavailable else None
        if diagnosis is not None:
            return TLSError(f"TLS with {where or 'the server'} failed: {diagnosis} ({details})",
                            code=code_name, details=details, endpoint=where or None)
        if cls is Unavailable and where:
            message = f"etcd endpoint(s) {where} unavailable: {details}"
        return cls(message, code=code_name, details=details, endpoint=where or None)
    if cls is Timeout and where:
        message = f"deadline exceeded talking to {where}: {details}"
    return cls(message, code=code_name, details=details)
