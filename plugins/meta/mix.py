"""FaMUS's MixMatch variant (``famus --set mixmatch=true``): the batches and losses of a step.

Not a plugin (no entry point). The FaMUS paper's state-of-the-art runs (Xu et al., FaMUS, CVPR
2021) are MW-Net with FaMUS's samplers on top of DivideMix's machinery; the official code exists
only for CNWL red noise (``train_famus_redminiimage.py``, ``data_utils.py``), which this follows:

* co-divide: each network trains on the split its *peer's* GMM makes — labeled = clean
  probability above ``p_threshold`` (median split when fewer than a batch or more than 90 % are
  labeled), unlabeled = the rest; the meta set = probability above ``meta_threshold``; every
  sample carries its clean probability ``w``;
* label refinement on labeled, unlabeled *and* meta samples alike:
  ``sharpen(w·onehot(noisy label) + (1 − w)·p̄_own, T)``, with ``p̄_own`` the training network's
  mean prediction over two augmentations; co-guessed targets
  ``sharpen(mean of both networks over both views, T)``; T = 0.5; the training network runs
  in train mode, the peer in eval mode, all under ``no_grad`` (as the official code);
* MixMatch: ``[x1, x2, u1, u2]`` with refined and guessed targets mixed by one ``l`` and one
  permutation; the meta batch ``[m1, m2]`` mixed separately;
* per mixed row ``ℓ_i`` = soft cross-entropy against the refined target (the meta-net's input);
  objective ``2·Σ_{labeled rows} w_i ℓ_i + 2·λu·Σ_{unlabeled rows} w_i·MSE_i + prior penalty``
  with MW-Net's weights normalised over the whole batch (the 2 undoes the halving), ``MSE_i``
  the mean squared error of the softmax against the guessed target, λu ramped linearly over
  ``rampup_epochs`` after the warm-up; meta loss = soft cross-entropy on the mixed meta batch
  plus the prior penalty.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from nlbench.api import Batch
from nlbench.api.algorithms import (
    full_precision,
    mixmatch,
    sharpen,
    soft_cross_entropy,
    uniform_prior_penalty,
)

TEMPERATURE = 0.5  # hard-coded in the official code (boost_labeled_data / boost_unlabeled_data)
MIX_DEFAULTS = {"lambda_u": 50.0, "alpha": 4.0, "rampup_epochs": 16}  # the official argparse


@dataclass
class MixMetaBatch(Batch):
    """Raw views of one step: labeled ``x``/``x2`` (weights ``weight``), unlabeled ``u1``/``u2``
    with noisy labels ``uy`` and weights ``uw``, meta ``m1``/``m2`` with ``my``/``mw``."""

    x2: torch.Tensor | None = None
    u1: torch.Tensor | None = None
    u2: torch.Tensor | None = None
    uy: torch.Tensor | None = None
    uw: torch.Tensor | None = None
    m1: torch.Tensor | None = None
    m2: torch.Tensor | None = None
    my: torch.Tensor | None = None
    mw: torch.Tensor | None = None


@dataclass
class MixTask:
    """A mixed step: what :meth:`Learner.mix_step` differentiates."""

    x: torch.Tensor  # mixed training inputs; the first n_x rows are the labeled ones
    targets: torch.Tensor  # mixed refined targets
    guess: torch.Tensor  # mixed co-guessed targets
    n_x: int
    lambda_u: float
    meta_x: torch.Tensor
    meta_targets: torch.Tensor

    def costs(self, logits: torch.Tensor) -> torch.Tensor:
        """Per-row soft cross-entropy against the refined target (the meta-net's input)."""
        return -(F.log_softmax(full_precision(logits), dim=1) * self.targets).sum(dim=1)

    def total(self, logits: torch.Tensor, costs: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        mse = (torch.softmax(full_precision(logits), dim=1) - self.guess).pow(2).mean(dim=1)
        n = self.n_x
        return (
            2 * (w[:n] * costs[:n]).sum()
            + 2 * self.lambda_u * (w[n:] * mse[n:]).sum()
            + uniform_prior_penalty(logits)
        )

    def meta(self, logits: torch.Tensor) -> torch.Tensor:
        return soft_cross_entropy(logits, self.meta_targets) + uniform_prior_penalty(logits)


@torch.no_grad()
def refine_and_guess(
    net: nn.Module,
    peer: nn.Module | None,
    v1: torch.Tensor,
    v2: torch.Tensor,
    y: torch.Tensor,
    w: torch.Tensor,
    num_classes: int,
    autocast: Callable[[], AbstractContextManager],
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(refined targets, co-guessed targets) of one pair of views, both sharpened.

    ``peer=None`` skips the co-guess (the meta batch: the official code computes it and never
    uses it; the peer is in eval mode, so leaving it out changes nothing else).
    """
    with autocast():
        own = [net(v).float().softmax(1) for v in (v1, v2)]  # train mode, one view at a time
        peer_p = None if peer is None else peer(torch.cat([v1, v2])).float().softmax(1)
    wv = w.float().unsqueeze(1)
    refined = sharpen(
        wv * F.one_hot(y, num_classes).float() + (1 - wv) * (own[0] + own[1]) / 2, TEMPERATURE
    )
    if peer_p is None:
        return refined, None
    n = v1.shape[0]
    guess = (own[0] + own[1] + peer_p[:n] + peer_p[n:]) / 4
    return refined, sharpen(guess, TEMPERATURE)


def _views(b: MixMetaBatch) -> tuple[torch.Tensor, ...]:
    """The optional fields a mixed step always carries, checked once."""
    views = (b.weight, b.x2, b.u1, b.u2, b.uy, b.uw, b.m1, b.m2, b.my, b.mw)
    assert all(v is not None for v in views), "a MixMetaBatch carries every view"
    return cast(tuple[torch.Tensor, ...], views)


def build_task(
    net: nn.Module,
    peer: nn.Module,
    b: MixMetaBatch,
    num_classes: int,
    alpha: float,
    lambda_u: float,
    gen: torch.Generator,
    autocast: Callable[[], AbstractContextManager],
) -> MixTask:
    """Refine, guess and mix one step's batches (training net in train mode, peer in eval)."""
    net.train()
    peer.eval()
    w, x2, u1, u2, uy, uw, m1, m2, my, mw = _views(b)
    tx, gx = refine_and_guess(net, peer, b.x, x2, b.y, w, num_classes, autocast)
    tu, gu = refine_and_guess(net, peer, u1, u2, uy, uw, num_classes, autocast)
    tm, _ = refine_and_guess(net, None, m1, m2, my, mw, num_classes, autocast)
    assert gx is not None and gu is not None  # co-guessed: a peer was given
    inputs = torch.cat([b.x, x2, u1, u2])
    both = torch.cat([torch.cat([tx, tx, tu, tu]), torch.cat([gx, gx, gu, gu])], dim=1)
    mixed_x, mixed_t, _ = mixmatch(inputs, both, alpha, gen)  # one l, one permutation
    meta_x, meta_t, _ = mixmatch(torch.cat([m1, m2]), torch.cat([tm, tm]), alpha, gen)
    return MixTask(
        mixed_x,
        mixed_t[:, :num_classes],
        mixed_t[:, num_classes:],
        2 * b.x.shape[0],
        float(lambda_u),
        meta_x,
        meta_t,
    )
