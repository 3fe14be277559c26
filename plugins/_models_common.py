"""What the built-in model plugins share: the timm head contract and factory-option checks.

Not a plugin (no entry point): ``models_small``, ``models_cifar`` and ``models_timm`` import it.
Every model follows timm's contract: ``forward_features(x)`` gives the last feature map (or
vector), ``forward_head(f, pre_logits=True)`` the pooled penultimate features that
``get_classifier()`` maps to logits. ``num_features`` is the channel width of
``forward_features``; ``head_hidden_size`` the width of the pre-logits vector (as in timm).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from nlbench.errors import UsageError

COMMON_OPTIONS = ("dropout", "pretrained")


def check_options(
    model: str,
    kwargs: dict[str, Any],
    extra: Iterable[str] = (),
    pretrained_ok: bool = False,
) -> dict[str, Any]:
    """Validate a factory's keyword options; return them with ``dropout`` as a float.

    A typo in ``--set`` must not surface as a TypeError deep in a constructor, so unknown
    keys are a one-line usage error naming what is accepted. Models without published
    weights refuse ``pretrained=True`` rather than silently training from scratch.
    """
    accepted = (*COMMON_OPTIONS, *extra)
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise UsageError(
            f"model '{model}' got unknown option(s) {', '.join(unknown)}. "
            f"Accepted: {', '.join(sorted(accepted))}."
        )
    out = dict(kwargs)
    dropout = out.get("dropout") or 0.0
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
        raise UsageError(f"model '{model}': dropout must be a number in [0, 1), got {dropout!r}")
    out["dropout"] = float(dropout)
    if out.get("pretrained") and not pretrained_ok:
        raise UsageError(
            f"model '{model}' has no pretrained weights; pass --set pretrained=false "
            "or use a timm model (--model timm:<name>)."
        )
    return out


def on_meta_device() -> bool:
    """True inside ``with torch.device("meta")`` (``nlbench list`` counting parameters)."""
    return torch.empty(()).device.type == "meta"


class ClassifierNet(nn.Module):
    """Base class: a feature extractor, global average pooling, dropout, a linear classifier.

    Subclasses set ``self.fc`` and ``self.num_features`` and define ``forward_features``;
    ``head_hidden_size`` defaults to ``num_features``. Dropout sits before the classifier,
    which is where timm's ``drop_rate`` puts it.
    """

    def __init__(self, dropout: float = 0.0) -> None:
        super().__init__()
        self.drop_rate = float(dropout)
        self.fc: nn.Module = nn.Identity()
        self.num_features = 0

    @property
    def head_hidden_size(self) -> int:
        return self.num_features

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def pool(self, x: torch.Tensor) -> torch.Tensor:
        """Feature map → pre-logits vector (global average pooling)."""
        return x.mean((2, 3)) if x.ndim == 4 else x

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.pool(x)
        if self.drop_rate:
            x = F.dropout(x, self.drop_rate, self.training)
        return x if pre_logits else self.fc(x)

    def get_classifier(self) -> nn.Module:
        return self.fc

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def conv_bn(cin: int, cout: int, kernel: int = 3, stride: int = 1) -> nn.Sequential:
    """Conv (no bias, "same" padding) → BatchNorm → ReLU: the unit most small nets repeat."""
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, stride, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


def kaiming_init(net: nn.Module, mode: str = "fan_out") -> nn.Module:
    """He-normal conv weights, unit BN scale, zero biases: the CIFAR ResNets' initialisation."""
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode=mode, nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear) and m.bias is not None:
            nn.init.zeros_(m.bias)
    return net
