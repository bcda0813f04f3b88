"""Our protos/ must describe the same wire API as etcd's own .proto files.

etcd's 3.4 schema files (Debian's golang-etcd-server-dev) are copied to a
temporary directory, stripped of gogoproto and google.api annotations, and
compiled with grpcio-tools' protoc next to ours. Every message, field, oneof,
enum, service and method upstream must be in ours unchanged; anything ours has
beyond that must be exactly the etcd 3.5 additions listed below.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Dict, FrozenSet, Optional, Set, Tuple

import pytest
from google.protobuf import descriptor_pb2

ROOT = Path(__file__).resolve().parent.parent
PROTOS = ROOT / "protos"
UPSTREAM = Path("/usr/share/gocode/src/go.etcd.io/etcd")

# upstream file (relative to UPSTREAM) -> the path it gets in our layout
UPSTREAM_FILES = {
    "mvcc/mvccpb/kv.proto": "etcd/mvccpb/kv.proto",
    "auth/authpb/auth.proto": "etcd/authpb/auth.proto",
    "etcdserver/etcdserverpb/rpc.proto": "etcd/etcdserverpb/rpc.proto",
    "etcdserver/api/v3election/v3electionpb/v3election.proto": "etcd/v3electionpb/v3election.proto",
    "etcdserver/api/v3lock/v3lockpb/v3lock.proto": "etcd/v3lockpb/v3lock.proto",
}

F = descriptor_pb2.FieldDescriptorProto
OPT, REP = F.LABEL_OPTIONAL, F.LABEL_REPEATED
HEADER = ("header", 1, F.TYPE_MESSAGE, OPT, ".etcdserverpb.ResponseHeader", None)

# (name, number, type, label, type_name, oneof name)
FieldSig = Tuple[str, int, int, int, str, Optional[str]]
# (name, input type, output type, client streaming, server streaming)
MethodSig = Tuple[str, str, str, bool, bool]

# --- the etcd 3.5 additions our schema carries on top of upstream 3.4 --------
EXTRA_MESSAGES: Dict[str, Set[FieldSig]] = {
    "etcdserverpb.DowngradeRequest": {
        ("action", 1, F.TYPE_ENUM, OPT, ".etcdserverpb.DowngradeRequest.DowngradeAction", None),
        ("version", 2, F.TYPE_STRING, OPT, "", None),
    },
    "etcdserverpb.DowngradeResponse": {HEADER, ("version", 2, F.TYPE_STRING, OPT, "", None)},
    "etcdserverpb.AuthStatusRequest": set(),
    "etcdserverpb.AuthStatusResponse": {
        HEADER,
        ("enabled", 2, F.TYPE_BOOL, OPT, "", None),
        ("authRevision", 3, F.TYPE_UINT64, OPT, "", None),
    },
}
EXTRA_FIELDS: Dict[str, Set[FieldSig]] = {
    "etcdserverpb.MemberListRequest": {("linearizable", 1, F.TYPE_BOOL, OPT, "", None)},
    "etcdserverpb.AuthUserAddRequest": {("hashedPassword", 4, F.TYPE_STRING, OPT, "", None)},
    "etcdserverpb.AuthUserChangePasswordRequest": {
        ("hashedPassword", 3, F.TYPE_STRING, OPT, "", None)
    },
}
EXTRA_ENUMS: Dict[str, Set[Tuple[str, int]]] = {
    "etcdserverpb.DowngradeRequest.DowngradeAction": {("VALIDATE", 0), ("ENABLE", 1), ("CANCEL", 2)},
}
EXTRA_METHODS: Dict[str, Set[MethodSig]] = {
    "etcdserverpb.Maintenance": {
        ("Downgrade", ".etcdserverpb.DowngradeRequest", ".etcdserverpb.DowngradeResponse", False, False)
    },
    "etcdserverpb.Auth": {
        ("AuthStatus", ".etcdserverpb.AuthStatusRequest", ".etcdserverpb.AuthStatusResponse", False, False)
    },
}


# --- stripping upstream annotations -----------------------------------------
def _strip_option_blocks(text: str, head: str) -> str:
    """Remove every ``option (google.api.http) = { ... };``, nested braces included."""
    out = []
    pos = 0
    pattern = re.compile(r"option\s*\(\s*" + re.escape(head) + r"\s*\)\s*=\s*\{")
    while True:
        m = pattern.search(text, pos)
        if m is None:
            out.append(text[pos:])
            return "".join(out)
        out.append(text[pos : m.start()])
        i, depth, quote = m.end(), 1, None
        while depth:
            if i >= len(text):
                raise ValueError(f"unbalanced braces after {head} option")
            c = text[i]
            if quote:
                if c == "\\":
                    i += 1
                elif c == quote:
                    quote = None
            elif c in "\"'":
                quote = c
            elif c == "{":
                depth += 1
            elif c == "}":
                depth -= 1
            i += 1
        end = re.match(r"\s*;", text[i:])
        pos = i + (end.end() if end else 0)


def clean_upstream(text: str) -> str:
    text = re.sub(r'^\s*import\s+"gogoproto/[^"]*"\s*;[^\n]*\n', "", text, flags=re.M)
    text = re.sub(r'^\s*import\s+"google/api/annotations\.proto"\s*;[^\n]*\n', "", text, flags=re.M)
    text = re.sub(r"^\s*option\s*\(\s*gogoproto\.[^)]*\)\s*=[^;]*;[^\n]*\n", "", text, flags=re.M)
    text = re.sub(r"\s*\[[^\]]*\(\s*gogoproto\.[^\]]*\]", "", text)
    text = _strip_option_blocks(text, "google.api.http")
    # upstream imports use its repo layout (etcd/mvcc/mvccpb/kv.proto); use ours
    by_base = {Path(dst).name: dst for dst in UPSTREAM_FILES.values()}

    def fix_import(m: "re.Match[str]") -> str:
        return f'import "{by_base.get(Path(m.group(1)).name, m.group(1))}";'

    text = re.sub(r'import\s+"([^"]+)"\s*;', fix_import, text)
    leftover = [w for w in ("gogoproto", "google.api", "google/api") if w in _code(text)]
    assert not leftover, f"annotations left after stripping: {leftover}"
    return text


def _code(text: str) -> str:
    return re.sub(r"//[^\n]*", "", text)


# --- compiling and indexing descriptors --------------------------------------
def compile_set(include: Path, out: Path) -> descriptor_pb2.FileDescriptorSet:
    from grpc_tools import protoc

    files = sorted(str(p.relative_to(include)) for p in include.rglob("*.proto"))
    args = ["protoc", f"-I{include}", "--include_imports", f"--descriptor_set_out={out}", *files]
    assert protoc.main(args) == 0, f"protoc failed on {include} (see captured stderr)"
    fds = descriptor_pb2.FileDescriptorSet()
    fds.ParseFromString(out.read_bytes())
    return fds


class Schema:
    def __init__(self, fds: descriptor_pb2.FileDescriptorSet) -> None:
        self.files = {f.name: f for f in fds.file}
        self.messages: Dict[str, Set[FieldSig]] = {}
        self.oneofs: Dict[str, FrozenSet[str]] = {}
        self.enums: Dict[str, Set[Tuple[str, int]]] = {}
        self.methods: Dict[str, Set[MethodSig]] = {}
        for f in fds.file:
            for e in f.enum_type:
                self._enum(f"{f.package}.{e.name}", e)
            for m in f.message_type:
                self._message(f"{f.package}.{m.name}", m)
            for s in f.service:
                self.methods[f"{f.package}.{s.name}"] = {
                    (
                        md.name,
                        md.input_type,
                        md.output_type,
                        md.client_streaming,
                        md.server_streaming,
                    )
                    for md in s.method
                }

    def _enum(self, name: str, e: descriptor_pb2.EnumDescriptorProto) -> None:
        self.enums[name] = {(v.name, v.number) for v in e.value}

    def _message(self, name: str, m: descriptor_pb2.DescriptorProto) -> None:
        oneofs = [o.name for o in m.oneof_decl]
        self.messages[name] = {
            (
                fd.name,
                fd.number,
                fd.type,
                fd.label,
                fd.type_name,
                oneofs[fd.oneof_index] if fd.HasField("oneof_index") else None,
            )
            for fd in m.field
        }
        self.oneofs[name] = frozenset(oneofs)
        for e in m.enum_type:
            self._enum(f"{name}.{e.name}", e)
        for nested in m.nested_type:
            self._message(f"{name}.{nested.name}", nested)


@pytest.fixture(scope="module")
def schemas(tmp_path_factory: pytest.TempPathFactory) -> Tuple[Schema, Schema]:
    if not UPSTREAM.is_dir():
        pytest.skip(f"etcd's upstream .proto files are not installed ({UPSTREAM}); "
                    "install Debian's golang-etcd-server-dev")
    try:
        import grpc_tools.protoc  # noqa: F401
    except ImportError as exc:
        pytest.skip(f"grpcio-tools is not importable: {exc}")

    tmp = tmp_path_factory.mktemp("protos")
    up_dir = tmp / "upstream"
    for src, dst in UPSTREAM_FILES.items():
        target = up_dir / dst
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(clean_upstream((UPSTREAM / src).read_text()))
    upstream = Schema(compile_set(up_dir, tmp / "upstream.binpb"))
    ours = Schema(compile_set(PROTOS, tmp / "ours.binpb"))
    return upstream, ours


# --- tests -------------------------------------------------------------------
def test_upstream_was_parsed(schemas: Tuple[Schema, Schema]) -> None:
    upstream, _ = schemas
    assert set(upstream.files) == set(UPSTREAM_FILES.values())
    for name in ("etcdserverpb.RangeRequest", "mvccpb.KeyValue", "authpb.Role",
                 "v3electionpb.LeaderKey", "v3lockpb.LockRequest"):
        assert name in upstream.messages
    assert "etcdserverpb.KV" in upstream.methods


def test_messages_match_upstream(schemas: Tuple[Schema, Schema]) -> None:
    upstream, ours = schemas
    problems = []
    for name, fields in sorted(upstream.messages.items()):
        if name not in ours.messages:
            problems.append(f"{name}: missing")
            continue
        missing = fields - ours.messages[name]
        extra = ours.messages[name] - fields
        if missing:
            problems.append(f"{name}: differs from upstream in {sorted(missing)}")
        if extra != EXTRA_FIELDS.get(name, set()):
            problems.append(f"{name}: unexpected extra fields {sorted(extra)}")
        if ours.oneofs[name] != upstream.oneofs[name]:
            problems.append(f"{name}: oneofs {sorted(ours.oneofs[name])} != "
                            f"{sorted(upstream.oneofs[name])}")
    assert not problems, "\n".join(problems)


def test_enums_match_upstream(schemas: Tuple[Schema, Schema]) -> None:
    upstream, ours = schemas
    for name, values in upstream.enums.items():
        assert ours.enums.get(name) == values, name


def test_services_match_upstream(schemas: Tuple[Schema, Schema]) -> None:
    upstream, ours = schemas
    for service, methods in upstream.methods.items():
        assert service in ours.methods, f"service {service} missing"
        missing = methods - ours.methods[service]
        assert not missing, f"{service}: differs from upstream in {sorted(missing)}"


def test_extras_are_exactly_the_35_additions(schemas: Tuple[Schema, Schema]) -> None:
    upstream, ours = schemas
    extra_messages = {n: f for n, f in ours.messages.items() if n not in upstream.messages}
    assert extra_messages == EXTRA_MESSAGES
    assert all(not ours.oneofs[n] for n in extra_messages)
    extra_enums = {n: v for n, v in ours.enums.items() if n not in upstream.enums}
    assert extra_enums == EXTRA_ENUMS
    extra_methods = {
        s: m - upstream.methods.get(s, set())
        for s, m in ours.methods.items()
        if m - upstream.methods.get(s, set())
    }
    assert extra_methods == EXTRA_METHODS
    assert set(ours.methods) == set(upstream.methods)


def test_our_files_are_self_contained(schemas: Tuple[Schema, Schema]) -> None:
    _, ours = schemas
    assert set(ours.files) == set(UPSTREAM_FILES.values())
    for name, f in ours.files.items():
        assert f.syntax == "proto3", name
        assert set(f.dependency) <= set(ours.files), f"{name} imports {list(f.dependency)}"
        assert f.package == name.split("/")[1], name
