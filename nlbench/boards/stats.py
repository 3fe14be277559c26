"""Intervals, paired differences and rank groups: how far the numbers on a board settle a question.

Every interval is a two-sided 95 % Student-t interval over seeds, ``mean ± t(0.975, n-1)·s/√n``
(``s`` the sample std): seeds are few, so the t quantile, not 1.96. One value has no interval.
A difference between two rows pairs runs on the same seed *and* the same noisy labels (same
labels sha256) and takes the interval of the per-pair differences; without pairs, Welch's
interval for a difference of two means.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as st

LEVEL = 0.95


@dataclass(frozen=True)
class Estimate:
    """A mean with its 95 % interval half-width (``nan`` when n < 2) over ``n`` values."""

    mean: float
    half: float
    n: int

    @property
    def low(self) -> float:
        return self.mean - self.half

    @property
    def high(self) -> float:
        return self.mean + self.half

    @property
    def has_interval(self) -> bool:
        return self.n >= 2 and math.isfinite(self.half)


NONE = Estimate(math.nan, math.nan, 0)


def t_interval(values: Sequence[float]) -> Estimate:
    """Mean and t-interval half-width of ``values`` (NaNs dropped)."""
    x = np.asarray([v for v in values if not math.isnan(v)], dtype=float)
    if x.size == 0:
        return NONE
    if x.size == 1:
        return Estimate(float(x[0]), math.nan, 1)
    sem = float(np.std(x, ddof=1)) / math.sqrt(x.size)
    return Estimate(float(x.mean()), float(st.t.ppf(0.5 + LEVEL / 2, x.size - 1)) * sem, x.size)


def welch(a: Sequence[float], b: Sequence[float]) -> Estimate:
    """mean(a) − mean(b) with Welch's interval; ``n`` is the smaller sample size."""
    ea, eb = t_interval(a), t_interval(b)
    if not (ea.has_interval and eb.has_interval):
        n = min(ea.n, eb.n)
        return Estimate(ea.mean - eb.mean, math.nan, n) if n else NONE
    va, vb = np.var(a, ddof=1) / ea.n, np.var(b, ddof=1) / eb.n
    se = math.sqrt(va + vb)
    if se == 0.0:
        return Estimate(ea.mean - eb.mean, 0.0, min(ea.n, eb.n))
    df = (va + vb) ** 2 / (va**2 / (ea.n - 1) + vb**2 / (eb.n - 1))
    half = float(st.t.ppf(0.5 + LEVEL / 2, df)) * se
    return Estimate(ea.mean - eb.mean, half, min(ea.n, eb.n))


def pairs(a: dict[tuple, float], b: dict[tuple, float]) -> list[float]:
    """Per-pair differences a − b over the keys (seed, labels sha256) both have, key order."""
    return [a[k] - b[k] for k in sorted(set(a) & set(b))]


def difference(a: dict[tuple, float], b: dict[tuple, float]) -> tuple[Estimate, str]:
    """a − b: paired when pairs exist, else Welch; also says which (``paired``/``unpaired``)."""
    d = pairs(a, b)
    if d:
        return t_interval(d), "paired"
    return welch(list(a.values()), list(b.values())), "unpaired"


def rank_groups(estimates: Sequence[Estimate]) -> list[int | None]:
    """Competition ranks where a row shares the rank of the group leader its interval overlaps.

    Rows with an interval are taken best mean first; the best unranked row leads a new group
    and every unranked row whose interval overlaps the leader's joins it; the group's rank is
    1 + the number of rows ranked before it. Rows without an interval (n < 2) get ``None``:
    one seed cannot be placed against another. Overlap of two 95 % intervals is a conservative
    test; the paired difference column is the sharper one.
    """
    order = sorted(
        (i for i, e in enumerate(estimates) if e.has_interval),
        key=lambda i: (-estimates[i].mean, i),
    )
    ranks: list[int | None] = [None] * len(estimates)
    placed = 0
    for lead in order:
        if ranks[lead] is not None:
            continue
        group = [i for i in order if ranks[i] is None and overlaps(estimates[i], estimates[lead])]
        for i in group:
            ranks[i] = placed + 1
        placed += len(group)
    return ranks


def overlaps(a: Estimate, b: Estimate) -> bool:
    return a.low <= b.high and b.low <= a.high
