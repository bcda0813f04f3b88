"""etcd's Auth service: enabling auth, users, roles and permissions.

Builders only (the clients execute them); a cold path, so the generated
message classes from ``_schema`` do the encoding. Reads (status, get, list)
are repeatable and retried on UNAVAILABLE; changes are not (Go's rule: a
repeated ``user_add`` could answer "already exists" for its own first try).

Passwords go into the request payload and nowhere else: the Request is a
:class:`~etcdfast.api.request.SecretRequest` whose repr shows neither the payload
nor its size, the client methods taking a password drop their arguments
before the call runs, and no error raised here quotes a password.
"""

from __future__ import annotations

from typing import Any, Callable, List, Optional, Type, Union

from .. import _codec, _schema
from ..errors import (
    InvalidArgumentError,
    ProtocolError,
    RoleEmptyError,
    UserEmptyError,
)
from ..types import AuthStatus, Permission, PermissionType, ResponseHeader, Role
from .request import Request, SecretRequest, check_timeout

__all__ = [
    "auth_enable", "auth_disable", "auth_status",
    "user_add", "user_get", "user_list", "user_delete", "user_change_password",
    "user_grant_role", "user_revoke_role",
    "role_add", "role_get", "role_list", "role_delete",
    "role_grant_permission", "role_revoke_permission",
]

KeyLike = Union[str, bytes]
PermissionLike = Union[PermissionType, str, int]

_SERVICE = "/etcdserverpb.Auth/"


def _payload(request: str, **fields: Any) -> bytes:
    return _schema.message(f"etcdserverpb.{request}")(**fields).SerializeToString()  # type: ignore[no-any-return]


def _header_decoder(response: str) -> Callable[..., ResponseHeader]:
    return _schema.decoder(f"etcdserverpb.{response}", _schema.header)


def _utf8(what: str, value: object, *, secret: bool = False) -> bytes:
    """``value``, a str, as UTF-8 (what protobuf sends); a secret is never quoted back."""
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a str, not {type(value).__name__}")
    try:
        return value.encode("utf-8")
    except UnicodeEncodeError:
        shown = "" if secret else f" {value!r}"
        # ``from None``: the UnicodeEncodeError would carry the whole string.
        message = f"{what}{shown} is not valid UTF-8 text (it holds a lone surrogate)"
        raise InvalidArgumentError(message) from None


def _text(what: str, value: object, empty: Type[InvalidArgumentError] = InvalidArgumentError,
          *, secret: bool = False) -> str:
    """A non-empty str that protobuf can encode; a secret is never quoted back."""
    _utf8(what, value, secret=secret)
    if not value:
        raise empty(f"{what} is empty")
    return value  # type: ignore[return-value]  # _utf8 checked it is a str


def login_payload(name: str, password: str) -> bytes:
    """An ``AuthenticateRequest``: the clients' own login (see ``ClientState``).

    Encoded by the codec, not by a protobuf message class: building one
    (protobuf's descriptor pool) would cost every short-lived process that
    logs in ~17 ms, more than all its other imports of etcdfast. An empty name
    or password is sent as it is: the server's answer names what is wrong.
    """
    return _codec.wire.encode_authenticate(
        _utf8("user name", name), _utf8("password", password, secret=True))


def _user(value: object) -> str:
    return _text("user name", value, UserEmptyError)


def _role_name(value: object) -> str:
    return _text("role name", value, RoleEmptyError)


def _password(value: object) -> str:
    return _text("password", value, secret=True)


def _permission_type(value: PermissionLike) -> PermissionType:
    if isinstance(value, str):
        try:
            return PermissionType[value.upper()]
        except KeyError:
            pass
    elif isinstance(value, int) and not isinstance(value, bool):
        try:
            return PermissionType(value)
        except ValueError:
            pass
    else:
        raise TypeError(
            f"perm_type must be a PermissionType, 'read', 'write' or 'readwrite', not {type(value).__name__}"
        )
    raise InvalidArgumentError(f"perm_type must be read, write or readwrite; got {value!r}")


# -- decoders (built once) -------------------------------------------------------

_decode_enable = _header_decoder("AuthEnableResponse")
_decode_disable = _header_decoder("AuthDisableResponse")
_decode_status = _schema.decoder(
    "etcdserverpb.AuthStatusResponse",
    lambda m: AuthStatus(_schema.header(m), m.enabled, m.authRevision),
)
_decode_user_add = _header_decoder("AuthUserAddResponse")
_decode_user_get = _schema.decoder("etcdserverpb.AuthUserGetResponse", lambda m: list(m.roles))
_decode_user_list = _schema.decoder("etcdserverpb.AuthUserListResponse", lambda m: list(m.users))
_decode_user_delete = _header_decoder("AuthUserDeleteResponse")
_decode_user_password = _header_decoder("AuthUserChangePasswordResponse")
_decode_user_grant = _header_decoder("AuthUserGrantRoleResponse")
_decode_user_revoke = _header_decoder("AuthUserRevokeRoleResponse")
_decode_role_add = _header_decoder("AuthRoleAddResponse")
_decode_role_list = _schema.decoder("etcdserverpb.AuthRoleListResponse", lambda m: list(m.roles))
_decode_role_delete = _header_decoder("AuthRoleDeleteResponse")
_decode_role_grant = _header_decoder("AuthRoleGrantPermissionResponse")
_decode_role_revoke = _header_decoder("AuthRoleRevokePermissionResponse")
_parse_role = _schema.decoder("etcdserverpb.AuthRoleGetResponse", lambda m: m)


def _permission(p: Any) -> Permission:
    try:
        kind = PermissionType(p.permType)
    except ValueError:
        raise ProtocolError(f"unknown permission type {p.permType} in AuthRoleGetResponse") from None
    return Permission(kind, p.key, p.range_end)


def _role_decoder(name: str) -> Callable[..., Role]:
    def decode(data: bytes, tracker: Any = None) -> Role:
        parsed = _parse_role(data, tracker)
        return Role(name, [_permission(p) for p in parsed.perm])

    return decode


def _request(method: str, payload: bytes, decode: Callable[..., Any], *, repeatable: bool = False,
             timeout: Optional[float] = None) -> Request[Any]:
    return Request(_SERVICE + method, payload, decode, repeatable=repeatable, timeout=check_timeout(timeout))


# -- auth on/off -------------------------------------------------------------------


def auth_enable(*, timeout: Optional[float] = None) -> Request[ResponseHeader]:
    """Turn authentication on.

    Needs a ``root`` user holding the ``root`` role (else
    :class:`~etcdfast.errors.RootUserNotExistError` /
    :class:`~etcdfast.errors.RootRoleNotExistError`). From then on every call
    needs a client with ``user=``/``password=`` (or a client certificate).
    """
    return _request("AuthEnable", b"", _decode_enable, timeout=timeout)


def auth_disable(*, timeout: Optional[float] = None) -> Request[ResponseHeader]:
    """Turn authentication off (as ``root``)."""
    return _request("AuthDisable", b"", _decode_disable, timeout=timeout)


def auth_status(*, timeout: Optional[float] = None) -> Request[AuthStatus]:
    """Whether auth is on, and the auth store's revision (etcd 3.5+)."""
    return _request("AuthStatus", b"", _decode_status, repeatable=True, timeout=timeout)


# -- users -------------------------------------------------------------------------


def user_add(name: str, password: Optional[str] = None, *, no_password: bool = False,
             timeout: Optional[float] = None) -> Request[ResponseHeader]:
    """Add a user with a password, or with ``no_password=True`` (then it can only
    log in with a client certificate whose common name is the user's name).

    :class:`~etcdfast.errors.UserAlreadyExistsError` if the name is taken.
    """
    if no_password == (password is not None):
        raise InvalidArgumentError("give a password, or no_password=True -- one of the two")
    if password is not None:
        payload = _payload("AuthUserAddRequest", name=_user(name), password=_password(password))
    else:
        payload = _payload("AuthUserAddRequest", name=_user(name), options={"no_password": True})
    return SecretRequest(_SERVICE + "UserAdd", payload, _decode_user_add, timeout=check_timeout(timeout))


def user_get(name: str, *, timeout: Optional[float] = None) -> Request[List[str]]:
    """The names of the roles granted to a user (:class:`~etcdfast.errors.UserNotFoundError`
    if there is no such user)."""
    return _request("UserGet", _payload("AuthUserGetRequest", name=_user(name)), _decode_user_get,
                    repeatable=True, timeout=timeout)


def user_list(*, timeout: Optional[float] = None) -> Request[List[str]]:
    """All user names."""
    return _request("UserList", b"", _decode_user_list, repeatable=True, timeout=timeout)


def user_delete(name: str, *, timeout: Optional[float] = None) -> Request[ResponseHeader]:
    """Delete a user (:class:`~etcdfast.errors.UserNotFoundError` if there is none).
    While auth is on, ``root`` cannot be deleted
    (:class:`~etcdfast.errors.InvalidAuthMgmtError`)."""
    return _request("UserDelete", _payload("AuthUserDeleteRequest", name=_user(name)),
                    _decode_user_delete, timeout=timeout)


def user_change_password(name: str, password: str, *,
                         timeout: Optional[float] = None) -> Request[ResponseHeader]:
    """Set a user's password. The server drops the user's tokens, so its clients
    must log in again, with the new password."""
    payload = _payload("AuthUserChangePasswordRequest", name=_user(name), password=_password(password))
    return SecretRequest(_SERVICE + "UserChangePassword", payload, _decode_user_password,
                         timeout=check_timeout(timeout))


def user_grant_role(user: str, role: str, *, timeout: Optional[float] = None) -> Request[ResponseHeader]:
    """Give ``role`` to ``user`` (either missing: UserNotFoundError / RoleNotFoundError)."""
    payload = _payload("AuthUserGrantRoleRequest", user=_user(user), role=_role_name(role))
    return _request("UserGrantRole", payload, _decode_user_grant, timeout=timeout)


def user_revoke_role(user: str, role: str, *, timeout: Optional[float] = None) -> Request[ResponseHeader]:
    """Take ``role`` from ``user`` (:class:`~etcdfast.errors.RoleNotGrantedError`
    if the user does not have it)."""
    payload = _payload("AuthUserRevokeRoleRequest", name=_user(user), role=_role_name(role))
    return _request("UserRevokeRole", payload, _decode_user_revoke, timeout=timeout)


# -- roles -------------------------------------------------------------------------


def role_add(name: str, *, timeout: Optional[float] = None) -> Request[ResponseHeader]:
    """Create a role with no permissions (:class:`~etcdfast.errors.RoleAlreadyExistsError`
    if the name is taken)."""
    return _request("RoleAdd", _payload("AuthRoleAddRequest", name=_role_name(name)),
                    _decode_role_add, timeout=timeout)


def role_get(name: str, *, timeout: Optional[float] = None) -> Request[Role]:
    """A role and the key permissions it grants, in key order
    (:class:`~etcdfast.errors.RoleNotFoundError` if there is none).

    A permission's ``range_end`` is ``b""`` for one key and ``b"\\0"`` for
    "from ``key`` on"; a prefix shows as its computed range end.
    """
    name = _role_name(name)
    return _request("RoleGet", _payload("AuthRoleGetRequest", role=name), _role_decoder(name),
                    repeatable=True, timeout=timeout)


def role_list(*, timeout: Optional[float] = None) -> Request[List[str]]:
    """All role names."""
    return _request("RoleList", b"", _decode_role_list, repeatable=True, timeout=timeout)


def role_delete(name: str, *, timeout: Optional[float] = None) -> Request[ResponseHeader]:
    """Delete a role; users holding it lose it."""
    return _request("RoleDelete", _payload("AuthRoleDeleteRequest", role=_role_name(name)),
                    _decode_role_delete, timeout=timeout)


def role_grant_permission(
    name: str, key: KeyLike, *, perm_type: PermissionLike, prefix: bool = False,
    range_end: Optional[KeyLike] = None, from_key: bool = False, timeout: Optional[float] = None,
) -> Request[ResponseHeader]:
    """Let a role READ, WRITE or READWRITE a key, a prefix, ``[key, range_end)``
    or everything from ``key`` on (``perm_type``: a :class:`~etcdfast.PermissionType`
    or ``"read"``/``"write"``/``"readwrite"``). Keys and ranges are given as for
    :meth:`~etcdfast.Client.get`; ``""`` with ``prefix=True`` means every key.
    Granting again for the same key and range replaces the type.
    """
    kind = _permission_type(perm_type)
    k, end = _codec.keys.resolve_range(key, range_end, prefix, from_key)
    payload = _payload("AuthRoleGrantPermissionRequest", name=_role_name(name),
                       perm={"permType": int(kind), "key": k, "range_end": end})
    return _request("RoleGrantPermission", payload, _decode_role_grant, timeout=timeout)


def role_revoke_permission(
    name: str, key: KeyLike, *, prefix: bool = False, range_end: Optional[KeyLike] = None,
    from_key: bool = False, timeout: Optional[float] = None,
) -> Request[ResponseHeader]:
    """Take back a permission, named by the same key and range it was granted with
    (:class:`~etcdfast.errors.PermissionNotGrantedError` if the role has no such one)."""
    k, end = _codec.keys.resolve_range(key, range_end, prefix, from_key)
    payload = _payload("AuthRoleRevokePermissionRequest", role=_role_name(name), key=k, range_end=end)
    return _request("RoleRevokePermission", payload, _decode_role_revoke, timeout=timeout)
