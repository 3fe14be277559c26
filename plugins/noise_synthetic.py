"""Synthetic label noise and the input corruptions of the generalization studies.

Every model is a pure function of ``ctx.clean`` (and, for ``instance`` and the input
corruptions, ``ctx.train_x``) and ``ctx.rng``. Flips are always chosen from a frozen copy of the
clean labels, so a sample relabelled from class a to b can never be picked again as a member of
b (the in-place relabelling of ELR's official code, Liu et al., NeurIPS 2020).

Class-dependent models (``asym``, ``asym_block5``, ``pairflip``) flip *exactly*
``round(r * n_c)`` samples of every source class c (ELR's per-class convention; DivideMix's
global draw instead corrupts a random number per class). Classes a map leaves alone stay clean,
so the realized rate of ``asym`` is below r.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from nlbench.api import (
    NoiseContext,
    NoiseModelSpec,
    NoiseResult,
    UsageError,
    hookimpl,
    optional_rate_arg,
    parse_rate,
    rate_arg,
)
from nlbench_plugins._noise_inputs import (
    INPUT_VERSION,
    gaussian_pixels,
    random_pixels,
    require_images,
    shuffled_pixels,
)

INSTANCE_STD = 0.1  # std of the per-sample flip rate around r (Xia et al. 2020, Alg. 1)
INSTANCE_DIM = 64  # width of the seeded random projection of the pixels
CHUNK = 4096  # images per chunk in pixel-level work (bounded memory on 50k×3072 sets)

# CIFAR-10: truck→automobile, bird→airplane, deer→horse, cat↔dog (Patrini et al. 2017).
CIFAR10_ASYM = {9: 1, 2: 0, 4: 7, 3: 5, 5: 3}
# Fashion-MNIST: the most confusable garments, in the spirit of the CIFAR-10 map:
# T-shirt/top↔Shirt, Pullover→Coat, Sandal→Sneaker, Ankle boot→Sneaker.
FASHIONMNIST_ASYM = {0: 6, 6: 0, 2: 4, 5: 7, 9: 7}


def cifar100_superclass_next() -> dict[int, int]:
    """Each fine class → the next fine class (by index, cyclic) of its real superclass."""
    from nlbench_plugins.datasets_cifar import cifar100_coarse

    coarse = cifar100_coarse()
    out = {}
    for k in np.unique(coarse):
        members = np.flatnonzero(coarse == k)
        for i, src in enumerate(members):
            out[int(src)] = int(members[(i + 1) % len(members)])
    return out


def block5_next(num_classes: int) -> dict[int, int]:
    """ELR/Patrini CIFAR-100 variant: i → next index within blocks of 5 consecutive indices."""
    return {i: 5 * (i // 5) + (i + 1) % 5 for i in range(num_classes)}


ASYM_MAPS = {
    "cifar10": (10, lambda: CIFAR10_ASYM),
    "cifar100": (100, cifar100_superclass_next),
    "fashionmnist": (10, lambda: FASHIONMNIST_ASYM),
}


def flip_per_class(
    clean: np.ndarray, mapping: dict[int, int], rate: float, rng: np.random.Generator
) -> np.ndarray:
    """Relabel exactly round(rate·n_c) samples of each source class c as ``mapping[c]``.

    Samples are chosen among the *frozen* clean labels, sources visited in sorted order.
    """
    frozen = clean.copy()
    noisy: np.ndarray = clean.copy()
    for src in sorted(mapping):
        dst = mapping[src]
        if dst == src:
            continue
        members = np.flatnonzero(frozen == src)
        k = round(rate * len(members))
        noisy[rng.choice(members, size=k, replace=False)] = dst
    return noisy


def _asym_mapping(ctx: NoiseContext, name: str) -> dict[int, int]:
    family = getattr(ctx.dataset_spec, "asym_map", None)
    if family not in ASYM_MAPS:
        raise UsageError(
            f"noise '{name}': dataset '{ctx.dataset}' has no asymmetric map. Accepted for: "
            f"{', '.join(sorted(ASYM_MAPS))}; use pairflip:R for a generic i->i+1 flip."
        )
    num_classes, build = ASYM_MAPS[family]
    if ctx.num_classes != num_classes:
        raise UsageError(
            f"noise '{name}': the {family} map needs {num_classes} classes, "
            f"dataset '{ctx.dataset}' has {ctx.num_classes}"
        )
    return build()


def asymmetric(ctx: NoiseContext, arg: str | None) -> NoiseResult:
    """Flip a fraction r of each mapped class along the dataset's semantic map."""
    rate = parse_rate(arg, f"asym:{arg}")
    mapping = _asym_mapping(ctx, "asym")
    family = ctx.dataset_spec.asym_map
    return NoiseResult(flip_per_class(ctx.clean, mapping, rate, ctx.rng), info={"map": family})


def asymmetric_block5(ctx: NoiseContext, arg: str | None) -> NoiseResult:
    """CIFAR-100's ELR/Patrini variant: next class within blocks of 5 consecutive indices."""
    rate = parse_rate(arg, f"asym_block5:{arg}")
    if getattr(ctx.dataset_spec, "asym_map", None) != "cifar100":
        raise UsageError(
            f"noise 'asym_block5' is the CIFAR-100 variant; dataset "
            f"'{ctx.dataset}' is not CIFAR-100. Accepted for: cifar100."
        )
    return NoiseResult(flip_per_class(ctx.clean, block5_next(ctx.num_classes), rate, ctx.rng))


def pairflip(ctx: NoiseContext, arg: str | None) -> NoiseResult:
    """Co-teaching's pair flip: a fraction r of each class i relabelled i+1 mod C."""
    rate = parse_rate(arg, f"pairflip:{arg}")
    c = ctx.num_classes
    return NoiseResult(flip_per_class(ctx.clean, {i: (i + 1) % c for i in range(c)}, rate, ctx.rng))


def symmetric_inclusive(ctx: NoiseContext, arg: str | None) -> NoiseResult:
    """DivideMix/MW-Net convention: round(r·N) samples relabelled uniformly over all C classes.

    The true class may be drawn again, so the realized rate is about r·(1 − 1/C).
    """
    rate = parse_rate(arg, f"sym_incl:{arg}")
    n, c = len(ctx.clean), ctx.num_classes
    noisy = ctx.clean.copy()
    idx = ctx.rng.choice(n, size=round(rate * n), replace=False)
    noisy[idx] = ctx.rng.integers(0, c, size=len(idx))
    return NoiseResult(noisy)


def random_labels(ctx: NoiseContext, arg: str | None) -> NoiseResult:
    """Zhang et al. 2017: each label independently replaced, with probability p (default 1),
    by a uniformly drawn class (the "partially corrupted labels" experiment for p < 1)."""
    p = 1.0 if arg is None else parse_rate(arg, f"random_labels:{arg}")
    noisy = ctx.clean.copy()
    mask = ctx.rng.random(len(noisy)) < p
    noisy[mask] = ctx.rng.integers(0, ctx.num_classes, size=int(mask.sum()))
    return NoiseResult(noisy)


# -- instance-dependent ------------------------------------------------------------------------
def truncated_normal(rng: np.random.Generator, mean: float, std: float, n: int) -> np.ndarray:
    """Samples of N(mean, std²) truncated to [0, 1], by redrawing the ones outside."""
    out = rng.normal(mean, std, n)
    bad = (out < 0) | (out > 1)
    while bad.any():
        out[bad] = rng.normal(mean, std, int(bad.sum()))
        bad = (out < 0) | (out > 1)
    return out


def projected_features(x: torch.Tensor, rng: np.random.Generator, dim: int) -> np.ndarray:
    """Features of norm sqrt(dim): centred pixels times a seeded Gaussian D×dim projection.

    The scale makes f·W_y logits of standard deviation about sqrt(dim) = 8, as large as Xia
    et al.'s products of normalised raw pixels, so a sample's flips concentrate on one or two
    classes picked by its features. Float64 so that a seed gives the same labels anywhere.
    """
    n = x.shape[0]
    flat = x.reshape(n, -1)
    d = flat.shape[1]
    mean = np.zeros(d)
    for s in range(0, n, CHUNK):
        mean += flat[s : s + CHUNK].numpy().astype(np.float64).sum(0)
    mean /= 255.0 * max(n, 1)
    proj = rng.standard_normal((d, dim)) / np.sqrt(d)
    feats = np.empty((n, dim))
    for s in range(0, n, CHUNK):
        feats[s : s + CHUNK] = (flat[s : s + CHUNK].numpy() / 255.0 - mean) @ proj
    norm = np.maximum(np.linalg.norm(feats, axis=1, keepdims=True), 1e-12)
    scaled: np.ndarray = feats * (np.sqrt(dim) / norm)
    return scaled


def instance_dependent(ctx: NoiseContext, arg: str | None) -> NoiseResult:
    """Part-dependent instance noise (Xia et al. 2020, Algorithm 1).

    Sample n flips with probability q_n ~ TN(r, 0.1², [0, 1]); where it flips, the new class is
    drawn from softmax(f_n W_{y_n}) over the *other* classes, with f_n the sample's projected
    features and W_y ~ N(0, 1) one seeded d×C matrix per class. ``instance:0`` is clean.
    """
    rate = parse_rate(arg, f"instance:{arg}")
    x = require_images(ctx, "instance")
    clean, n, c = ctx.clean, len(ctx.clean), ctx.num_classes
    if rate == 0.0:
        return NoiseResult(clean.copy())
    q = truncated_normal(ctx.rng, rate, INSTANCE_STD, n)
    feats = projected_features(x, ctx.rng, INSTANCE_DIM)
    w = ctx.rng.standard_normal((c, INSTANCE_DIM, c))
    logits = np.empty((n, c))
    for k in range(c):
        rows = clean == k
        logits[rows] = feats[rows] @ w[k]
    rows = np.arange(n)
    logits[rows, clean] = -np.inf
    prob = np.exp(logits - logits.max(1, keepdims=True))
    prob *= (q / prob.sum(1))[:, None]
    prob[rows, clean] = 1.0 - q
    u = ctx.rng.random(n)
    noisy = np.minimum((u[:, None] > np.cumsum(prob, 1)).sum(1), c - 1).astype(np.int64)
    return NoiseResult(noisy, info={"mean_flip_prob": float(q.mean())})


RATE_EXACT = "exact round(r*n_c) per source class"
SPECS = [
    NoiseModelSpec(
        "sym_incl",
        "inclusive symmetric: r*N relabelled uniformly over all classes",
        symmetric_inclusive,
        check_arg=rate_arg,
        convention="inclusive (realized ~ r(1-1/C))",
    ),
    NoiseModelSpec(
        "asym",
        "class-dependent semantic map (CIFAR-10 Patrini map, CIFAR-100 next "
        "class in its superclass, Fashion-MNIST garments)",
        asymmetric,
        check_arg=rate_arg,
        convention=f"semantic map, {RATE_EXACT}",
        asym_maps=tuple(sorted(ASYM_MAPS)),
    ),
    NoiseModelSpec(
        "asym_block5",
        "CIFAR-100 ELR/Patrini: next class within blocks of 5 indices",
        asymmetric_block5,
        check_arg=rate_arg,
        convention=f"block-of-5 next, {RATE_EXACT}",
        asym_maps=("cifar100",),
    ),
    NoiseModelSpec(
        "pairflip",
        "pair flip i -> i+1 mod C (Co-teaching)",
        pairflip,
        check_arg=rate_arg,
        convention=f"i->i+1, {RATE_EXACT}",
    ),
    NoiseModelSpec(
        "instance",
        "instance-dependent part-dependent noise (Xia et al. 2020)",
        instance_dependent,
        check_arg=rate_arg,
        convention="per-sample rate ~ TN(r, 0.1^2)",
    ),
    NoiseModelSpec(
        "random_labels",
        "labels replaced by uniform classes with prob p (default 1)",
        random_labels,
        needs_arg=False,
        check_arg=optional_rate_arg,
        convention="Zhang et al. 2017 random labels",
    ),
    NoiseModelSpec(
        "shuffled_pixels",
        "one pixel permutation for all images, train and test (Zhang et al. 2017)",
        shuffled_pixels,
        kind="input",
        needs_arg=False,
        convention="input: fixed pixel permutation, train and test",
        version=INPUT_VERSION,
    ),
    NoiseModelSpec(
        "random_pixels",
        "an independent pixel permutation per image, train and test",
        random_pixels,
        kind="input",
        needs_arg=False,
        convention="input: per-image pixel permutation, train and test",
        version=INPUT_VERSION,
    ),
    NoiseModelSpec(
        "gaussian",
        "images (train and test) replaced by Gaussian noise with the training data's mean and std",
        gaussian_pixels,
        kind="input",
        needs_arg=False,
        convention="input: Gaussian pixels, train and test",
        version=INPUT_VERSION,
    ),
]


@hookimpl
def register_noise_models(register: Callable[[NoiseModelSpec], None]) -> None:
    for spec in SPECS:
        register(spec)
