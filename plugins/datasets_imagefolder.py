"""``imagefolder``: any ``root/{train,test}/<class>/*`` tree (``val/`` optional, clean).

Where: ``$NLBENCH_IMAGEFOLDER`` if set, else ``<data-root>/imagefolder``. Files are listed by
``torchvision.datasets.ImageFolder`` (its extensions and sorted class order; the test and val
classes are mapped by name onto the train classes) and decoded once into one uint8 tensor, so
training uses the same device-side pipeline as CIFAR.

Every image becomes RGB at S×S pixels, S = ``$NLBENCH_IMAGEFOLDER_SIZE`` (default 32, read when
the plugin registers, because models are built from ``DatasetSpec.image_size``). Images of another
size are resized to S×S (bilinear, aspect ratio not kept); images already S×S are untouched. The
number of classes comes from the tree (``DatasetSpec.num_classes`` is 0, "from the data").
"""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
import torch

from nlbench.api import (
    DataMissingError,
    DatasetData,
    DatasetSpec,
    ImageSet,
    LoadRequest,
    hookimpl,
    small_image_profiles,
)

ROOT_ENV, SIZE_ENV = "NLBENCH_IMAGEFOLDER", "NLBENCH_IMAGEFOLDER_SIZE"
DEFAULT_SIZE = 32


def tree_root(request: LoadRequest) -> Path:
    return Path(os.environ.get(ROOT_ENV) or Path(request.root) / "imagefolder").expanduser()


def decode(paths: list[str], size: int) -> torch.Tensor:
    """Decode images to uint8 N×3×S×S (resized to S×S when they are another size)."""
    from PIL import Image

    out = np.empty((len(paths), size, size, 3), dtype=np.uint8)
    for i, path in enumerate(paths):
        with Image.open(path) as img:
            img = img.convert("RGB")
            if img.size != (size, size):
                img = img.resize((size, size), Image.Resampling.BILINEAR)
            out[i] = np.asarray(img)
    return torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()


def read_split(
    folder: Path, class_to_idx: dict[str, int] | None, size: int
) -> tuple[ImageSet, list[str]]:
    """(ImageSet, class names) of one split; other splits map classes by name onto train's."""
    from torchvision.datasets import ImageFolder

    try:
        listing = ImageFolder(str(folder))
    except (FileNotFoundError, RuntimeError) as exc:
        raise DataMissingError(f"dataset 'imagefolder': {folder}: {exc}") from None
    names = listing.classes
    if class_to_idx is not None:
        unknown = sorted(set(names) - set(class_to_idx))
        if unknown:
            raise DataMissingError(
                f"dataset 'imagefolder': {folder} has classes not in train: "
                f"{', '.join(unknown[:5])}"
            )
        remap = np.array([class_to_idx[n] for n in names], dtype=np.int64)
    else:
        remap = np.arange(len(names), dtype=np.int64)
    paths = [p for p, _ in listing.samples]
    labels = remap[np.array([c for _, c in listing.samples], dtype=np.int64)]
    return ImageSet(decode(paths, size), torch.from_numpy(labels)), names


def channel_stats(x: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of uint8 images, in [0, 1] units."""
    c = x.shape[1]
    total, sq = np.zeros(c), np.zeros(c)
    for s in range(0, x.shape[0], 4096):  # chunks keep the float copy small
        part = x[s : s + 4096].numpy().astype(np.float64) / 255.0
        total += part.sum((0, 2, 3))
        sq += (part**2).sum((0, 2, 3))
    count = max(1, x.shape[0] * x.shape[2] * x.shape[3])
    mean = total / count
    std = np.sqrt(np.maximum(sq / count - mean**2, 1e-12))
    return tuple(float(v) for v in mean), tuple(float(v) for v in std)


def load_imagefolder(request: LoadRequest, size: int = DEFAULT_SIZE) -> DatasetData:
    """Load the tree's train/test (and val) splits as uint8 3×S×S tensors."""
    root = tree_root(request)
    if not (root / "train").is_dir() or not (root / "test").is_dir():
        raise DataMissingError(
            f"dataset 'imagefolder': expected {root}/train/<class>/* and {root}/test/<class>/*. "
            f"To fix: create that tree, or set ${ROOT_ENV} to a folder laid out that way."
        )
    train, classes = read_split(root / "train", None, size)
    index = {n: i for i, n in enumerate(classes)}
    test, _ = read_split(root / "test", index, size)
    val = read_split(root / "val", index, size)[0] if (root / "val").is_dir() else None
    mean, std = channel_stats(train.x)
    return DatasetData(
        train=train,
        test=test,
        val=val,
        num_classes=len(classes),
        classes=classes,
        mean=mean,
        std=std,
        augment="crop_flip",
        info={"data_dir": str(root), "image_size": size},
    )


def configured_size() -> int:
    text = os.environ.get(SIZE_ENV, "").strip()
    return int(text) if text.isascii() and text.isdigit() and int(text) > 0 else DEFAULT_SIZE


PROFILES = small_image_profiles(paper_epochs=200)


@hookimpl
def register_datasets(register: Callable[[DatasetSpec], None]) -> None:
    size = configured_size()
    register(
        DatasetSpec(
            name="imagefolder",
            description=f"any root/{{train,test}}/<class>/* tree (${ROOT_ENV}), RGB {size}x{size}",
            load=partial(load_imagefolder, size=size),
            num_classes=0,
            in_chans=3,
            image_size=size,
            profiles=PROFILES,
        )
    )
