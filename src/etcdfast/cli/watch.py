"""``watch``: print changes to a key or range as they happen, as etcdctl does.

simple output, per event: PUT or DELETE, then (with --prev-kv) the previous
key and value, then the key and value, one per line. json output: one line
per server response, etcdctl's shape ({"Header":...,"Events":[...],
"CompactRevision":0,"Canceled":false,"Created":false}).

``watch KEY -- CMD ARGS`` runs CMD once per event, with ETCD_WATCH_REVISION,
ETCD_WATCH_EVENT_TYPE, ETCD_WATCH_KEY and ETCD_WATCH_VALUE in its
environment (Go-quoted, as etcdctl sets them). ETCDCTL_WATCH_KEY and
ETCDCTL_WATCH_RANGE_END give the key and range end instead of arguments.
``watch -i`` reads lines from stdin: ``watch [options] KEY [RANGE_END] [--
CMD...]`` starts a watch, ``progress`` asks every watch for a progress
notification.

The watch ends when the server cancels it (a compacted revision, a lost
permission): etcdctl's "watch is canceled by the server", exit 5.
"""

from __future__ import annotations

import os
import subprocess
import threading
from typing import TYPE_CHECKING, Any, Dict, List, Tuple

from ._context import EXIT_BAD_ARGS, EXIT_ERROR, EXIT_INVALID_INPUT, EXIT_OK, CliError, Commands, Context
from ._flags import ArgCountError, Args, Command, ParseError, parse
from .kv import print_kv, to_bytes
from .output import dumps, fields_header, fields_kv, go_quote, header_json, kv_json

if TYPE_CHECKING:
    from ..types import Event, WatchResponse

__all__ = ["register", "event_json"]

EXIT_CANCELED = 5  # etcdctl's ExitInterrupted: "watch is canceled by the server"

BAD_ARGS = "bad number of arguments"
CONFLICT_ENV = "bad number of arguments (found conflicting environment key)"
NO_COMMAND = "bad number of arguments (found separator --, but no commands)"


def event_json(event: "Event") -> Dict[str, Any]:
    out: Dict[str, Any] = {}
    if int(event.type) == 1:
        out["type"] = 1
    out["kv"] = kv_json(event.kv)
    if event.prev_kv is not None:
        out["prev_kv"] = kv_json(event.prev_kv)
    return out


class Printer:
    """Prints responses of one or more watches (``-i`` runs several threads)."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.lock = threading.Lock()

    def response(self, batch: "WatchResponse", exec_args: List[str]) -> None:
        ctx = self.ctx
        with self.lock:
            if batch.is_progress_notify:
                ctx.out.line(f"progress notify: {batch.header.revision}")
            fmt = ctx.write_out
            if fmt == "json":
                ctx.out.line(dumps({
                    "Header": header_json(batch.header),
                    "Events": [event_json(e) for e in batch.events] or None,
                    "CompactRevision": batch.compact_revision,
                    "Canceled": batch.canceled,
                    "Created": batch.created,
                }))
            elif fmt == "fields":
                ctx.out.write(fields_header(batch.header) + "".join(
                    f'"Type" : {e.type.name}\n' + (fields_kv(e.prev_kv, "Prev") if e.prev_kv else "")
                    + fields_kv(e.kv) for e in batch.events))
            elif fmt == "protobuf":
                from ._pb import encode_response

                ctx.out.write(encode_response(batch))
            else:
                for event in batch.events:
                    ctx.out.line(event.type.name)
                    if event.prev_kv is not None:
                        print_kv(ctx, event.prev_kv)
                    print_kv(ctx, event.kv)
            ctx.out.flush()
            for event in batch.events if exec_args else ():
                self._exec(exec_args, batch, event)

    def _exec(self, exec_args: List[str], batch: "WatchResponse", event: "Event") -> None:
        env = dict(os.environ)
        env.update({
            "ETCD_WATCH_REVISION": str(batch.header.revision),
            "ETCD_WATCH_EVENT_TYPE": go_quote(event.type.name),
            "ETCD_WATCH_KEY": go_quote(event.kv.key),
            "ETCD_WATCH_VALUE": go_quote(event.kv.value),
        })
        try:
            code = subprocess.call(exec_args, env=env, stdout=self.ctx.stdout, stderr=self.ctx.stderr)
            error = f"exit status {code}" if code else ""
        except OSError as exc:
            error = f"exec: {exec_args[0]!r}: {exc.strerror or exc}"
        if error:
            quoted = "[" + " ".join(go_quote(a) for a in exec_args) + "]"
            self.ctx.stderr.write(f"command {quoted} error ({error})\n")
            self.ctx.stderr.flush()
            os._exit(EXIT_ERROR)  # as etcdctl: the whole watch ends here


def _watch_call(ctx: Context, words: List[str], args: Args, progress: bool = False) -> Any:
    if not words:
        raise CliError(BAD_ARGS)
    key = to_bytes(words[0])
    range_end = None
    if len(words) >= 2:
        if args.prefix:
            raise CliError("`range_end` and `--prefix` are mutually exclusive")
        range_end = to_bytes(words[1])
    prefix = args.prefix
    if prefix and not key:
        key, prefix = b"\x00", False
        range_end = b"\x00"
    return ctx.client().watch(key, prefix=prefix, range_end=range_end, start_revision=max(args.rev, 0),
                              prev_kv=args.prev_kv,
                              progress_notify=progress or args.progress_notify)


def _follow(ctx: Context, printer: Printer, watch: Any, exec_args: List[str], max_events: int = 0) -> bool:
    """Print until the server ends the watch (then report it as etcdctl does:
    False), or until ``max_events`` events were printed (True)."""
    from ..errors import EtcdError
    from ..types import Progress, WatchResponse

    seen = 0
    try:
        for batch in watch.batches():
            if isinstance(batch, Progress):
                with printer.lock:
                    ctx.out.line(f"progress notify: {batch.revision}")
                    ctx.out.flush()
                continue
            assert isinstance(batch, WatchResponse)
            if not batch.events and not batch.canceled and not batch.compact_revision:
                continue  # created / progress without events: etcdctl's clientv3 hides these
            if max_events:
                batch = batch._replace(events=batch.events[:max_events - seen])
            printer.response(batch, exec_args)
            seen += len(batch.events)
            if max_events and seen >= max_events:
                return True
    except EtcdError as exc:
        from . import error_text

        with printer.lock:
            ctx.stderr.write(f"watch was canceled ({error_text(exc)})\n")
            ctx.stderr.flush()
            compact = getattr(exc, "compact_revision", None)
            if ctx.write_out == "json" and compact:
                ctx.out.line(dumps({"Header": _cancel_header(ctx), "Events": [], "CompactRevision": compact,
                                    "Canceled": True, "Created": False}))
                ctx.out.flush()
    finally:
        watch.cancel()
    return False


def _cancel_header(ctx: Context) -> Dict[str, int]:
    """The header etcd puts on a cancel response: the member's IDs and term, no revision."""
    from ..errors import EtcdError

    try:
        header = ctx.client().get(b"\x00", count_only=True, serializable=True).header
    except EtcdError:
        return {}
    return header_json(header._replace(revision=0))


def _split(args: Args) -> Tuple[List[str], List[str]]:
    """(watch words, command words) from the parsed arguments."""
    words = list(args.words)
    if args.dash >= 0:
        return words[:args.dash], words[args.dash:]
    return words, []


def _env_key() -> Tuple[str, str]:
    key, range_end = os.environ.get("ETCDCTL_WATCH_KEY", ""), os.environ.get("ETCDCTL_WATCH_RANGE_END", "")
    if not key and range_end:
        raise CliError(f"ETCDCTL_WATCH_KEY is empty but got ETCDCTL_WATCH_RANGE_END={go_quote(range_end)}")
    return key, range_end


def _with_env(words: List[str], key: str, range_end: str) -> List[str]:
    if key:
        if words:
            raise CliError(CONFLICT_ENV)
        return [key] + ([range_end] if range_end else [])
    return words


def run_watch(ctx: Context, args: Args) -> int:
    env_key, env_range = _env_key()
    if args.interactive:
        return _interactive(ctx, args, env_key, env_range)
    words, exec_args = _split(args)
    if args.dash >= 0 and not exec_args:
        raise CliError(NO_COMMAND)
    words = _with_env(words, env_key, env_range)
    if not words:
        raise CliError(BAD_ARGS)
    printer = Printer(ctx)
    from ..errors import EtcdError

    try:
        watch = _watch_call(ctx, words, args)
    except EtcdError as exc:  # refused at creation (no permission...): a cancel, as for etcdctl
        from . import error_text

        ctx.note(f"watch was canceled ({error_text(exc)})")
        raise CliError("watch is canceled by the server", EXIT_CANCELED) from None
    if _follow(ctx, printer, watch, exec_args, args.max_events):
        return EXIT_OK
    raise CliError("watch is canceled by the server", EXIT_CANCELED)


def _line_parser() -> Command:
    root = Command("", help="")
    register_options(root.add("watch", run=None, help="watch"))
    return root


def _interactive(ctx: Context, args: Args, env_key: str, env_range: str) -> int:
    from .txn import argify

    printer = Printer(ctx)
    root = _line_parser()
    stdin = getattr(ctx.stdin, "buffer", None)
    while True:
        raw = stdin.readline() if stdin is not None else ctx.stdin.readline()
        if not raw:
            raise CliError("Error reading watch request line: EOF", EXIT_INVALID_INPUT)
        line = (raw.decode("utf-8", "surrogateescape") if isinstance(raw, bytes) else raw).rstrip("\r\n")
        words = argify(line)
        if not words:
            ctx.note(f"Invalid command: {line} (watch and progress supported)")
            continue
        if words[0] == "progress":
            ctx.client().request_progress()
            continue
        if words[0] != "watch":
            ctx.note(f"Invalid command {line} (only support watch)")
            continue
        if len(words) < 2 and not env_key:
            ctx.note(f"Invalid command {line} (command type or key is not provided)")
            continue
        try:
            _, line_args, _ = parse(root, words)
            watch_words, exec_args = _split(line_args)
            if line_args.dash >= 0 and not exec_args:
                raise CliError(NO_COMMAND)
            watch_words = _with_env(watch_words, env_key, env_range)
            if not watch_words:
                raise CliError(BAD_ARGS)
        except (ParseError, ArgCountError) as exc:
            raise CliError(str(exc), EXIT_BAD_ARGS) from None
        try:
            watch = _watch_call(ctx, watch_words, line_args, progress=True)
        except CliError as exc:
            ctx.note(f"Invalid command {line} ({exc})")
            continue
        threading.Thread(target=_follow, args=(ctx, printer, watch, exec_args), daemon=True).start()


def register_options(p: Command) -> None:
    p.add_argument("words", nargs="*", metavar="ARG",
                   help="[key or prefix] [range_end] [--] [exec-command arg1 ...]")
    p.add_argument("-i", "--interactive", action="store_true", help="Interactive mode")
    p.add_argument("--prefix", action="store_true", help="Watch on a prefix if prefix is set")
    p.add_argument("--rev", type=int, default=0, help="Revision to start watching")
    p.add_argument("--prev-kv", action="store_true",
                   help="get the previous key-value pair before the event happens")
    p.add_argument("--progress-notify", action="store_true",
                   help="print periodic progress notifications (etcdfast)")
    p.add_argument("--max-events", type=_positive, default=0,
                   help="exit (0) after this many events (etcdfast; default: until canceled)")


def _positive(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise ValueError(f"must be > 0, got {value}")
    return value


def register(commands: Commands) -> None:
    p = commands.add("watch", run_watch, help="Watches events stream on keys or prefixes",
                     usage="watch [options] [key or prefix] [range_end] [--] [exec-command arg1 arg2 ...]",
                     description=__doc__)
    register_options(p)

