"""Small CPU-friendly networks: ``tiny_cnn`` (the digits default)."""

from __future__ import annotations

import torch
import torch.nn as nn

from nlbench import hookimpl
from nlbench.specs import ModelSpec


class TinyCNN(nn.Module):
    """Two 3×3 conv-BN-ReLU blocks, 4×4 average pooling, a linear head (timm contract).

    Pooling to 4×4 rather than 1×1 keeps enough capacity to memorise noisy labels, which is
    what a noisy-label benchmark must be able to show.
    """

    def __init__(self, num_classes: int = 10, in_chans: int = 3, width: int = 32, **_: object):
        super().__init__()
        self.num_features = 2 * width * 16
        self.features = nn.Sequential(
            nn.Conv2d(in_chans, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
            nn.Conv2d(width, 2 * width, 3, padding=1, bias=False), nn.BatchNorm2d(2 * width),
            nn.ReLU(),
        )  # fmt: skip
        self.fc = nn.Linear(self.num_features, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = torch.nn.functional.adaptive_avg_pool2d(x, 4).flatten(1)
        return x if pre_logits else self.fc(x)

    def get_classifier(self) -> nn.Module:
        return self.fc

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def tiny_cnn(num_classes: int, in_chans: int, image_size: int, **kwargs: object) -> TinyCNN:
    return TinyCNN(num_classes=num_classes, in_chans=in_chans, **kwargs)


@hookimpl
def register_models(register) -> None:
    register(ModelSpec("tiny_cnn", "2-conv 32/64-channel CNN (digits default, tests)", tiny_cnn))
