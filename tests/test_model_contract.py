"""The public model contract (nlbench.api): ClassifierNet, the contract checker, option checks.

A third-party model plugin uses exactly these names; the built-in ones do too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import torch
from torch import nn

from nlbench.api import (
    ClassifierNet,
    TimmClassifier,
    check_classifier_contract,
    check_options,
    small_image_profiles,
)
from nlbench.core.errors import UsageError

ROOT = Path(__file__).resolve().parents[1]


class TwoLayer(ClassifierNet):
    """What a third-party model written on ClassifierNet looks like."""

    def __init__(self, num_classes: int, dropout: float = 0.0) -> None:
        super().__init__(dropout)
        self.body = nn.Conv2d(3, 5, 3, padding=1)
        self.num_features = 5
        self.fc = nn.Linear(5, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x).relu()


class BiasedForward(TwoLayer):
    """Breaks the contract: forward adds something forward_head does not."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x) + 1.0


def _x(n: int = 4) -> torch.Tensor:
    return torch.randn(n, 3, 6, 6, generator=torch.Generator().manual_seed(0))


def test_classifier_net_subclass_follows_the_contract():
    net = TwoLayer(7, dropout=0.3).train()
    check_classifier_contract(net, _x(), num_classes=7)
    assert net.training  # the check restores the mode it found
    assert isinstance(net, TimmClassifier)


def test_pre_logits_are_the_pooled_features():
    net = TwoLayer(3).eval()
    x = _x()
    pooled = net.forward_features(x).mean((2, 3))
    assert torch.equal(net.forward_head(net.forward_features(x), pre_logits=True), pooled)


@pytest.mark.parametrize(
    ("net", "num_classes", "match"),
    [
        (BiasedForward(3), 3, "forward_head"),
        (TwoLayer(3), 4, "want 4 classes"),
        (nn.Linear(3, 3), 3, "lacks forward_features, forward_head, get_classifier"),
    ],
)
def test_contract_breaches_name_the_broken_part(net, num_classes, match):
    with pytest.raises(AssertionError, match=match):
        check_classifier_contract(net, _x(), num_classes=num_classes)


def test_wrong_feature_width_is_named():
    net = TwoLayer(3)
    net.num_features = 6  # the pre-logits vector is 5 wide
    with pytest.raises(AssertionError, match="want width 6"):
        check_classifier_contract(net, _x(), num_classes=3)


def test_check_options():
    assert check_options("m", {"dropout": 0}) == {"dropout": 0.0}
    assert check_options("m", {"width": 4}, extra=("width",))["width"] == 4
    with pytest.raises(UsageError, match=r"unknown option\(s\) depth. Accepted: dropout"):
        check_options("m", {"depth": 3})
    for bad in (1.0, -0.1, True, "0.5"):
        with pytest.raises(UsageError, match="dropout must be a number in"):
            check_options("m", {"dropout": bad})
    with pytest.raises(UsageError, match="no pretrained weights"):
        check_options("m", {"pretrained": True})
    assert check_options("m", {"pretrained": True}, pretrained_ok=True)["pretrained"] is True


def test_small_image_profiles_scale_the_paper_budget_only():
    profiles = small_image_profiles(paper_epochs=120)
    assert profiles["paper"]["epochs"] == 120
    assert profiles["quick"]["epochs"] == small_image_profiles(7)["quick"]["epochs"]
    assert set(profiles) == {"paper", "quick"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out = {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    return out | {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}


def test_core_never_imports_a_plugins_private_module():
    """Contracts live in the core; a plugin's private modules are its own business."""
    offenders = [
        f"{p.relative_to(ROOT)}: {m}"
        for p in sorted((ROOT / "nlbench").rglob("*.py"))
        for m in _imports(p)
        if m.startswith("nlbench_plugins._")
    ]
    assert not offenders, offenders


def test_model_and_dataset_plugins_take_the_contract_from_the_public_api():
    """Built-in model and dataset plugins import contracts as a third party would."""
    paths = [*ROOT.glob("plugins/models_*.py"), *ROOT.glob("plugins/datasets_*.py")]
    defining = {
        "nlbench.training.model_contract",
        "nlbench.core.profiles",
    }  # import point: nlbench.api
    offenders = [f"{p.name}: {m}" for p in paths for m in _imports(p) & defining]
    assert not offenders, offenders
    assert not (ROOT / "plugins" / "_profiles.py").exists()
