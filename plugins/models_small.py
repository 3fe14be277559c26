"""Small CPU-friendly networks.

``tiny_cnn`` is the digits default and the tests' model; ``cnn_small`` the CPU-profile CIFAR
net; ``mlp1x512``, ``alexnet_small`` and ``inception_small`` are the networks of Zhang et al.'s
"Understanding deep learning requires rethinking generalization" (ICLR 2017), whose parameter
counts at 28 px these reproduce: 1,209,866 / 1,387,786 exactly, and 1,651,114 against the
paper's 1,649,402 for Inception, whose TensorFlow batch norm has no learned scale.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import nn

from nlbench.api import ClassifierNet, ModelSpec, check_options, hookimpl
from nlbench_plugins._models_common import conv_bn


class TinyCNN(ClassifierNet):
    """Two 3×3 conv-BN-ReLU blocks, 4×4 average pooling, a linear head (timm contract).

    Pooling to 4×4 rather than 1×1 keeps enough capacity to memorise noisy labels, which is
    what a noisy-label benchmark must be able to show.
    """

    def __init__(
        self,
        num_classes: int = 10,
        in_chans: int = 3,
        width: int = 32,
        dropout: float = 0.0,
        **_: object,
    ):
        super().__init__(dropout)
        self.num_features = 2 * width * 16
        self.features = nn.Sequential(
            nn.Conv2d(in_chans, width, 3, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(),
            nn.Conv2d(width, 2 * width, 3, padding=1, bias=False),
            nn.BatchNorm2d(2 * width),
            nn.ReLU(),
        )
        self.fc = nn.Linear(self.num_features, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return cast(torch.Tensor, self.features(x))

    def pool(self, x: torch.Tensor) -> torch.Tensor:
        return F.adaptive_avg_pool2d(x, 4).flatten(1)


def tiny_cnn(num_classes: int, in_chans: int, image_size: int, **kw: Any) -> nn.Module:
    opts = check_options("tiny_cnn", kw, extra=("width",))
    opts.pop("pretrained", None)
    return TinyCNN(num_classes=num_classes, in_chans=in_chans, **opts)


class CnnSmall(ClassifierNet):
    """Four 3×3 conv-BN-ReLU layers (16, 32, 64, 256 channels) with 2×2 max-pools between.

    The CPU profiles' CIFAR network (174k parameters at 10 classes): the narrow layers run at
    high resolution and the wide one at 4×4, so a training step costs about 6 MFLOP per image
    and a 2-core CPU trains several hundred 32 px images a second.
    """

    def __init__(
        self,
        num_classes: int,
        in_chans: int,
        dropout: float = 0.0,
        widths: tuple[int, ...] = (16, 32, 64, 256),
    ) -> None:
        super().__init__(dropout)
        layers: list[nn.Module] = []
        for i, w in enumerate(widths):
            if i:
                layers.append(nn.MaxPool2d(2, ceil_mode=True))
            layers.append(conv_bn(widths[i - 1] if i else in_chans, w))
        self.features = nn.Sequential(*layers)
        self.num_features = widths[-1]
        self.fc = nn.Linear(widths[-1], num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return cast(torch.Tensor, self.features(x))


class MLP(ClassifierNet):
    """Zhang et al.'s MLP 1x512: flatten, one 512-unit ReLU layer, linear classifier."""

    def __init__(
        self,
        num_classes: int,
        in_chans: int,
        image_size: int,
        hidden: int = 512,
        dropout: float = 0.0,
    ) -> None:
        super().__init__(dropout)
        self.hidden = nn.Linear(in_chans * image_size * image_size, hidden)
        self.num_features = hidden
        self.fc = nn.Linear(hidden, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.hidden(x.flatten(1)))


class AlexNetSmall(ClassifierNet):
    """Zhang et al.'s small AlexNet: two (5×5 conv 64 → 3×3/2 max-pool → local response
    normalisation) modules, then 384- and 192-unit ReLU layers and a linear classifier.

    LRN follows the TensorFlow CIFAR-10 tutorial it comes from (depth radius 4, bias 1,
    alpha 0.001/9 per element, beta 0.75; PyTorch's ``alpha`` is per window, hence 0.001).
    """

    def __init__(
        self, num_classes: int, in_chans: int, image_size: int, dropout: float = 0.0
    ) -> None:
        super().__init__(dropout)

        def module(cin: int) -> list[nn.Module]:
            return [
                nn.Conv2d(cin, 64, 5, padding=2),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(3, 2, padding=1),
                nn.LocalResponseNorm(9, 0.001, 0.75, 1.0),
            ]

        self.features = nn.Sequential(*module(in_chans), *module(64))
        side = math.ceil(math.ceil(image_size / 2) / 2)  # after two "same" stride-2 pools
        self.num_features = 64
        self.mlp = nn.Sequential(
            nn.Linear(64 * side * side, 384),
            nn.ReLU(inplace=True),
            nn.Linear(384, 192),
            nn.ReLU(inplace=True),
        )
        self.fc = nn.Linear(192, num_classes)

    @property
    def head_hidden_size(self) -> int:
        return 192

    def pool(self, x: torch.Tensor) -> torch.Tensor:
        return cast(torch.Tensor, self.mlp(x.flatten(1)))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return cast(torch.Tensor, self.features(x))


class _Inception(nn.Module):
    """Zhang et al.'s Inception module: a 1×1 and a 3×3 conv module side by side."""

    def __init__(self, cin: int, c1: int, c3: int) -> None:
        super().__init__()
        self.b1, self.b3 = conv_bn(cin, c1, 1), conv_bn(cin, c3, 3)
        self.out = c1 + c3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.b1(x), self.b3(x)], 1)


class _Downsample(nn.Module):
    """Zhang et al.'s downsample module: a stride-2 3×3 conv module beside a 3×3/2 max-pool."""

    def __init__(self, cin: int, c3: int) -> None:
        super().__init__()
        self.conv = conv_bn(cin, c3, 3, stride=2)
        self.pool = nn.MaxPool2d(3, 2, padding=1)
        self.out = cin + c3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.conv(x), self.pool(x)], 1)


ZHANG = "Zhang et al., Understanding deep learning requires rethinking generalization, ICLR 2017"
INCEPTION_SMALL = (
    ("i", 32, 32),
    ("i", 32, 48),
    ("d", 80),
    ("i", 112, 48),
    ("i", 96, 64),
    ("i", 80, 80),
    ("i", 48, 96),
    ("d", 96),
    ("i", 176, 160),
    ("i", 176, 160),
)


class InceptionSmall(ClassifierNet):
    """Zhang et al.'s small Inception for CIFAR (their Fig. 3): a 96-channel 3×3 conv module,
    ten Inception/downsample modules, global mean pooling, a linear classifier."""

    def __init__(self, num_classes: int, in_chans: int, dropout: float = 0.0) -> None:
        super().__init__(dropout)
        mods: list[nn.Module] = [conv_bn(in_chans, 96, 3)]
        cin = 96
        for kind, *chans in INCEPTION_SMALL:
            block = _Inception(cin, *chans) if kind == "i" else _Downsample(cin, *chans)
            mods.append(block)
            cin = block.out
        self.features = nn.Sequential(*mods)
        self.num_features = cin
        self.fc = nn.Linear(cin, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return cast(torch.Tensor, self.features(x))


def cnn_small(num_classes: int, in_chans: int, image_size: int, **kw: Any) -> nn.Module:
    return CnnSmall(num_classes, in_chans, check_options("cnn_small", kw)["dropout"])


def mlp1x512(num_classes: int, in_chans: int, image_size: int, **kw: Any) -> nn.Module:
    return MLP(num_classes, in_chans, image_size, 512, check_options("mlp1x512", kw)["dropout"])


def alexnet_small(num_classes: int, in_chans: int, image_size: int, **kw: Any) -> nn.Module:
    opts = check_options("alexnet_small", kw)
    return AlexNetSmall(num_classes, in_chans, image_size, opts["dropout"])


def inception_small(num_classes: int, in_chans: int, image_size: int, **kw: Any) -> nn.Module:
    return InceptionSmall(num_classes, in_chans, check_options("inception_small", kw)["dropout"])


MODELS = (
    ("tiny_cnn", "2-conv 32/64-channel CNN (digits default, tests)", tiny_cnn, ""),
    (
        "cnn_small",
        "4-conv 16/32/64/256-channel CNN with BN for CPU profiles; 0.17M params",
        cnn_small,
        "",
    ),
    (
        "mlp1x512",
        "MLP with one 512-unit hidden layer (rethinking generalization); 1.2M at 28px",
        mlp1x512,
        ZHANG,
    ),
    (
        "alexnet_small",
        "small AlexNet: 2 conv-pool-LRN modules, FC 384-192 (rethinking generalization)",
        alexnet_small,
        ZHANG,
    ),
    (
        "inception_small",
        "small Inception for CIFAR (rethinking generalization); 1.65M params",
        inception_small,
        ZHANG,
    ),
)


@hookimpl
def register_models(register: Callable[[ModelSpec], None]) -> None:
    for name, description, factory, citation in MODELS:
        register(ModelSpec(name, description, factory, citation=citation))
