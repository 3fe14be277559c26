"""Two-component GMM on per-sample losses: the clean/noisy split of DivideMix and FaMUS.

Settings follow DivideMix's official code: min–max normalised losses,
``GaussianMixture(2, max_iter=10, tol=1e-2, reg_covar=5e-4)``, clean probability = posterior
of the component with the smaller mean. A seed makes the fit deterministic (the official code
sets none).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from nlbench.core.errors import UsageError


def normalise_losses(losses: torch.Tensor) -> torch.Tensor:
    """Min–max normalise to [0, 1] over the whole set (constant input → zeros)."""
    lo, hi = losses.min(), losses.max()
    return (losses - lo) / (hi - lo).clamp_min(1e-12)


def clean_probability(
    losses: torch.Tensor,
    seed: int,
    normalise: bool = True,
    max_iter: int = 10,
    tol: float = 1e-2,
    reg_covar: float = 5e-4,
) -> torch.Tensor:
    """Posterior probability of the smaller-mean (clean) component for every sample.

    Args:
        losses: per-sample training losses, shape (N,), any device.
        seed: random_state of the GMM's initialisation.
    Returns:
        float32 tensor (N,) on the device of ``losses``.
    """
    # lazy: keeps sklearn out of this module's import (CLI start-up)
    from sklearn.mixture import GaussianMixture

    x = normalise_losses(losses.float()) if normalise else losses.float()
    arr = x.detach().cpu().numpy().astype(np.float64).reshape(-1, 1)
    gmm = GaussianMixture(
        n_components=2, max_iter=max_iter, tol=tol, reg_covar=reg_covar, random_state=seed
    )
    gmm.fit(arr)
    prob = gmm.predict_proba(arr)[:, int(np.argmin(gmm.means_.ravel()))]
    return torch.from_numpy(prob.astype(np.float32)).to(losses.device)


@dataclass
class Split:
    """One network's training split: labeled indices with their weights, unlabeled indices."""

    labeled: torch.Tensor
    weight: torch.Tensor
    unlabeled: torch.Tensor
    fallback: str | None = None


def co_divide(
    prob: torch.Tensor, pool: torch.Tensor, threshold: float, min_labeled: int, min_unlabeled: int
) -> Split:
    """Split ``pool`` by the *other* network's clean probability ``prob`` (aligned with pool).

    DivideMix's co-divide, which FaMUS's MixMatch variant shares. Labeled = ``prob > τ`` with
    weight ``prob``. When that leaves fewer than ``min_labeled`` labeled or ``min_unlabeled``
    unlabeled samples (DivideMix's code crashes on an empty loader, DivideMix#49), fall back to
    the median split of FaMUS's code: the more probably clean half is labeled.
    """
    n = int(pool.numel())
    if n < 2:
        raise UsageError(f"a labeled/unlabeled split needs at least 2 training samples, got {n}")
    mask = prob > threshold
    n_labeled = int(mask.sum())
    fallback = None
    if n_labeled < min_labeled or n - n_labeled < min_unlabeled:
        order = torch.argsort(prob, descending=True, stable=True)
        mask = torch.zeros_like(mask)
        mask[order[: max(1, min(n - 1, n // 2))]] = True
        fallback = "median"
    return Split(pool[mask], prob[mask], pool[~mask], fallback)
