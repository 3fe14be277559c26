"""Cross-setting ranks: Nemenyi's q and CD, Friedman's statistic, the complete block, cliques."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from nlbench.boards.ranks import (
    RankTest,
    cliques,
    complete_block,
    critical_difference,
    friedman,
    nemenyi_q,
    rank_test,
)

# Demšar (2006), Table 5(a): q_0.05 for the Nemenyi test, k = 2 .. 10
DEMSAR_Q05 = [1.960, 2.343, 2.569, 2.728, 2.850, 2.949, 3.031, 3.102, 3.164]


def test_nemenyi_q_matches_demsars_table():
    assert [nemenyi_q(k) for k in range(2, 11)] == pytest.approx(DEMSAR_Q05, abs=2e-3)


def test_critical_difference_by_hand():
    # Demšar §3.2.2's example: k = 4, N = 14: CD = 2.569 · √(4·5 / 84) = 1.25
    assert critical_difference(4, 14) == pytest.approx(2.569 * math.sqrt(20 / 84), abs=2e-3)


def test_friedman_statistic_without_ties_is_the_closed_form():
    rng = np.random.default_rng(1)
    block = rng.normal(size=(5, 6))  # 5 methods × 6 settings, no ties
    k, n = block.shape
    ranks = np.column_stack([(-block[:, j]).argsort().argsort() + 1 for j in range(n)])
    chi2 = 12 * n / (k * (k + 1)) * (ranks.mean(axis=1) ** 2).sum() - 3 * n * (k + 1)
    assert friedman(block)[0] == pytest.approx(chi2)
    assert friedman(np.ones((3, 4))) == (0.0, 1.0)  # every setting ties every method


def measured(table: dict[str, list[float | None]], settings: list[str]) -> pd.DataFrame:
    return pd.DataFrame(
        {s: [v[j] for v in table.values()] for j, s in enumerate(settings)},
        index=list(table),
        dtype=float,
    )


def test_complete_block_takes_most_cells_then_most_settings():
    nan = None
    means = measured(
        {
            "a": [1, 1, 1, 1],
            "b": [1, 1, 1, 1],
            "c": [1, 1, nan, 1],
            "d": [1, nan, nan, 1],
            "e": [nan, nan, nan, 1],
        },
        ["s1", "s2", "s3", "s4"],
    )
    # {s1, s2, s4} × {a, b, c} = 9 cells beats {s1..s4} × {a, b} (8, too few methods anyway)
    # and {s1, s4} × {a, b, c, d} (8)
    assert complete_block(means) == (["s1", "s2", "s4"], ["a", "b", "c"])
    assert complete_block(measured({"a": [1, 1], "b": [1, 1]}, ["s1", "s2"])) == ([], [])


def board_rows(table: dict[str, list[float]], n: int = 3) -> pd.DataFrame:
    rows = [
        {"label": label, "noise": f"sym:0.{j + 1}", "last_mean": v, "n": n}
        for label, values in table.items()
        for j, v in enumerate(values)
    ]
    return pd.DataFrame(rows)


def test_rank_test_averages_ranks_and_ties_share_them():
    df = board_rows({"a": [0.9, 0.8, 0.7], "b": [0.8, 0.8, 0.6], "c": [0.7, 0.6, 0.8]})
    test = rank_test(df, ["sym:0.1", "sym:0.2", "sym:0.3"])
    assert isinstance(test, RankTest)
    # a: 1, 1.5, 2 → 1.5; b: 2, 1.5, 3 → 2.17; c: 3, 3, 1 → 2.33
    assert test.labels == ("a", "b", "c")
    assert test.mean_ranks == pytest.approx((1.5, 13 / 6, 7 / 3))
    assert test.n == 3 and test.k == 3 and test.left_out == ()
    assert 0 < test.p <= 1 and test.cd == pytest.approx(critical_difference(3, 3))


def test_rank_test_needs_two_seeds_per_cell_and_a_complete_block():
    one_seed = board_rows({"a": [0.9, 0.8], "b": [0.8, 0.7], "c": [0.7, 0.6]}, n=1)
    assert rank_test(one_seed, ["sym:0.1", "sym:0.2"]) is None
    two = board_rows({"a": [0.9, 0.8], "b": [0.8, 0.7]})
    assert rank_test(two, ["sym:0.1", "sym:0.2"]) is None  # k = 2: no Friedman test


def test_cliques_are_maximal_runs_within_the_cd():
    test = RankTest(("a", "b", "c", "d"), (1.0, 1.5, 3.1, 3.9), ("x", "y"), (), 0.0, 1.0, 1.5)
    assert cliques(test) == [(0, 1), (2, 3)]
    wide = RankTest(("a", "b", "c"), (1.0, 2.0, 3.0), ("x", "y"), (), 0.0, 1.0, 5.0)
    assert cliques(wide) == [(0, 2)]
    apart = RankTest(("a", "b", "c"), (1.0, 2.0, 3.0), ("x", "y"), (), 0.0, 1.0, 0.5)
    assert cliques(apart) == []
