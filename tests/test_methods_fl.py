"""fl_only, density_weighted, fl_weighted end to end on digits (Cai, Cao & Liu §6.2)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
import torch
from helpers import assert_usage_error, run_cli

from nlbench.algorithms.facility_location import fl_objective, pairwise_distances
from nlbench.core.config import RunConfig
from nlbench.testing import _build_tiny, build_method, check_method_contract

METHODS = ("fl_only", "density_weighted", "fl_weighted")


def cli_run(capsys, tmp_path, method: str, *extra: str, noise: str = "0.6") -> dict:
    res = run_cli(
        capsys,
        "run",
        "--method",
        method,
        "--dataset",
        "digits",
        "--noise",
        noise,
        "--epochs",
        "6",
        "--device",
        "cpu",
        "--out",
        str(tmp_path),
        "--json",
        "-q",
        *extra,
    )
    assert res.code == 0, res.err
    return json.loads(res.out)


@pytest.mark.parametrize("method", METHODS)
def test_method_runs_end_to_end(capsys, tmp_path, method):
    record = cli_run(capsys, tmp_path, method)
    assert record["status"] == "done"
    epochs = record["epochs"]
    assert [e["selected"] for e in epochs[:3]] == [None] * 3  # ERM until the first LR decay
    for e in epochs[3:]:  # milestones [0.5, 0.75] of 6 epochs: select at epoch 3, keep it
        assert e["selection_epoch"] == 3
        if method == "density_weighted":
            assert e["selected"] is None and e["weight_min"] >= 1.0
        else:
            n_train = record["data"].get("train_size", 1297)
            assert e["selected"] == pytest.approx(0.4 * n_train, abs=10)
            assert 0.0 <= e["selected_precision"] <= 1.0
            # one group per class of the noisy label, none split into random parts
            assert (e["select_fl_groups"], e["select_fl_split_groups"]) == (10, 0)
            assert e["select_fl_parts"] == 10
    assert record["method_info"]["first_selection_epoch"] == 3


def test_fast_schedule_reselects_every_epoch_with_cluster_weights(capsys, tmp_path):
    record = cli_run(
        capsys, tmp_path, "fl_only", "--set", "schedule=fast", "--set", "warmup_epochs=2"
    )
    epochs = record["epochs"]
    assert [e["selection_epoch"] for e in epochs[2:]] == [2, 3, 4, 5]
    assert all(e["weight_max"] >= 1.0 for e in epochs[2:])  # cluster sizes


@pytest.mark.parametrize("selector", ["random", "set_cover"])
def test_other_selectors(capsys, tmp_path, selector):
    record = cli_run(capsys, tmp_path, "fl_only", "--set", f"selector={selector}")
    last = record["epochs"][-1]
    assert last["selected"] > 0 and last["selected_precision"] is not None


def test_agree_variant_and_stochastic_fl(capsys, tmp_path):
    record = cli_run(
        capsys,
        tmp_path,
        "fl_weighted",
        "--set",
        "density_mode=agree",
        "--set",
        "fl_algorithm=stochastic",
    )
    last = record["epochs"][-1]
    assert last["select_fl_algorithm"] == "stochastic" and 0 < last["weight_max"] <= 1.0


@pytest.mark.parametrize(
    ("item", "fragment"),
    [
        ("space=pixels", "space"),
        ("schedule=slow", "schedule"),
        ("density_mode=max", "density_mode"),
        ("fl_algorithm=exact", "fl_algorithm"),
        ("fl_ratio=1.5", "fl_ratio"),
        ("density_space=softmax_grad", "label-free"),
        ("fl_scope=everything", "fl_scope"),
    ],
)
def test_usage_errors(capsys, tmp_path, item, fragment):
    method = "fl_weighted"
    extra = ["--set", "density_mode=agree"] if "density_space" in item else []
    res = run_cli(
        capsys,
        "run",
        "--method",
        method,
        "--epochs",
        "1",
        "--out",
        str(tmp_path),
        "-q",
        "--set",
        item,
        *extra,
    )
    assert_usage_error(res, fragment)


def brute_force_greedy(dist: torch.Tensor, k: int) -> list[int]:
    """Greedy FL by definition: add the point that maximises f(S + j) (lowest index on ties)."""
    chosen: list[int] = []
    for _ in range(k):
        rest = [j for j in range(dist.shape[0]) if j not in chosen]
        gains = [(fl_objective(dist, torch.tensor(chosen + [j])), -j) for j in rest]
        chosen.append(-max(gains)[1])
    return chosen


@pytest.mark.parametrize("scope", [None, "global"])
def test_fl_scope_against_brute_force(tmp_path, scope):
    """fl_scope=global is one FL over the whole set (the study's literal variant); the default
    runs one FL per class of the noisy label (CRUST)."""
    run: dict[str, Any] = {"out": str(tmp_path), "device": "cpu", "train_subset": 300}
    cfg = RunConfig(method="fl_only", dataset="digits", overrides={"fl_scope": scope}, **run)
    method: Any  # the plugin's own attributes are read below
    method, _ = build_method(cfg)
    gen = torch.Generator().manual_seed(0)
    vec = torch.randn(23, 3, generator=gen, dtype=torch.float64)
    labels = torch.randint(0, 3, (23,), generator=gen)
    idx, sizes, info = method._select(vec, labels, torch.Generator().manual_seed(1))
    if scope == "global":
        expected = brute_force_greedy(pairwise_distances(vec), round(0.4 * 23))
    else:
        expected = []
        for c in range(3):
            members = torch.nonzero(labels == c).squeeze(1)
            local = brute_force_greedy(pairwise_distances(vec[members]), round(0.4 * len(members)))
            expected += members[local].tolist()
    assert idx.tolist() == expected
    assert info["fl_groups"] == info["fl_parts"] == (1 if scope == "global" else 3)
    assert info["fl_split_groups"] == 0
    assert float(sizes.sum()) == 23  # every point has one nearest medoid in its group


def test_records_count_groups_split_groups_and_parts(tmp_path):
    """Per class: one group per class; only groups above fl_partition are cut into parts."""
    run: dict[str, Any] = {"out": str(tmp_path), "device": "cpu", "train_subset": 300}
    cfg = RunConfig(method="fl_only", dataset="digits", overrides={"fl_partition": 5}, **run)
    method: Any  # the plugin's own attributes are read below
    method, _ = build_method(cfg)
    labels = torch.tensor([0] * 4 + [1] * 12 + [2] * 5)
    vec = torch.randn(len(labels), 3, generator=torch.Generator().manual_seed(0))
    _, _, info = method._select(vec, labels, torch.Generator().manual_seed(1))
    assert (info["fl_groups"], info["fl_split_groups"], info["fl_parts"]) == (3, 1, 1 + 3 + 1)


def test_global_scope_end_to_end(capsys, tmp_path):
    record = cli_run(capsys, tmp_path, "fl_only", "--set", "fl_scope=global")
    last = record["epochs"][-1]
    assert (last["select_fl_groups"], last["select_fl_parts"]) == (1, 1)
    assert last["selected"] == round(0.4 * record["data"]["train_size"])
    assert record["method_info"]["per_class"] == "whole noisy set"
    assert "within the group (the whole noisy set;" in record["method_info"]["similarity"]
    assert all(d["option"] != "fl_scope" for d in record["method_info"]["deviations"])


@pytest.mark.parametrize("method", METHODS)
def test_contract(tmp_path, method):
    check_method_contract(method, tmp_path)


def test_selection_survives_a_checkpoint(tmp_path):
    method = _build_tiny("fl_weighted", tmp_path)
    plan = method.start_epoch(1, method.ctx.scan)  # tiny runs decay at epoch 1 of 2
    assert plan is not None and plan.indices is not None and plan.weights is not None
    buf = io.BytesIO()
    torch.save(method.extra_state(), buf)
    buf.seek(0)
    fresh = _build_tiny("fl_weighted", Path(tmp_path) / "again")
    fresh.load_extra_state(torch.load(buf, weights_only=True))
    again = fresh.start_epoch(1, lambda: pytest.fail("a kept selection must not rescan"))
    assert again is not None and again.indices is not None and again.weights is not None
    assert torch.equal(again.indices, plan.indices) and torch.equal(again.weights, plan.weights)


@pytest.mark.slow
def test_selection_precision_at_60_percent_noise(capsys, tmp_path):
    """The full quick profile (30 epochs). Random is the clean fraction; plain FL is measured
    below it on digits (coverage picks the spread-out noisy points), recorded as xfail below."""
    precision = _last_precision(capsys, tmp_path, "--set", "selector=random")
    assert precision == pytest.approx(0.4, abs=0.05)


def _last_precision(capsys, out, *extra: str) -> float:
    """fl_only at 60 % noise on digits (quick profile): the last epoch's selection precision."""
    args = ["run", "--method", "fl_only", "--noise", "0.6", "--device", "cpu", "--out", str(out)]
    res = run_cli(capsys, *args, "--json", "-q", *extra)
    return json.loads(res.out)["epochs"][-1]["selected_precision"]


@pytest.mark.slow
@pytest.mark.xfail(
    strict=True,
    reason="measured 0.245 on digits at 60 % noise: FL coverage "
    "prefers the spread-out mislabelled points (plugins/methods_fl.py)",
)
def test_fl_precision_above_clean_fraction(capsys, tmp_path):
    assert _last_precision(capsys, tmp_path) > 0.5
