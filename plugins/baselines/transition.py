"""Transition matrices for loss correction (Patrini et al., CVPR 2017).

``T[i, j] = p(noisy label j | true class i)``. The anchor-point estimate (Eq. 11–12 of the
paper; ``NoiseEstimator.fit`` of ``giorgiop/loss-correction``): for each class ``i`` take the
training sample whose predicted probability of ``i`` is the largest below that column's 97th
percentile (the top 3 % are treated as outliers), and read row ``i`` off its softmax.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def anchor_transition(probs: torch.Tensor, percentile: float | None = 97.0) -> torch.Tensor:
    """Rows = softmax of each class's anchor sample (``probs``: N×C softmax of a model trained
    on the noisy labels), row-normalised. ``percentile`` None: the plain argmax.

    As the official ``NoiseEstimator``: column by column, values at or above the column's
    ``percentile`` (numpy's ``interpolation='higher'``: a value of the column) are set to 0 in
    the matrix itself (its ``robust_eta`` is a view), so later rows read the already filtered
    columns; then ``predict()`` normalises the rows (``row_normalize=True``).
    """
    work = probs.float().clone()
    rows = []
    for i in range(work.shape[1]):
        if percentile is not None:
            column = work[:, i]
            ordered = torch.sort(column).values
            k = math.ceil((percentile / 100.0) * (column.numel() - 1))
            column[column >= ordered[k]] = 0.0  # in place, as the official view
        rows.append(work[int(torch.argmax(work[:, i]))].clone())
    T = torch.stack(rows)
    return T / T.sum(1, keepdim=True).clamp_min(1e-12)


def row_normalised(counts: torch.Tensor) -> torch.Tensor:
    """Counts (true × noisy) as a row-stochastic matrix; an empty row becomes the identity's."""
    counts = counts.float()
    sums = counts.sum(1, keepdim=True)
    eye = torch.eye(counts.shape[0], device=counts.device)
    return torch.where(sums > 0, counts / sums.clamp_min(1e-12), eye)


def forward_loss(logits: torch.Tensor, labels: torch.Tensor, T: torch.Tensor) -> torch.Tensor:
    """Per-sample −log((softmax · T)[label]): the noisy-label probability the model implies
    (the official loss clips the softmax to [ε, 1 − ε], Keras's ε = 1e-7, before the product)."""
    p = F.softmax(logits, 1).clamp(1e-7, 1 - 1e-7)
    noisy = p @ T.to(p.dtype)
    return -torch.log(noisy.gather(1, labels[:, None]).squeeze(1))
