"""One training epoch: batches → LR from the schedule → ``train_step`` → running loss means.

The step loop of the runner, alone: it knows nothing of records, evaluation or checkpoints, so
benchmarks (:mod:`nlbench.bench.measure`) time exactly what a run trains.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import torch

from nlbench.core.errors import Interrupted
from nlbench.core.schedules import lr_at
from nlbench.engine.faults import KillSwitch
from nlbench.engine.run_state import NullProgress, Progress
from nlbench.training.data import Batch, EpochPlan
from nlbench.training.method import Method, TrainContext
from nlbench.training.metrics import BatchSelection


class EpochTrained(NamedTuple):
    """What an epoch of training reports: per-sample means of the step outputs, samples seen
    and the last learning rate set."""

    means: dict[str, float]
    seen: int
    lr: float


def apply_lr(method: Method, lr: float, momentum: float | None) -> None:
    """Set the scheduled LR (and momentum, for one-cycle) on every scheduled optimiser."""
    for opt in method.scheduled_optimizers():
        for group in opt.param_groups:
            group["lr"] = lr
            if momentum is not None and "momentum" in group:
                group["momentum"] = momentum


def epoch_steps(
    method: Method, ctx: TrainContext, epoch: int, plan: EpochPlan | None
) -> tuple[Iterator[Batch], int]:
    """The epoch's batches (the method's own when it brings them) and how many there are."""
    own = method.epoch_batches(epoch, plan)
    steps = plan.steps if own is not None and plan is not None and plan.steps else None
    batches = own if own is not None else ctx.train.batches(plan)
    return batches, steps or ctx.train.num_batches(plan)


class EpochTrainer:
    """Runs epochs step by step; stops at a step boundary when ``stopped()`` turns true."""

    def __init__(
        self,
        progress: Progress | None = None,
        faults: KillSwitch | None = None,
        stopped: Callable[[], bool] = lambda: False,
    ) -> None:
        self.progress = progress or NullProgress()
        self.faults = faults or KillSwitch("")
        self.stopped = stopped

    def run(
        self,
        method: Method,
        ctx: TrainContext,
        epoch: int,
        plan: EpochPlan | None,
        selection: BatchSelection | None = None,
    ) -> EpochTrained:
        """Train one epoch; per-batch picks a method reports go to ``selection``."""
        sums: dict[str, Any] = {}
        batches, steps = epoch_steps(method, ctx, epoch, plan)
        seen, lr = 0, 0.0
        self.progress.epoch_start(epoch, steps)
        for i, batch in enumerate(batches):
            lr, momentum = lr_at(epoch + i / max(1, steps), ctx.hparams, steps)
            apply_lr(method, lr, momentum)
            out = method.train_step(batch)
            if (picked := out.pop("selected", None)) is not None and selection is not None:
                selection.add(batch.index, picked)
            b = int(batch.y.shape[0])
            for k, v in out.items():
                sums[k] = sums.get(k, 0) + v.detach().float() * b
            seen += b
            self.progress.step()
            self.faults.after_step(epoch, i + 1)
            if self.stopped():
                raise Interrupted("interrupted")
        means = {k: float(v) / max(1, seen) for k, v in sums.items()}  # one host sync per epoch
        return EpochTrained(means, seen, lr)


def sync(device: torch.device) -> None:
    """Wait for queued GPU work, so that epoch timings measure it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
