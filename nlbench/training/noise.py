"""Applying a noise model and describing what it did (the record's ``noise`` block)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

# rate_arg, optional_rate_arg: re-exported (plugins import them from here); they live in
# nlbench.core.config so that the CLI can check a noise rate before torch loads
from nlbench.core.config import NoiseSpec
from nlbench.core.config import optional_rate_arg as optional_rate_arg
from nlbench.core.config import rate_arg as rate_arg
from nlbench.core.errors import UsageError
from nlbench.core.registry import Registry
from nlbench.core.seeding import numpy_rng


@dataclass
class NoiseContext:
    """What a noise model may look at. ``clean`` is never modified in place."""

    clean: np.ndarray
    num_classes: int
    rng: np.random.Generator
    dataset: str
    dataset_spec: Any
    train_x: torch.Tensor | None = None
    data_root: Path | None = None
    sample_ids: np.ndarray | None = None
    full_size: int | None = None  # the official train set's size (sample_ids index into it)


@dataclass
class NoiseResult:
    """Noisy labels, and for input corruptions the replaced training images.

    ``held_out`` (input corruptions that change the data set, not only the training set):
    uint8 images of a held-out split → (the same split corrupted as the training images were,
    how many were corrupted). The runner applies it to the test set, the clean val split and a
    clean meta set, in that order (:func:`corrupt_held_out`).
    """

    labels: np.ndarray
    train_x: torch.Tensor | None = None
    info: dict[str, Any] = field(default_factory=dict)
    held_out: Callable[[torch.Tensor], tuple[torch.Tensor, int]] | None = None


def labels_sha256(labels: np.ndarray) -> str:
    """SHA-256 of the labels as little-endian int64 (same labels → same hash on any machine)."""
    return hashlib.sha256(np.asarray(labels, dtype="<i8").tobytes()).hexdigest()


def transition_counts(clean: np.ndarray, noisy: np.ndarray, num_classes: int) -> np.ndarray:
    """C×C counts, row = clean class, column = noisy class."""
    flat = np.asarray(clean, dtype=np.int64) * num_classes + np.asarray(noisy, dtype=np.int64)
    return np.bincount(flat, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def noise_rng(dataset: str, spec: NoiseSpec, noise_seed: int, n: int) -> np.random.Generator:
    """The noise draw's generator: a pure function of (dataset, spec, noise_seed, size)."""
    return numpy_rng("noise", dataset, str(spec), noise_seed, n)


def apply_noise(spec: NoiseSpec, ctx: NoiseContext, registry: Registry) -> NoiseResult:
    """Run the registered noise model and validate its output."""
    model = registry.get(spec.type)
    if model.needs_arg and spec.arg is None:
        raise UsageError(f"noise '{spec.type}' needs an argument, e.g. --noise {spec.type}:0.4")
    result: NoiseResult = model.apply(ctx, spec.arg)
    labels = np.asarray(result.labels, dtype=np.int64)
    if labels.shape != ctx.clean.shape or labels.min() < 0 or labels.max() >= ctx.num_classes:
        raise UsageError(f"noise '{spec}' produced labels of the wrong shape or range")
    result.labels = labels
    return result


def corrupt_held_out(result: NoiseResult, splits: dict[str, Any]) -> None:
    """Corrupt each held-out split (an ``ImageSet`` or None, in the order given) in place with
    ``result.held_out``; the counts go to ``result.info["held_out_corrupted"]``."""
    if result.held_out is None:
        return
    counts = {}
    for name, split in splits.items():
        if split is None or len(split) == 0:
            continue
        split.x, counts[name] = result.held_out(split.x)
    result.info["held_out_corrupted"] = counts


def noise_report(
    spec: NoiseSpec, clean: np.ndarray, result: NoiseResult, num_classes: int, convention: str
) -> dict[str, Any]:
    """The record's ``noise`` block: realized rate, transition counts and label hash."""
    noisy = result.labels
    return {
        "type": spec.type,
        "arg": spec.arg,
        "convention": convention,
        "num_samples": len(noisy),
        "realized_rate": float(np.mean(noisy != clean)) if len(noisy) else 0.0,
        "transition_matrix": transition_counts(clean, noisy, num_classes).tolist(),
        "labels_sha256": labels_sha256(noisy),
        **({"info": result.info} if result.info else {}),
    }
