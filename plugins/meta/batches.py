"""The meta batches of ``mwnet``, ``l2r`` and ``famus``: an endless, resumable stream.

Not a plugin (no entry point).
"""

from __future__ import annotations

from typing import Any

import torch

from nlbench.api import DeviceImages, TrainSet, UsageError


class MetaBatches:
    """An endless shuffled stream of meta batches (augmented as the training batches).

    Either the trusted ``clean:N`` images, or train indices (pseudo-clean set) with their
    noisy labels. Reshuffles after each pass; no host sync.
    """

    def __init__(
        self,
        images: DeviceImages,
        labels: torch.Tensor,
        augment: str,
        gen: torch.Generator,
        index: torch.Tensor | None = None,
    ) -> None:
        self.images, self.labels, self.augment, self.gen = images, labels, augment, gen
        self.index = index
        self.size = len(labels) if index is None else int(index.numel())
        self.order: torch.Tensor | None = None
        self.pos = 0

    def draw(self, bs: int) -> tuple[torch.Tensor, torch.Tensor]:
        if self.size == 0:
            raise UsageError("empty meta set")
        bs = min(bs, self.size)
        if self.order is None or self.pos + bs > self.size:
            self.order = torch.randperm(self.size, generator=self.gen, device=self.gen.device)
            self.order, self.pos = self.order.to(self.labels.device), 0
        pick = self.order[self.pos : self.pos + bs]
        self.pos += bs
        idx = pick if self.index is None else self.index[pick]
        return self.images.augmented(idx, self.augment, self.gen), self.labels[idx]

    def state(self) -> dict[str, Any]:
        """Where the stream is (its shuffled order and position): a resumed run draws the same
        meta batches as an uninterrupted one when the meta set cycles mid-epoch."""
        return {"order": self.order, "pos": self.pos, "size": self.size}

    def load_state(self, state: dict[str, Any]) -> None:
        if int(state["size"]) != self.size:
            raise UsageError(
                f"--resume: the checkpoint's meta set has {state['size']} samples, "
                f"this run's {self.size}; rerun without --resume"
            )
        order = state["order"]
        self.order = None if order is None else order.to(self.labels.device)
        self.pos = int(state["pos"])

    @classmethod
    def pseudo(cls, train: TrainSet, index: torch.Tensor) -> MetaBatches:
        return cls(train.images, train.labels, train.augment, train.gen, index)
