"""MW-Net against xjtushujun/meta-weight-net: ``MW-Net.py`` and ``train_WRN-28-10_Meta_PGC.py``.

``MW-Net.py``'s ``train()`` (ResNet-32, weights ``w·ℓ / B``, meta-net Adam 1e-3 wd 1e-4, SGD
without Nesterov) runs on given loaders; the WRN script's ``main()`` runs ``--iters`` iterations
on a WRN-10-1 (the script's own ``build_model`` at ``--layers 10 --widen-factor 1``; weights
normalised to sum one, meta-net SGD 1e-3 Nesterov wd 5e-4) and is stopped where it starts
plotting. nlbench's ``mwnet`` learner steps its network (the registered ``resnet32``; a
WRN-10-1 of its ``WideResNet``) and its meta-net, both loaded with the official initial weights,
on the same training and meta batches. Compared: the meta loss, the mean weight of the actual
step, the network's and the meta-net's updated weights, the batch-norm statistics; and the
official networks' logits against nlbench's at the same weights.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import io
import types
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from nlbench.host.plugins import get_host
from nlbench.training.models import build_model
from nlbench.verify import official
from nlbench.verify.ours import build_method, classifier_last, copy_into, running_stats
from nlbench.verify.report import Check, compare, compare_tensors
from nlbench.verify.shims import Loader, Recorder, Stream
from nlbench_plugins.models_cifar import WideResNet

REPO = "xjtushujun/meta-weight-net"
SCRIPT, WRN_SCRIPT = "MW-Net.py", "train_WRN-28-10_Meta_PGC.py"
FILES = (SCRIPT, WRN_SCRIPT, "resnet.py", "wideresnet.py")
COMPARED = (
    "{steps} step(s) (virtual step, meta-net update, actual step) of MW-Net.py's train() on "
    "ResNet-32 and of the WRN script's main() on WRN-10-1, batch {bs} + meta batch {bs}, "
    "10 classes, 32 px, {dtype} on the CPU"
)
NUM_CLASSES, LR = 10, 0.1

# nlbench's hparams for each official script (its own arguments and optimisers)
SCRIPT_HP = {
    SCRIPT: {
        "weight_norm": "mean",
        "meta_opt": "adam",
        "meta_lr": 1e-3,
        "meta_wd": 1e-4,
        "nesterov": False,
    },
    WRN_SCRIPT: {
        "weight_norm": "sum",
        "meta_opt": "sgd",
        "meta_lr": 1e-3,
        "meta_wd": 5e-4,
        "nesterov": True,
    },
}


class _MetaStream:
    """nlbench's meta batches, in the order the official loader yields them."""

    def __init__(self, batches: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
        self.batches = list(batches)

    def draw(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.batches.pop(0)


class _Plotting(Exception):
    """The WRN script's main() reached its plots: training is over."""


class _NoPlots:
    def subplots(self, *args: Any, **kwargs: Any) -> Any:
        raise _Plotting


def _batches(steps: int, bs: int, seed: int) -> tuple[list[Any], list[Any]]:
    g = torch.Generator().manual_seed(seed)

    def draw() -> tuple[torch.Tensor, torch.Tensor]:
        return (
            torch.randn(bs, 3, 32, 32, generator=g),
            torch.randint(0, NUM_CLASSES, (bs,), generator=g),
        )

    return [draw() for _ in range(steps)], [draw() for _ in range(steps)]


def _ours(script: str, net: Any, vnet: Any, bs: int, meta: list[Any]) -> Any:
    """nlbench's mwnet learner on ``net``, its meta-net loaded from the official ``vnet``."""
    overrides = {
        **SCRIPT_HP[script],
        "lr": LR,
        "momentum": 0.9,
        "weight_decay": 5e-4,
        "batch_size": bs,
        "meta_batch_size": bs,
        "meta_hidden": 100,
        "amp": False,
    }
    method, _ = build_method("mwnet", overrides, [net], NUM_CLASSES)
    learner = method.learners["net"]
    copy_into(vnet.params(), learner.vnet.parameters(), "meta-net weights")
    learner.meta = _MetaStream(meta)
    return learner


def _pair(official_net: Any, ours: Any) -> Any:
    """Copy the official (MetaModule) network's weights and statistics into nlbench's."""
    copy_into(official_net.params(), [p for _, p in classifier_last(ours)], "network weights")
    copy_into(running_stats(official_net), running_stats(ours), "batch-norm statistics")
    return ours


def _recorders(ns: dict[str, Any], vnet: Any) -> tuple[Recorder, list[torch.Tensor]]:
    """``F.cross_entropy`` calls of the official code, and the meta-net's outputs."""
    ce = Recorder(F.cross_entropy)
    ns["F"] = official.Proxy(F, cross_entropy=ce)
    outputs: list[torch.Tensor] = []
    vnet.register_forward_hook(lambda m, i, o: outputs.append(o.detach().clone()))
    return ce, outputs


def _compare_step(
    name: str, theirs: tuple[Any, Any], ours: tuple[Any, Any], rec: tuple[Any, Any], mine: list
) -> Check:
    """Per step the official code calls cross_entropy 3× (virtual, meta, actual) and the
    meta-net twice (virtual, actual weights)."""
    (model, vnet), (net, learner), (ce, vout) = theirs, ours, rec
    meta_loss = torch.stack([c.detach() for c in ce.calls[1::3]])
    weight_mean = torch.stack([o.mean() for o in vout[1::2]])
    return Check(
        name,
        [
            compare("meta loss", meta_loss, torch.stack([m["meta_loss"] for m in mine])),
            compare("mean weight", weight_mean, torch.stack([m["weight_mean"] for m in mine])),
            compare_tensors(
                "network weights", model.params(), [p for _, p in classifier_last(net)]
            ),
            compare_tensors("BN statistics", running_stats(model), running_stats(net)),
            compare_tensors("meta-net weights", vnet.params(), learner.vnet.parameters()),
            compare_tensors(  # Adam's first step moves by ±lr whatever the gradient: see it
                "meta-net gradient (last step)",
                [p.grad for p in vnet.params()],
                [p.grad for p in learner.vnet.parameters()],
            ),
        ],
    )


def _network_check(name: str, theirs: Any, ours: Any, x: torch.Tensor) -> Check:
    """Logits of both networks at the same weights, in train mode (batch statistics: random
    initial weights with fresh running statistics give eval logits in the hundreds); on copies,
    so no statistic moves."""
    with torch.no_grad():
        q = compare("logits (train mode)", copy.deepcopy(theirs)(x), copy.deepcopy(ours)(x))
    return Check(name, [q])


def _quiet() -> Any:
    return contextlib.redirect_stdout(io.StringIO())


def _registered(name: str) -> Any:
    return build_model(get_host().registry("models"), name, NUM_CLASSES, 3, 32)


def verify_stable(root: Path, steps: int, bs: int, seed: int) -> list[Check]:
    """``MW-Net.py``: its ``train()`` for one pass over ``steps`` given batches."""
    args = argparse.Namespace(dataset="cifar10", lr=LR)
    glob = {"args": args, "device": torch.device("cpu")}
    ns = official.load_script(root, SCRIPT, ("train", "build_model", "accuracy"), glob, REPO)
    torch.manual_seed(seed)
    with official.on_cpu():
        model, vnet = ns["build_model"](), ns["VNet"](1, 100, 1)
    net = _pair(model, _registered("resnet32"))
    train, meta = _batches(steps, bs, seed)
    net_check = _network_check("network: official ResNet32 vs resnet32", model, net, train[0][0])
    learner = _ours(SCRIPT, net, vnet, bs, meta)
    mine = [learner.step(x, y) for x, y in train]
    opt_m = torch.optim.SGD(model.params(), LR, momentum=0.9, weight_decay=5e-4)
    opt_v = torch.optim.Adam(vnet.params(), 1e-3, weight_decay=1e-4)
    rec = _recorders(ns, vnet)
    with official.on_cpu(), _quiet():
        ns["train"](Loader(train, bs), Loader(meta, bs), model, vnet, opt_m, opt_v, 0)
    step = _compare_step(
        f"{SCRIPT} train(): {steps} step(s)", (model, vnet), (net, learner), rec, mine
    )
    return [net_check, step]


def verify_wrn(root: Path, steps: int, bs: int, seed: int) -> list[Check]:
    """The WRN script's ``main()`` for ``steps`` iterations on WRN-10-1 (stopped at its plots)."""
    args = argparse.Namespace(
        dataset="cifar10",
        lr=LR,
        momentum=0.9,
        nesterov=True,
        weight_decay=5e-4,
        layers=10,
        widen_factor=1,
        droprate=0.0,
        iters=steps,
        batch_size=bs,
    )
    train, meta = _batches(steps, bs, seed)
    stubs = {
        "args": args,  # build_model reads it before main() parses the (stub) arguments
        "parser": types.SimpleNamespace(parse_args=lambda: args),
        "build_dataset": lambda: (Stream(train, bs), Stream(meta, bs), []),
        "plt": _NoPlots(),
        "cudnn": types.SimpleNamespace(benchmark=False),
    }
    names = ("main", "build_model", "to_var", "adjust_learning_rate", "accuracy", "AverageMeter")
    ns = official.load_script(root, WRN_SCRIPT, names, stubs, REPO)
    torch.manual_seed(seed)
    with official.on_cpu():
        model, vnet = ns["build_model"](), ns["VNet"](1, 100, 1)
    net = _pair(model, WideResNet(NUM_CLASSES, 3, depth=10, widen=1))
    net_check = _network_check(
        "network: official WideResNet vs nlbench's, WRN-10-1", model, net, train[0][0]
    )
    learner = _ours(WRN_SCRIPT, net, vnet, bs, meta)
    mine = [learner.step(x, y) for x, y in train]
    fresh, made = ns["build_model"], iter([model])
    ns["build_model"] = lambda: next(made, None) or fresh()  # main()'s model, then meta models
    ns["VNet"] = lambda *a: vnet
    rec = _recorders(ns, vnet)
    with official.on_cpu(), _quiet(), contextlib.suppress(_Plotting):
        ns["main"]()
    step = _compare_step(
        f"{WRN_SCRIPT} main(): {steps} iteration(s)", (model, vnet), (net, learner), rec, mine
    )
    return [net_check, step]


def verify(root: Path, steps: int, batch_size: int, seed: int) -> list[Check]:
    """Both official scripts; see the module docstring."""
    return verify_stable(root, steps, batch_size, seed) + verify_wrn(root, steps, batch_size, seed)
