"""DivideMix against ``Train_cifar.py`` of LiJunnan1992/DivideMix.

The official ``warmup()`` and ``train()`` (with ``SemiLoss``, ``linear_rampup`` and
``NegEntropy``) run as written, on the official ``PreResNet.ResNet18``; nlbench's
``dividemix`` runs its warm-up and MixMatch steps on its registered ``preact_resnet18`` loaded
with the same initial weights (the two networks' logits are compared first). Both get the same
batches (two labeled views with their clean probabilities, two unlabeled views) and the same
MixMatch draws: the Beta coefficient and the permutation nlbench draws from its generator are
what the official ``np.random.beta`` and ``torch.randperm`` return. Compared after each phase:
the losses the official code prints (``Lx``, ``Lu``, CE), every weight, the batch-norm
statistics.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import io
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nlbench.algorithms.mixmatch import beta_draw
from nlbench.host.plugins import get_host
from nlbench.training.models import build_model
from nlbench.verify import official
from nlbench.verify.ours import build_method, classifier_last, copy_into, running_stats
from nlbench.verify.report import Check, compare, compare_tensors
from nlbench.verify.shims import Loader, Recorder, Replay
from nlbench_plugins.method_dividemix import MixBatch

REPO = "LiJunnan1992/DivideMix"
FILES = ("Train_cifar.py", "PreResNet.py")
COMPARED = (
    "PreAct ResNet-18, 10 classes, 32 px, batch {bs}: one warm-up step of each net (CE + the "
    "asym confidence penalty) and {steps} MixMatch step(s) of each net (train(): co-refinement, "
    "co-guessing, one Beta draw and permutation, SemiLoss, prior penalty), SGD lr 0.02 m 0.9 "
    "wd 5e-4, {dtype} on the CPU"
)
EPOCH, WARM_UP, NUM_CLASSES = 12, 10, 10  # epoch 12: λu ramp = 2/16 + step/num_iter
HP = {"alpha": 4.0, "T": 0.5, "lambda_u": 25.0, "lr": 0.02}


def overrides() -> dict[str, Any]:
    """The official CIFAR-10 arguments as nlbench hparams (sym and asym alike)."""
    return {
        "lr": HP["lr"],
        "momentum": 0.9,
        "nesterov": False,
        "weight_decay": 5e-4,
        "alpha": HP["alpha"],
        "temperature": HP["T"],
        "lambda_u": HP["lambda_u"],
        "p_threshold": 0.5,
        "warmup_epochs": WARM_UP,
        "rampup_epochs": 16,
        "conf_penalty": True,
        "amp": False,
    }


def _batches(steps: int, bs: int, seed: int) -> list[dict[str, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)

    def img() -> torch.Tensor:
        return torch.randn(bs, 3, 32, 32, generator=g)

    return [
        {
            "x": img(),
            "x2": img(),
            "u1": img(),
            "u2": img(),
            "y": torch.randint(0, NUM_CLASSES, (bs,), generator=g),
            "w": torch.rand(bs, generator=g, dtype=torch.float64),
        }
        for _ in range(steps)
    ]


def _official_namespace(root: Path, bs: int) -> dict[str, Any]:
    """``Train_cifar.py``'s step functions with the globals its body would have set (asym
    CIFAR-10 arguments); the loss objects record what they return."""
    names = ("warmup", "train", "linear_rampup", "SemiLoss", "NegEntropy")
    ns = official.load_script(root, "Train_cifar.py", names, {}, REPO)
    args = argparse.Namespace(
        batch_size=bs,
        lr=HP["lr"],
        noise_mode="asym",
        alpha=HP["alpha"],
        lambda_u=HP["lambda_u"],
        p_threshold=0.5,
        T=HP["T"],
        num_epochs=300,
        r=0.4,
        num_class=NUM_CLASSES,
        dataset="cifar10",
    )
    ns.update(
        args=args,
        warm_up=WARM_UP,
        criterion=Recorder(ns["SemiLoss"]()),
        CEloss=Recorder(torch.nn.CrossEntropyLoss()),
        conf_penalty=Recorder(ns["NegEntropy"]()),
    )
    return ns


def _nets(root: Path, seed: int) -> tuple[list[Any], list[Any]]:
    """Two official ResNet-18s and nlbench's two ``preact_resnet18`` with their weights."""
    torch.manual_seed(seed)
    pre = official.import_module(root, "PreResNet")
    theirs = [pre.ResNet18(num_classes=NUM_CLASSES) for _ in range(2)]
    registry = get_host().registry("models")
    ours = [build_model(registry, "preact_resnet18", NUM_CLASSES, 3, 32) for _ in range(2)]
    for t, o in zip(theirs, ours):
        copy_into(t.parameters(), [p for _, p in classifier_last(o)], "preact_resnet18 weights")
        copy_into(running_stats(t), running_stats(o), "preact_resnet18 batch-norm statistics")
    return theirs, ours


def _state(theirs: list[Any], ours: list[Any]) -> list[Any]:
    out = []
    for i, (t, o) in enumerate(zip(theirs, ours), start=1):
        mine = [p for _, p in classifier_last(o)]
        out.append(compare_tensors(f"net{i} weights", t.parameters(), mine))
        out.append(compare_tensors(f"net{i} BN statistics", running_stats(t), running_stats(o)))
    return out


def _draws(gen: torch.Generator, n: int) -> tuple[float, torch.Tensor]:
    """The Beta draw and permutation nlbench's next MixMatch takes from ``gen``, read from a
    copy of the generator (nlbench's own draws are left to happen)."""
    g = torch.Generator(device=gen.device)
    g.set_state(gen.get_state())
    lam = beta_draw(HP["alpha"], g)
    return float(lam), torch.randperm(n, generator=g, device=gen.device).cpu()


def _ours_warmup(method: Any, x: torch.Tensor, y: torch.Tensor) -> list[dict[str, Any]]:
    index = torch.arange(y.numel())
    return [method.train_step(MixBatch(x, y, index, tag=n, warmup=True)) for n in ("net1", "net2")]


def _ours_mix(method: Any, ctx: Any, batches: list[dict[str, torch.Tensor]]) -> dict[str, Any]:
    """Each net's MixMatch steps (net 1's, then net 2's, as the official epoch), and the draws
    nlbench took for them."""
    out: dict[str, Any] = {"steps": [], "lams": [], "perms": []}
    for name in ("net1", "net2"):
        for i, b in enumerate(batches):
            lam, perm = _draws(ctx.gen, 4 * b["y"].numel())
            out["lams"].append(lam)
            out["perms"].append(perm)
            views = {"x2": b["x2"], "u1": b["u1"], "u2": b["u2"]}
            progress = EPOCH + i / (len(batches) + 1)  # official epoch + batch_idx / num_iter
            index = torch.arange(b["y"].numel())
            batch = MixBatch(b["x"], b["y"], index, b["w"], name, progress=progress, **views)
            out["steps"].append(method.train_step(batch))
    return out


def _official_opts(nets: list[Any]) -> list[torch.optim.Optimizer]:
    """``optimizer1``/``optimizer2`` as the script body makes them."""
    return [
        torch.optim.SGD(n.parameters(), lr=HP["lr"], momentum=0.9, weight_decay=5e-4) for n in nets
    ]


def _quiet() -> Any:
    """The official progress lines (``sys.stdout.write``) go nowhere."""
    return contextlib.redirect_stdout(io.StringIO())


def _warmup_check(
    root: Path, theirs: list[Any], ours: list[Any], b: dict[str, torch.Tensor]
) -> Check:
    """One ``warmup()`` step of each net (asym: CE + NegEntropy) against nlbench's."""
    method, _ = build_method("dividemix", overrides(), ours, NUM_CLASSES)
    mine = _ours_warmup(method, b["x"], b["y"])
    ns = _official_namespace(root, int(b["y"].numel()))
    with official.on_cpu(), _quiet():
        for net, opt in zip(theirs, _official_opts(theirs)):
            ns["warmup"](0, net, opt, Loader([(b["x"], b["y"], None)], int(b["y"].numel())))
    ce, pen = ns["CEloss"].calls, ns["conf_penalty"].calls
    losses = [
        compare(f"net{i + 1} loss (CE + penalty)", ce[i] + pen[i], w["loss"])
        for i, w in enumerate(mine)
    ]
    return Check("warm-up step (asym)", losses + _state(theirs, ours))


def _mix_check(
    root: Path, theirs: list[Any], ours: list[Any], batches: list[dict[str, torch.Tensor]]
) -> Check:
    """``train()`` of net 1 (peer net 2) then of net 2 (peer net 1), with nlbench's draws."""
    method, ctx = build_method("dividemix", overrides(), ours, NUM_CLASSES)
    mine = _ours_mix(method, ctx, batches)
    bs = int(batches[0]["y"].numel())
    ns = _official_namespace(root, bs)
    ns["np"] = official.Proxy(np, random=official.Proxy(np.random, beta=Replay(mine["lams"])))
    ns["torch"] = official.Proxy(torch, randperm=Replay(mine["perms"]))
    labeled = Loader([(b["x"], b["x2"], b["y"], b["w"]) for b in batches], bs)
    unlabeled = Loader([(b["u1"], b["u2"]) for b in batches], bs)
    opts = _official_opts(theirs)
    with official.on_cpu(), _quiet():
        ns["train"](EPOCH, theirs[0], theirs[1], opts[0], labeled, unlabeled)
        ns["train"](EPOCH, theirs[1], theirs[0], opts[1], labeled, unlabeled)
    losses = []
    semi = ns["criterion"].calls  # (Lx, Lu, λu·ramp) per step
    for j, key in enumerate(("lx", "lu", "lambda_u")):
        got = torch.stack([m[key] for m in mine["steps"]])
        # in nlbench's dtype: its λu·ramp is a Python float inside the step, reported as a tensor
        off = torch.tensor([float(torch.as_tensor(s[j]).detach()) for s in semi], dtype=got.dtype)
        losses.append(compare(key, off, got))
    name = f"{len(batches)} MixMatch step(s) per net"
    return Check(name, losses + _state(theirs, ours))


def network_check(theirs: list[Any], registered: list[Any], x: torch.Tensor) -> Check:
    """The official ResNet-18 against the network nlbench's runs use, at the same weights, in
    train mode (batch statistics), on copies so no statistic moves."""
    quantities = []
    with torch.no_grad():
        for i, (t, o) in enumerate(zip(theirs, registered), start=1):
            pair = copy.deepcopy(t).train(), copy.deepcopy(o).train()
            quantities.append(compare(f"net{i} logits (train mode)", pair[0](x), pair[1](x)))
    return Check("network: official ResNet18 vs preact_resnet18, same weights", quantities)


def verify(root: Path, steps: int, batch_size: int, seed: int) -> list[Check]:
    """The network, one warm-up step and ``steps`` MixMatch steps, each step comparison from
    the same initial weights: the official network against nlbench's ``preact_resnet18``."""
    theirs, ours = _nets(root, seed)
    batches = _batches(steps, batch_size, seed)
    checks = [network_check(theirs, ours, batches[0]["x"])]
    copies = [copy.deepcopy(n) for n in (*theirs, *ours)]
    checks.append(_warmup_check(root, copies[:2], copies[2:], batches[0]))
    checks.append(_mix_check(root, theirs, ours, batches))
    return checks
