"""One network trained by meta-reweighting: a weighting and a meta-gradient rule composed.

:meth:`Learner.step` is Algorithm 1 of the FaMUS supplement (virtual step → meta step → actual
step with the weights the meta step produced); which parameters the meta-gradient trains is the
weighting's business (:mod:`.weighting`), how it is computed the rule's (:mod:`.rules`,
:mod:`.gated`). Both are fixed when the learner is built.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeAlias, cast

import torch
import torch.nn.functional as F
from torch import nn

from nlbench.api import TrainContext
from nlbench.api.algorithms import metagrad
from nlbench_plugins.meta.batches import MetaBatches
from nlbench_plugins.meta.gated import GatedLookAhead
from nlbench_plugins.meta.rules import RULES, MetaStep, Rule
from nlbench_plugins.meta.weighting import (
    MetaNetWeighting,
    PerturbationWeighting,
    decay_groups,
)

if TYPE_CHECKING:
    from nlbench_plugins.meta.mix import MixTask

AnyWeighting: TypeAlias = MetaNetWeighting | PerturbationWeighting
RuleFactory: TypeAlias = Callable[[TrainContext, nn.Module], Rule]


def rule_for(hp: dict[str, Any], gated: bool = False) -> RuleFactory:
    """FaMUS's gated look-ahead when the method always samples layers (``gated``) or
    ``famus=true``; otherwise the rule of ``meta_grad``."""
    return cast(
        RuleFactory, GatedLookAhead if gated or bool(hp["famus"]) else RULES[str(hp["meta_grad"])]
    )


class Learner:
    """A network with its optimizer, a weighting, a rule and the meta batches it draws from."""

    def __init__(
        self,
        ctx: TrainContext,
        weighting: Callable[[TrainContext, nn.Module, torch.optim.Optimizer], AnyWeighting],
        rule: RuleFactory,
    ) -> None:
        self.ctx, self.hp = ctx, ctx.hparams
        self.model = ctx.build_model()
        self.opt = ctx.make_optimizer(decay_groups(self.model, self.hp.get("decay_scope")))
        self.weighting = weighting(ctx, self.model, self.opt)
        self.rule = rule(ctx, self.model)
        self.meta: MetaBatches | None = None

    @property
    def vnet(self) -> nn.Module | None:
        """MW-Net's meta-net (None for L2R)."""
        return getattr(self.weighting, "vnet", None)

    def warmup_step(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        """Plain cross-entropy (pseudo meta sets before the first GMM)."""
        self.model.train()
        logits = self.model(x)
        loss = F.cross_entropy(logits.float(), y)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return {"loss": loss.detach(), "train_acc": (logits.argmax(1) == y).float().mean()}

    def step(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        """Virtual step → meta update → actual step (FaMUS supplement, Algorithm 1)."""
        self.model.train()
        lr = float(self.opt.param_groups[0]["lr"])
        mbs = int(self.hp["meta_batch_size"] or self.hp["batch_size"])
        assert self.meta is not None, "the meta set is attached before training"
        mx, my = self.meta.draw(mbs)
        reuse = bool(self.hp["reuse_forward"])
        wt = self.weighting
        with metagrad.eager(self.model):
            wt.begin(y.shape[0], y.device)
            mg = self.rule.meta_grads(self.model, MetaStep(x, y, mx, my, lr, reuse, wt.weigh), wt)
            w, stat = wt.update(mg.grads, mg.losses)
        losses = mg.losses
        if not reuse:
            losses = F.cross_entropy(self.model(x).float(), y, reduction="none")
        loss = self._actual_step((w.detach() * losses).sum())
        return {"loss": loss, "meta_loss": mg.meta_loss, **stat}

    def mix_step(self, task: MixTask) -> dict[str, torch.Tensor]:
        """One step of FaMUS's MixMatch variant (:mod:`nlbench_plugins.meta.mix`).

        As :meth:`step`, but the per-sample loss (the weighting's input) is the soft
        cross-entropy of each mixed row, the weighted objective is ``task.total`` and the meta
        loss ``task.meta`` on the mixed pseudo-clean batch.
        """
        self.model.train()
        lr = float(self.opt.param_groups[0]["lr"])
        reuse = bool(self.hp["reuse_forward"])
        wt = self.weighting
        with metagrad.eager(self.model):
            with metagrad.decomposed_bn(self.model):  # the first forward is differentiated twice
                logits = (
                    self.model(task.x)
                    if reuse
                    else metagrad.virtual_logits(self.model, metagrad.trainable(self.model), task.x)
                )
            costs = task.costs(logits)

            def weigh(c: torch.Tensor) -> torch.Tensor:
                return cast(torch.Tensor, task.total(logits, c, wt.weights(c.detach())))

            s = MetaStep(None, None, task.meta_x, None, lr, reuse, weigh, costs, task.meta)
            mg = self.rule.meta_grads(self.model, s, wt)
            w, stat = wt.update(mg.grads, costs)
        if not reuse:
            logits = self.model(task.x)
            costs = task.costs(logits)
        loss = self._actual_step(task.total(logits, costs, w.detach()))
        lambda_u = torch.full((), task.lambda_u, device=loss.device)
        return {"loss": loss, "meta_loss": mg.meta_loss, **stat, "lambda_u": lambda_u}

    def _actual_step(self, loss: torch.Tensor) -> torch.Tensor:
        """The real update of the network with the (fixed) weights; the loss, detached."""
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return loss.detach()

    def state(self) -> dict[str, Any]:
        out: dict[str, Any] = {**self.weighting.state(), **self.rule.state()}
        if self.meta is not None:  # the clean stream spans epochs; a pseudo one is rebuilt
            out["meta"] = self.meta.state()
        return out

    def load(self, state: dict[str, Any]) -> None:
        self.weighting.load(state)
        self.rule.load(state)
        if self.meta is not None and "meta" in state:
            self.meta.load_state(state["meta"])
