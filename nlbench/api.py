"""The Python API for notebooks: build pieces by name, or run a whole configuration."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from nlbench.config import RunConfig, parse_noise
from nlbench.data import DatasetData, LoadRequest
from nlbench.noise import NoiseContext, NoiseResult, apply_noise, noise_rng
from nlbench.plugins import get_host
from nlbench.prepare import default_data_root


def run(**kwargs: Any) -> dict[str, Any]:
    """Train one configuration and return its record, e.g.
    ``nlbench.run(method="erm", dataset="digits", noise="0.6", epochs=5)``.

    Keyword arguments are :class:`nlbench.config.RunConfig` fields; ``set={"lr": 0.05}``
    overrides hyper-parameters like ``--set``.
    """
    from nlbench.runner import run as _run

    return _run(**kwargs)


def build_dataset(name: str, data_root: str | Path | None = None) -> DatasetData:
    """Load a registered dataset (train/test uint8 tensors, labels, classes, mean/std)."""
    spec = get_host().get("datasets", name)
    return spec.load(LoadRequest(root=Path(data_root) if data_root else default_data_root()))


def build_model(
    name: str, num_classes: int = 10, in_chans: int = 3, image_size: int = 32, **kwargs: Any
) -> torch.nn.Module:
    """Instantiate a registered model (``timm:<arch>`` works too)."""
    from nlbench.models import build_model as _build

    return _build(get_host().registry("models"), name, num_classes, in_chans, image_size, **kwargs)


def make_noisy_labels(
    dataset: str, noise: str, noise_seed: int = 0, data_root: str | Path | None = None
) -> tuple[np.ndarray, NoiseResult]:
    """(clean train labels, NoiseResult) for a dataset and noise spec, as a run would draw them."""
    host = get_host()
    spec = parse_noise(noise)
    data = build_dataset(dataset, data_root)
    clean = data.train.y.numpy().astype(np.int64)
    dspec = host.get("datasets", dataset)
    ctx = NoiseContext(
        clean=clean.copy(),
        num_classes=data.num_classes,
        rng=noise_rng(dataset, spec, noise_seed, len(clean)),
        dataset=dataset,
        dataset_spec=dspec,
        train_x=data.train.x,
        data_root=Path(data_root) if data_root else default_data_root(),
        sample_ids=np.arange(len(clean)),
        full_size=len(clean),
    )
    return clean, apply_noise(spec, ctx, host.registry("noise"))


__all__ = ["RunConfig", "build_dataset", "build_model", "make_noisy_labels", "run"]
