"""Shared fixtures. Third-party plugins installed in the environment are not loaded in tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("NLBENCH_DISABLE_PLUGIN_AUTOLOAD", "1")

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data with real CIFAR-10 (skip when absent)."""
    if not (SHARED_DATA / "cifar10-jpeg.tar.gz").exists():
        pytest.skip(f"real data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def cifar_root(shared_data, tmp_path_factory) -> Path:
    """Real CIFAR-10 in the official python layout, written once per session by
    ../shared/data/make_cifar10.py (skipped when ../shared/data is absent)."""
    import subprocess
    import sys

    root = tmp_path_factory.mktemp("cifar10-real")
    subprocess.run(
        [sys.executable, str(shared_data / "make_cifar10.py"), str(root)],
        check=True,
        capture_output=True,
    )
    return root


# tests/fixtures/ holds test data, such as a third-party plugin package with tests of its own
# (tests/test_old_api_plugin.py runs them where it installed the package)
collect_ignore = ["fixtures"]
