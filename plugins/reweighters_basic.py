"""Reweighter ``density`` (Cai, Cao & Liu, "An Empirical Study of Robust Deep Models", Table 5
"Weighted only", §5.3).

``density_mode``:
    ``count`` (default; the report's Table 5 / §6.2 choice): the number of samples with the
        same noisy label within ``radius`` (itself included) — "weight each data point by the
        number of data points in its unit ball with radius r" (CRUST weighs its medoids alike).
    ``agree``: the fraction of all samples within ``radius`` that share the point's noisy label
        (§5.3: "the fraction of data points in the same cluster whose labels agree with the
        sampled point", a point's cluster being its radius-r ball as in the set cover of §5.1).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from nlbench.api import Hparams, ReweighterSpec, UsageError, check_choice, hookimpl
from nlbench.api.algorithms import agreement_fractions, density_counts, same_label_distance_quantile

MODES = ("count", "agree")


class Density:
    """Per-sample weights from the density of same-label samples around each point."""

    def __init__(self, hp: Hparams) -> None:
        self.mode = hp.get("density_mode", "count")
        check_choice("density_mode", self.mode, MODES)
        self.radius = float(hp.get("radius", 2.0))
        self.quantile = hp.get("radius_quantile")
        if self.quantile is not None and not 0.0 < float(self.quantile) < 1.0:
            raise UsageError(f"radius_quantile must lie in (0, 1), got {self.quantile!r}")

    def weigh(self, vectors: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        radius = self.radius
        if self.quantile is not None:  # scale-free: the feature scale depends on the network
            radius = same_label_distance_quantile(vectors, labels, float(self.quantile))
        if self.mode == "count":
            return density_counts(vectors, labels, radius)
        return agreement_fractions(vectors, labels, radius)


@hookimpl
def register_reweighters(register: Callable[[ReweighterSpec], None]) -> None:
    register(
        ReweighterSpec(
            name="density",
            factory=Density,
            description="same-label density within radius (count or agree)",
        )
    )
