"""``auth``, ``user`` and ``role``: etcd's authentication admin, as etcdctl prints it.

Every verb prints etcdctl's line (``User alice created``), or with ``-w
json``/``protobuf``/``fields`` the whole response. Passwords come from the
argument (``user add alice:secret``), ``--new-user-password``, a prompt on
the terminal, or with ``--interactive=false`` the first word on stdin.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, List, Optional, Tuple

from ._context import EXIT_BAD_ARGS, EXIT_OK, CliError, Commands, Context
from ._flags import Args
from .kv import to_bytes
from .output import fields_header, go_quote

if TYPE_CHECKING:
    from ..api.request import Request

__all__ = ["register", "prefix_range_end"]


def prefix_range_end(key: bytes) -> bytes:
    """clientv3.GetPrefixRangeEnd: the smallest key above every key starting with ``key``."""
    end = bytearray(key)
    for i in range(len(end) - 1, -1, -1):
        if end[i] < 0xFF:
            end[i] += 1
            return bytes(end[:i + 1])
    return b"\x00"


def _respond(ctx: Context, request: "Request[Any]", response: str, simple: Callable[[Any], None],
             fields: Optional[Callable[[Any], str]] = None) -> int:
    from ._raw import respond

    return respond(ctx, request, response, simple, fields,
                   table=response in ("AuthRoleListResponse", "AuthUserListResponse"))


# -- auth -------------------------------------------------------------------------------


def run_auth_enable(ctx: Context, args: Args) -> int:
    from ..errors import RootRoleNotExistError

    client = ctx.client()
    while True:
        try:
            client.auth_enable()
            break
        except RootRoleNotExistError:
            # As etcdctl: create the root role, give it to root, try again.
            client.role_add("root")
            client.user_grant_role("root", "root")
    ctx.out.line("Authentication Enabled")
    return EXIT_OK


def run_auth_disable(ctx: Context, args: Args) -> int:
    ctx.client().auth_disable()
    ctx.out.line("Authentication Disabled")
    return EXIT_OK


def run_auth_status(ctx: Context, args: Args) -> int:
    from ..api import auth as api

    def simple(m: Any) -> None:
        ctx.out.line(f"Authentication Status: {str(m.enabled).lower()}")
        ctx.out.line(f"AuthRevision: {m.authRevision}")

    return _respond(ctx, api.auth_status(), "AuthStatusResponse", simple)


# -- user ---------------------------------------------------------------------------------


def _read_password(ctx: Context, name: str, interactive: bool) -> str:
    if not interactive:
        # etcdctl: fmt.Scanf("%s"), the first word of the next line.
        stdin = getattr(ctx.stdin, "buffer", None)
        line = stdin.readline().decode("utf-8", "surrogateescape") if stdin is not None \
            else ctx.stdin.readline()
        words = line.split()
        return words[0] if words else ""
    import getpass

    try:
        first = getpass.getpass(f"Password of {name}: ")
        if not first:
            raise CliError("empty password", EXIT_BAD_ARGS)
        second = getpass.getpass(f"Type password of {name} again for confirmation: ")
    except EOFError:
        raise CliError("failed to ask password: EOF", EXIT_BAD_ARGS) from None
    if first != second:
        raise CliError("given passwords are different", EXIT_BAD_ARGS)
    return first


def _with_empty_password(request: "Request[Any]", message: str, **fields: Any) -> "Request[Any]":
    """etcd takes an empty password (etcdctl sends one when stdin gives none); the
    library refuses it as a likely mistake, so the CLI writes that request itself."""
    if not fields.get("password"):
        from .. import _schema

        request.payload = _schema.message(f"etcdserverpb.{message}")(**fields).SerializeToString()
    return request


def run_user_add(ctx: Context, args: Args) -> int:
    from ..api import auth as api

    name, password = args.name, None
    if not args.no_password:
        if args.new_user_password:
            password = args.new_user_password
        elif ":" in name:
            name, password = name.split(":", 1)
            if not name:
                raise CliError("empty user name is not allowed", EXIT_BAD_ARGS)
        else:
            password = _read_password(ctx, name, args.interactive)
    if args.no_password:
        request = api.user_add(name, no_password=True)
    else:
        request = _with_empty_password(api.user_add(name, password or "-"), "AuthUserAddRequest",
                                       name=name, password=password)
    return _respond(ctx, request, "AuthUserAddResponse", lambda m: ctx.out.line(f"User {name} created"))


def run_user_delete(ctx: Context, args: Args) -> int:
    from ..api import auth as api

    return _respond(ctx, api.user_delete(args.name), "AuthUserDeleteResponse",
                    lambda m: ctx.out.line(f"User {args.name} deleted"))


def _role_get_simple(ctx: Context, role: str, perms: List[Any]) -> None:
    out = ctx.out
    out.line(f"Role {role}")
    for title, kinds in (("KV Read:", (0, 2)), ("KV Write:", (1, 2))):
        out.line(title)
        for perm in perms:
            if perm.permType not in kinds:
                continue
            key, end = bytes(perm.key), bytes(perm.range_end)
            if not end:
                out.line(b"\t" + key)
                continue
            line = b"\t[" + key + (b", " + end + b")" if end != b"\x00" else b", <open ended>")
            if prefix_range_end(key) == end:
                line += b" (prefix " + key + b")"
            out.line(line)


def _role_fields(m: Any) -> str:
    from ._raw import header_of

    out = fields_header(header_of(m))
    for perm in m.perm:
        kind = ("READ", "WRITE", "READWRITE")[perm.permType]
        out += f'"PermType" :  {kind}\n"Key" : {go_quote(bytes(perm.key))}\n' \
               f'"RangeEnd" : {go_quote(bytes(perm.range_end))}\n'
    return out


def run_user_get(ctx: Context, args: Args) -> int:
    from ..api import auth as api
    from ._raw import call

    if args.detail:
        roles = ctx.client().user_get(args.name)
        ctx.out.line(f"User: {args.name}")
        for role in roles:
            ctx.out.line()
            message = call(ctx.client(), api.role_get(role), "AuthRoleGetResponse")
            _role_get_simple(ctx, role, list(message.perm))
        return EXIT_OK

    def simple(m: Any) -> None:
        ctx.out.line(f"User: {args.name}")
        ctx.out.line("Roles:" + "".join(f" {r}" for r in m.roles))

    return _respond(ctx, api.user_get(args.name), "AuthUserGetResponse", simple)


def _names(ctx: Context, attr: str) -> Callable[[Any], None]:
    def simple(m: Any) -> None:
        for name in getattr(m, attr):
            ctx.out.line(name)

    return simple


def _names_fields(attr: str, title: str) -> Callable[[Any], str]:
    def fields(m: Any) -> str:
        from ._raw import header_of

        return fields_header(header_of(m)) + f'"{title}" :' + "".join(
            f" {go_quote(n)}" for n in getattr(m, attr)) + "\n"

    return fields


def run_user_list(ctx: Context, args: Args) -> int:
    from ..api import auth as api

    if ctx.write_out == "fields":  # etcdctl's fields printer has no user list
        raise ctx.unsupported_format("fields")
    return _respond(ctx, api.user_list(), "AuthUserListResponse", _names(ctx, "users"))


def run_user_passwd(ctx: Context, args: Args) -> int:
    from ..api import auth as api

    password = _read_password(ctx, args.name, args.interactive)
    request = _with_empty_password(api.user_change_password(args.name, password or "-"),
                                   "AuthUserChangePasswordRequest", name=args.name, password=password)
    return _respond(ctx, request, "AuthUserChangePasswordResponse",
                    lambda m: ctx.out.line("Password updated"))


def run_user_grant_role(ctx: Context, args: Args) -> int:
    from ..api import auth as api

    return _respond(ctx, api.user_grant_role(args.name, args.role), "AuthUserGrantRoleResponse",
                    lambda m: ctx.out.line(f"Role {args.role} is granted to user {args.name}"))


def run_user_revoke_role(ctx: Context, args: Args) -> int:
    from ..api import auth as api

    return _respond(ctx, api.user_revoke_role(args.name, args.role), "AuthUserRevokeRoleResponse",
                    lambda m: ctx.out.line(f"Role {args.role} is revoked from user {args.name}"))


# -- role ---------------------------------------------------------------------------------


def run_role_add(ctx: Context, args: Args) -> int:
    from ..api import auth as api

    return _respond(ctx, api.role_add(args.name), "AuthRoleAddResponse",
                    lambda m: ctx.out.line(f"Role {args.name} created"))


def run_role_delete(ctx: Context, args: Args) -> int:
    from ..api import auth as api

    return _respond(ctx, api.role_delete(args.name), "AuthRoleDeleteResponse",
                    lambda m: ctx.out.line(f"Role {args.name} deleted"))


def run_role_get(ctx: Context, args: Args) -> int:
    from ..api import auth as api

    return _respond(ctx, api.role_get(args.name), "AuthRoleGetResponse",
                    lambda m: _role_get_simple(ctx, args.name, list(m.perm)), _role_fields)


def run_role_list(ctx: Context, args: Args) -> int:
    from ..api import auth as api

    return _respond(ctx, api.role_list(), "AuthRoleListResponse", _names(ctx, "roles"),
                    _names_fields("roles", "Roles"))


def perm_range(args: Args, words: List[str]) -> Tuple[bytes, bytes]:
    """etcdctl's permRange: the key and range end a permission's arguments name."""
    key = to_bytes(words[0])
    if args.prefix and args.from_key:
        raise CliError("--from-key and --prefix flags are mutually exclusive")
    if not key:
        # The empty key: every key with --prefix/--from-key, as ["\x00", open end).
        return b"\x00", (b"\x00" if args.prefix or args.from_key else b"")
    if len(words) == 1:
        if args.prefix:
            return key, prefix_range_end(key)
        return key, (b"\x00" if args.from_key else b"")
    if args.prefix:
        raise CliError("unexpected endkey argument with --prefix flag")
    if args.from_key:
        raise CliError("unexpected endkey argument with --from-key flag")
    return key, to_bytes(words[1])


_PERM_TYPES = {"READ": 0, "WRITE": 1, "READWRITE": 2}


def run_role_grant_permission(ctx: Context, args: Args) -> int:
    from ..api import auth as api

    words = args.words
    if len(words) < 3:
        raise CliError("role grant command requires role name, permission type, and key [endkey] "
                       "as its argument")
    role, kind = words[0], words[1].upper()
    if kind not in _PERM_TYPES:
        raise CliError(f"invalid permission type: {words[1]}")
    key, end = perm_range(args, words[2:])
    request = api.role_grant_permission(role, key, perm_type=kind.lower(), range_end=end or None)
    return _respond(ctx, request, "AuthRoleGrantPermissionResponse",
                    lambda m: ctx.out.line(f"Role {role} updated"))


def run_role_revoke_permission(ctx: Context, args: Args) -> int:
    from ..api import auth as api

    words = args.words
    if len(words) < 2:
        raise CliError("role revoke-permission command requires role name and key [endkey] as its argument")
    role = words[0]
    key, end = perm_range(args, words[1:])

    def simple(m: Any) -> None:
        typed = to_bytes(words[1])
        if not end:
            ctx.out.line(b"Permission of key " + typed + b" is revoked from role " + role.encode())
        elif end != b"\x00":
            ctx.out.line(b"Permission of range [" + typed + b", " + end + b") is revoked from role "
                         + role.encode())
        else:
            ctx.out.line(b"Permission of range [" + typed + b", <open ended> is revoked from role "
                         + role.encode())

    return _respond(ctx, api.role_revoke_permission(role, key, range_end=end or None),
                    "AuthRoleRevokePermissionResponse", simple)


# -- registration ----------------------------------------------------------------------------


def register(commands: Commands) -> None:
    auth = commands.group("auth", help="Enable or disable authentication")
    auth.add("enable", run_auth_enable, help="Enables authentication", usage="auth enable",
             arg_error="auth enable command does not accept any arguments")
    auth.add("disable", run_auth_disable, help="Disables authentication", usage="auth disable",
             arg_error="auth disable command does not accept any arguments")
    auth.add("status", run_auth_status, help="Returns authentication status", usage="auth status",
             arg_error="auth status command does not accept any arguments")

    user = commands.group("user", help="User related commands")
    p = user.add("add", run_user_add, help="Adds a new user",
                 usage="user add <user name or user:password> [options]",
                 arg_error="user add command requires user name as its argument")
    p.add_argument("name", metavar="USER", help="user name, or user:password")
    p.add_argument("--interactive", action="store_true", default=True,
                   help="Read password from stdin instead of interactive terminal")
    p.add_argument("--new-user-password", default="", help="Supply password from the command line flag")
    p.add_argument("--no-password", action="store_true",
                   help="Create a user without password (CN based auth only)")
    p = user.add("delete", run_user_delete, help="Deletes a user", usage="user delete <user name>",
                 arg_error="user delete command requires user name as its argument")
    p.add_argument("name", metavar="USER", help="user name")
    p = user.add("get", run_user_get, help="Gets detailed information of a user",
                 usage="user get <user name> [options]",
                 arg_error="user get command requires user name as its argument")
    p.add_argument("name", metavar="USER", help="user name")
    p.add_argument("--detail", action="store_true", help="Show permissions of roles granted to the user")
    user.add("list", run_user_list, help="Lists all users", usage="user list",
             arg_error="user list command requires no arguments")
    p = user.add("passwd", run_user_passwd, help="Changes password of user",
                 usage="user passwd <user name> [options]",
                 arg_error="user passwd command requires user name as its argument")
    p.add_argument("name", metavar="USER", help="user name")
    p.add_argument("--interactive", action="store_true", default=True,
                   help="If true, read password from stdin instead of interactive terminal")
    p = user.add("grant-role", run_user_grant_role, help="Grants a role to a user",
                 usage="user grant-role <user name> <role name>",
                 arg_error="user grant command requires user name and role name as its argument")
    p.add_argument("name", metavar="USER", help="user name")
    p.add_argument("role", metavar="ROLE", help="role name")
    p = user.add("revoke-role", run_user_revoke_role, help="Revokes a role from a user",
                 usage="user revoke-role <user name> <role name>",
                 arg_error="user revoke-role requires user name and role name as its argument")
    p.add_argument("name", metavar="USER", help="user name")
    p.add_argument("role", metavar="ROLE", help="role name")

    role = commands.group("role", help="Role related commands")
    for verb, run, what, message in (
        ("add", run_role_add, "Adds a new role", "role add command requires role name as its argument"),
        ("delete", run_role_delete, "Deletes a role",
         "role delete command requires role name as its argument"),
        ("get", run_role_get, "Gets detailed information of a role",
         "role get command requires role name as its argument"),
    ):
        p = role.add(verb, run, help=what, usage=f"role {verb} <role name>", arg_error=message)
        p.add_argument("name", metavar="ROLE", help="role name")
    role.add("list", run_role_list, help="Lists all roles", usage="role list",
             arg_error="role list command requires no arguments")
    p = role.add("grant-permission", run_role_grant_permission, help="Grants a key to a role",
                 usage="role grant-permission [options] <role name> <permission type> <key> [endkey]")
    p.add_argument("words", nargs="*", metavar="ARG", help="role name, read|write|readwrite, key [endkey]")
    p.add_argument("--prefix", action="store_true", help="grant a prefix permission")
    p.add_argument("--from-key", action="store_true",
                   help="grant a permission of keys that are greater than or equal to the given key "
                        "using byte compare")
    p = role.add("revoke-permission", run_role_revoke_permission, help="Revokes a key from a role",
                 usage="role revoke-permission <role name> <key> [endkey]")
    p.add_argument("words", nargs="*", metavar="ARG", help="role name, key [endkey]")
    p.add_argument("--prefix", action="store_true", help="revoke a prefix permission")
    p.add_argument("--from-key", action="store_true",
                   help="revoke a permission of keys that are greater than or equal to the given key "
                        "using byte compare")
