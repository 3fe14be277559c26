"""Packaging: a wheel carries the built-in plugins and exposes them through entry points."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_wheel_exposes_builtin_plugins(tmp_path):
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            str(ROOT),
            "-w",
            str(tmp_path / "wheel"),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = (tmp_path / "wheel").glob("nlbench-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        entry_points = zf.read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert "nlbench_plugins/method_erm.py" in names
    assert "method_erm = nlbench_plugins.method_erm" in entry_points
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--target",
            str(target),
            str(wheel),
        ],
        check=True,
        capture_output=True,
    )
    env = {k: v for k, v in os.environ.items() if k != "NLBENCH_DISABLE_PLUGIN_AUTOLOAD"}
    env["PYTHONPATH"] = str(target)
    code = (
        "import json, nlbench, nlbench.plugins as p; h = p.load_plugins(); "
        "print(json.dumps([nlbench.__file__, h.registry('methods').entry('erm').distribution]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    path, dist = json.loads(out)
    assert path.startswith(str(target)) and dist == "nlbench"
