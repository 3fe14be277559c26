"""Interval, paired-difference, test and rank-group arithmetic on hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from nlbench.boards.stats import below_p, difference, holm, rank_groups, t_interval, welch


def test_t_interval_by_hand():
    # values 1, 2, 3: mean 2, s = 1, se = 1/sqrt(3), t(0.975, 2) = 4.302653
    e = t_interval([1.0, 2.0, 3.0])
    assert e.mean == 2.0 and e.n == 3
    assert e.half == pytest.approx(4.302653 / math.sqrt(3), rel=1e-6)
    assert (e.low, e.high) == pytest.approx((2 - 2.484138, 2 + 2.484138), rel=1e-6)


def test_t_interval_one_value_and_none():
    one = t_interval([0.7])
    assert one.n == 1 and one.mean == 0.7 and not one.has_interval
    assert t_interval([]).n == 0 and t_interval([float("nan")]).n == 0


def test_paired_difference_uses_matching_seeds_and_labels_only():
    a = {(0, "x"): 0.90, (1, "x"): 0.80, (2, "x"): 0.85, (3, "other"): 0.10}
    b = {(0, "x"): 0.80, (1, "x"): 0.75, (2, "x"): 0.70}
    d, kind = difference(a, b)
    # pairs: +0.10, +0.05, +0.15 → mean 0.10, s = 0.05, t(0.975, 2) = 4.302653
    assert kind == "paired" and d.n == 3
    assert d.mean == pytest.approx(0.10) and d.half == pytest.approx(4.302653 * 0.05 / math.sqrt(3))


def test_welch_by_hand():
    # a: 1, 2, 3 (var 1), b: 2, 4, 6, 8 (var 6.6667): se² = 1/3 + 6.6667/4 = 2
    # df = 2² / ((1/3)²/2 + (1.6667)²/3) = 4 / (0.05556 + 0.92593) = 4.0755
    d = welch([1.0, 2.0, 3.0], [2.0, 4.0, 6.0, 8.0])
    assert d.mean == pytest.approx(-3.0) and d.n == 3
    assert d.half == pytest.approx(stats.t.ppf(0.975, 4.0755) * math.sqrt(2), rel=1e-3)
    assert difference({(0, "x"): 1.0}, {(1, "y"): 0.5})[1] == "unpaired"


def keyed(values: list[float], labels: str = "x") -> dict[tuple, float]:
    return {(seed, labels): v for seed, v in enumerate(values)}


def test_below_p_is_scipys_paired_test_with_pairs_and_welch_without():
    a, b = keyed([0.90, 0.80, 0.86]), keyed([0.80, 0.75, 0.70])
    assert below_p(a, b) == pytest.approx(
        stats.ttest_rel([0.90, 0.80, 0.86], [0.80, 0.75, 0.70]).pvalue
    )
    c = keyed([0.70, 0.72, 0.65], labels="other")  # other labels: nothing pairs
    welch_p = stats.ttest_ind([0.90, 0.80, 0.86], [0.70, 0.72, 0.65], equal_var=False).pvalue
    assert below_p(a, c) == pytest.approx(welch_p)
    # every pair differs by the same amount: no spread, decided exactly (scipy gives NaN)
    assert below_p(keyed([0.5, 0.6, 0.7]), keyed([0.4, 0.5, 0.6])) == 0.0
    assert below_p(keyed([0.5, 0.6]), keyed([0.5, 0.6])) == 1.0
    assert below_p(keyed([0.5]), keyed([0.4, 0.3])) == 1.0  # one run: untestable


def holm_by_adjusted_p(p: list[float], alpha: float = 0.05) -> list[bool]:
    """Holm via adjusted p-values: p_(k) adjusted = max over j <= k of (m - j + 1) p_(j)."""
    m, order = len(p), sorted(range(len(p)), key=lambda i: (p[i], i))
    adjusted, running = [0.0] * m, 0.0
    for k, i in enumerate(order):
        running = max(running, min(1.0, (m - k) * p[i]))
        adjusted[i] = running
    return [a <= alpha for a in adjusted]


def test_holm_matches_the_adjusted_p_value_definition():
    rng = np.random.default_rng(0)
    for _ in range(200):
        p = list(rng.uniform(0, 0.08, size=int(rng.integers(1, 7))))
        assert holm(p) == holm_by_adjusted_p(p), p
    # by hand: m = 3, thresholds 0.05/3, 0.05/2, 0.05
    assert holm([0.01, 0.04, 0.03]) == [True, False, False]
    assert holm([0.01, 0.02, 0.04]) == [True, True, True]


def test_rank_groups_never_rank_a_row_above_one_with_a_higher_mean():
    """The issue's case (cifar10-cpu, cifar_n:worse): a tight row (density_weighted, 55.16)
    below the best, a wide one (fl_weighted, 53.88) whose interval touches the best's. Interval
    overlap ranked fl_weighted 1 and density_weighted 3; groups down the sorted list cannot."""
    best = keyed([0.572, 0.565, 0.579])  # dividemix 57.20
    tight = keyed([0.5515, 0.5510, 0.5523])  # density_weighted 55.16 ± 0.07
    wide = keyed([0.545, 0.530, 0.5414])  # fl_weighted 53.88 ± 0.77
    ranked = rank_groups([wide, best, tight])
    ranks = [r for r in ranked if r is not None]
    assert len(ranks) == 3, ranked  # every row has two runs or more: each is ranked
    means = [0.5388, 0.572, 0.5516]
    for i in range(3):
        for j in range(3):
            if means[i] > means[j]:
                assert ranks[i] <= ranks[j], ranks
    assert ranks[1] == 1 and ranks[2] <= ranks[0]


def test_rank_groups_run_down_the_sorted_list_to_the_first_significant_drop():
    top = keyed([0.90, 0.91, 0.92])
    tie = keyed([0.905, 0.895, 0.925])  # not below top
    drop = keyed([0.80, 0.81, 0.82])  # every pair 0.10 below: p = 0
    under = keyed([0.79, 0.82, 0.80])  # not below drop
    low = keyed([0.50, 0.51, 0.52])
    single = {(0, "x"): 0.99}
    ranks = rank_groups([low, drop, top, single, under, tie])
    assert ranks == [5, 3, 1, None, 3, 1]


def test_rank_groups_correct_for_many_comparisons():
    """Ten rows each p ≈ 0.03 below the leader: significant alone, not after Holm (0.05 / 10)."""
    lead = keyed([1.0, 1.1, 1.2])
    rest = [{(s, "x"): v - d for s, v, d in zip(range(3), (1.0, 1.1, 1.2), (0.1, 0.2, 0.12))}]
    p = below_p(rest[0], lead)
    assert 0.01 < p < 0.05
    ranks = rank_groups([lead, *[dict(rest[0]) for _ in range(10)]])
    assert ranks == [1] * 11
    assert rank_groups([lead, rest[0]]) == [1, 2]  # one comparison: no correction needed


def test_accuracy_interval_is_shown_clipped_to_0_100():
    """[0.9, 1.0, 1.0]: t-interval 0.967 ± 0.143 reaches 1.11; the board shows 100.00."""
    from nlbench.boards.render import interval

    e = t_interval([0.9, 1.0, 1.0])
    assert e.high > 1.0 and e.low > 0.8
    assert interval(e) == f"[{100 * e.low:.2f}, 100.00]"
    assert interval(t_interval([0.0, 0.0, 0.1])).startswith("[0.00, ")
    assert interval(t_interval([0.7])) == "– (n=1)"
