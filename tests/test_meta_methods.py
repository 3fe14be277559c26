"""End-to-end runs of mwnet, l2r and famus on digits; records carry meta-set facts."""

from __future__ import annotations

import json
from typing import Any

import pytest
import torch
from helpers import assert_usage_error, run_cli

from nlbench.testing import check_method_contract

SMALL = ("--dataset", "digits", "--noise", "sym:0.4", "--train-subset", "500", "--device", "cpu")


def cli_record(capsys, tmp_path, method: str, *extra: str) -> dict:
    res = run_cli(capsys, "run", "--method", method, *SMALL, "--out", str(tmp_path), *extra)
    assert res.code == 0, res.err
    (run_dir,) = [p for p in tmp_path.iterdir() if p.name.startswith(method)]
    record = json.loads((run_dir / "run.json").read_text())
    assert record["status"] == "done"
    return record


@pytest.mark.parametrize(
    "name,overrides",
    [
        ("mwnet", {}),
        ("l2r", {}),
        ("famus", {"warmup_epochs": 1}),
        ("famus", {"warmup_epochs": 1, "mixmatch": True}),
    ],
)
def test_method_contract(name, overrides, tmp_path):
    check_method_contract(name, tmp_path, set=overrides)


def test_mwnet_cli_records_meta_set(capsys, tmp_path):
    record = cli_record(capsys, tmp_path, "mwnet", "--epochs", "4")
    info = record["method_info"]
    assert info["meta_set"]["kind"] == "clean" and info["meta_set"]["size"] == 100
    assert info["weight_norm"] == "sum" and info["famus"] is False
    assert record["data"]["meta_set"] == {"kind": "clean", "size": 100}
    assert "clean_meta" in record["flags"]
    for epoch in record["epochs"]:
        assert epoch["meta_kind"] == "clean" and epoch["meta_size_net"] == 100
        assert epoch["detection_auc"] is not None  # the meta-net's weight as a clean score
    assert record["summary"]["last_acc"] > 0.5


def test_l2r_cli_fd_and_famus(capsys, tmp_path):
    record = cli_record(capsys, tmp_path, "l2r", "--epochs", "3", "--set", "meta_grad=fd")
    assert record["method_info"]["meta_grad"] == "fd"
    assert record["summary"]["last_acc"] > 0.5
    record = cli_record(capsys, tmp_path / "f", "l2r", "--epochs", "3", "--set", "famus=true")
    assert record["method_info"]["famus"] is True
    assert "famus_layers_net" in record["epochs"][-1]


def test_famus_cli_pseudo_meta_set_and_layers(capsys, tmp_path):
    record = cli_record(capsys, tmp_path, "famus", "--epochs", "4", "--set", "warmup_epochs=2")
    info = record["method_info"]
    assert info["meta_set"]["kind"] == "pseudo" and info["networks"] == ["net1", "net2"]
    assert set(info["famus_always_kept"]) == {"fc.weight", "fc.bias"}
    warm, meta = record["epochs"][:2], record["epochs"][2:]
    assert all(e["warmup"] and e["detection_auc"] is None for e in warm)
    for e in meta:
        assert not e["warmup"] and e["meta_kind"] == "pseudo"
        assert 0 < e["meta_size_net1"] < 500 and 0 < e["meta_size_net2"] < 500
        assert e["detection_auc"] > 0.5
        for net in ("net1", "net2"):
            layers = e[f"famus_layers_{net}"]
            assert set(layers) == set(info["famus_gated_layers"])
            assert all(0.0 <= f <= 1.0 for f in layers.values())
            assert e[f"famus_mean_sampled_{net}"] > 0
    assert "two_net" in record["flags"]


def test_famus_with_clean_meta_set_and_mwnet_variants(capsys, tmp_path):
    record = cli_record(capsys, tmp_path, "famus", "--epochs", "2", "--set", "meta_set=clean:100")
    assert record["method_info"]["meta_set"] == {
        "kind": "clean",
        "size": 100,
        "source": "trusted hold-out",
    }
    record = cli_record(
        capsys,
        tmp_path / "p",
        "mwnet",
        "--epochs",
        "2",
        "--set",
        "meta_set=pseudo",
        "--set",
        "warmup_epochs=1",
        "--set",
        "famus=true",
    )
    assert record["method_info"]["meta_set"]["source"] == "own GMM"
    assert record["epochs"][1]["meta_size_net"] > 0


@pytest.mark.parametrize(
    "setting,fragment",
    [
        ("meta_set=none", "meta_set"),
        ("meta_grad=second", "meta_grad"),
        ("weight_norm=max", "weight_norm"),
        ("meta_opt=rmsprop", "meta_opt"),
    ],
)
def test_usage_errors(capsys, tmp_path, setting, fragment):
    res = run_cli(
        capsys,
        "run",
        "--method",
        "mwnet",
        *SMALL,
        "--epochs",
        "1",
        "--out",
        str(tmp_path),
        "--set",
        setting,
    )
    assert_usage_error(res, fragment)


def test_actual_step_moves_bn_stats_once_and_reuse_matches_fresh_forward(tmp_path):
    """reuse_forward=true and false give the same first update (same weights, same maths)."""
    from nlbench.testing import _build_tiny

    states = []
    for reuse in (True, False):
        torch.manual_seed(0)
        method: Any = _build_tiny("l2r", tmp_path)  # L2R's own attributes
        method.hp["reuse_forward"] = reuse
        learner = method.learners["net"]
        torch.manual_seed(1)
        x, y = torch.randn(16, 1, 8, 8), torch.randint(0, 10, (16,))
        learner.meta.draw = lambda bs: (x[:8], y[:8])
        learner.step(x, y)
        states.append({k: v.clone() for k, v in learner.model.state_dict().items()})
    for k in states[0]:
        torch.testing.assert_close(states[0][k], states[1][k], rtol=1e-4, atol=1e-5)


def test_layer_order_and_gating_follow_the_forward_pass():
    """cnn_small registers its classifier first; gating must still pick the top layers."""
    from nlbench.algorithms import metagrad
    from nlbench_plugins.meta.gated import classifier_names
    from nlbench_plugins.meta.sampler import forward_order, gated_names
    from nlbench_plugins.models_small import cnn_small

    model = cnn_small(10, 3, 32)
    order = forward_order(model, torch.zeros(2, 3, 32, 32))
    assert order[0] == "features.0.0.weight" and order[-2:] == ["fc.weight", "fc.bias"]
    kept = classifier_names(model, metagrad.trainable(model))
    gated, kept = gated_names(order, 6, kept)
    assert kept == ["fc.weight", "fc.bias"]
    assert gated == [
        "features.4.1.bias",
        "features.6.0.weight",
        "features.6.1.weight",
        "features.6.1.bias",
    ]


def test_hard_gumbel_is_binary_straight_through_with_the_prior_rate():
    from nlbench_plugins.meta.sampler import LayerSamplers, count_penalty, hard_gumbel

    logits = torch.zeros(5, 2, requires_grad=True)
    y = hard_gumbel(logits, 5.0, torch.Generator().manual_seed(0))
    assert set(y.detach().flatten().tolist()) <= {0.0, 1.0}
    y[:, 1].sum().backward()
    assert logits.grad is not None and logits.grad.abs().sum() > 0
    samplers = LayerSamplers({f"l{i}": torch.Size([3]) for i in range(12)}, k=4)
    gen = torch.Generator().manual_seed(0)
    rate = torch.stack([samplers({}, gen) for _ in range(300)]).sum(1).mean()
    assert abs(float(rate) - 4.0) < 0.4
    r = torch.tensor([1.0, 0.0, 1.0])
    assert float(count_penalty(r, 4)) == 4.0 and float(count_penalty(r, 4, quirk=True)) == 9.0


@pytest.mark.parametrize(
    ("dtype", "summed_in"),
    [
        (torch.float64, torch.float64),
        (torch.float32, torch.float32),
        (torch.bfloat16, torch.float32),
        (torch.float16, torch.float32),
    ],
)
def test_sampler_input_is_standardised_channel_sums_in_full_precision(dtype, summed_in):
    """float64 samplers (``nlbench verify famus``) read float64 sums; half-precision gradients
    are summed in float32."""
    from nlbench_plugins.meta.sampler import channel_sums

    grad = torch.arange(24, dtype=torch.float64).reshape(3, 2, 4) ** 2
    sums = grad.reshape(3, -1).sum(1)
    want = (sums - sums.mean()) / (sums.std() + 1e-9)
    got = channel_sums(grad.to(dtype), 3, "cpu")
    assert got.dtype == summed_in
    assert torch.allclose(got.double(), want, rtol=1e-2 if dtype == torch.bfloat16 else 1e-6)
    assert torch.equal(channel_sums(None, 3, "cpu"), torch.zeros(3))


def test_mwnet_jvp_meta_gradient_runs(capsys, tmp_path):
    record = cli_record(capsys, tmp_path, "mwnet", "--epochs", "2", "--set", "meta_grad=jvp")
    assert record["method_info"]["meta_grad"] == "jvp"


@pytest.mark.slow
@pytest.mark.realdata
@pytest.mark.parametrize(
    "method,overrides",
    [
        ("mwnet", {}),
        ("l2r", {}),
        ("famus", {"warmup_epochs": 1}),
        ("famus", {"warmup_epochs": 1, "mixmatch": True}),
    ],
)
def test_meta_methods_on_a_cifar10_subset(cifar_root, tmp_path, method, overrides):
    from nlbench.api import run

    record = run(
        method=method,
        dataset="cifar10",
        noise="sym:0.4",
        profile="quick",
        epochs=2,
        train_subset=2000,
        data_root=str(cifar_root),
        out=str(tmp_path),
        device="cpu",
        set=overrides,
    )
    assert record["status"] == "done", record.get("error")
    assert record["method_info"]["meta_set"]["kind"] == ("pseudo" if method == "famus" else "clean")
    assert record["summary"]["last_acc"] > 0.15, record["summary"]


def test_batches_per_epoch_draws_noise_balanced_pools(tmp_path):
    """Clothing1M's FaMUS epoch: each network trains on ``batches_per_epoch`` mini-batches of a
    fresh pool balanced by noisy label (Xu et al., FaMUS, CVPR 2021, supplement §E), not on a pass over the whole set."""
    from nlbench.core.config import RunConfig
    from nlbench.testing import build_method

    overrides = {"batches_per_epoch": 3, "batch_size": 20, "warmup_epochs": 1}
    cfg = RunConfig(
        method="famus",
        dataset="digits",
        noise="0.4",
        out=str(tmp_path),
        device="cpu",
        train_subset=500,
        overrides=overrides,
    )
    method: Any  # FAMUS's own attributes
    method, ctx = build_method(cfg)
    plan = method.start_epoch(0, ctx.scan)
    assert plan.steps == 3 * 2
    batches = list(method.epoch_batches(0, plan))
    assert [b.tag for b in batches] == ["net1"] * 3 + ["net2"] * 3
    for name, pool in method.pools.items():
        counts = torch.bincount(ctx.train.labels[pool], minlength=10)
        assert pool.numel() == 60 and int(counts.max()) <= 6  # ⌈60 / 10⌉ per noisy class
        seen = torch.cat([b.index for b in batches if b.tag == name])
        assert torch.equal(seen.sort().values, pool.sort().values)
    first = {n: p.clone() for n, p in method.pools.items()}
    method.start_epoch(1, ctx.scan)  # a fresh pool every epoch
    assert not torch.equal(first["net1"], method.pools["net1"])
    assert "noise-balanced" in method.record_info()["epoch"]


def test_famus_mixmatch_task_refines_guesses_and_mixes():
    """Refinement keeps a fully trusted label, co-guessing averages both nets, shapes follow
    the official layout ([x1, x2, u1, u2] with the labeled rows first)."""
    from contextlib import nullcontext

    from nlbench_plugins.meta.mix import MixMetaBatch, MixTask, build_task, refine_and_guess

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 4))
    peer = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 4))
    v = lambda n: torch.randn(n, 3, 2, 2)  # noqa: E731
    y = torch.tensor([0, 1, 2])
    refined, guess = refine_and_guess(net, peer, v(3), v(3), y, torch.ones(3), 4, nullcontext)
    torch.testing.assert_close(refined, torch.nn.functional.one_hot(y, 4).float())
    assert torch.allclose(guess.sum(1), torch.ones(3))
    a, b, half = v(3), v(3), torch.full((3,), 0.5)
    with_peer, _ = refine_and_guess(net, peer, a, b, y, half, 4, nullcontext)
    alone, no_guess = refine_and_guess(net, None, a, b, y, half, 4, nullcontext)
    assert no_guess is None and torch.equal(alone, with_peer)  # the meta batch needs no guess
    b = MixMetaBatch(
        v(3),
        y,
        torch.arange(3),
        weight=torch.full((3,), 0.5),
        tag="net1",
        x2=v(3),
        u1=v(5),
        u2=v(5),
        uy=torch.zeros(5, dtype=torch.long),
        uw=torch.zeros(5),
        m1=v(2),
        m2=v(2),
        my=torch.ones(2, dtype=torch.long),
        mw=torch.ones(2),
    )
    task = build_task(net, peer, b, 4, 4.0, 2.0, torch.Generator().manual_seed(1), nullcontext)
    assert isinstance(task, MixTask) and task.x.shape == (16, 3, 2, 2) and task.n_x == 6
    assert task.targets.shape == task.guess.shape == (16, 4) and task.meta_x.shape[0] == 4
    assert torch.allclose(task.targets.sum(1), torch.ones(16))
    logits = torch.randn(16, 4)
    w = torch.full((16,), 1 / 16)
    costs = task.costs(logits)
    mse = (logits.softmax(1) - task.guess).pow(2).mean(1)
    from nlbench.algorithms.mixmatch import uniform_prior_penalty

    expected = (
        2 * (w[:6] * costs[:6]).sum()
        + 2 * 2.0 * (w[6:] * mse[6:]).sum()
        + uniform_prior_penalty(logits)
    )
    torch.testing.assert_close(task.total(logits, costs, w), expected)


def test_famus_mixmatch_cli_records_the_split(capsys, tmp_path):
    record = cli_record(
        capsys,
        tmp_path,
        "famus",
        "--epochs",
        "4",
        "--set",
        "warmup_epochs=2",
        "--set",
        "mixmatch=true",
    )
    info = record["method_info"]["mixmatch"]
    assert info["lambda_u"] == 50.0 and info["alpha"] == 4.0 and info["rampup_epochs"] == 16
    warm, mix = record["epochs"][:2], record["epochs"][2:]
    assert all("labeled_net1" not in e or e["labeled_net1"] is None for e in warm)
    for e in mix:
        assert e["labeled_net1"] + e["unlabeled_net1"] == 500
        assert e["detection_auc"] is not None and "famus_layers_net2" in e
    assert [e["lambda_u"] for e in mix] == [0.0, 50.0 / 16]
    assert record["summary"]["last_acc"] > 0.3


@pytest.mark.parametrize(
    "extra,fragment",
    [
        (["--set", "meta_set=clean:50"], "mixmatch=true"),
        (["--set", "batches_per_epoch=2"], "mixmatch=true"),
    ],
)
def test_famus_mixmatch_usage_errors(capsys, tmp_path, extra, fragment):
    res = run_cli(
        capsys,
        "run",
        "--method",
        "famus",
        *SMALL,
        "--epochs",
        "1",
        "--out",
        str(tmp_path),
        "--set",
        "mixmatch=true",
        *extra,
    )
    assert_usage_error(res, fragment)
