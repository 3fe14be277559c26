"""Meta-set sources: where each network's meta batches come from, epoch by epoch.

:class:`CleanSet` (``meta_set=clean:N``): the runner's trusted hold-out (``ctx.meta``), one
endless stream per network. :class:`OwnPseudoSet` (``meta_set=pseudo``, one network): every
epoch a two-component GMM on the scan's per-sample training losses
(:func:`nlbench.algorithms.gmm.clean_probability`, FaMUS supplement §E) and the samples above
``p_threshold`` are the network's meta set. :class:`PeerPseudoSet` (two networks, FaMUS's
Algorithm 2): each network's meta set is the *other's* pseudo-clean set. Before the first GMM
(``warmup_epochs``) a pseudo source asks for plain cross-entropy.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from nlbench.api import EpochPlan, Scan, TrainContext, UsageError, derive_seed
from nlbench.api.algorithms import clean_probability
from nlbench_plugins.meta.batches import MetaBatches
from nlbench_plugins.meta.learner import Learner


class CleanSet:
    """The trusted hold-out; with one MW-Net network its weights score the train set."""

    kind, description, exchanged = "clean", "trusted hold-out", False

    def __init__(self, ctx: TrainContext, learners: dict[str, Learner], method: str) -> None:
        self.ctx, self.learners = ctx, learners
        if ctx.meta is None:
            raise UsageError(f"{method}: meta_set {ctx.hparams['meta_set']} built no meta set")
        for lr in learners.values():
            lr.meta = MetaBatches(ctx.meta.images, ctx.meta.labels, ctx.train.augment, ctx.gen)
        self.meta_sizes: dict[str, int] = {}

    def warming_up(self, epoch: int) -> bool:
        return False

    def start_epoch(self, epoch: int, scan: Callable[[], Scan], plan: EpochPlan) -> None:
        """The meta set's size per network; the meta-net's weight of each training loss as a
        clean score (detection AUC) when there is one network and it has a meta-net."""
        assert self.ctx.meta is not None
        self.meta_sizes = {n: int(self.ctx.meta.size) for n in self.learners}
        if len(self.learners) == 1:
            ((name, lr),) = self.learners.items()
            scores = lr.weighting.scores(lambda: scan().loss[name])
            if scores is not None:
                plan.clean_prob = scores

    def record_info(self) -> dict[str, Any]:
        assert self.ctx.meta is not None
        return {"kind": self.kind, "size": int(self.ctx.meta.size), "source": self.description}


class OwnPseudoSet:
    """Each network's meta set = its own GMM pseudo-clean samples, rebuilt every epoch."""

    kind, description, exchanged = "pseudo", "own GMM", False

    def __init__(self, ctx: TrainContext, learners: dict[str, Learner], method: str) -> None:
        self.ctx, self.learners = ctx, learners
        self.meta_sizes: dict[str, int] = {}
        self.fallback: dict[str, bool] = {}
        self.probs: dict[str, torch.Tensor] = {}  # clean probability each network trains with
        self.meta_index: dict[str, torch.Tensor] = {}

    def peer(self, name: str) -> str:
        """Whose GMM makes ``name``'s meta set."""
        return name

    def warming_up(self, epoch: int) -> bool:
        return epoch < int(self.ctx.hparams["warmup_epochs"])

    def start_epoch(self, epoch: int, scan: Callable[[], Scan], plan: EpochPlan) -> None:
        """GMM per network; each network's meta set = its peer's pseudo-clean samples (too few:
        the more probably clean half, as DivideMix's fallback)."""
        hp, loss = self.ctx.hparams, scan().loss
        seed = self.ctx.seed
        prob = {
            n: clean_probability(loss[n], seed=derive_seed("gmm", seed, epoch, n) % 2**32)
            for n in self.learners
        }
        tau = float(hp["p_threshold"])
        for n, lr in self.learners.items():
            p = prob[self.peer(n)]
            idx = torch.nonzero(p > tau).flatten()
            floor = max(int(hp["meta_batch_size"] or hp["batch_size"]), 1)
            self.fallback[n] = int(idx.numel()) < min(floor, p.numel())
            if self.fallback[n]:
                idx = torch.argsort(p, descending=True, stable=True)[: max(1, p.numel() // 2)]
            lr.meta = MetaBatches.pseudo(self.ctx.train, idx)
            self.meta_sizes[n] = int(idx.numel())
            self.meta_index[n] = idx
            self.probs[n] = p
            plan.metrics[f"meta_fallback_{n}"] = self.fallback[n]
        plan.clean_prob = torch.stack(list(prob.values())).mean(0)

    def record_info(self) -> dict[str, Any]:
        return {"kind": self.kind, "size": None, "source": self.description}


class PeerPseudoSet(OwnPseudoSet):
    """Two networks exchange pseudo-clean sets (FaMUS's Algorithm 2)."""

    description, exchanged = "peer network's GMM", True

    def peer(self, name: str) -> str:
        first, second = self.learners
        return second if name == first else first
