"""Facility location, set cover and density counts on per-class vectors.

Source: Cai, Cao & Liu, "An Empirical Study of Robust Deep Models" (docs/sources.md), §5.1.

Similarity. The report states facility location as the k-medoid problem
``F* = argmin_{|F|=k} Σ_i min_{p∈F} D(i, p)`` with ``D`` the L2 distance (§5.1-5.2). We maximise
the equivalent monotone submodular form ``f(S) = Σ_i max_{j∈S} sim(i, j)`` with
``sim = M − D`` and ``M = max D`` over the group (the CRAIG/CRUST convention, apricot's
``distances.max() − distances``), so ``sim ≥ 0`` and ``f(∅) = 0``: ``f(S) = n·M − Σ_i min_j D``.
The greedy choices never depend on ``M`` (the first pick is the 1-medoid, later gains are
``Σ_i relu(mind_i − D_ij)``), so we work with distances and keep ``mind_i = M`` for the empty set.

Algorithms (all exact-or-(1−1/e) greedy, vectorised in torch on the vectors' device):
    ``greedy``: plain greedy, every gain recomputed each step (O(k n²); fast on a GPU, no sync).
    ``lazy``: lazy greedy (Minoux) in batches: the top stale upper bounds are re-evaluated
        together and the best is accepted once it beats every remaining bound strictly, so it
        returns the plain greedy's selection (ties → lowest index) with far fewer evaluations.
    ``stochastic``: stochastic greedy (Mirzasoleiman et al., AAAI 2015): each step evaluates
        ``(n/k)·ln(1/ε)`` random candidates; (1 − 1/e − ε) in expectation.
    ``auto``: ``greedy`` on CUDA, ``lazy`` elsewhere (same selection).

Memory. Distances are built in row blocks of at most ``BLOCK_BYTES``; one group's n×n matrix is
held (CIFAR-10: 5,000² fp32 = 95 MiB per class, one class at a time). Groups larger than
``partition`` points (Clothing1M classes hold ~70k images: 18 GiB as one matrix) are split into
seeded random parts of at most ``partition`` points, each selecting the same ratio (the
partitioned greedy of Mirzasoleiman et al.'s GreeDi without the merge round): memory
O(partition²), time linear in n. The number of parts is reported so records say it happened.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field

import torch

BLOCK_BYTES = 64 * 2**20
ALGORITHMS = ("auto", "greedy", "lazy", "stochastic")


# -- distances ------------------------------------------------------------------------------
def _rows_per_block(n_cols: int, itemsize: int = 4) -> int:
    return max(1, BLOCK_BYTES // max(1, n_cols * itemsize))


def distance_blocks(
    x: torch.Tensor, y: torch.Tensor | None = None
) -> Iterator[tuple[int, torch.Tensor]]:
    """Yield ``(row_start, D[rows])`` L2 distance blocks between ``x`` and ``y`` (default ``x``).

    Blocks hold at most ``BLOCK_BYTES``; with ``y`` omitted the diagonal is exactly 0.
    """
    same = y is None
    y = x if y is None else y
    y2 = (y * y).sum(1)
    step = _rows_per_block(y.shape[0], x.element_size())
    for lo in range(0, x.shape[0], step):
        a = x[lo : lo + step]
        d = torch.addmm((a * a).sum(1, keepdim=True), a, y.T, alpha=-2.0)
        d = d.add_(y2[None, :]).clamp_min_(0).sqrt_()
        if same:
            rows = torch.arange(d.shape[0], device=d.device)
            d[rows, rows + lo] = 0
        yield lo, d


def pairwise_distances(x: torch.Tensor) -> torch.Tensor:
    """The symmetric n×n L2 distance matrix of ``x``, built block by block."""
    out = torch.empty(x.shape[0], x.shape[0], dtype=x.dtype, device=x.device)
    for lo, d in distance_blocks(x):
        out[lo : lo + d.shape[0]] = d
    return out


# -- facility location ----------------------------------------------------------------------
@dataclass
class FLResult:
    """A greedy selection: local indices in pick order and f(S) = Σ_i max_{j∈S} (M − D_ij)."""

    indices: torch.Tensor
    objective: float
    evaluations: int = 0
    info: dict = field(default_factory=dict)


def _gains(d_rows: torch.Tensor, mind: torch.Tensor) -> torch.Tensor:
    """Marginal gains of candidates (rows of D): Σ_i relu(mind_i − D_ji) (D symmetric).

    Written as ``−Σ min(D − mind, 0)`` (bitwise the same value) so it runs in place on a copy.
    """
    return (d_rows - mind[None, :]).clamp_max_(0).sum(1).neg_()


def _gains_inplace(rows: torch.Tensor, mind: torch.Tensor) -> torch.Tensor:
    """:func:`_gains` on a fresh copy of the rows, reusing its memory."""
    return rows.sub_(mind).clamp_max_(0).sum(1).neg_()


def fl_objective(dist: torch.Tensor, indices: torch.Tensor) -> float:
    """f(S) = Σ_i max_{j∈S} (M − D_ij) with M = max D (0 for the empty set)."""
    if indices.numel() == 0:
        return 0.0
    mind = dist[indices].min(0).values
    return float((dist.max() - mind).double().sum())


def _objective(dmax: float, mind: torch.Tensor) -> float:
    """f(S) from the greedy's running ``mind_i = min_{j∈S} D_ij`` (bitwise :func:`fl_objective`:
    a running minimum of the same values), without re-gathering the k selected rows; the
    empty set leaves ``mind = M`` everywhere, so f(∅) = 0."""
    return float((dmax - mind).double().sum())


def greedy_fl(dist: torch.Tensor, k: int) -> FLResult:
    """Plain greedy: all gains recomputed every step (the reference the others must match)."""
    n, dmax = dist.shape[0], float(dist.max())
    mind = torch.full((n,), dmax, dtype=dist.dtype, device=dist.device)
    picked = torch.zeros(n, dtype=torch.bool, device=dist.device)
    out = torch.empty(k, dtype=torch.long, device=dist.device)
    step = _rows_per_block(n, dist.element_size())
    for t in range(k):
        gains = torch.cat([_gains(dist[lo : lo + step], mind) for lo in range(0, n, step)])
        j = gains.masked_fill_(picked, -math.inf).argmax()  # first max: lowest index on ties
        out[t] = j
        picked[j] = True
        mind = torch.minimum(mind, dist[j])
    return FLResult(out, _objective(dmax, mind), evaluations=k * n, info={"algorithm": "greedy"})


def lazy_greedy_fl(dist: torch.Tensor, k: int, batch: int = 8) -> FLResult:
    """Lazy greedy, re-evaluating the top ``batch`` stale bounds at once (doubling if needed).

    Accepts the best re-evaluated candidate only when its exact gain is strictly above every
    other bound (else the batch doubles), so ties resolve exactly as in :func:`greedy_fl`.
    """
    n, dmax = dist.shape[0], float(dist.max())
    mind = torch.full((n,), dmax, dtype=dist.dtype, device=dist.device)
    step = _rows_per_block(n, dist.element_size())
    bounds = torch.cat([_gains(dist[lo : lo + step], mind) for lo in range(0, n, step)])
    out, evals = [], n
    for t in range(k):
        b = min(batch, n - t)
        while True:
            vals, top = torch.topk(bounds, min(b + 1, n - t))
            cand = top[:b]
            g = _gains_inplace(dist.index_select(0, cand), mind)
            evals += b
            bounds.index_copy_(0, cand, g)
            best = g.max()
            if b == n - t or bool(best > vals[b]):
                j = cand[g == best].min()
                break
            b = min(2 * b, n - t)
        out.append(j)
        bounds[j] = -math.inf
        torch.minimum(mind, dist[j], out=mind)
    idx = torch.stack(out) if out else torch.empty(0, dtype=torch.long, device=dist.device)
    return FLResult(idx, _objective(dmax, mind), evals, {"algorithm": "lazy"})


def stochastic_greedy_fl(
    dist: torch.Tensor, k: int, epsilon: float = 0.01, gen: torch.Generator | None = None
) -> FLResult:
    """Stochastic greedy: the best of ``s = ceil(n/k · ln(1/ε))`` random unpicked points.

    The unpicked points live in the first ``m`` slots of a shuffled index (a picked point is
    swapped with the last live slot), so every step draws ``s`` candidates uniformly (with
    replacement) among the unpicked only: no wasted evaluations on picked points, no fallback,
    and no device→host read in the loop. All random numbers come from one call to ``gen``.
    """
    n, device = dist.shape[0], dist.device
    s = max(1, math.ceil(n / max(1, k) * math.log(1.0 / epsilon)))
    on = gen.device if gen is not None else torch.device("cpu")
    live = torch.randperm(n, generator=gen, device=on).to(device)
    u = torch.rand(k, s, generator=gen, device=on, dtype=torch.float64).to(device)
    live_counts = torch.arange(n, n - k, -1, device=device, dtype=torch.float64)[:, None]
    slots = (u * live_counts).long().minimum((live_counts - 1).long())  # step t: s slots < n−t
    dmax = float(dist.max())
    mind = torch.full((n,), dmax, dtype=dist.dtype, device=device)
    picks: list[torch.Tensor] = []
    for t in range(k):
        pos = slots[t]
        cand = live[pos]
        rows = dist.index_select(0, cand)
        # gain = Σ mind − Σ min(mind, D_j·): the candidate with the smallest Σ min wins
        arg = torch.minimum(rows, mind, out=rows).sum(1).argmin()
        j = cand[arg]
        picks.append(j)
        torch.minimum(mind, dist[j], out=mind)
        live[pos[arg]] = live[n - t - 1]  # retire the pick: swap in the last live point
    out = torch.stack(picks) if picks else torch.empty(0, dtype=torch.long, device=device)
    return FLResult(out, _objective(dmax, mind), k * s, {"algorithm": "stochastic", "sample": s})


def run_fl(
    dist: torch.Tensor,
    k: int,
    algorithm: str = "auto",
    epsilon: float = 0.01,
    gen: torch.Generator | None = None,
) -> FLResult:
    """Dispatch to one greedy variant on a precomputed distance matrix."""
    k = max(0, min(int(k), dist.shape[0]))
    if algorithm == "auto":
        algorithm = "greedy" if dist.device.type == "cuda" else "lazy"
    if algorithm == "greedy":
        return greedy_fl(dist, k)
    if algorithm == "lazy":
        return lazy_greedy_fl(dist, k)
    if algorithm == "stochastic":
        return stochastic_greedy_fl(dist, k, epsilon, gen)
    raise ValueError(f"unknown FL algorithm {algorithm!r}; accepted: {', '.join(ALGORITHMS)}")


# -- clusters, set cover, densities ---------------------------------------------------------
def cluster_sizes(dist: torch.Tensor, medoids: torch.Tensor) -> torch.Tensor:
    """How many points have each medoid as their nearest (aligned with ``medoids``)."""
    if medoids.numel() == 0:
        return torch.zeros(0, device=dist.device)
    n, step = dist.shape[0], _rows_per_block(medoids.numel(), dist.element_size())
    near = torch.cat([dist[lo : lo + step][:, medoids].argmin(1) for lo in range(0, n, step)])
    return torch.bincount(near, minlength=medoids.numel()).to(dist.dtype)


def set_cover(dist: torch.Tensor, radius: float, batch: int = 16) -> torch.Tensor:
    """Greedy set cover by balls ``{i : D_ij ≤ r}`` until every point is covered (lazy; Cai et
    al. §5.1).

    Each point covers itself, so it terminates; greedy is within ln(n)+1 of the minimum cover.
    """
    n = dist.shape[0]
    ball = dist <= radius
    uncovered = torch.ones(n, dtype=torch.bool, device=dist.device)
    bounds = ball.sum(1).to(torch.float32)
    out = []
    while bool(uncovered.any()):
        b = min(batch, n)
        while True:
            top = torch.topk(bounds, min(b + 1, n))
            cand = top.indices[:b]
            g = (ball[cand] & uncovered[None, :]).sum(1).to(torch.float32)
            bounds[cand] = g
            best = g.max()
            if b >= n or bool(best >= top.values[b]):
                j = cand[g == best].min()
                break
            b = min(2 * b, n)
        out.append(j)
        bounds[j] = -1.0
        uncovered &= ~ball[j]
    return torch.stack(out)


def density_counts(x: torch.Tensor, labels: torch.Tensor, radius: float) -> torch.Tensor:
    """Per sample: how many samples with the same label lie within ``radius`` (itself included).

    Cai et al.'s Table 5 "Weighted only": "weight each data point by the number of data points
    in its unit ball with radius r"; computed per class of the noisy label, in blocks.
    """
    out = torch.zeros(x.shape[0], dtype=torch.float32, device=x.device)
    for c in torch.unique(labels):
        idx = torch.nonzero(labels == c).squeeze(1)
        xc = x[idx]
        for lo, d in distance_blocks(xc):
            out[idx[lo : lo + d.shape[0]]] = (d <= radius).sum(1).to(torch.float32)
    return out


def same_label_distance_quantile(
    x: torch.Tensor, labels: torch.Tensor, q: float, per_class: int = 1000
) -> float:
    """The q-quantile of pairwise distances within each noisy-label class.

    Deterministic: the first ``per_class`` samples of each class (sample order is already a
    seeded shuffle of the data), so 10 classes cost 10 × 1000² distances.
    """
    dists = []
    for c in torch.unique(labels):
        xc = x[labels == c][:per_class].float()
        d = pairwise_distances(xc)
        dists.append(d[torch.triu_indices(len(xc), len(xc), 1, device=x.device).unbind()])
    flat = torch.cat(dists)
    if flat.numel() == 0:
        return 0.0
    k = max(1, round(q * flat.numel()))
    return float(flat.kthvalue(k).values)


def agreement_fractions(x: torch.Tensor, labels: torch.Tensor, radius: float) -> torch.Tensor:
    """Per sample: the fraction of all samples within ``radius`` that share its label.

    Cai et al.'s §5.3 robust weight ("the fraction of data points in the same cluster whose
    labels agree with the sampled point"), with a point's cluster taken as its radius-r ball
    (the set-cover clusters of §5.1). Blocks over rows; memory O(block × N).
    """
    out = torch.empty(x.shape[0], dtype=torch.float32, device=x.device)
    for lo, d in distance_blocks(x):  # zero diagonal: every point is in its own ball
        ball = d <= radius
        same = ball & (labels[lo : lo + d.shape[0], None] == labels[None, :])
        out[lo : lo + d.shape[0]] = same.sum(1).float() / ball.sum(1).float()
    return out


# -- one group, end to end --------------------------------------------------------------------
def select_group(
    x: torch.Tensor,
    ratio: float,
    algorithm: str = "auto",
    epsilon: float = 0.01,
    gen: torch.Generator | None = None,
    partition: int = 10_000,
) -> FLResult:
    """FL on one group (a class of the noisy label): ``round(ratio·n)`` medoids + cluster sizes.

    Groups above ``partition`` points are split into seeded random parts selected separately.
    ``info["cluster_sizes"]`` is aligned with the returned (local) indices.
    """
    n = x.shape[0]
    parts = max(1, math.ceil(n / max(1, partition)))
    order = torch.randperm(n, generator=gen, device=x.device) if parts > 1 else None
    chunks = torch.tensor_split(order, parts) if order is not None else [None]
    picked, sizes, objective, evals = [], [], 0.0, 0
    for chunk in chunks:
        xs = x if chunk is None else x[chunk]
        dist = pairwise_distances(xs)
        res = run_fl(dist, round(ratio * xs.shape[0]), algorithm, epsilon, gen)
        sizes.append(cluster_sizes(dist, res.indices))
        picked.append(res.indices if chunk is None else chunk[res.indices])
        objective += res.objective
        evals += res.evaluations
        del dist
    info = {
        "algorithm": res.info["algorithm"],
        "partitions": parts,
        "cluster_sizes": torch.cat(sizes),
    }
    return FLResult(torch.cat(picked), objective, evals, info)
