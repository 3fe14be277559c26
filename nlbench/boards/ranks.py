"""Ranks across a board's noise settings: average ranks, Friedman's test, Nemenyi's critical
difference (Demšar, "Statistical comparisons of classifiers over multiple data sets", JMLR 2006).

Each noise setting is one block (Demšar's data set): the methods are ranked within it by mean
last-epoch accuracy (1 = best, ties share the average rank), and the ranks are averaged over the
settings. Friedman's test asks whether the average ranks differ more than chance allows;
Nemenyi's critical difference CD = q_α √(k(k+1) / 6N) is how far two average ranks must be
apart for the two methods to differ at 5 %. Both need a complete block: every method measured
in every setting, so a board uses the largest such block its rows allow.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats as st

ALPHA = 0.05
MIN_METHODS, MIN_SETTINGS, MIN_SEEDS = 3, 2, 2
MAX_SEARCHED = 12  # settings searched for the complete block: 2**12 subsets at most


@dataclass(frozen=True)
class RankTest:
    """Average ranks (best first) over ``settings``, Friedman's χ² and p, Nemenyi's CD."""

    labels: tuple[str, ...]
    mean_ranks: tuple[float, ...]
    settings: tuple[str, ...]
    left_out: tuple[str, ...]  # settings of the board not in the block
    chi2: float
    p: float
    cd: float

    @property
    def k(self) -> int:
        return len(self.labels)

    @property
    def n(self) -> int:
        return len(self.settings)


def nemenyi_q(k: int, alpha: float = ALPHA) -> float:
    """q_α of Nemenyi's test: the studentized range quantile (infinite df) over √2."""
    return float(st.studentized_range.ppf(1 - alpha, k, np.inf)) / math.sqrt(2)


def critical_difference(k: int, n: int, alpha: float = ALPHA) -> float:
    """Nemenyi's critical difference for ``k`` methods over ``n`` blocks (Demšar, §3.2.2)."""
    return nemenyi_q(k, alpha) * math.sqrt(k * (k + 1) / (6 * n))


def complete_block(means: pd.DataFrame) -> tuple[list[str], list[str]]:
    """The settings (columns) and methods (rows) of the largest complete block of ``means``.

    Largest: most cells (methods × settings), then most settings (Friedman's test gains more
    from blocks than from methods), then the first in the board's order. NaN: not measured.
    Past :data:`MAX_SEARCHED` settings only the ones with most methods are searched.
    """
    measured = means.notna().to_numpy()
    kept = sorted(range(measured.shape[1]), key=lambda j: (-measured[:, j].sum(), j))
    columns = sorted(kept[:MAX_SEARCHED])
    best: tuple[tuple[int, int, int], tuple[int, ...], np.ndarray] | None = None
    for size in range(len(columns), MIN_SETTINGS - 1, -1):
        for order, chosen in enumerate(itertools.combinations(columns, size)):
            rows = measured[:, list(chosen)].all(axis=1)
            score = (int(rows.sum()) * size, size, -order)
            if rows.sum() >= MIN_METHODS and (best is None or score > best[0]):
                best = (score, chosen, rows)
    if best is None:
        return [], []
    return [means.columns[j] for j in best[1]], [m for m, ok in zip(means.index, best[2]) if ok]


def friedman(block: np.ndarray) -> tuple[float, float]:
    """Friedman's χ² and p over a methods × settings block (scipy); (0, 1) when every setting
    ties all methods, where the statistic is 0/0."""
    if all(np.ptp(block[:, j]) == 0 for j in range(block.shape[1])):
        return 0.0, 1.0
    chi2, p = st.friedmanchisquare(*block)
    return float(chi2), float(p)


def rank_test(df: pd.DataFrame, order: list[str]) -> RankTest | None:
    """The cross-setting rank test of a board's rows; None without a complete block.

    ``df`` has one row per (label, noise) with ``last_mean`` and ``n``; ``order`` is the board's
    noise order. A row counts at a setting only with at least two seeds there.
    """
    kept = df[df["n"] >= MIN_SEEDS]
    means = kept.pivot_table(index="label", columns="noise", values="last_mean", aggfunc="first")
    means = means.reindex(columns=[s for s in order if s in means.columns])
    settings, labels = complete_block(means)
    if not settings:
        return None
    block = means.loc[labels, settings].to_numpy(dtype=float)  # methods × settings
    ranks = np.column_stack([st.rankdata(-block[:, j]) for j in range(block.shape[1])])
    mean_ranks = ranks.mean(axis=1)
    chi2, p = friedman(block)
    best_first = sorted(range(len(labels)), key=lambda i: (mean_ranks[i], labels[i]))
    return RankTest(
        labels=tuple(labels[i] for i in best_first),
        mean_ranks=tuple(float(mean_ranks[i]) for i in best_first),
        settings=tuple(settings),
        left_out=tuple(s for s in order if s not in settings),
        chi2=chi2,
        p=p,
        cd=critical_difference(len(labels), len(settings)),
    )


def cliques(test: RankTest) -> list[tuple[int, int]]:
    """Maximal runs ``(first, last)`` of methods (in rank order) whose average ranks lie within
    the CD of each other: the bars a CD diagram draws (no difference shown between them)."""
    r, spans = test.mean_ranks, list[tuple[int, int]]()
    for i in range(len(r)):
        j = max(j for j in range(i, len(r)) if r[j] - r[i] < test.cd)
        if j > i and not any(a <= i and j <= b for a, b in spans):
            spans.append((i, j))
    return spans
