"""FaMUS's meta-gradient rule: the look-ahead gated layer by layer (official ``meta_step``).

The samplers (:mod:`nlbench_plugins.meta.sampler`) read the look-ahead gradients and draw
gates; every layer moves, only the sampled gated layers and the classifier carry the
meta-gradient. One backward of ``L_meta + λ_r·L_r (+ λ_g·L_g)`` feeds the weighting's targets
and the samplers, which step here (SGD lr δ, m 0.9, Nesterov: the official
``build_grad_models``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from nlbench.api import TrainContext
from nlbench.api.algorithms import distributed, metagrad
from nlbench_plugins.meta.rules import MetaStep, Weighting
from nlbench_plugins.meta.sampler import (
    LayerSamplers,
    count_penalty,
    forward_order,
    gated_names,
    grad_stat_penalty,
)


def classifier_names(model: nn.Module, params: dict[str, torch.Tensor]) -> list[str]:
    """Names of the classifier's parameters (timm's ``get_classifier()``), if the model has one."""
    head = getattr(model, "get_classifier", None)
    if head is None:
        return []
    ids = {id(p) for p in head().parameters()}
    return [n for n, p in params.items() if id(p) in ids]


class GatedLookAhead:
    """FaMUS layer sampling on one network; counts how often each gated layer is sampled."""

    samples_layers = True

    def __init__(self, ctx: TrainContext, model: nn.Module) -> None:
        self.hp, self.gen = ctx.hparams, ctx.gen
        params = metagrad.trainable(model)
        probe = torch.zeros(2, ctx.in_chans, ctx.image_size, ctx.image_size, device=ctx.device)
        order = forward_order(model, probe)
        kept = classifier_names(model, params) or order[-2:]
        self.gated, self.kept = gated_names(order, int(self.hp["famus_gated"]), kept)
        shapes = {n: params[n].shape for n in self.gated}
        self.samplers = LayerSamplers(
            shapes, int(self.hp["famus_k"]), tau=float(self.hp["famus_tau"])
        ).to(ctx.device)
        self.sopt = torch.optim.SGD(
            self.samplers.parameters(), lr=float(self.hp["famus_lr"]), momentum=0.9, nesterov=True
        )
        self.counts = torch.zeros(len(self.gated))
        self.steps = 0

    def meta_grads(self, model: nn.Module, s: MetaStep, wt: Weighting) -> metagrad.MetaGrad:
        """Gates from the look-ahead gradients, every layer moved, the regularised meta loss
        into the targets and the samplers; steps the samplers (δ)."""
        losses, grads = metagrad.train_gradients(
            model, s.x, s.y, s.weigh, reuse=s.reuse, losses=s.losses
        )
        r = self.samplers(grads, self.gen) if self.gated else torch.zeros(0)
        mask = r.detach().cpu() > 0.5  # the layer choice shapes the graph: one host read
        self.counts += mask.float()
        self.steps += 1
        chosen = [n for n, m in zip(self.gated, mask.tolist()) if m]
        gates = {n: r[i] for i, n in enumerate(self.gated)}
        fast = metagrad.look_ahead(
            metagrad.trainable(model), grads, s.lr, select=self.kept + chosen, gates=gates
        )
        lm = metagrad.meta_loss(model, fast, s.meta_x, s.meta_y, s.objective, wt.decay)
        total = self._regularised(lm, r, fast, grads, wt.grad_stats)
        theta = wt.targets
        eta = list(self.samplers.parameters())
        g = torch.autograd.grad(total, theta + eta, retain_graph=s.reuse, allow_unused=True)
        self.sopt.zero_grad(set_to_none=True)
        for p, gp in zip(eta, g[len(theta) :]):
            p.grad = gp if gp is not None else torch.zeros_like(p)
        distributed.average_grads(eta)
        self.sopt.step()
        g_theta = tuple(
            torch.zeros_like(t) if gt is None else gt for gt, t in zip(g[: len(theta)], theta)
        )
        return metagrad.MetaGrad(g_theta, losses, lm.detach())

    def _regularised(
        self,
        lm: torch.Tensor,
        r: torch.Tensor,
        fast: Mapping[str, torch.Tensor],
        grads: Mapping[str, torch.Tensor],
        grad_stats: bool,
    ) -> torch.Tensor:
        """``L_meta + λ_r·L_r`` on the gates and, when the weighting's targets reach the
        training gradient (``grad_stats``; not L2R's ε at 0), ``+ λ_g·L_g`` on the classifier."""
        hp, total = self.hp, lm
        if self.gated:
            total = total + float(hp["famus_lambda_r"]) * count_penalty(
                r, int(hp["famus_k"]), bool(hp["famus_reg_quirk"])
            ).to(lm)
        lam_g, kept = float(hp["famus_lambda_g"]), [n for n in self.kept if n in grads]
        if lam_g > 0 and grad_stats and kept:
            target = torch.autograd.grad(lm, [fast[n] for n in kept], retain_graph=True)
            total = total + lam_g * grad_stat_penalty([grads[n] for n in kept], list(target))
        return total

    def take_layer_stats(self) -> dict[str, Any]:
        """Per gated layer, the fraction of this epoch's steps that sampled it (and reset)."""
        if not self.gated or self.steps == 0:
            return {}
        frac = (self.counts / self.steps).tolist()
        out = {
            "layers": dict(zip(self.gated, [round(f, 4) for f in frac])),
            "mean_sampled": round(float(self.counts.sum()) / self.steps, 3),
        }
        self.counts.zero_()
        self.steps = 0
        return out

    def record_info(self) -> dict[str, Any]:
        return {
            "famus_gated_layers": self.gated,
            "famus_always_kept": self.kept,
            "famus_lookahead": "every layer moves: sampled gated r*g, unsampled "
            "(1-r)*g.detach(), earlier g.detach(), classifier g",
            "famus_reg": "L_r over the last gate only (released code)"
            if self.hp["famus_reg_quirk"]
            else "L_r = (sum_l r_l - K)^2 over all gates (paper)",
        }

    def state(self) -> dict[str, Any]:
        return {"samplers": self.samplers.state_dict(), "sopt": self.sopt.state_dict()}

    def load(self, state: dict[str, Any]) -> None:
        if "samplers" in state:
            self.samplers.load_state_dict(state["samplers"])
            self.sopt.load_state_dict(state["sopt"])
