"""Diagnostics the runner computes with the clean labels it keeps back from methods."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from nlbench.training.data import EpochPlan
from nlbench.training.method import Method


def _mean(mask: torch.Tensor, hits: torch.Tensor) -> float | None:
    n = int(mask.sum())
    return float(hits[mask].float().mean()) if n else None


def fit_metrics(logits: torch.Tensor, noisy: torch.Tensor, clean: torch.Tensor) -> dict[str, Any]:
    """How far the model fits the labels it was given.

    noisy_fit: accuracy against the noisy labels on the corrupted samples (memorisation).
    clean_fit: accuracy on the samples whose label is correct.
    train_acc_noisy: accuracy against the noisy labels on every sample (for epochs_to_fit).
    """
    pred = logits.argmax(1)
    corrupted = noisy != clean
    hits = pred == noisy
    return {
        "noisy_fit": _mean(corrupted, hits),
        "clean_fit": _mean(~corrupted, hits),
        "train_acc_noisy": float(hits.float().mean()) if hits.numel() else None,
        "train_acc_clean": float((pred == clean).float().mean()) if hits.numel() else None,
    }


def plan_metrics(plan: EpochPlan | None, noisy: torch.Tensor, clean: torch.Tensor) -> dict:
    """Size and label precision of an epoch's selected subset (None when no selection).

    When the plan weights its samples (cluster sizes, densities), ``weighted_precision`` is the
    weight-averaged fraction of correct labels: what the loss actually sees.
    """
    out: dict = {"selected": None, "selected_precision": None}
    if plan is None or (plan.indices is None and plan.weights is None):
        return out
    correct_all = noisy == clean
    if plan.indices is not None:
        idx = plan.indices.to(noisy.device)
        correct = correct_all[idx]
        clean_total = int(correct_all.sum())
        out = {
            "selected": int(idx.numel()),
            "selected_precision": float(correct.float().mean()) if idx.numel() else None,
            "selected_recall": int(correct.sum()) / clean_total if clean_total else None,
        }
    else:
        correct = correct_all
    if plan.weights is not None and plan.weights.numel() == correct.numel():
        w = plan.weights.to(noisy.device).float()
        total = float(w.sum())
        out["weighted_precision"] = float((w * correct.float()).sum()) / total if total else None
    return out


def roc_auc(scores: torch.Tensor, positive: torch.Tensor) -> float | None:
    """Area under the ROC curve (Mann-Whitney U with average ranks for ties)."""
    scores = scores.detach().double().cpu()
    positive = positive.detach().bool().cpu()
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        return None
    order = torch.argsort(scores)
    sorted_scores = scores[order]
    ranks = torch.empty_like(scores)
    ranks[order] = torch.arange(1, len(scores) + 1, dtype=torch.float64)
    uniq, inverse = torch.unique_consecutive(sorted_scores, return_inverse=True)
    if len(uniq) < len(scores):  # average the ranks of tied scores
        sums = torch.zeros(len(uniq), dtype=torch.float64).index_add_(0, inverse, ranks[order])
        counts = torch.bincount(inverse, minlength=len(uniq)).double()
        ranks[order] = (sums / counts)[inverse]
    u = float(ranks[positive].sum()) - n_pos * (n_pos + 1) / 2
    return u / (n_pos * n_neg)


def detection_auc(
    clean_prob: torch.Tensor, noisy: torch.Tensor, clean: torch.Tensor
) -> float | None:
    """AUC of a method's clean-probability against the true clean flags."""
    return roc_auc(clean_prob, (noisy == clean).to(clean_prob.device))


class BatchSelection:
    """Scores the samples a method reports training on, batch by batch, like a plan's subset.

    A method's ``train_step`` may return ``"selected"``: the global indices it trained on
    (``batch.index[keep]``) or a boolean mask over the batch. Counts stay on the device; the
    host reads them once, in :meth:`metrics` at the end of the epoch.
    """

    def __init__(self, noisy: torch.Tensor, clean: torch.Tensor) -> None:
        self.correct = noisy.to(clean.device) == clean
        zero = torch.zeros((), dtype=torch.long, device=clean.device)
        self.picked, self.hits, self.seen, self.clean_seen = zero, zero, zero, zero
        self.reported = False

    def add(self, batch_index: torch.Tensor, selected: torch.Tensor) -> None:
        """Count one batch: ``batch_index`` its samples, ``selected`` those trained on."""
        batch_index = batch_index.to(self.correct.device)
        selected = selected.to(self.correct.device)
        if selected.dtype == torch.bool:
            selected = batch_index[selected]
        self.picked = self.picked + selected.numel()
        self.hits = self.hits + self.correct[selected].sum()
        self.seen = self.seen + batch_index.numel()
        self.clean_seen = self.clean_seen + self.correct[batch_index].sum()
        self.reported = True

    def metrics(self, total: Any = None) -> dict[str, Any]:
        """``batch_selected`` (samples trained on), ``batch_selected_frac`` (of those seen),
        ``batch_selected_precision`` (correct labels among them) and ``batch_selected_recall``
        (share of the seen correctly-labelled samples that were picked); {} if none reported.

        ``total``: a function summing a count over DDP ranks (default: identity).
        """
        if not self.reported:
            return {}
        total = total or (lambda v: v)
        picked, hits = total(float(self.picked)), total(float(self.hits))
        seen, clean_seen = total(float(self.seen)), total(float(self.clean_seen))
        return {
            "batch_selected": int(picked),
            "batch_selected_frac": picked / seen if seen else None,
            "batch_selected_precision": hits / picked if picked else None,
            "batch_selected_recall": hits / clean_seen if clean_seen else None,
        }


@torch.no_grad()
def predictor_logits(
    method: Any,
    ensemble: Callable[[], torch.Tensor],
    train: Any,
    batch_size: int,
    index: torch.Tensor | None = None,
) -> torch.Tensor:
    """Train-set logits of the predictor that is tested (``method.predict``), for fit metrics.

    A method keeping the default predict (the sum over its networks) takes ``ensemble()``, the
    scan's summed logits (no extra pass); one that overrides predict (e.g. one network of two)
    is evaluated with it, on the rows of ``index`` when given (a fit subset).
    """
    if type(method).predict is Method.predict:
        return ensemble()
    for net in method.networks().values():
        net.eval()
    chunks = train.scan_batches(batch_size) if index is None else index.split(batch_size)
    return torch.cat([method.predict(train.plain(idx)).float() for idx in chunks])
