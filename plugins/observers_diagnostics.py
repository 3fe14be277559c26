"""Diagnostics from the generalisation studies, as an observer on ``epoch_finished``.

Opt-in with ``--set diagnostics=true`` (``nlbench sweep --diagnostics``): one extra pass over
the train set per epoch computes the mean loss gradient of the clean samples (label not
changed), of the corrupted samples and of all samples, and records their cosine similarities:

* ``grad_cos_clean_all``: how far the full-batch gradient drifts from the noise-free direction
  (the label-noise optimisation study of Rajagopal et al., docs/sources.md: it falls as
  training starts to memorise);
* ``grad_cos_clean_noisy``: whether the corrupted samples pull against the clean ones.

The pass uses ``torch.autograd.grad`` in eval mode, so it touches neither ``.grad``, BatchNorm
statistics nor any RNG: the run's result is the same with and without it. ``epochs_to_fit``
(the random-label reproductions, docs/sources.md) needs no pass and is in every record's summary
(:func:`nlbench.core.record.epochs_to_fit`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

from nlbench.api import eval_batch_size, hookimpl


def summed_gradients(
    net: torch.nn.Module, train: Any, clean_mask: torch.Tensor, batch_size: int
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Summed flat gradients of CE on the noisy labels: (over clean samples, over all, n clean)."""
    params = [p for p in net.parameters() if p.requires_grad]
    g_clean = torch.zeros(sum(p.numel() for p in params), device=clean_mask.device)
    g_all = torch.zeros_like(g_clean)
    was_training = net.training
    net.eval()
    try:
        for idx in train.scan_batches(batch_size):
            loss = F.cross_entropy(
                net(train.plain(idx)).float(), train.labels[idx], reduction="none"
            )
            mask = clean_mask[idx]
            g_all += _flat(
                torch.autograd.grad(loss.sum(), params, retain_graph=True, allow_unused=True),
                params,
            )
            g_clean += _flat(
                torch.autograd.grad(loss[mask].sum(), params, allow_unused=True), params
            )
    finally:
        net.train(was_training)
    return g_clean, g_all, int(clean_mask.sum())


def _flat(grads: Sequence[torch.Tensor | None], params: Sequence[torch.Tensor]) -> torch.Tensor:
    return torch.cat(
        [
            (g if g is not None else torch.zeros_like(p)).reshape(-1).float()
            for g, p in zip(grads, params)
        ]
    )


def _cos(a: torch.Tensor, b: torch.Tensor) -> float | None:
    if float(a.norm()) == 0.0 or float(b.norm()) == 0.0:
        return None
    return float(F.cosine_similarity(a, b, dim=0))


def gradient_diagnostics(
    net: torch.nn.Module, train: Any, clean: torch.Tensor, batch_size: int
) -> dict[str, float | None]:
    """Cosine similarities between the clean, corrupted and overall mean gradients."""
    clean_mask = train.labels == clean.to(train.labels.device)
    g_clean, g_all, n_clean = summed_gradients(net, train, clean_mask, batch_size)
    n = int(clean_mask.numel())
    g_noisy = g_all - g_clean  # summed gradient of the corrupted samples
    return {
        "grad_cos_clean_all": _cos(g_clean / max(1, n_clean), g_all / max(1, n)),
        "grad_cos_clean_noisy": _cos(g_clean, g_noisy) if n_clean < n else None,
    }


@hookimpl
def epoch_finished(run: Any, epoch: int, metrics: dict) -> dict | None:
    """Add the gradient diagnostics to the epoch's metrics when ``diagnostics`` is on."""
    hp = run.prep.hparams
    if not hp.get("diagnostics") or run.method is None:
        return None
    nets = run.method.networks()
    net = nets[sorted(nets)[0]]  # two-net methods: the first network by name
    clean = torch.from_numpy(run.prep.clean)
    with torch.enable_grad():
        return gradient_diagnostics(
            net, run.method.ctx.train, clean, eval_batch_size(hp, run.method.ctx.device)
        )
