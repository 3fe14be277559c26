"""Any timm architecture (``--model timm:<name>``) and ``resnet50`` for Clothing1M.

timm models already follow nlbench's model contract (``forward_features``, ``forward_head``,
``get_classifier``). For inputs of at most 64 px the stem is adapted the way CIFAR networks are
built: the first strided convolution becomes 3×3 stride 1 (a 3×3 kernel keeps its weights, a
larger one is replaced) and the stem's max-pool is removed, so a 32 px image is not reduced to
8 px before the first stage. Patch-embedding stems (vision transformers) are left alone.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from torch import nn

from nlbench.api import ModelSpec, UsageError, check_options, hookimpl, on_meta_device

log = logging.getLogger(__name__)

SMALL_IMAGE = 64  # inputs up to this size get the CIFAR-style stem


def create_timm(
    name: str,
    num_classes: int,
    in_chans: int,
    image_size: int,
    dropout: float = 0.0,
    pretrained: bool = False,
) -> nn.Module:
    """Build timm model ``name``; small-image stem for ``image_size <= 64``.

    Raises:
        UsageError: unknown architecture, or pretrained weights that cannot be fetched.
    """
    import timm

    if not timm.is_model(name):
        close = timm.list_models(f"*{name}*")[:5]
        hint = f" Similar: {', '.join(close)}." if close else ""
        raise UsageError(f"unknown timm model '{name}'.{hint} See timm.list_models().")
    pretrained = bool(pretrained) and not on_meta_device()  # meta: shapes only, no weights
    if pretrained and not _weights_reachable(name):
        raise _no_weights(name, "Hugging Face Hub unreachable and no cached copy")
    try:
        net = timm.create_model(
            name,
            pretrained=pretrained,
            num_classes=num_classes,
            in_chans=in_chans,
            drop_rate=dropout,
        )
    except Exception as exc:  # hub/URL errors vary by version; weights are the usual cause
        if not pretrained:
            raise
        first_line = (str(exc).strip().splitlines() or [""])[0][:120]
        raise _no_weights(name, f"{type(exc).__name__}: {first_line}") from exc
    if image_size <= SMALL_IMAGE:
        small_image_stem(net)
    return net


def _no_weights(name: str, why: str) -> UsageError:
    return UsageError(
        f"could not fetch pretrained weights for timm model '{name}' ({why}); connect to the "
        "internet or pass --set pretrained=false to train from scratch."
    )


def _weights_reachable(name: str) -> bool:
    """False when the weights are neither cached nor downloadable (fail fast, not after the
    Hub client's minute of retries); True when unsure, letting timm try."""
    import socket
    from urllib.parse import urlparse

    try:
        from huggingface_hub import constants, try_to_load_from_cache
        from timm.models import get_pretrained_cfg

        hub_id = getattr(get_pretrained_cfg(name), "hf_hub_id", None)
    except ImportError:
        return True
    if not hub_id:
        return True
    files = ("model.safetensors", "pytorch_model.bin", "open_clip_pytorch_model.bin")
    if any(isinstance(try_to_load_from_cache(hub_id, f), str) for f in files):
        return True
    try:
        socket.getaddrinfo(urlparse(constants.ENDPOINT).hostname or "huggingface.co", 443)
    except OSError:
        return False
    return True


def small_image_stem(net: nn.Module) -> nn.Module:
    """Make a timm CNN's stem 3×3 stride 1 without max-pool (in place); return ``net``."""
    first = (getattr(net, "pretrained_cfg", None) or {}).get("first_conv")
    if isinstance(first, (list, tuple)):
        first = first[0]
    if not first or hasattr(net, "pos_embed"):
        log.info("%s: no convolutional stem to adapt", type(net).__name__)
        return net
    conv = net.get_submodule(first)
    if not isinstance(conv, nn.Conv2d) or max(conv.stride) == 1:
        return net
    if max(conv.kernel_size) <= 3:
        conv.stride, conv.padding = (1, 1), (conv.kernel_size[0] // 2, conv.kernel_size[1] // 2)
    else:
        new = nn.Conv2d(conv.in_channels, conv.out_channels, 3, 1, 1, bias=conv.bias is not None)
        nn.init.kaiming_normal_(new.weight, mode="fan_out", nonlinearity="relu")
        net.set_submodule(first, new.to(conv.weight.device, conv.weight.dtype))
    for pool_name in _stem_pools(net):
        net.set_submodule(pool_name, nn.Identity())
    return net


def _stem_pools(net: nn.Module) -> list[str]:
    """Names of the max-pools that run before the first stage (the stem's), in order.

    The first stage is the module of the first ``feature_info`` entry with reduction ≥ 4;
    modules are registered in execution order in timm's CNNs.
    """
    info = getattr(net, "feature_info", None) or []
    if not isinstance(info, list):
        info = []
    stage = next((f["module"] for f in info if f.get("reduction", 0) >= 4), None)
    pools = []
    for name, module in net.named_modules():
        if stage is not None and (name == stage or name.startswith(stage + ".")):
            break
        if isinstance(module, nn.MaxPool2d):
            pools.append(name)
    return pools if stage is not None else [p for p in pools if p.split(".")[-1] == "maxpool"]


def timm_model(num_classes: int, in_chans: int, image_size: int, **kw: Any) -> nn.Module:
    """The ``timm:<name>`` bridge: ``timm_name`` picks the architecture."""
    opts = check_options("timm", kw, extra=("timm_name",), pretrained_ok=True)
    name = opts.pop("timm_name", None)
    if not name:
        raise UsageError("the timm bridge needs an architecture: --model timm:<name>")
    return create_timm(name, num_classes, in_chans, image_size, **opts)


def resnet50(num_classes: int, in_chans: int, image_size: int, **kw: Any) -> nn.Module:
    """ResNet-50 with ImageNet weights unless ``pretrained=false`` (the Clothing1M setting)."""
    opts = check_options("resnet50", kw, pretrained_ok=True)
    if opts.get("pretrained") is None:
        opts["pretrained"] = True
    return create_timm("resnet50", num_classes, in_chans, image_size, **opts)


@hookimpl
def register_models(register: Callable[[ModelSpec], None]) -> None:
    register(
        ModelSpec(
            "timm",
            "any timm architecture: --model timm:<name> (small-image stem at <= 64 px)",
            timm_model,
            citation="Wightman, PyTorch Image Models (timm), 2019",
        )
    )
    register(
        ModelSpec(
            "resnet50",
            "ResNet-50 (timm), ImageNet weights unless --set pretrained=false "
            "(Clothing1M); 23.5M params",
            resnet50,
            citation="He et al., Deep Residual Learning for Image Recognition, CVPR 2016",
        )
    )
