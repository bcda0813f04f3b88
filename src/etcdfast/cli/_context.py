"""What every verb shares: global options, the client, exit codes, errors.

A verb is a function ``run(ctx: Context, args: argparse.Namespace) -> int``
registered with :meth:`Commands.add` (see ``etcdfast/cli/__init__.py``). It
gets its client from :meth:`Context.client`, writes results through
``ctx.out`` and reports failures by raising :class:`CliError` (or letting an
:class:`etcdfast.EtcdError` escape): ``main`` turns both into a message on
stderr and an exit code.
"""

from __future__ import annotations

import os
import re
import sys
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, TextIO

from ._flags import ArgError, Args, Command, Flag, env_name
from .output import Output

if TYPE_CHECKING:
    from .. import Client
    from .._core.observe import CallInfo

__all__ = [
    "EXIT_OK",
    "EXIT_ERROR",
    "EXIT_BAD_CONNECTION",
    "EXIT_INVALID_INPUT",
    "EXIT_BAD_FEATURE",
    "EXIT_IO",
    "EXIT_BAD_ARGS",
    "EXIT_USAGE",
    "EXIT_INTERRUPTED",
    "CliError",
    "Context",
    "Commands",
    "Runner",
    "parse_duration",
    "DEFAULT_ENDPOINT",
    "GLOBAL_FLAGS",
]

#: Exit codes: etcdctl's (ctlv3/command/error.go), so scripts written for it keep working.
EXIT_OK = 0
EXIT_ERROR = 1  # etcd refused, the connection failed, or the command line did not parse
EXIT_BAD_CONNECTION = 2  # a lease or watch stream broke (etcdctl's ExitBadConnection)
EXIT_INVALID_INPUT = 3  # bad txn or load input
EXIT_BAD_FEATURE = 4  # a known flag with a value this command cannot honour (-w table on get -w...)
EXIT_IO = 6
EXIT_BAD_ARGS = 128  # the wrong arguments for the command
EXIT_USAGE = EXIT_BAD_ARGS
EXIT_INTERRUPTED = 130  # Ctrl-C (128 + SIGINT, as when etcdctl dies of it)

DEFAULT_ENDPOINT = "127.0.0.1:2379"
DEFAULT_DIAL_TIMEOUT = 2.0
DEFAULT_COMMAND_TIMEOUT = 5.0
DEFAULT_KEEPALIVE_TIME = 2.0
DEFAULT_KEEPALIVE_TIMEOUT = 6.0


class CliError(Exception):
    """A failure to report as ``Error: <message>`` with exit code ``code``."""

    def __init__(self, message: str, code: int = EXIT_BAD_ARGS) -> None:
        super().__init__(message)
        self.code = code


Runner = Callable[["Context", Args], int]

# -- durations ----------------------------------------------------------------

_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_go_duration(text: str) -> float:
    """Go's ``time.ParseDuration`` in seconds (``5s``, ``500ms``, ``1m30s``, ``0``);
    a plain number is seconds."""
    raw = text.strip()
    try:
        seconds = float(raw)
    except ValueError:
        pos, seconds = 0, 0.0
        for match in _DURATION_PART.finditer(raw):
            if match.start() != pos:
                break
            seconds += float(match.group(1)) * _UNITS[match.group(2)]
            pos = match.end()
        if pos != len(raw) or not raw:
            raise ArgError(f'time: invalid duration "{text}" (use e.g. 5s, 500ms, 1m30s)') from None
    if seconds < 0 or seconds != seconds:
        raise ArgError(f"duration must be >= 0, got {text!r}")
    return seconds


def parse_duration(text: str) -> float:
    """Like :func:`parse_go_duration`, but zero is refused (a run time, a deadline)."""
    seconds = parse_go_duration(text)
    if seconds <= 0:
        raise ArgError(f"duration must be > 0, got {text!r}")
    return seconds


# -- global options -------------------------------------------------------------

WRITE_OUT_CHOICES = ("simple", "json", "table", "fields", "protobuf")

#: etcdctl's persistent flags (ctlv3/ctl.go), plus etcdfast's --no-progress.
#: ``ETCDCTL_<NAME>`` sets any of them that the command line does not.
GLOBAL_FLAGS = (
    Flag("endpoints", kind="list", default=[DEFAULT_ENDPOINT], help="gRPC endpoints"),
    Flag("debug", kind="bool", default=False, help="enable client-side debug logging"),
    Flag("write-out", short="w", default="simple",
         help="set the output format (fields, json, protobuf, simple, table)"),
    Flag("hex", kind="bool", default=False, help="print byte strings as hex encoded strings"),
    Flag("dial-timeout", default=DEFAULT_DIAL_TIMEOUT, convert=parse_go_duration, metavar="2s",
         help="dial timeout for client connections (0s: no timeout)"),
    Flag("command-timeout", default=DEFAULT_COMMAND_TIMEOUT, convert=parse_go_duration, metavar="5s",
         help="timeout for short running command (excluding dial timeout)"),
    Flag("keepalive-time", default=DEFAULT_KEEPALIVE_TIME, convert=parse_go_duration, metavar="2s",
         help="keepalive time for client connections"),
    Flag("keepalive-timeout", default=DEFAULT_KEEPALIVE_TIMEOUT, convert=parse_go_duration, metavar="6s",
         help="keepalive timeout for client connections"),
    Flag("insecure-transport", kind="bool", default=True,
         help="disable transport security for client connections"),
    Flag("insecure-discovery", kind="bool", default=True,
         help="accept insecure SRV records describing cluster endpoints"),
    Flag("insecure-skip-tls-verify", kind="bool", default=False,
         help="skip server certificate verification (CAUTION: for testing only)"),
    Flag("cert", dest="cert_file", default="", help="identify secure client using this TLS certificate file"),
    Flag("key", dest="key_file", default="", help="identify secure client using this TLS key file"),
    Flag("cacert", default="", help="verify certificates of TLS-enabled secure servers using this CA bundle"),
    Flag("user", default="",
         help="username[:password] for authentication (prompt if password is not supplied)"),
    Flag("password", default="", help="password for authentication (then --user must not include one)"),
    Flag("discovery-srv", short="d", default="",
         help="domain name to query for SRV records describing cluster endpoints"),
    Flag("discovery-srv-name", default="", help="service name to query when using DNS discovery"),
    Flag("no-progress", kind="bool", default=False,
         help="never draw progress bars (they are drawn only on a terminal anyway)"),
)


def _env(name: str) -> Optional[str]:
    value = os.environ.get(name)
    return value if value else None


def apply_environment(cmd: Command, args: Args, environ: Optional[Dict[str, str]] = None) -> None:
    """etcdctl's SetPflagsFromEnv: ``ETCDCTL_X`` sets the inherited flag ``x``
    when the command line did not (local flags take no variables)."""
    env = os.environ if environ is None else environ
    for flag in cmd.inherited_flags():
        if flag.dest in args.given:
            continue
        text = env.get(env_name(flag.name))
        if text is None or text == "":
            continue
        from ._flags import ParseError

        try:
            setattr(args, flag.dest, flag.value(text, env_name(flag.name)))
        except ParseError as exc:
            raise CliError(str(exc), EXIT_ERROR) from None
        args.given[flag.dest] = env_name(flag.name)


class Context:
    """The resolved global options, the output stream and the shared client."""

    def __init__(
        self,
        args: Args,
        *,
        stdout: Optional[TextIO] = None,
        stderr: Optional[TextIO] = None,
        stdin: Optional[TextIO] = None,
    ) -> None:
        self.args = args
        self.stdout = stdout if stdout is not None else sys.stdout
        self.stderr = stderr if stderr is not None else sys.stderr
        self.stdin = stdin if stdin is not None else sys.stdin
        self.out = Output(self.stdout)

        if args.debug:
            # etcdctl --debug: the client's logs on stderr, and every flag's value first.
            os.environ.setdefault("ETCD_CLIENT_DEBUG", "1")
            for flag in GLOBAL_FLAGS:
                value = getattr(args, flag.dest, flag.default)
                if isinstance(value, list):
                    value = "[" + ",".join(map(str, value)) + "]"
                if flag.name == "password" and value:
                    value = "(hidden)"
                self.stderr.write(f"{env_name(flag.name)}={value}\n")
        self.endpoints_given = "endpoints" in args.given
        self.endpoints: List[str] = [e.strip() for e in args.endpoints if e.strip()]
        #: The TLS name a discovered cluster's certificates carry (etcdctl: the domain).
        self.server_name: Optional[str] = None
        if args.discovery_srv:
            self.endpoints = self._discover(args) or self.endpoints
        if not self.endpoints:
            raise CliError("--endpoints is empty", EXIT_ERROR)
        dial = float(args.dial_timeout)
        self.dial_timeout: Optional[float] = dial if dial > 0 else None
        self.command_timeout = float(args.command_timeout) or DEFAULT_COMMAND_TIMEOUT
        self.keepalive_time = float(args.keepalive_time)
        self.keepalive_timeout = float(args.keepalive_timeout)
        write_out = args.write_out
        if write_out not in WRITE_OUT_CHOICES:
            raise CliError("unsupported output format", EXIT_BAD_FEATURE)
        self.write_out = write_out
        self.hex = bool(args.hex)
        self.no_progress = bool(args.no_progress)
        self._security = {
            "cacert": args.cacert, "cert": args.cert_file, "key": args.key_file,
            "user": args.user, "password": args.password,
        }
        self._kwargs: Optional[Dict[str, Any]] = None
        self._clients: List["Client"] = []
        self._client: Optional["Client"] = None

    def _discover(self, args: Args) -> List[str]:
        """``--discovery-srv``: the endpoints in the domain's SRV records (etcdctl
        drops plaintext ones unless ``--insecure-discovery``, its default)."""
        from ..discovery import srv_endpoints
        from ..errors import EtcdError

        domain = args.discovery_srv
        try:
            found = srv_endpoints(domain, args.discovery_srv_name, insecure=args.insecure_discovery)
        except EtcdError as exc:
            raise CliError(str(exc), EXIT_ERROR) from None
        if not args.insecure_discovery:
            self.server_name = domain.strip(".")
        return found

    # -- clients ---------------------------------------------------------------

    def client_kwargs(self) -> Dict[str, Any]:
        """Keyword arguments for :class:`etcdfast.Client` from the global flags.

        Flags this client version cannot honour are refused rather than
        ignored: silently talking plain text to a server you asked to verify
        with a CA would be worse than failing.
        """
        if self._kwargs is not None:
            return dict(self._kwargs)
        args = self.args
        kwargs: Dict[str, Any] = {
            "dial_timeout": self.dial_timeout,
            "on_call": self._log_failed_call,
            "keepalive_time": self.keepalive_time or None,
            "keepalive_timeout": self.keepalive_timeout or DEFAULT_KEEPALIVE_TIMEOUT,
        }
        tls = {flag: self._security[flag] for flag in ("cacert", "cert", "key") if self._security[flag]}
        if ("cert" in tls) != ("key" in tls):
            raise CliError("--cert and --key go together (a client certificate needs its key)", EXIT_ERROR)
        names = {"cacert": "ca_cert", "cert": "cert", "key": "key"}
        kwargs.update({names[flag]: path for flag, path in tls.items()})
        if self.server_name is not None:
            kwargs["server_name"] = self.server_name
        if args.insecure_skip_tls_verify and (tls or not args.insecure_transport
                                              or any(e.startswith("https://") for e in self.endpoints)):
            kwargs["insecure_skip_verify"] = True  # etcdctl: it only matters over TLS
        if not args.insecure_transport and not tls:
            # TLS with the system's CAs (etcdctl: --insecure-transport=false).
            kwargs["endpoints_tls"] = True
        user, password = self._security["user"], self._security["password"]
        if user or password:
            if not user:
                raise CliError("--password needs --user", EXIT_ERROR)
            # etcdctl 3.4: with --password, --user is the whole name, colons included.
            if not password and ":" in user:
                user, password = user.split(":", 1)
            if not password:
                password = self._ask_password(user)
            kwargs["user"], kwargs["password"] = user, password
        self._kwargs = kwargs  # a password is asked for once, not per client
        return dict(kwargs)

    def _log_failed_call(self, info: "CallInfo") -> None:
        """etcdctl's client logs each failed unary call as a JSON line on stderr
        ("retrying of unary invoker failed", with the gRPC status); scripts and
        etcd's own e2e tests look for it, so the drop-in logs the same event."""
        if info.kind != "unary" or info.error is None or info.code in ("OK", "CLIENT"):
            return
        import json
        import time

        code = "".join(part.capitalize() for part in info.code.split("_"))
        details = getattr(info.error, "details", "") or str(info.error)
        now = time.time()
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z"
        line = {"level": "warn", "ts": stamp, "caller": "etcdfast/cli",
                "msg": "retrying of unary invoker failed",
                "target": f"endpoint://client-etcdfast/{info.endpoint or self.endpoints[0]}",
                "attempt": info.retries, "error": f"rpc error: code = {code} desc = {details}"}
        self.stderr.write(json.dumps(line, separators=(",", ":")) + "\n")

    def _ask_password(self, user: str) -> str:
        if not self.stdin.isatty():
            raise CliError(f"--user {user}: no password (use --user {user}:PASSWORD, --password "
                           "or ETCDCTL_PASSWORD)", EXIT_BAD_ARGS)
        import getpass

        return getpass.getpass("Password: ")

    def new_client(self, endpoints: Optional[List[str]] = None, **extra: Any) -> "Client":
        """A new client (closed by :meth:`close`); grpc connects on the first call."""
        from .. import Client

        eps = list(endpoints if endpoints is not None else self.endpoints)
        kwargs = self.client_kwargs()
        kwargs.update(extra)
        if kwargs.pop("endpoints_tls", False):
            eps = [e if "://" in e else f"https://{e}" for e in eps]
        try:
            client = Client(eps, timeout=self.command_timeout, **kwargs)
        except (ValueError, NotImplementedError, OSError) as exc:
            raise CliError(str(exc), EXIT_ERROR) from None
        self._clients.append(client)
        return client

    def drop_credentials(self) -> bool:
        """Forget --user/--password and the clients that used them; False if there were none."""
        kwargs = self.client_kwargs()
        if "user" not in kwargs:
            return False
        self.close()
        self._kwargs = {k: v for k, v in kwargs.items() if k not in ("user", "password")}
        return True

    def client(self) -> "Client":
        """The shared client for ``--endpoints``."""
        if self._client is None:
            self._client = self.new_client()
            if "user" in self.client_kwargs():
                self._check_login(self._client)
        return self._client

    def _check_login(self, client: "Client") -> None:
        """clientv3 ignores ErrAuthNotEnabled from its login: with auth off, --user is not
        needed. Find out with one cheap read before the command runs (it may read stdin,
        so it cannot simply be run again)."""
        from ..errors import AuthNotEnabledError, EtcdError

        try:
            client.get(b"\x00", count_only=True, serializable=True)
        except AuthNotEnabledError:
            self.drop_credentials()
            self._client = self.new_client()
        except EtcdError:
            pass  # no permission on the probe, a dead endpoint...: the command reports its own

    def close(self) -> None:
        for client in self._clients:
            try:
                client.close()
            except Exception:  # closing must not mask the real outcome
                pass
        self._clients.clear()
        self._client = None

    # -- small helpers for verbs -------------------------------------------------

    def progress_enabled(self) -> Optional[bool]:
        """``False`` with ``--no-progress``, else ``None`` (draw when a TTY)."""
        return False if self.no_progress else None

    def note(self, message: str) -> None:
        """A line for the human, on stderr."""
        self.stderr.write(message + "\n")
        self.stderr.flush()

    def unsupported_format(self, what: str) -> CliError:
        """etcdctl's refusal of ``-w fields``/``protobuf``/``table`` where it has no such printer."""
        return CliError(f"{self.write_out} not supported as output format", EXIT_BAD_FEATURE)


class Commands:
    """Registers verbs on a :class:`Command`: ``commands.add("get", run_get,
    help=...)`` returns the verb's command, whose ``add_argument`` adds its
    options and arguments; ``commands.group("lease", ...)`` returns a
    :class:`Commands` for sub-verbs (``lease grant``...)."""

    def __init__(self, command: Command) -> None:
        self.command = command

    def add(self, name: str, run: Runner, *, help: str, description: Optional[str] = None,
            epilog: Optional[str] = None, aliases: Optional[List[str]] = None, usage: str = "",
            arg_error: str = "", extra_args: bool = False) -> Command:
        cmd = self.command.add(name, run, help=help, description=description or "", epilog=epilog or "",
                               aliases=aliases or (), usage=usage, arg_error=arg_error)
        cmd.extra_args = extra_args
        return cmd

    def group(self, name: str, *, help: str, description: Optional[str] = None,
              aliases: Optional[List[str]] = None) -> "Commands":
        return Commands(self.command.add(name, None, help=help, description=description or "",
                                         aliases=aliases or ()))
