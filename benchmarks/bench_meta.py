"""Step time of mwnet, l2r and famus against an ERM step on the same model and batch.

Goals (docs/performance-anchors.md, P5-P7): exact ``mwnet`` and ``l2r`` ≤ 4.5× ERM; ≤ 3.6× with the first forward reused
(``reuse_forward``, the default) or with ``meta_grad=fd``; FaMUS's layer-sampled meta-gradient
≤ 0.6× exact ``mwnet`` (target 0.4×, the paper's 284/933 ms is 0.30×). Previously measured on a
2-core CPU with torch.func on a small CNN: MW-Net 4.4× ERM, L2R 4.3×, last-4-layers 0.40×.

Variants (all one network, CIFAR-shaped 3×32×32 batches, meta batch = batch size):

* ``mwnet_paper`` / ``l2r_paper``: the papers' order — look-ahead on buffer clones, then a
  fresh forward for the actual step (``reuse_forward=false``);
* ``mwnet`` / ``l2r``: the default, the look-ahead's forward reused by the actual step;
* ``mwnet_jvp`` / ``l2r_jvp``: the exact meta-gradient from forward-mode directional
  derivatives instead of the double backward (``meta_grad=jvp``);
* ``mwnet_fd`` / ``l2r_fd``: finite-difference meta-gradient (``meta_grad=fd``);
* ``famus``: mwnet + FaMUS samplers as initialised (K = 4 of the gated tensors at random);
* ``famus_top``: samplers biased to the K gated tensors nearest the output (what trained
  samplers converge to, supplement Fig. 2).

FaMUS gates the last ``famus_gated`` (15) tensors: all of ``cnn_small``'s 14, so there its
saving is only the unsampled layers' share (``test_meta_step_cost``: 0.7-0.9x mwnet with
fresh samplers on a 2-core CPU); ``test_famus_on_the_papers_network`` measures the paper's
PreAct ResNet-18, where the look-ahead never reaches below the last stage (0.44x on one CPU
thread, batch 32).

One process, every variant's steps interleaved round by round after a warm-up round, median
per-step time over ``rounds`` (≥ 5), fixed thread count.

Run: ``.venv/bin/python benchmarks/bench_meta.py [--model cnn_small] [--rounds 7]`` or
``.venv/bin/python -m pytest benchmarks/bench_meta.py --benchmark-only -s``; on a GPU
``--device cuda --model preact_resnet18``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import torch

from nlbench.core.hparam_types import defaults
from nlbench.core.hparams import BASE_HPARAMS
from nlbench.host.plugins import get_host
from nlbench.training.method import SingleNetMethod, TrainContext
from nlbench.training.models import build_model
from nlbench_plugins.meta.hparams import COMMON_HPARAMS, MWNET_HPARAMS
from nlbench_plugins.meta.learner import Learner, rule_for
from nlbench_plugins.meta.weighting import MetaNetWeighting, PerturbationWeighting

VARIANTS = (
    "erm",
    "mwnet_paper",
    "mwnet",
    "mwnet_jvp",
    "mwnet_fd",
    "l2r_paper",
    "l2r",
    "l2r_jvp",
    "l2r_fd",
    "famus",
    "famus_top",
)


class Fixed:
    """A meta-batch source returning one fixed batch (the data pipeline is not measured)."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.x, self.y = x, y

    def draw(self, bs: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.x, self.y


def context(model: str, device: torch.device, hp: dict[str, Any]) -> TrainContext:
    registry = get_host().registry("models")
    return TrainContext(
        hparams=hp,
        num_classes=10,
        in_chans=3,
        image_size=32,
        device=device,
        train=None,
        epochs=1,
        steps_per_epoch=1,
        build_model=lambda: build_model(registry, model, 10, 3, 32).to(device),
        gen=torch.Generator(device=device).manual_seed(0),
        scan=lambda: None,
        seed=0,
        components=get_host(),
    )


def make_steps(
    model: str, device: torch.device, bs: int, variants: tuple[str, ...] = VARIANTS
) -> dict[str, Any]:
    """One step function per variant, each with its own network on the same batch."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(bs, 3, 32, 32, generator=g).to(device)
    y = torch.randint(0, 10, (bs,), generator=g).to(device)
    mx = torch.randn(bs, 3, 32, 32, generator=g).to(device)
    my = torch.randint(0, 10, (bs,), generator=g).to(device)
    base = {
        **BASE_HPARAMS,
        **defaults({**COMMON_HPARAMS, **MWNET_HPARAMS}),
        "model": model,
        "batch_size": bs,
        "lr": 0.05,
        "amp": False,
    }
    steps: dict[str, Any] = {}
    erm = SingleNetMethod(context(model, device, base))

    def erm_step():
        from nlbench.training.data import Batch

        erm.train_step(Batch(x, y, torch.arange(bs, device=device)))

    steps["erm"] = erm_step
    for name in variants[1:]:
        weighting = PerturbationWeighting if name.startswith("l2r") else MetaNetWeighting
        hp = {
            **base,
            "reuse_forward": not name.endswith("_paper"),
            "meta_grad": name.rsplit("_", 1)[-1] if name.endswith(("_fd", "_jvp")) else "exact",
        }
        rule = rule_for(hp, gated=name.startswith("famus"))
        learner = Learner(context(model, device, hp), weighting, rule)
        learner.meta = Fixed(mx, my)
        if name == "famus_top":
            bias_to_top(learner, int(hp["famus_k"]))
        steps[name] = (lambda lrn: lambda: lrn.step(x, y))(learner)
    return steps


def bias_to_top(learner: Learner, k: int) -> None:
    """Make the samplers pick (almost surely) the k gated tensors nearest the output."""
    n = len(learner.rule.gated)
    with torch.no_grad():
        for i, net in enumerate(learner.rule.samplers.nets):
            net[-1].weight.zero_()
            net[-1].bias.copy_(torch.tensor([0.0, 50.0 if i >= n - k else -50.0]))
    learner.rule.sopt.param_groups[0]["lr"] = 0.0


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(
    model: str = "cnn_small",
    device: str = "cpu",
    bs: int = 128,
    rounds: int = 7,
    steps_per_round: int = 3,
    threads: int | None = 2,
    clock: str = "wall",
    variants: tuple[str, ...] = VARIANTS,
) -> dict[str, Any]:
    """Median seconds per step of every variant; ``clock="cpu"`` times the process's CPU
    (with one thread it ignores time lost to other processes on a shared machine)."""
    if threads:
        torch.set_num_threads(threads)
    dev = torch.device(device)
    now = time.process_time if clock == "cpu" else time.perf_counter
    torch.manual_seed(0)
    steps = make_steps(model, dev, bs, variants)
    times: dict[str, list[float]] = {k: [] for k in steps}
    for r in range(rounds + 1):
        for name, fn in steps.items():
            sync(dev)
            t0 = now()
            for _ in range(steps_per_round):
                fn()
            sync(dev)
            if r:  # round 0 warms caches and allocators
                times[name].append((now() - t0) / steps_per_round)
    med = {k: statistics.median(v) for k, v in times.items()}
    out: dict[str, Any] = {
        "model": model,
        "device": device,
        "batch": bs,
        "rounds": rounds,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "clock": clock,
    }
    out.update({f"{k}_ms": 1000 * v for k, v in med.items()})
    out.update({f"{k}_x_erm": v / med["erm"] for k, v in med.items() if k != "erm"})
    for f in ("famus", "famus_top"):
        for m in ("mwnet_paper", "mwnet"):
            if f in med and m in med:
                out[f"{f}_x_{m}"] = med[f] / med[m]
    out["variants"] = list(steps)
    return out


def report(res: dict[str, Any]) -> str:
    lines = [
        f"meta-learning step cost ({res['model']}, batch {res['batch']}, {res['device']}, "
        f"torch {res['torch']}, {res['threads']} threads, {res['clock']} clock, "
        f"median of {res['rounds']})",
        f"  erm          {res['erm_ms']:8.1f} ms",
    ]
    for k in res["variants"][1:]:
        lines.append(f"  {k:12s} {res[k + '_ms']:8.1f} ms  = {res[k + '_x_erm']:.2f}x ERM")
    lines.append(
        "  goals: mwnet_paper, l2r_paper <= 4.5x; mwnet, l2r, *_jvp, *_fd <= 3.6x; "
        "famus <= 0.6x mwnet (target 0.4)"
    )
    for m in ("mwnet_paper", "mwnet"):
        ratios = [
            f"{f} / {m} {res[f'{f}_x_{m}']:.2f}"
            for f in ("famus", "famus_top")
            if f"{f}_x_{m}" in res
        ]
        if ratios:
            lines.append("  " + "  ".join(ratios))
    return "\n".join(lines)


def test_meta_step_cost(benchmark):
    res = benchmark.pedantic(lambda: measure(rounds=5), rounds=1, iterations=1)
    print("\n" + report(res))
    benchmark.extra_info.update(res)


def test_famus_on_the_papers_network(benchmark):
    """FaMUS's saving is structural: only the last ``famus_gated`` (15) parameter tensors can
    carry a meta-gradient. On ``cnn_small`` (14 tensors) that is the whole net, so the saving
    is only the unsampled layers' share; on PreAct ResNet-18 (the paper's CIFAR network, 62
    tensors) the look-ahead never goes below the last stage. Batch 32 keeps it about 2 minutes
    on one CPU thread."""
    res = benchmark.pedantic(
        lambda: measure(
            "preact_resnet18",
            bs=32,
            rounds=3,
            steps_per_round=1,
            threads=1,
            clock="cpu",
            variants=("erm", "mwnet", "famus", "famus_top"),
        ),
        rounds=1,
        iterations=1,
    )
    print("\n" + report(res))
    benchmark.extra_info.update(res)
    assert res["famus_x_mwnet"] <= 0.6


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="cnn_small")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=3, help="steps per variant per round")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall")
    args = parser.parse_args()
    print(
        report(
            measure(
                args.model,
                args.device,
                args.batch_size,
                args.rounds,
                args.steps,
                args.threads,
                args.clock,
            )
        )
    )
