"""``clothing1m``: Clothing1M (Xiao et al. 2015) streamed from disk in the official layout.

``<data-root>/clothing1m/`` (or ``clothing1M/``) holds the release as distributed: ``images/``,
``noisy_label_kv.txt``, ``clean_label_kv.txt``, ``noisy_train_key_list.txt``,
``clean_val_key_list.txt``, ``clean_test_key_list.txt`` (``clean_train_key_list.txt`` and
``category_names_eng.txt`` are optional). Training uses the 1M noisy-labelled keys with their
own labels, so the noise spec is ``none``; ``val`` (14k clean) is there for model selection and
``test`` (10k clean) is what the leaderboard reports.

The images never sit in memory: :class:`Clothing1MStream` decodes them in DataLoader workers
(resize 256 → random crop 224 + horizontal flip for training, centre crop 224 for evaluation)
into uint8 pinned batches, copied with ``non_blocking`` and normalised on the device. Crop
offsets and flips are drawn in the main process from the run's generator, so augmentation does
not depend on the number of workers. With ``batches_per_epoch`` set, an epoch is that many
class-balanced batches (by noisy label), as in the papers (1,000 batches of 32).

The fit diagnostics (``noisy_fit``, ``clean_fit``, ``train_acc_*``) are measured on a seeded
subset of :data:`FIT_SUBSET` train images (the train set's ``fit_subset``; the record's data
info says ``fit_subset: N``), so that a method that needs no scan does not decode all 1M
images every epoch; methods that scan (GMMs, selection) still get the whole set.

``DatasetData.train`` holds the labels with a 0-channel image tensor and the key positions
(:class:`KeyedImageSet`), so ``--train-subset`` and meta hold-outs (``take``) keep working and
the stream reads which keys remain when the runner asks for the train set.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nlbench.api import (
    DatasetData,
    DatasetSpec,
    Expected,
    ImageSet,
    LoadRequest,
    hookimpl,
    require_files,
)
from nlbench_plugins._clothing1m_stream import (
    CROP,
    MEAN,
    STD,
    Clothing1MEvalSet,
    Clothing1MTrainSet,
    default_workers,
)

# Fit metrics (noisy_fit, clean_fit, train_acc_*) are measured on this many train images, a
# seeded subset fixed for the run, unless the method scans the whole set anyway: a full scan of
# 1M JPEGs costs ~10 GPU-minutes, several times a 1,000-batch epoch (nlbench.training.fitscan).
FIT_SUBSET = 10_000
CLASSES = [
    "T-Shirt",
    "Shirt",
    "Knitwear",
    "Chiffon",
    "Sweater",
    "Hoodie",
    "Windbreaker",
    "Jacket",
    "Downcoat",
    "Suit",
    "Shawl",
    "Dress",
    "Vest",
    "Underwear",
]
REQUIRED = [
    "noisy_label_kv.txt",
    "clean_label_kv.txt",
    "noisy_train_key_list.txt",
    "clean_val_key_list.txt",
    "clean_test_key_list.txt",
]
KEY_FILES = {
    "train": "noisy_train_key_list.txt",
    "val": "clean_val_key_list.txt",
    "test": "clean_test_key_list.txt",
}
HOW_TO_GET = (
    "Clothing1M has no public download: request it from the authors "
    "(https://github.com/Cysu/noisy_label) and unpack the release there"
)


@dataclass
class KeyedImageSet(ImageSet):
    """An ImageSet whose images live on disk: ``ids`` are positions in the split's key list."""

    ids: torch.Tensor | None = None

    def take(self, index: np.ndarray | torch.Tensor) -> KeyedImageSet:
        idx = torch.as_tensor(np.asarray(index), dtype=torch.long)
        return KeyedImageSet(self.x[idx], self.y[idx], None if self.ids is None else self.ids[idx])


def _lines(path: Path) -> list[str]:
    """The file's lines as UTF-8 text (a one-line data error otherwise)."""
    from nlbench.api import DataMissingError

    try:
        return path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise DataMissingError(
            f"{path}: not UTF-8 text (byte {exc.start}). Accepted: the "
            "official Clothing1M annotation files"
        ) from None


def read_kv(path: Path) -> dict[str, int]:
    """``key label`` lines → {key: label}; a label outside 0..13 is a data error."""
    from nlbench.api import DataMissingError

    out = {}
    for line_no, line in enumerate(_lines(path), start=1):
        parts = line.split()
        if len(parts) >= 2:
            label = parts[1]
            if not (
                label.isascii() and label.isdigit() and len(label) < 4 and int(label) < len(CLASSES)
            ):
                raise DataMissingError(
                    f"{path}, line {line_no}: label {label[:20]!r} is not "
                    f"an integer in 0..{len(CLASSES) - 1}"
                )
            out[parts[0]] = int(label)
    return out


def read_keys(path: Path) -> list[str]:
    return [line.strip() for line in _lines(path) if line.strip()]


def _split(folder: Path, keys_file: str, labels: dict[str, int]) -> tuple[list[str], KeyedImageSet]:
    from nlbench.api import DataMissingError

    keys = read_keys(folder / keys_file)
    missing = [k for k in keys if k not in labels]
    if missing:
        raise DataMissingError(
            f"dataset 'clothing1m': {len(missing)} keys of {keys_file} have "
            f"no label (first: {missing[0]})"
        )
    y = torch.tensor([labels[k] for k in keys], dtype=torch.long)
    return keys, KeyedImageSet(
        torch.empty((len(keys), 0, 0, 0), dtype=torch.uint8), y, torch.arange(len(keys))
    )


def dataset_folder(root: Path) -> Path:
    for name in ("clothing1m", "clothing1M", "Clothing1M"):
        if (root / name).is_dir():
            return root / name
    return root / "clothing1m"


def load_clothing1m(request: LoadRequest) -> DatasetData:
    """Read the key lists and labels; images are streamed by :class:`Clothing1MStream`."""
    folder = dataset_folder(Path(request.root))
    require_files(folder, [Expected(n) for n in REQUIRED], name="clothing1m", hint=HOW_TO_GET)
    noisy, clean = read_kv(folder / "noisy_label_kv.txt"), read_kv(folder / "clean_label_kv.txt")
    train_keys, train = _split(folder, "noisy_train_key_list.txt", noisy)
    val_keys, val = _split(folder, "clean_val_key_list.txt", clean)
    test_keys, test = _split(folder, "clean_test_key_list.txt", clean)
    data = DatasetData(
        train=train,
        test=test,
        val=val,
        num_classes=len(CLASSES),
        classes=list(CLASSES),
        mean=MEAN,
        std=STD,
        augment="crop_flip",
        info={"data_dir": str(folder)},
    )
    data.stream = Clothing1MStream(data, folder, train_keys, val_keys, test_keys)
    return data


class Clothing1MStream:
    """``DatasetData.stream`` for Clothing1M: builds the train set and the eval sets."""

    def __init__(
        self,
        data: DatasetData,
        folder: Path,
        train_keys: list[str],
        val_keys: list[str],
        test_keys: list[str],
    ) -> None:
        self.data, self.folder = data, folder
        self.keys = {"train": train_keys, "val": val_keys, "test": test_keys}
        self.workers = default_workers()
        self.fit_subset = FIT_SUBSET

    def verify(self) -> str | None:
        """None when every image the key lists name is a file, else what is missing (one line).

        ``nlbench data prepare`` calls it: a run would otherwise fail on the first missing
        image, possibly hours in.
        """
        for split, keys in self.keys.items():
            missing = [k for k in keys if not (self.folder / k).is_file()]
            if missing:
                return (
                    f"{len(missing):,} of {len(keys):,} images listed in {KEY_FILES[split]} "
                    f"are missing under {self.folder} (first: {missing[0]}); unpack the "
                    "release's images/ there"
                )
        return None

    def _paths(self, split: str, ids: torch.Tensor | None) -> list[str]:
        keys = self.keys[split]
        chosen = keys if ids is None else [keys[i] for i in ids.tolist()]
        return [str(self.folder / k) for k in chosen]

    def train_set(
        self,
        noisy: torch.Tensor,
        device: torch.device,
        batch_size: int,
        gen: torch.Generator,
        hparams: dict[str, Any],
    ) -> Clothing1MTrainSet:
        """The train set over the keys that remain after subset and meta hold-out."""
        self.workers = int(hparams.get("num_workers", self.workers))
        paths = self._paths("train", getattr(self.data.train, "ids", None))
        return Clothing1MTrainSet(
            paths,
            noisy,
            device,
            batch_size,
            gen,
            hparams,
            self.fit_subset,
            num_classes=self.data.num_classes,
        )

    def eval_sets(self, device: torch.device) -> dict[str, Clothing1MEvalSet]:
        out = {}
        for split in ("test", "val"):
            part = getattr(self.data, split)
            if part is not None:
                out[split] = Clothing1MEvalSet(
                    self._paths(split, part.ids), part.y, device, self.workers
                )
        return out


PROFILES = {
    "paper": {
        "model": "resnet50",
        "epochs": 80,
        "batch_size": 32,
        "lr": 0.002,
        "milestones": [40],
        "weight_decay": 1e-3,
        "scheduler": "multistep",
        "batches_per_epoch": 1000,
        "num_workers": 8,
        "eval_batch_size": 256,
    },
}


@hookimpl
def register_datasets(register: Callable[[DatasetSpec], None]) -> None:
    register(
        DatasetSpec(
            name="clothing1m",
            description="Clothing1M, 1M noisy web-labelled train / 14k val / 10k test, 14 classes "
            "(streamed from disk)",
            load=load_clothing1m,
            num_classes=14,
            in_chans=3,
            image_size=CROP,
            profiles=PROFILES,
            noise_default="none",
            citation=(
                "Xiao et al., Learning from Massive Noisy Labeled Data for Image "
                "Classification (CVPR 2015)"
            ),
        )
    )
