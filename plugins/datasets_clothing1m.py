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

import math
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from nlbench import hookimpl
from nlbench.data import Batch, DatasetData, EpochPlan, ImageSet, LoadRequest
from nlbench.download import Expected, require_files
from nlbench.specs import DatasetSpec

MEAN, STD = (0.6959, 0.6537, 0.6371), (0.3113, 0.3192, 0.3214)
RESIZE, CROP = 256, 224
# Fit metrics (noisy_fit, clean_fit, train_acc_*) are measured on this many train images, a
# seeded subset fixed for the run, unless the method scans the whole set anyway: a full scan of
# 1M JPEGs costs ~10 GPU-minutes, several times a 1,000-batch epoch (nlbench.fitscan).
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
        return KeyedImageSet(self.x[idx], self.y[idx], self.ids[idx])


def _lines(path: Path) -> list[str]:
    """The file's lines as UTF-8 text (a one-line data error otherwise)."""
    from nlbench.errors import DataMissingError

    try:
        return path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise DataMissingError(
            f"{path}: not UTF-8 text (byte {exc.start}). Accepted: the "
            "official Clothing1M annotation files"
        ) from None


def read_kv(path: Path) -> dict[str, int]:
    """``key label`` lines → {key: label}; a label outside 0..13 is a data error."""
    from nlbench.errors import DataMissingError

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
    from nlbench.errors import DataMissingError

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


class _Images(Dataset):
    """Decodes ``paths[i]``; items are (index, top, left, flip) with fractional offsets, or a
    plain index for centre-cropped evaluation."""

    def __init__(self, paths: list[str], resize: int = RESIZE, crop: int = CROP) -> None:
        self.paths, self.resize, self.crop = paths, resize, crop

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, item: Any) -> tuple[torch.Tensor, int]:
        import torchvision.transforms.functional as TF
        from PIL import Image

        index, params = (item, None) if isinstance(item, int) else (item[0], item[1:])
        with Image.open(self.paths[index]) as raw:
            img = TF.resize(raw.convert("RGB"), self.resize)
        if params is None:
            img = TF.center_crop(img, [self.crop, self.crop])
        else:
            u_top, u_left, flip = params
            top = int(u_top * (img.height - self.crop + 1))
            left = int(u_left * (img.width - self.crop + 1))
            img = TF.crop(img, top, left, self.crop, self.crop)
            img = TF.hflip(img) if flip else img
        return TF.pil_to_tensor(img), index


class _Normalise:
    def __init__(self, device: torch.device, channels_last: bool) -> None:
        self.mean = torch.tensor(MEAN, device=device).view(1, 3, 1, 1)
        self.std = torch.tensor(STD, device=device).view(1, 3, 1, 1)
        self.device, self.channels_last = device, channels_last

    def __call__(self, raw: torch.Tensor) -> torch.Tensor:
        x = (raw.to(self.device, non_blocking=True).float().div_(255.0) - self.mean) / self.std
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x


def _loader(images: _Images, items: list, bs: int, workers: int, device: torch.device):
    return DataLoader(
        images,
        batch_size=bs,
        sampler=items,
        num_workers=workers,
        pin_memory=device.type == "cuda",
        persistent_workers=False,
    )


class Clothing1MEvalSet:
    """Centre-cropped, in-order batches of a clean split (``val`` or ``test``)."""

    def __init__(
        self, paths: list[str], labels: torch.Tensor, device: torch.device, workers: int
    ) -> None:
        self.images, self.device, self.workers = _Images(paths), device, workers
        self.labels = labels.to(device)
        self.norm = _Normalise(device, False)

    def __len__(self) -> int:
        return len(self.images)

    def batches(self, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        loader = _loader(self.images, list(range(len(self))), batch_size, self.workers, self.device)
        for raw, index in loader:
            yield self.norm(raw), self.labels[index.to(self.device, non_blocking=True)]


class Clothing1MTrainSet:
    """The noisy Clothing1M train set with :class:`nlbench.data.TrainSet`'s interface."""

    def __init__(
        self,
        paths: list[str],
        noisy: torch.Tensor,
        device: torch.device,
        batch_size: int,
        gen: torch.Generator,
        hparams: dict[str, Any],
        fit_subset: int | None = None,
    ) -> None:
        self.images = _Images(paths)
        self.fit_subset = fit_subset  # read by the runner (nlbench.fitscan)
        self.labels = noisy.to(device)
        self.device, self.batch_size, self.gen = device, batch_size, gen
        self.num_classes = len(CLASSES)
        self.workers = int(hparams.get("num_workers", default_workers()))
        self.batches_per_epoch = hparams.get("batches_per_epoch")
        cl = bool(hparams.get("channels_last")) and device.type == "cuda"
        self.norm = _Normalise(device, cl)

    def __len__(self) -> int:
        return len(self.images)

    # -- randomness, always from the run's generator ---------------------------------------
    def permutation(self, n: int) -> torch.Tensor:
        return torch.randperm(n, generator=self.gen, device=self.gen.device).cpu()

    def _params(self, n: int) -> list[tuple[float, float, bool]]:
        u = torch.rand((n, 3), generator=self.gen, device=self.gen.device).cpu()
        return [(float(a), float(b), bool(c < 0.5)) for a, b, c in u.tolist()]

    def _order(self, base: torch.Tensor, bs: int) -> torch.Tensor:
        """Shuffled ``base``, or ``batches_per_epoch`` × bs samples balanced over noisy labels."""
        if not self.batches_per_epoch:
            return base[self.permutation(len(base))]
        total = int(self.batches_per_epoch) * bs
        labels = self.labels.cpu()[base]
        classes = torch.unique(labels)
        picks = []
        for k, c in enumerate(classes.tolist()):
            members = base[labels == c]
            quota = total // len(classes) + (k < total % len(classes))
            if quota == 0:
                continue
            reps = math.ceil(quota / len(members))
            picks.append(
                torch.cat([members[self.permutation(len(members))] for _ in range(reps)])[:quota]
            )
        order = torch.cat(picks)
        return order[self.permutation(len(order))]

    # -- the TrainSet interface ---------------------------------------------------------------
    def num_batches(self, plan: EpochPlan | None = None, batch_size: int | None = None) -> int:
        if self.batches_per_epoch:
            return int(self.batches_per_epoch)
        n = len(self) if plan is None or plan.indices is None else int(plan.indices.numel())
        return math.ceil(n / (batch_size or self.batch_size)) if n else 0

    def batches(
        self, plan: EpochPlan | None = None, batch_size: int | None = None
    ) -> Iterator[Batch]:
        """Augmented batches for one epoch, decoded by DataLoader workers."""
        bs = batch_size or self.batch_size
        plan = plan or EpochPlan()
        base = plan.indices.cpu() if plan.indices is not None else torch.arange(len(self))
        weights = None
        if plan.weights is not None:
            weights = torch.zeros(len(self), device=self.device)
            weights[base.to(self.device)] = plan.weights.to(self.device).float()
        order = self._order(base, bs)
        items = [(i, *p) for i, p in zip(order.tolist(), self._params(len(order)), strict=True)]
        for raw, index in _loader(self.images, items, bs, self.workers, self.device):
            index = index.to(self.device, non_blocking=True)
            w = None if weights is None else weights[index]
            yield Batch(self.norm(raw), self.labels[index], index, w)

    def _decode(self, index: torch.Tensor, augment: bool) -> torch.Tensor:
        ids = index.cpu().tolist()
        items = (
            [(i, *p) for i, p in zip(ids, self._params(len(ids)), strict=True)] if augment else ids
        )
        with ThreadPoolExecutor(max_workers=max(1, min(8, len(ids)))) as pool:
            raw = [x for x, _ in pool.map(self.images.__getitem__, items)]
        return self.norm(torch.stack(raw)) if raw else self.norm(torch.empty(0, 3, CROP, CROP))

    def view(self, index: torch.Tensor) -> torch.Tensor:
        """A fresh augmented view of ``index`` (decoded in the calling process)."""
        return self._decode(index, augment=True)

    def plain(self, index: torch.Tensor) -> torch.Tensor:
        """``index`` centre-cropped, without augmentation (scans)."""
        return self._decode(index, augment=False)

    def scan_batches(self, batch_size: int = 512) -> Iterator[torch.Tensor]:
        for start in range(0, len(self), batch_size):
            yield torch.arange(start, min(start + batch_size, len(self)), device=self.device)

    def sampler(self, indices: torch.Tensor, batch_size: int) -> Iterator[Batch]:
        """An endless stream of shuffled batches over ``indices``."""
        while True:
            yield from Clothing1MTrainSet.batches(self, EpochPlan(indices=indices), batch_size)


def default_workers() -> int:
    return min(8, os.cpu_count() or 1)


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
        return Clothing1MTrainSet(paths, noisy, device, batch_size, gen, hparams, self.fit_subset)

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
def register_datasets(register) -> None:
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
            citation="Xiao et al., Learning from Massive Noisy Labeled Data for Image Classification "
            "(CVPR 2015)",
        )
    )
