"""Everything a run needs before training: specs, hparams, data, subset, meta set, noise.

Order matters and is fixed: class-balanced train subset → clean meta hold-out → noise on the
rest. Subset and meta split are seeded by the noise seed so every method sees the same data.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nlbench.core.config import NoiseSpec, RunConfig
from nlbench.core.download import loading
from nlbench.core.errors import UsageError
from nlbench.core.seeding import numpy_rng
from nlbench.core.specs import DatasetSpec, MethodSpec

# re-exported: the identity of a run is resolved before torch loads (nlbench.engine.preflight)
from nlbench.engine.preflight import Identity as Identity
from nlbench.engine.preflight import default_data_root, run_identity
from nlbench.host.plugins import Host
from nlbench.training.data import DatasetData, ImageSet, LoadRequest, class_balanced_subset
from nlbench.training.noise import (
    NoiseContext,
    apply_noise,
    corrupt_held_out,
    noise_report,
    noise_rng,
)


@dataclass
class Prepared:
    """A run's resolved inputs. ``clean`` is for diagnostics only, never for methods."""

    cfg: RunConfig
    hparams: dict[str, Any]
    method_spec: MethodSpec
    dataset_spec: DatasetSpec
    noise_spec: NoiseSpec
    data: DatasetData
    clean: np.ndarray
    noisy: np.ndarray
    noise: dict[str, Any]
    meta: ImageSet | None
    data_info: dict[str, Any]
    identity: dict[str, Any]
    run_id: str
    key: dict[str, Any]


def resolve_device(name: str) -> torch.device:
    """``auto`` → CUDA when available, else CPU; ``cuda`` without a GPU is a usage error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError("--device cuda: no CUDA GPU is visible here. Accepted: auto, cpu.")
    if name not in {"cpu"} and not name.startswith("cuda"):
        raise UsageError(f"--device '{name}': accepted: auto, cpu, cuda, cuda:N.")
    return torch.device(name)


def load_dataset(spec: DatasetSpec, cfg: RunConfig) -> DatasetData:
    """Load the dataset; a missing file's error names the ``nlbench data prepare`` line."""
    root = Path(cfg.data_root) if cfg.data_root else default_data_root()
    with loading(root):
        data: DatasetData = spec.load(LoadRequest(root=root, download=True))
        return data


def take_subset(data: DatasetData, n: int | None, seed: int) -> tuple[DatasetData, np.ndarray]:
    """Restrict the train split to a seeded class-balanced subset of ``n`` samples."""
    total = len(data.train)
    if n is None:
        return data, np.arange(total)
    if not 0 < n <= total:
        raise UsageError(f"--train-subset {n}: must be between 1 and the train size {total}")
    idx = class_balanced_subset(data.train.y.numpy(), n, numpy_rng("subset", n, seed))
    data.train = data.train.take(idx)
    return data, idx


def split_meta(
    data: DatasetData, meta_set: str | None, seed: int
) -> tuple[ImageSet | None, dict[str, Any], np.ndarray]:
    """Hold out ``clean:N`` class-balanced trusted samples before noise (MW-Net/L2R protocol)."""
    if meta_set in (None, "none", "pseudo"):
        return None, {"kind": meta_set or "none", "size": 0}, np.arange(len(data.train))
    kind, _, arg = str(meta_set).partition(":")
    if kind != "clean" or not arg.isdigit() or int(arg) <= 0:
        raise UsageError(f"meta_set '{meta_set}': accepted: clean:N (N > 0), pseudo, none")
    n = int(arg)
    if n >= len(data.train):
        raise UsageError(f"meta_set clean:{n}: larger than the train set ({len(data.train)})")
    if data.stream is not None:  # the images stay on disk: nothing in memory to hold out
        raise UsageError(
            f"meta_set '{meta_set}': a clean meta set is held out of in-memory training images, "
            "and this dataset streams its train set from disk; accepted here: pseudo (the "
            "network's own GMM pseudo-clean set) or none"
        )
    idx = class_balanced_subset(data.train.y.numpy(), n, numpy_rng("meta", n, seed))
    keep = np.setdiff1d(np.arange(len(data.train)), idx)
    meta = data.train.take(idx)
    data.train = data.train.take(keep)
    return meta, {"kind": "clean", "size": n}, keep


def prepare(cfg: RunConfig, host: Host) -> Prepared:
    """Resolve and build everything but the method."""
    ident = run_identity(cfg, host)
    mspec, dspec, nspec, hp = ident.method_spec, ident.dataset_spec, ident.noise_spec, ident.hparams
    data = load_dataset(dspec, cfg)
    full_size = len(data.train)
    data, subset_idx = take_subset(data, cfg.train_subset, cfg.noise_seed)
    meta, meta_info, keep = split_meta(data, hp.get("meta_set"), cfg.noise_seed)
    # positions in the dataset's official train order (CIFAR-N label files are indexed by it)
    sample_ids = subset_idx[keep]
    clean = data.train.y.numpy().astype(np.int64)
    noise_model = host.get("noise", nspec.type)
    ctx = NoiseContext(
        clean=clean.copy(),
        num_classes=data.num_classes,
        rng=noise_rng(dspec.name, nspec, cfg.noise_seed, len(clean)),
        dataset=dspec.name,
        dataset_spec=dspec,
        train_x=data.train.x,
        data_root=Path(cfg.data_root) if cfg.data_root else default_data_root(),
        sample_ids=sample_ids,
        full_size=full_size,
    )
    result = apply_noise(nspec, ctx, host.registry("noise"))
    if result.train_x is not None:
        data.train.x = result.train_x
    corrupt_held_out(result, {"test": data.test, "val": data.val, "meta": meta})
    report = noise_report(nspec, clean, result, data.num_classes, noise_model.convention)
    data_info = {
        "train_size": len(data.train),
        "test_size": len(data.test),
        "num_classes": data.num_classes,
        "train_subset": cfg.train_subset,
        "meta_set": meta_info,
        **data.info,
    }
    return Prepared(
        cfg,
        hp,
        mspec,
        dspec,
        nspec,
        data,
        clean,
        result.labels,
        report,
        meta,
        data_info,
        ident.identity,
        ident.run_id,
        ident.key,
    )
