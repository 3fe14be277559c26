"""Small-loss sample selection (Co-teaching, JoCoR): the forget-rate schedule and the pick.

Han et al. (NeurIPS 2018), Algorithm 1: keep the ``R(T) = 1 − min(T·τ/T_k, τ)`` fraction of
each mini-batch with the smallest loss. The official code (``bhanML/Co-teaching`` and
``hongxin001/JoCoR``, ``main.py``) builds the schedule as ``linspace(0, τ^c, T_k)`` over its
epoch index and trains epochs 1 … n−1 (epoch 0 only evaluates the random weights), so its
first trained epoch already forgets τ^c/(T_k − 1). nlbench trains epochs 0 … n−1 and reads
the same array one position on: epoch ``e`` forgets what the official epoch ``e + 1`` does.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def forget_rate(epoch: int, tau: float, num_gradual: int, exponent: float = 1.0) -> float:
    """The fraction of a batch dropped in (0-based) epoch ``epoch``: the official schedule
    ``[linspace(0, τ^c, T_k), τ, τ, ...]`` at position ``epoch + 1``."""
    pos = epoch + 1
    if num_gradual <= 0 or pos >= num_gradual:
        return float(tau)
    if num_gradual == 1:
        return 0.0
    return float(tau**exponent) * pos / (num_gradual - 1)


def num_remember(batch_size: int, rate: float) -> int:
    """``int((1 − rate)·B)`` as the official code, at least one sample (the official code
    divides by it)."""
    return max(1, int((1.0 - rate) * batch_size))


def small_loss(loss: torch.Tensor, keep: int) -> torch.Tensor:
    """Positions of the ``keep`` smallest losses, smallest first (stable on ties)."""
    return torch.sort(loss.detach(), stable=True).indices[:keep]


def symmetric_kl(logits_1: torch.Tensor, logits_2: torch.Tensor) -> torch.Tensor:
    """Per-sample KL(p2‖p1) + KL(p1‖p2), gradients through both sides (JoCoR's
    co-regularisation: the official ``kl_loss_compute`` detaches neither)."""
    log_p1, log_p2 = F.log_softmax(logits_1, 1), F.log_softmax(logits_2, 1)
    kl_21 = F.kl_div(log_p1, log_p2, reduction="none", log_target=True).sum(1)
    kl_12 = F.kl_div(log_p2, log_p1, reduction="none", log_target=True).sum(1)
    return kl_21 + kl_12


def batch_mask(size: int, picked: torch.Tensor) -> torch.Tensor:
    """A boolean mask over a batch of ``size`` with ``picked`` set."""
    mask = torch.zeros(size, dtype=torch.bool, device=picked.device)
    mask[picked] = True
    return mask
