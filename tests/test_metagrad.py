"""Meta-gradients against brute-force finite differences (float64), BN isolation, FaMUS limits."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nlbench.algorithms import metagrad
from nlbench_plugins.meta.weighting import VNet

LR = 0.3


def tiny_mlp(bn: bool = False) -> nn.Module:
    torch.manual_seed(0)
    layers = [nn.Linear(5, 7)] + ([nn.BatchNorm1d(7)] if bn else []) + [nn.Tanh(), nn.Linear(7, 3)]
    return nn.Sequential(*layers).double()


def data(n: int = 8, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 5, generator=g, dtype=torch.float64)
    y = torch.randint(0, 3, (n,), generator=g)
    return x, y


def brute_meta_loss(model, x, y, mx, my, weights: torch.Tensor) -> float:
    """L_meta(w − α ∇_w Σ W_i ℓ_i) with W fixed numbers: first-order autograd only."""
    params = {n: p.detach().requires_grad_(True) for n, p in model.named_parameters()}
    losses = metagrad.per_sample_ce(model, params, x, y)
    grads = torch.autograd.grad((weights * losses).sum(), list(params.values()))
    fast = {n: p - LR * g for (n, p), g in zip(params.items(), grads)}
    with torch.no_grad():
        return float(metagrad.meta_loss(model, fast, mx, my))


def mwnet_setup(bn: bool = False):
    model = tiny_mlp(bn)
    torch.manual_seed(3)
    vnet = VNet(hidden=4).double()
    x, y = data(8, 1)
    mx, my = data(6, 2)
    return model, vnet, x, y, mx, my


@pytest.mark.parametrize("mode", ["mean", "sum"])
@pytest.mark.parametrize("bn", [False, True])
def test_mwnet_meta_gradient_matches_finite_differences(mode, bn):
    model, vnet, x, y, mx, my = mwnet_setup(bn)
    theta = list(vnet.parameters())

    def weights(losses):
        return metagrad.normalise_weights(vnet(losses), mode)

    mg = metagrad.meta_gradient(
        model, x, y, lambda l: (weights(l.detach()) * l).sum(), theta, mx, my, LR
    )
    with torch.no_grad():
        base = metagrad.per_sample_ce(model, dict(model.named_parameters()), x, y)
    h = 1e-6
    for p, g in zip(theta, mg.grads):
        flat, gflat = p.data.view(-1), g.view(-1)
        for i in range(flat.numel()):
            old = float(flat[i])
            flat[i] = old + h
            up = brute_meta_loss(model, x, y, mx, my, weights(base).detach())
            flat[i] = old - h
            down = brute_meta_loss(model, x, y, mx, my, weights(base).detach())
            flat[i] = old
            assert abs((up - down) / (2 * h) - float(gflat[i])) < 1e-7 + 1e-5 * abs(float(gflat[i]))


@pytest.mark.parametrize("bn", [False, True])
def test_l2r_meta_gradient_matches_finite_differences(bn):
    model, _, x, y, mx, my = mwnet_setup(bn)
    eps = torch.zeros(8, dtype=torch.float64, requires_grad=True)
    mg = metagrad.meta_gradient(model, x, y, lambda l: (eps * l).sum(), [eps], mx, my, LR)
    (g,) = mg.grads
    h = 1e-6
    for i in range(8):
        e = torch.zeros(8, dtype=torch.float64)
        e[i] = h
        up = brute_meta_loss(model, x, y, mx, my, e)
        down = brute_meta_loss(model, x, y, mx, my, -e)
        assert abs((up - down) / (2 * h) - float(g[i])) < 1e-9 + 1e-5 * abs(float(g[i]))
    assert g.abs().max() > 0


@pytest.mark.parametrize("bn", [False, True])
def test_l2r_clean_cost_with_weight_decay_matches_finite_differences(bn):
    """L2R's official clean cost is CE + λ/2·‖ŵ‖²: ∂/∂ε against central differences."""
    model, _, x, y, mx, my = mwnet_setup(bn)
    decay = {n: 0.05 for n, _ in model.named_parameters()}

    def brute(e: torch.Tensor) -> float:
        params = {n: p.detach().requires_grad_(True) for n, p in model.named_parameters()}
        losses = metagrad.per_sample_ce(model, params, x, y)
        grads = torch.autograd.grad((e * losses).sum(), list(params.values()))
        fast = {n: p - LR * g for (n, p), g in zip(params.items(), grads)}
        with torch.no_grad():
            return float(metagrad.meta_loss(model, fast, mx, my, decay=decay))

    eps = torch.zeros(8, dtype=torch.float64, requires_grad=True)
    (g,) = metagrad.meta_gradient(
        model, x, y, lambda l: (eps * l).sum(), [eps], mx, my, LR, decay=decay
    ).grads
    (plain,) = metagrad.meta_gradient(
        model, x, y, lambda l: (eps * l).sum(), [eps], mx, my, LR
    ).grads
    assert (g - plain).abs().max() > 1e-4  # the decay term changes the weights
    h = 1e-6
    for i in range(8):
        e = torch.zeros(8, dtype=torch.float64)
        e[i] = h
        fd = (brute(e) - brute(-e)) / (2 * h)
        assert abs(fd - float(g[i])) < 1e-9 + 1e-5 * abs(float(g[i]))
    for mode in ("jvp", "fd"):  # the first-order paths see the same clean cost
        (d,) = metagrad.fd_meta_gradient(
            model,
            x,
            y,
            lambda _l: eps,
            [eps],
            mx,
            my,
            LR,
            lookahead=False,
            mode=mode,
            eps=1e-4,
            decay=decay,
        ).grads
        assert float(metagrad.cosine([g], [d])) > 0.999


def test_famus_with_every_layer_selected_is_exactly_mwnet():
    model, vnet, x, y, mx, my = mwnet_setup(bn=True)
    theta = list(vnet.parameters())

    def weigh(losses):
        return (metagrad.normalise_weights(vnet(losses.detach()), "sum") * losses).sum()

    full = metagrad.meta_gradient(model, x, y, weigh, theta, mx, my, LR)
    names = [n for n, _ in model.named_parameters()]
    ones = {n: torch.ones((), dtype=torch.float64, requires_grad=True) for n in names}
    v = metagrad.virtual_step(model, x, y, weigh, LR, select=names, gates=ones)
    gated = torch.autograd.grad(metagrad.meta_loss(model, v.fast, mx, my), theta)
    for a, b in zip(full.grads, gated):
        assert torch.equal(a, b)


@pytest.mark.parametrize("reuse", [False, True])
def test_batchnorm_stats_do_not_leak_from_extra_forwards(reuse):
    model, vnet, x, y, mx, my = mwnet_setup(bn=True)
    model.train()
    before = {n: b.clone() for n, b in model.named_buffers()}
    mg = metagrad.meta_gradient(
        model,
        x,
        y,
        lambda l: (vnet(l.detach()) * l).mean(),
        list(vnet.parameters()),
        mx,
        my,
        LR,
        reuse=reuse,
    )
    metagrad.fd_meta_gradient(model, x, y, vnet, list(vnet.parameters()), mx, my, LR)
    after = dict(model.named_buffers())
    if not reuse:
        for n in before:
            assert torch.equal(before[n], after[n]), n
        return
    # reuse: exactly one real forward on the training batch, as the actual step would do
    ref = tiny_mlp(bn=True)
    ref.train()
    ref(x)
    for n, b in ref.named_buffers():
        torch.testing.assert_close(after[n], b)
    mg.losses.sum().backward()  # the kept graph serves the actual step


def test_fd_meta_gradient_agrees_with_exact():
    model, vnet, x, y, mx, my = mwnet_setup(bn=True)
    theta = list(vnet.parameters())

    def weights(losses):
        return metagrad.normalise_weights(vnet(losses), "mean")

    exact = metagrad.meta_gradient(
        model, x, y, lambda l: (weights(l.detach()) * l).sum(), theta, mx, my, LR
    )
    fd = metagrad.fd_meta_gradient(model, x, y, weights, theta, mx, my, LR, eps=1e-4)
    assert float(metagrad.cosine(exact.grads, fd.grads)) > 0.999
    eps = torch.zeros(8, dtype=torch.float64, requires_grad=True)
    ex = metagrad.meta_gradient(model, x, y, lambda l: (eps * l).sum(), [eps], mx, my, LR)
    fe = metagrad.fd_meta_gradient(
        model, x, y, lambda _l: eps, [eps], mx, my, LR, lookahead=False, eps=1e-4
    )
    assert float(metagrad.cosine(ex.grads, fe.grads)) > 0.999


def test_fd_cosine_in_float32_on_a_cnn():
    torch.manual_seed(0)
    from nlbench_plugins.models_small import tiny_cnn

    model = tiny_cnn(10, 1, 8)
    vnet = VNet()
    g = torch.Generator().manual_seed(0)
    x, mx = torch.randn(32, 1, 8, 8, generator=g), torch.randn(16, 1, 8, 8, generator=g)
    y, my = torch.randint(0, 10, (32,), generator=g), torch.randint(0, 10, (16,), generator=g)
    theta = list(vnet.parameters())

    def weights(losses):
        return metagrad.normalise_weights(vnet(losses), "mean")

    exact = metagrad.meta_gradient(
        model, x, y, lambda l: (weights(l.detach()) * l).sum(), theta, mx, my, 0.1
    )
    fd = metagrad.fd_meta_gradient(model, x, y, weights, theta, mx, my, 0.1)
    assert float(metagrad.cosine(exact.grads, fd.grads)) > 0.99


def test_normalise_weights_zero_sum_guard():
    w = torch.zeros(4)
    assert torch.equal(metagrad.normalise_weights(w, "sum"), w)
    quarter = torch.full((4,), 0.25)
    torch.testing.assert_close(metagrad.normalise_weights(torch.ones(4), "sum"), quarter)
    torch.testing.assert_close(metagrad.normalise_weights(torch.ones(4), "mean"), quarter)
    with pytest.raises(ValueError):
        metagrad.normalise_weights(w, "max")


def test_per_sample_ce_matches_module_forward():
    model, _, x, y, _, _ = mwnet_setup()
    ref = F.cross_entropy(model(x), y, reduction="none")
    out = metagrad.per_sample_ce(model, dict(model.named_parameters()), x, y)
    torch.testing.assert_close(out, ref)


@pytest.mark.parametrize("bn", [False, True])
def test_jvp_meta_gradient_equals_double_backward(bn):
    """Forward-mode directional derivatives give the double backward's meta-gradient."""
    model, vnet, x, y, mx, my = mwnet_setup(bn)
    theta = list(vnet.parameters())
    before = {n: b.clone() for n, b in model.named_buffers()}

    def weights(losses):
        return metagrad.normalise_weights(vnet(losses), "sum")

    exact = metagrad.meta_gradient(
        model, x, y, lambda l: (weights(l.detach()) * l).sum(), theta, mx, my, LR
    )
    jvp = metagrad.fd_meta_gradient(model, x, y, weights, theta, mx, my, LR, mode="jvp")
    for a, b in zip(exact.grads, jvp.grads):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)
    eps = torch.zeros(8, dtype=torch.float64, requires_grad=True)
    ex = metagrad.meta_gradient(model, x, y, lambda l: (eps * l).sum(), [eps], mx, my, LR)
    je = metagrad.fd_meta_gradient(
        model, x, y, lambda _l: eps, [eps], mx, my, LR, lookahead=False, mode="jvp"
    )
    torch.testing.assert_close(ex.grads[0], je.grads[0], rtol=1e-9, atol=1e-12)
    for n, b in model.named_buffers():
        assert torch.equal(before[n], b), n
    assert all(m.track_running_stats for m in model.modules() if isinstance(m, nn.BatchNorm1d))


def test_decomposed_batch_norm_matches_native():
    torch.manual_seed(0)
    native = nn.Sequential(nn.Conv2d(2, 4, 3), nn.BatchNorm2d(4)).double()
    fast = nn.Sequential(nn.Conv2d(2, 4, 3), nn.BatchNorm2d(4)).double()
    fast.load_state_dict(native.state_dict())
    x = torch.randn(6, 2, 5, 5, dtype=torch.float64)
    for train in (True, False):
        native.train(train)
        fast.train(train)
        ref = native(x)
        with metagrad.decomposed_bn(fast):
            out = fast(x)
        torch.testing.assert_close(out, ref)
        for (n, a), (_, b) in zip(native.named_buffers(), fast.named_buffers()):
            torch.testing.assert_close(a, b, msg=n)
    assert "forward" not in vars(fast[1])  # restored


def test_mixmatch_objective_meta_gradient_matches_finite_differences():
    """FaMUS's MixMatch variant: caller-made losses and a soft-target meta objective go through
    the same look-ahead; ∂L_meta/∂ε against central differences (float64)."""
    from nlbench_plugins.meta.mix import MixTask

    model = tiny_mlp()
    x, _ = data(8)
    mx, _ = data(6, seed=3)
    g = torch.Generator().manual_seed(5)

    def soft(n: int) -> torch.Tensor:
        return torch.softmax(torch.randn(n, 3, generator=g, dtype=torch.float64), 1)

    task = MixTask(x, soft(8), soft(8), n_x=4, lambda_u=2.0, meta_x=mx, meta_targets=soft(6))
    params = dict(model.named_parameters())

    def meta_at(eps: torch.Tensor) -> float:
        logits = model(x)
        grads = torch.autograd.grad(
            task.total(logits, task.costs(logits), eps), list(params.values())
        )
        fast = {n: p - LR * gr for (n, p), gr in zip(params.items(), grads)}
        return float(task.meta(torch.func.functional_call(model, fast, (mx,))))

    eps = torch.full((8,), 0.125, dtype=torch.float64, requires_grad=True)
    logits = model(x)
    mg = metagrad.meta_gradient(
        model,
        None,
        None,
        lambda c: task.total(logits, c, eps),
        [eps],
        mx,
        None,
        LR,
        losses=task.costs(logits),
        meta_objective=task.meta,
    )
    h, fd = 1e-6, torch.zeros(8, dtype=torch.float64)
    for i in range(8):
        e = torch.zeros(8, dtype=torch.float64)
        e[i] = h
        fd[i] = (meta_at(eps.detach() + e) - meta_at(eps.detach() - e)) / (2 * h)
    torch.testing.assert_close(mg.grads[0], fd, rtol=1e-5, atol=1e-8)
    assert float(mg.meta_loss) == pytest.approx(meta_at(eps.detach()))
