"""Layer helpers two built-in model plugins share (``models_small``, ``models_cifar``).

Not a plugin (no entry point) and not a contract: the model contract, ``ClassifierNet`` and
``check_options`` are public in :mod:`nlbench.api` (defined in
:mod:`nlbench.training.model_contract`).
"""

from __future__ import annotations

from typing import Literal

from torch import nn


def conv_bn(cin: int, cout: int, kernel: int = 3, stride: int = 1) -> nn.Sequential:
    """Conv (no bias, "same" padding) → BatchNorm → ReLU: the unit most small nets repeat."""
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, stride, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


def kaiming_init(net: nn.Module, mode: Literal["fan_in", "fan_out"] = "fan_out") -> nn.Module:
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
