"""``nlbench show method``'s "differences from the official code" (nlbench/commands/show.py)."""

from __future__ import annotations

import json

import pytest
from helpers import run_cli

from nlbench.host.plugins import get_host

BASELINES = ["coteaching", "jocor", "elr", "forward", "confident_learning"]  # issue #28


@pytest.mark.parametrize(
    "method",
    [
        "dividemix",
        "fl_only",
        "density_weighted",
        "fl_weighted",
        "mwnet",
        "l2r",
        "famus",
        *BASELINES,
    ],
)
def test_show_method_prints_every_deviation(capsys, method):
    spec = get_host().get("methods", method)
    assert spec.deviations, f"{method} lists its differences from the official code"
    res = run_cli(capsys, "show", "method", method)
    assert res.code == 0, res.err
    assert "differences from the official code" in res.out
    words = " ".join(res.out.replace("│", " ").split())  # cells wrap: compare word sequences
    for dev in spec.deviations:
        assert " ".join(dev.what.split()[:3]) in words
    data = json.loads(run_cli(capsys, "show", "method", method, "--json").out)
    assert data["deviations"] == [
        {"what": d.what, "why": d.why, "restore": d.restore} for d in spec.deviations
    ]


def test_show_method_restore_options(capsys):
    data = json.loads(run_cli(capsys, "show", "method", "fl_only", "--json").out)
    restores = [d["restore"] for d in data["deviations"]]
    assert any("--set fl_scope=global" in r for r in restores)
    assert data["flags_per_run"] is False
    dividemix = json.loads(run_cli(capsys, "show", "method", "dividemix", "--json").out)
    assert any("--set amp=false" in d["restore"] for d in dividemix["deviations"])
    assert dividemix["flags"] == ["two_net"] and dividemix["flags_per_run"] is True


def test_show_method_without_deviations(capsys):
    res = run_cli(capsys, "show", "method", "erm")
    assert res.code == 0 and "differences from the official code: none recorded" in res.out


@pytest.mark.parametrize(
    "method,facts",
    [
        ("mwnet", ["bf16 autocast", "'unif' noise", "sym_incl", "independently"]),
        ("l2r", ["bf16 autocast", "conv kernels", "--set decay_scope=weights"]),
        ("famus", ["bf16 autocast", "Nesterov", "--set nesterov=true"]),
        ("dividemix", ["301 epochs", "--epochs 301"]),
    ],
)
def test_cards_state_precision_optimiser_decay_and_schedule(capsys, method, facts):
    """The facts issue #30 found missing from the cards, checked against the official code."""
    data = json.loads(run_cli(capsys, "show", "method", method, "--json").out)
    text = " ".join(f"{d['what']} {d['restore']}" for d in data["deviations"])
    for fact in facts:
        assert fact in text, fact


# The settings of docs/methods.md ("Baselines"): Co-teaching's T_k = 10 and τ = the noise rate,
# JoCoR's λ 0.9 (CIFAR-10) / 0.85 (CIFAR-100), forward's 97th-percentile anchors, cleanlab's
# find_label_issues default and its CleanLearning's K = 5 folds.
@pytest.mark.parametrize(
    "method,defaults,paper,facts",
    [
        ("coteaching", {"num_gradual": 10, "forget_rate": None}, {}, ["Adam", "9-layer CNN"]),
        (
            "jocor",
            {"num_gradual": 10, "forget_rate": None},
            {"cifar10": {"co_lambda": 0.9}, "cifar100": {"co_lambda": 0.85}},
            ["--set co_lambda=0.9", "Adam"],
        ),
        ("elr", {"elr_beta": None, "elr_lambda": None}, {}, ["ResNet-34"]),
        ("forward", {"transition": "estimate", "anchor_percentile": 97.0}, {}, ["anchor"]),
        (
            "confident_learning",
            {"filter_by": "prune_by_noise_rate", "reweight": False},
            {},
            ["--set cv_folds=5", "--set reweight=true"],
        ),
    ],
)
def test_baseline_cards_carry_the_papers_settings(capsys, method, defaults, paper, facts):
    data = json.loads(run_cli(capsys, "show", "method", method, "--json").out)
    assert data["reference"].strip() and data["deviations"]
    assert {k: data["default_hparams"][k] for k in defaults} == defaults
    for dataset, values in paper.items():
        hp = data["profiles"]["paper"][dataset]
        assert {k: hp[k] for k in values} == values, dataset
    text = " ".join(f"{d['what']} {d['restore']}" for d in data["deviations"])
    for fact in facts:
        assert fact in text, fact
