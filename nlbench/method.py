"""The method contract: the runner owns the loop, a method owns its step.

A method is built from a :class:`TrainContext` and implements :meth:`Method.train_step`.
Epoch-level work (GMM fits, subset selection) goes in :meth:`Method.start_epoch`, which may
return an :class:`~nlbench.data.EpochPlan` restricting or weighting the epoch's batches.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from nlbench.data import Batch, DeviceImages, EpochPlan, TrainSet
from nlbench.hparam_types import Optional, Str
from nlbench.run_facts import NoiseSetting


@dataclass
class Scan:
    """One pass over the train set without augmentation, shared by every component.

    Per network name: per-sample loss against the noisy labels (N), logits (N×C) and, when a
    component asked for them, penultimate features (N×D).
    """

    loss: dict[str, torch.Tensor]
    logits: dict[str, torch.Tensor]
    features: dict[str, torch.Tensor] = field(default_factory=dict)

    def ensemble_logits(self) -> torch.Tensor:
        return torch.stack(list(self.logits.values())).sum(0)


@dataclass
class MetaSet:
    """Trusted samples held out before noise (``clean:N``) for the meta-learners."""

    images: DeviceImages
    labels: torch.Tensor
    kind: str
    size: int


@dataclass
class TrainContext:
    """Everything a method may use. Clean training labels are deliberately absent.

    ``noise`` is the run's noise setting (type, nominal rate, spec) for methods whose
    published hyper-parameters depend on it (DivideMix's per-setting table); a method that
    uses it should say so through ``MethodSpec.flags_for`` (``noise_tuned``).
    """

    hparams: dict[str, Any]
    num_classes: int
    in_chans: int
    image_size: int
    device: torch.device
    train: TrainSet
    epochs: int
    steps_per_epoch: int
    build_model: Callable[[], nn.Module]
    gen: torch.Generator
    scan: Callable[..., Scan]
    meta: MetaSet | None = None
    amp_dtype: torch.dtype | None = None
    dataset: str = ""
    noise_type: str = ""
    noise: NoiseSetting | None = None
    extras: dict[str, Any] = field(default_factory=dict)

    def autocast(self) -> contextlib.AbstractContextManager:
        """bf16 autocast on CUDA when enabled; a no-op elsewhere (slower on CPU)."""
        if self.amp_dtype is None or self.device.type != "cuda":
            return contextlib.nullcontext()
        return torch.autocast("cuda", dtype=self.amp_dtype)

    def make_optimizer(self, params, lr: float | None = None) -> torch.optim.Optimizer:
        """SGD with the run's momentum, Nesterov flag and weight decay."""
        hp = self.hparams
        return torch.optim.SGD(
            params,
            lr=float(lr if lr is not None else hp["lr"]),
            momentum=float(hp["momentum"]),
            nesterov=bool(hp["nesterov"]) and float(hp["momentum"]) > 0,
            weight_decay=float(hp["weight_decay"]),
        )


class Method:
    """Base class: one network trained with SGD on the (plan-weighted) cross-entropy."""

    needs_features: bool = False

    def __init__(self, ctx: TrainContext) -> None:
        self.ctx = ctx
        self.hp = ctx.hparams

    # -- what the runner asks of every method -------------------------------------------
    def networks(self) -> dict[str, nn.Module]:
        """Named networks: evaluated (summed logits), scanned and checkpointed."""
        raise NotImplementedError

    def scheduled_optimizers(self) -> list[torch.optim.Optimizer]:
        """Optimizers whose learning rate follows the run's schedule."""
        raise NotImplementedError

    def start_epoch(self, epoch: int, scan: Callable[[], Scan]) -> EpochPlan | None:
        """Epoch-level work before training; ``scan()`` gives the cached train-set scan."""
        return None

    def epoch_batches(self, epoch: int, plan: EpochPlan | None) -> Iterator[Batch] | None:
        """The epoch's batches when the method needs its own order (e.g. DivideMix trains
        net 1 then net 2, each on the other's split); None → the runner's shuffled batches of
        ``plan``. Set ``plan.steps`` to the number of batches yielded."""
        return None

    def train_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        """One optimisation step; returns per-batch means as device tensors (no host sync)."""
        raise NotImplementedError

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Test-time logits: the sum over the method's networks."""
        with self.ctx.autocast():
            return sum(net(x).float() for net in self.networks().values())

    def extra_state(self) -> dict[str, Any]:
        """Method state beyond networks and scheduled optimizers (meta-nets, selections)."""
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`extra_state`."""

    def record_info(self) -> dict[str, Any]:
        """Static facts about the method to store in the run record (e.g. meta-set kind)."""
        return {}


def weighted_mean(loss: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
    """Mean of per-sample losses, weights normalised over the batch (zero-sum guarded)."""
    if weight is None:
        return loss.mean()
    return (loss * weight).sum() / weight.sum().clamp_min(1e-12)


# hparams every single-network method's spec declares: ``loss`` None is cross-entropy (None
# keeps records written before losses were pluggable the same runs)
SINGLE_NET_HPARAMS: dict[str, Any] = {
    "loss": Optional(Str(None, doc="a registered loss (ce, gce, sce, a plugin's); null: ce")),
}


def build_loss(ctx: TrainContext) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """The per-sample loss named by ``hparams["loss"]`` (a registered :class:`LossSpec`)."""
    name = ctx.hparams.get("loss")
    if not name or name == "ce":
        return lambda logits, labels: F.cross_entropy(logits, labels, reduction="none")
    host = ctx.extras.get("host")
    if host is None:
        from nlbench.plugins import get_host

        host = get_host()
    return host.get("losses", str(name)).factory(ctx.hparams)


class SingleNetMethod(Method):
    """ERM: one network, SGD, a per-sample loss (``loss``, default cross-entropy) on the noisy
    labels, weighted if the plan or :meth:`sample_weights` says."""

    def __init__(self, ctx: TrainContext) -> None:
        super().__init__(ctx)
        self.model = ctx.build_model()
        self.optimizer = ctx.make_optimizer(self.model.parameters())
        self.loss_fn = build_loss(ctx)

    def networks(self) -> dict[str, nn.Module]:
        return {"net": self.model}

    def scheduled_optimizers(self) -> list[torch.optim.Optimizer]:
        return [self.optimizer]

    def sample_weights(self, batch: Batch, loss: torch.Tensor) -> torch.Tensor | None:
        """Per-sample loss weights for this batch (a reweighter's hook); default: the plan's."""
        return batch.weight

    def train_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        self.model.train()
        with self.ctx.autocast():
            logits = self.model(batch.x)
        loss_each = self.loss_fn(logits.float(), batch.y)
        loss = weighted_mean(loss_each, self.sample_weights(batch, loss_each.detach()))
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        acc = (logits.detach().argmax(1) == batch.y).float().mean()
        return {"loss": loss.detach(), "train_acc": acc}
