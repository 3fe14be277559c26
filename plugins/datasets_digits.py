"""``digits``: scikit-learn's bundled handwritten digits (1,797 8×8 images, no download).

The embedded default: real data that trains in seconds on a laptop CPU. A fixed stratified
split keeps 500 test images.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from nlbench.api import DatasetData, DatasetSpec, ImageSet, LoadRequest, hookimpl

TEST_SIZE = 500


def load_digits_data(request: LoadRequest | None = None) -> DatasetData:
    """Load digits as uint8 1×8×8 images with a fixed stratified train/test split."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    images = np.round(bunch.images * (255.0 / 16.0)).astype(np.uint8)[:, None]
    labels = bunch.target.astype(np.int64)
    train_idx, test_idx = train_test_split(
        np.arange(len(labels)), test_size=TEST_SIZE, stratify=labels, random_state=0
    )
    train_idx, test_idx = np.sort(train_idx), np.sort(test_idx)
    x = torch.from_numpy(images)
    y = torch.from_numpy(labels)
    mean = float(images[train_idx].mean() / 255.0)
    std = float(images[train_idx].std() / 255.0)
    return DatasetData(
        train=ImageSet(x[train_idx], y[train_idx]),
        test=ImageSet(x[test_idx], y[test_idx]),
        num_classes=10,
        classes=[str(i) for i in range(10)],
        mean=(mean,),
        std=(std,),
        augment="none",
    )


PROFILES = {
    "quick": {
        "model": "tiny_cnn",
        "epochs": 30,
        "batch_size": 64,
        "lr": 0.05,
        "weight_decay": 5e-4,
        "milestones": [0.5, 0.75],
        "scheduler": "multistep",
    },
}


@hookimpl
def register_datasets(register: Callable[[DatasetSpec], None]) -> None:
    register(
        DatasetSpec(
            name="digits",
            description="scikit-learn handwritten digits, 1,297 train / 500 test 8x8 (embedded)",
            load=load_digits_data,
            num_classes=10,
            in_chans=1,
            image_size=8,
            profiles=PROFILES,
            citation="Alpaydin & Kaynak, UCI Optical Recognition of Handwritten Digits (1998)",
        )
    )
