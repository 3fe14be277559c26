"""nlbench: a plugin-based benchmark suite for learning with noisy labels."""

from __future__ import annotations

__version__ = "0.1.0"

from nlbench.api import build_dataset, build_model, make_noisy_labels, run  # noqa: E402
from nlbench.hookspecs import hookimpl  # noqa: E402

__all__ = ["__version__", "build_dataset", "build_model", "hookimpl", "make_noisy_labels", "run"]
