"""What every verb shares: global options, the client, exit codes, errors.

A verb is a function ``run(ctx: Context, args: argparse.Namespace) -> int``
registered with :meth:`Commands.add` (see ``etcdfast/cli/__init__.py``). It
gets its client from :meth:`Context.client`, writes results through
``ctx.out`` and reports failures by raising :class:`CliError` (or letting an
:class:`etcdfast.EtcdError` escape): ``main`` turns both into a message on
stderr and an exit code.
"""

from __future__ import annotations

import argparse
import inspect
import os
import re
import sys
from typing import Any, Callable, Dict, List, Optional, TextIO

from .. import Client
from .._core.state import ClientState
from ..errors import AuthError, EtcdError, Timeout, TLSError, Unavailable
from .output import Output

__all__ = [
    "EXIT_OK",
    "EXIT_ERROR",
    "EXIT_USAGE",
    "EXIT_INTERRUPTED",
    "CliError",
    "Context",
    "Commands",
    "Runner",
    "parse_duration",
    "DEFAULT_ENDPOINT",
]

#: Exit codes scripts can rely on.
EXIT_OK = 0
EXIT_ERROR = 1  # etcd or the connection failed
EXIT_USAGE = 2  # bad arguments or bad input
EXIT_INTERRUPTED = 130  # Ctrl-C (128 + SIGINT)

DEFAULT_ENDPOINT = "127.0.0.1:2379"
DEFAULT_DIAL_TIMEOUT = 2.0
DEFAULT_COMMAND_TIMEOUT = 5.0


class CliError(Exception):
    """A failure to report as ``Error: <message>`` with exit code ``code``."""

    def __init__(self, message: str, code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.code = code


Runner = Callable[["Context", argparse.Namespace], int]

# -- durations ----------------------------------------------------------------

_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float:
    """etcdctl's (Go's) duration syntax in seconds: ``5s``, ``500ms``, ``1m30s``;
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
            raise argparse.ArgumentTypeError(
                f"invalid duration {text!r} (use e.g. 5s, 500ms, 1m30s, or seconds)"
            ) from None
    if seconds <= 0 or seconds != seconds:
        raise argparse.ArgumentTypeError(f"duration must be > 0, got {text!r}")
    return seconds


# -- global options -------------------------------------------------------------

WRITE_OUT_CHOICES = ("simple", "json", "table")


def add_global_options(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    """The options every verb accepts, before or after the verb's name.

    The top-level parser holds the real defaults (``None``: look at the
    environment); every sub-parser gets the same options with
    ``argparse.SUPPRESS`` defaults, so a value given after the verb wins and
    an absent one does not overwrite a value given before it.
    """
    default: Any = argparse.SUPPRESS if suppress else None
    group: Any = parser.add_argument_group("global options")
    if suppress:
        # Accepted after the verb too, but listed once, in ``etcdfast --help``.
        add = group.add_argument

        def quiet(*names: str, **kwargs: Any) -> Any:
            kwargs["help"] = argparse.SUPPRESS
            return add(*names, **kwargs)

        group.add_argument = quiet
    group.add_argument(
        "--endpoints", default=default, metavar="HOST:PORT,...",
        help=f"comma-separated etcd endpoints (env ETCDCTL_ENDPOINTS; default {DEFAULT_ENDPOINT})",
    )
    group.add_argument(
        "--dial-timeout", type=parse_duration, default=default, metavar="DURATION",
        help="time to connect, e.g. 2s, 500ms (env ETCDCTL_DIAL_TIMEOUT; default 2s)",
    )
    group.add_argument(
        "--command-timeout", type=parse_duration, default=default, metavar="DURATION",
        help="deadline of each request (env ETCDCTL_COMMAND_TIMEOUT; default 5s)",
    )
    group.add_argument(
        "-w", "--write-out", choices=WRITE_OUT_CHOICES, default=default,
        help="output format (env ETCDCTL_WRITE_OUT; default simple)",
    )
    group.add_argument(
        "--hex", action="store_true", default=default,
        help="print keys and values as \\xNN escapes (simple/table output)",
    )
    group.add_argument(
        "--no-progress", action="store_true", default=default,
        help="never draw progress bars (they are drawn only on a terminal anyway)",
    )
    for flag, dest, what in (
        ("--cacert", "cacert", "CA bundle to verify servers (TLS)"),
        ("--cert", "cert_file", "client certificate (mTLS)"),
        ("--key", "key_file", "client private key (mTLS)"),
        ("--user", "user", "user[:password] for etcd authentication"),
        ("--password", "password", "password for --user"),
    ):
        group.add_argument(flag, dest=dest, metavar=flag[2:].upper(), default=default, help=what)


def _env(name: str) -> Optional[str]:
    value = os.environ.get(name)
    return value if value else None


class Context:
    """The resolved global options, the output stream and the shared client."""

    def __init__(
        self,
        args: argparse.Namespace,
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

        self.endpoints_given = getattr(args, "endpoints", None) is not None
        endpoints = getattr(args, "endpoints", None) or _env("ETCDCTL_ENDPOINTS") or DEFAULT_ENDPOINT
        self.endpoints: List[str] = [e.strip() for e in endpoints.split(",") if e.strip()]
        if not self.endpoints:
            raise CliError("--endpoints is empty")
        self.dial_timeout = self._duration("dial_timeout", "ETCDCTL_DIAL_TIMEOUT", DEFAULT_DIAL_TIMEOUT)
        self.command_timeout = self._duration(
            "command_timeout", "ETCDCTL_COMMAND_TIMEOUT", DEFAULT_COMMAND_TIMEOUT
        )
        write_out = getattr(args, "write_out", None) or _env("ETCDCTL_WRITE_OUT") or "simple"
        if write_out not in WRITE_OUT_CHOICES:
            raise CliError(
                f"ETCDCTL_WRITE_OUT={write_out!r}: must be one of {', '.join(WRITE_OUT_CHOICES)}"
            )
        self.write_out = write_out
        self.hex = bool(getattr(args, "hex", None)) or _env("ETCDCTL_HEX") in ("1", "true")
        self.no_progress = bool(getattr(args, "no_progress", None))
        self._security = {
            flag: getattr(args, dest, None) or _env(f"ETCDCTL_{flag.upper()}")
            for flag, dest in (("cacert", "cacert"), ("cert", "cert_file"), ("key", "key_file"),
                               ("user", "user"), ("password", "password"))
        }
        self._kwargs: Optional[Dict[str, Any]] = None
        self._clients: List[Client] = []
        self._client: Optional[Client] = None

    def _duration(self, attr: str, env: str, default: float) -> float:
        value = getattr(self.args, attr, None)
        if value is not None:
            return float(value)
        text = _env(env)
        if text is None:
            return default
        try:
            return parse_duration(text)
        except argparse.ArgumentTypeError as exc:
            raise CliError(f"{env}: {exc}") from None

    # -- clients ---------------------------------------------------------------

    def client_kwargs(self) -> Dict[str, Any]:
        """Keyword arguments for :class:`etcdfast.Client` from the security flags.

        Flags this client version cannot honour are refused (exit 2) rather
        than ignored: silently talking plain text to a server you asked to
        verify with a CA would be worse than failing.
        """
        if self._kwargs is not None:
            return dict(self._kwargs)
        # Client.__init__ is ClientState.__init__, whose signature
        # says which options this version supports.
        params = inspect.signature(ClientState.__init__).parameters
        kwargs: Dict[str, Any] = {}
        tls = {flag: self._security[flag] for flag in ("cacert", "cert", "key") if self._security[flag]}
        if tls:
            if not {"ca_cert", "cert", "key"} <= set(params):
                flags = ", ".join(f"--{k}" for k in tls)
                raise CliError(f"{flags}: TLS is not supported by this etcdfast client version")
            if ("cert" in tls) != ("key" in tls):
                raise CliError("--cert and --key go together (a client certificate needs its key)")
            names = {"cacert": "ca_cert", "cert": "cert", "key": "key"}
            kwargs.update({names[flag]: path for flag, path in tls.items()})
        user, password = self._security["user"], self._security["password"]
        if user or password:
            if "user" not in params or "password" not in params:
                raise CliError("--user/--password: authentication is not supported by this "
                               "etcdfast client version")
            if not user:
                raise CliError("--password needs --user")
            if password is None and ":" in user:
                user, password = user.split(":", 1)
            if password is None:
                password = self._ask_password(user)
            kwargs["user"], kwargs["password"] = user, password
        self._kwargs = kwargs  # a password is asked for once, not per client
        return dict(kwargs)

    def _ask_password(self, user: str) -> str:
        if not self.stdin.isatty():
            raise CliError(f"--user {user}: no password (use --user {user}:PASSWORD, --password "
                           "or ETCDCTL_PASSWORD)")
        import getpass

        return getpass.getpass("Password: ")

    def new_client(self, endpoints: Optional[List[str]] = None, *, check: bool = True) -> Client:
        """A new client (closed by :meth:`close`), optionally checked to answer
        within the dial timeout."""
        eps = endpoints if endpoints is not None else self.endpoints
        kwargs = self.client_kwargs()
        try:
            client = Client(eps, timeout=self.command_timeout, **kwargs)
        except (ValueError, NotImplementedError, OSError) as exc:
            raise CliError(str(exc)) from None
        self._clients.append(client)
        if check:
            self.dial(client)
        return client

    def dial(self, client: Client) -> None:
        """Wait until ``client`` answers a cheap read, at most the dial timeout.

        grpc connects lazily; this turns "nothing answers" into one clear
        error naming the endpoints, after ``--dial-timeout`` instead of the
        longer command timeout.
        """
        where = ",".join(client.endpoints)
        try:
            client.get(b"\x00", count_only=True, serializable=True, timeout=self.dial_timeout)
        except EtcdError as exc:
            detail = getattr(exc, "details", "") or str(exc)
            if detail.startswith("etcdserver:") or isinstance(exc, (AuthError, PermissionError)):
                # An etcd answered (no leader yet, no permission on this probe
                # key, a wrong password...): the command itself reports it.
                return
            if isinstance(exc, TLSError):
                raise CliError(str(exc), EXIT_ERROR) from None  # already says what failed
            if isinstance(exc, (Unavailable, Timeout)):
                problem = f"cannot reach etcd at {where} within {self.dial_timeout:g}s"
            else:
                problem = f"{where} does not answer like an etcd server"
            raise CliError(f"{problem}: {detail}", EXIT_ERROR) from None

    def client(self) -> Client:
        """The shared client for ``--endpoints``, connected on first use."""
        if self._client is None:
            self._client = self.new_client()
        return self._client

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


GLOBAL_HINT = ("global options (--endpoints, -w, --hex...: see etcdfast --help) "
               "may come before or after the command.")


class Commands:
    """Registers verbs: ``commands.add("get", run_get, help=...)`` returns the
    verb's parser for its own arguments; ``commands.group("lease", ...)``
    returns a :class:`Commands` for sub-verbs (``lease grant``...)."""

    def __init__(self, subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]",
                 parents: List[argparse.ArgumentParser]) -> None:
        self._sub = subparsers
        self._parents = parents

    def add(self, name: str, run: Runner, *, help: str, description: Optional[str] = None,
            epilog: Optional[str] = None, aliases: Optional[List[str]] = None) -> argparse.ArgumentParser:
        epilog = (epilog + "\n\n" if epilog else "") + GLOBAL_HINT
        parser = self._sub.add_parser(
            name, help=help, description=description or help, epilog=epilog,
            parents=self._parents, aliases=aliases or [],
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        parser.set_defaults(run=run, parser=parser)
        return parser

    def group(self, name: str, *, help: str, description: Optional[str] = None) -> "Commands":
        parser = self._sub.add_parser(
            name, help=help, description=description or help, parents=self._parents,
            formatter_class=argparse.RawDescriptionHelpFormatter, epilog=GLOBAL_HINT,
        )
        sub = parser.add_subparsers(title="commands", metavar="COMMAND", dest=f"{name}_command")
        sub.required = True
        parser.set_defaults(parser=parser)
        return Commands(sub, self._parents)
