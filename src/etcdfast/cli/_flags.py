"""etcdctl's command-line grammar (cobra and pflag), small and quick to import.

Why not argparse: etcdctl's scripts rely on pflag's rules, which argparse
does not follow -- options anywhere between arguments (``put /k -w json v``),
boolean flags with a value (``--insecure-transport=false``), unique command
prefixes (``etcdctl mem li``), ``--`` ending the options and its position
kept (``watch k -- echo``) -- and importing argparse costs more than parsing
by hand. A command is a :class:`Command` with :class:`Flag`\\ s; modules add
them through the argparse-like :meth:`Command.add_argument`, so each verb
reads as before. Parsing returns an :class:`Args` holding every flag's value
under its ``dest`` (plus ``args.given``, the flags set on the command line).

Grammar (pflag's):

- ``--name=value``, ``--name value``; a boolean ``--name`` or ``--name=false``;
- ``-x value``, ``-xvalue``, ``-x=value``; boolean shorthands combine (``-il``);
- ``--`` ends the options; everything after it is an argument, and
  ``args.dash`` is how many arguments came before it (cobra's ArgsLenAtDash);
- a lone ``-`` is an argument.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

__all__ = ["ArgCountError", "ArgError", "Args", "Flag", "Command", "ParseError", "parse_bool", "parse",
           "env_name"]


class ArgError(ValueError):
    """A flag value a converter refuses (argparse's ArgumentTypeError)."""


class ArgCountError(Exception):
    """The command's arguments are wrong in number or form: etcdctl's ExitBadArgs (128)."""


class ParseError(Exception):
    """The command line does not parse: ``Error: <message>``, exit 1 (as cobra)."""

    def __init__(self, message: str, command: Optional["Command"] = None) -> None:
        super().__init__(message)
        self.command = command


_TRUE = ("1", "t", "T", "TRUE", "true", "True")
_FALSE = ("0", "f", "F", "FALSE", "false", "False")


def parse_bool(text: str) -> bool:
    """Go's strconv.ParseBool."""
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ArgError(f'strconv.ParseBool: parsing "{text}": invalid syntax')


def env_name(flag: str, prefix: str = "ETCDCTL") -> str:
    """etcd's FlagToEnv: ``dial-timeout`` -> ``ETCDCTL_DIAL_TIMEOUT``."""
    return f"{prefix}_{flag.upper().replace('-', '_')}"


class Args:
    """Parsed values: one attribute per flag ``dest`` and positional name."""

    def __init__(self, **values: Any) -> None:
        self.__dict__.update(values)
        self.given: Dict[str, str] = {}  # dest -> the option as typed (for messages)
        self.dash: int = -1  # how many arguments came before "--" (-1: none)
        self.rest: List[str] = []  # arguments after the named positionals

    def __repr__(self) -> str:
        return f"Args({self.__dict__!r})"

    def __getattr__(self, name: str) -> Any:
        # Only for names no flag defined (as argparse.Namespace): typed Any for the verbs.
        raise AttributeError(f"no option or argument {name!r}")

    def __contains__(self, name: str) -> bool:
        return name in self.__dict__


class Flag:
    """One option: ``kind`` is ``"bool"``, ``"value"`` or ``"list"`` (comma-separated, repeatable)."""

    __slots__ = ("name", "aliases", "short", "kind", "default", "help", "dest", "convert",
                 "choices", "metavar", "hidden")

    def __init__(self, name: str, *, short: str = "", kind: str = "value", default: Any = None,
                 help: str = "", dest: Optional[str] = None, convert: Optional[Callable[[str], Any]] = None,
                 choices: Optional[Sequence[str]] = None, metavar: str = "", hidden: bool = False,
                 aliases: Sequence[str] = ()) -> None:
        self.name = name
        self.aliases = tuple(aliases)
        self.short = short
        self.kind = kind
        self.default = default
        self.help = help
        self.dest = dest or name.replace("-", "_")
        self.convert = convert
        self.choices = tuple(choices) if choices else None
        self.metavar = metavar
        self.hidden = hidden

    def value(self, text: str, typed: str) -> Any:
        """``text`` converted; a refusal is a ParseError worded like pflag's."""
        try:
            if self.kind == "bool":
                return parse_bool(text)
            if self.kind == "list":
                items = [item.strip() for item in text.split(",")] if text else []
                return [self.convert(item) for item in items] if self.convert else items
            value = self.convert(text) if self.convert else text
        except (ArgError, ValueError) as exc:
            raise ParseError(f'invalid argument "{text}" for "{typed}" flag: {exc}') from None
        if self.choices is not None and value not in self.choices:
            raise ParseError(f'invalid argument "{text}" for "{typed}" flag: '
                             f"must be one of {', '.join(self.choices)}")
        return value

    def usage(self) -> Tuple[str, str]:
        """The left column of a help line and the help text."""
        head = f"-{self.short}, --{self.name}" if self.short else f"    --{self.name}"
        if self.kind == "bool":
            default = "true" if self.default else "false"
        elif self.kind == "list":
            default = ",".join(str(d) for d in self.default or ())
        elif self.metavar:
            default = self.metavar
        else:
            default = "" if self.default is None else str(self.default)
        return f"{head}={default}" if default or self.kind != "bool" else head, self.help


class Positional:
    __slots__ = ("name", "nargs", "convert", "help", "metavar")

    def __init__(self, name: str, nargs: Any, convert: Optional[Callable[[str], Any]], help: str,
                 metavar: str) -> None:
        self.name, self.nargs, self.convert, self.help = name, nargs, convert, help
        self.metavar = metavar or name


Runner = Callable[..., int]


class Command:
    """A verb or a group of verbs (``lease`` holds ``grant``, ``revoke``...)."""

    def __init__(self, name: str, *, help: str = "", usage: str = "", description: str = "",
                 epilog: str = "", run: Optional[Runner] = None, aliases: Sequence[str] = (),
                 parent: Optional["Command"] = None, arg_error: str = "",
                 loader: Optional[Callable[["Command"], None]] = None) -> None:
        self.name = name
        self.help = help
        self.usage = usage
        self.description = description
        self.epilog = epilog
        self.run = run
        self.aliases = tuple(aliases)
        self.parent = parent
        self.arg_error = arg_error  # message (exit 128) for a wrong number of arguments
        self.flags: List[Flag] = []
        self.persistent: List[Flag] = []  # inherited by subcommands (cobra's PersistentFlags)
        self.positionals: List[Positional] = []
        self.subcommands: Dict[str, "Command"] = {}
        self.defaults: Dict[str, Any] = {}
        self.hidden = False
        self.extra_args = False  # words beyond the named positionals go to args.rest
        # Subcommands registered on first look (top level: the verb's module
        # is imported only when that verb is used).
        self._loader = loader

    # -- building ---------------------------------------------------------------

    def add_argument(self, *names: str, action: Optional[str] = None, type: Optional[Callable[[str],
                                                                                              Any]] = None,
                     default: Any = None, help: str = "", dest: Optional[str] = None,
                     choices: Optional[Sequence[str]] = None, metavar: str = "", nargs: Any = None,
                     persistent: bool = False, hidden: bool = False) -> None:
        """argparse's ``add_argument`` for the cases the verbs use."""
        if not names[0].startswith("-"):
            self.positionals.append(Positional(names[0], nargs if nargs is not None else 1, type, help,
                                               metavar))
            return
        longs = [n[2:] for n in names if n.startswith("--")]
        shorts = [n[1:] for n in names if not n.startswith("--")]
        kind = "bool" if action == "store_true" else ("list" if action == "append" else "value")
        flag = Flag(longs[0], aliases=longs[1:], short=shorts[0] if shorts else "", kind=kind,
                    default=(False if kind == "bool" and default is None else default), help=help,
                    dest=dest, convert=type, choices=choices, metavar=metavar, hidden=hidden)
        (self.persistent if persistent else self.flags).append(flag)

    def set_defaults(self, **values: Any) -> None:
        self.defaults.update(values)

    def add(self, name: str, run: Optional[Runner] = None, **kwargs: Any) -> "Command":
        sub = Command(name, run=run, parent=self, **kwargs)
        self.subcommands[name] = sub
        return sub

    # -- looking up ---------------------------------------------------------------

    def load(self) -> None:
        if self._loader is not None:
            loader, self._loader = self._loader, None
            loader(self)

    def path(self) -> str:
        parts = []
        cmd: Optional[Command] = self
        while cmd is not None and cmd.parent is not None:
            parts.append(cmd.name)
            cmd = cmd.parent
        return " ".join(reversed(parts))

    def find(self, word: str) -> Optional["Command"]:
        """The subcommand named ``word``, an alias, or a unique prefix (cobra's prefix matching)."""
        self.load()
        sub = self.subcommands.get(word)
        if sub is not None:
            return sub
        for sub in self.subcommands.values():
            if word in sub.aliases:
                return sub
        matches = [sub for name, sub in self.subcommands.items() if name.startswith(word)]
        return matches[0] if len(matches) == 1 else None

    def all_flags(self) -> List[Flag]:
        """Local flags, then those inherited from every parent (nearest first)."""
        out = list(self.flags) + list(self.persistent)
        cmd = self.parent
        while cmd is not None:
            out += cmd.persistent
            cmd = cmd.parent
        return out

    def inherited_flags(self) -> List[Flag]:
        out: List[Flag] = []
        cmd = self.parent
        while cmd is not None:
            out += cmd.persistent
            cmd = cmd.parent
        return out

    # -- help -----------------------------------------------------------------------

    def help_text(self, prog: str) -> str:
        """etcdctl's help layout (NAME, USAGE, COMMANDS, DESCRIPTION, OPTIONS), plain text."""
        self.load()
        name = f"{prog} {self.path()}".strip()
        lines = ["NAME:", f"\t{name} - {self.help}", "", "USAGE:"]
        if self.usage:
            lines.append(f"\t{prog} {self.usage}" if self.parent is not None else f"\t{self.usage}")
        else:
            lines.append(f"\t{name}" + (" <subcommand>" if self.subcommands else " [options]"))
        if self.subcommands:
            lines += ["", "COMMANDS:"]
            width = max(len(n) for n in self.subcommands) + 2
            for sub_name, sub in self.subcommands.items():
                if not sub.hidden:
                    lines.append(f"\t{sub_name.ljust(width)}{sub.help}")
        if self.description and self.description != self.help:
            lines += ["", "DESCRIPTION:"] + [f"\t{line}" if line else "" for line in
                                             self.description.strip("\n").splitlines()]
        local = [f for f in self.flags + self.persistent if not f.hidden]
        if self.positionals:
            lines += ["", "ARGUMENTS:"]
            width = max(len(p.metavar) for p in self.positionals) + 2
            lines += [f"  {p.metavar.ljust(width)}{p.help}" for p in self.positionals]
        if local:
            lines += ["", "OPTIONS:"] + _flag_lines(local)
        inherited = [f for f in self.inherited_flags() if not f.hidden]
        if inherited:
            lines += ["", "GLOBAL OPTIONS:"] + _flag_lines(inherited)
        if self.epilog:
            lines += [""] + self.epilog.strip("\n").splitlines()
        return "\n".join(lines) + "\n"


def _flag_lines(flags: List[Flag]) -> List[str]:
    cells = [f.usage() for f in flags]
    width = min(max(len(head) for head, _ in cells) + 2, 40)
    out = []
    for head, text in cells:
        if len(head) + 2 > width:
            out.append(f"  {head}")
            out.append(f"  {'':{width}}{text}")
        else:
            out.append(f"  {head.ljust(width)}{text}")
    return out


# -- parsing ---------------------------------------------------------------------------


def _lookup(flags: List[Flag]) -> Tuple[Dict[str, Flag], Dict[str, Flag]]:
    longs: Dict[str, Flag] = {}
    shorts: Dict[str, Flag] = {}
    for flag in reversed(flags):  # nearest definition wins
        longs[flag.name] = flag
        for alias in flag.aliases:
            longs[alias] = flag
        if flag.short:
            shorts[flag.short] = flag
    return longs, shorts


def _find_command(root: Command, argv: List[str]) -> Tuple[Command, List[str]]:
    """Walk the command words, skipping options and their values (cobra's Find);
    returns the command and ``argv`` without its words."""
    cmd = root
    i = 0
    while i < len(argv):
        word = argv[i]
        if word == "--":
            break
        if word.startswith("-") and word != "-":
            longs, shorts = _lookup(cmd.all_flags())
            if word.startswith("--"):
                flag = longs.get(word[2:])
                takes = flag is not None and flag.kind != "bool" and "=" not in word
            else:
                flag = shorts.get(word[1:2])
                takes = flag is not None and flag.kind != "bool" and len(word) == 2
            i += 2 if takes else 1
            continue
        cmd.load()
        if not cmd.subcommands:
            break
        sub = cmd.find(word)
        if sub is None:
            where = f'"{cmd.path()}"' if cmd.parent is not None else '"etcdctl"'
            raise ParseError(f'unknown command "{word}" for {where}', cmd)
        cmd = sub
        argv = argv[:i] + argv[i + 1:]
    return cmd, argv


def parse(root: Command, argv: Sequence[str]) -> Tuple[Command, Args, bool]:
    """Parse ``argv``: returns the command, its values and whether help was asked for."""
    cmd, argv = _find_command(root, list(argv))
    cmd.load()
    flags = cmd.all_flags()
    longs, shorts = _lookup(flags)
    values: Dict[str, Any] = {}
    for flag in flags:
        values.setdefault(flag.dest, list(flag.default) if flag.kind == "list" and flag.default
                          else flag.default)
    chain: List[Command] = []
    c: Optional[Command] = cmd
    while c is not None:
        chain.append(c)
        c = c.parent
    for c in reversed(chain):
        values.update(c.defaults)
    args = Args(**values)
    words: List[str] = []
    help_asked = False
    seen_lists: Dict[str, bool] = {}
    i = 0
    dash = -1

    def assign(flag: Flag, text: str, typed: str) -> None:
        value = flag.value(text, typed)
        if flag.kind == "list":
            if seen_lists.get(flag.dest):
                value = getattr(args, flag.dest) + value
            seen_lists[flag.dest] = True
        setattr(args, flag.dest, value)
        args.given[flag.dest] = typed

    while i < len(argv):
        word = argv[i]
        i += 1
        if dash >= 0 or word == "-" or not word.startswith("-"):
            words.append(word)
            continue
        if word == "--":
            dash = len(words)
            continue
        if word.startswith("--"):
            name, eq, text = word[2:].partition("=")
            if name == "help":
                help_asked = True
                continue
            found = longs.get(name)
            if found is None:
                raise ParseError(f"unknown flag: --{name}", cmd)
            flag = found
            if flag.kind == "bool":
                assign(flag, text if eq else "true", f"--{name}")
            elif eq:
                assign(flag, text, f"--{name}")
            elif i < len(argv):
                assign(flag, argv[i], f"--{name}")
                i += 1
            else:
                raise ParseError(f"flag needs an argument: --{name}", cmd)
            continue
        # shorthands: -w json, -wjson, -w=json, -il
        j = 1
        while j < len(word):
            ch = word[j]
            if ch == "h":
                help_asked = True
                j += 1
                continue
            short = shorts.get(ch)
            if short is None:
                raise ParseError(f"unknown shorthand flag: '{ch}' in {word}", cmd)
            flag = short
            if flag.kind == "bool":
                if word[j + 1:j + 2] == "=":
                    assign(flag, word[j + 2:], f"-{ch}")
                    break
                assign(flag, "true", f"-{ch}")
                j += 1
                continue
            text = word[j + 1:]
            if text.startswith("="):
                text = text[1:]
            elif not text:
                if i >= len(argv):
                    raise ParseError(f"flag needs an argument: '{ch}' in -{ch}", cmd)
                text = argv[i]
                i += 1
            assign(flag, text, f"-{ch}")
            break
    args.dash = dash
    if not help_asked:
        _bind_positionals(cmd, args, words)
    else:
        args.rest = words
    return cmd, args, help_asked


def _bind_positionals(cmd: Command, args: Args, words: List[str]) -> None:
    """Give the named positionals their words; a wrong count is the command's
    own usage error (exit 128 in etcdctl) when it has one."""
    positionals = cmd.positionals
    rest = list(words)
    for pos in positionals:
        if pos.nargs == 1:
            if not rest:
                raise ArgCountError(cmd.arg_error or f"{cmd.path()}: missing argument {pos.metavar}")
            setattr(args, pos.name, _convert(pos, rest.pop(0), cmd))
        elif pos.nargs == "?":
            setattr(args, pos.name, _convert(pos, rest.pop(0), cmd) if rest else None)
        else:  # "*" / "+"
            if pos.nargs == "+" and not rest:
                raise ArgCountError(cmd.arg_error or f"{cmd.path()}: missing argument {pos.metavar}")
            setattr(args, pos.name, [_convert(pos, w, cmd) for w in rest])
            rest = []
    if rest and not cmd.extra_args:
        raise ArgCountError(cmd.arg_error or f"{cmd.path()}: unexpected argument(s): {' '.join(rest)}")
    args.rest = rest


def _convert(pos: Positional, word: str, cmd: Command) -> Any:
    if pos.convert is None:
        return word
    try:
        return pos.convert(word)
    except (ArgError, ValueError) as exc:
        raise ArgCountError(f"{cmd.path()}: {pos.metavar}: {exc}") from None
