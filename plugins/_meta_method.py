"""The method class behind ``mwnet``, ``l2r`` and ``famus`` (not a plugin: no entry point).

One or two :class:`~nlbench_plugins._meta_common.Learner` networks. The meta set is either the
runner's trusted hold-out (``meta_set=clean:N``, ``ctx.meta``) or a pseudo-clean set rebuilt
every epoch from a two-component GMM on the per-sample training losses of the scan
(``meta_set=pseudo``, FaMUS supplement §E, :func:`nlbench.gmm.clean_probability`): with two
networks each one's meta set is the *other's* pseudo-clean set (Algorithm 2), with one network
its own. Before the first GMM (``warmup_epochs``) a pseudo run trains with plain cross-entropy.
Test predictions sum the networks' logits (``Method.predict``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any

import torch
import torch.nn as nn

from nlbench.data import Batch, EpochPlan, class_balanced_pool
from nlbench.gmm import Split, clean_probability, co_divide
from nlbench.mixmatch import linear_rampup
from nlbench.method import Method, Scan, TrainContext
from nlbench.seeding import derive_seed
from nlbench_plugins._famus_mix import MIX_DEFAULTS, MixMetaBatch, build_task
from nlbench_plugins._meta_batches import MetaBatches
from nlbench_plugins._meta_common import Learner, check_hparams

PEER = {"net1": "net2", "net2": "net1", "net": "net"}
WEIGHT_FN = (
    "epochs[].weight_fn_<net>: the meta-net's raw weight at the 5/25/50/75/95 % "
    "quantiles of the epoch's weighed losses (loss_q, weight_q) and at a fixed loss "
    "grid (weight_grid)"
)


class MetaReweight(Method):
    """Meta-reweighting with one (``nets=("net",)``) or two networks; see the module docstring."""

    rule = "mwnet"
    nets: tuple[str, ...] = ("net",)
    name = "mwnet"

    def __init__(self, ctx: TrainContext) -> None:
        super().__init__(ctx)
        check_hparams(self.hp, self.name)
        self.famus = bool(self.hp["famus"]) or self.name == "famus"
        self.learners = {n: Learner(ctx, self.rule, self.famus) for n in self.nets}
        self.kind = "pseudo" if str(self.hp["meta_set"]) == "pseudo" else "clean"
        if self.kind == "clean":
            if ctx.meta is None:
                from nlbench.errors import UsageError

                raise UsageError(f"{self.name}: meta_set {self.hp['meta_set']} built no meta set")
            for lr in self.learners.values():
                lr.meta = MetaBatches(ctx.meta.images, ctx.meta.labels, ctx.train.augment, ctx.gen)
        self.meta_sizes: dict[str, int] = {}
        self.fallback: dict[str, bool] = {}
        self.pools: dict[str, torch.Tensor | None] = {n: None for n in self.nets}
        self.mix = bool(self.hp.get("mixmatch"))
        if self.mix and (
            self.nets != ("net1", "net2")
            or self.kind != "pseudo"
            or self.hp["batches_per_epoch"] is not None
            or self.hp["meta_grad"] != "exact"
        ):
            from nlbench.errors import UsageError

            raise UsageError(
                f"{self.name}: mixmatch=true is FaMUS's two-network variant on "
                "pseudo-clean sets: use famus with meta_set=pseudo, meta_grad=exact "
                "and no batches_per_epoch"
            )
        self.mix_hp = {
            k: self.hp.get(k) if self.hp.get(k) is not None else v for k, v in MIX_DEFAULTS.items()
        }
        self.splits: dict[str, Split] = {}
        self.probs: dict[str, torch.Tensor] = {}
        self.meta_index: dict[str, torch.Tensor] = {}
        self.lambda_u = 0.0  # this epoch's ramped λu (MixMatch variant)

    # -- the runner's contract -------------------------------------------------------------
    def networks(self) -> dict[str, nn.Module]:
        return {n: lr.model for n, lr in self.learners.items()}

    def scheduled_optimizers(self) -> list[torch.optim.Optimizer]:
        return [lr.opt for lr in self.learners.values()]

    def warming_up(self, epoch: int) -> bool:
        return self.kind == "pseudo" and epoch < int(self.hp["warmup_epochs"])

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
        if self.kind == "pseudo" and not self._epoch_warm:
            self._pseudo_split(epoch, scan(), plan)
            if self.mix:
                self._mix_split(epoch, plan)
        elif self.kind == "clean":
            self.meta_sizes = {n: int(self.ctx.meta.size) for n in self.nets}
            if self.rule == "mwnet" and self.nets == ("net",):
                plan.clean_prob = self._vnet_scores(scan())
        plan.metrics["meta_kind"] = self.kind
        for n, size in self.meta_sizes.items():
            plan.metrics[f"meta_size_{n}"] = size
        plan.metrics["warmup"] = self._epoch_warm
        return plan

    @torch.no_grad()
    def _vnet_scores(self, scan: Scan) -> torch.Tensor:
        """MW-Net's weight of each training sample's loss, as a clean score (detection AUC)."""
        return self.learners["net"].vnet(scan.loss["net"]).float()

    def _pseudo_split(self, epoch: int, scan: Scan, plan: EpochPlan) -> None:
        """GMM per network; each network's meta set = its peer's pseudo-clean samples."""
        seed = int(self.ctx.extras.get("seed", 0))
        prob = {
            n: clean_probability(scan.loss[n], seed=derive_seed("gmm", seed, epoch, n) % 2**32)
            for n in self.nets
        }
        tau = float(self.hp["p_threshold"])
        for n, lr in self.learners.items():
            p = prob[PEER[n]]
            idx = torch.nonzero(p > tau).flatten()
            floor = max(int(self.hp["meta_batch_size"] or self.hp["batch_size"]), 1)
            self.fallback[n] = int(idx.numel()) < min(floor, p.numel())
            if self.fallback[n]:  # too few: the more probably clean half (as DivideMix's fallback)
                idx = torch.argsort(p, descending=True, stable=True)[: max(1, p.numel() // 2)]
            lr.meta = MetaBatches.pseudo(self.ctx.train, idx)
            self.meta_sizes[n] = int(idx.numel())
            self.meta_index[n] = idx
            self.probs[n] = p
            plan.metrics[f"meta_fallback_{n}"] = self.fallback[n]
        plan.clean_prob = torch.stack(list(prob.values())).mean(0)

    def _mix_split(self, epoch: int, plan: EpochPlan) -> None:
        """MixMatch variant: each network's labeled/unlabeled split from its peer's GMM, and
        the epoch's ramped λu."""
        train, bs = self.ctx.train, self.ctx.train.batch_size
        pool = torch.arange(len(train), device=train.device)
        for n in self.nets:  # official guard: < 64 (a batch) or > 90 % labeled → median split
            split = co_divide(
                self.probs[n], pool, float(self.hp["p_threshold"]), bs, max(1, len(train) // 10)
            )
            self.splits[n] = split
            plan.metrics[f"labeled_{n}"] = int(split.labeled.numel())
            plan.metrics[f"unlabeled_{n}"] = int(split.unlabeled.numel())
            plan.metrics[f"split_fallback_{n}"] = split.fallback
        plan.steps = sum(self._mix_iters(n) for n in self.nets)
        ramp = linear_rampup(
            float(epoch), int(self.hp["warmup_epochs"]), int(self.mix_hp["rampup_epochs"])
        )
        self.lambda_u = float(self.mix_hp["lambda_u"]) * ramp
        plan.metrics["lambda_u"] = self.lambda_u

    def _mix_iters(self, name: str) -> int:
        """Steps of one network's mixed epoch: ``max(⌈|L|/B⌉, ⌈|U|/B⌉)`` (the official loop)."""
        split, bs = self.splits[name], self.ctx.train.batch_size
        return max(math.ceil(split.labeled.numel() / bs), math.ceil(split.unlabeled.numel() / bs))

    def epoch_batches(self, epoch: int, plan: EpochPlan | None) -> Iterator[Batch]:
        """Each network gets its own shuffled pass (Algorithm 2: net 1's epoch, then net 2's);
        after the last batch the samplers' per-layer selection rates go into the plan."""
        if self.mix and not self._epoch_warm:
            yield from self._mix_batches()
        else:
            for n in self.nets:
                for b in self.ctx.train.batches(EpochPlan(indices=self.pools[n])):
                    yield Batch(b.x, b.y, b.index, tag=n)
        if plan is not None and self.rule == "mwnet" and not self._epoch_warm:
            for n, lr in self.learners.items():
                curve = lr.take_weight_function()
                if curve:
                    plan.metrics[f"weight_fn_{n}"] = curve
        if plan is not None and self.famus:
            for n, lr in self.learners.items():
                stats = lr.take_layer_stats()
                if stats:
                    plan.metrics[f"famus_layers_{n}"] = stats["layers"]
                    plan.metrics[f"famus_mean_sampled_{n}"] = stats["mean_sampled"]

    def _mix_batches(self) -> Iterator[Batch]:
        """Per network :meth:`_mix_iters` steps; the shorter set and the meta set cycle (the
        official loop); second views are fresh augmentations of the same samples."""
        train, bs = self.ctx.train, self.ctx.train.batch_size
        mbs = int(self.hp["meta_batch_size"] or bs)
        for n in self.nets:
            split, prob = self.splits[n], self.probs[n]
            labeled = train.sampler(split.labeled, bs)
            unlabeled = train.sampler(split.unlabeled, bs)
            meta = train.sampler(self.meta_index[n], mbs)
            for _ in range(self._mix_iters(n)):
                b, u, m = next(labeled), next(unlabeled), next(meta)
                yield MixMetaBatch(
                    b.x,
                    b.y,
                    b.index,
                    weight=prob[b.index],
                    tag=n,
                    x2=train.view(b.index),
                    u1=u.x,
                    u2=train.view(u.index),
                    uy=u.y,
                    uw=prob[u.index],
                    m1=m.x,
                    m2=train.view(m.index),
                    my=m.y,
                    mw=prob[m.index],
                )

    def train_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        learner = self.learners[batch.tag or self.nets[0]]
        if self._epoch_warm:
            return learner.warmup_step(batch.x, batch.y)
        if isinstance(batch, MixMetaBatch):
            peer = self.learners[PEER[batch.tag]].model
            task = build_task(
                learner.model,
                peer,
                batch,
                self.ctx.num_classes,
                float(self.mix_hp["alpha"]),
                self.lambda_u,
                self.ctx.gen,
                self.ctx.autocast,
            )
            return learner.mix_step(task)
        return learner.step(batch.x, batch.y)

    # -- state and record -------------------------------------------------------------------
    def extra_state(self) -> dict[str, Any]:
        return {n: lr.state() for n, lr in self.learners.items()}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        for n, lr in self.learners.items():
            lr.load(state.get(n, {}))

    def record_info(self) -> dict[str, Any]:
        hp = self.hp
        size = int(self.ctx.meta.size) if self.kind == "clean" else None
        info: dict[str, Any] = {
            "meta_set": {
                "kind": self.kind,
                "size": size,
                "source": "trusted hold-out"
                if self.kind == "clean"
                else ("peer network's GMM" if len(self.nets) == 2 else "own GMM"),
            },
            "meta_grad": hp["meta_grad"],
            "reuse_forward": bool(hp["reuse_forward"]),
            "virtual_step": "plain SGD at the live lr (no momentum/wd, as the papers' code)",
            "networks": list(self.nets),
            "famus": self.famus,
            "epoch": "one pass over the train set"
            if hp["batches_per_epoch"] is None
            else f"{hp['batches_per_epoch']} batches per network from a fresh noise-balanced pool",
        }
        if self.rule == "mwnet":
            info.update(
                weight_norm=hp["weight_norm"],
                meta_opt=hp["meta_opt"],
                meta_lr=hp["meta_lr"],
                weight_fn=WEIGHT_FN,
            )
        else:
            info["clean_cost"] = "mean CE + weight_decay/2 * ||w||^2 (official model.cost)"
        if self.mix:
            info["mixmatch"] = {
                **self.mix_hp,
                "temperature": 0.5,
                "meta_set": "peer GMM's clean probability > p_threshold, mixed",
                "source": "official CNWL code (train_famus_redminiimage.py), re-implemented",
            }
        if self.famus:
            first = next(iter(self.learners.values()))
            info["famus_gated_layers"] = first.gated
            info["famus_always_kept"] = first.kept
            info["famus_lookahead"] = (
                "every layer moves: sampled gated r*g, unsampled "
                "(1-r)*g.detach(), earlier g.detach(), classifier g"
            )
            info["famus_reg"] = (
                "L_r over the last gate only (released code)"
                if hp["famus_reg_quirk"]
                else "L_r = (sum_l r_l - K)^2 over all gates (paper)"
            )
        return info
