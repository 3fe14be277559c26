"""MixMatch pieces (nlbench/algorithms/mixmatch.py) and the shared GMM (nlbench/algorithms/gmm.py), against closed forms."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from nlbench.algorithms.gmm import clean_probability, normalise_losses
from nlbench.algorithms.mixmatch import (
    beta_draw,
    mixmatch,
    negative_entropy,
    probability_mse,
    sharpen,
    soft_cross_entropy,
    uniform_prior_penalty,
)


def gen(seed: int = 0) -> torch.Generator:
    g = torch.Generator()
    g.manual_seed(seed)
    return g


# -- sharpening ------------------------------------------------------------------------------
def test_sharpen_matches_closed_form():
    p = torch.tensor([[0.6, 0.3, 0.1], [0.25, 0.25, 0.5]])
    expected = p**2 / (p**2).sum(1, keepdim=True)
    assert torch.allclose(sharpen(p, 0.5), expected)


def test_sharpen_lowers_entropy_and_keeps_argmax():
    p = torch.softmax(torch.randn(32, 10, generator=gen(1)), dim=1)
    q = sharpen(p, 0.5)
    assert torch.allclose(q.sum(1), torch.ones(32))
    assert torch.equal(q.argmax(1), p.argmax(1))
    entropy = lambda r: -(r * r.log()).sum(1)  # noqa: E731
    assert bool((entropy(q) <= entropy(p) + 1e-6).all())


def test_sharpen_identity_at_t1_and_rejects_bad_t():
    p = torch.tensor([[0.7, 0.2, 0.1]])
    assert torch.allclose(sharpen(p, 1.0), p)
    with pytest.raises(ValueError):
        sharpen(p, 0.0)


# -- the Beta draw and mixing ----------------------------------------------------------------
def test_beta_draw_moments_and_determinism():
    g = gen(3)
    draws = torch.stack([beta_draw(4.0, g) for _ in range(3000)])
    # Beta(4, 4): mean 1/2, variance α² / ((2α)² (2α + 1)) = 1/36
    assert abs(float(draws.mean()) - 0.5) < 0.01
    assert abs(float(draws.var()) - 1 / 36) < 0.004
    assert float(beta_draw(4.0, gen(7))) == float(beta_draw(4.0, gen(7)))
    assert float(beta_draw(0.0, g)) == 1.0


@pytest.mark.parametrize("alpha", [0.5, 4.0])
def test_mixmatch_is_a_convex_mix_with_one_permutation(alpha):
    m, c = 24, 5
    inputs = torch.randn(m, 3, 4, 4, generator=gen(0))
    targets = torch.softmax(torch.randn(m, c, generator=gen(1)), 1)
    for seed in range(5):
        mixed_x, mixed_t, lam_t = mixmatch(inputs, targets, alpha, gen(seed))
        assert mixed_x.shape == inputs.shape and mixed_t.shape == targets.shape
        lam = float(lam_t)
        assert 0.5 <= lam <= 1.0
        # recover each row's partner: (mixed − l·a_i) / (1 − l) must be a row of the batch
        partner = (mixed_x - lam * inputs) / (1 - lam) if lam < 1 else inputs
        dist = torch.cdist(partner.flatten(1), inputs.flatten(1))
        perm = dist.argmin(1)
        assert float(dist.min(1).values.max()) < 1e-3
        assert sorted(perm.tolist()) == list(range(m)), "partners must form one permutation"
        assert torch.allclose(mixed_t, lam * targets + (1 - lam) * targets[perm], atol=1e-5)
        assert torch.allclose(mixed_t.sum(1), torch.ones(m), atol=1e-5)


def test_mixmatch_is_deterministic_and_checks_shapes():
    x, t = torch.randn(8, 2), torch.full((8, 2), 0.5)
    a, b = mixmatch(x, t, 4.0, gen(5)), mixmatch(x, t, 4.0, gen(5))
    assert all(torch.equal(u, v) for u, v in zip(a, b))
    with pytest.raises(ValueError):
        mixmatch(x, t[:4], 4.0, gen(5))
    same_x, same_t, lam = mixmatch(x, t, 0.0, gen(5))  # α = 0: no mixing
    assert float(lam) == 1.0 and torch.equal(same_x, x) and torch.equal(same_t, t)


# -- the losses ------------------------------------------------------------------------------
def test_losses_match_closed_forms():
    logits = torch.randn(6, 4, generator=gen(2))
    y = torch.tensor([0, 1, 2, 3, 0, 1])
    onehot = F.one_hot(y, 4).float()
    assert torch.allclose(soft_cross_entropy(logits, onehot), F.cross_entropy(logits, y))
    p = torch.softmax(logits, 1)
    assert torch.allclose(probability_mse(logits, onehot), ((p - onehot) ** 2).mean())
    mean = p.mean(0)
    kl = (0.25 * torch.log(0.25 / mean)).sum()
    assert torch.allclose(uniform_prior_penalty(logits), kl)
    assert float(uniform_prior_penalty(torch.zeros(3, 4))) == pytest.approx(0.0, abs=1e-7)
    assert float(negative_entropy(torch.zeros(2, 4))) == pytest.approx(-math.log(4), abs=1e-6)


# -- the shared GMM --------------------------------------------------------------------------
def test_normalise_losses_range_and_constant_input():
    out = normalise_losses(torch.tensor([2.0, 4.0, 3.0]))
    assert torch.allclose(out, torch.tensor([0.0, 1.0, 0.5]))
    assert torch.equal(normalise_losses(torch.full((4,), 3.0)), torch.zeros(4))


@pytest.mark.parametrize("n_clean,n_noisy", [(700, 300), (200, 800)])
def test_gmm_picks_the_smaller_mean_component(n_clean, n_noisy):
    g = gen(11)
    clean = 0.2 + 0.1 * torch.rand(n_clean, generator=g)
    noisy = 2.0 + 0.5 * torch.rand(n_noisy, generator=g)
    losses = torch.cat([noisy, clean])  # order must not matter
    prob = clean_probability(losses, seed=0)
    assert prob.shape == losses.shape and prob.dtype == torch.float32
    assert float(prob[n_noisy:].min()) > 0.99 and float(prob[:n_noisy].max()) < 0.01
    assert torch.equal(prob, clean_probability(losses, seed=0))
