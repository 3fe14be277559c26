"""Selectors ``fl``, ``set_cover`` and ``random`` (Cai, Cao & Liu, "An Empirical Study of Robust
Deep Models", §5.1, §6.1.2).

Each works on one group of vectors (the ComposedMethod calls it per class of the noisy label).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from nlbench.api import Hparams, Selection, SelectorSpec, UsageError, check_choice, hookimpl
from nlbench.api.algorithms import (
    ALGORITHMS,
    cluster_sizes,
    pairwise_distances,
    select_group,
    set_cover,
)


def _ratio(hp: Hparams) -> float:
    ratio = hp.get("fl_ratio", 0.4)
    if not isinstance(ratio, (int, float)) or isinstance(ratio, bool) or not 0 < ratio <= 1:
        raise UsageError(f"fl_ratio must be a number in (0, 1], got {ratio!r}")
    return float(ratio)


class FacilityLocation:
    """``round(fl_ratio·n)`` medoids by greedy facility location; cluster sizes as weights."""

    def __init__(self, hp: Hparams) -> None:
        check_choice("fl_algorithm", hp.get("fl_algorithm", "auto"), ALGORITHMS)
        self.ratio = _ratio(hp)
        self.algorithm = hp.get("fl_algorithm", "auto")
        self.epsilon = float(hp.get("fl_epsilon", 0.01))
        self.partition = int(hp.get("fl_partition", 10_000))

    def select(self, vectors: torch.Tensor, gen: torch.Generator) -> Selection:
        res = select_group(vectors, self.ratio, self.algorithm, self.epsilon, gen, self.partition)
        parts = int(res.info["partitions"])
        # summed over the groups by ComposedMethod: fl_groups is the number of groups (classes
        # of the noisy label, or 1 with fl_scope=global), fl_split_groups how many of them were
        # larger than fl_partition and split into random parts, fl_parts the parts selected in
        info = {
            "fl_objective": res.objective,
            "fl_algorithm": res.info["algorithm"],
            "fl_groups": 1,
            "fl_split_groups": int(parts > 1),
            "fl_parts": parts,
            "fl_evaluations": res.evaluations,
        }
        return Selection(res.indices, res.info["cluster_sizes"], info)


class SetCover:
    """Greedy set cover by balls of radius ``cover_radius``: the centres, cluster sizes as
    weights."""

    def __init__(self, hp: Hparams) -> None:
        self.radius = float(hp.get("cover_radius", 1.0))

    def select(self, vectors: torch.Tensor, gen: torch.Generator) -> Selection:
        dist = pairwise_distances(vectors)
        centres = set_cover(dist, self.radius)
        return Selection(centres, cluster_sizes(dist, centres), {"clusters": int(centres.numel())})


class RandomSubset:
    """A seeded uniform subset of the same size as ``fl`` would pick (the report's baseline)."""

    def __init__(self, hp: Hparams) -> None:
        self.ratio = _ratio(hp)

    def select(self, vectors: torch.Tensor, gen: torch.Generator) -> Selection:
        n = vectors.shape[0]
        k = min(n, round(self.ratio * n))
        perm = torch.randperm(n, generator=gen, device=vectors.device)
        return Selection(perm[:k], None, {})


@hookimpl
def register_selectors(register: Callable[[SelectorSpec], None]) -> None:
    register(
        SelectorSpec(
            name="fl",
            factory=FacilityLocation,
            description="greedy facility location: fl_ratio of each class as medoids",
        )
    )
    register(
        SelectorSpec(
            name="set_cover",
            factory=SetCover,
            description="greedy set cover by balls of radius cover_radius",
        )
    )
    register(
        SelectorSpec(
            name="random",
            factory=RandomSubset,
            description="seeded uniform subset of fl_ratio of each class (baseline)",
        )
    )
