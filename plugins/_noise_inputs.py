"""The input corruptions of the generalization studies (Zhang et al. 2017): labels untouched,
images replaced. Registered by :mod:`nlbench_plugins.noise_synthetic`."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from nlbench.api import NoiseContext, NoiseResult, UsageError, parse_rate

CHUNK = 4096  # images per chunk in pixel-level work (bounded memory on 50k×3072 sets)
Fill = Callable[[torch.Tensor], torch.Tensor]  # a chunk of images -> its replacement


# -- input corruptions (Zhang et al. 2017; labels untouched) --------------------------------
# Zhang et al. (ICLR 2017) §2.1 change the data set, not the training set alone: "shuffled
# pixels: a random permutation of the pixels is chosen and then the same permutation is applied
# to all the images in both training and test set"; random pixels: "a different random
# permutation is applied to each image independently"; Gaussian: "a Gaussian distribution (with
# matching mean and variance to the original image dataset) is used to generate random pixels
# for each image". They report only the training fit of the last two (Fig. 1a); "each image" is
# read as every image. So held-out images (test, clean val, a clean meta set) are corrupted as
# the training images are (``NoiseResult.held_out``): test accuracy measures generalisation on
# the corrupted distribution. ``MODEL:p`` corrupts a fraction p of every split. Version 2 in
# the run identity; version 1 corrupted the training images only and tested on natural ones.
INPUT_VERSION = 2


def require_images(ctx: NoiseContext, name: str) -> torch.Tensor:
    x = ctx.train_x
    if x is None or x.numel() == 0 or x.dtype != torch.uint8:
        raise UsageError(
            f"noise '{name}' needs the training images in memory; dataset "
            f"'{ctx.dataset}' streams them. Accepted for in-memory datasets."
        )
    return x


def _chosen(n: int, p: float, rng: np.random.Generator) -> np.ndarray:
    """Indices of the images to corrupt: a fraction p of n drawn without replacement."""
    if p == 1.0:
        return np.arange(n)
    return np.sort(rng.choice(n, size=round(p * n), replace=False))


def _replaced(x: torch.Tensor, idx: np.ndarray, fill: Fill) -> torch.Tensor:
    """A copy of ``x`` with the images ``idx`` replaced chunk by chunk by ``fill(chunk)``."""
    out = x.clone()
    for s in range(0, len(idx), CHUNK):
        part = torch.as_tensor(idx[s : s + CHUNK])
        out[part] = fill(out[part])
    return out


def _corrupt(ctx: NoiseContext, arg: str | None, name: str, fill: Fill) -> NoiseResult:
    """Replace a fraction p (default 1) of the training images with ``fill(chunk)``, and give
    the held-out sets the same treatment (``ctx.rng`` continues: one seeded stream)."""
    x = require_images(ctx, name)
    p = 1.0 if arg is None else parse_rate(arg, f"{name}:{arg}")
    rng = ctx.rng
    idx = _chosen(len(ctx.clean), p, rng)
    out = _replaced(x, idx, fill)

    def held_out(images: torch.Tensor) -> tuple[torch.Tensor, int]:
        chosen = _chosen(images.shape[0], p, rng)
        return _replaced(images, chosen, fill), len(chosen)

    info = {"corrupted_images": len(idx)}
    return NoiseResult(ctx.clean.copy(), train_x=out, info=info, held_out=held_out)


def shuffled_pixels(ctx: NoiseContext, arg: str | None) -> NoiseResult:
    """One random permutation of pixel positions for every image, training and held-out alike
    (Zhang et al. §2.1: "the same permutation ... in both training and test set"); channels
    move together."""
    x = require_images(ctx, "shuffled_pixels")
    perm = torch.as_tensor(ctx.rng.permutation(x.shape[2] * x.shape[3]))

    def fill(chunk: torch.Tensor) -> torch.Tensor:
        return chunk.flatten(2)[:, :, perm].reshape(chunk.shape)

    return _corrupt(ctx, arg, "shuffled_pixels", fill)


def random_pixels(ctx: NoiseContext, arg: str | None) -> NoiseResult:
    """A different random permutation of pixel positions for every image, held-out images
    included (Zhang et al. §2.1: "applied to each image independently")."""
    rng = ctx.rng

    def fill(chunk: torch.Tensor) -> torch.Tensor:
        n, c, h, w = chunk.shape
        perm = torch.as_tensor(rng.permuted(np.tile(np.arange(h * w), (n, 1)), axis=1))
        return torch.gather(chunk.flatten(2), 2, perm[:, None, :].expand(n, c, h * w)).reshape(
            chunk.shape
        )

    return _corrupt(ctx, arg, "random_pixels", fill)


def gaussian_pixels(ctx: NoiseContext, arg: str | None) -> NoiseResult:
    """Images replaced by Gaussian pixels with the training set's per-channel mean and std,
    held-out images included (Zhang et al. §2.1: "matching mean and variance to the original
    image dataset ... for each image")."""
    x = require_images(ctx, "gaussian")
    c = x.shape[1]
    total, sq = np.zeros(c), np.zeros(c)
    for s in range(0, x.shape[0], CHUNK):
        part = x[s : s + CHUNK].numpy().astype(np.float64)
        total += part.sum((0, 2, 3))
        sq += (part**2).sum((0, 2, 3))
    count = x.shape[0] * x.shape[2] * x.shape[3]
    mean = total / count
    std = np.sqrt(np.maximum(sq / count - mean**2, 0.0))
    rng = ctx.rng

    def fill(chunk: torch.Tensor) -> torch.Tensor:
        z = rng.standard_normal(tuple(chunk.shape)) * std[None, :, None, None]
        return torch.from_numpy(np.clip(np.rint(z + mean[None, :, None, None]), 0, 255)).to(
            torch.uint8
        )

    return _corrupt(ctx, arg, "gaussian", fill)
