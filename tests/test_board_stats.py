"""Interval, paired-difference and rank-group arithmetic on hand-computed cases."""

from __future__ import annotations

import math

import pytest

from nlbench.boards.stats import Estimate, difference, rank_groups, t_interval, welch


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
    from scipy import stats

    assert d.half == pytest.approx(stats.t.ppf(0.975, 4.0755) * math.sqrt(2), rel=1e-3)
    assert difference({(0, "x"): 1.0}, {(1, "y"): 0.5})[1] == "unpaired"


def est(mean: float, half: float, n: int = 3) -> Estimate:
    return Estimate(mean, half, n)


def test_rank_groups_share_the_leaders_rank():
    # A [9, 11] leads; B [8.5, 9.5] overlaps A; C [7, 8] does not: it leads group 3;
    # D [6, 9] overlaps A too (wide) so it shares rank 1 despite its lower mean.
    ranks = rank_groups([est(10, 1), est(9, 0.5), est(7.5, 0.5), est(7.5, 1.5)])
    assert ranks == [1, 1, 4, 1]


def test_rank_groups_strict_order_when_nothing_overlaps_and_n1_unranked():
    ranks = rank_groups([est(1, 0.1), est(3, 0.1), est(2, 0.1), est(5, math.nan, n=1)])
    assert ranks == [3, 1, 2, None]


def test_rank_groups_chain_is_not_transitive():
    # B overlaps A, C overlaps B but not A: C leads its own group (rank 3)
    assert rank_groups([est(10, 1), est(8.5, 1), est(7, 1)]) == [1, 1, 3]


def test_accuracy_interval_is_shown_clipped_to_0_100():
    """[0.9, 1.0, 1.0]: t-interval 0.967 ± 0.143 reaches 1.11; the board shows 100.00."""
    from nlbench.boards.render import interval

    e = t_interval([0.9, 1.0, 1.0])
    assert e.high > 1.0 and e.low > 0.8
    assert interval(e) == f"[{100 * e.low:.2f}, 100.00]"
    assert interval(t_interval([0.0, 0.0, 0.1])).startswith("[0.00, ")
    assert interval(t_interval([0.7])) == "– (n=1)"
