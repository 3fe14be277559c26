"""``nlbench show method``'s "differences from the official code" (nlbench/commands/show.py)."""

from __future__ import annotations

import json

import pytest
from helpers import run_cli

from nlbench.host.plugins import get_host


@pytest.mark.parametrize(
    "method",
    ["dividemix", "fl_only", "density_weighted", "fl_weighted", "mwnet", "l2r", "famus"],
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
