"""Build script: the protobuf schema and the optional Cython twin.

Metadata lives in pyproject.toml; this file only does the two build steps that
need code:

1. ``protos/*.proto`` -> ``src/etcdfast/_schema.binpb``, a serialized
   FileDescriptorSet made by grpcio-tools' protoc. At run time the installed
   protobuf runtime builds its own message classes from it, so no generated
   ``*_pb2.py`` exists that could disagree with the runtime version.
2. ``src/etcdfast/_fast/*.pyx`` -> C extensions. A failed compile is not fatal
   (the pure twin runs instead, with a loud warning) unless
   ``ETCDFAST_REQUIRE_EXTENSIONS=1`` is set.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = Path(__file__).resolve().parent
PROTOS = HERE / "protos"
SCHEMA = HERE / "src" / "etcdfast" / "_schema.binpb"
FAST = HERE / "src" / "etcdfast" / "_fast"
REQUIRE_EXTENSIONS = os.environ.get("ETCDFAST_REQUIRE_EXTENSIONS", "") not in ("", "0")


def compile_schema() -> None:
    """Compile protos/ into one descriptor set, skipped when it is up to date."""
    sources = sorted(PROTOS.rglob("*.proto"))
    if not sources:
        if SCHEMA.exists():  # building from an sdist that already carries it
            return
        raise SystemExit("protos/ is missing: cannot build the etcd schema")
    newest = max(p.stat().st_mtime for p in sources)
    if SCHEMA.exists() and SCHEMA.stat().st_mtime >= newest:
        return
    try:
        from grpc_tools import protoc
    except ImportError as exc:  # pragma: no cover - build requirement
        raise SystemExit("grpcio-tools is needed to build etcdfast's schema") from exc
    args = [
        "protoc",
        f"-I{PROTOS}",
        "--include_imports",
        f"--descriptor_set_out={SCHEMA}",
        *(str(p.relative_to(PROTOS)) for p in sources),
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed on protos/")


def banner(text: str) -> None:
    line = "*" * 78
    print(f"\n{line}\n* {text}\n{line}\n", file=sys.stderr)


class OptionalBuildExt(build_ext):
    """build_ext that falls back to the pure twin when compiling fails."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # no compiler at all (DistutilsPlatformError, ...)
            self._failed(exc)

    def build_extension(self, ext: Extension) -> None:
        try:
            super().build_extension(ext)
        except Exception as exc:  # CompileError, LinkError, OSError, ...
            self._failed(exc, ext.name)

    def _failed(self, exc: BaseException, name: str = "extensions") -> None:
        if REQUIRE_EXTENSIONS:
            raise
        banner(
            f"WARNING: could not compile {name} ({type(exc).__name__}: {exc}).\n"
            "* etcdfast will run on its pure-Python twin: same behaviour, slower.\n"
            "* Set ETCDFAST_REQUIRE_EXTENSIONS=1 to make this an error."
        )


def extensions() -> list[Extension]:
    if os.environ.get("ETCDFAST_PURE_BUILD", "") not in ("", "0"):
        banner("ETCDFAST_PURE_BUILD is set: building without the Cython twin")
        return []
    try:
        from Cython.Build import cythonize
    except ImportError:
        if REQUIRE_EXTENSIONS:
            raise
        banner("WARNING: Cython is not installed; building the pure-Python twin only")
        return []
    modules = [
        Extension(
            f"etcdfast._fast.{pyx.stem}",
            [str(pyx.relative_to(HERE))],
            include_dirs=[str(FAST.relative_to(HERE))],
        )
        for pyx in sorted(FAST.glob("*.pyx"))
    ]
    return list(
        cythonize(
            modules,
            language_level=3,
            compiler_directives={
                "boundscheck": False,
                "wraparound": False,
                "initializedcheck": False,
                "embedsignature": True,
                "binding": True,
            },
        )
    )


compile_schema()
setup(ext_modules=extensions(), cmdclass={"build_ext": OptionalBuildExt})
