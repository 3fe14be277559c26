"""The contract every model follows, for built-in and third-party model plugins alike.

A model is timm's shape of classifier: ``forward_features(x)`` gives the last feature map (or
vector), ``forward_head(f, pre_logits=True)`` the pooled penultimate features that
``get_classifier()`` maps to logits, and ``forward(x)`` is ``forward_head(forward_features(x))``.
``num_features`` is the channel width of ``forward_features``; ``head_hidden_size`` the width of
the pre-logits vector (as in timm). Methods rely on it: feature-space selection reads the
pre-logits vector, meta-learning methods find the classifier by ``get_classifier()``.

Plugin authors import these names from :mod:`nlbench.api`: :class:`ClassifierNet` (a base class
that fulfils the contract), :func:`check_classifier_contract` (the check a model's tests call)
and :func:`check_options` (the factory-option check every model factory starts with).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol, cast, runtime_checkable

import torch
import torch.nn.functional as F
from torch import nn

from nlbench.core.errors import UsageError

COMMON_OPTIONS = ("dropout", "pretrained")


@runtime_checkable
class TimmClassifier(Protocol):
    """What the runner and the methods call on a model (timm's classifier interface)."""

    num_features: int

    def forward_features(self, x: torch.Tensor) -> torch.Tensor: ...

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor: ...

    def get_classifier(self) -> nn.Module: ...


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
    """True inside ``with torch.device("meta")`` (``nlbench list`` counting parameters): a
    factory then skips work that needs real tensors, such as fetching pretrained weights."""
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


def _require(ok: bool, message: str) -> None:
    """An explicit AssertionError (``assert`` statements vanish under ``python -O``)."""
    if not ok:
        raise AssertionError(message)


def check_classifier_contract(net: nn.Module, x: torch.Tensor, num_classes: int) -> None:
    """Raise AssertionError naming the broken part unless ``net`` follows the contract on ``x``.

    Checks, in eval mode and without gradients: the three methods exist, ``num_features`` is
    a positive int, ``forward_head(f)`` and ``get_classifier()(forward_head(f, pre_logits=True))``
    both equal ``net(x)``, the pre-logits width is ``head_hidden_size`` (or ``num_features``)
    and the logits have ``num_classes`` columns. The model's train/eval mode is restored.
    """
    missing = [
        m for m in ("forward_features", "forward_head", "get_classifier") if not hasattr(net, m)
    ]
    _require(not missing, f"{type(net).__name__} lacks {', '.join(missing)} (timm's contract)")
    width = getattr(net, "num_features", None)
    _require(
        isinstance(width, int) and width > 0, f"num_features must be a positive int: {width!r}"
    )
    model = cast(TimmClassifier, net)
    was_training = net.training
    net.eval()
    try:
        with torch.no_grad():
            logits = net(x)
            pre = model.forward_head(model.forward_features(x), pre_logits=True)
            head = model.forward_head(model.forward_features(x))
            via_classifier = model.get_classifier()(pre)
    finally:
        net.train(was_training)
    hidden = getattr(net, "head_hidden_size", width)
    _require(
        logits.shape == (len(x), num_classes),
        f"logits {tuple(logits.shape)}, want {num_classes} classes",
    )
    _require(pre.shape == (len(x), hidden), f"pre-logits {tuple(pre.shape)}, want width {hidden}")
    _require(torch.allclose(head, logits, atol=1e-5), "forward_head(forward_features(x)) != net(x)")
    _require(
        torch.allclose(via_classifier, logits, atol=1e-5),
        "get_classifier()(forward_head(f, pre_logits=True)) != net(x)",
    )
