"""FaMUS against ``FaMUS/train_famus_redminiimage.py`` of youjiangxu/FaMUS (its CNWL code).

The official ``training_step()`` (``meta_step()``: virtual step with the layer gates of
``_compute_gated_grad``, meta loss with the prior penalty, the gradient-statistics and gate-count
regularisers, meta-net and sampler updates; then ``model_step()``) runs on the official
``PreActResNet18``, meta-net and ``GradGumbelSoftmax`` samplers (``build_models.py``). nlbench's
``famus --set mixmatch=true famus_reg_quirk=true`` learner runs ``mix_step`` on the same mixed
batch (inputs, refined and guessed targets, λu) and mixed meta batch. Shared: the initial
weights of the network, meta-net and samplers, and the Gumbel noise (nlbench's draw, fed to the
official ``sample_gumbel``, which only runs on CUDA). nlbench's network is its registered
``preact_resnet18``, checked against the official network first.
"""

from __future__ import annotations

import argparse
import copy
from pathlib import Path
from typing import Any

import torch

from nlbench.host.plugins import get_host
from nlbench.training.models import build_model
from nlbench.verify import official
from nlbench.verify.ours import build_method, classifier_last, copy_into, running_stats
from nlbench.verify.report import Check, compare, compare_tensors
from nlbench.verify.shims import Recorder, Replay
from nlbench_plugins.meta.mix import MixTask

REPO = "youjiangxu/FaMUS"
CODE = "FaMUS"
FILES = tuple(
    f"{CODE}/{f}"
    for f in (
        "train_famus_redminiimage.py",
        "build_models.py",
        "preresnet.py",
        "grad_operator_layer.py",
    )
)
COMPARED = (
    "{steps} training_step() call(s) (meta_step + model_step) on PreAct ResNet-18, 10 classes, "
    "32 px, mixed batch 4×{bs} + meta batch 2×{bs}, 13 gated layers, K = 4, λu = 25, SGD lr 0.02 "
    "m 0.9 Nesterov wd 5e-4, meta-net SGD 1e-3, samplers SGD 0.1, {dtype} on the CPU"
)
NUM_CLASSES, EPOCH = 10, 8  # epoch 8: λu = 50 · 8/16
ARGS: dict[str, Any] = {
    "lr": 0.02,
    "meta_lr": 1e-3,
    "momentum": 0.9,
    "nesterov": True,
    "weight_decay": 5e-4,
    "step1": 200,
    "step2": 250,
    "lambda_u": 50.0,
    "rampup_length": 16,
    "regularization": True,
    "num_classes": NUM_CLASSES,
    "top_k": 15,
    "num_act": 4,
    "mse_factor": 0.1,
    "act_factor": 0.1,
    "go_lr": 0.1,
    "network": "PreActResNet18",
}


def overrides() -> dict[str, Any]:
    """The official arguments as nlbench hparams."""
    return {
        "lr": ARGS["lr"],
        "momentum": 0.9,
        "nesterov": True,
        "weight_decay": 5e-4,
        "mixmatch": True,
        "meta_set": "pseudo",
        "lambda_u": ARGS["lambda_u"],
        "meta_opt": "sgd",
        "meta_lr": 1e-3,
        "meta_wd": 5e-4,
        "weight_norm": "sum",
        "famus_k": 4,
        "famus_gated": 15,
        "famus_lr": 0.1,
        "famus_tau": 5.0,
        "famus_lambda_r": 0.1,
        "famus_lambda_g": 0.1,
        "famus_reg_quirk": True,
        "amp": False,
    }


def _registered_net() -> Any:
    """nlbench's ``preact_resnet18`` as a run builds it."""
    return build_model(get_host().registry("models"), "preact_resnet18", NUM_CLASSES, 3, 32)


def _batches(steps: int, bs: int, seed: int) -> list[dict[str, torch.Tensor]]:
    """Mixed training rows (labeled half first) with refined and guessed soft targets, and a
    mixed meta batch with its targets."""
    g = torch.Generator().manual_seed(seed)

    def soft(n: int) -> torch.Tensor:
        # float32 values: the official cross_entropy applies target.float()
        p = torch.softmax(2 * torch.randn(n, NUM_CLASSES, generator=g), 1)
        return p.float().to(p.dtype)

    def img(n: int) -> torch.Tensor:
        return torch.randn(n, 3, 32, 32, generator=g)

    return [
        {
            "x": img(4 * bs),
            "t": soft(4 * bs),
            "guess": soft(4 * bs),
            "mx": img(2 * bs),
            "mt": soft(2 * bs),
            "mguess": soft(2 * bs),
        }
        for _ in range(steps)
    ]


def _official(root: Path, seed: int) -> dict[str, Any]:
    """The step functions, and the network, meta-net and samplers ``build_training`` and
    ``build_grad_models`` make (their optimisers too)."""
    args = argparse.Namespace(**ARGS)
    names = (
        "training_step",
        "meta_step",
        "model_step",
        "cross_entropy",
        "mse",
        "regularization",
        "norm_weight",
        "get_lambda_u",
        "adjust_learning_rate",
    )
    ns = official.load_script(
        root / CODE, "train_famus_redminiimage.py", names, {"args": args}, REPO
    )
    ns["cross_entropy"] = Recorder(ns["cross_entropy"])
    ns["regularization"] = Recorder(ns["regularization"])
    build = official.import_module(root / CODE, "build_models")
    torch.manual_seed(seed)
    with official.on_cpu():
        model, opt_a, vnet, opt_c = build.build_training(args)
        grad_models, grad_opts = build.build_grad_models(args, model)
    return {
        "ns": ns,
        "model": model,
        "opt_a": opt_a,
        "vnet": vnet,
        "opt_c": opt_c,
        "grad_models": grad_models,
        "grad_opts": grad_opts,
    }


def _ours(off: dict[str, Any]) -> tuple[Any, Any, Any, list[int]]:
    """nlbench's famus learner on its ``preact_resnet18``, loaded with the official
    network's and meta-net's weights; the official samplers loaded with nlbench's (its own
    initialisation, prior included). Returns the network, the learner, the context and, per
    official sampler, the row of nlbench's."""
    model = off["model"]
    nets = [_registered_net(), _registered_net()]
    copy_into(model.params(), [p for _, p in classifier_last(nets[0])], "network weights")
    copy_into(running_stats(model), running_stats(nets[0]), "batch-norm statistics")
    method, ctx = build_method("famus", overrides(), nets, NUM_CLASSES)
    learner = method.learners["net1"]
    copy_into(off["vnet"].params(), learner.vnet.parameters(), "meta-net weights")
    names = [n for n, _ in classifier_last(nets[0])]
    first = len(names) - ARGS["top_k"]
    rows = [learner.rule.gated.index(names[first + i]) for i in range(len(off["grad_models"]))]
    for gm, row in zip(off["grad_models"], rows):
        copy_into(learner.rule.samplers.nets[row].parameters(), gm.params(), "sampler weights")
    return nets[0], learner, ctx, rows


def _gumbel(gen: torch.Generator, gates: int) -> torch.Tensor:
    """The Gumbel noise nlbench's samplers take next from ``gen`` (one row per gated layer),
    read from a copy of the generator."""
    g = torch.Generator(device=gen.device)
    g.set_state(gen.get_state())
    u = torch.rand((gates, 2), generator=g, device=gen.device)
    return -torch.log(-torch.log(u.clamp(1e-10, 1 - 1e-7)))


def _task(b: dict[str, torch.Tensor], lambda_u: float) -> Any:
    n_x = b["x"].shape[0] // 2
    return MixTask(b["x"], b["t"], b["guess"], n_x, lambda_u, b["mx"], b["mt"])


LAMBDA_U = 25.0  # what the official get_lambda_u gives at EPOCH: 50 · clip(8 / 16, 0, 1)


def _run(off: dict[str, Any], ours: tuple[Any, Any, Any, list[int]], batches: list) -> dict:
    """nlbench's mix steps (recording its Gumbel noise), then the official training steps
    with that noise, one (1, 2) draw per gated layer in the official order."""
    _, learner, ctx, rows = ours
    mine: list[dict[str, torch.Tensor]] = []
    noise: list[torch.Tensor] = []
    for b in batches:
        gumbel = _gumbel(ctx.gen, len(learner.rule.gated))
        noise.extend(gumbel[row].reshape(1, 2) for row in rows)
        mine.append(learner.mix_step(_task(b, LAMBDA_U)))
    ns = off["ns"]
    forward = type(off["grad_models"][0]).forward  # GradGumbelSoftmax, as build_models made it
    sampler_module = forward.__globals__["gumbel_softmax"].__globals__
    sampler_module["sample_gumbel"] = Replay(noise)  # the official draw is CUDA-only
    losses = []
    with official.on_cpu():
        for b in batches:
            out = ns["training_step"](
                (b["x"], b["t"], b["guess"]),
                off["model"],
                off["opt_a"],
                off["vnet"],
                off["opt_c"],
                (b["mx"], b["mt"], b["mguess"]),
                EPOCH,
                off["grad_models"],
                off["grad_opts"],
            )
            losses.append(out[0].detach())
    return {"mine": mine, "loss": losses}


def _samplers(off: dict[str, Any], learner: Any, rows: list[int]) -> tuple[list, list]:
    theirs = [p for gm in off["grad_models"] for p in gm.params()]
    ours = [p for row in rows for p in learner.rule.samplers.nets[row].parameters()]
    return theirs, ours


def _step_check(off: dict[str, Any], ours: tuple, run: dict, steps: int) -> Check:
    net, learner, _, rows = ours
    ns, mine = off["ns"], run["mine"]
    ce, reg = ns["cross_entropy"].calls, ns["regularization"].calls  # 3 each per step
    meta = torch.stack([(ce[3 * k + 1] + reg[3 * k + 1]).detach() for k in range(steps)])
    s_theirs, s_ours = _samplers(off, learner, rows)
    vnet = off["vnet"]
    return Check(
        f"{steps} training_step() call(s)",
        [
            compare(
                "loss (model_step l_f)",
                torch.stack(run["loss"]),
                torch.stack([m["loss"] for m in mine]),
            ),
            compare("meta loss (CE + prior)", meta, torch.stack([m["meta_loss"] for m in mine])),
            compare_tensors(
                "network weights", off["model"].params(), [p for _, p in classifier_last(net)]
            ),
            compare_tensors("BN statistics", running_stats(off["model"]), running_stats(net)),
            compare_tensors("meta-net weights", vnet.params(), learner.vnet.parameters()),
            compare_tensors(
                "meta-net gradient (last step)",
                [p.grad for p in vnet.params()],
                [p.grad for p in learner.vnet.parameters()],
            ),
            compare_tensors("sampler weights", s_theirs, s_ours),
            compare_tensors(
                "sampler gradient (last step)", [p.grad for p in s_theirs], [p.grad for p in s_ours]
            ),
        ],
    )


def _network_check(off: dict[str, Any], net: Any, x: torch.Tensor) -> Check:
    """The official network against nlbench's ``preact_resnet18`` the step uses, at the same
    weights, in train mode (batch statistics), on copies so no statistic moves."""
    with torch.no_grad():
        theirs = copy.deepcopy(off["model"]).train()(x)
        ours = copy.deepcopy(net).train()(x)
    quantity = compare("logits (train mode)", theirs, ours)
    return Check("network: official PreActResNet18 vs preact_resnet18, same weights", [quantity])


def verify(root: Path, steps: int, batch_size: int, seed: int) -> list[Check]:
    """The networks, then ``steps`` official training steps against nlbench's mix steps."""
    off = _official(root, seed)
    ours = _ours(off)
    batches = _batches(steps, batch_size, seed)
    first = _network_check(off, ours[0], batches[0]["x"])
    run = _run(off, ours, batches)
    return [first, _step_check(off, ours, run, steps)]
