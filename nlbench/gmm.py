"""Two-component GMM on per-sample losses: the clean/noisy split of DivideMix and FaMUS.

Settings follow DivideMix's official code: min–max normalised losses,
``GaussianMixture(2, max_iter=10, tol=1e-2, reg_covar=5e-4)``, clean probability = posterior
of the component with the smaller mean. A seed makes the fit deterministic (the official code
sets none).
"""

from __future__ import annotations

import numpy as np
import torch


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
    from sklearn.mixture import GaussianMixture

    x = normalise_losses(losses.float()) if normalise else losses.float()
    arr = x.detach().cpu().numpy().astype(np.float64).reshape(-1, 1)
    gmm = GaussianMixture(
        n_components=2, max_iter=max_iter, tol=tol, reg_covar=reg_covar, random_state=seed
    )
    gmm.fit(arr)
    prob = gmm.predict_proba(arr)[:, int(np.argmin(gmm.means_.ravel()))]
    return torch.from_numpy(prob.astype(np.float32)).to(losses.device)
