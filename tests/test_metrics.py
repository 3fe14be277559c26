"""Selection metrics the runner computes from clean labels methods never see."""

from __future__ import annotations

import pytest
import torch

from nlbench.training.data import EpochPlan
from nlbench.training.metrics import plan_metrics

NOISY = torch.tensor([0, 1, 2, 3, 4, 5])
CLEAN = torch.tensor([0, 1, 2, 0, 0, 0])  # the first three labels are correct


def test_no_plan_or_no_selection():
    assert plan_metrics(None, NOISY, CLEAN)["selected"] is None
    assert plan_metrics(EpochPlan(), NOISY, CLEAN)["selected_precision"] is None


def test_indices_precision_and_recall():
    m = plan_metrics(EpochPlan(indices=torch.tensor([0, 1, 3, 4])), NOISY, CLEAN)
    assert m["selected"] == 4 and m["selected_precision"] == 0.5
    assert m["selected_recall"] == pytest.approx(2 / 3)
    assert "weighted_precision" not in m


def test_weighted_precision_with_and_without_indices():
    sel = EpochPlan(indices=torch.tensor([0, 3]), weights=torch.tensor([3.0, 1.0]))
    assert plan_metrics(sel, NOISY, CLEAN)["weighted_precision"] == pytest.approx(0.75)
    whole = EpochPlan(weights=torch.tensor([1.0, 1.0, 1.0, 0.0, 0.0, 1.0]))
    m = plan_metrics(whole, NOISY, CLEAN)
    assert m["weighted_precision"] == pytest.approx(0.75) and m["selected"] is None
