"""``coteaching``: Co-teaching (Han et al., NeurIPS 2018), following the paper and its code.

Two networks see every mini-batch. Each ranks the batch by its own cross-entropy and keeps the
``R(T)`` fraction with the smallest loss; each network then trains on the samples its *peer*
kept (Algorithm 1), so the two filter different errors for each other. The forget rate ramps
from 0 to τ over the first ``T_k`` epochs (:mod:`nlbench_plugins.baselines.small_loss`).
τ is the noise rate, as in the official code (``forget_rate = noise_rate`` unless given; on
real noise the realized rate of the run's labels): a run that takes it from the noise is
flagged ``noise_tuned``. Test = the first
network. Known differences from the official code: ``nlbench show method coteaching``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
import torch.nn.functional as F

from nlbench.api import (
    Batch,
    Deviation,
    EpochPlan,
    Float,
    Int,
    MethodFlag,
    MethodSpec,
    NoiseSetting,
    Optional,
    Scan,
    TrainContext,
    TwoNetMethod,
    UsageError,
    hookimpl,
)
from nlbench_plugins.baselines.small_loss import batch_mask, forget_rate, num_remember, small_loss

SELECTION_HPARAMS: dict[str, Any] = {
    "forget_rate": Optional(
        Float(None, low=0, high=1, high_open=True, doc="τ; null: the noise setting's rate")
    ),
    "num_gradual": Int(10, low=0, doc="T_k: epochs over which the forget rate ramps up to τ"),
    "exponent": Float(1.0, low=0, low_open=True, high=10, doc="c: the ramp ends at τ^c"),
}

# The paper's CIFAR/MNIST runs: 200 epochs of batch 128 (its 9-layer CNN and Adam are not here:
# the board's model and SGD, see the deviations).
PROFILES = {"paper": {"default": {"epochs": 200, "batch_size": 128, "amp": False}}}

REFERENCE = (
    "Han, Yao, Yu, Niu, Xu, Hu, Tsang & Sugiyama, Co-teaching: Robust Training of Deep Neural "
    "Networks with Extremely Noisy Labels, NeurIPS 2018"
)


def noise_tau(
    hp: Mapping[str, Any],
    noise: NoiseSetting | None,
    halve_asym: bool = False,
    realized: float | None = None,
) -> tuple[float, bool]:
    """(τ, taken from the noise?): ``forget_rate`` when set, else the nominal noise rate
    (halved for ``asym`` noise where the official JoCoR code does so), else, for real noise
    without a nominal rate (``cifar_n:worse``), the realized rate of the run's labels: the
    number a paper plugs in from the dataset's published noise rate."""
    if hp.get("forget_rate") is not None:
        return float(hp["forget_rate"]), False
    if noise is not None and noise.rate is not None:
        rate = float(noise.rate)
    elif realized is not None:
        rate = float(realized)
    else:
        raise UsageError(
            "forget_rate: this noise has no known rate; pass --set forget_rate=R (a rate in [0, 1))"
        )
    if halve_asym and noise is not None and noise.type == "asym":
        rate /= 2
    return min(rate, 0.99), True


def realized_rate(ctx: TrainContext) -> float | None:
    """The wrong-label fraction of the run's labels (its clean→noisy counts), for τ on real
    noise; None when the run has no counts."""
    counts = ctx.noise_transition
    if not counts:
        return None
    total = sum(sum(row) for row in counts)
    return 1.0 - sum(row[i] for i, row in enumerate(counts)) / total if total else None


def tuned_flags(hp: Mapping[str, Any], noise: NoiseSetting, dataset: Any) -> set[MethodFlag]:
    """``MethodSpec.flags_for``: ``noise_tuned`` when τ came from the noise."""
    return set() if hp.get("forget_rate") is not None else {MethodFlag.NOISE_TUNED}


COMMON_DEVIATIONS = (
    Deviation(
        "SGD with the run's momentum, weight decay and learning-rate schedule, where the "
        "official code uses Adam (lr 0.001, decayed linearly to 0 from epoch 80, β1 0.9 → 0.1)",
        "every method on a board trains under the board's one optimizer and budget; the "
        "runner schedules SGD only",
    ),
    Deviation(
        "the board's network (tiny_cnn, cnn_small; PreAct ResNet-18 in the paper profile) "
        "instead of the paper's 9-layer CNN",
        "every method on a board trains the same network",
    ),
    Deviation(
        "an epoch is every batch of the shuffled train set, the last partial one included; the "
        "official loader drops the last batch and stops after 400 iterations",
        "the runner's one batch order for all methods (CIFAR's 390 batches never reach 400)",
    ),
)
DEVIATIONS = (
    Deviation(
        "each network's loss is the mean cross-entropy over the kept samples; the official "
        "loss_coteaching divides that mean again by num_remember",
        "Adam, which the official code uses, is (up to ε) invariant to that constant factor; "
        "under SGD it would shrink the learning rate about 100-fold",
    ),
    *COMMON_DEVIATIONS,
)


class CoTeaching(TwoNetMethod):
    """Two networks, each trained on its peer's small-loss samples; see the module docstring.
    Test: the first network alone, as the paper reports one network (no ensemble)."""

    def __init__(self, ctx: TrainContext) -> None:
        super().__init__(ctx)
        self.tau, self.tau_from_noise = noise_tau(self.hp, ctx.noise, realized=realized_rate(ctx))
        self.rate = 0.0

    def start_epoch(self, epoch: int, scan: Callable[[], Scan]) -> EpochPlan:
        hp = self.hp
        self.rate = forget_rate(epoch, self.tau, int(hp["num_gradual"]), float(hp["exponent"]))
        return EpochPlan(metrics={"forget_rate": self.rate})

    def train_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        logits1, logits2 = self.forward_pair(batch.x)
        ce1 = F.cross_entropy(logits1, batch.y, reduction="none")
        ce2 = F.cross_entropy(logits2, batch.y, reduction="none")
        keep = num_remember(int(batch.y.shape[0]), self.rate)
        pick1, pick2 = small_loss(ce1, keep), small_loss(ce2, keep)
        loss1, loss2 = ce1[pick2].mean(), ce2[pick1].mean()  # exchange: each learns the peer's
        self.step(loss1, "net1")
        self.step(loss2, "net2")
        size = int(batch.y.shape[0])
        selected = batch_mask(size, pick1) | batch_mask(size, pick2)
        acc = (logits1.detach().argmax(1) == batch.y).float().mean()
        return {
            "loss": (loss1.detach() + loss2.detach()) / 2,
            "loss_net1": loss1.detach(),
            "loss_net2": loss2.detach(),
            "train_acc": acc,
            "selected": selected,
        }

    def record_info(self) -> dict[str, Any]:
        return {
            "tau": self.tau,
            "tau_from_noise": self.tau_from_noise,
            "selected": "union of both networks' small-loss samples",
            "test": "the first network",
        }


@hookimpl
def register_methods(register: Callable[[MethodSpec], None]) -> None:
    register(
        MethodSpec(
            name="coteaching",
            description="two nets, each trained on the other's small-loss samples",
            factory=CoTeaching,
            default_hparams=SELECTION_HPARAMS,
            flags=CoTeaching.spec_flags(),
            profiles=PROFILES,
            flags_for=tuned_flags,
            deviations=DEVIATIONS,
            reference=REFERENCE,
        )
    )
