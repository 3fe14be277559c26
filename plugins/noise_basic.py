"""The basic label-noise models: ``none`` and ``sym`` (exactly r·N flips to another class)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from nlbench.api import NoiseContext, NoiseModelSpec, NoiseResult, hookimpl, parse_rate, rate_arg


def no_noise(ctx: NoiseContext, arg: str | None) -> NoiseResult:
    """The clean labels, unchanged."""
    return NoiseResult(ctx.clean.copy())


def symmetric_exact(ctx: NoiseContext, arg: str | None) -> NoiseResult:
    """Flip exactly round(r·N) samples, each to a uniformly drawn *different* class."""
    rate = parse_rate(arg, f"sym:{arg}")
    n, c = len(ctx.clean), ctx.num_classes
    k = round(rate * n)
    noisy = ctx.clean.copy()
    idx = ctx.rng.choice(n, size=k, replace=False)
    noisy[idx] = (ctx.clean[idx] + ctx.rng.integers(1, c, size=k)) % c
    return NoiseResult(noisy)


@hookimpl
def register_noise_models(register: Callable[[NoiseModelSpec], None]) -> None:
    register(
        NoiseModelSpec(
            "none", "clean labels (no noise)", no_noise, needs_arg=False, convention="clean"
        )
    )
    register(
        NoiseModelSpec(
            "sym",
            "symmetric: exactly round(r*N) labels flipped to a different class",
            symmetric_exact,
            convention="exact flips (r = realized rate)",
            check_arg=rate_arg,
        )
    )


__all__ = ["no_noise", "np", "symmetric_exact"]
