"""The sweep cost model (nlbench.core.costs) and the paper sweep files' dry runs."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from helpers import assert_usage_error, run_cli

from nlbench.core.costs import (
    DEFAULT_RATIOS,
    ERM_EPOCH_S,
    FULL_SCAN,
    SCAN_S,
    CostModel,
    build_model,
    default_model,
    estimate,
    load_ratios,
)
from nlbench.core.errors import UsageError
from nlbench.engine.prepare import run_identity
from nlbench.host.plugins import get_host
from nlbench.sweep.plan import grid_from_mapping, load_toml, plan

SWEEPS = Path(__file__).resolve().parents[1] / "leaderboards" / "sweeps"
PAPER = ["cifar10", "cifar100", "fashionmnist", "clothing1m"]


def test_run_seconds_is_the_stated_formula():
    model = CostModel({"erm": 1.0, "slow": 3.0}, "test")
    erm = ERM_EPOCH_S[("cifar10", "preact_resnet18")][0]
    assert model.run_s("slow", "cifar10", "preact_resnet18", 10) == pytest.approx(10 * 3 * erm)
    assert model.run_s("erm", "cifar10", "no_such_model", 10) is None


def test_full_scan_costs_only_where_an_epoch_samples_the_train_set():
    model = default_model()
    erm = ERM_EPOCH_S[("clothing1m", "resnet50")][0]
    scanning = sorted(FULL_SCAN)[0]
    ratio = DEFAULT_RATIOS[scanning][0]
    expected = 2 * (ratio * erm + SCAN_S["clothing1m"][0])
    assert model.run_s(scanning, "clothing1m", "resnet50", 2) == pytest.approx(expected)
    assert model.run_s("erm", "clothing1m", "resnet50", 2) == pytest.approx(2 * erm)
    assert "cifar10" not in SCAN_S  # there the bench ratio already contains the scan


def test_given_erm_epoch_scales_every_model_of_the_dataset():
    model = default_model(erm_epoch_s=8.0)
    rn18 = ERM_EPOCH_S[("cifar10", "preact_resnet18")][0]
    wrn = ERM_EPOCH_S[("cifar10", "wrn28_10")][0]
    assert model.epoch_s("cifar10", "preact_resnet18") == pytest.approx(8.0)
    assert model.epoch_s("cifar10", "wrn28_10") == pytest.approx(wrn * 8.0 / rn18)
    assert model.epoch_s("digits", "tiny_cnn") == pytest.approx(8.0)  # no default: as given
    assert default_model().epoch_s("digits", "tiny_cnn") is None


def test_estimate_counts_only_unfinished_runs():
    model = CostModel({"erm": 1.0, "mwnet": 4.0}, "test", erm_epoch_s=3600.0, gpus_per_run=2)
    rows = [("erm", "x", "m", 1, False), ("erm", "x", "m", 1, True), ("mwnet", "x", "m", 2, False)]
    by = {e.method: e for e in estimate(rows, model)}
    assert (by["erm"].runs, by["erm"].done) == (2, 1)
    assert by["erm"].gpu_h == pytest.approx(2.0)  # one run to do, 1 h, two GPUs
    assert by["mwnet"].gpu_h == pytest.approx(16.0) and by["mwnet"].longest_h == pytest.approx(8)
    unknown = estimate([("erm", "digits", "tiny_cnn", 3, False)], default_model())
    assert unknown[0].gpu_h is None


def test_ratios_from_bench_output_and_nested_report(tmp_path):
    bench = tmp_path / "bench.json"
    bench.write_text(json.dumps({"ratios": {"erm": 1.0, "mwnet": 3.2}, "device": "cuda"}))
    assert load_ratios(bench) == {"erm": 1.0, "mwnet": 3.2}
    report = tmp_path / "gpu-check.json"
    report.write_text(json.dumps({"bench": {"method_ratios": {"ratios": {"l2r": 2.5}}}}))
    model = build_model(str(report), None)
    assert model.ratio("l2r") == 2.5 and model.ratio("erm") == DEFAULT_RATIOS["erm"][0]
    assert "measured" in model.describe()


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("{", "not JSON"),
        ('{"device": "cpu"}', "no 'ratios' table"),
        ('{"ratios": {"erm": -1}}', "not a positive number"),
    ],
)
def test_bad_ratio_files_are_usage_errors(tmp_path, text, fragment):
    path = tmp_path / "r.json"
    path.write_text(text)
    with pytest.raises(UsageError, match=fragment):
        load_ratios(path)
    with pytest.raises(UsageError, match="cannot read"):
        load_ratios(tmp_path / "absent.json")


def _longest_run_h(name: str, tmp_path: Path) -> tuple[float, dict]:
    data = load_toml(SWEEPS / f"{name}-paper.toml")
    host = get_host()
    grid = grid_from_mapping({**data, "out": str(tmp_path)})
    model = default_model()
    longest = 0.0
    for job in plan(grid, host):
        hp = run_identity(job.cfg, host).hparams
        seconds = model.run_s(job.cfg.method, job.cfg.dataset, hp["model"], int(hp["epochs"]))
        assert seconds is not None, (job.cfg.method, hp["model"])  # every run has an estimate
        longest = max(longest, seconds / 3600)
    return longest, data


@pytest.mark.parametrize("name", PAPER)
def test_paper_sweeps_are_paper_profile_on_slurm_with_a_time_limit_from_the_estimate(
    name, tmp_path
):
    longest, data = _longest_run_h(name, tmp_path)
    assert data["profile"] == "paper" and data["seeds"] == [0, 1, 2]
    executor = data["executor"]
    assert executor["name"] == "slurm" and executor["gpus"] == 1
    assert executor["time"] >= min(1.5 * longest * 60, 48 * 60) - 1
    assert executor["time"] <= max(2 * longest * 60, 60)  # not wildly above the estimate
    built_in = set(DEFAULT_RATIOS)
    assert set(data["methods"]) <= built_in
    if name != "clothing1m":  # MW-Net and L2R need a clean meta set Clothing1M cannot hold out
        assert set(data["methods"]) == built_in - BASELINES


# Issue #28's baselines: on the digits-quick and cifar10-cpu boards, not (yet) in the paper sweeps
BASELINES = {"coteaching", "jocor", "elr", "forward", "confident_learning"}


def test_every_built_in_method_has_a_stated_ratio():
    """A built-in method without a ratio would be costed at the blind UNKNOWN_RATIO guess."""
    methods = set(get_host().registry("methods").names())
    assert methods >= BASELINES
    assert methods <= set(DEFAULT_RATIOS), sorted(methods - set(DEFAULT_RATIOS))
    assert set(DEFAULT_RATIOS) <= methods  # no figure for a method that is gone
    for method, (ratio, source) in DEFAULT_RATIOS.items():
        assert ratio > 0 and source.strip(), method
        assert default_model().ratio(method) == ratio


def test_confident_learning_ratio_pays_for_its_folds():
    """Its K fold models are training runs on (K-1)/K of the data: it costs more than any
    single-network method and more than the two-network selectors."""
    ratio = {m: DEFAULT_RATIOS[m][0] for m in DEFAULT_RATIOS}
    assert ratio["confident_learning"] > max(ratio["coteaching"], ratio["jocor"], 2.0)
    assert ratio["erm"] < ratio["elr"] < ratio["confident_learning"]


@pytest.mark.parametrize("name", PAPER)
def test_dry_run_prints_runs_and_gpu_hours(name, tmp_path, capsys):
    result = run_cli(
        capsys,
        "sweep",
        "-c",
        str(SWEEPS / f"{name}-paper.toml"),
        "--dry-run",
        "--out",
        str(tmp_path),
    )
    assert result.code == 0, result.err
    runs = len(load_toml(SWEEPS / f"{name}-paper.toml")["methods"])
    assert "estimated cost" in result.out and "cost model:" in result.out
    total = re.search(r"(\d+) runs, (\d+) to run: about ([\d.]+) GPU-hours", result.out)
    assert total is not None, result.out[-800:]
    assert int(total.group(1)) == int(total.group(2)) and int(total.group(1)) % (3 * runs) == 0
    assert float(total.group(3)) > 0


def test_dry_run_with_measured_ratios_and_given_epoch(tmp_path, capsys):
    ratios = tmp_path / "bench.json"
    ratios.write_text(json.dumps({"ratios": {"erm": 1.0}}))
    args = [
        "sweep",
        "-m",
        "erm",
        "-d",
        "digits",
        "--seed",
        "0,1",
        "--out",
        str(tmp_path),
        "--dry-run",
        "--ratios",
        str(ratios),
    ]
    unknown = run_cli(capsys, *args)
    assert unknown.code == 0 and "pass --erm-epoch-s" in unknown.out
    given = run_cli(capsys, *args, "--erm-epoch-s", "36")
    assert given.code == 0, given.err
    epochs = run_identity(grid_from_mapping({"method": "erm"}).configs()[0], get_host())
    hours = 2 * int(epochs.hparams["epochs"]) * 36 / 3600
    assert f"about {hours:.1f} GPU-hours" in given.out and "measured" in given.out


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [(["--erm-epoch-s", "-3"], "--erm-epoch-s"), (["--ratios", "/no/such.json"], "cannot read")],
)
def test_dry_run_bad_cost_input_is_one_line(tmp_path, capsys, extra, fragment):
    result = run_cli(capsys, "sweep", "-m", "erm", "--out", str(tmp_path), "--dry-run", *extra)
    assert_usage_error(result, fragment)


@pytest.mark.parametrize("name", PAPER)
def test_paper_sweep_executor_options_build_the_slurm_executor(name):
    from nlbench.sweep.plan import make_executor

    table = dict(load_toml(SWEEPS / f"{name}-paper.toml")["executor"])
    executor = make_executor(get_host(), table.pop("name"), table)
    assert executor.params["gpus_per_node"] == 1 and executor.params["timeout_min"] == table["time"]
