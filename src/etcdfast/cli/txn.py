"""``txn``: etcdctl's transaction syntax, read from stdin.

Three sections separated by blank lines::

    value("/config") = "v1"
    mod("/lock") < "7"

    put /config v2
    get /config

    get /config

1. compares, one per line: ``TARGET("key") OP "operand"`` with TARGET one of
   ``value``/``val``, ``version``/``ver``, ``create``/``c``, ``mod``/``m``,
   ``lease`` (operand in hex) and OP one of ``=``, ``!=``, ``<``, ``>``;
   strings are Go-quoted (``"a\\x00b"``, or a raw ```...``` string);
2. the ops to run when every compare holds: ``put``/``get``/``del`` lines
   taking the same options as those verbs (``get --prefix /a/``);
3. the ops to run otherwise.

Words in op lines may be quoted with ``"..."`` (Go escapes) or ``'...'`` (literal).
"""

from __future__ import annotations

import re
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Sequence, Tuple, TypeVar

from .. import Compare, Comparison, Op
from ..api.request import Request
from ..api.txn import CompareTarget
from ..types import DeleteResult, GetResult, OpResult, PutResult, TxnResult
from ._context import EXIT_INVALID_INPUT, EXIT_OK, CliError, Commands, Context
from ._flags import ArgCountError, ArgError, Args, Command, ParseError, parse
from .kv import (
    _del_fields,
    _get_fields,
    _put_fields,
    add_del_options,
    add_get_options,
    add_put_options,
    del_kwargs,
    get_kwargs,
    parse_lease,
    print_del,
    print_get,
    print_other,
    print_put,
    put_kwargs,
    to_bytes,
)
from .output import fields_header

__all__ = ["register", "parse_txn", "parse_compare", "parse_op", "go_unquote", "argify", "TxnOp"]

# -- Go string literals ------------------------------------------------------------

_SIMPLE_ESCAPES = {
    "a": b"\a", "b": b"\b", "f": b"\f", "n": b"\n", "r": b"\r", "t": b"\t", "v": b"\v",
    "\\": b"\\", "'": b"'", '"': b'"',
}


def go_unquote(literal: str) -> bytes:
    """The bytes of a Go string literal: ``"..."`` with escapes, or ```...``` raw."""
    if len(literal) >= 2 and literal[0] == literal[-1] == "`":
        return to_bytes(literal[1:-1])
    if len(literal) < 2 or literal[0] != '"' or literal[-1] != '"':
        raise ValueError(f"not a quoted string: {literal}")
    body = literal[1:-1]
    out = bytearray()
    i = 0
    while i < len(body):
        ch = body[i]
        if ch == '"':
            raise ValueError(f"unescaped quote in {literal}")
        if ch != "\\":
            out += to_bytes(ch)
            i += 1
            continue
        if i + 1 >= len(body):
            raise ValueError(f"dangling backslash in {literal}")
        esc = body[i + 1]
        if esc in _SIMPLE_ESCAPES:
            out += _SIMPLE_ESCAPES[esc]
            i += 2
        elif esc == "x":
            out.append(_hex(body[i + 2:i + 4], 2, literal))
            i += 4
        elif esc in "01234567":
            digits = body[i + 1:i + 4]
            if len(digits) != 3 or any(d not in "01234567" for d in digits) or int(digits, 8) > 255:
                raise ValueError(f"bad octal escape in {literal}")
            out.append(int(digits, 8))
            i += 4
        elif esc in "uU":
            size = 4 if esc == "u" else 8
            out += chr(_hex(body[i + 2:i + 2 + size], size, literal)).encode("utf-8", "surrogatepass")
            i += 2 + size
        else:
            raise ValueError(f"unknown escape \\{esc} in {literal}")
    return bytes(out)


def _hex(digits: str, size: int, literal: str) -> int:
    if len(digits) != size or not re.fullmatch(r"[0-9A-Fa-f]+", digits):
        raise ValueError(f"bad \\x/\\u escape in {literal}")
    value = int(digits, 16)
    if value > 0x10FFFF:
        raise ValueError(f"escape out of range in {literal}")
    return value


# etcdctl's Argify: "double quoted" (Go escapes), 'single quoted' (literal), or bare words.
_WORD = re.compile(r'"(?:[^"\\]|\\.)*"|\'[^\']*\'|\S+')


def argify(line: str) -> List[str]:
    """Split an op line into words; quoted words are unquoted (bytes kept via surrogateescape)."""
    words = []
    for match in _WORD.finditer(line):
        word = match.group(0)
        if word[0] == '"' and len(word) > 1 and word[-1] == '"':
            word = go_unquote(word).decode("utf-8", "surrogateescape")
        elif word[0] == "'" and len(word) > 1 and word[-1] == "'":
            word = word[1:-1]
        words.append(word)
    return words


# -- compares --------------------------------------------------------------------

_TARGETS: Dict[str, Callable[..., CompareTarget]] = {
    "value": Compare.value, "val": Compare.value,
    "version": Compare.version, "ver": Compare.version,
    "create": Compare.create_revision, "c": Compare.create_revision,
    "mod": Compare.mod_revision, "m": Compare.mod_revision,
    "lease": Compare.lease,
}
_STRING = r'"(?:[^"\\]|\\.)*"|`[^`]*`'
_COMPARE = re.compile(
    rf"^\s*(?P<target>\w+)\s*\(\s*(?P<key>{_STRING})\s*\)\s*(?P<op>!=|=|==|<|>)\s*"
    rf"(?P<operand>{_STRING}|-?\w+)\s*$"
)


def parse_compare(line: str) -> Comparison:
    """One compare line, e.g. ``value("k") = "v"`` or ``mod("k") > "5"``."""
    match = _COMPARE.match(line)
    if match is None:
        raise ValueError(
            f"malformed comparison: {line.strip()!r} "
            '(expected e.g. value("key") = "v", mod("key") > "5")'
        )
    target = match.group("target")
    builder = _TARGETS.get(target)
    if builder is None:
        raise ValueError(f"malformed comparison: unknown target {target!r} "
                         f"(use value, version, create, mod or lease)")
    key = go_unquote(match.group("key"))
    raw = match.group("operand")
    text = go_unquote(raw) if raw[0] in "\"`" else raw.encode()
    operand: object
    if builder is Compare.value:
        operand = text
    elif builder is Compare.lease:
        try:
            operand = parse_lease(text.decode())
        except (ArgError, UnicodeDecodeError) as exc:
            raise ValueError(f"malformed comparison: {exc}") from None
    else:
        try:
            operand = int(text)
        except ValueError:
            raise ValueError(f"malformed comparison: {target} compares with an integer, "
                             f"got {text.decode(errors='replace')!r}") from None
    side = builder(key)
    op = match.group("op")
    if op in ("=", "=="):
        return side == operand
    if op == "!=":
        return side != operand
    if op == "<":
        return side < operand
    return side > operand


# -- ops -------------------------------------------------------------------------


def _op_root() -> Command:
    root = Command("", help="")
    for name, add in (("get", add_get_options), ("put", add_put_options), ("del", add_del_options)):
        add(root.add(name, run=None, help=name))
    return root


_OP_ROOT = _op_root()


class TxnOp(NamedTuple):
    """A parsed op line: the request, and its options (for printing its result)."""

    request: Request[object]
    args: Args


def parse_op(line: str) -> TxnOp:
    """One op line: ``put k v``, ``get k [--prefix ...]``, ``del k [...]``."""
    words = argify(line)
    if not words:
        raise ValueError("empty op")
    verb = words[0]
    if verb not in _OP_ROOT.subcommands:
        raise ValueError(f"unknown op {verb!r} (use put, get or del)")
    try:
        _, args, _ = parse(_OP_ROOT, words)
    except (ParseError, ArgCountError, CliError) as exc:
        raise ValueError(f"{verb}: {exc}") from None
    request: Any
    try:
        if verb == "get":
            request = Op.get(**get_kwargs(args))
        elif verb == "put":
            if args.value is None and not args.ignore_value:
                raise ValueError("put needs a key and a value")
            value = to_bytes(args.value) if args.value is not None else b""
            request = Op.put(**put_kwargs(args, value))
        else:
            request = Op.delete(**del_kwargs(args))
    except CliError as exc:
        raise ValueError(str(exc)) from None
    return TxnOp(request, args)


# -- the txn text ------------------------------------------------------------------

Section = List[Tuple[int, str]]
PROMPTS = ("compares:", "success requests (get, put, del):", "failure requests (get, put, del):")


def read_sections(
    readline: Callable[[], str], prompt: Optional[Callable[[str], None]] = None
) -> Tuple[Section, Section, Section]:
    """Split the input into its three blank-line separated sections (with line numbers)."""
    sections: List[Section] = [[], [], []]
    lineno = 0
    for index in range(3):
        if prompt is not None:
            prompt(PROMPTS[index])
        while True:
            line = readline()
            if not line:  # EOF
                return sections[0], sections[1], sections[2]
            lineno += 1
            text = line.rstrip("\r\n")
            if not text.strip():
                break
            sections[index].append((lineno, text))
    return sections[0], sections[1], sections[2]


def parse_txn(
    compares: Section, success: Section, failure: Section
) -> Tuple[List[Comparison], List[TxnOp], List[TxnOp]]:
    """Build the txn; a bad line raises CliError naming its line number."""
    return _each(compares, parse_compare), _each(success, parse_op), _each(failure, parse_op)


T = TypeVar("T")


def _each(section: Section, parse: Callable[[str], T]) -> List[T]:
    out = []
    for lineno, text in section:
        try:
            out.append(parse(text))
        except (ValueError, TypeError) as exc:
            raise CliError(f"txn: line {lineno}: {exc}", EXIT_INVALID_INPUT) from None
    return out


def print_txn(ctx: Context, result: TxnResult, ops: Sequence[Optional[TxnOp]] = ()) -> None:
    """etcdctl's txn output; ``ops`` are the branch's parsed ops (their options
    decide how a result prints, e.g. ``get --count-only``)."""
    if print_other(ctx, result, _txn_fields):
        return
    ctx.out.line("SUCCESS" if result.succeeded else "FAILURE")
    for index, response in enumerate(result.responses):
        ctx.out.line()
        op = ops[index] if index < len(ops) else None
        _print_op(ctx, response, op.args if op is not None else None)


def _txn_fields(result: TxnResult) -> str:
    out = fields_header(result.header) + f'"Succeeded" : {str(result.succeeded).lower()}\n'
    for response in result.responses:
        if isinstance(response, GetResult):
            out += _get_fields(response)
        elif isinstance(response, PutResult):
            out += _put_fields(response)
        elif isinstance(response, DeleteResult):
            out += _del_fields(response)
    return out


def _print_op(ctx: Context, response: Optional[OpResult], args: Optional[Args]) -> None:
    if isinstance(response, GetResult):
        print_get(ctx, response, args)
    elif isinstance(response, PutResult):
        print_put(ctx, response, args)
    elif isinstance(response, DeleteResult):
        print_del(ctx, response, args)
    elif isinstance(response, TxnResult):
        print_txn(ctx, response)


def run_txn(ctx: Context, args: Args) -> int:
    interactive = args.interactive and ctx.stdin.isatty()

    def prompt(text: str) -> None:
        ctx.stdout.write(text + "\n")
        ctx.stdout.flush()

    binary = getattr(ctx.stdin, "buffer", None)
    if binary is not None and not interactive:
        # Bytes in, so keys and values that are not UTF-8 survive.
        def readline() -> str:
            return binary.readline().decode("utf-8", "surrogateescape")  # type: ignore[no-any-return]
    else:
        readline = ctx.stdin.readline
    sections = read_sections(readline, prompt if interactive else None)
    compares, success, failure = parse_txn(*sections)
    result = ctx.client().txn(compare=compares, success=[op.request for op in success],
                              failure=[op.request for op in failure])
    print_txn(ctx, result, success if result.succeeded else failure)
    return EXIT_OK


HELP = """\
Reads a transaction from stdin: three sections separated by blank lines.

  value("/config") = "v1"
  mod("/lock") < "7"

  put /config v2
  get /config

  get /config

1. compares, one per line: TARGET("key") OP "operand", with TARGET one of
   value/val, version/ver, create/c, mod/m, lease (operand in hex) and OP one
   of =, !=, <, >; strings are Go-quoted ("a\\x00b", or a raw `...` string);
2. the requests to run when every compare holds: put/get/del lines taking
   the same options as those commands (get --prefix /a/);
3. the requests to run otherwise.

Words in request lines may be quoted with "..." (Go escapes) or '...' (literal)."""


def register(commands: Commands) -> None:
    p = commands.add("txn", run_txn, help="Txn processes all the requests in one transaction",
                     usage="txn [options]", description=HELP,
                     arg_error="txn command does not accept argument")
    p.add_argument("-i", "--interactive", action="store_true", help="Input transaction in interactive mode")
