"""Packaging: the sdist, building without a C compiler, and choosing the twin.

The build tests install the sdist into throwaway virtual environments (with
the system site-packages visible, so nothing is downloaded) and take about a
minute; they are marked ``slow``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tarfile
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
REQUIRE_EXTENSIONS = os.environ.get("ETCDFAST_REQUIRE_EXTENSIONS", "") not in ("", "0")


def _implementation(env_extra: dict, python: str = sys.executable) -> str:
    env = {**os.environ, **env_extra}
    out = subprocess.run(
        [python, "-c", "import etcdfast; print(etcdfast.IMPLEMENTATION)"],
        env=env, capture_output=True, text=True, check=True, cwd="/",
    )
    return out.stdout.strip()


def test_pure_can_be_forced_at_run_time():
    assert _implementation({"ETCDFAST_PURE": "1"}) == "pure"
    # "0" means "not forced": the same choice as with the variable unset.
    assert _implementation({"ETCDFAST_PURE": "0"}) == _implementation({"ETCDFAST_PURE": ""})


@pytest.mark.skipif(not REQUIRE_EXTENSIONS, reason="only meaningful where extensions must exist")
def test_compiled_twin_is_the_default():
    assert _implementation({"ETCDFAST_PURE": ""}) == "fast"


@pytest.fixture(scope="module")
def sdist(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("sdist")
    subprocess.run(
        [sys.executable, "setup.py", "-q", "sdist", "-d", str(out)],
        cwd=ROOT, check=True, capture_output=True,
    )
    (archive,) = out.glob("etcdfast-*.tar.gz")
    return archive


def test_sdist_ships_sources_not_build_outputs(sdist):
    names = tarfile.open(sdist).getnames()
    assert any(n.endswith("protos/etcd/etcdserverpb/rpc.proto") for n in names)
    assert any(n.endswith("_fast/wire.pyx") for n in names)
    assert any(n.endswith("_fast/buffer.pxd") for n in names)
    assert not any(n.endswith((".c", ".so", ".binpb")) for n in names), names


def _site_packages(venv_dir: Path) -> Path:
    return next((venv_dir / "lib").glob("python*/site-packages"))


def _venv(path: Path) -> str:
    """A throwaway venv that can import what this interpreter imports.

    The build requirements (Cython, grpcio-tools) come from the running
    interpreter, which may itself be a venv: ``--system-site-packages`` would
    only show the base interpreter's packages, where they need not be. A ``.pth``
    listing this interpreter's site directories shows them, after the venv's
    own, and without their ``.pth`` hooks (an outer editable etcdfast finder
    would otherwise shadow the copy under test). No pip of its own: ensurepip
    would also bring Python's bundled setuptools, older than the build needs.
    """
    venv.EnvBuilder(with_pip=False).create(path)
    site = _site_packages(path)
    outer = [p for p in sys.path if p.endswith(("site-packages", "dist-packages"))]
    (site / "_outer_site_packages.pth").write_text("\n".join(outer) + "\n")
    return str(path / "bin" / "python")


def _install(python: str, sdist: Path, **env_extra: str) -> subprocess.CompletedProcess:
    env = {**os.environ, **env_extra}
    env.pop("ETCDFAST_PURE", None)
    return subprocess.run(
        [python, "-m", "pip", "install", "-v", "--no-build-isolation", "--no-deps", str(sdist)],
        env=env, capture_output=True, text=True,
    )


@pytest.mark.slow
def test_install_without_compiler_falls_back_loudly(sdist, tmp_path):
    python = _venv(tmp_path / "venv")
    result = _install(python, sdist, CC="false", ETCDFAST_REQUIRE_EXTENSIONS="0")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "could not compile" in result.stdout + result.stderr
    assert _implementation({"ETCDFAST_PURE": ""}, python) == "pure"
    # The fallback package works end to end on its codec.
    check = subprocess.run(
        [python, "-c",
         "import etcdfast._codec as c; r = c.wire.decode_put(b'\\x0a\\x02\\x18\\x07'); "
         "assert r.header.revision == 7"],
        capture_output=True, text=True, cwd="/",
    )
    assert check.returncode == 0, check.stderr


@pytest.mark.slow
def test_required_extensions_make_a_failed_compile_fatal(sdist, tmp_path):
    python = _venv(tmp_path / "venv")
    result = _install(python, sdist, CC="false", ETCDFAST_REQUIRE_EXTENSIONS="1")
    assert result.returncode != 0
    # It failed for the reason under test: the compiler, not a missing build
    # requirement or a broken sdist.
    output = result.stdout + result.stderr
    # setuptools words it "command '/usr/bin/false' failed" or "Command '['false', ...
    assert re.search(r"[Cc]ommand '(\[')?(\S*/)?false", output), output[-3000:]
    check = subprocess.run([python, "-c", "import etcdfast"], capture_output=True, cwd="/")
    # Nothing half-installed: the import may find the outer install, but the
    # venv itself must not contain etcdfast.
    assert not (_site_packages(tmp_path / "venv") / "etcdfast").exists(), check
