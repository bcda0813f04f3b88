"""The Auth admin API against real etcd: users, roles, permissions, enable/disable."""

from __future__ import annotations

import uuid

import pytest
from conftest import run

import etcdfast
from etcdfast import PermissionDeniedError, PermissionType
from etcdfast.errors import (
    AuthFailedError,
    InvalidArgumentError,
    RoleNotFoundError,
    UserAlreadyExistsError,
    UserNotFoundError,
)
from etcdfast.testing import EtcdServer


def unique(what: str) -> str:
    return f"{what}-{uuid.uuid4().hex[:8]}"


def test_user_and_role_lifecycle(client):
    user, role = unique("user"), unique("role")
    client.user_add(user, "pw-1")
    client.role_add(role)
    try:
        assert user in client.user_list() and role in client.role_list()
        client.role_grant_permission(role, "/app/", perm_type="read", prefix=True)
        client.role_grant_permission(role, "/one", perm_type=PermissionType.WRITE)
        client.role_grant_permission(role, "/a", range_end="/c", perm_type="readwrite")
        client.role_grant_permission(role, "/z", from_key=True, perm_type=2)
        got = client.role_get(role)
        assert got.name == role
        assert {(p.type, p.key, p.range_end) for p in got.permissions} == {
            (PermissionType.READ, b"/app/", b"/app0"),
            (PermissionType.WRITE, b"/one", b""),
            (PermissionType.READWRITE, b"/a", b"/c"),
            (PermissionType.READWRITE, b"/z", b"\0"),
        }
        client.role_revoke_permission(role, "/one")
        assert len(client.role_get(role).permissions) == 3
        client.user_grant_role(user, role)
        assert client.user_get(user) == [role]
        client.user_revoke_role(user, role)
        assert client.user_get(user) == []
        client.user_change_password(user, "pw-2")
        assert client.auth_status().enabled is False
    finally:
        client.user_delete(user)
        client.role_delete(role)
    assert user not in client.user_list() and role not in client.role_list()


def test_auth_admin_errors(client):
    user = unique("user")
    with pytest.raises(UserNotFoundError):
        client.user_delete(user)
    client.user_add(user, no_password=True)
    try:
        with pytest.raises(UserAlreadyExistsError):
            client.user_add(user, "pw")
        with pytest.raises(RoleNotFoundError):
            client.user_grant_role(user, unique("missing-role"))
        with pytest.raises(RoleNotFoundError):
            client.role_get(unique("missing-role"))
    finally:
        client.user_delete(user)
    with pytest.raises(InvalidArgumentError):
        client.user_add("", "pw")
    with pytest.raises(InvalidArgumentError):
        client.user_add(user)  # neither a password nor no_password
    with pytest.raises(InvalidArgumentError):
        client.role_grant_permission("r", "/k", perm_type="execute")


def test_enable_permissions_and_disable():
    with EtcdServer() as server:
        with etcdfast.Client(server.endpoint, timeout=10) as admin:
            admin.user_add("root", "rootpw")
            admin.role_add("root")
            admin.user_grant_role("root", "root")
            admin.role_add("reader")
            admin.role_grant_permission("reader", "/data/", perm_type="read", prefix=True)
            admin.user_add("bob", "bobpw")
            admin.user_grant_role("bob", "reader")
            admin.put("/data/x", "1")
            admin.auth_enable()
        with etcdfast.Client(server.endpoint, user="root", password="rootpw", timeout=10) as root:
            status = root.auth_status()
            assert status.enabled and status.auth_revision > 0
            with etcdfast.Client(server.endpoint, user="bob", password="bobpw", timeout=10) as bob:
                assert bob.get_value("/data/x") == b"1"
                with pytest.raises(PermissionDeniedError):
                    bob.put("/data/x", "2")
                with pytest.raises(PermissionDeniedError):
                    bob.user_list()  # admin calls need root
            with etcdfast.Client(server.endpoint, user="bob", password="wrong", timeout=10) as bad:
                with pytest.raises(AuthFailedError):
                    bad.get("/data/x")
            root.auth_disable()
        with etcdfast.Client(server.endpoint, timeout=10) as anyone:
            anyone.put("/data/x", "3")  # auth is off again


def test_async_auth_admin(etcd_server):
    async def main():
        async with etcdfast.AsyncClient(etcd_server.endpoint, timeout=10) as client:
            role = unique("role")
            await client.role_add(role)
            await client.role_grant_permission(role, b"/bin\xff", perm_type="write", prefix=True)
            got = await client.role_get(role)
            assert got.permissions[0].key == b"/bin\xff" and got.permissions[0].range_end == b"/bio"
            assert (await client.auth_status()).enabled is False
            await client.role_delete(role)
            assert role not in await client.role_list()

    run(main())
