"""MixMatch pieces shared by DivideMix and FaMUS: sharpening, mixing and the semi-supervised losses.

Follows MixMatch (Berthelot et al. 2019) as DivideMix's official code uses it: one mixing
coefficient per batch, ``l ~ Beta(α, α)`` folded to ``l = max(l, 1 − l)`` so each mixed sample
stays closer to its own input, and one random permutation over the whole concatenated batch
(labeled and unlabeled together). Every draw takes an explicit ``torch.Generator``; nothing here
syncs with the host, so a training step stays asynchronous on CUDA.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def full_precision(logits: torch.Tensor) -> torch.Tensor:
    """bf16/fp16 logits → float32 for the losses; float32/float64 (float64 tests) stay."""
    return logits.float() if logits.dtype in (torch.float16, torch.bfloat16) else logits


def sharpen(p: torch.Tensor, T: float) -> torch.Tensor:
    """Temperature-sharpen rows of probabilities: ``p^(1/T)`` renormalised (Eq. (7), MixMatch).

    T < 1 pushes a guessed label towards one-hot, which lowers the entropy of the targets the
    network is trained on; T = 1 leaves ``p`` unchanged (up to renormalisation).
    """
    if T <= 0:
        raise ValueError(f"sharpening temperature must be positive, got {T}")
    powered = p.clamp_min(0).pow(1.0 / T)
    return powered / powered.sum(dim=1, keepdim=True).clamp_min(1e-12)


def beta_draw(alpha: float, gen: torch.Generator) -> torch.Tensor:
    """One ``Beta(α, α)`` draw as a 0-dim float tensor on ``gen``'s device (no host sync).

    Beta(α, α) = G₁ / (G₁ + G₂) with G ~ Gamma(α, 1). α ≤ 0 means "no mixing" and gives 1.
    """
    if alpha <= 0:
        return torch.ones((), device=gen.device)
    shape = torch.full((2,), float(alpha), device=gen.device)
    g = torch._standard_gamma(shape, generator=gen)
    total = g.sum()
    return torch.where(total > 0, g[0] / total.clamp_min(1e-30), torch.full_like(total, 0.5))


def mixmatch(
    inputs: torch.Tensor, targets: torch.Tensor, alpha: float, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Mix a concatenated batch with a shuffled copy of itself (MixUp as MixMatch applies it).

    Args:
        inputs: the whole batch, e.g. ``[x1, x2, u1, u2]`` concatenated (M×…).
        targets: soft targets aligned with ``inputs`` (M×C).
        alpha: Beta(α, α) concentration (4 on CIFAR, 0.5 on Clothing1M in DivideMix).
        gen: the generator for both the coefficient and the permutation.
    Returns:
        ``(mixed_inputs, mixed_targets, l)`` with ``l ≥ 0.5`` a 0-dim tensor; both outputs are
        ``l · a + (1 − l) · a[perm]`` for one permutation ``perm`` of all M rows.
    """
    if inputs.shape[0] != targets.shape[0]:
        raise ValueError(f"inputs ({inputs.shape[0]}) and targets ({targets.shape[0]}) differ")
    lam = beta_draw(alpha, gen)
    lam = torch.maximum(lam, 1 - lam).to(inputs.device)
    perm = torch.randperm(inputs.shape[0], generator=gen, device=gen.device).to(inputs.device)
    lam_x = lam.to(inputs.dtype)
    mixed_inputs = lam_x * inputs + (1 - lam_x) * inputs[perm]
    mixed_targets = lam * targets + (1 - lam) * targets[perm]
    return mixed_inputs, mixed_targets, lam


def soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean over rows of ``−Σ_c t_c log softmax(z)_c`` (DivideMix's Lx, Eq. (9))."""
    return -(F.log_softmax(full_precision(logits), dim=1) * targets).sum(dim=1).mean()


def probability_mse(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean squared error between softmax probabilities and soft targets (DivideMix's Lu, Eq. (10)).

    The mean runs over rows *and* classes, as in the official code (``torch.mean((p − q)²)``).
    """
    return (torch.softmax(full_precision(logits), dim=1) - targets).pow(2).mean()


def uniform_prior_penalty(logits: torch.Tensor) -> torch.Tensor:
    """``Σ_c π_c log(π_c / p̄_c)`` with a uniform prior π (DivideMix Eq. (11)).

    p̄ is the batch-mean softmax. The penalty stops the network from assigning every
    (mostly unlabeled) sample to one class, which high noise otherwise encourages.
    """
    mean_prob = torch.softmax(full_precision(logits), dim=1).mean(0)
    prior = torch.full_like(mean_prob, 1.0 / mean_prob.numel())
    return (prior * (prior.log() - mean_prob.clamp_min(1e-12).log())).sum()


def negative_entropy(logits: torch.Tensor) -> torch.Tensor:
    """Mean of ``Σ_c p_c log p_c``: the confidence penalty of DivideMix's warm-up (asym noise)."""
    logp = F.log_softmax(full_precision(logits), dim=1)
    return (logp.exp() * logp).sum(dim=1).mean()


def linear_rampup(progress: float, warmup: int, length: int) -> float:
    """The ramp factor in [0, 1]: ``clip((progress − warm-up) / length, 0, 1)``."""
    if length <= 0:
        return 1.0
    return min(max((progress - warmup) / length, 0.0), 1.0)
