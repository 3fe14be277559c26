"""Intervals, paired differences, tests and rank groups: how far a board's numbers settle it.

Every interval is a two-sided 95 % Student-t interval over seeds, ``mean ± t(0.975, n-1)·s/√n``
(``s`` the sample std): seeds are few, so the t quantile, not 1.96. One value has no interval.
A difference between two rows pairs runs on the same seed *and* the same noisy labels (same
labels sha256) and takes the interval of the per-pair differences; without pairs, Welch's
interval for a difference of two means. Rank groups test each row against its group's leader
the same way (paired t-test, else Welch's), Holm-corrected.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as st

LEVEL = 0.95
SAME = 1e-9  # values closer than this are equal (accuracy differences carry float round-off)


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


def below_p(a: dict[tuple, float], b: dict[tuple, float]) -> float:
    """Two-sided p-value for mean(a) = mean(b): a paired t-test over the runs that pair (same
    seed and noisy labels) when at least two do, else Welch's t-test; 1.0 when untestable."""
    d = pairs(a, b)
    if len(d) >= 2:
        return _t_p(np.asarray(d), None)
    x, y = np.asarray(list(a.values())), np.asarray(list(b.values()))
    if x.size < 2 or y.size < 2:
        return 1.0
    return _t_p(x, y)


def _t_p(x: np.ndarray, y: np.ndarray | None) -> float:
    """scipy's t-test, with the zero-variance case (all differences equal, up to round-off)
    decided exactly: scipy has no answer there."""
    spread = np.ptp(x) if y is None else max(np.ptp(x), np.ptp(y))
    if spread <= SAME:
        gap = float(x.mean()) if y is None else float(x.mean() - y.mean())
        return 1.0 if abs(gap) <= SAME else 0.0
    result = st.ttest_1samp(x, 0.0) if y is None else st.ttest_ind(x, y, equal_var=False)
    return float(result.pvalue)


def holm(pvalues: Sequence[float], alpha: float = 1 - LEVEL) -> list[bool]:
    """Holm's step-down rejections at family-wise level ``alpha`` (Holm, 1979): the k-th
    smallest of m p-values is rejected while every smaller one was and it is ≤ α / (m − k + 1)."""
    m = len(pvalues)
    reject = [False] * m
    for k, i in enumerate(sorted(range(m), key=lambda i: (pvalues[i], i))):
        if not pvalues[i] <= alpha / (m - k):
            break
        reject[i] = True
    return reject


def rank_groups(samples: Sequence[dict[tuple, float]]) -> list[int | None]:
    """Rank groups that never put a row above one with a higher mean.

    Rows with at least two runs are taken best mean first (ties: input order). The best row
    leads group 1, which runs down the sorted list up to (not including) the first row that is
    significantly below the leader (:func:`below_p`, Holm-corrected over every row after the
    leader, 5 %); that row leads the next group, tested the same way against the rows after
    it. A group's rank is 1 + the number of rows ranked above it (1, 1, 3). Rows with one run
    get ``None``: one seed cannot be placed against another.
    """
    means = [float(np.mean(list(s.values()))) if s else math.nan for s in samples]
    ranked = sorted((i for i, s in enumerate(samples) if len(s) >= 2), key=lambda i: (-means[i], i))
    ranks: list[int | None] = [None] * len(samples)
    start = 0
    while start < len(ranked):
        lead, rest = ranked[start], ranked[start + 1 :]
        below = holm([below_p(samples[j], samples[lead]) for j in rest])
        size = 1 + next((k for k, b in enumerate(below) if b), len(rest))
        for i in ranked[start : start + size]:
            ranks[i] = start + 1
        start += size
    return ranks
