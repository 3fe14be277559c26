"""Model zoo: published parameter counts, the timm head contract, and the timm bridge.

Shape and contract tests are parametrized over the models registry, so a newly registered
model is tested without editing this file (add an entry to ``EXTRA_KWARGS`` if its factory
needs more than the common options).
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import nn

from nlbench.api import check_classifier_contract
from nlbench.core.errors import UsageError
from nlbench.host.plugins import get_host
from nlbench.training.models import build_model, count_params, features_and_logits

REGISTRY = get_host().registry("models")
NAMES = REGISTRY.names()
EXTRA_KWARGS = {"timm": {"timm_name": "resnet10t"}}  # the bridge needs an architecture
SIZE: dict[str, int] = {}  # models that need larger inputs than 8 px would be listed here
CLASSES = 7  # deliberately not 10: heads must follow num_classes


def make(name: str, in_chans: int = 3, image_size: int = 8, num_classes: int = CLASSES, **kw):
    kw = {"pretrained": False, **EXTRA_KWARGS.get(name, {}), **kw}
    return REGISTRY.get(name).factory(
        num_classes=num_classes, in_chans=in_chans, image_size=image_size, **kw
    )


def batch(in_chans: int, size: int, n: int = 2) -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    return torch.randn(n, in_chans, size, size, generator=gen)


@pytest.mark.parametrize(
    ("name", "published"),
    [
        ("preact_resnet18", 11.17e6),
        ("resnet32", 0.46e6),
        ("wrn28_10", 36.5e6),
        ("resnet18", 11.17e6),
    ],
)
def test_parameter_counts_match_published(name, published):
    with torch.device("meta"):
        net = make(name, num_classes=10, image_size=32)
    assert abs(count_params(net) - published) / published < 0.01


@pytest.mark.parametrize(("name", "exact"), [("mlp1x512", 1_209_866), ("alexnet_small", 1_387_786)])
def test_rethinking_generalization_nets_match_paper_at_28px(name, exact):
    """Zhang et al. (2017), Table 1, CIFAR-10 cropped to 28 px."""
    assert count_params(make(name, num_classes=10, image_size=28)) == exact


@pytest.mark.parametrize("in_chans", [1, 3])
@pytest.mark.parametrize("name", NAMES)
def test_forward_backward_shapes(name, in_chans):
    size = SIZE.get(name, 8)
    net = make(name, in_chans=in_chans, image_size=size).train()
    logits = net(batch(in_chans, size))
    assert logits.shape == (2, CLASSES)
    logits.logsumexp(1).mean().backward()
    grads = [p.grad for p in net.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert net.get_classifier().weight.grad.abs().sum() > 0


@pytest.mark.parametrize("name", NAMES)
def test_head_contract(name):
    size = SIZE.get(name, 8)
    net = make(name, image_size=size).eval()
    x = batch(3, size, n=3)
    with torch.no_grad():
        logits = net(x)
        feats = net.forward_features(x)
        pre = net.forward_head(feats, pre_logits=True)
        assert torch.allclose(net.forward_head(feats), logits, atol=1e-5)
        assert torch.allclose(net.get_classifier()(pre), logits, atol=1e-5)
        assert pre.shape == (3, getattr(net, "head_hidden_size", net.num_features))
        f2, l2 = features_and_logits(net, x)
    check_classifier_contract(net, x, num_classes=CLASSES)
    assert isinstance(net.num_features, int) and net.num_features > 0
    assert torch.allclose(f2, pre) and torch.allclose(l2, logits, atol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_channels_last_gives_the_same_logits(name):
    size = SIZE.get(name, 8)
    net = make(name, image_size=size).eval()
    x = batch(3, size)
    with torch.no_grad():
        plain = net(x)
        net = net.to(memory_format=torch.channels_last)
        last = net(x.contiguous(memory_format=torch.channels_last))
    assert torch.allclose(plain, last, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("name", NAMES)
def test_unknown_option_is_a_usage_error(name):
    with pytest.raises(UsageError, match="widht"):
        make(name, widht=3)
    with pytest.raises(UsageError, match="dropout"):
        make(name, dropout=1.5)


TIMM_BASED = {"resnet18"} | {
    n for n in NAMES if REGISTRY.get(n).factory.__module__ == "nlbench_plugins.models_timm"
}


@pytest.mark.parametrize("name", sorted(set(NAMES) - TIMM_BASED))
def test_models_without_weights_refuse_pretrained(name):
    with pytest.raises(UsageError, match="pretrained=false"):
        make(name, pretrained=True)


@pytest.mark.parametrize("name", ["wrn28_10", "preact_resnet18", "cnn_small"])
def test_dropout_is_used_in_training_only(name):
    net = make(name, dropout=0.5)
    x = batch(3, 8)
    net.train()
    assert not torch.allclose(net(x), net(x))
    net.eval()
    assert torch.allclose(net(x), net(x))


def test_resnet32_supports_second_order_gradients():
    """MW-Net/L2R differentiate through a virtual SGD step of the model."""
    net = make("resnet32")
    params = dict(net.named_parameters())
    x, y = batch(3, 8), torch.tensor([0, 1])
    loss = nn.functional.cross_entropy(torch.func.functional_call(net, params, (x,)), y)
    grads = torch.autograd.grad(loss, list(params.values()), create_graph=True)
    fast = {k: p - 0.1 * g for (k, p), g in zip(params.items(), grads, strict=True)}
    meta = torch.func.functional_call(net, fast, (x,)).sum()
    (second,) = torch.autograd.grad(meta, [params["fc.weight"]])
    assert torch.isfinite(second).all()


def test_timm_bridge_small_image_stem():
    net: Any = build_model(REGISTRY, "timm:resnet18", 10, 3, 32)  # timm layers, by name
    assert net.conv1.kernel_size == (3, 3) and net.conv1.stride == (1, 1)
    assert isinstance(net.maxpool, nn.Identity)
    assert net.forward_features(batch(3, 32)).shape[-1] == 4  # 32 px / 8, not / 32
    assert count_params(net) == count_params(make("resnet18", num_classes=10, image_size=32))


def test_timm_bridge_keeps_imagenet_stem_for_large_images():
    with torch.device("meta"):
        net = build_model(REGISTRY, "timm:resnet18", 10, 3, 224)
    assert net.conv1.stride == (2, 2) and isinstance(net.maxpool, nn.MaxPool2d)


def test_timm_bridge_other_architectures():
    with torch.device("meta"):
        eff = build_model(REGISTRY, "timm:efficientnet_b0", 10, 1, 32)
        dense: Any = build_model(REGISTRY, "timm:densenet121", 10, 3, 32)
    assert eff.conv_stem.stride == (1, 1) and eff.conv_stem.in_channels == 1
    assert dense.features.conv0.stride == (1, 1)
    assert isinstance(dense.features.pool0, nn.Identity)
    net = build_model(REGISTRY, "timm:mobilenetv3_small_050", 5, 3, 16)
    assert net(batch(3, 16)).shape == (2, 5)


def test_timm_bridge_errors():
    with pytest.raises(UsageError, match="unknown timm model"):
        build_model(REGISTRY, "timm:resnet_nonexistent", 10, 3, 32)
    with pytest.raises(UsageError, match="timm:<name>"):
        REGISTRY.get("timm").factory(num_classes=10, in_chans=3, image_size=32)


def test_resnet50_offline_asks_for_pretrained_false(monkeypatch):
    from nlbench_plugins import models_timm

    monkeypatch.setattr(models_timm, "_weights_reachable", lambda name: False)
    with pytest.raises(UsageError, match="--set pretrained=false"):
        make("resnet50", num_classes=14, image_size=224, pretrained=None)


def test_pretrained_fetch_failure_becomes_usage_error(monkeypatch):
    import timm

    from nlbench_plugins import models_timm

    def offline(*args, **kwargs):
        if kwargs.get("pretrained"):
            raise OSError("Name or service not known")
        return real(*args, **kwargs)

    real = timm.create_model
    monkeypatch.setattr(models_timm, "_weights_reachable", lambda name: True)
    monkeypatch.setattr(timm, "create_model", offline)
    with pytest.raises(UsageError, match="OSError: Name or service not known"):
        make("resnet50", num_classes=14, image_size=224, pretrained=True)
    assert make("resnet50", num_classes=14, image_size=224).fc.out_features == 14


def test_list_models_counts_params_on_meta_device(monkeypatch):
    from nlbench.commands.list import listing
    from nlbench_plugins import models_timm

    monkeypatch.setattr(models_timm, "_weights_reachable", lambda name: pytest.fail("network"))
    rows = {r["name"]: r["params"] for r in listing(["models"])["models"]}
    assert rows.pop("timm") is None  # the bridge needs an architecture name
    assert all(isinstance(p, int) and p > 0 for p in rows.values()), rows
    assert rows["resnet32"] == 464_154 and rows["wrn28_10"] == 36_479_194


def _bn(x: torch.Tensor, state: dict, prefix: str, train: bool) -> torch.Tensor:
    """Batch norm written out: per channel, (x − mean) / sqrt(var + 1e-5) · γ + β, with the
    batch's mean and biased variance in training, the running ones in evaluation."""
    if train:
        mean = x.mean(dim=(0, 2, 3))
        var = (x - mean.view(1, -1, 1, 1)).pow(2).mean(dim=(0, 2, 3))
    else:
        mean, var = state[f"{prefix}.running_mean"], state[f"{prefix}.running_var"]
    scale = state[f"{prefix}.weight"] / torch.sqrt(var + 1e-5)
    return (x - mean.view(1, -1, 1, 1)) * scale.view(1, -1, 1, 1) + state[f"{prefix}.bias"].view(
        1, -1, 1, 1
    )


def _released_preact_block(x, state, prefix, stride, train, preact_identity=True):
    """The block of DivideMix's ``PreResNet.py`` and FaMUS's ``preresnet.py``, from their
    definition: ``a = relu(bn1(x))``, ``out = conv2(relu(bn2(conv1(a)))) + shortcut(a)``, the
    shortcut a 1×1 convolution when the shape changes and the identity otherwise, so an
    identity block adds ``a``. ``preact_identity=False``: He et al.'s and MW-Net's WRN block,
    whose identity shortcut adds ``x``."""
    a = torch.relu(_bn(x, state, f"{prefix}.bn1", train))
    h = nn.functional.conv2d(a, state[f"{prefix}.conv1.weight"], stride=stride, padding=1)
    h = torch.relu(_bn(h, state, f"{prefix}.bn2", train))
    h = nn.functional.conv2d(h, state[f"{prefix}.conv2.weight"], padding=1)
    if f"{prefix}.shortcut.weight" in state:
        return h + nn.functional.conv2d(a, state[f"{prefix}.shortcut.weight"], stride=stride)
    return h + (a if preact_identity else x)


def _randomise_batch_norms(net: nn.Module) -> None:
    """γ, β and running statistics away from their initial 1/0, so that no term vanishes."""
    gen = torch.Generator().manual_seed(3)
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            c = m.num_features
            m.weight.data = 0.5 + torch.rand(c, generator=gen, dtype=m.weight.dtype)
            m.bias.data = 0.3 * torch.randn(c, generator=gen, dtype=m.bias.dtype)
            assert m.running_mean is not None and m.running_var is not None
            m.running_mean.copy_(0.2 * torch.randn(c, generator=gen))
            m.running_var.copy_(0.5 + torch.rand(c, generator=gen))


@pytest.mark.parametrize("train", [True, False])
@pytest.mark.parametrize(("cin", "stride"), [(4, 1), (3, 2)])  # identity, projection
@pytest.mark.parametrize("preact_identity", [True, False])
def test_preact_block_matches_its_definition(preact_identity, cin, stride, train):
    from nlbench_plugins.models_cifar import PreActBlock

    torch.manual_seed(0)
    block = PreActBlock(cin, 4, stride, preact_identity=preact_identity).double()
    _randomise_batch_norms(block)
    block.train(train)
    x = torch.randn(3, cin, 6, 6, dtype=torch.float64)
    state = {f"block.{k}": v for k, v in block.state_dict().items()}
    with torch.no_grad():
        want = _released_preact_block(x, state, "block", stride, train, preact_identity)
        got = block(x)
    assert torch.allclose(got, want, rtol=1e-12, atol=1e-12)
    if cin == 4:  # the two identity shortcuts differ by relu(bn1(x)) − x
        other = PreActBlock(cin, 4, stride, preact_identity=not preact_identity).double()
        other.load_state_dict(block.state_dict())
        other.train(train)
        with torch.no_grad():
            pre = torch.relu(_bn(x, state, "block.bn1", train))
        sign = 1 if preact_identity else -1
        assert torch.allclose(got - other(x).detach(), sign * (pre - x), atol=1e-12)


def _released_preact_resnet18(x: torch.Tensor, state: dict, train: bool) -> torch.Tensor:
    """DivideMix's ``ResNet18`` / FaMUS's ``PreActResNet18`` forward from their definition:
    conv3×3-BN-ReLU, four stages of two blocks (64-512, the first block of stages 2-4 with
    stride 2), 4×4 average pooling (the whole 4×4 map at 32 px), linear layer."""
    h = nn.functional.conv2d(x, state["stem.0.weight"], padding=1)
    h = torch.relu(_bn(h, state, "stem.1", train))
    for s in range(4):
        for b in range(2):
            stride = 2 if s > 0 and b == 0 else 1
            h = _released_preact_block(h, state, f"stages.{s}.{b}", stride, train)
    h = nn.functional.avg_pool2d(h, 4).flatten(1)
    return nn.functional.linear(h, state["fc.weight"], state["fc.bias"])


@pytest.mark.parametrize("train", [True, False])
def test_preact_resnet18_is_the_released_dividemix_famus_network(train):
    """Logits at 32 px, float64, equal the released code's network at the same weights."""
    torch.manual_seed(0)
    net = make("preact_resnet18", num_classes=10, image_size=32).double()
    _randomise_batch_norms(net)
    net.train(train)
    x = torch.randn(3, 3, 32, 32, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        want = _released_preact_resnet18(x, net.state_dict(), train)
        got = net(x)
    assert want.abs().max() > 0.1  # not a comparison of vanishing logits
    assert torch.allclose(got, want, rtol=1e-10, atol=1e-10)
