"""``dividemix``: DivideMix (Li, Socher & Hoi, ICLR 2020), following the paper and its code.

Two networks. After a cross-entropy warm-up, every epoch each network's per-sample losses (the
runner's cached no-augmentation scan) are fitted with a two-component GMM; the posterior of the
smaller-mean component is the clean probability. *Co-divide*: net 1 trains on the
labeled/unlabeled split made by net 2's GMM and vice versa. Each step refines the labeled
targets with the training net's predictions (co-refinement), guesses the unlabeled targets with
both nets (co-guessing), sharpens both (T = 0.5), applies MixMatch, and minimises
``Lx + λu·ramp·Lu + prior penalty`` (Eqs. (9)–(12)). Test = argmax of the summed logits.

Per-setting λu / τ come from the paper's Appendix Table 7 (:mod:`.dividemix.settings`) for
the run's noise setting (``ctx.noise``). A run is flagged ``noise_tuned``
(``MethodSpec.flags_for``) when the noise chose any value it left open: λu or τ by a row, the
5-epoch GMM loss history at r = 0.9, the warm-up penalty for asym noise (``method_info``:
``noise_tuned_by``); one with all four set explicitly, or on the official defaults, is not.
Known differences from the official code: ``nlbench show method dividemix``.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from nlbench.api import (
    Batch,
    Bool,
    EpochPlan,
    Float,
    Int,
    MethodSpec,
    Optional,
    Scan,
    TrainContext,
    TwoNetMethod,
    class_balanced_pool,
    derive_seed,
    hookimpl,
)
from nlbench.api.algorithms import (
    Split,
    clean_probability,
    co_divide,
    linear_rampup,
    mixmatch,
    negative_entropy,
    normalise_losses,
    probability_mse,
    sharpen,
    soft_cross_entropy,
    uniform_prior_penalty,
)
from nlbench_plugins.dividemix.settings import DEVIATIONS, PROFILES, resolve_setting, run_flags

NETS = ("net1", "net2")
PEER = {"net1": "net2", "net2": "net1"}

DEFAULT_HPARAMS: dict[str, Any] = {
    "warmup_epochs": Int(10, low=0, doc="CE warm-up epochs (CIFAR-10; 30 CIFAR-100, 1 Clothing1M)"),
    "alpha": Float(4.0, low=0, high=1e3, doc="Beta(α, α) of MixMatch"),
    "temperature": Float(0.5, low=0, low_open=True, high=1e3, doc="sharpening T"),
    "lambda_u": Optional(
        Float(
            None, low=0, high=1e6, doc="λu; null: Appendix Table 7 for (dataset, noise type, rate)"
        )
    ),
    "p_threshold": Optional(
        Float(
            None, low=0, high=1, high_open=True, doc="clean-probability threshold τ; null: Table 7"
        )
    ),
    "gmm_history": Optional(
        Int(
            None,
            low=1,
            doc="epochs of normalised losses averaged for the GMM; null: 5 at r = 0.9, else 1",
        )
    ),
    "rampup_epochs": Int(16, low=0, doc="λu ramps linearly from 0 over this many epochs"),
    "warmup_batch_size": Optional(Int(None, low=1, doc="null: 2 × batch_size (official)")),
    "conf_penalty": Optional(
        Bool(None, doc="warm-up negative-entropy penalty; null: asym noise or Clothing1M")
    ),
    "batches_per_epoch": Optional(
        Int(None, low=1, doc="Clothing1M: class-balanced pools of this many batches")
    ),
    "forward_unlabeled": Bool(
        True, doc="false: forward only the mixed labeled half (Clothing1M code)"
    ),
    "min_labeled": Optional(
        Int(None, low=0, doc="fewer labeled samples → median split; null: batch_size")
    ),
    "min_unlabeled": Int(1, low=0, doc="fewer unlabeled samples → median split"),
}


@dataclass
class MixBatch(Batch):
    """A DivideMix step's inputs: labeled views ``x``/``x2``, unlabeled views ``u1``/``u2``.

    ``tag`` names the network trained by this batch; ``progress`` is the ramp position
    ``epoch + batch_idx / num_iter`` (the official ``linear_rampup`` argument).
    """

    x2: torch.Tensor | None = None
    u1: torch.Tensor | None = None
    u2: torch.Tensor | None = None
    warmup: bool = False
    progress: float = 0.0


def _tag(b: MixBatch) -> str:
    assert b.tag is not None, "a DivideMix batch names its network"
    return b.tag


def _views(b: MixBatch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``x2, u1, u2, weight`` of a mixed step, which always carries them."""
    assert b.x2 is not None and b.u1 is not None and b.u2 is not None and b.weight is not None
    return b.x2, b.u1, b.u2, b.weight


class DivideMix(TwoNetMethod):
    """Two networks co-dividing the data for each other; see the module docstring. One
    optimizer per network; test: the sum of both networks' logits."""

    ensemble = True

    def __init__(self, ctx: TrainContext) -> None:
        super().__init__(ctx)
        self.setting = resolve_setting(ctx)
        self.bs = int(self.hp["batch_size"])
        self.warmup_bs = int(self.hp["warmup_batch_size"] or 2 * self.bs)
        self.min_labeled = int(self.hp["min_labeled"] or self.bs)
        self.min_unlabeled = max(1, int(self.hp["min_unlabeled"]))
        self.history: dict[str, list[torch.Tensor]] = {name: [] for name in NETS}
        self.splits: dict[str, Split] = {}
        self.pools: dict[str, torch.Tensor | None] = dict.fromkeys(NETS)
        # checkpointed: the GMM loss history (r = 0.9 path) and the current split
        self.register_state("history")
        self.register_state("splits", save=_splits_to_plain, load=_splits_from_plain)

    # -- epoch-level work ---------------------------------------------------------------------
    def _pool(self, multiple: int) -> torch.Tensor | None:
        """A fresh class-balanced pool (Clothing1M) or None for the whole train set."""
        nb = self.hp["batches_per_epoch"]
        if nb is None:
            return None
        train = self.ctx.train
        size = int(nb) * self.bs * multiple  # official: num_batches × B (× 2 for warm-up)
        return class_balanced_pool(train.labels, size, self.ctx.num_classes, train.gen)

    def _clean_prob(self, epoch: int, name: str, loss: torch.Tensor) -> torch.Tensor:
        """GMM clean probability of one net (``eval_train`` of the official ``Train_cifar.py``:
        min-max normalised losses, optionally their 5-epoch mean)."""
        norm = normalise_losses(loss.float())
        depth = self.setting.gmm_history
        if self.pools[name] is None and depth > 1:  # the official r = 0.9 path
            self.history[name] = (self.history[name] + [norm])[-depth:]
            norm = torch.stack(self.history[name]).mean(0)
        seed = derive_seed("dividemix_gmm", self.ctx.seed, epoch, name) % 2**32
        return clean_probability(norm, seed=seed, normalise=False)

    def start_epoch(self, epoch: int, scan: Callable[[], Scan]) -> EpochPlan:
        train = self.ctx.train
        if epoch < int(self.hp["warmup_epochs"]):
            self.pools = {name: self._pool(2) for name in NETS}
            steps = sum(
                train.num_batches(EpochPlan(indices=p), self.warmup_bs) for p in self.pools.values()
            )
            return EpochPlan(steps=steps, metrics={"phase": "warmup"})
        self.pools = {name: self._pool(1) for name in NETS}
        result = scan()
        probs = {}
        for name in NETS:
            pool = self.pools[name]
            loss = result.loss[name] if pool is None else result.loss[name][pool]
            probs[name] = self._clean_prob(epoch, name, loss)
        tau = self.setting.p_threshold
        for name in NETS:  # co-divide: each net trains on its peer's split
            peer = PEER[name]
            pool = self.pools[peer]
            pool = torch.arange(len(train), device=train.device) if pool is None else pool
            self.splits[name] = co_divide(
                probs[peer], pool, tau, self.min_labeled, self.min_unlabeled
            )
        return self._plan(probs)

    def _plan(self, probs: dict[str, torch.Tensor]) -> EpochPlan:
        """indices = union of both labeled sets; clean_prob = mean of both nets' posteriors."""
        s1, s2 = self.splits["net1"], self.splits["net2"]
        union = torch.unique(torch.cat([s1.labeled, s2.labeled]))
        whole = all(p is None for p in self.pools.values())
        metrics: dict[str, Any] = {"phase": "train"}
        for name, split in self.splits.items():
            metrics[f"labeled_{name}"] = int(split.labeled.numel())
            metrics[f"unlabeled_{name}"] = int(split.unlabeled.numel())
            metrics[f"split_fallback_{name}"] = split.fallback
        steps = sum(math.ceil(s.labeled.numel() / self.bs) for s in self.splits.values())
        clean_prob = (probs["net1"] + probs["net2"]) / 2 if whole else None
        return EpochPlan(indices=union, clean_prob=clean_prob, metrics=metrics, steps=steps)

    def epoch_batches(self, epoch: int, plan: EpochPlan | None) -> Iterator[Batch]:
        if epoch < int(self.hp["warmup_epochs"]):
            return self._warmup_batches(epoch)
        return self._mix_batches(epoch)

    def _warmup_batches(self, epoch: int) -> Iterator[Batch]:
        for name in NETS:  # each net gets its own shuffled pass (its own pool on Clothing1M)
            for b in self.ctx.train.batches(EpochPlan(indices=self.pools[name]), self.warmup_bs):
                yield MixBatch(b.x, b.y, b.index, tag=name, warmup=True, progress=float(epoch))

    def _mix_batches(self, epoch: int) -> Iterator[Batch]:
        train = self.ctx.train
        for name in NETS:
            split = self.splits[name]
            num_iter = max(1, math.ceil(split.labeled.numel() / self.bs))
            unlabeled = train.sampler(split.unlabeled, self.bs)
            labeled = train.batches(EpochPlan(indices=split.labeled, weights=split.weight), self.bs)
            # ⌈|L|/B⌉ steps even where a streaming set resamples its batches (Clothing1M)
            for i, b in enumerate(itertools.islice(labeled, num_iter)):
                u = next(unlabeled)
                yield MixBatch(
                    b.x,
                    b.y,
                    b.index,
                    weight=b.weight,
                    tag=name,
                    x2=train.view(b.index),
                    u1=u.x,
                    u2=train.view(u.index),
                    progress=epoch + i / num_iter,
                )

    # -- steps ----------------------------------------------------------------------------------
    def train_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        if not isinstance(batch, MixBatch) or batch.tag not in self.nets:
            raise TypeError("dividemix trains only on the batches of its own epoch_batches()")
        return self._warmup_step(batch) if batch.warmup else self._mix_step(batch)

    def _warmup_step(self, batch: MixBatch) -> dict[str, torch.Tensor]:
        """Cross-entropy on all data; plus the confidence penalty for asym noise (the official
        ``Train_cifar.py``'s ``NegEntropy``)."""
        name = _tag(batch)
        net = self.nets[name]
        net.train()
        with self.ctx.autocast():
            logits = net(batch.x).float()
        ce = F.cross_entropy(logits, batch.y)
        loss = ce + negative_entropy(logits) if self.setting.conf_penalty else ce
        self.step(loss, name)
        return {"loss": loss.detach(), "ce": ce.detach()}

    @torch.no_grad()
    def _targets(self, batch: MixBatch) -> tuple[torch.Tensor, torch.Tensor]:
        """Co-refined labeled targets and co-guessed unlabeled targets, sharpened (Li et al.,
        DivideMix, ICLR 2020: "MixMatch with label co-refinement and co-guessing")."""
        x2, u1, u2, weight = _views(batch)
        net, peer = self.nets[_tag(batch)], self.nets[PEER[_tag(batch)]]
        T, n_u = float(self.hp["temperature"]), u1.shape[0]
        with self.ctx.autocast():
            # the training net runs in train mode, one batch at a time, as in the official code
            own = [net(v).float().softmax(1) for v in (u1, u2, batch.x, x2)]
            # the peer is in eval mode: one forward of both views is exactly the same
            peer_u = peer(torch.cat([u1, u2])).float().softmax(1)
        pu = (own[0] + own[1] + peer_u[:n_u] + peer_u[n_u:]) / 4
        px = (own[2] + own[3]) / 2
        w = weight.float().unsqueeze(1)
        onehot = F.one_hot(batch.y, self.ctx.num_classes).float()
        return sharpen(w * onehot + (1 - w) * px, T), sharpen(pu, T)

    def _mix_step(self, batch: MixBatch) -> dict[str, torch.Tensor]:
        """MixMatch step; loss = Lx + λu·ramp·Lu + uniform-prior penalty (Eq. (12))."""
        name = _tag(batch)
        net = self.nets[name]
        net.train()
        self.nets[PEER[name]].eval()
        targets_x, targets_u = self._targets(batch)
        x2, u1, u2, _ = _views(batch)
        inputs = torch.cat([batch.x, x2, u1, u2])
        targets = torch.cat([targets_x, targets_x, targets_u, targets_u])
        mixed_x, mixed_t, _ = mixmatch(inputs, targets, float(self.hp["alpha"]), self.ctx.gen)
        n_x = 2 * batch.x.shape[0]
        if not self.hp["forward_unlabeled"]:
            mixed_x = mixed_x[:n_x]
        with self.ctx.autocast():
            logits = net(mixed_x).float()
        lx = soft_cross_entropy(logits[:n_x], mixed_t[:n_x])
        lu = probability_mse(logits[n_x:], mixed_t[n_x:]) if logits.shape[0] > n_x else lx * 0
        ramp = linear_rampup(
            batch.progress, int(self.hp["warmup_epochs"]), int(self.hp["rampup_epochs"])
        )
        lam = self.setting.lambda_u * ramp
        penalty = uniform_prior_penalty(logits)
        loss = lx + lam * lu + penalty
        self.step(loss, name)
        lam_t = torch.full((), lam, device=loss.device)
        return {
            "loss": loss.detach(),
            "lx": lx.detach(),
            "lu": lu.detach(),
            "penalty": penalty.detach(),
            "lambda_u": lam_t,
        }

    # -- facts ---------------------------------------------------------------------------------
    def record_info(self) -> dict[str, Any]:
        return {
            **self.setting.as_dict(),
            "selected": "union of both networks' labeled sets",
            "clean_prob": "mean of both networks' GMM clean probabilities",
            "test": "argmax of the sum of both networks' logits",
        }


def _splits_to_plain(splits: dict[str, Split]) -> dict[str, dict[str, Any]]:
    """Splits as tensors and plain Python (checkpoints load with weights_only=True)."""
    return {name: dataclasses.asdict(s) for name, s in splits.items()}


def _splits_from_plain(plain: dict[str, dict[str, Any]]) -> dict[str, Split]:
    return {name: Split(**s) for name, s in plain.items()}


@hookimpl
def register_methods(register: Callable[[MethodSpec], None]) -> None:
    register(
        MethodSpec(
            name="dividemix",
            description="two nets co-divide the data by a loss GMM; MixMatch on the split",
            factory=DivideMix,
            default_hparams=DEFAULT_HPARAMS,
            profiles=PROFILES,
            flags=DivideMix.spec_flags(),
            flags_for=run_flags,
            deviations=DEVIATIONS,
            reference="Li, Socher & Hoi, DivideMix: Learning with Noisy Labels as "
            "Semi-supervised Learning, ICLR 2020",
        )
    )
