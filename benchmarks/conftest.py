"""Collect ``bench_*.py`` here (pytest's default pattern is ``test_*.py``), built-ins only."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("NLBENCH_DISABLE_PLUGIN_AUTOLOAD", "1")


def pytest_collect_file(file_path, parent):
    """``pytest benchmarks --benchmark-only`` finds every ``bench_*.py`` module.

    Files named on the command line are collected by pytest itself; skip them here so they
    are not collected twice.
    """
    is_bench = file_path.suffix == ".py" and file_path.name.startswith("bench_")
    if is_bench and not parent.session.isinitpath(file_path):
        return pytest.Module.from_parent(parent, path=file_path)
    return None
