"""``elr``: early-learning regularisation (Liu, Niles-Weed, Razavian & Fernandez-Granda,
NeurIPS 2020), following the paper and its code (``shengliu66/ELR``, ``ELR/model/loss.py``).

Loss = CE + λ·mean log(1 − ⟨p, t⟩), where ``p`` is the softmax (clamped to [1e-4, 1 − 1e-4])
and ``t`` a per-sample target: the exponential moving average ``t ← β·t + (1 − β)·p̂/Σp̂`` of
the sample's own detached predictions, updated at each visit before the loss. The regulariser
pulls the prediction towards what the network predicted during its early, clean-fitting phase,
which keeps it from memorising wrong labels. β, λ from the official configs: CIFAR-10 0.7 / 3,
CIFAR-100 0.9 / 7, CIFAR-10 asymmetric noise 0.9 / 1 (a row chosen by the noise type: the run
is flagged ``noise_tuned``); other datasets take CIFAR-10's rows.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
import torch.nn.functional as F

from nlbench.api import (
    Batch,
    Deviation,
    Float,
    MethodFlag,
    MethodSpec,
    NoiseSetting,
    Optional,
    SingleNetMethod,
    TrainContext,
    hookimpl,
)

DEFAULT_HPARAMS: dict[str, Any] = {
    "elr_beta": Optional(
        Float(None, low=0, high=1, high_open=True, doc="β of the target EMA; null: official")
    ),
    "elr_lambda": Optional(
        Float(None, low=0, high=1e3, doc="λ of the regulariser; null: official")
    ),
}
# (β, λ) of the official configs: config_cifar10.json, config_cifar100.json, *_asym.json
SETTINGS = {"cifar10": (0.7, 3.0), "cifar100": (0.9, 7.0), "cifar10_asym": (0.9, 1.0)}

# The paper's CIFAR setting (§4, ResNet-34): SGD m 0.9, wd 1e-3, batch 128, lr 0.02 ÷100 at
# epochs 40 and 80 of 120 (CIFAR-100: 150 epochs, ÷100 at 80 and 120, config_cifar100.json)
PAPER = {
    "epochs": 120,
    "batch_size": 128,
    "lr": 0.02,
    "weight_decay": 1e-3,
    "milestones": [40, 80],
    "gamma": 0.01,
    "amp": False,
}
PROFILES = {
    "paper": {
        "default": PAPER,
        "cifar100": {**PAPER, "epochs": 150, "milestones": [80, 120]},
    }
}

DEVIATIONS = (
    Deviation(
        "the paper profile trains CIFAR-10 symmetric noise with the paper's schedule (lr ÷100 at "
        "epochs 40 and 80 of 120); the official config_cifar10.json anneals with cosine warm "
        "restarts (T_0 10, η_min 0.001) over 150 epochs",
        "the runner has no warm-restart schedule; the paper's text states the multistep one",
    ),
    Deviation(
        "the board's network (PreAct ResNet-18 in the paper profile) instead of ResNet-34",
        "every method on a board trains the same network",
    ),
)


def resolve(
    hp: Mapping[str, Any], dataset: str, noise: NoiseSetting | None
) -> tuple[float, float, bool]:
    """(β, λ, taken from the noise type?)."""
    key = "cifar100" if dataset == "cifar100" else "cifar10"
    from_noise = key == "cifar10" and noise is not None and noise.type == "asym"
    beta, lam = SETTINGS["cifar10_asym" if from_noise else key]
    explicit_beta, explicit_lam = hp.get("elr_beta"), hp.get("elr_lambda")
    used_noise = from_noise and (explicit_beta is None or explicit_lam is None)
    beta = float(beta if explicit_beta is None else explicit_beta)
    lam = float(lam if explicit_lam is None else explicit_lam)
    return beta, lam, used_noise


def elr_flags(hp: Mapping[str, Any], noise: NoiseSetting, dataset: Any) -> set[MethodFlag]:
    """``MethodSpec.flags_for``: ``noise_tuned`` when the asymmetric-noise row was used."""
    return {MethodFlag.NOISE_TUNED} if resolve(hp, dataset.name, noise)[2] else set()


def elr_regulariser(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """mean log(1 − ⟨p, t⟩) with ``p`` the clamped softmax, as the official loss."""
    p = F.softmax(logits, 1).clamp(1e-4, 1 - 1e-4)
    return torch.log(1 - (target * p).sum(1)).mean()


class ELR(SingleNetMethod):
    """One network, CE plus the early-learning regulariser; see the module docstring."""

    def __init__(self, ctx: TrainContext) -> None:
        super().__init__(ctx)
        self.beta, self.lam, self.noise_row = resolve(self.hp, ctx.dataset, ctx.noise)
        self.target = torch.zeros(len(ctx.train), ctx.num_classes, device=ctx.device)
        self.register_state("target")

    @torch.no_grad()
    def update_target(self, index: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        """``t[i] ← β·t[i] + (1 − β)·p̂/Σp̂`` for the batch; returns the new rows."""
        p = F.softmax(logits, 1).clamp(1e-4, 1 - 1e-4)
        rows = self.beta * self.target[index] + (1 - self.beta) * p / p.sum(1, keepdim=True)
        self.target[index] = rows
        return rows

    def train_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        self.model.train()
        with self.ctx.autocast():
            logits = self.model(batch.x).float()
        target = self.update_target(batch.index, logits.detach())
        ce = F.cross_entropy(logits, batch.y)
        reg = elr_regulariser(logits, target)
        loss = ce + self.lam * reg
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        acc = (logits.detach().argmax(1) == batch.y).float().mean()
        return {"loss": loss.detach(), "ce": ce.detach(), "elr_reg": reg.detach(), "train_acc": acc}

    def record_info(self) -> dict[str, Any]:
        return {"elr_beta": self.beta, "elr_lambda": self.lam, "asym_row": self.noise_row}


@hookimpl
def register_methods(register: Callable[[MethodSpec], None]) -> None:
    register(
        MethodSpec(
            name="elr",
            description="cross-entropy plus early-learning regularisation towards EMA targets",
            factory=ELR,
            default_hparams=DEFAULT_HPARAMS,
            profiles=PROFILES,
            flags_for=elr_flags,
            deviations=DEVIATIONS,
            reference="Liu, Niles-Weed, Razavian & Fernandez-Granda, Early-Learning "
            "Regularization Prevents Memorization of Noisy Labels, NeurIPS 2020",
        )
    )
