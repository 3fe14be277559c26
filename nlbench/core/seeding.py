"""The one place that seeds random number generators.

Every random draw in nlbench takes an explicit generator derived here from named parts, so the
noise draw, the data order and the model init have independent seeds (DomainBed style).
"""

from __future__ import annotations

import hashlib
import random

import numpy as np
import torch


def derive_seed(*parts: object) -> int:
    """A 63-bit seed from any printable parts (stable across machines and Python versions)."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def numpy_rng(*parts: object) -> np.random.Generator:
    """A numpy Generator seeded from ``parts`` (noise, subsets, splits)."""
    return np.random.default_rng(derive_seed(*parts))


def torch_generator(seed: int, device: torch.device | str = "cpu") -> torch.Generator:
    """A torch Generator on ``device`` seeded with ``seed`` (batch order, augmentation)."""
    gen = torch.Generator(device=device)
    gen.manual_seed(seed)
    return gen


def seed_model_init(seed: int) -> None:
    """Seed torch's global RNG, used only by module constructors (weight init) and dropout."""
    torch.manual_seed(seed)
    random.seed(seed)


def set_deterministic(enabled: bool) -> None:
    """Ask torch for deterministic kernels (CPU resume tests, exact reproduction)."""
    torch.use_deterministic_algorithms(enabled, warn_only=True)
    if torch.backends.cudnn.is_available():
        torch.backends.cudnn.benchmark = not enabled
        torch.backends.cudnn.deterministic = enabled
