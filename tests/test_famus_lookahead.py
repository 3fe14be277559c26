"""FaMUS's look-ahead and regularisers against brute force (float64): every layer moves, the
meta-gradient flows only through the selected layers, unsampled gates get gradient through
``(1 − r)·g``, and ``L_g`` reaches the meta-net."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from nlbench.algorithms import metagrad
from nlbench_plugins.meta.sampler import grad_stat_penalty
from nlbench_plugins.meta.weighting import VNet

LR = 0.3
EARLY = ["0.weight", "0.bias"]
SAMPLED = ["2.bias", "4.weight"]
UNSAMPLED = ["2.weight", "4.bias"]
KEPT = ["6.weight", "6.bias"]


def setup():
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(5, 6),
        nn.Tanh(),
        nn.Linear(6, 6),
        nn.Tanh(),
        nn.Linear(6, 4),
        nn.Tanh(),
        nn.Linear(4, 3),
    ).double()
    torch.manual_seed(3)
    vnet = VNet(hidden=4).double()
    g = torch.Generator().manual_seed(1)
    x, mx = (
        torch.randn(8, 5, generator=g, dtype=torch.float64),
        torch.randn(6, 5, generator=g, dtype=torch.float64),
    )
    y, my = torch.randint(0, 3, (8,), generator=g), torch.randint(0, 3, (6,), generator=g)
    return model, vnet, x, y, mx, my


def weigh_with(vnet):
    def weigh(losses):
        return (metagrad.normalise_weights(vnet(losses.detach()), "sum") * losses).sum()

    return weigh


def plain_grads(model, vnet, x, y) -> dict[str, torch.Tensor]:
    """∇_w Σ W_i ℓ_i with the weights W as numbers (first-order autograd only)."""
    params = {n: p.detach().requires_grad_(True) for n, p in model.named_parameters()}
    losses = metagrad.per_sample_ce(model, params, x, y)
    with torch.no_grad():
        w = metagrad.normalise_weights(vnet(losses), "sum")
    return dict(zip(params, torch.autograd.grad((w * losses).sum(), list(params.values()))))


def assert_central_differences(theta, grads, loss, atol: float, h: float = 1e-6) -> None:
    """Each entry of ``grads`` (dloss/dtheta) against a central difference of ``loss()``."""
    for p, g in zip(theta, grads):
        flat, gflat = p.data.view(-1), g.view(-1)
        for i in range(flat.numel()):
            old = float(flat[i])
            flat[i] = old + h
            up = loss()
            flat[i] = old - h
            down = loss()
            flat[i] = old
            assert abs((up - down) / (2 * h) - float(gflat[i])) < atol + 1e-5 * abs(float(gflat[i]))


def unit_gates() -> dict[str, torch.Tensor]:
    return {
        n: torch.tensor(1.0 if n in SAMPLED else 0.0, dtype=torch.float64, requires_grad=True)
        for n in SAMPLED + UNSAMPLED
    }


def famus_look_ahead(model, vnet, x, y, gates):
    return metagrad.virtual_step(
        model, x, y, weigh_with(vnet), LR, select=KEPT + SAMPLED, gates=gates
    )


def test_every_layer_moves_by_its_full_gradient():
    model, vnet, x, y, _, _ = setup()
    v = famus_look_ahead(model, vnet, x, y, unit_gates())
    ref = plain_grads(model, vnet, x, y)
    for n, p in model.named_parameters():
        assert not torch.equal(v.fast[n].detach(), p.detach()), n
        torch.testing.assert_close(v.fast[n].detach(), p.detach() - LR * ref[n])
    assert not v.fast["0.weight"].requires_grad  # early layers: detached move


def test_meta_gradient_flows_only_through_the_selected_layers():
    """dL_meta/dθ = derivative with the unselected layers' moves frozen at θ0 (their detached
    gradient), against central differences."""
    model, vnet, x, y, mx, my = setup()
    theta = list(vnet.parameters())
    v = famus_look_ahead(model, vnet, x, y, unit_gates())
    grads = torch.autograd.grad(metagrad.meta_loss(model, v.fast, mx, my), theta)
    frozen = plain_grads(model, vnet, x, y)
    params = {n: p.detach() for n, p in model.named_parameters()}

    def brute() -> float:
        live = plain_grads(model, vnet, x, y)
        fast = {
            n: p - LR * (live[n] if n in KEPT + SAMPLED else frozen[n]) for n, p in params.items()
        }
        with torch.no_grad():
            return float(metagrad.meta_loss(model, fast, mx, my))

    assert_central_differences(theta, grads, brute, atol=1e-8)
    full = metagrad.meta_gradient(model, x, y, weigh_with(vnet), theta, mx, my, LR)
    assert not all(torch.allclose(a, b) for a, b in zip(grads, full.grads))  # restriction matters


def test_gates_get_the_gradient_of_their_move():
    """Sampled: ŵ = w − α·r·g; unsampled: ŵ = w − α·(1 − r)·g; ∂L_meta/∂r against central
    differences, nonzero for the unsampled gates too."""
    model, vnet, x, y, mx, my = setup()
    gates = unit_gates()
    v = famus_look_ahead(model, vnet, x, y, gates)
    names = list(gates)
    auto = torch.autograd.grad(metagrad.meta_loss(model, v.fast, mx, my), [gates[n] for n in names])
    g0 = plain_grads(model, vnet, x, y)
    params = {n: p.detach() for n, p in model.named_parameters()}

    def brute(r: dict[str, float]) -> float:
        def scale(n):
            if n in SAMPLED:
                return r[n]
            return 1 - r[n] if n in UNSAMPLED else 1.0

        fast = {n: p - LR * scale(n) * g0[n] for n, p in params.items()}
        with torch.no_grad():
            return float(metagrad.meta_loss(model, fast, mx, my))

    base = {n: float(gates[n].detach()) for n in names}
    h = 1e-6
    for n, a in zip(names, auto):
        up, down = dict(base), dict(base)
        up[n] += h
        down[n] -= h
        fd = (brute(up) - brute(down)) / (2 * h)
        assert abs(fd - float(a)) < 1e-9 + 1e-5 * abs(float(a)), n
        assert abs(float(a)) > 1e-8, n


def test_grad_stat_penalty_is_per_row_mean_and_std():
    g = torch.Generator().manual_seed(0)
    t, m = torch.randn(3, 4, generator=g), torch.randn(3, 4, generator=g)
    b, c = torch.randn(3, generator=g), torch.randn(3, generator=g)
    tn, mn, bn, cn = (a.numpy().astype(np.float64) for a in (t, m, b, c))
    rows = ((tn.mean(1) - mn.mean(1)) ** 2 + (tn.std(1, ddof=1) - mn.std(1, ddof=1)) ** 2).mean()
    bias = (bn.mean() - cn.mean()) ** 2 + (bn.std(ddof=1) - cn.std(ddof=1)) ** 2
    assert float(grad_stat_penalty([t, b], [m, c])) == pytest.approx(rows + bias, rel=1e-5)


def test_grad_stat_penalty_reaches_the_meta_net():
    """L_g's gradient wrt the meta-net through the classifier's training gradient (the meta
    target held fixed, as it is detached): nonzero and equal to central differences."""
    model, vnet, x, y, mx, my = setup()
    theta = list(vnet.parameters())
    v = metagrad.virtual_step(model, x, y, weigh_with(vnet), LR)
    lm = metagrad.meta_loss(model, v.fast, mx, my)
    target = [t.detach() for t in torch.autograd.grad(lm, [v.fast[n] for n in KEPT])]
    lg = grad_stat_penalty([v.grads[n] for n in KEPT], target)
    auto = torch.autograd.grad(lg, theta)
    assert max(float(a.abs().max()) for a in auto) > 0

    def brute() -> float:
        live = plain_grads(model, vnet, x, y)
        return float(grad_stat_penalty([live[n] for n in KEPT], target))

    assert_central_differences(theta, auto, brute, atol=1e-9)


def test_learner_sends_l_g_into_the_meta_net_and_steps_samplers_with_nesterov(tmp_path):
    """In the real meta step, λ_g changes the meta-net gradient (same gates: same seed)."""
    from nlbench.testing import _build_tiny
    from nlbench_plugins.meta.rules import MetaStep

    method: Any = _build_tiny("famus", tmp_path)  # FAMUS's own attributes
    learner = next(iter(method.learners.values()))
    rule = learner.rule
    group = rule.sopt.param_groups[0]
    assert group["momentum"] == 0.9 and group["nesterov"] and group["weight_decay"] == 0
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(16, 1, 8, 8, generator=g), torch.randint(0, 10, (16,), generator=g)
    out = {}
    for lam in (0.0, 0.1):
        learner.hp["famus_lambda_g"] = lam
        learner.ctx.gen.manual_seed(1)
        step = MetaStep(x, y, x[:8], y[:8], 0.1, False, weigh_with(learner.vnet))
        out[lam] = rule.meta_grads(learner.model, step, learner.weighting).grads
    diff = sum(float((a - b).abs().sum()) for a, b in zip(out[0.0], out[0.1]))
    assert diff > 0
