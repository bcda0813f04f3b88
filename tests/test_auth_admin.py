"""The Auth admin API against real etcd, through both clients: users, roles,
permissions, errors, password hygiene, and enabling/disabling auth.

User and role changes work with auth off, so most tests use the session's
shared server (unique names, cleaned up). Only the tests that turn auth on
use a private server: the shared one must stay open to every other test.
"""

from __future__ import annotations

import traceback
import uuid
from pathlib import Path
from typing import Iterator

import pytest
from client_drivers import Driver

import etcdfast
from etcdfast import AuthStatus, Permission, PermissionType, ResponseHeader, Role
from etcdfast.api import auth
from etcdfast.api.request import Request
from etcdfast.errors import (
    AuthError,
    AuthFailedError,
    EmptyKeyError,
    InvalidArgumentError,
    InvalidAuthMgmtError,
    PermissionDeniedError,
    PermissionNotGrantedError,
    RoleAlreadyExistsError,
    RoleEmptyError,
    RoleNotFoundError,
    RoleNotGrantedError,
    RootRoleNotExistError,
    RootUserNotExistError,
    UserAlreadyExistsError,
    UserEmptyError,
    UserNotFoundError,
)
from etcdfast.testing import EtcdServer

PACKAGE_DIR = str(Path(etcdfast.__file__).resolve().parent)


def unique(what: str) -> str:
    return f"etcdfast-test-{what}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(params=["sync", "async"])
def cli(request: pytest.FixtureRequest, etcd_server: EtcdServer) -> Iterator[Driver]:
    with Driver(request.param, etcd_server.endpoint, timeout=10) as driver:
        yield driver


@pytest.fixture()
def user(cli: Driver) -> Iterator[str]:
    """A fresh user name, deleted after the test if it exists."""
    name = unique("user")
    yield name
    if name in cli.user_list():
        cli.user_delete(name)


@pytest.fixture()
def role(cli: Driver) -> Iterator[str]:
    """A fresh role name, deleted after the test if it exists."""
    name = unique("role")
    yield name
    if name in cli.role_list():
        cli.role_delete(name)


# -- users and roles ----------------------------------------------------------------


def test_user_and_role_lifecycle(cli: Driver, user: str, role: str) -> None:
    assert isinstance(cli.user_add(user, "pw-1"), ResponseHeader)
    assert user in cli.user_list()
    assert cli.user_get(user) == []
    cli.role_add(role)
    assert role in cli.role_list()
    assert cli.role_get(role) == Role(role, [])

    cli.user_grant_role(user, role)
    assert cli.user_get(user) == [role]
    cli.user_change_password(user, "pw-2")
    cli.user_revoke_role(user, role)
    assert cli.user_get(user) == []

    cli.user_delete(user)
    cli.role_delete(role)
    assert user not in cli.user_list() and role not in cli.role_list()

    status = cli.auth_status()
    assert isinstance(status, AuthStatus) and status.enabled is False and status.auth_revision > 0


def test_deleting_a_role_takes_it_from_its_users(cli: Driver, user: str, role: str) -> None:
    cli.user_add(user, no_password=True)
    cli.role_add(role)
    cli.user_grant_role(user, role)
    cli.role_delete(role)
    assert cli.user_get(user) == []


def test_permissions_of_every_range_shape(cli: Driver, role: str) -> None:
    cli.role_add(role)
    cli.role_grant_permission(role, "/one", perm_type=PermissionType.WRITE)
    cli.role_grant_permission(role, "/app/", perm_type="read", prefix=True)
    cli.role_grant_permission(role, "/a", range_end="/c", perm_type="READWRITE")
    cli.role_grant_permission(role, "/z", from_key=True, perm_type=1)
    cli.role_grant_permission(role, b"/bin\xff", perm_type="write", prefix=True)
    got = cli.role_get(role)
    assert got.name == role
    assert all(isinstance(p, Permission) and type(p.type) is PermissionType for p in got.permissions)
    assert set(got.permissions) == {
        Permission(PermissionType.WRITE, b"/one", b""),
        Permission(PermissionType.READ, b"/app/", b"/app0"),
        Permission(PermissionType.READWRITE, b"/a", b"/c"),
        Permission(PermissionType.WRITE, b"/z", b"\0"),
        Permission(PermissionType.WRITE, b"/bin\xff", b"/bio"),
    }
    # etcd keeps them in key order
    assert [p.key for p in got.permissions] == sorted(p.key for p in got.permissions)

    # granting the same key and range again replaces the type
    cli.role_grant_permission(role, "/app/", perm_type="readwrite", prefix=True)
    assert Permission(PermissionType.READWRITE, b"/app/", b"/app0") in cli.role_get(role).permissions
    assert len(cli.role_get(role).permissions) == 5

    # a revoke names the permission by the same key/range options
    cli.role_revoke_permission(role, "/one")
    cli.role_revoke_permission(role, "/app/", prefix=True)
    cli.role_revoke_permission(role, "/a", range_end="/c")
    cli.role_revoke_permission(role, "/z", from_key=True)
    assert cli.role_get(role).permissions == [Permission(PermissionType.WRITE, b"/bin\xff", b"/bio")]
    with pytest.raises(PermissionNotGrantedError):
        cli.role_revoke_permission(role, "/bin\xff")  # str: UTF-8, another key; and no prefix
    cli.role_revoke_permission(role, b"/bin\xff", prefix=True)
    assert cli.role_get(role).permissions == []


def test_permission_on_every_key(cli: Driver, role: str) -> None:
    cli.role_add(role)
    cli.role_grant_permission(role, "", prefix=True, perm_type="read")
    # etcdctl's spelling of "all keys": ["\0", "\0")
    assert cli.role_get(role).permissions == [Permission(PermissionType.READ, b"\0", b"\0")]
    cli.role_revoke_permission(role, "", from_key=True)  # the same range
    assert cli.role_get(role).permissions == []


# -- errors -------------------------------------------------------------------------


def test_server_errors_are_typed(cli: Driver, user: str, role: str) -> None:
    missing_user, missing_role = unique("missing-user"), unique("missing-role")
    for call in (
        lambda: cli.user_delete(missing_user),
        lambda: cli.user_get(missing_user),
        lambda: cli.user_change_password(missing_user, "pw"),
        lambda: cli.user_grant_role(missing_user, "root"),
    ):
        with pytest.raises(UserNotFoundError):
            call()

    cli.user_add(user, no_password=True)
    with pytest.raises(UserAlreadyExistsError) as info:
        cli.user_add(user, "pw")
    assert isinstance(info.value, AuthError)
    for call in (
        lambda: cli.role_get(missing_role),
        lambda: cli.role_delete(missing_role),
        lambda: cli.role_grant_permission(missing_role, "/k", perm_type="read"),
        lambda: cli.role_revoke_permission(missing_role, "/k"),
        lambda: cli.user_grant_role(user, missing_role),
    ):
        with pytest.raises(RoleNotFoundError):
            call()

    cli.role_add(role)
    with pytest.raises(RoleAlreadyExistsError):
        cli.role_add(role)
    with pytest.raises(RoleNotGrantedError):
        cli.user_revoke_role(user, role)
    with pytest.raises(PermissionNotGrantedError):
        cli.role_revoke_permission(role, "/never-granted")


def test_arguments_are_checked_before_sending(cli: Driver) -> None:
    with pytest.raises(UserEmptyError):
        cli.user_add("", "pw")
    with pytest.raises(RoleEmptyError):
        cli.role_add("")
    with pytest.raises(InvalidArgumentError, match="password"):
        cli.user_add("u")  # neither a password ...
    with pytest.raises(InvalidArgumentError, match="password"):
        cli.user_add("u", "pw", no_password=True)  # ... nor both
    with pytest.raises(InvalidArgumentError, match="password is empty"):
        cli.user_change_password("u", "")
    with pytest.raises(TypeError):
        cli.user_add(b"u", "pw")
    with pytest.raises(TypeError):
        cli.role_get(None)
    for bad in ("execute", 3, -1):
        with pytest.raises(InvalidArgumentError, match="perm_type"):
            cli.role_grant_permission("r", "/k", perm_type=bad)
    for wrong_type in (True, 1.0, None):
        with pytest.raises(TypeError, match="perm_type"):
            cli.role_grant_permission("r", "/k", perm_type=wrong_type)
    with pytest.raises(EmptyKeyError):
        cli.role_grant_permission("r", "", perm_type="read")
    with pytest.raises(InvalidArgumentError):
        cli.role_grant_permission("r", "/k", perm_type="read", prefix=True, from_key=True)
    with pytest.raises(InvalidArgumentError):
        cli.role_revoke_permission("r", "/k", prefix=True, range_end="/l")


def test_only_reads_are_repeatable() -> None:
    reads = [auth.auth_status(), auth.user_get("u"), auth.user_list(), auth.role_get("r"), auth.role_list()]
    writes = [
        auth.auth_enable(), auth.auth_disable(), auth.user_add("u", "pw"),
        auth.user_add("u", no_password=True), auth.user_delete("u"),
        auth.user_change_password("u", "pw"), auth.user_grant_role("u", "r"),
        auth.user_revoke_role("u", "r"), auth.role_add("r"), auth.role_delete("r"),
        auth.role_grant_permission("r", "/k", perm_type="read"), auth.role_revoke_permission("r", "/k"),
    ]
    assert all(isinstance(r, Request) and r.method.startswith("/etcdserverpb.Auth/") for r in reads + writes)
    assert [r.repeatable for r in reads] == [True] * len(reads)
    assert [r.repeatable for r in writes] == [False] * len(writes)
    assert auth.user_list(timeout=2.5).timeout == 2.5


# -- passwords stay secret ------------------------------------------------------------


def _shown(error: BaseException) -> str:
    """Everything a traceback of ``error`` can show of etcdfast's frames, locals included."""
    text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    tb = error.__traceback__
    while tb is not None:
        frame = tb.tb_frame
        if frame.f_code.co_filename.startswith(PACKAGE_DIR):
            text += "".join(f"{name}={value!r}\n" for name, value in frame.f_locals.items())
        tb = tb.tb_next
    return text


def test_passwords_never_shown() -> None:
    secret = "s3cret-Pa55word"
    for request in (auth.user_add("alice", secret), auth.user_change_password("alice", secret)):
        assert secret.encode() in request.payload
        shown = repr(request)
        assert secret not in shown and str(len(request.payload)) not in shown and "Auth/User" in shown

    unencodable = "s3cret-\ud800-word"
    for build in (lambda: auth.user_add("alice", unencodable),
                  lambda: auth.user_change_password("alice", unencodable),
                  lambda: auth.login_payload("alice", unencodable)):  # a client's own login
        with pytest.raises(InvalidArgumentError) as info:
            build()
        assert "password" in str(info.value)
        assert "s3cret" not in str(info.value) and "s3cret" not in repr(info.value)
        assert info.value.__cause__ is None and info.value.__suppress_context__
    with pytest.raises(InvalidArgumentError, match="user name '\\\\ud800'"):
        auth.user_add("\ud800", "pw")  # names are no secret: say which
    with pytest.raises(TypeError, match="password must be a str"):
        auth.login_payload("alice", secret.encode())


def test_password_not_kept_by_failing_calls(cli: Driver, user: str) -> None:
    secret = "n0t-in-any-frame"
    cli.user_add(user, no_password=True)
    with pytest.raises(UserAlreadyExistsError) as info:
        cli.user_add(user, secret)
    assert secret not in _shown(info.value)
    with pytest.raises(UserNotFoundError) as missing:
        cli.user_change_password(unique("missing-user"), password=secret)
    assert secret not in _shown(missing.value)


# -- auth on, on a private server -------------------------------------------------------


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_enable_permissions_and_disable(kind: str) -> None:
    with EtcdServer(name=f"auth-{kind}") as server:
        endpoint = server.endpoint
        with Driver(kind, endpoint, timeout=10) as admin:
            with pytest.raises(RootUserNotExistError):
                admin.auth_enable()
            admin.user_add("root", "rootpw")
            with pytest.raises(RootRoleNotExistError):
                admin.auth_enable()
            admin.user_grant_role("root", "root")  # the built-in role: no role_add needed
            admin.role_add("reader")
            admin.role_grant_permission("reader", "/data/", perm_type="read", prefix=True)
            admin.user_add("bob", "bobpw")
            admin.user_grant_role("bob", "reader")
            admin.user_add("certonly", no_password=True)
            admin.put("/data/x", "1")
            admin.auth_enable()

        with Driver(kind, endpoint, user="root", password="rootpw", timeout=10) as root:
            status = root.auth_status()
            assert status.enabled is True and status.auth_revision > 0
            assert set(root.user_list()) == {"root", "bob", "certonly"}
            with pytest.raises(InvalidAuthMgmtError):
                root.user_delete("root")
            with pytest.raises(InvalidAuthMgmtError):
                root.user_revoke_role("root", "root")

            with Driver(kind, endpoint, user="bob", password="bobpw", timeout=10) as bob:
                assert bob.get_value("/data/x") == b"1"
                with pytest.raises(PermissionDeniedError):
                    bob.put("/data/x", "2")
                with pytest.raises(PermissionDeniedError):
                    bob.get("/other")
                with pytest.raises(PermissionDeniedError):
                    bob.user_list()  # the admin API needs root

            with Driver(kind, endpoint, timeout=10) as anonymous:
                with pytest.raises(AuthError):
                    anonymous.get("/data/x")
                with pytest.raises(AuthError):
                    anonymous.user_list()

            for name, password in (("bob", "wrong"), ("nobody", "whatever"), ("certonly", "guess")):
                with Driver(kind, endpoint, user=name, password=password, timeout=10) as bad:
                    with pytest.raises(AuthFailedError) as info:
                        bad.get("/data/x")
                    assert password not in _shown(info.value)

            root.user_change_password("bob", "bobpw-2")
            with Driver(kind, endpoint, user="bob", password="bobpw", timeout=10) as old:
                with pytest.raises(AuthFailedError):
                    old.get("/data/x")
            with Driver(kind, endpoint, user="bob", password="bobpw-2", timeout=10) as bob:
                assert bob.get_value("/data/x") == b"1"

            root.auth_disable()

        with Driver(kind, endpoint, timeout=10) as anyone:
            assert anyone.auth_status().enabled is False
            anyone.put("/data/x", "3")  # auth is off again
            assert anyone.get_value("/data/x") == b"3"
