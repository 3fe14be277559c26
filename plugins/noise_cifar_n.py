"""``cifar_n``: the real human label noise of CIFAR-10N / CIFAR-100N (Wei et al., ICLR 2022).

The label files (CC BY-NC 4.0) are not shipped: they are read from
``<data-root>/cifar-n/CIFAR-10_human.pt`` / ``CIFAR-100_human.pt``, or fetched once from the
official repository when missing. They are pickled dicts of numpy arrays in the official CIFAR
train order; they are loaded with ``torch.load(weights_only=True)`` and only numpy's array
globals allow-listed, never with arbitrary unpickling.

Labels are picked by ``ctx.sample_ids`` (positions in the official train order), so
``--train-subset`` and held-out meta sets get the right human label for every sample. The file's
``clean_label`` must match the dataset's labels at those positions, which catches a train set in
another order.
"""

from __future__ import annotations

import logging
import pickle
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from nlbench.api import (
    Archive,
    Expected,
    NoiseContext,
    NoiseModelSpec,
    NoiseResult,
    UsageError,
    hookimpl,
    numpy_safe_globals,
    require_files,
)

log = logging.getLogger(__name__)

BASE_URL = "https://raw.githubusercontent.com/UCSC-REAL/cifar-10-100n/main/data/"
# label_order → (file name, {arg: key in the file}); CIFAR-10N rates: aggre 9.0 %,
# random1-3 about 17 %, worse 40.2 %; CIFAR-100N noisy 40.2 %
VARIANTS = {
    "cifar10": (
        "CIFAR-10_human.pt",
        {
            "aggre": "aggre_label",
            "worse": "worse_label",
            "random1": "random_label1",
            "random2": "random_label2",
            "random3": "random_label3",
        },
    ),
    "cifar100": ("CIFAR-100_human.pt", {"noisy": "noisy_label"}),
}


def label_file(root: Path, filename: str, download: bool = True) -> Path:
    """The CIFAR-N file under ``<root>/cifar-n/``, downloaded from the official repo if missing."""
    folder = Path(root) / "cifar-n"
    require_files(
        folder,
        [Expected(filename)],
        name=f"cifar_n ({filename})",
        archives=[Archive(BASE_URL + filename, filename, None, extract=False)],
        download=download,
        download_root=folder,
    )
    return folder / filename


def read_label_file(path: Path) -> dict[str, np.ndarray]:
    """Load a CIFAR-N ``.pt`` dict safely (weights_only, numpy array globals only)."""
    with torch.serialization.safe_globals(numpy_safe_globals()):
        try:
            raw = torch.load(path, weights_only=True, map_location="cpu")
        except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError) as exc:
            raise UsageError(f"{path}: not a readable CIFAR-N label file ({exc})") from None
    if not isinstance(raw, dict):
        raise UsageError(f"{path}: expected a dict of label arrays, got {type(raw).__name__}")
    return {k: np.asarray(v) for k, v in raw.items() if isinstance(v, np.ndarray)}


def _variant(ctx: NoiseContext, arg: str | None) -> tuple[str, str]:
    order = getattr(ctx.dataset_spec, "label_order", None)
    if order not in VARIANTS:
        raise UsageError(
            f"noise 'cifar_n': dataset '{ctx.dataset}' is not in the official "
            "CIFAR-10/CIFAR-100 train order. Accepted for: cifar10, cifar100."
        )
    filename, keys = VARIANTS[order]
    if arg not in keys:
        raise UsageError(
            f"noise 'cifar_n:{arg}' for {order}: accepted: "
            + ", ".join(f"cifar_n:{k}" for k in keys)
        )
    return filename, keys[arg]


def human_labels(ctx: NoiseContext, arg: str | None) -> NoiseResult:
    """The human labels of the chosen CIFAR-N variant at ``ctx.sample_ids``."""
    filename, key = _variant(ctx, arg)
    if ctx.data_root is None:
        raise UsageError("noise 'cifar_n' needs a data root (--data-root or $NLBENCH_DATA)")
    table = read_label_file(label_file(ctx.data_root, filename))
    ids = np.arange(len(ctx.clean)) if ctx.sample_ids is None else np.asarray(ctx.sample_ids)
    noisy, clean = table[key], table.get("clean_label")
    if len(ids) and ids.max() >= len(noisy):
        raise UsageError(
            f"noise 'cifar_n:{arg}': sample ids reach {ids.max()}, the file has {len(noisy)} labels"
        )
    if clean is not None and not np.array_equal(clean[ids], ctx.clean):
        raise UsageError(
            f"noise 'cifar_n:{arg}': the train labels of '{ctx.dataset}' do not "
            f"match {filename}'s clean_label; the train set is not in official order"
        )
    return NoiseResult(noisy[ids].astype(np.int64), info={"file": filename, "key": key})


@hookimpl
def register_noise_models(register: Callable[[NoiseModelSpec], None]) -> None:
    register(
        NoiseModelSpec(
            "cifar_n",
            "CIFAR-10N (aggre|worse|random1|random2|random3) / CIFAR-100N (noisy) human labels",
            human_labels,
            convention="real human labels (CIFAR-N)",
        )
    )
