"""FaMUS's MixMatch variant, epoch side: co-divided splits, mixed batches, the λu ramp.

Each network trains on the labeled/unlabeled split its peer's GMM makes (the clean
probabilities of :class:`~nlbench_plugins.meta.sources.PeerPseudoSet`); a step's batches are
refined, guessed and mixed by :func:`nlbench_plugins.meta.mix.build_task`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from nlbench.api import EpochPlan, TrainContext
from nlbench.api.algorithms import Split, co_divide, linear_rampup
from nlbench_plugins.meta.mix import MIX_DEFAULTS, MixMetaBatch, MixTask, build_task
from nlbench_plugins.meta.sources import OwnPseudoSet


class MixSchedule:
    """The mixed epochs of two networks fed by a peer-exchanged pseudo-clean source."""

    def __init__(self, ctx: TrainContext, source: OwnPseudoSet) -> None:
        self.ctx, self.hp, self.source = ctx, ctx.hparams, source
        self.nets = list(source.learners)
        self.mix_hp: dict[str, Any] = {
            k: self.hp.get(k) if self.hp.get(k) is not None else v for k, v in MIX_DEFAULTS.items()
        }
        self.splits: dict[str, Split] = {}
        self.lambda_u = 0.0  # this epoch's ramped λu

    def start_epoch(self, epoch: int, plan: EpochPlan) -> None:
        """Each network's labeled/unlabeled split from its peer's GMM, and the ramped λu."""
        train, bs = self.ctx.train, self.ctx.train.batch_size
        pool = torch.arange(len(train), device=train.device)
        for n in self.nets:  # official guard: < 64 (a batch) or > 90 % labeled → median split
            split = co_divide(
                self.source.probs[n],
                pool,
                float(self.hp["p_threshold"]),
                bs,
                max(1, len(train) // 10),
            )
            self.splits[n] = split
            plan.metrics[f"labeled_{n}"] = int(split.labeled.numel())
            plan.metrics[f"unlabeled_{n}"] = int(split.unlabeled.numel())
            plan.metrics[f"split_fallback_{n}"] = split.fallback
        plan.steps = sum(self.iters(n) for n in self.nets)
        ramp = linear_rampup(
            float(epoch), int(self.hp["warmup_epochs"]), int(self.mix_hp["rampup_epochs"])
        )
        self.lambda_u = float(self.mix_hp["lambda_u"]) * ramp
        plan.metrics["lambda_u"] = self.lambda_u

    def iters(self, name: str) -> int:
        """Steps of one network's mixed epoch: ``max(⌈|L|/B⌉, ⌈|U|/B⌉)`` (the official loop)."""
        split, bs = self.splits[name], self.ctx.train.batch_size
        return max(math.ceil(split.labeled.numel() / bs), math.ceil(split.unlabeled.numel() / bs))

    def batches(self) -> Iterator[MixMetaBatch]:
        """Per network :meth:`iters` steps; the shorter set and the meta set cycle (the
        official loop); second views are fresh augmentations of the same samples."""
        train, bs = self.ctx.train, self.ctx.train.batch_size
        mbs = int(self.hp["meta_batch_size"] or bs)
        for n in self.nets:
            split, prob = self.splits[n], self.source.probs[n]
            labeled = train.sampler(split.labeled, bs)
            unlabeled = train.sampler(split.unlabeled, bs)
            meta = train.sampler(self.source.meta_index[n], mbs)
            for _ in range(self.iters(n)):
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

    def task(self, net: nn.Module, peer: nn.Module, batch: MixMetaBatch) -> MixTask:
        """Refine, guess and mix one step's batches."""
        ctx = self.ctx
        alpha = float(self.mix_hp["alpha"])
        return build_task(
            net, peer, batch, ctx.num_classes, alpha, self.lambda_u, ctx.gen, ctx.autocast
        )

    def record_info(self) -> dict[str, Any]:
        return {
            **self.mix_hp,
            "temperature": 0.5,
            "meta_set": "peer GMM's clean probability > p_threshold, mixed",
            "source": "official CNWL code (train_famus_redminiimage.py), re-implemented",
        }
