"""The shared algorithms a method plugin composes, part of the public API: MixMatch and its
losses (DivideMix, FaMUS), the two-component GMM split, facility location and density
counts (the FL methods), meta-gradient helpers (MW-Net, L2R, FaMUS) and the DDP helpers.
Import them from here, never from their internal modules (:mod:`nlbench.api`'s stability
promise covers these names too)."""

from __future__ import annotations

from nlbench.algorithms import metagrad
from nlbench.algorithms.facility_location import (
    ALGORITHMS,
    agreement_fractions,
    cluster_sizes,
    density_counts,
    pairwise_distances,
    same_label_distance_quantile,
    select_group,
    set_cover,
)
from nlbench.algorithms.gmm import Split, clean_probability, co_divide, normalise_losses
from nlbench.algorithms.metagrad import buffer_clones, trainable
from nlbench.algorithms.mixmatch import (
    full_precision,
    linear_rampup,
    mixmatch,
    negative_entropy,
    probability_mse,
    sharpen,
    soft_cross_entropy,
    uniform_prior_penalty,
)
from nlbench.training import distributed

__all__ = [
    "ALGORITHMS",
    "Split",
    "agreement_fractions",
    "buffer_clones",
    "clean_probability",
    "cluster_sizes",
    "co_divide",
    "density_counts",
    "distributed",
    "full_precision",
    "linear_rampup",
    "metagrad",
    "mixmatch",
    "negative_entropy",
    "normalise_losses",
    "pairwise_distances",
    "probability_mse",
    "same_label_distance_quantile",
    "select_group",
    "set_cover",
    "sharpen",
    "soft_cross_entropy",
    "trainable",
    "uniform_prior_penalty",
]
