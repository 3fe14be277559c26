"""Selectors and reweighters composed over the ERM step (CONTRIBUTING.md, "Selectors and
reweighters"; the settings are Cai, Cao & Liu's, "An Empirical Study of Robust Deep Models").

A :class:`Selector` picks a subset of one group of vectors (a class of the noisy label); a
:class:`Reweighter` gives every training sample a loss weight from the vectors and noisy labels.
:class:`ComposedMethod` computes the vectors from the runner's shared scan, calls them on a
schedule and hands the runner an :class:`~nlbench.training.data.EpochPlan`. Clean labels never reach
here: the runner scores ``plan.indices`` itself (``selected``, ``selected_precision``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
import torch.nn.functional as F

from nlbench.algorithms.facility_location import ALGORITHMS
from nlbench.core.errors import UsageError
from nlbench.core.hparam_types import Bool, Choice, Float, Int, Optional, Str, with_defaults
from nlbench.core.schedules import milestone_epochs
from nlbench.core.seeding import derive_seed, torch_generator
from nlbench.training.data import EpochPlan
from nlbench.training.method import SINGLE_NET_HPARAMS, Scan, SingleNetMethod, TrainContext

SPACES = ("softmax_grad", "feature_grad", "features", "softmax")
SCHEDULES = ("robust", "fast")
SCOPES = (None, "class", "global")  # the selector's groups; None: per class of the noisy label
LABELLED = ("softmax_grad", "feature_grad")  # spaces that contain the noisy label


@dataclass
class Selection:
    """A selector's answer for one group: local indices, optional cluster sizes, facts."""

    indices: torch.Tensor
    cluster_sizes: torch.Tensor | None = None
    info: dict[str, Any] = field(default_factory=dict)


class Selector(Protocol):
    """``select(vectors n×d, gen) -> Selection`` on one group (one class of the noisy label)."""

    def select(self, vectors: torch.Tensor, gen: torch.Generator) -> Selection: ...


class Reweighter(Protocol):
    """``weigh(vectors N×d, labels N) -> N`` non-negative loss weights for every sample."""

    def weigh(self, vectors: torch.Tensor, labels: torch.Tensor) -> torch.Tensor: ...


COMPOSED_HPARAMS: dict[str, Any] = {
    **SINGLE_NET_HPARAMS,  # "loss": one declaration, so loss=ce is the default here too
    # registry names, so a plugin's selector or reweighter is accepted (checked by name later)
    "selector": Optional(Str(None, doc="fl | set_cover | random | a plugin's | null")),
    "reweighter": Optional(Str(None, doc="density | a plugin's | null")),
    "schedule": Choice(
        "robust", SCHEDULES, doc="robust (select once at the first LR decay) | fast (every epoch)"
    ),
    "space": Choice("softmax_grad", SPACES, doc="selection space"),
    "density_space": Choice("features", SPACES, doc="density space"),
    "normalize": Bool(False, doc="unit-normalise the vectors (Cai et al.'s fast FL)"),
    "fl_ratio": Float(
        0.4, low=0, low_open=True, high=1, doc="medoids per class, as a share (Fig. 5)"
    ),
    "fl_scope": Choice(
        None, SCOPES, doc="null/class: FL per class of the noisy label | global: the whole set"
    ),
    "fl_algorithm": Choice(
        "auto", ALGORITHMS, doc="auto (greedy on CUDA, lazy elsewhere) | greedy | lazy | stochastic"
    ),
    "fl_epsilon": Float(0.01, low=0, low_open=True, high=1, doc="stochastic greedy's ε"),
    "fl_partition": Int(10_000, low=1, doc="larger classes are split into random parts"),
    "cover_radius": Float(1.0, low=0, high=1e6, doc="set_cover's ball radius in `space`"),
    "radius": Float(2.0, low=0, high=1e6, doc="density radius in `density_space` (Fig. 4)"),
    "radius_quantile": Optional(
        Float(
            None,
            low=0,
            high=1,
            doc="radius = this quantile of same-label distances (cpu profile); null: radius",
        )
    ),
    "density_mode": Choice(
        "count", ("count", "agree"), doc="count (Cai et al. Table 5) | agree (§5.3)"
    ),
    "select_epoch": Optional(Int(None, low=0, doc="null: the first LR milestone")),
    "warmup_epochs": Int(5, low=0, doc="fast schedule: full-data epochs before selecting"),
}


def composed_hparams(**overrides: Any) -> dict[str, Any]:
    """A :class:`ComposedMethod` spec's ``default_hparams``: every key it reads, plus overrides.

    The public way for a plugin to define a composed method (e.g. ``selector="fl"`` or its own
    reweighter); hparams the chosen selector, reweighter or loss declare on their specs are
    added per run (:mod:`nlbench.core.component_hparams`), so they need not be listed here.
    """
    return with_defaults(COMPOSED_HPARAMS, **overrides)


# -- spaces -------------------------------------------------------------------------------------
def space_vectors(
    scan: Scan,
    labels: torch.Tensor,
    space: str,
    model: torch.nn.Module,
    net: str = "net",
    normalize: bool = False,
) -> torch.Tensor:
    """Per-sample vectors in ``space`` from the scan (Cai et al. §5.2, §6.1.2).

    ``softmax_grad``: ∂CE/∂logits = p − y (no extra backward pass; Cai et al.'s best);
    ``feature_grad``: ∂CE/∂features = (p − y) W for the linear classifier W (CRUST's proxy);
    ``features``: penultimate features; ``softmax``: p (label-free).
    """
    p = scan.logits[net].float().softmax(1)
    if space == "softmax":
        out = p
    elif space == "features":
        out = scan.features[net].float()
    else:
        out = p - F.one_hot(labels, p.shape[1]).float()
        if space == "feature_grad":
            bare: Any = getattr(model, "module", model)  # unwrap DDP; timm's contract below
            weight = bare.get_classifier().weight
            assert isinstance(weight, torch.Tensor)  # the timm head contract: a linear layer
            out = out @ weight.detach().float()
    if normalize:
        out = out / out.norm(dim=1, keepdim=True).clamp_min(1e-12)
    return out


def check_choice(key: str, value: Any, accepted: tuple) -> None:
    if value not in accepted:
        names = ", ".join(map(str, accepted))
        raise UsageError(f"{key}={value!r} is not accepted; use one of {names}")


# -- the method ---------------------------------------------------------------------------------
class ComposedMethod(SingleNetMethod):
    """ERM with a selector and/or reweighter applied per class of the noisy label (the
    selector on the whole noisy set with ``fl_scope=global``).

    Schedules (``schedule``): ``robust`` (Cai et al. §6.2) trains on everything until the first LR
    decay, selects/weights once there and keeps that plan to the end; ``fast`` (Cai et al. §5.3,
    §6.1.2) re-selects every epoch after ``warmup_epochs``, weighting each selected point by its
    cluster size (normalised over the batch by the weighted mean of the ERM step).
    """

    def __init__(self, ctx: TrainContext) -> None:
        super().__init__(ctx)
        hp, host = self.hp, ctx.components  # the run's registries (build_context passes them)
        check_choice("schedule", hp["schedule"], SCHEDULES)
        check_choice("space", hp["space"], SPACES)
        check_choice("density_space", hp["density_space"], SPACES)
        if hp.get("density_mode") == "agree" and hp["density_space"] in LABELLED:
            raise UsageError(
                "density_mode=agree compares labels across classes, so it needs a "
                "label-free density_space (features or softmax), not "
                f"{hp['density_space']}"
            )
        check_choice("fl_scope", hp.get("fl_scope"), SCOPES)
        sel = hp["selector"]
        self.selector = host.get("selectors", sel).factory(hp) if sel else None
        self.reweighter = (
            host.get("reweighters", hp["reweighter"]).factory(hp) if hp["reweighter"] else None
        )
        if self.selector is None and self.reweighter is None:
            raise UsageError("a composed method needs a selector or a reweighter; set selector=fl")
        spaces = ([hp["space"]] if self.selector else []) + (
            [hp["density_space"]] if self.reweighter else []
        )
        self.needs_features = "features" in spaces
        self.first = self._first_epoch()
        self.state: dict[str, Any] = {}

    def _first_epoch(self) -> int:
        """The epoch selection starts: warm-up (fast) or the first LR decay (robust)."""
        hp = self.hp
        if hp["schedule"] == "fast":
            return int(hp["warmup_epochs"])
        if hp["select_epoch"] is not None:
            return int(hp["select_epoch"])
        if hp.get("scheduler", "multistep") == "multistep" and hp.get("milestones"):
            return math.ceil(min(milestone_epochs(list(hp["milestones"]), self.ctx.epochs)))
        return math.ceil(0.6 * self.ctx.epochs)  # Cai et al. §6.2 decay at epoch 120 of 200

    def start_epoch(self, epoch: int, scan: Callable[[], Scan]) -> EpochPlan | None:
        if epoch < self.first:
            return None
        if self.hp["schedule"] == "robust" and self.state:
            return self._plan(self.state, selection_s=0.0)
        t0 = time.perf_counter()
        state = self._compute(scan(), epoch)
        if self.ctx.device.type == "cuda":
            torch.cuda.synchronize(self.ctx.device)
        self.state = state
        return self._plan(state, selection_s=time.perf_counter() - t0)

    def _compute(self, scan: Scan, epoch: int) -> dict[str, Any]:
        hp, labels = self.hp, self.ctx.train.labels
        state: dict[str, Any] = {"epoch": epoch, "info": {}}
        weights = None
        if self.reweighter is not None:
            vec = space_vectors(
                scan, labels, hp["density_space"], self.model, normalize=hp["normalize"]
            )
            weights = self.reweighter.weigh(vec, labels)
        if self.selector is not None:
            vec = space_vectors(scan, labels, hp["space"], self.model, normalize=hp["normalize"])
            gen = torch_generator(derive_seed("select", self.ctx.seed, epoch), self.ctx.device)
            idx, sizes, info = self._select(vec, labels, gen)
            state["info"] = info
            if hp["schedule"] == "fast" and sizes is not None:
                weights = sizes if weights is None else sizes * weights[idx]
            elif weights is not None:
                weights = weights[idx]
            state["indices"] = idx
        state["weights"] = weights
        return state

    def _groups(self, labels: torch.Tensor) -> list[torch.Tensor]:
        """The index groups the selector runs on: each class of the noisy label (CRUST's
        choice, the default), or the whole noisy set with ``fl_scope=global`` (the FL study's
        literal "facility location of the noisy dataset")."""
        if self.hp.get("fl_scope") == "global":
            return [torch.arange(labels.numel(), device=labels.device)]
        return [torch.nonzero(labels == c).squeeze(1) for c in range(self.ctx.num_classes)]

    def _select(
        self, vec: torch.Tensor, labels: torch.Tensor, gen: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor | None, dict[str, Any]]:
        """Run the selector on each group (see :meth:`_groups`); global indices and sizes."""
        assert self.selector is not None  # _select runs only for methods with a selector
        picked: list[torch.Tensor] = []
        sizes: list[torch.Tensor] = []
        info: dict[str, Any] = {}
        for members in self._groups(labels):
            if members.numel() == 0:
                continue
            sel = self.selector.select(vec[members], gen)
            picked.append(members[sel.indices])
            if sel.cluster_sizes is not None:
                sizes.append(sel.cluster_sizes.float())
            for k, v in sel.info.items():
                if isinstance(v, (int, float)) and not isinstance(v, bool):
                    info[k] = info.get(k, 0) + v
                elif isinstance(v, str):
                    info[k] = v
        idx = torch.cat(picked)
        size = torch.cat(sizes) if len(sizes) == len(picked) else None
        return idx, size, info

    def _plan(self, state: dict[str, Any], selection_s: float) -> EpochPlan:
        metrics: dict[str, Any] = {"selection_s": selection_s, "selection_epoch": state["epoch"]}
        metrics.update({f"select_{k}": v for k, v in state.get("info", {}).items()})
        w = state.get("weights")
        if w is not None:
            metrics["weight_min"], metrics["weight_max"] = float(w.min()), float(w.max())
        return EpochPlan(indices=state.get("indices"), weights=w, metrics=metrics)

    def extra_state(self) -> dict[str, Any]:
        """The current selection (tensors and plain Python) so a resumed run keeps it."""
        return {"selection": dict(self.state)}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        sel = dict(state.get("selection") or {})
        for key in ("indices", "weights"):
            if sel.get(key) is not None:
                sel[key] = sel[key].to(self.ctx.device)
        self.state = sel

    def record_info(self) -> dict[str, Any]:
        hp = self.hp
        whole = hp.get("fl_scope") == "global"
        group = "the whole noisy set" if whole else "each class of the noisy label"
        return {
            "selector": hp["selector"],
            "reweighter": hp["reweighter"],
            "schedule": hp["schedule"],
            "first_selection_epoch": self.first,
            "space": hp["space"] if self.selector else None,
            "density_space": hp["density_space"] if self.reweighter else None,
            "per_class": "whole noisy set" if whole else "class of the noisy label",
            "similarity": f"M - L2 distance, M = max distance within the group ({group}; "
            "each random part of a group larger than fl_partition)",
        }
