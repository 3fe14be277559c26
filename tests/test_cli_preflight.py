"""Input is checked before torch loads: the static specs decide exactly as the loaded plugins.

The CLI resolves a run against the plugins' specs kept in the static cache
(nlbench.host.static_specs); these tests hold it to the loaded plugins' answers (run_ids, resolved
hparams, errors), check that the usage errors of a new user's first hour never import torch,
and that the cache follows plugins being installed and removed.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from helpers import assert_usage_error, run_cli, unbuilt

from nlbench.core.config import RunConfig
from nlbench.core.errors import UsageError
from nlbench.engine.preflight import check_run, run_identity
from nlbench.host import plugins, static_specs
from nlbench.sweep.plan import grid_from_mapping, load_toml, plan

ROOT = Path(__file__).resolve().parents[1]
SWEEPS = sorted((ROOT / "leaderboards" / "sweeps").glob("*.toml"))


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("NLBENCH_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _answer(host, cfg):
    try:
        ident = run_identity(cfg, host)
    except UsageError as exc:
        return ("error", str(exc))
    return (ident.run_id, json.dumps(ident.hparams, sort_keys=True), ident.key)


def test_static_specs_round_trip_every_builtin(fresh_cache):
    host = plugins.get_host()
    static = static_specs.StaticHost(static_specs.payload(host))
    assert not static.dynamic, static.dynamic  # every built-in spec is plain data
    for kind in host.registries:
        assert static.registry(kind).names() == host.registry(kind).names()


def test_static_identity_matches_loaded_for_every_method_dataset_profile(fresh_cache):
    host = plugins.get_host()
    static = static_specs.static_host()
    for method in host.registry("methods").names():
        for dataset in host.registry("datasets").names():
            for profile in ("quick", "paper", "cpu", "nosuch"):
                cfg = RunConfig(method=method, dataset=dataset, profile=profile, noise="sym:0.4")
                assert _answer(static, cfg) == _answer(host, cfg), (method, dataset, profile)


@pytest.mark.parametrize("sweep_file", SWEEPS, ids=lambda p: p.stem)
def test_static_sweep_plan_matches_loaded(fresh_cache, sweep_file, tmp_path):
    grid = grid_from_mapping({**load_toml(sweep_file), "out": str(tmp_path)}, sweep_file.name)
    static_jobs = plan(grid, static_specs.static_host())
    loaded_jobs = plan(grid, plugins.get_host())
    assert [(j.run_id, j.cfg) for j in static_jobs] == [(j.run_id, j.cfg) for j in loaded_jobs]


@pytest.mark.parametrize(
    "overrides, fragment",
    [
        ({"method": "nosuch"}, "unknown method 'nosuch'"),
        ({"overrides": {"lr": "abc"}}, "hparam lr='abc'"),
        ({"overrides": {"lr": 11}}, "out of range"),
        ({"overrides": {"nosuch": 1}}, "unknown --set key(s) nosuch"),
        ({"overrides": {"loss": "gce", "q": 5}}, "hparam q=5"),
        ({"overrides": {"loss": "sce", "alpha": -1}}, "alpha=-1 is out of range: accepted"),
        ({"overrides": {"loss": "gce_warmup", "ce_epochs": -1}}, "ce_epochs=-1 is out of range"),
        ({"overrides": {"loss": "sce", "q": 0.5}}, "unknown --set key(s) q"),
        ({"noise": "sym:1.5"}, "the rate must be a number in [0, 1]"),
        ({"noise": "nosuch:0.2"}, "unknown noise type 'nosuch'"),
        ({"model": "nosuch_net"}, "unknown model 'nosuch_net'"),
        ({"device": "gpu"}, "--device 'gpu'"),
    ],
)
def test_check_run_refuses_what_the_runner_refuses(fresh_cache, overrides, fragment):
    cfg = RunConfig(**{"method": "erm", "dataset": "digits", **overrides})
    with pytest.raises(UsageError) as caught:
        check_run(cfg)
    assert fragment in str(caught.value)


def test_check_run_accepts_what_the_runner_accepts(fresh_cache, tmp_path):
    check_run(RunConfig(method="famus", dataset="digits", noise="0.6", out=str(tmp_path)))
    check_run(RunConfig(method="erm", dataset="digits", overrides={"loss": "gce", "q": 0.5}))


# -- missing data: the exact next step, before torch --------------------------------------
@pytest.mark.parametrize(
    "dataset, profile", [("cifar100", "quick"), ("fashionmnist", "quick"), ("clothing1m", "paper")]
)
def test_missing_data_names_the_prepare_command(
    fresh_cache, tmp_path, monkeypatch, capsys, dataset, profile
):
    monkeypatch.setenv("NLBENCH_OFFLINE", "1")
    root = tmp_path / "empty"
    argv = ["run", "-d", dataset, "--profile", profile, "--data-root", str(root), "--json"]
    result = run_cli(capsys, *argv)
    command = f"nlbench data prepare {dataset} --data-root {root}"
    assert_usage_error(result, f"dataset '{dataset}': missing", f"`{command}`")
    assert "extract" not in result.err or dataset == "cifar100"  # .gz files are read as they are
    payload = json.loads(result.out)
    assert payload["hint"] == command and payload["exit_code"] == 2
    assert payload["error"] in result.err


def test_loader_error_names_the_prepare_command_too(tmp_path, monkeypatch):
    """Without the static cache the loader's own message names the same command."""
    from nlbench.core.errors import DataMissingError
    from nlbench.engine.prepare import load_dataset

    monkeypatch.setenv("NLBENCH_OFFLINE", "1")
    spec = plugins.get_host().get("datasets", "fashionmnist")
    cfg = RunConfig(dataset="fashionmnist", data_root=str(tmp_path))
    with pytest.raises(DataMissingError) as caught:
        load_dataset(spec, cfg)
    command = f"nlbench data prepare fashionmnist --data-root {tmp_path}"
    assert f"`{command}`" in str(caught.value) and caught.value.hint == command
    assert "extract" not in str(caught.value)


def test_data_prepare_json_failure_is_one_object(fresh_cache, tmp_path, capsys):
    result = run_cli(capsys, "data", "prepare", "clothing1m", "--root", str(tmp_path), "--json")
    assert_usage_error(result, "dataset 'clothing1m': missing")
    payload = json.loads(result.out)
    assert set(payload) == {"error", "hint", "exit_code"}
    assert "data prepare" not in payload["error"]  # it is the command that is running


@pytest.mark.parametrize(
    "argv",
    [
        ["run", "-m", "nosuch", "--json"],
        ["run", "--bogus", "--json"],
        ["list", "nosuch", "--json"],
        ["noise", "-d", "digits", "-n", "sym:2", "--json"],
    ],
)
def test_json_failures_are_one_json_object(fresh_cache, capsys, argv):
    result = run_cli(capsys, *argv)
    assert result.code == 2
    payload = json.loads(result.out)  # exactly one object, nothing else on stdout
    assert payload["error"] and "hint" in payload


# -- no torch on the paths of a usage error -------------------------------------------------
PROBE = """
import sys
from nlbench.cli import main
try:
    main({argv!r})
except SystemExit as exc:
    code = exc.code
print("TORCH" if "torch" in sys.modules else "NO-TORCH", code, file=sys.stderr)
"""
NO_TORCH = [
    ["run", "-m", "nosuch", "-d", "digits"],
    ["run", "-d", "digits", "--set", "lr=abc"],
    ["run", "-d", "digits", "-n", "sym:1.5"],
    ["run", "-d", "digits", "--set", "loss=gce", "--set", "q=1.5"],
    ["run", "-d", "cifar100", "--data-root", "{empty}"],
    ["run", "-d", "clothing1m", "--profile", "paper", "--data-root", "{empty}"],
    ["noise", "-d", "digits", "-n", "sym:1.5"],
    ["data", "prepare", "nosuch"],
    ["data", "prepare", "fashionmnist", "--offline", "--root", "{empty}"],
    ["sweep", "-d", "digits", "--set", "nosuch=1", "--dry-run"],
]


def _probe(argv: list[str], env: dict[str, str]) -> tuple[str, str]:
    code = PROBE.format(argv=argv)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    lines = proc.stderr.strip().splitlines()
    return lines[-1], "\n".join(lines[:-1])


def test_usage_errors_answer_without_importing_torch(tmp_path):
    env = {**os.environ, "NLBENCH_CACHE": str(tmp_path / "cache"), "NLBENCH_OFFLINE": "1"}
    empty = str(tmp_path / "empty")
    _probe(["list", "--json"], env)  # a cold cache loads the plugins once (as `make setup`)
    _probe(NO_TORCH[0], env)
    for argv in NO_TORCH:
        argv = [a.format(empty=empty) for a in argv]
        status, err = _probe(argv, env)
        assert status == "NO-TORCH 2", (argv, status, err)
        assert err.startswith("Error: ") and len(err.splitlines()) == 1, (argv, err)


# -- the cache follows plugins being installed and removed ----------------------------------
PLUGIN = """
from nlbench.core.hookspecs import hookimpl
from nlbench.core.hparam_types import Float
from nlbench.core.specs import MethodSpec


@hookimpl
def register_methods(register):
    register(MethodSpec("zz_cached", "probe", object, {{"tau": Float(0.5, low=0, high={high})}}))
"""


def _install(site: Path, high: float) -> None:
    (site / "nlb_zz_probe.py").write_text(textwrap.dedent(PLUGIN.format(high=high)))
    dist = site / "nlb_zz_probe-1.0.dist-info"
    dist.mkdir(exist_ok=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: nlb-zz-probe\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[nlbench]\nzz_probe = nlb_zz_probe\n")


def _checked(tau: float) -> str:
    """check_run's answer as a new process would give it (the plugin not imported yet)."""
    plugins.reset()
    sys.modules.pop("nlb_zz_probe", None)
    try:
        check_run(RunConfig(method="zz_cached", dataset="digits", overrides={"tau": tau}))
    except UsageError as exc:
        return str(exc)
    finally:
        plugins.reset()
    return "ok"


def test_static_cache_follows_installed_and_removed_plugins(fresh_cache, tmp_path, monkeypatch):
    import shutil
    import time

    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delenv("NLBENCH_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    names = ["zz_probe", *(m.rsplit(".", 1)[1] for m in plugins.builtin_modules())]
    monkeypatch.setenv("NLBENCH_LOAD_PLUGINS", ",".join(names))
    assert "unknown method 'zz_cached'" in _checked(0.7)  # not installed
    _install(site, high=1.0)
    assert _checked(0.7) == "ok"  # installed: the new method is known
    _install(site, high=0.5)  # upgraded in place: a narrower range
    later = time.time_ns() + 10**9
    os.utime(site / "nlb_zz_probe.py", ns=(later, later))
    assert "hparam tau=0.7 is out of range" in _checked(0.7)
    shutil.rmtree(site / "nlb_zz_probe-1.0.dist-info")  # removed
    assert "unknown method 'zz_cached'" in _checked(0.7)
    sys.modules.pop("nlb_zz_probe", None)


def test_a_spec_that_is_not_plain_data_is_left_to_the_plugins():
    from nlbench.core.specs import MethodSpec

    class Opaque:
        pass

    spec = MethodSpec("opaque", "x", unbuilt, {"thing": Opaque()})
    with pytest.raises(static_specs.Unencodable):
        static_specs.encode_spec(spec)
    ok = dataclasses.replace(spec, default_hparams={"t": (1, 2), "s": {"a": [1.5, None]}})
    assert static_specs.decode_spec(static_specs.encode_spec(ok)).default_hparams == {
        "t": (1, 2),
        "s": {"a": [1.5, None]},
    }


def test_the_modules_of_the_checks_import_no_torch():
    modules = ["core.config", "core.hparams", "core.hparam_types", "core.identity", "core.specs"]
    modules += ["engine.preflight", "host.static_specs", "host.static_cache", "sweep.plan"]
    modules += ["sweep.grid", "core.costs", "core.download", "commands.sweep"]
    code = "import sys\n" + "".join(f"import nlbench.{m}\n" for m in modules)
    code += "print('torch' in sys.modules, 'numpy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
