"""`nlbench new-plugin` writes a package that installs, registers, runs and tests itself."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import pytest
import tomllib

from nlbench.commands.new_plugin import write_plugin
from nlbench.core.specs import MethodSpec
from nlbench.host import plugins
from nlbench.testing import check_bad_hparams, check_method_contract


def _load(tmp_path, name: str = "my_method"):
    write_plugin(tmp_path / "pkg", name)
    spec = importlib.util.spec_from_file_location(
        f"nlbench_{name}", tmp_path / "pkg" / f"nlbench_{name}.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def scaffold(tmp_path):
    plugins.reset()
    host = plugins.load_plugins(extra=[("my_method", _load(tmp_path))])
    yield host
    plugins.reset()


def test_generated_plugin_registers_every_example(scaffold):
    names = {
        "methods": ["my_method", "my_method_weighted"],
        "reweighters": ["my_method_pweight"],
        "losses": ["my_method_mae"],
    }
    for kind, expected in names.items():
        for name in expected:
            assert scaffold.registry(kind).entry(name).plugin == "my_method"


def test_generated_plugin_honours_contract(scaffold, tmp_path):
    record = check_method_contract("my_method", tmp_path / "runs")
    assert record["config"]["hparams"]["drop_rate"] == 0.2
    assert all(0 <= e["batch_selected_precision"] <= 1 for e in record["epochs"])


def test_generated_method_flags_follow_its_hparams(scaffold, nlbench_run):
    """drop_rate=null reads the noise rate: the run is flagged noise_tuned (flags_for)."""
    tuned = nlbench_run("my_method", "0.4", epochs=1, overrides={"drop_rate": None})
    assert "noise_tuned" in tuned["flags"]
    assert tuned["epochs"][0]["batch_selected_frac"] == pytest.approx(0.6, abs=0.02)


def test_generated_composed_method_uses_its_reweighter(scaffold, tmp_path):
    """weight_power is accepted because the reweighter declares it (typed)."""
    overrides = {"weight_power": 2.0}
    record = check_method_contract("my_method_weighted", tmp_path / "runs", overrides=overrides)
    assert record["config"]["hparams"]["weight_power"] == 2.0
    check_bad_hparams("my_method_weighted", {"weight_power": [-1, "x"]})
    check_bad_hparams("my_method", {"drop_rate": [1.0, "many"]})


def test_scaffold_claims_no_paper(tmp_path):
    """--name mentornet must not produce a method citing MentorNet."""
    module = _load(tmp_path, "mentornet")
    source = (tmp_path / "pkg" / "nlbench_mentornet.py").read_text()
    assert "Jiang et al" not in source and "MentorNet" not in source
    specs: list[MethodSpec] = []
    module.register_methods(specs.append)
    assert all(spec.reference == "" for spec in specs)


def test_scaffold_has_test_extra_and_a_sweep_file(scaffold, tmp_path):
    pkg = tmp_path / "pkg"
    meta = tomllib.loads((pkg / "pyproject.toml").read_text())
    assert "pytest" in " ".join(meta["project"]["optional-dependencies"]["test"])
    assert "pip install -e '.[test]'" in (pkg / "README.md").read_text()
    from nlbench.sweep.plan import grid_from_mapping, load_toml

    data = load_toml(pkg / "sweep.toml")
    data["out"] = str(tmp_path / "runs")
    configs = grid_from_mapping(data).configs(scaffold)
    grids = {
        (c.method, c.overrides.get("drop_rate"), c.overrides.get("weight_power")) for c in configs
    }
    assert ("my_method", 0.1, None) in grids and ("my_method_weighted", None, 2.0) in grids
    assert all(c.overrides.get("loss") == "ce" for c in configs)


def test_scaffold_says_how_to_depend_on_nlbench_before_and_after_pypi(tmp_path):
    pkg = tmp_path / "pkg"
    write_plugin(pkg, "my_method")
    meta = tomllib.loads((pkg / "pyproject.toml").read_text())
    (requirement,) = [d for d in meta["project"]["dependencies"] if d.startswith("nlbench")]
    assert requirement == "nlbench>=0.1"  # a range PyPI accepts, never a direct URL
    readme = (pkg / "README.md").read_text()
    assert "Before nlbench is on PyPI" in readme and "git+https://" in readme
    assert "Once nlbench is on PyPI" in readme and "download.pytorch.org/whl/cpu" in readme


def test_refuses_non_empty_directory(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "file").write_text("keep me")
    with pytest.raises(Exception, match="not empty"):
        write_plugin(tmp_path / "x", "ok_name")
    assert (tmp_path / "x" / "file").read_text() == "keep me"


@pytest.mark.slow
def test_generated_plugin_installs_like_a_third_party(tmp_path):
    """new-plugin → pip install → list shows it with its distribution → run → its own tests."""
    write_plugin(tmp_path / "pkg", "my_method")
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(target),
            str(tmp_path / "pkg"),
        ],
        check=True,
        capture_output=True,
    )
    env = {k: v for k, v in os.environ.items() if k != "NLBENCH_DISABLE_PLUGIN_AUTOLOAD"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(target), env.get("PYTHONPATH")) if p)
    env["NLBENCH_CACHE"] = str(tmp_path / "cache")
    nlbench = [sys.executable, "-m", "nlbench"]
    listing = subprocess.run(
        [*nlbench, "list", "methods", "--json"], env=env, check=True, capture_output=True, text=True
    ).stdout
    row = next(m for m in json.loads(listing)["methods"] if m["name"] == "my_method")
    assert row["distribution"] == "nlbench-my-method"
    run = subprocess.run(
        [
            *nlbench,
            "run",
            "--method",
            "my_method",
            "--noise",
            "0.4",
            "--epochs",
            "2",
            "--out",
            str(tmp_path / "runs"),
            "-q",
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    test = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            str(tmp_path / "pkg" / "tests"),
        ],
        env=env,
        cwd=tmp_path / "pkg",
        capture_output=True,
        text=True,
    )
    assert test.returncode == 0, test.stdout + test.stderr


def test_scaffold_imports_only_the_public_api(tmp_path):
    """The example teaches plugin authors the one import point, nlbench.api."""
    import ast

    write_plugin(tmp_path / "p", "my_thing")
    tree = ast.parse((tmp_path / "p" / "nlbench_my_thing.py").read_text())
    modules = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert {m for m in modules if m and m.startswith("nlbench")} == {"nlbench.api"}
