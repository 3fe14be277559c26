"""The method class behind ``mwnet``, ``l2r`` and ``famus``: learners plus a meta-set source.

A subclass names its parts: the weighting (:mod:`.weighting`), the networks, the pseudo-clean
source used with ``meta_set=pseudo`` (:mod:`.sources`) and whether FaMUS's gated rule is
always on (otherwise ``famus=true`` or ``meta_grad`` chooses the rule, :func:`.learner.rule_for`).
With ``meta_set=clean:N`` every source is the trusted hold-out. Test predictions sum the
networks' logits (``Method.predict``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, ClassVar, cast

import torch
from torch import nn

from nlbench.api import (
    Batch,
    EpochPlan,
    Method,
    Scan,
    TrainContext,
    UsageError,
    class_balanced_pool,
)
from nlbench_plugins.meta.hparams import check_hparams
from nlbench_plugins.meta.learner import Learner, rule_for
from nlbench_plugins.meta.mix import MixMetaBatch
from nlbench_plugins.meta.mix_epochs import MixSchedule
from nlbench_plugins.meta.sources import CleanSet, OwnPseudoSet
from nlbench_plugins.meta.weighting import MetaNetWeighting


class MetaReweight(Method):
    """Meta-reweighting with one or two networks; see the module docstring."""

    name = "mwnet"
    weighting: ClassVar[Callable[..., Any]] = MetaNetWeighting
    nets: tuple[str, ...] = ("net",)
    pseudo_source: ClassVar[type[OwnPseudoSet]] = OwnPseudoSet
    always_gated = False  # FaMUS: layer sampling is the method, not a plug-in

    def __init__(self, ctx: TrainContext) -> None:
        super().__init__(ctx)
        check_hparams(self.hp, self.name)
        rule = rule_for(self.hp, self.always_gated)
        self.learners = {n: Learner(ctx, type(self).weighting, rule) for n in self.nets}
        pseudo = str(self.hp["meta_set"]) == "pseudo"
        source = self.pseudo_source if pseudo else CleanSet
        self.source: CleanSet | OwnPseudoSet = source(ctx, self.learners, self.name)
        self.pools: dict[str, torch.Tensor | None] = dict.fromkeys(self.nets)
        self.mix: MixSchedule | None = None
        if self.hp.get("mixmatch"):
            if (
                not self.source.exchanged
                or self.hp["batches_per_epoch"] is not None
                or self.hp["meta_grad"] != "exact"
            ):
                raise UsageError(
                    f"{self.name}: mixmatch=true is FaMUS's two-network variant on "
                    "pseudo-clean sets: use famus with meta_set=pseudo, meta_grad=exact "
                    "and no batches_per_epoch"
                )
            assert isinstance(self.source, OwnPseudoSet)
            self.mix = MixSchedule(ctx, self.source)

    @property
    def famus(self) -> bool:
        """Whether the meta-gradient samples layers (FaMUS's rule)."""
        samples: bool = next(iter(self.learners.values())).rule.samples_layers
        return samples

    # -- the runner's contract -------------------------------------------------------------
    def networks(self) -> dict[str, nn.Module]:
        return {n: lr.model for n, lr in self.learners.items()}

    def scheduled_optimizers(self) -> list[torch.optim.Optimizer]:
        return [lr.opt for lr in self.learners.values()]

    def warming_up(self, epoch: int) -> bool:
        warm: bool = self.source.warming_up(epoch)
        return warm

    def _draw_pools(self) -> int:
        """Per network a fresh noise-balanced pool of ``batches_per_epoch`` batches (Clothing1M);
        returns the batches per network of this epoch."""
        nb, train = self.hp["batches_per_epoch"], self.ctx.train
        if nb is None:
            return train.num_batches()
        size = int(nb) * train.batch_size
        self.pools = {
            n: class_balanced_pool(train.labels, size, self.ctx.num_classes, train.gen)
            for n in self.nets
        }
        return max(train.num_batches(EpochPlan(indices=p)) for p in self.pools.values())

    def start_epoch(self, epoch: int, scan: Callable[[], Scan]) -> EpochPlan:
        plan = EpochPlan(steps=self._draw_pools() * len(self.nets))
        self._epoch_warm = self.warming_up(epoch)
        if not self._epoch_warm:
            self.source.start_epoch(epoch, scan, plan)
            if self.mix is not None:
                self.mix.start_epoch(epoch, plan)
        plan.metrics["meta_kind"] = self.source.kind
        for n, size in self.source.meta_sizes.items():
            plan.metrics[f"meta_size_{n}"] = size
        plan.metrics["warmup"] = self._epoch_warm
        return plan

    def epoch_batches(self, epoch: int, plan: EpochPlan | None) -> Iterator[Batch]:
        """Each network gets its own shuffled pass (Algorithm 2: net 1's epoch, then net 2's);
        after the last batch the weight curves and the samplers' per-layer selection rates go
        into the plan."""
        if self.mix is not None and not self._epoch_warm:
            yield from self.mix.batches()
        else:
            for n in self.nets:
                for b in self.ctx.train.batches(EpochPlan(indices=self.pools[n])):
                    yield Batch(b.x, b.y, b.index, tag=n)
        if plan is None:
            return
        for n, lr in self.learners.items():
            curve = {} if self._epoch_warm else lr.weighting.take_curve()
            if curve:
                plan.metrics[f"weight_fn_{n}"] = curve
        for n, lr in self.learners.items():
            stats = lr.rule.take_layer_stats()
            if stats:
                plan.metrics[f"famus_layers_{n}"] = stats["layers"]
                plan.metrics[f"famus_mean_sampled_{n}"] = stats["mean_sampled"]

    def train_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        learner = self.learners[batch.tag or self.nets[0]]
        if self._epoch_warm:
            return cast(dict[str, torch.Tensor], learner.warmup_step(batch.x, batch.y))
        if isinstance(batch, MixMetaBatch):
            assert self.mix is not None and batch.tag is not None
            peer = self.learners[self.mix.source.peer(batch.tag)].model
            return cast(
                dict[str, torch.Tensor], learner.mix_step(self.mix.task(learner.model, peer, batch))
            )
        return cast(dict[str, torch.Tensor], learner.step(batch.x, batch.y))

    # -- state and record -------------------------------------------------------------------
    def extra_state(self) -> dict[str, Any]:
        return {n: lr.state() for n, lr in self.learners.items()}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        for n, lr in self.learners.items():
            lr.load(state.get(n, {}))

    def record_info(self) -> dict[str, Any]:
        hp, first = self.hp, next(iter(self.learners.values()))
        info: dict[str, Any] = {
            "meta_set": self.source.record_info(),
            "meta_grad": hp["meta_grad"],
            "reuse_forward": bool(hp["reuse_forward"]),
            "virtual_step": "plain SGD at the live lr (no momentum/wd, as the papers' code)",
            "networks": list(self.nets),
            "famus": self.famus,
            "epoch": "one pass over the train set"
            if hp["batches_per_epoch"] is None
            else f"{hp['batches_per_epoch']} batches per network from a fresh noise-balanced pool",
        }
        info.update(first.weighting.record_info())
        if self.mix is not None:
            info["mixmatch"] = self.mix.record_info()
        info.update(first.rule.record_info())
        return info
