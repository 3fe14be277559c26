"""Sweeps: grids of runs (``plan``), their typed axes (``grid``) and progress (``progress``).

``nlbench.sweep`` was one module before 0.2; its names still resolve here, with a
``DeprecationWarning`` (CHANGELOG.md, "Migration notes")."""

from __future__ import annotations

import importlib
import warnings
from typing import Any


def __getattr__(name: str) -> Any:
    """``from nlbench.sweep import Grid`` (0.1): forwarded to :mod:`nlbench.sweep.plan`."""
    module = importlib.import_module("nlbench.sweep.plan")
    if name.startswith("__") or not hasattr(module, name):
        raise AttributeError(f"module 'nlbench.sweep' has no attribute {name!r}")
    warnings.warn(
        f"nlbench.sweep.{name} moved to nlbench.sweep.plan.{name} (plugins: nlbench.api)",
        DeprecationWarning,
        stacklevel=2,
    )
    return getattr(module, name)
