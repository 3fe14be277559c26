"""The baselines (coteaching, jocor, elr, forward, confident_learning): their pieces against
brute force and closed forms on tiny tensors, their flags and bad input."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from nlbench.api import NoiseSetting, UsageError
from nlbench.testing import check_bad_hparams
from nlbench_plugins.baselines.small_loss import (
    forget_rate,
    num_remember,
    small_loss,
    symmetric_kl,
)
from nlbench_plugins.baselines.transition import anchor_transition, forward_loss, row_normalised
from nlbench_plugins.method_coteaching import noise_tau, tuned_flags
from nlbench_plugins.method_elr import elr_regulariser, resolve

NEW = ("coteaching", "jocor", "elr", "forward", "confident_learning")


@pytest.mark.parametrize("tau,tk,c", [(0.2, 10, 1.0), (0.6, 5, 2.0), (0.45, 15, 0.5)])
def test_forget_rate_is_the_official_schedule_one_epoch_on(tau, tk, c):
    official = np.ones(40) * tau  # bhanML/Co-teaching main.py, trained from its epoch 1 on
    official[:tk] = np.linspace(0, tau**c, tk)
    ours = [forget_rate(e, tau, tk, c) for e in range(39)]
    np.testing.assert_allclose(ours, official[1:], rtol=1e-12)


def test_small_loss_keeps_the_smallest_and_at_least_one():
    loss = torch.tensor([0.5, 0.1, 0.9, 0.1, 0.3])
    assert small_loss(loss, 3).tolist() == [1, 3, 4]
    assert num_remember(5, 0.2) == 4 and num_remember(128, 0.6) == int(0.4 * 128)
    assert num_remember(3, 0.99) == 1


def test_symmetric_kl_is_the_sum_of_both_divergences():
    a, b = torch.randn(6, 4, dtype=torch.float64), torch.randn(6, 4, dtype=torch.float64)
    p, q = a.softmax(1), b.softmax(1)
    brute = (q * (q.log() - p.log())).sum(1) + (p * (p.log() - q.log())).sum(1)
    torch.testing.assert_close(symmetric_kl(a, b), brute)


def test_forget_rate_comes_from_the_noise_only_when_unset():
    sym = NoiseSetting("sym", 0.4, "sym:0.4")
    assert noise_tau({"forget_rate": None}, sym) == (0.4, True)
    assert noise_tau({"forget_rate": 0.3}, sym) == (0.3, False)
    asym = NoiseSetting("asym", 0.4, "asym:0.4")
    assert noise_tau({"forget_rate": None}, asym, halve_asym=True) == (0.2, True)
    assert tuned_flags({"forget_rate": None}, sym, None) == {"noise_tuned"}
    assert tuned_flags({"forget_rate": 0.2}, sym, None) == set()
    real = NoiseSetting("cifar_n", None, "cifar_n:worse")
    assert noise_tau({"forget_rate": None}, real, realized=0.4021) == (0.4021, True)
    with pytest.raises(UsageError, match="forget_rate"):
        noise_tau({"forget_rate": None}, real)


def test_elr_regulariser_and_settings():
    logits = torch.randn(5, 3, dtype=torch.float64)
    target = torch.rand(5, 3, dtype=torch.float64)
    p = logits.softmax(1).clamp(1e-4, 1 - 1e-4)
    brute = torch.log(1 - (target * p).sum(1)).mean()
    torch.testing.assert_close(elr_regulariser(logits, target), brute)
    sym = NoiseSetting("sym", 0.4, "sym:0.4")
    assert resolve({}, "cifar10", sym) == (0.7, 3.0, False)
    assert resolve({}, "cifar100", sym) == (0.9, 7.0, False)
    assert resolve({}, "cifar10", NoiseSetting("asym", 0.4, "asym:0.4")) == (0.9, 1.0, True)
    assert resolve({"elr_beta": 0.5, "elr_lambda": 2.0}, "digits", sym) == (0.5, 2.0, False)


def _numpy_anchors(probs: np.ndarray, percentile: float | None) -> np.ndarray:
    """The official estimator (models.py NoiseEstimator.fit, then predict() with its
    row_normalize=True), re-stated with numpy: the filter writes through a view."""
    eta = probs.copy()
    T = np.empty((eta.shape[1], eta.shape[1]))
    for i in range(eta.shape[1]):
        if percentile is None:
            best = np.argmax(eta[:, i])
        else:
            robust = eta[:, i]  # a view, as the official code's
            robust[robust >= np.percentile(eta[:, i], percentile, method="higher")] = 0.0
            best = np.argmax(robust)
        T[i] = eta[best]
    return T / T.sum(1, keepdims=True)


@pytest.mark.parametrize("percentile", [97.0, 50.0, None])
def test_anchor_transition_matches_the_official_rule(percentile):
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(4), size=200)
    ours = anchor_transition(torch.from_numpy(probs), percentile).numpy()
    np.testing.assert_allclose(
        ours, _numpy_anchors(probs.astype(np.float32), percentile), rtol=1e-6
    )


def test_forward_loss_is_the_noisy_label_likelihood():
    logits = torch.randn(4, 3, dtype=torch.float64)
    T = row_normalised(torch.tensor([[8.0, 2, 0], [1, 9, 0], [0, 0, 0]]))
    assert T[2].tolist() == [0.0, 0.0, 1.0]  # an empty row: the identity's
    y = torch.tensor([0, 1, 2, 1])
    brute = -torch.log((logits.softmax(1) @ T.double())[torch.arange(4), y])
    torch.testing.assert_close(forward_loss(logits, y, T.double()), brute)
    eye = torch.eye(3, dtype=torch.float64)
    torch.testing.assert_close(
        forward_loss(logits, y, eye), F.cross_entropy(logits, y, reduction="none")
    )


def test_bad_hyper_parameters_are_refused_naming_the_key():
    check_bad_hparams("coteaching", {"forget_rate": [1.0, -0.1, "x"], "num_gradual": [-1]})
    check_bad_hparams("jocor", {"co_lambda": [1.5, "a"]})
    check_bad_hparams("elr", {"elr_beta": [1.0], "elr_lambda": [-1]})
    check_bad_hparams("forward", {"transition": ["true"], "anchor_percentile": [101]})
    check_bad_hparams("confident_learning", {"cv_folds": [1], "filter_by": ["nope"]})


# -- one step of each method, on the runner's own context ----------------------------------------
def _built(method: str, **overrides):
    from nlbench.core.config import RunConfig
    from nlbench.testing import build_method

    cfg = RunConfig(
        method=method,
        dataset="digits",
        noise="sym:0.4",
        device="cpu",
        epochs=2,
        train_subset=200,
        overrides=overrides,
    )
    return build_method(cfg)


def _batch(ctx, n: int = 32):
    from nlbench.api import Batch

    index = torch.arange(n)
    return Batch(ctx.train.plain(index), ctx.train.labels[index], index)


def test_coteaching_trains_each_net_on_its_peers_small_loss_samples():
    import copy

    torch.manual_seed(0)
    method, ctx = _built("coteaching", num_gradual=0)  # τ = 0.4 from the first step
    method.start_epoch(5, None)
    batch = _batch(ctx)
    net1 = copy.deepcopy(method.nets["net1"])
    net2 = copy.deepcopy(method.nets["net2"])
    net1.train(), net2.train()
    l1, l2 = net1(batch.x), net2(batch.x)
    ce2 = F.cross_entropy(l2, batch.y, reduction="none")
    keep = int(0.6 * 32)
    by2 = torch.argsort(ce2.detach(), stable=True)[:keep]  # net 2's small-loss samples
    expected = F.cross_entropy(l1[by2], batch.y[by2])
    grad = torch.autograd.grad(expected, list(net1.parameters()))
    lr = method.opts["net1"].param_groups[0]["lr"]
    before = [p.detach().clone() for p in method.nets["net1"].parameters()]
    out = method.train_step(batch)
    torch.testing.assert_close(out["loss_net1"], expected.detach())
    # SGD's first step with momentum 0.9 and weight decay is p − lr·(g + wd·p)
    wd = method.opts["net1"].param_groups[0]["weight_decay"]
    for p, p0, g in zip(method.nets["net1"].parameters(), before, grad):
        torch.testing.assert_close(p.detach(), p0 - lr * (g + wd * p0), rtol=1e-4, atol=1e-6)
    assert int(out["selected"].sum()) >= keep


def test_jocor_selects_on_the_joint_loss_and_updates_both_nets():
    torch.manual_seed(0)
    method, ctx = _built("jocor", num_gradual=0, co_lambda=0.3)
    method.start_epoch(5, None)
    batch = _batch(ctx)
    with torch.no_grad():
        l1, l2 = method.nets["net1"](batch.x), method.nets["net2"](batch.x)
    ce = F.cross_entropy(l1, batch.y, reduction="none") + F.cross_entropy(
        l2, batch.y, reduction="none"
    )
    joint = 0.7 * ce + 0.3 * symmetric_kl(l1, l2)
    keep = int(0.6 * 32)
    expected = torch.sort(joint).values[:keep].mean()
    before = [p.detach().clone() for net in method.nets.values() for p in net.parameters()]
    out = method.train_step(batch)
    torch.testing.assert_close(out["loss"], expected, rtol=1e-5, atol=1e-6)
    after = [p.detach() for net in method.nets.values() for p in net.parameters()]
    assert all(not torch.equal(a, b) for a, b in zip(after, before))
    assert int(out["selected"].sum()) == keep


def test_elr_targets_are_an_ema_of_the_predictions():
    method, ctx = _built("elr", elr_beta=0.5)
    batch = _batch(ctx, 8)
    with torch.no_grad():
        p = method.model(batch.x).softmax(1).clamp(1e-4, 1 - 1e-4)
    method.train_step(batch)
    first = 0.5 * p / p.sum(1, keepdim=True)
    torch.testing.assert_close(method.target[batch.index], first, rtol=1e-5, atol=1e-6)
    assert method.target[8:].abs().sum() == 0  # only the visited rows moved


def test_confident_learning_flags_what_cleanlab_flags(tmp_path):
    from cleanlab.filter import find_label_issues

    method, ctx = _built("confident_learning", cv_folds=2, cv_epochs=1)
    folds = method.holdout
    assert sorted(np.concatenate(folds).tolist()) == list(range(200))
    for unit in range(2):
        method._fold_unit(unit)
    labels = ctx.train.labels.numpy()
    probs = method.oof.double().numpy()
    expected = find_label_issues(labels, probs / probs.sum(1, keepdims=True), n_jobs=1)
    assert method.issues.numpy().tolist() == expected.tolist()
    plan = method.start_epoch(0, None)
    assert plan.indices.tolist() == np.flatnonzero(~expected).tolist()
    torch.testing.assert_close(
        plan.clean_prob,
        torch.tensor(probs[np.arange(200), labels]).float() / torch.tensor(probs.sum(1)).float(),
    )


# -- end to end through the CLI ------------------------------------------------------------------
@pytest.mark.parametrize("method", NEW)
def test_each_method_trains_on_digits_through_the_cli(tmp_path, capsys, method):
    from helpers import run_cli

    args = ["run", "-m", method, "-d", "digits", "-n", "sym:0.4", "--epochs", "2"]
    args += ["--train-subset", "300", "--device", "cpu", "--out", str(tmp_path), "--json"]
    if method in ("forward", "confident_learning"):
        args += ["--set", "estimate_epochs=2" if method == "forward" else "cv_epochs=1"]
    result = run_cli(capsys, *args)
    assert result.code == 0, result.err
    import json

    record = json.loads(result.out)
    assert record["status"] == "done" and len(record["epochs"]) == 2
    assert ("noise_tuned" in record["flags"]) == (method in ("coteaching", "jocor"))
    if method in ("forward", "confident_learning"):
        assert set(record["phases"]) == {"estimate_t" if method == "forward" else "kfold"}


def test_the_oracle_transition_is_flagged_and_uses_the_true_noise(tmp_path):
    from nlbench.testing import tiny_run

    record = tiny_run(tmp_path, "forward", set={"transition": "oracle"})
    assert "oracle_noise" in record["flags"] and "phases" not in record
    counts = np.array(record["noise"]["transition_matrix"], dtype=float)
    used = np.array(record["epochs"][0]["transition_used"])
    np.testing.assert_allclose(used, counts / counts.sum(1, keepdims=True), atol=1e-4)


def test_the_oracle_variant_resumes_to_the_uninterrupted_run(tmp_path):
    """The contract test runs forward's default (estimated T); the oracle variant has no phase
    and its T comes from the run's labels, so it gets its own SIGKILL-and-resume check."""
    from nlbench.testing import check_resume, one_thread, tiny_run

    oracle: dict[str, Any] = {"set": {"transition": "oracle"}}
    with one_thread():
        reference = tiny_run(tmp_path, "forward", **oracle)
        resumed = check_resume("forward", tmp_path, reference, **oracle)
    assert "oracle_noise" in resumed["flags"] and "phases" not in resumed


def test_the_kfold_phase_shows_in_the_progress_output(tmp_path):
    from helpers import run_cli_subprocess

    result = run_cli_subprocess(
        "run",
        "-m",
        "confident_learning",
        "-d",
        "digits",
        "-n",
        "sym:0.4",
        "--epochs",
        "1",
        "--train-subset",
        "200",
        "--device",
        "cpu",
        "--out",
        str(tmp_path),
        "--set",
        "cv_folds=2",
        "--set",
        "cv_epochs=1",
    )
    assert result.code == 0, result.err
    assert "phase kfold: 2 units before the first epoch" in result.err


def test_real_noise_takes_the_realized_rate_as_tau(tmp_path):
    from nlbench.api import build_dataset
    from nlbench.testing import tiny_run

    clean = build_dataset("digits").train.y.numpy()
    labels = clean.copy()
    labels[::4] = (labels[::4] + 1) % 10  # a quarter wrong, no nominal rate
    np.save(tmp_path / "labels.npy", labels)
    record = tiny_run(tmp_path, "coteaching", f"file:{tmp_path / 'labels.npy'}", epochs=1)
    assert "noise_tuned" in record["flags"]
    assert record["method_info"]["tau"] == pytest.approx(record["noise"]["realized_rate"])


def test_more_folds_than_any_class_has_samples_is_one_usage_error(tmp_path, capsys):
    from helpers import assert_usage_error, run_cli

    result = run_cli(
        capsys,
        "run",
        "-m",
        "confident_learning",
        "-d",
        "digits",
        "-n",
        "sym:0.4",
        "--train-subset",
        "30",
        "--set",
        "cv_folds=20",
        "--epochs",
        "1",
        "--device",
        "cpu",
        "--out",
        str(tmp_path),
    )
    assert_usage_error(result, "cv_folds=20")
