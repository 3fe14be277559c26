"""The papers' CIFAR architectures: PreAct ResNet-18, ResNet-32, WRN-28-10, ResNet-18, VGG-16-BN.

Parameter counts at 10 classes (3 channels, 32 px): ``preact_resnet18`` 11,171,274 (DivideMix,
FaMUS: their code's block, whose identity shortcuts add the pre-activated input), ``resnet32``
464,154 (MW-Net, option-A shortcuts), ``wrn28_10`` 36,479,194 (L2R, MW-Net), ``resnet18``
11,173,962 (timm's ResNet-18 with the small-image stem), ``vgg16_bn`` 14,728,266
(torchvision's VGG-16-BN features, one linear layer). Every convolution stack pools globally,
so any image size works; residual additions are out of place so meta-learners can
differentiate through a step (second-order gradients).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import nn

from nlbench.api import ClassifierNet, ModelSpec, check_options, hookimpl
from nlbench_plugins._models_common import kaiming_init


class PreActBlock(nn.Module):
    """BN-ReLU-conv ×2 plus a shortcut. A projecting shortcut (1×1 conv) reads the
    pre-activation ``relu(bn1(x))``; an identity one adds ``x`` itself (He et al.; WRN and
    MW-Net's code), or with ``preact_identity`` the pre-activation too (DivideMix's and FaMUS's
    ``PreActBlock``, whose PreAct ResNet-18 the papers' numbers come from)."""

    def __init__(
        self,
        cin: int,
        cout: int,
        stride: int = 1,
        dropout: float = 0.0,
        preact_identity: bool = False,
    ) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.dropout = dropout
        project = stride != 1 or cin != cout
        self.shortcut = nn.Conv2d(cin, cout, 1, stride, bias=False) if project else None
        self.preact_identity = preact_identity

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pre = F.relu(self.bn1(x))
        if self.shortcut is not None:
            skip = self.shortcut(pre)
        else:
            skip = pre if self.preact_identity else x
        out = F.relu(self.bn2(self.conv1(pre)))
        if self.dropout:  # WRN's dropout between the two convolutions (Zagoruyko & Komodakis)
            out = F.dropout(out, self.dropout, self.training)
        return cast(torch.Tensor, self.conv2(out) + skip)


def _stage(
    cin: int,
    cout: int,
    blocks: int,
    stride: int,
    dropout: float = 0.0,
    preact_identity: bool = False,
) -> nn.Sequential:
    return nn.Sequential(
        *[
            PreActBlock(
                cin if i == 0 else cout, cout, stride if i == 0 else 1, dropout, preact_identity
            )
            for i in range(blocks)
        ]
    )


class PreActResNet18(ClassifierNet):
    """PreAct ResNet-18 as DivideMix and FaMUS train it on CIFAR (He et al. 2016, "Identity
    mappings"): 3×3 stem conv-BN-ReLU, four stages of two pre-activation blocks (64-512),
    no final BN, global average pooling, linear classifier. As in their released code, identity
    shortcuts add the block's pre-activated input ``relu(bn1(x))``, not ``x`` (checked against
    that code by ``nlbench verify dividemix|famus``)."""

    def __init__(self, num_classes: int, in_chans: int, dropout: float = 0.0) -> None:
        super().__init__(dropout)
        self.stem = nn.Sequential(
            nn.Conv2d(in_chans, 64, 3, 1, 1, bias=False), nn.BatchNorm2d(64), nn.ReLU()
        )
        widths = (64, 128, 256, 512)
        self.stages = nn.Sequential(
            *[
                _stage(widths[max(i - 1, 0)], w, 2, 1 if i == 0 else 2, preact_identity=True)
                for i, w in enumerate(widths)
            ]
        )
        self.num_features = 512
        self.fc = nn.Linear(512, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return cast(torch.Tensor, self.stages(self.stem(x)))


class WideResNet(ClassifierNet):
    """WRN-d-k (Zagoruyko & Komodakis 2016): 16-channel stem, three stages of (d-4)/6
    pre-activation blocks of width 16k/32k/64k, dropout inside blocks, final BN-ReLU."""

    def __init__(
        self,
        num_classes: int,
        in_chans: int,
        depth: int = 28,
        widen: int = 10,
        dropout: float = 0.0,
    ) -> None:
        super().__init__(0.0)  # dropout lives inside the blocks, as in the paper
        n = (depth - 4) // 6
        widths = (16 * widen, 32 * widen, 64 * widen)
        self.stem = nn.Conv2d(in_chans, 16, 3, 1, 1, bias=False)
        self.stages = nn.Sequential(
            _stage(16, widths[0], n, 1, dropout),
            _stage(widths[0], widths[1], n, 2, dropout),
            _stage(widths[1], widths[2], n, 2, dropout),
        )
        self.norm = nn.BatchNorm2d(widths[2])
        self.num_features = widths[2]
        self.fc = nn.Linear(widths[2], num_classes)
        kaiming_init(self)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.norm(self.stages(self.stem(x))))


class BasicBlock(nn.Module):
    """Post-activation residual block with He et al.'s option-A shortcut: subsample and
    zero-pad the channels, so the CIFAR ResNets add no shortcut parameters."""

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.stride, self.pad = stride, cout - cin

    def shortcut(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride != 1:
            x = x[:, :, :: self.stride, :: self.stride]
        if self.pad:
            x = F.pad(x, (0, 0, 0, 0, self.pad // 2, self.pad - self.pad // 2))
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class CifarResNet(ClassifierNet):
    """ResNet-(6n+2) for CIFAR (He et al. 2016, Sec. 4.2): 16/32/64 channels, n blocks each;
    ResNet-32 (n = 5) is MW-Net's and the FL study's network."""

    def __init__(self, num_classes: int, in_chans: int, n: int = 5, dropout: float = 0.0):
        super().__init__(dropout)
        self.stem = nn.Sequential(
            nn.Conv2d(in_chans, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU()
        )
        layers, cin = [], 16
        for i, w in enumerate((16, 32, 64)):
            for j in range(n):
                layers.append(BasicBlock(cin, w, 2 if i > 0 and j == 0 else 1))
                cin = w
        self.stages = nn.Sequential(*layers)
        self.num_features = 64
        self.fc = nn.Linear(64, num_classes)
        kaiming_init(self, mode="fan_in")
        nn.init.kaiming_normal_(self.fc.weight)  # MW-Net initialises the classifier likewise

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return cast(torch.Tensor, self.stages(self.stem(x)))


class VGG(ClassifierNet):
    """VGG-16 with batch norm (torchvision's feature stack) and one linear classifier: the
    usual CIFAR variant, pooling made ``ceil_mode`` so 28 px inputs (FashionMNIST) fit."""

    def __init__(self, num_classes: int, in_chans: int, dropout: float = 0.0) -> None:
        from torchvision.models.vgg import cfgs, make_layers

        super().__init__(dropout)
        self.features = make_layers(cfgs["D"], batch_norm=True)
        first = self.features[0]
        if in_chans != first.in_channels:
            self.features[0] = nn.Conv2d(in_chans, first.out_channels, 3, padding=1)
        for m in self.features:
            if isinstance(m, nn.MaxPool2d):
                m.ceil_mode = True
        self.num_features = 512
        self.fc = nn.Linear(512, num_classes)
        kaiming_init(self)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return cast(torch.Tensor, self.features(x))


def preact_resnet18(num_classes: int, in_chans: int, image_size: int, **kw: Any) -> nn.Module:
    opts = check_options("preact_resnet18", kw)
    return PreActResNet18(num_classes, in_chans, opts["dropout"])


def resnet32(num_classes: int, in_chans: int, image_size: int, **kw: Any) -> nn.Module:
    opts = check_options("resnet32", kw)
    return CifarResNet(num_classes, in_chans, n=5, dropout=opts["dropout"])


def wrn28_10(num_classes: int, in_chans: int, image_size: int, **kw: Any) -> nn.Module:
    opts = check_options("wrn28_10", kw)
    return WideResNet(num_classes, in_chans, 28, 10, opts["dropout"])


def resnet18(num_classes: int, in_chans: int, image_size: int, **kw: Any) -> nn.Module:
    from nlbench_plugins.models_timm import create_timm

    opts = check_options("resnet18", kw, pretrained_ok=True)
    net: nn.Module = create_timm("resnet18", num_classes, in_chans, image_size, **opts)
    return net


def vgg16_bn(num_classes: int, in_chans: int, image_size: int, **kw: Any) -> nn.Module:
    opts = check_options("vgg16_bn", kw)
    return VGG(num_classes, in_chans, opts["dropout"])


MODELS = (
    (
        "preact_resnet18",
        "PreAct ResNet-18, CIFAR stem, DivideMix/FaMUS code's shortcuts; 11.2M params",
        preact_resnet18,
        "He et al., Identity Mappings in Deep Residual Networks, ECCV 2016",
    ),
    (
        "resnet32",
        "ResNet-32, option-A shortcuts (MW-Net, FL study); 0.46M params",
        resnet32,
        "He et al., Deep Residual Learning for Image Recognition, CVPR 2016",
    ),
    (
        "wrn28_10",
        "Wide ResNet-28-10, --set dropout=0.3 as in L2R/MW-Net; 36.5M params",
        wrn28_10,
        "Zagoruyko & Komodakis, Wide Residual Networks, BMVC 2016",
    ),
    (
        "resnet18",
        "ResNet-18 (timm) with a 3x3 stride-1 stem for small images; 11.2M params",
        resnet18,
        "He et al., Deep Residual Learning for Image Recognition, CVPR 2016",
    ),
    (
        "vgg16_bn",
        "VGG-16 with batch norm, one linear classifier (CIFAR variant); 14.7M params",
        vgg16_bn,
        "Simonyan & Zisserman, Very Deep Convolutional Networks, ICLR 2015",
    ),
)


@hookimpl
def register_models(register: Callable[[ModelSpec], None]) -> None:
    for name, description, factory, citation in MODELS:
        register(ModelSpec(name, description, factory, citation=citation))
