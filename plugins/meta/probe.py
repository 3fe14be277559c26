"""What MW-Net's meta-net learned, per epoch: its weight at fixed points of the loss axis.

The meta-net is a function of the loss alone, so its whole
behaviour is one curve; recording that curve every epoch lets anyone see whether it
down-weights large losses (the paper's premise) or up-weights them (a class-prior correction,
``docs/methods/mwnet-cifar-n.md``). Two sets of points:

* the 5/25/50/75/95 % quantiles of the losses the meta-net weighed during the epoch (the
  per-sample training losses of the actual steps, augmented views, train mode);
* a fixed grid of loss values, comparable across epochs and runs.

The values are the raw sigmoid outputs (before ``weight_norm``); with ``weight_norm=sum`` only
their ratios matter. Losses are kept on the device during the epoch (one host read at its end).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
GRID = (0.01, 0.1, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0)
WEIGHT_FN = (
    "epochs[].weight_fn_<net>: the meta-net's raw weight at the 5/25/50/75/95 % "
    "quantiles of the epoch's weighed losses (loss_q, weight_q) and at a fixed loss "
    "grid (weight_grid)"
)


class WeightProbe:
    """Collects an epoch's weighed losses; :meth:`take` evaluates the meta-net and resets."""

    def __init__(self) -> None:
        self.seen: list[torch.Tensor] = []

    def add(self, losses: torch.Tensor) -> None:
        self.seen.append(losses.detach().float().reshape(-1))

    @torch.no_grad()
    def take(self, vnet: nn.Module) -> dict[str, Any]:
        """``{"loss_q": {q05: ℓ, …}, "weight_q": {q05: W(ℓ), …}, "weight_grid": {ℓ: W(ℓ)}}``."""
        if not self.seen:
            return {}
        losses = torch.cat(self.seen)
        self.seen = []
        p = next(vnet.parameters())
        q = torch.quantile(losses, torch.tensor(QUANTILES, device=losses.device))
        grid = torch.tensor(GRID, device=p.device, dtype=p.dtype)
        wq = vnet(q.to(p.dtype)).float().cpu().tolist()
        wg = vnet(grid).float().cpu().tolist()
        keys = [f"q{round(100 * x):02d}" for x in QUANTILES]
        return {
            "loss_q": {k: round(v, 5) for k, v in zip(keys, q.cpu().tolist())},
            "weight_q": {k: round(v, 5) for k, v in zip(keys, wq)},
            "weight_grid": {f"{g:g}": round(v, 5) for g, v in zip(GRID, wg)},
        }
