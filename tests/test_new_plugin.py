"""`nlbench new-plugin` writes a package that installs, registers, runs and tests itself."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import pytest

from nlbench import plugins
from nlbench.commands.new_plugin import write_plugin
from nlbench.testing import check_method_contract


def test_generated_plugin_registers_and_honours_contract(tmp_path):
    write_plugin(tmp_path / "pkg", "my_method")
    spec = importlib.util.spec_from_file_location(
        "nlbench_my_method", tmp_path / "pkg" / "nlbench_my_method.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    plugins.reset()
    try:
        host = plugins.load_plugins(extra=[("my_method", module)])
        assert host.registry("methods").entry("my_method").plugin == "my_method"
        record = check_method_contract("my_method", tmp_path / "runs")
        assert record["config"]["hparams"]["drop_rate"] == 0.2
    finally:
        plugins.reset()


def test_refuses_non_empty_directory(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "file").write_text("keep me")
    with pytest.raises(Exception, match="not empty"):
        write_plugin(tmp_path / "x", "ok_name")
    assert (tmp_path / "x" / "file").read_text() == "keep me"


@pytest.mark.slow
def test_generated_plugin_installs_like_a_third_party(tmp_path):
    """new-plugin → pip install → list shows it with its distribution → run → its own test."""
    write_plugin(tmp_path / "pkg", "my_method")
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                    "--no-build-isolation", "--target", str(target), str(tmp_path / "pkg")],
                   check=True, capture_output=True)  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "NLBENCH_DISABLE_PLUGIN_AUTOLOAD"}
    env["PYTHONPATH"] = str(target)
    nlbench = [sys.executable, "-m", "nlbench"]
    listing = subprocess.run([*nlbench, "list", "methods", "--json"], env=env, check=True,
                             capture_output=True, text=True).stdout  # fmt: skip
    row = next(m for m in json.loads(listing)["methods"] if m["name"] == "my_method")
    assert row["distribution"] == "nlbench-my-method"
    run = subprocess.run([*nlbench, "run", "--method", "my_method", "--noise", "0.4", "--epochs",
                          "2", "--out", str(tmp_path / "runs"), "-q"], env=env,
                         capture_output=True, text=True)  # fmt: skip
    assert run.returncode == 0, run.stderr
    test = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           str(tmp_path / "pkg" / "tests")], env=env, cwd=tmp_path / "pkg",
                          capture_output=True, text=True)  # fmt: skip
    assert test.returncode == 0, test.stdout + test.stderr
