"""Meta-gradient rules: how ``∂L_meta(ŵ(θ))/∂θ`` is computed for a weighting's targets θ.

:class:`ExactLookAhead`: double backward through the virtual step (``torch.func``,
:func:`nlbench.algorithms.metagrad.meta_gradient`). :class:`FirstOrder`: the same quantity with
first-order
passes only, the per-sample directional derivatives by central differences (``fd``) or one
forward-mode pass (``jvp``; :func:`nlbench.algorithms.metagrad.fd_meta_gradient`). FaMUS's
layer-gated
look-ahead is :class:`nlbench_plugins.meta.gated.GatedLookAhead`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch import nn

from nlbench.api import TrainContext
from nlbench.api.algorithms import metagrad


@dataclass
class MetaStep:
    """One meta step's inputs: the training batch (None when ``losses`` are given), the meta
    batch, the live lr, ``reuse`` (the actual step reuses the first forward) and ``weigh``
    (per-sample losses → weighted loss with graph to the targets)."""

    x: torch.Tensor | None
    y: torch.Tensor | None
    meta_x: torch.Tensor
    meta_y: torch.Tensor | None
    lr: float
    reuse: bool
    weigh: Callable[[torch.Tensor], torch.Tensor]
    losses: torch.Tensor | None = None  # precomputed per-sample losses (MixMatch variant)
    objective: Callable[[torch.Tensor], torch.Tensor] | None = None  # meta loss of the logits


class Weighting(Protocol):
    """What a rule needs from a weighting (:mod:`nlbench_plugins.meta.weighting`)."""

    lookahead: bool
    grad_stats: bool
    decay: dict[str, float] | None

    @property
    def targets(self) -> list[torch.Tensor]: ...

    def weights(self, losses: torch.Tensor) -> torch.Tensor: ...


class Rule(Protocol):
    """A meta-gradient rule; FaMUS's also reports which layers it sampled."""

    samples_layers: bool

    def meta_grads(self, model: nn.Module, s: MetaStep, wt: Weighting) -> metagrad.MetaGrad: ...

    def take_layer_stats(self) -> dict[str, Any]: ...

    def record_info(self) -> dict[str, Any]: ...

    def state(self) -> dict[str, Any]: ...

    def load(self, state: dict[str, Any]) -> None: ...


class ExactLookAhead:
    """Double backward through the full virtual step (MW-Net Eqs. (4)–(5), L2R Eq. (4))."""

    samples_layers = False

    def __init__(self, ctx: TrainContext, model: nn.Module) -> None:
        pass

    def meta_grads(self, model: nn.Module, s: MetaStep, wt: Weighting) -> metagrad.MetaGrad:
        return metagrad.meta_gradient(
            model,
            s.x,
            s.y,
            s.weigh,
            wt.targets,
            s.meta_x,
            s.meta_y,
            s.lr,
            reuse=s.reuse,
            losses=s.losses,
            meta_objective=s.objective,
            decay=wt.decay,
        )

    def take_layer_stats(self) -> dict[str, Any]:
        return {}

    def record_info(self) -> dict[str, Any]:
        return {}

    def state(self) -> dict[str, Any]:
        return {}

    def load(self, state: dict[str, Any]) -> None:
        """Stateless."""


class FirstOrder(ExactLookAhead):
    """``meta_grad=fd|jvp``: first-order backward passes only (DARTS' trick, exact for jvp)."""

    def __init__(self, ctx: TrainContext, model: nn.Module) -> None:
        self.mode, self.eps = str(ctx.hparams["meta_grad"]), float(ctx.hparams["fd_eps"])

    def meta_grads(self, model: nn.Module, s: MetaStep, wt: Weighting) -> metagrad.MetaGrad:
        assert s.x is not None and s.y is not None and s.meta_y is not None, "needs a CE batch"
        return metagrad.fd_meta_gradient(
            model,
            s.x,
            s.y,
            wt.weights,
            wt.targets,
            s.meta_x,
            s.meta_y,
            s.lr,
            reuse=s.reuse,
            lookahead=wt.lookahead,
            eps=self.eps,
            mode=self.mode,
            decay=wt.decay,
        )


# the rule of each ``meta_grad`` value without FaMUS (FaMUS's gated rule needs ``exact``)
RULES: dict[str, Callable[[TrainContext, nn.Module], Rule]] = {
    "exact": ExactLookAhead,
    "fd": FirstOrder,
    "jvp": FirstOrder,
}
