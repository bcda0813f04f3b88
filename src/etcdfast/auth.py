"""etcd's Auth service: enabling auth, users, roles and permissions.

Builders only (the clients execute them); a cold path, so the generated
message classes from ``_schema`` do the encoding. Reads (status, get, list)
are repeatable and retried on UNAVAILABLE; changes are not. Passwords go
into the request payload and nowhere else: a Request's repr shows only the
method and the byte count.
"""

from __future__ import annotations

from typing import Any, List, Optional, Union

from . import _codec, _schema
from ._request import Request, check_timeout
from .errors import InvalidArgumentError
from .types import AuthStatus, Permission, PermissionType, ResponseHeader, Role

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


def _call(method: str, request: str, response: str, convert: Any, *, repeatable: bool = False,
          timeout: Optional[float] = None, **fields: Any) -> Request[Any]:
    payload = _schema.message(f"etcdserverpb.{request}")(**fields).SerializeToString()
    decode = _schema.decoder(f"etcdserverpb.{response}", convert)
    return Request(_SERVICE + method, payload, decode, repeatable=repeatable, timeout=check_timeout(timeout))


def _name(what: str, value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a str, not {type(value).__name__}")
    if not value:
        raise InvalidArgumentError(f"{what} is empty")
    return value


def _permission_type(value: PermissionLike) -> PermissionType:
    try:
        if isinstance(value, str):
            return PermissionType[value.upper()]
        return PermissionType(value)
    except (KeyError, ValueError):
        raise InvalidArgumentError(f"perm_type must be read, write or readwrite; got {value!r}") from None


# -- auth on/off -------------------------------------------------------------------


def auth_enable(*, timeout: Optional[float] = None) -> Request[ResponseHeader]:
    """Turn authentication on (needs a ``root`` user with the ``root`` role)."""
    return _call("AuthEnable", "AuthEnableRequest", "AuthEnableResponse", _schema.header, timeout=timeout)


def auth_disable(*, timeout: Optional[float] = None) -> Request[ResponseHeader]:
    """Turn authentication off (as root)."""
    return _call("AuthDisable", "AuthDisableRequest", "AuthDisableResponse", _schema.header, timeout=timeout)


def auth_status(*, timeout: Optional[float] = None) -> Request[AuthStatus]:
    """Whether auth is on, and the auth store's revision."""
    return _call("AuthStatus", "AuthStatusRequest", "AuthStatusResponse",
                 lambda m: AuthStatus(_schema.header(m), m.enabled, m.authRevision),
                 repeatable=True, timeout=timeout)


# -- users -------------------------------------------------------------------------


def user_add(name: str, password: Optional[str] = None, *, no_password: bool = False,
             timeout: Optional[float] = None) -> Request[ResponseHeader]:
    """Add a user with a password, or with ``no_password=True`` (certificate-CN login only)."""
    if no_password == (password is not None):
        raise InvalidArgumentError("give a password, or no_password=True, not both")
    fields: Any = {"name": _name("user name", name)}
    if password is not None:
        fields["password"] = _name("password", password)
    else:
        fields["options"] = {"no_password": True}
    return _call("UserAdd", "AuthUserAddRequest", "AuthUserAddResponse", _schema.header,
                 timeout=timeout, **fields)


def user_get(name: str, *, timeout: Optional[float] = None) -> Request[List[str]]:
    """The roles granted to a user."""
    return _call("UserGet", "AuthUserGetRequest", "AuthUserGetResponse", lambda m: list(m.roles),
                 repeatable=True, timeout=timeout, name=_name("user name", name))


def user_list(*, timeout: Optional[float] = None) -> Request[List[str]]:
    """All user names."""
    return _call("UserList", "AuthUserListRequest", "AuthUserListResponse", lambda m: list(m.users),
                 repeatable=True, timeout=timeout)


def user_delete(name: str, *, timeout: Optional[float] = None) -> Request[ResponseHeader]:
    return _call("UserDelete", "AuthUserDeleteRequest", "AuthUserDeleteResponse", _schema.header,
                 timeout=timeout, name=_name("user name", name))


def user_change_password(name: str, password: str, *,
                         timeout: Optional[float] = None) -> Request[ResponseHeader]:
    return _call("UserChangePassword", "AuthUserChangePasswordRequest",
                 "AuthUserChangePasswordResponse", _schema.header, timeout=timeout,
                 name=_name("user name", name), password=_name("password", password))


def user_grant_role(user: str, role: str, *, timeout: Optional[float] = None) -> Request[ResponseHeader]:
    return _call("UserGrantRole", "AuthUserGrantRoleRequest", "AuthUserGrantRoleResponse",
                 _schema.header, timeout=timeout, user=_name("user name", user),
                 role=_name("role name", role))


def user_revoke_role(user: str, role: str, *, timeout: Optional[float] = None) -> Request[ResponseHeader]:
    return _call("UserRevokeRole", "AuthUserRevokeRoleRequest", "AuthUserRevokeRoleResponse",
                 _schema.header, timeout=timeout, name=_name("user name", user),
                 role=_name("role name", role))


# -- roles -------------------------------------------------------------------------


def role_add(name: str, *, timeout: Optional[float] = None) -> Request[ResponseHeader]:
    return _call("RoleAdd", "AuthRoleAddRequest", "AuthRoleAddResponse", _schema.header,
                 timeout=timeout, name=_name("role name", name))


def _role(name: str) -> Any:
    def convert(m: Any) -> Role:
        return Role(name, [Permission(PermissionType(p.permType), p.key, p.range_end) for p in m.perm])
    return convert


def role_get(name: str, *, timeout: Optional[float] = None) -> Request[Role]:
    """A role and the key permissions it grants."""
    return _call("RoleGet", "AuthRoleGetRequest", "AuthRoleGetResponse", _role(name),
                 repeatable=True, timeout=timeout, role=_name("role name", name))


def role_list(*, timeout: Optional[float] = None) -> Request[List[str]]:
    return _call("RoleList", "AuthRoleListRequest", "AuthRoleListResponse", lambda m: list(m.roles),
                 repeatable=True, timeout=timeout)


def role_delete(name: str, *, timeout: Optional[float] = None) -> Request[ResponseHeader]:
    return _call("RoleDelete", "AuthRoleDeleteRequest", "AuthRoleDeleteResponse", _schema.header,
                 timeout=timeout, role=_name("role name", name))


def role_grant_permission(
    name: str, key: KeyLike, *, perm_type: PermissionLike, prefix: bool = False,
    range_end: Optional[KeyLike] = None, from_key: bool = False, timeout: Optional[float] = None,
) -> Request[ResponseHeader]:
    """Let a role READ, WRITE or READWRITE a key, a prefix, ``[key, range_end)``
    or everything from ``key`` on."""
    k, end = _codec.keys.resolve_range(key, range_end, prefix, from_key)
    permission = {"permType": int(_permission_type(perm_type)), "key": k, "range_end": end}
    return _call("RoleGrantPermission", "AuthRoleGrantPermissionRequest",
                 "AuthRoleGrantPermissionResponse", _schema.header, timeout=timeout,
                 name=_name("role name", name), perm=permission)


def role_revoke_permission(
    name: str, key: KeyLike, *, prefix: bool = False, range_end: Optional[KeyLike] = None,
    from_key: bool = False, timeout: Optional[float] = None,
) -> Request[ResponseHeader]:
    """Take back a permission granted with the same key/range."""
    k, end = _codec.keys.resolve_range(key, range_end, prefix, from_key)
    return _call("RoleRevokePermission", "AuthRoleRevokePermissionRequest",
                 "AuthRoleRevokePermissionResponse", _schema.header, timeout=timeout,
                 role=_name("role name", name), key=k, range_end=end)

