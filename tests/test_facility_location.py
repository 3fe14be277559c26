"""Facility location, set cover and densities against brute force (Cai, Cao & Liu §5.1)."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from nlbench.algorithms.facility_location import (
    agreement_fractions,
    cluster_sizes,
    density_counts,
    distance_blocks,
    fl_objective,
    greedy_fl,
    lazy_greedy_fl,
    pairwise_distances,
    run_fl,
    select_group,
    set_cover,
    stochastic_greedy_fl,
)


def points(n: int, d: int = 3, seed: int = 0, dtype=torch.float64) -> torch.Tensor:
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def test_distances_match_cdist_and_blocks(monkeypatch):
    import nlbench.algorithms.facility_location as fl

    monkeypatch.setattr(fl, "BLOCK_BYTES", 8 * 7 * 3)  # force several 3-row blocks
    x = points(7)
    assert torch.allclose(pairwise_distances(x), torch.cdist(x, x), atol=1e-9)
    assert len(list(distance_blocks(x))) == 3
    assert torch.all(pairwise_distances(x).diagonal() == 0)


@pytest.mark.parametrize("seed", range(5))
def test_lazy_equals_plain_greedy(seed):
    dist = pairwise_distances(points(60, seed=seed))
    plain, lazy = greedy_fl(dist, 25), lazy_greedy_fl(dist, 25)
    assert torch.equal(plain.indices, lazy.indices)
    assert lazy.objective == plain.objective
    assert lazy.evaluations < plain.evaluations


def test_lazy_equals_plain_with_duplicate_points():
    x = torch.cat([points(20, seed=3)] * 2)  # every point twice: exact gain ties
    dist = pairwise_distances(x)
    assert torch.equal(greedy_fl(dist, 15).indices, lazy_greedy_fl(dist, 15).indices)


@pytest.mark.parametrize("seed", range(6))
def test_greedy_reaches_one_minus_one_over_e_of_the_optimum(seed):
    dist = pairwise_distances(points(10, d=2, seed=seed))
    for k in (1, 2, 3, 4):
        best = max(
            fl_objective(dist, torch.tensor(s)) for s in itertools.combinations(range(10), k)
        )
        got = lazy_greedy_fl(dist, k).objective
        assert got >= (1 - 1 / math.e) * best - 1e-9
        if k == 1:  # the first greedy pick is the exact 1-medoid
            assert got == pytest.approx(best)


def test_objective_is_the_k_medoid_cost_shifted():
    x = points(30, seed=1)
    dist = pairwise_distances(x)
    sel = torch.tensor([0, 5, 9])
    cost = dist[:, sel].min(1).values.sum()
    assert fl_objective(dist, sel) == pytest.approx(float(30 * dist.max() - cost))


def test_stochastic_greedy_is_sane():
    dist = pairwise_distances(points(400, d=5, seed=2, dtype=torch.float32))
    lazy = lazy_greedy_fl(dist, 100)
    gen = torch.Generator().manual_seed(0)
    sto = stochastic_greedy_fl(dist, 100, epsilon=0.01, gen=gen)
    assert sto.indices.unique().numel() == 100
    assert sto.objective >= 0.98 * lazy.objective
    assert sto.evaluations < 400 * 100
    again = stochastic_greedy_fl(dist, 100, epsilon=0.01, gen=torch.Generator().manual_seed(0))
    assert torch.equal(sto.indices, again.indices)  # seeded


def test_stochastic_greedy_can_select_everything():
    dist = pairwise_distances(points(12, seed=4))
    res = stochastic_greedy_fl(dist, 12, gen=torch.Generator().manual_seed(1))
    assert sorted(res.indices.tolist()) == list(range(12))


def test_run_fl_dispatch_and_bad_name():
    dist = pairwise_distances(points(20))
    assert torch.equal(run_fl(dist, 5, "auto").indices, greedy_fl(dist, 5).indices)
    assert run_fl(dist, 50, "lazy").indices.numel() == 20  # k clipped to n
    with pytest.raises(ValueError):
        run_fl(dist, 5, "nope")


def test_cluster_sizes_brute_force():
    x = points(50, seed=5)
    dist = pairwise_distances(x)
    med = torch.tensor([3, 17, 40])
    sizes = cluster_sizes(dist, med)
    want = torch.bincount(torch.cdist(x, x[med]).argmin(1), minlength=3).to(sizes.dtype)
    assert torch.equal(sizes, want) and int(sizes.sum()) == 50


@pytest.mark.parametrize("radius", [0.3, 0.8, 1.5])
def test_set_cover_covers_every_point(radius):
    dist = pairwise_distances(points(80, d=2, seed=6))
    centres = set_cover(dist, radius)
    assert bool((dist[:, centres] <= radius).any(1).all())
    assert centres.unique().numel() == centres.numel()
    assert int(cluster_sizes(dist, centres).sum()) == 80


def test_density_counts_brute_force():
    x, labels = (
        points(60, seed=7),
        torch.randint(0, 3, (60,), generator=torch.Generator().manual_seed(0)),
    )
    got = density_counts(x, labels, 1.0)
    want = [
        sum(1 for j in range(60) if labels[j] == labels[i] and torch.dist(x[i], x[j]) <= 1.0)
        for i in range(60)
    ]
    assert got.tolist() == want


def test_agreement_fractions_brute_force():
    x, labels = (
        points(50, seed=8),
        torch.randint(0, 3, (50,), generator=torch.Generator().manual_seed(1)),
    )
    got = agreement_fractions(x, labels, 1.2)
    for i in range(50):
        ball = [j for j in range(50) if torch.dist(x[i], x[j]) <= 1.2]
        assert got[i].item() == pytest.approx(
            sum(bool(labels[j] == labels[i]) for j in ball) / len(ball)
        )


def test_select_group_partitions_large_groups():
    x = points(250, seed=9, dtype=torch.float32)
    res = select_group(x, 0.4, "lazy", gen=torch.Generator().manual_seed(0), partition=100)
    assert res.info["partitions"] == 3
    assert res.indices.unique().numel() == res.indices.numel() == 100
    assert int(res.info["cluster_sizes"].sum()) == 250
    whole = select_group(x, 0.4, "lazy")
    assert whole.info["partitions"] == 1 and whole.indices.numel() == 100


def test_radius_quantile_matches_numpy():
    import numpy as np

    from nlbench.algorithms.facility_location import same_label_distance_quantile
    from nlbench_plugins.reweighters_basic import Density

    g = torch.Generator().manual_seed(3)
    x = torch.randn(60, 4, generator=g)
    labels = torch.arange(60) % 3
    ref = []
    for c in range(3):
        xc = x[labels == c].numpy()
        d = np.linalg.norm(xc[:, None] - xc[None], axis=-1)
        ref.append(d[np.triu_indices(len(xc), 1)])
    flat = np.sort(np.concatenate(ref))
    got = same_label_distance_quantile(x, labels, 0.25)
    assert got == pytest.approx(flat[int(round(0.25 * flat.size)) - 1], rel=1e-5)
    w = Density({"radius_quantile": 0.25}).weigh(x, labels)
    assert w.min() >= 1 and w.max() > 1


def test_reported_objective_is_the_objective_of_the_selection():
    """The greedies report f(S) from their running minimum: it must equal a recomputation."""
    dist = pairwise_distances(points(60, d=3, seed=7, dtype=torch.float32))
    for res in (
        greedy_fl(dist, 9),
        lazy_greedy_fl(dist, 9),
        stochastic_greedy_fl(dist, 9, gen=torch.Generator().manual_seed(3)),
    ):
        assert res.objective == fl_objective(dist, res.indices)
    assert lazy_greedy_fl(dist, 0).objective == 0.0


def test_exact_fl_optimum_under_samples_a_tight_clean_cluster():
    """Why ``fl_only``'s medoids are mostly mislabelled (methods_fl docstring), by brute force:
    one class of the noisy label in p − y space, half clean in a tight cluster, half
    mislabelled in two looser ones. The *exact* optimum (not only greedy) puts one medoid on
    the clean cluster and the rest on the loose ones: precision 1/6, far below the clean
    fraction 1/2. Weighting each medoid by its cluster size (the fast schedule) restores the
    data's own mix exactly (Cai et al. §5.3: "consistent with the entire dataset"), no better."""
    gen = torch.Generator().manual_seed(0)
    clean = 0.05 * torch.randn(6, 2, generator=gen, dtype=torch.float64)
    noisy = torch.cat([torch.tensor([[1.0, 0.0]] * 3), torch.tensor([[0.0, 1.0]] * 3)]).double()
    noisy = noisy + 0.3 * torch.randn(6, 2, generator=gen, dtype=torch.float64)
    dist = pairwise_distances(torch.cat([clean, noisy]))
    is_clean = torch.arange(12) < 6
    subsets = itertools.combinations(range(12), 6)
    medoids = torch.tensor(max(subsets, key=lambda s: fl_objective(dist, torch.tensor(s))))
    assert lazy_greedy_fl(dist, 6).objective >= (1 - 1 / math.e) * fl_objective(dist, medoids)
    assert is_clean[medoids].double().mean().item() == pytest.approx(1 / 6)
    sizes = cluster_sizes(dist, medoids)
    assert (sizes * is_clean[medoids]).sum().item() / sizes.sum().item() == pytest.approx(0.5)
