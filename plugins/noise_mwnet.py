"""MW-Net's class-flip noise, ``flip`` and ``flip2`` (Shu et al., NeurIPS 2019, Table 3).

Convention of the official ``load_corrupted_data.py`` (read for facts, not copied):

* a fixed C×C transition matrix T: ``1 − r`` on the diagonal; ``flip`` puts ``r`` on *one*
  other class per row, ``flip2`` ``r/2`` on *two* distinct other classes (the paper calls
  them "similar" classes; the code draws them at random);
* the target classes come from numpy's legacy generator seeded with 1 (``np.random.seed(1)``
  inside the matrix builder, whatever the run's seed): row i draws among the classes ≠ i, rows
  in order 0, 1, …, C−1; ``flip`` takes one ``choice``, ``flip2`` a ``choice`` of two without
  replacement. We replay the same draws on a local ``RandomState(1)``, so every noise seed and
  every run uses the paper's targets (CIFAR-10 ``flip``: 0→6, 1→9, 2→6, 3→0, 4→0, 5→1, 6→8,
  7→6, 8→2, 9→4);
* every label is then drawn *per sample* from row T[y] (so the realized rate is binomial
  around r, not exactly r); the draws use the run's noise generator, so they depend on the
  noise seed like every other model here (the official stream, ``np.random.seed(seed)`` over
  its own train order, cannot be matched once the meta split differs).

The record's ``noise.info`` lists each class's targets.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from nlbench.api import (
    NoiseContext,
    NoiseModelSpec,
    NoiseResult,
    UsageError,
    hookimpl,
    parse_rate,
    rate_arg,
)

MATRIX_SEED = 1  # flip_labels_C(..., seed=1) in the official code: the targets never vary


def flip_targets(num_classes: int, count: int, seed: int = MATRIX_SEED) -> list[list[int]]:
    """Each class's ``count`` target classes, drawn as MW-Net's matrix builders draw them.

    A local legacy ``RandomState`` (no global state): it is the only way to replay the
    official targets exactly.
    """
    rs = np.random.RandomState(seed)
    classes = np.arange(num_classes)
    out = []
    for i in range(num_classes):
        others = classes[classes != i]
        if count == 1:
            out.append([int(rs.choice(others))])
        else:
            out.append([int(t) for t in rs.choice(others, count, replace=False)])
    return out


def flip_matrix(num_classes: int, rate: float, count: int) -> np.ndarray:
    """MW-Net's T: ``1 − r`` on the diagonal, ``r / count`` on each class's targets."""
    matrix = np.eye(num_classes) * (1.0 - rate)
    for i, targets in enumerate(flip_targets(num_classes, count)):
        matrix[i, targets] = rate / count
    return matrix


def draw_from_rows(clean: np.ndarray, matrix: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One label per sample from row ``matrix[y]`` (inverse CDF on one uniform per sample)."""
    cdf = np.cumsum(matrix, axis=1)[clean]
    u = rng.random(len(clean))
    drawn: np.ndarray = np.minimum((u[:, None] >= cdf).sum(1), matrix.shape[0] - 1)
    return drawn.astype(np.int64)


def _flip(ctx: NoiseContext, arg: str | None, name: str, count: int) -> NoiseResult:
    rate = parse_rate(arg, f"{name}:{arg}")
    if ctx.num_classes < count + 1:
        raise UsageError(
            f"noise '{name}' flips each class to {count} other class(es); dataset "
            f"'{ctx.dataset}' has {ctx.num_classes}. Accepted: ≥ {count + 1} classes."
        )
    matrix = flip_matrix(ctx.num_classes, rate, count)
    noisy = draw_from_rows(ctx.clean, matrix, ctx.rng)
    targets = flip_targets(ctx.num_classes, count)
    return NoiseResult(noisy, info={"targets": targets, "matrix_seed": MATRIX_SEED})


def flip(ctx: NoiseContext, arg: str | None) -> NoiseResult:
    """MW-Net ``flip``: each class flips to one fixed other class with probability r."""
    return _flip(ctx, arg, "flip", 1)


def flip2(ctx: NoiseContext, arg: str | None) -> NoiseResult:
    """MW-Net ``flip2`` (its Table 3): two fixed other classes, r/2 each."""
    return _flip(ctx, arg, "flip2", 2)


CONVENTION = "MW-Net targets (RandomState(1)), per-sample draws (realized ~ r)"


@hookimpl
def register_noise_models(register: Callable[[NoiseModelSpec], None]) -> None:
    one = "MW-Net flip: each class to one fixed random other class with prob. r"
    register(NoiseModelSpec("flip", one, flip, convention=CONVENTION, check_arg=rate_arg))
    two = "MW-Net flip2 (Table 3): each class to two fixed random other classes, r/2 each"
    register(NoiseModelSpec("flip2", two, flip2, convention=CONVENTION, check_arg=rate_arg))
