"""Building registered networks, and the feature/logit contract every model follows.

Models follow timm's contract: ``forward_features(x)``, ``forward_head(f, pre_logits=False)``
and ``get_classifier()``. ``timm:<name>`` resolves through the ``timm`` model entry.
"""

from __future__ import annotations

from typing import Any, cast

import torch
from torch import nn

from nlbench.core.registry import Registry
from nlbench.training.model_contract import TimmClassifier


def resolve_model_spec(registry: Registry, name: str) -> tuple[Any, dict[str, Any]]:
    """(spec, extra kwargs) for a model name, handling the ``timm:<arch>`` bridge."""
    if name.startswith("timm:"):
        return registry.get("timm"), {"timm_name": name.split(":", 1)[1]}
    return registry.get(name), {}


def build_model(
    registry: Registry, name: str, num_classes: int, in_chans: int, image_size: int, **kwargs: Any
) -> nn.Module:
    """Instantiate a registered model; ``None``-valued kwargs are dropped."""
    spec, extra = resolve_model_spec(registry, name)
    kwargs = {k: v for k, v in {**kwargs, **extra}.items() if v is not None}
    net: nn.Module = spec.factory(
        num_classes=num_classes, in_chans=in_chans, image_size=image_size, **kwargs
    )
    return net


def features_and_logits(net: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Penultimate (pooled) features and logits in one forward pass."""
    model = cast(TimmClassifier, getattr(net, "module", net))  # DDP wrapper → the model inside
    pre = model.forward_head(model.forward_features(x), pre_logits=True)
    return pre, model.get_classifier()(pre)


def count_params(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())
