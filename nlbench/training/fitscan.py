"""Fit metrics on a seeded subset of the train set, for datasets too large to scan per epoch.

A dataset whose train set has a ``fit_subset`` attribute (Clothing1M's stream: 1M images, an
epoch being 32k of them) asks the runner to measure ``noisy_fit``/``clean_fit``/``train_acc_*``
on that many train samples, the same ones every epoch, instead of the whole set. The whole set
is still scanned when the method itself asks for the scan (GMMs, selection); the metrics then
take the subset's rows of that scan, so the numbers mean the same for every method. Metric
names are unchanged; the record's data info says ``fit_subset: N``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from nlbench.core.seeding import derive_seed, torch_generator
from nlbench.training.method import Scan


def fit_subset_index(train: Any, seed: int) -> torch.Tensor | None:
    """Sorted positions of the fit subset, or None when the whole set is scanned."""
    n = getattr(train, "fit_subset", None)
    if not n or int(n) >= len(train):
        return None
    order = torch.randperm(len(train), generator=torch_generator(derive_seed("fit_subset", seed)))
    return order[: int(n)].sort().values.to(train.labels.device)


def fit_logits(
    full: Callable[[], Scan],
    subset: Callable[[torch.Tensor], Scan],
    index: torch.Tensor | None,
    method_scanned: bool,
) -> torch.Tensor:
    """Ensemble logits for the fit metrics (rows of ``index`` when given).

    The full scan is taken when there is no subset or the method scanned this epoch (it will
    want the scan of the new weights next epoch, and ``full`` caches it); otherwise only the
    subset is scanned.
    """
    if index is None or method_scanned:
        logits = full().ensemble_logits()
        return logits if index is None else logits[index]
    return subset(index).ensemble_logits()


def rows(t: torch.Tensor, index: torch.Tensor | None) -> torch.Tensor:
    return t if index is None else t[index]
