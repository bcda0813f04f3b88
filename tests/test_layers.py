"""The package's layers, checked on its source: who may import what.

The arrows (README, "Layout"): ``api`` (request builders) and ``_core`` (the
sans-IO machines) import no grpc, threading or asyncio; only the two
executors touch grpc; the sync side never imports the asyncio side; nothing
in the product imports ``etcdfast.testing``; only the codec and ``_schema``
touch protobuf; and no modules import each other in a circle. Imports under
``if TYPE_CHECKING:`` are for type checkers only and do not count.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Dict, Iterator, List, Set, Tuple

import pytest

import etcdfast

PACKAGE = Path(etcdfast.__file__).parent

#: The only modules allowed to import grpc.
EXECUTORS = {"etcdfast._sync.executor", "etcdfast.aio.executor"}
#: Besides them, the python-etcd3 compat layer's error shim: python-etcd3's
#: users catch grpc.RpcError (and read grpc.StatusCode), so it needs grpc's types.
GRPC_SHIMS = {"etcdfast.compat.etcd3._rpc"}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _runtime_nodes(tree: ast.AST) -> Iterator[ast.AST]:
    """Every node except the bodies of ``if TYPE_CHECKING:`` blocks."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child.test):
                stack.extend(child.orelse)
                continue
            stack.append(child)


def imports_of(path: Path, modules: Set[str]) -> Set[Tuple[str, int]]:
    """(imported module, line) for each runtime import in ``path``, relative
    imports resolved, ``from pkg import module`` counted as the module."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: Set[Tuple[str, int]] = set()
    for node in _runtime_nodes(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update((alias.name, node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            submodules = {f"{target}.{alias.name}" for alias in node.names} & modules
            # "from pkg import module" imports the module; "from pkg import name" the package.
            if len(submodules) < len(node.names):
                found.add((target, node.lineno))
            found.update((module, node.lineno) for module in submodules)
    return found


def _graph() -> Dict[str, Set[Tuple[str, int]]]:
    paths = sorted(PACKAGE.rglob("*.py"))
    modules = {module_name(p) for p in paths}
    return {module_name(p): imports_of(p, modules) for p in paths}


GRAPH = _graph()


def _is(imported: str, banned: str) -> bool:
    return imported == banned or imported.startswith(banned + ".")


def _violations(modules: List[str], banned: List[str]) -> List[str]:
    return [
        f"{module}:{line} imports {imported}"
        for module in modules
        for imported, line in sorted(GRAPH[module])
        if any(_is(imported, b) for b in banned)
    ]


def _in(prefix: str) -> List[str]:
    return [m for m in GRAPH if _is(m, prefix)]


def test_the_graph_is_read():
    # A check that finds nothing because it read nothing would pass forever.
    assert {"etcdfast._core.calls", "etcdfast.api.kv", "etcdfast._sync.executor"} <= set(GRAPH)
    assert "grpc" in {i for i, _ in GRAPH["etcdfast._sync.executor"]}
    assert "etcdfast._codec" in {i for i, _ in GRAPH["etcdfast._core.state"]}
    assert _violations(["etcdfast._sync.executor"], ["grpc"]) != []


@pytest.mark.parametrize("layer", ["etcdfast.api", "etcdfast._core"])
def test_sans_io_layers_import_no_io(layer):
    banned = ["grpc", "threading", "asyncio", "etcdfast._sync", "etcdfast.aio", "etcdfast.cli",
              "etcdfast.testing"]
    assert _violations(_in(layer), banned) == []


def test_only_the_executors_touch_grpc():
    others = [m for m in GRAPH if m not in EXECUTORS | GRPC_SHIMS]
    assert _violations(others, ["grpc"]) == []


def test_the_sync_side_never_imports_asyncio_or_aio():
    assert _violations(_in("etcdfast._sync"), ["etcdfast.aio", "asyncio"]) == []


def test_nothing_in_the_product_imports_testing():
    product = [m for m in GRAPH if not _is(m, "etcdfast.testing")]
    assert _violations(product, ["etcdfast.testing"]) == []


def test_only_the_codec_and_schema_touch_protobuf():
    allowed = {"etcdfast._schema"} | set(_in("etcdfast._pure"))
    others = [m for m in GRAPH if m not in allowed]
    assert _violations(others, ["google.protobuf"]) == []


def find_circles(edges: Dict[str, Set[str]]) -> List[List[str]]:
    """Groups of modules that import each other in a circle (Tarjan's algorithm)."""
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    on_stack: Set[str] = set()
    circles: List[List[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(edges.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for module in sorted(edges):
        if module not in index:
            visit(module)
    return circles


def test_the_circle_finder_finds_circles():
    assert find_circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert find_circles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles():
    edges = {
        module: {i for i, _ in imported if i in GRAPH and i != module}
        for module, imported in GRAPH.items()
    }
    assert find_circles(edges) == []
