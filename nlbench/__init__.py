"""nlbench: a plugin-based benchmark suite for learning with noisy labels.

The notebook API (``run``, ``build_dataset``, ...) is imported on first use so that
``from nlbench import hookimpl`` and ``nlbench --version`` never import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

from nlbench import _moved
from nlbench.core.hookspecs import hookimpl
from nlbench.core.version import __version__

_moved.install()  # 0.1's flat module paths resolve, with a DeprecationWarning

_LAZY = {
    "build_dataset": "nlbench.api",
    "build_model": "nlbench.api",
    "make_noisy_labels": "nlbench.api",
    "run": "nlbench.api",
}

__all__ = ["__version__", "build_dataset", "build_model", "hookimpl", "make_noisy_labels", "run"]


def __getattr__(name: str) -> Any:
    """Import the torch-backed API lazily (PEP 562)."""
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'nlbench' has no attribute {name!r}")
