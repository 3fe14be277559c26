"""Phases: a method's work before its first epoch, in units the runner checkpoints one by one.

Confident Learning trains K fold models for its out-of-fold probabilities; forward correction
trains an estimator for its transition matrix. Hidden in the first epoch's hook, that work
had no checkpoint (a kill lost all of it), no progress line and no place in the run's cost.
A method declares it instead (:meth:`nlbench.training.method.Method.phases`): a :class:`Phase` is a
name and a number of units; the runner calls ``run_unit(i)`` for every unit not yet done,
then checkpoints (the method's registered state, the RNGs and the phase's progress), so a
SIGKILL inside a phase resumes at the unit it was in and ends with the uninterrupted run's
numbers. Units count into the record's ``images``, ``train_s`` and ``cpu_s``, and each phase
is summed up in ``record["phases"]``.

What a unit computes must live in registered state (``Method.register_state``): a fold's
probabilities, an estimator network (:class:`AuxNet` restores in place).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

from nlbench.core.errors import Interrupted
from nlbench.core.schedules import lr_at
from nlbench.training.data import EpochPlan

if TYPE_CHECKING:
    from nlbench.training.method import TrainContext


@dataclass(frozen=True)
class Phase:
    """Work before the first epoch.

    Attributes:
        name: shown in progress and the record (``[a-z][a-z0-9_]*``), e.g. ``kfold``.
        units: how many resumable units it has (e.g. folds × epochs).
        run_unit: ``run_unit(i) -> images`` does unit ``i`` (0-based) and returns the number of
            images it processed (forward passes of training and prediction).
        unit: what a unit is, for people (``"fold epoch"``).
    """

    name: str
    units: int
    run_unit: Callable[[int], int]
    unit: str = "unit"


class AuxNet:
    """A network of the run's model trained with cross-entropy on the noisy labels of some
    samples, one epoch per call: the usual work of a phase unit (fold models, estimators).

    Its ``state_dict``/``load_state_dict`` cover network and optimizer, so a method that
    registers it (``register_state("aux")``) resumes it in place.
    """

    def __init__(self, ctx: TrainContext) -> None:
        self.ctx = ctx
        self.reset()

    def reset(self) -> None:
        """A fresh network (the run's initialiser, the global torch RNG) and optimizer."""
        self.net = self.ctx.build_model()
        self.opt = self.ctx.make_optimizer(self.net.parameters())

    def train_epoch(self, epoch: int, epochs: int, indices: torch.Tensor | None = None) -> int:
        """Epoch ``epoch`` of ``epochs`` on ``indices`` (None: all), the run's LR schedule
        stretched over ``epochs``; returns the images seen."""
        ctx, plan = self.ctx, EpochPlan(indices=indices)
        hp = {**ctx.hparams, "epochs": epochs}
        steps = ctx.train.num_batches(plan)
        seen = 0
        self.net.train()
        for i, batch in enumerate(ctx.train.batches(plan)):
            lr, momentum = lr_at(epoch + i / max(1, steps), hp, steps)
            for group in self.opt.param_groups:
                group["lr"] = lr
                if momentum is not None and "momentum" in group:
                    group["momentum"] = momentum
            with ctx.autocast():
                logits = self.net(batch.x)
            loss = F.cross_entropy(logits.float(), batch.y)
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
            seen += int(batch.y.shape[0])
        return seen

    @torch.no_grad()
    def probabilities(
        self, indices: torch.Tensor | None = None, batch_size: int = 512
    ) -> torch.Tensor:
        """Softmax of the samples ``indices`` (None: all, in order), without augmentation."""
        train = self.ctx.train
        index = torch.arange(len(train), device=train.device) if indices is None else indices
        self.net.eval()
        parts = []
        for idx in index.split(batch_size):
            with self.ctx.autocast():
                parts.append(self.net(train.plain(idx)).float().softmax(1))
        return torch.cat(parts) if parts else torch.empty(0, self.ctx.num_classes)

    def state_dict(self) -> dict[str, Any]:
        return {"net": self.net.state_dict(), "opt": self.opt.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.net.load_state_dict(state["net"])
        self.opt.load_state_dict(state["opt"])


@dataclass
class PhaseTotals:
    """What the runner carries through phases and into the epochs (checkpointed as plain
    Python in the checkpoint's totals)."""

    images: int = 0
    train_s: float = 0.0
    log: dict[str, dict[str, Any]] | None = None

    def entry(self, phase: Phase) -> dict[str, Any]:
        log = self.log if self.log is not None else {}
        self.log = log
        return log.setdefault(
            phase.name, {"units": phase.units, "done": 0, "unit": phase.unit, "images": 0, "s": 0.0}
        )


def run_phases(
    phases: list[Phase],
    totals: PhaseTotals,
    save: Callable[[PhaseTotals], None],
    progress: Any,
    faults: Any,
    stopped: Callable[[], bool],
) -> PhaseTotals:
    """Run every unit not yet done, checkpointing (``save``) after each.

    ``faults.after_unit(name, i)`` is the deterministic crash point between a unit's work and
    its checkpoint; ``stopped()`` (Ctrl-C) is honoured between units.
    """
    for phase in phases:
        entry = totals.entry(phase)
        if entry["done"] >= phase.units:
            continue
        start = getattr(progress, "phase_start", None)
        if start is not None:
            start(phase.name, phase.units, entry["done"])
        for i in range(int(entry["done"]), phase.units):
            t0 = time.perf_counter()
            images = int(phase.run_unit(i))
            seconds = time.perf_counter() - t0
            entry.update(done=i + 1, images=entry["images"] + images, s=entry["s"] + seconds)
            totals.images += images
            totals.train_s += seconds
            progress.step()
            faults.after_unit(phase.name, i + 1)
            save(totals)
            if stopped():
                raise Interrupted("interrupted")
    return totals
