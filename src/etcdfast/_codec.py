"""Picks the codec twin once, at import time.

``ETCDFAST_PURE=1`` forces the pure-Python twin; otherwise the Cython twin is
used when it was compiled. All twin modules are imported together or not at
all, so the package never mixes halves of the two. The rest of the package
imports the codec only from here.
"""

from __future__ import annotations

import importlib
import os
import sys
from types import ModuleType
from typing import TYPE_CHECKING, Tuple

__all__ = ["IMPLEMENTATION", "keys", "wire", "revision", "watch", "batch", "records", "load"]

#: The twin modules, in the order load() returns them.
MODULES = ("keys", "wire", "revision", "watch", "batch", "records")


def _forced_pure() -> bool:
    return os.environ.get("ETCDFAST_PURE", "") not in ("", "0") or (
        sys.implementation.name != "cpython"
    )


def load(
    implementation: str,
) -> Tuple[ModuleType, ModuleType, ModuleType, ModuleType, ModuleType, ModuleType]:
    """Import one twin's ``(keys, wire, revision, watch, batch, records)`` modules: ``"fast"`` or ``"pure"``.

    Used by the chooser below and by tests that run both twins side by side.
    """
    if implementation not in ("fast", "pure"):
        raise ValueError(f"unknown implementation {implementation!r}")
    package = f"{__package__}._{implementation}"
    return tuple(  # type: ignore[return-value]
        importlib.import_module(f"{package}.{name}") for name in MODULES
    )


if TYPE_CHECKING or _forced_pure():
    from ._pure import batch, keys, records, revision, watch, wire

    IMPLEMENTATION = "pure"
else:
    try:
        keys, wire, revision, watch, batch, records = load("fast")
        IMPLEMENTATION = "fast"
    except ImportError:
        # Not compiled (no C compiler at install time): setup.py already
        # warned loudly, and etcdfast.IMPLEMENTATION tells the user.
        keys, wire, revision, watch, batch, records = load("pure")
        IMPLEMENTATION = "pure"
