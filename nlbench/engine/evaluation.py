"""After each epoch: test/val accuracy, the train-set scan and the metrics of the epoch line.

Everything here is measured with the clean labels the runner keeps back from methods; none of
it changes the weights or draws random numbers, so evaluating never changes a run's result.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import torch

from nlbench.core.hparams import eval_batch_size
from nlbench.engine import context
from nlbench.engine.context import ScanCache
from nlbench.engine.epoch_loop import EpochTrained
from nlbench.engine.prepare import Prepared
from nlbench.training import distributed
from nlbench.training.data import EpochPlan, EvalSet
from nlbench.training.distributed import DistInfo
from nlbench.training.fitscan import fit_logits, fit_subset_index, rows
from nlbench.training.method import Method, TrainContext
from nlbench.training.metrics import (
    BatchSelection,
    detection_auc,
    fit_metrics,
    plan_metrics,
    predictor_logits,
)


@torch.no_grad()
def evaluate(method: Method, evalset: Any, batch_size: int) -> float:
    """Accuracy of ``method.predict`` on ``evalset`` (networks in eval mode)."""
    for net in method.networks().values():
        net.eval()
    correct = torch.zeros((), device=method.ctx.device)
    for x, y in evalset.batches(batch_size):
        correct += (method.predict(x).argmax(1) == y).sum()
    return float(correct) / max(1, len(evalset))


def eval_sets(prep: Prepared, device: torch.device) -> dict[str, Any]:
    """``test`` and, when the dataset has one, ``val`` (model selection, e.g. Clothing1M)."""
    data = prep.data
    if data.stream is not None:
        return cast(dict[str, Any], data.stream.eval_sets(device))
    sets = {"test": EvalSet(data.test, data.mean, data.std, device, False)}
    if data.val is not None:
        sets["val"] = EvalSet(data.val, data.mean, data.std, device, False)
    return sets


@dataclass
class Evaluator:
    """Measures one run's method after each epoch (the same sets and subset every epoch)."""

    method: Method
    train: Any
    clean: torch.Tensor
    evalsets: dict[str, Any]
    batch_size: int
    cache: ScanCache
    dist: DistInfo = distributed.SINGLE
    fit_idx: torch.Tensor | None = None  # None: fit metrics on the whole train set

    @classmethod
    def for_run(
        cls, prep: Prepared, ctx: TrainContext, method: Method, cache: ScanCache, dist: DistInfo
    ) -> Evaluator:
        """The evaluator of a run; a fit subset is noted in the record's data info."""
        fit_idx = fit_subset_index(ctx.train, prep.cfg.seed)
        if fit_idx is not None:
            prep.data_info["fit_subset"] = int(fit_idx.numel())
        clean = torch.from_numpy(prep.clean).to(ctx.device)
        bs = eval_batch_size(prep.hparams, ctx.device)
        return cls(method, ctx.train, clean, eval_sets(prep, ctx.device), bs, cache, dist, fit_idx)

    def selection(self) -> BatchSelection:
        """A fresh scorer of the samples the method reports training on this epoch."""
        return BatchSelection(self.train.labels, self.clean)

    def accuracies(self) -> dict[str, float]:
        sets = self.evalsets.items()
        return {f"{k}_acc": evaluate(self.method, v, self.batch_size) for k, v in sets}

    def fit(self, method_scanned: bool) -> dict[str, Any]:
        """noisy_fit/clean_fit/train_acc_* of the tested predictor (rows of the fit subset)."""

        def scan(index: torch.Tensor) -> Any:  # looked up on the module: tests spy on it
            return context.scan_train_set(
                self.method, self.train, self.batch_size, self.dist, index
            )

        full = lambda: fit_logits(self.cache.get, scan, self.fit_idx, method_scanned)  # noqa: E731
        logits = predictor_logits(self.method, full, self.train, self.batch_size, self.fit_idx)
        labels, clean = rows(self.train.labels, self.fit_idx), rows(self.clean, self.fit_idx)
        return fit_metrics(logits, labels, clean)

    def epoch_metrics(
        self,
        epoch: int,
        trained: EpochTrained,
        plan: EpochPlan | None,
        selection: BatchSelection,
        method_scanned: bool,
        select_s: float,
    ) -> dict[str, Any]:
        """The epoch's line (without ``seconds`` and observer extras, which the loop adds)."""
        means = dict(trained.means)
        total = lambda v: distributed.sum_scalar(v, self.dist)  # noqa: E731
        metrics = {
            "epoch": epoch,
            "lr": trained.lr,
            "train_loss": means.pop("loss", None),
            **self.accuracies(),
            **self.fit(method_scanned),
            **plan_metrics(plan, self.train.labels, self.clean),
            "select_s": select_s,
            **selection.metrics(total),
            **{f"train_{k}" if not k.startswith("train_") else k: v for k, v in means.items()},
        }
        metrics["detection_auc"] = (
            detection_auc(plan.clean_prob, self.train.labels, self.clean)
            if plan is not None and plan.clean_prob is not None
            else None
        )
        metrics.update(plan.metrics if plan else {})
        return metrics
