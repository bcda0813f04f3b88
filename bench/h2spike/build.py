"""Build the spike's Cython module outside the tree and import it.

``cythonize -i`` runs on a copy of ``_h2.pyx`` in a directory named after the
source's hash (under ``$TMPDIR``), so nothing is written into the repository
and an unchanged source is not rebuilt. ``BENCH_H2_BUILD_DIR`` overrides the
directory (the bench passes it to its worker processes).
"""

from __future__ import annotations

import hashlib
import importlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from types import ModuleType

HERE = Path(__file__).resolve().parent
SOURCE = HERE / "_h2.pyx"


def build_dir() -> Path:
    given = os.environ.get("BENCH_H2_BUILD_DIR")
    if given:
        return Path(given)
    digest = hashlib.sha256(SOURCE.read_bytes() + sys.version.encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"etcdfast-h2spike-{digest}"


def build() -> Path:
    """Compile ``_h2.pyx`` (once per source version); the directory holding the module."""
    target = build_dir()
    if any(target.glob("_h2*.so")):
        return target
    work = Path(tempfile.mkdtemp(prefix="h2spike-build-"))
    try:
        shutil.copy(SOURCE, work / SOURCE.name)
        subprocess.run([sys.executable, "-m", "Cython.Build.Cythonize", "-i", "-3", "-q", SOURCE.name],
                       cwd=work, check=True, stdout=subprocess.DEVNULL)
        target.mkdir(parents=True, exist_ok=True)
        for built in work.glob("_h2*.so"):
            # Rename into place: a concurrent build of the same source is harmless.
            shutil.copy(built, target / (built.name + ".tmp"))
            os.replace(target / (built.name + ".tmp"), target / built.name)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target


def load() -> ModuleType:
    """The compiled ``_h2`` module (built first if needed)."""
    try:
        import hpack  # noqa: F401 - the module needs it; say so before building
    except ImportError:
        raise SystemExit("bench/h2spike needs the hpack package: pip install 'hpack>=4,<5'") from None
    where = str(build())
    if where not in sys.path:
        sys.path.insert(0, where)
    return importlib.import_module("_h2")
