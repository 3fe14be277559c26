"""Clothing1M's image pipeline: JPEGs decoded in DataLoader workers into uint8 pinned batches.

Training: resize 256 → random crop 224 + horizontal flip, offsets and flips drawn in the main
process from the run's generator (augmentation does not depend on the number of workers);
evaluation: centre crop 224. Batches are normalised on the device. Used by
:class:`nlbench_plugins.datasets_clothing1m.Clothing1MStream`; not a plugin.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from nlbench.api import Batch, EpochPlan

MEAN, STD = (0.6959, 0.6537, 0.6371), (0.3113, 0.3192, 0.3214)
RESIZE, CROP = 256, 224


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


def _loader(
    images: _Images, items: list, bs: int, workers: int, device: torch.device
) -> DataLoader:
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
    """The noisy Clothing1M train set with :class:`nlbench.training.data.TrainSet`'s interface."""

    def __init__(
        self,
        paths: list[str],
        noisy: torch.Tensor,
        device: torch.device,
        batch_size: int,
        gen: torch.Generator,
        hparams: dict[str, Any],
        fit_subset: int | None = None,
        *,
        num_classes: int,
    ) -> None:
        self.images = _Images(paths)
        self.fit_subset = fit_subset  # read by the runner (nlbench.training.fitscan)
        self.labels = noisy.to(device)
        self.device, self.batch_size, self.gen = device, batch_size, gen
        self.num_classes = num_classes
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
