"""A plugin written against the previous public API (nlbench 0.1.0, API 1.0) still installs,
lists, runs and passes its own tests.

The plugin (``tests/fixtures/old_api_plugin``) imports what the built-ins of that release
imported: ``nlbench.api`` names mixed with internal modules (``nlbench.core.specs``,
``nlbench.training.method``, ``nlbench.core.hparam_types``, ``nlbench.core.errors``, ``nlbench.core.config``). Those
internal paths may move into sub-packages; their old paths must keep working, warning at most
with a DeprecationWarning.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from nlbench.host import plugins
from nlbench.testing import check_bad_hparams, check_method_contract

FIXTURE = Path(__file__).parent / "fixtures" / "old_api_plugin"
MODULE = "nlbench_oldapi"
# imports the plugin in a fresh process (so a moved module's alias warns here) and prints, as
# JSON, [category, message] of every warning that names nlbench
IMPORT_AND_REPORT = f"""
import json, warnings
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    import {MODULE}
print(json.dumps([
    [w.category.__name__, str(w.message)]
    for w in caught
    if issubclass(w.category, Warning) and "nlbench" in str(w.message) + str(w.filename)
]))
"""


def _env(*paths: Path, cache: Path) -> dict[str, str]:
    """This environment with ``paths`` first on PYTHONPATH and plugin autoload back on."""
    env = {k: v for k, v in os.environ.items() if k != "NLBENCH_DISABLE_PLUGIN_AUTOLOAD"}
    env["PYTHONPATH"] = os.pathsep.join([*map(str, paths), env.get("PYTHONPATH", "")])
    env["NLBENCH_CACHE"] = str(cache)
    env["OMP_NUM_THREADS"] = "1"
    return env


def test_old_import_paths_work_warning_at_most_deprecation(tmp_path):
    done = subprocess.run(
        [sys.executable, "-c", IMPORT_AND_REPORT],
        env=_env(FIXTURE, cache=tmp_path / "cache"),
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    warned = json.loads(done.stdout.strip().splitlines()[-1])
    other = [w for w in warned if w[0] != "DeprecationWarning"]
    assert not other, f"the old import paths warn with more than a DeprecationWarning: {other}"


@pytest.fixture
def old_plugin():
    spec = importlib.util.spec_from_file_location(MODULE, FIXTURE / f"{MODULE}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    plugins.reset()
    yield plugins.load_plugins(extra=[("oldapi", module)])
    plugins.reset()


def test_old_plugin_honours_the_kit_contract(old_plugin, tmp_path):
    assert not [b for b in old_plugin.broken if b.get("plugin") == "oldapi"], old_plugin.broken
    overrides = {"loss": "oldapi_mae", "mae_scale": 1.5}
    record = check_method_contract("oldapi_smooth", tmp_path, overrides=overrides)
    hp = record["config"]["hparams"]
    assert (hp["smoothing"], hp["loss"], hp["mae_scale"]) == (0.1, "oldapi_mae", 1.5)
    check_bad_hparams("oldapi_smooth", {"smoothing": [1.0, -0.1, "lots"]})


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The package pip-installed (offline, no build isolation) into a directory of its own."""
    root = tmp_path_factory.mktemp("old-api-plugin")
    src, site = root / "src", root / "site"
    shutil.copytree(FIXTURE, src)  # setuptools builds in the source tree: not in ours
    pip = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation"]
    pip += ["--no-index", "--disable-pip-version-check", "--target", str(site), str(src)]
    done = subprocess.run(pip, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    return SimpleNamespace(root=root, src=src, env=_env(site, cache=root / "cache"))


def _nlbench(installed, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "nlbench", *args]
    return subprocess.run(
        cmd, env=installed.env, cwd=installed.root, capture_output=True, text=True
    )


def test_installed_old_plugin_lists_and_runs(installed):
    listing = _nlbench(installed, "list", "methods", "--json")
    assert listing.returncode == 0, listing.stderr
    data = json.loads(listing.stdout)
    row = next(m for m in data["methods"] if m["name"] == "oldapi_smooth")
    assert (row["distribution"], row["plugin"]) == ("nlbench-oldapi", "oldapi")
    assert not [b for b in data["broken"] if "oldapi" in json.dumps(b)], data["broken"]
    out = installed.root / "runs"
    args = ["--method", "oldapi_smooth", "--noise", "0.4", "--epochs", "2", "--train-subset"]
    args += ["300", "--set", "loss=oldapi_mae", "--out", str(out), "-q"]
    run = _nlbench(installed, "run", *args)
    assert run.returncode == 0, run.stderr
    (path,) = out.glob("*/run.json")
    record = json.loads(path.read_text())
    assert record["status"] == "done" and len(record["epochs"]) == 2
    assert record["config"]["hparams"]["mae_scale"] == 2.0
    assert record["plugins"]["oldapi"] == "0.1.0"


@pytest.mark.slow
def test_installed_old_plugin_passes_its_own_tests(installed):
    """Its tests use nlbench.testing as 0.1.0 had it (the pytest11 plugin, its fixture)."""
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"]
    done = subprocess.run(cmd, env=installed.env, cwd=installed.src, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "4 passed" in done.stdout, done.stdout
