"""``fashionmnist``: Zalando's Fashion-MNIST from the official IDX files (gzipped or not).

Layout and downloads are torchvision's (``<data-root>/FashionMNIST/raw/``, the mirror URLs and
MD5s of ``torchvision.datasets.FashionMNIST``). The IDX files are parsed here so that the
official ``.gz`` files work as downloaded, without torchvision's extraction step.

Augmentation is ``crop`` (random 28×28 crop of the 4-padded image, no flip): the footwear
classes all face one way, so a horizontal flip would create images that never occur.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torchvision.datasets import FashionMNIST

from nlbench.api import (
    Archive,
    DataMissingError,
    DatasetData,
    DatasetSpec,
    Expected,
    ImageSet,
    LoadRequest,
    hookimpl,
    require_files,
    small_image_profiles,
)

MEAN, STD = (0.2860,), (0.3530,)
IDX_IMAGES, IDX_LABELS = 2051, 2049


def read_idx(path: Path) -> np.ndarray:
    """Parse an IDX file of unsigned bytes (images: magic 2051, labels: magic 2049)."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (EOFError, OSError, zlib.error) as exc:  # a cut-off or corrupt .gz
        raise DataMissingError(
            f"{path}: unreadable ({exc}); delete it to download it again "
            "or replace it with the official file"
        ) from None
    magic = int.from_bytes(raw[0:4], "big")
    if magic not in (IDX_IMAGES, IDX_LABELS):
        raise DataMissingError(f"{path}: not an IDX ubyte file (magic {magic})")
    ndim = magic & 0xFF
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise DataMissingError(f"{path}: truncated IDX file ({data.size} of {np.prod(dims)} bytes)")
    return data.reshape(dims)


def _expected() -> list[Expected]:
    return [Expected(name, md5, aliases=(name[:-3],)) for name, md5 in FashionMNIST.resources]


def load_fashionmnist(request: LoadRequest) -> DatasetData:
    """Load Fashion-MNIST (60,000 train / 10,000 test) as uint8 1×28×28."""
    folder = Path(request.root) / "FashionMNIST" / "raw"
    archives = [
        # read as downloaded: the loader parses the .gz files (nothing to extract)
        Archive(f"{FashionMNIST.mirrors[0]}{name}", name, md5, extract=False)
        for name, md5 in FashionMNIST.resources
    ]
    require_files(
        folder,
        _expected(),
        name="fashionmnist",
        archives=archives,
        download=request.download,
        download_root=folder,
    )
    files = [e.find(folder) for e in _expected()]
    arrays = [read_idx(path) for path in files]  # type: ignore[arg-type]
    train_x, train_y, test_x, test_y = arrays
    return DatasetData(
        train=ImageSet(
            torch.from_numpy(train_x.copy()).unsqueeze(1),
            torch.from_numpy(train_y.astype(np.int64)),
        ),
        test=ImageSet(
            torch.from_numpy(test_x.copy()).unsqueeze(1), torch.from_numpy(test_y.astype(np.int64))
        ),
        num_classes=10,
        classes=list(FashionMNIST.classes),
        mean=MEAN,
        std=STD,
        augment="crop",
        info={"data_dir": str(folder)},
    )


PROFILES = small_image_profiles(paper_epochs=100)


@hookimpl
def register_datasets(register: Callable[[DatasetSpec], None]) -> None:
    register(
        DatasetSpec(
            name="fashionmnist",
            description="Fashion-MNIST, 60,000 train / 10,000 test 28x28 grey images, 10 classes",
            load=load_fashionmnist,
            num_classes=10,
            in_chans=1,
            image_size=28,
            asym_map="fashionmnist",
            profiles=PROFILES,
            citation="Xiao, Rasul & Vollgraf, Fashion-MNIST (arXiv:1708.07747, 2017)",
        )
    )
