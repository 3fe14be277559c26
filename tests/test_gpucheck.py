"""``make gpu-check`` in its ``--tiny`` CPU mode (so the GPU script cannot rot), and its parts."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
import torch
from helpers import assert_usage_error, run_cli_main

from nlbench.core.costs import load_ratios
from nlbench.gpucheck.__main__ import main
from nlbench.gpucheck.check import write_report
from nlbench.gpucheck.epochs import chance_threshold, check_record, write_synthetic_cifar10
from nlbench.gpucheck.settings import RATIO_METHODS
from nlbench.host.plugins import get_host

ROOT = Path(__file__).resolve().parents[1]


def _main(capsys, *args: str) -> tuple[int, str, str]:
    res = run_cli_main(main, capsys, *args)
    return res.code, res.out, res.err


@pytest.fixture(scope="module")
def tiny_report(tmp_path_factory) -> tuple[int, dict, Path]:
    """One ``--tiny`` run for the module (~50 s CPU: eight methods, two torchrun workers)."""
    out = tmp_path_factory.mktemp("gpucheck") / "gpu-check.json"
    try:
        main(["--tiny", "--out", str(out)])
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    return code, json.loads(out.read_text()), out


def test_tiny_check_passes_and_reports_every_section(tiny_report):
    code, report, _ = tiny_report
    assert code == 0 and report["ok"] and report["failed"] == [], report.get("failed")
    assert set(report["sections"]) == {"speed", "method_ratios", "epochs", "ddp"}
    assert report["tiny"] and report["env"]["device"] == "cpu" and report["nlbench_version"]


def test_tiny_speed_compares_each_setting_with_a_plain_loop(tiny_report):
    speed = tiny_report[1]["sections"]["speed"]
    assert set(speed["variants"]) == {"default", "no_amp", "no_channels_last", "compile"}
    assert "skipped" in speed["variants"]["compile"]
    for name in ("default", "no_amp", "no_channels_last"):
        v = speed["variants"][name]
        assert v["nlbench_images_per_s"] > 0 and v["plain_images_per_s"] > 0
        ratio = v["plain_images_per_s"] and v["nlbench_images_per_s"] / v["plain_images_per_s"]
        assert v["nlbench_vs_plain"] == pytest.approx(ratio)


def test_tiny_method_ratios_feed_the_sweep_cost_model(tiny_report):
    _, report, path = tiny_report
    ratios = report["sections"]["method_ratios"]["ratios"]
    assert set(ratios) == {"erm", *RATIO_METHODS} and ratios["erm"] == 1.0
    assert load_ratios(path) == ratios  # nlbench sweep --dry-run --ratios <report>


def test_tiny_two_epochs_of_every_method(tiny_report):
    epochs = tiny_report[1]["sections"]["epochs"]
    assert epochs["data"] == "synthetic"
    assert set(epochs["methods"]) == set(get_host().registry("methods").names())
    for name, result in epochs["methods"].items():
        assert result["ok"], (name, result)
        assert len(result["train_loss"]) == 2 and all(
            math.isfinite(v) for v in result["train_loss"]
        )
        assert max(result["test_acc"]) > chance_threshold(10, 100)


def test_tiny_torchrun_gloo_matches_one_process(tiny_report):
    ddp = tiny_report[1]["sections"]["ddp"]
    assert ddp["ok"], ddp
    assert ddp["processes"] == 2 and ddp["backend"] == "gloo" and ddp["max_gap"] <= 0.1


def test_check_record_catches_nan_chance_and_missing_files(tmp_path):
    record = {
        "status": "done",
        "data": {"test_size": 10000, "num_classes": 10},
        "epochs": [{"epoch": 0, "train_loss": float("nan"), "test_acc": 0.1}],
    }
    problems = check_record(record, tmp_path)
    assert any("non-finite train_loss" in p for p in problems)
    assert any("not above chance" in p for p in problems)
    assert any("no run.json" in p for p in problems)
    (tmp_path / "run.json").write_text("{}")
    record["epochs"] = [{"epoch": 0, "train_loss": 1.0, "test_acc": 0.5}]
    assert check_record(record, tmp_path) == []


def test_synthetic_cifar_is_read_by_the_cifar10_loader(tmp_path):
    from nlbench.training.data import LoadRequest

    write_synthetic_cifar10(tmp_path, 50, 20)
    data = get_host().get("datasets", "cifar10").load(LoadRequest(root=tmp_path, download=False))
    assert data.train.x.shape == (50, 3, 32, 32) and len(data.test) == 20
    assert data.classes[0] == "airplane" and set(data.train.y.tolist()) <= set(range(10))


def test_report_is_written_whole(tmp_path):
    out = tmp_path / "deep" / "report.json"
    write_report({"ok": True, "path": tmp_path}, out)
    assert json.loads(out.read_text()) == {"ok": True, "path": str(tmp_path)}
    assert [p.name for p in out.parent.iterdir()] == ["report.json"]  # no temporary left


@pytest.mark.skipif(torch.cuda.is_available(), reason="the full check runs on a GPU here")
def test_full_check_without_a_gpu_is_one_line(tmp_path, capsys):
    code, out, err = _main(capsys, "--out", str(tmp_path / "r.json"))
    assert_usage_error(_result(code, out, err), "no CUDA GPU", "--tiny")
    assert not (tmp_path / "r.json").exists()


def test_unknown_section_is_one_line(tmp_path, capsys):
    code, out, err = _main(capsys, "--tiny", "--only", "warp", "--out", str(tmp_path / "r.json"))
    assert_usage_error(_result(code, out, err), "--only", "speed")


def _result(code: int, out: str, err: str):
    from helpers import CliResult

    return CliResult(code, out, err)


def test_make_target_runs_the_module_into_benchmarks_results():
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^\.PHONY:.*\bgpu-check\b", makefile, re.M)
    recipe = re.search(r"^gpu-check:.*\n\t(.+)", makefile, re.M)
    assert recipe and "-m nlbench.gpucheck" in recipe.group(1)
    assert "GPU_CHECK_OUT ?= benchmarks/results/gpu-check.json" in makefile
