"""DivideMix (plugins/method_dividemix.py): co-divide, guards, settings, contract, end to end."""

from __future__ import annotations

import io
from types import SimpleNamespace

import pytest
import torch

from nlbench.algorithms.gmm import co_divide
from nlbench.algorithms.mixmatch import linear_rampup
from nlbench.core.config import RunConfig
from nlbench.core.run_facts import NoiseSetting
from nlbench.testing import build_method, check_method_contract
from nlbench.training.data import class_balanced_pool
from nlbench.training.method import Scan
from nlbench_plugins.dividemix.settings import resolve_setting, table_entry
from nlbench_plugins.method_dividemix import MixBatch


def build(tmp_path, **overrides):
    """A DivideMix instance on 300 digits samples, with the runner's real context."""
    cfg = RunConfig(
        method="dividemix",
        dataset="digits",
        noise="0.4",
        out=str(tmp_path),
        device="cpu",
        train_subset=300,
        overrides=overrides,
    )
    return build_method(cfg)


def two_cluster_scan(n: int, clean1: torch.Tensor, clean2: torch.Tensor) -> Scan:
    """A scan where net k's losses are low exactly on ``cleank``."""
    loss1 = torch.where(clean1, 0.1, 3.0) + 0.01 * torch.arange(n) / n
    loss2 = torch.where(clean2, 0.1, 3.0) + 0.01 * torch.arange(n).flip(0) / n
    logits = torch.zeros(n, 10)
    return Scan({"net1": loss1, "net2": loss2}, {"net1": logits, "net2": logits})


# -- pure pieces -----------------------------------------------------------------------------
def test_co_divide_thresholds_and_weights():
    prob = torch.tensor([0.9, 0.1, 0.7, 0.4, 0.95, 0.2])
    pool = torch.arange(10, 16)
    split = co_divide(prob, pool, 0.5, min_labeled=1, min_unlabeled=1)
    assert split.labeled.tolist() == [10, 12, 14] and split.unlabeled.tolist() == [11, 13, 15]
    assert torch.equal(split.weight, prob[[0, 2, 4]]) and split.fallback is None


@pytest.mark.parametrize("probs", [torch.zeros(8), torch.ones(8), torch.tensor([0.9] + [0.1] * 7)])
def test_co_divide_guard_falls_back_to_the_median_split(probs):
    # empty labeled set, empty unlabeled set, and a labeled set below min_labeled
    probs = probs + torch.arange(8) * 1e-3
    split = co_divide(probs, torch.arange(8), 0.5, min_labeled=2, min_unlabeled=1)
    assert split.fallback == "median"
    assert split.labeled.numel() == 4 and split.unlabeled.numel() == 4
    assert float(probs[split.labeled].min()) >= float(probs[split.unlabeled].max())


def test_class_balanced_pool_respects_quota():
    labels = torch.cat([torch.zeros(500), torch.ones(30), torch.full((300,), 2)]).long()
    pool = class_balanced_pool(labels, 300, 3, torch.Generator().manual_seed(0))
    counts = torch.bincount(labels[pool], minlength=3).tolist()
    assert pool.unique().numel() == pool.numel()
    assert counts == [100, 30, 100]  # ⌈300 / 3⌉ per class, the small class all in
    again = class_balanced_pool(labels, 300, 3, torch.Generator().manual_seed(0))
    assert torch.equal(pool, again)


def test_linear_rampup():
    assert linear_rampup(10.0, 10, 16) == 0.0
    assert linear_rampup(18.0, 10, 16) == 0.5
    assert linear_rampup(40.0, 10, 16) == 1.0
    assert linear_rampup(3.0, 10, 16) == 0.0


@pytest.mark.parametrize(
    "dataset,noise,rate,expected",
    [
        ("cifar10", "sym", 0.2, (0.0, 0.5)),
        ("cifar10", "sym", 0.5, (25.0, 0.5)),
        ("cifar10", "sym_incl", 0.9, (50.0, 0.6)),
        ("cifar10", "asym", 0.4, (0.0, 0.5)),
        ("cifar100", "sym", 0.9, (150.0, 0.6)),
        ("cifar100", "sym", 0.6, (150.0, 0.5)),
        ("digits", "sym", 0.6, (25.0, 0.5)),
        ("clothing1m", "none", None, (0.0, 0.5)),
        ("cifar10", "instance", 0.4, (25.0, 0.5)),
    ],
)
def test_table7_entries(dataset, noise, rate, expected):
    classes = 100 if dataset == "cifar100" else 10
    assert table_entry(dataset, noise, rate, classes)[:2] == expected


def test_resolve_setting_history_penalty_and_overrides():
    def ctx(noise, rate, **hp):
        base = {"lambda_u": None, "p_threshold": None, "gmm_history": None, "conf_penalty": None}
        setting = NoiseSetting(noise, rate, f"{noise}:{rate}")
        facts = {"dataset": "cifar10", "noise_type": noise, "num_classes": 10, "noise": setting}
        return SimpleNamespace(hparams={**base, **hp}, **facts)

    high = resolve_setting(ctx("sym", 0.9))
    assert (high.gmm_history, high.conf_penalty, high.p_threshold) == (5, False, 0.6)
    assert resolve_setting(ctx("asym", 0.4)).conf_penalty is True
    custom = resolve_setting(ctx("sym", 0.5, lambda_u=7, p_threshold=0.3))
    assert (custom.lambda_u, custom.p_threshold) == (7.0, 0.3) and "set" in custom.source


EXPLICIT = {"lambda_u": 25.0, "p_threshold": 0.5}


@pytest.mark.parametrize(
    "noise,rate,hp,tuned_by",
    [
        ("sym_incl", 0.9, {}, ("lambda_u", "p_threshold", "gmm_history")),
        ("sym_incl", 0.9, EXPLICIT, ("gmm_history",)),  # the r = 0.9 rule still chose one
        ("sym_incl", 0.9, {**EXPLICIT, "gmm_history": 5}, ()),
        ("asym", 0.4, EXPLICIT, ("conf_penalty",)),  # the asym rule chose the penalty
        ("asym", 0.4, {**EXPLICIT, "conf_penalty": True}, ()),
        ("sym", 0.5, {}, ("lambda_u", "p_threshold")),
        ("pairflip", 0.4, {}, ()),  # no row: the official defaults
    ],
)
def test_noise_tuned_names_every_value_the_noise_chose(noise, rate, hp, tuned_by):
    """The flag is set exactly when some value left open was chosen from the noise; explicit
    settings of all of them are never flagged (README: honest records)."""
    from nlbench_plugins.dividemix.settings import setting_for

    base = {"lambda_u": None, "p_threshold": None, "gmm_history": None, "conf_penalty": None}
    setting = setting_for({**base, **hp}, "cifar10", 10, NoiseSetting(noise, rate, noise))
    assert setting.noise_tuned_by == tuned_by
    assert setting.noise_tuned is bool(tuned_by)


# -- the method on real (tiny) data ----------------------------------------------------------
def test_co_divide_trains_each_net_on_the_other_nets_split(tmp_path):
    method, ctx = build(tmp_path, warmup_epochs=0)
    n = len(ctx.train)
    clean1 = torch.arange(n) < n // 2  # net1 thinks the first half is clean
    clean2 = torch.arange(n) % 3 != 0  # net2 thinks two thirds are clean
    scan = two_cluster_scan(n, clean1, clean2)
    plan = method.start_epoch(0, lambda: scan)
    s1, s2 = method.splits["net1"], method.splits["net2"]
    assert torch.equal(s1.labeled, torch.nonzero(clean2).squeeze(1))  # net1 ← net2's GMM
    assert torch.equal(s2.labeled, torch.nonzero(clean1).squeeze(1))  # net2 ← net1's GMM
    assert plan.metrics["labeled_net1"] == int(clean2.sum())
    assert plan.clean_prob.shape == (n,) and plan.indices.numel() == int((clean1 | clean2).sum())
    batches = list(method.epoch_batches(0, plan))
    assert len(batches) == plan.steps
    tags = [b.tag for b in batches]
    assert tags == sorted(tags), "net1's batches come first, then net2's"
    for b in batches:
        assert isinstance(b, MixBatch) and b.x2.shape == b.x.shape and b.u2.shape == b.u1.shape
        allowed = method.splits[b.tag].labeled
        assert bool(torch.isin(b.index, allowed).all())
    out = method.train_step(batches[0])
    assert set(out) >= {"loss", "lx", "lu", "penalty"} and torch.isfinite(out["loss"])


def test_empty_labeled_set_is_guarded_in_the_method(tmp_path):
    method, ctx = build(tmp_path, warmup_epochs=0)
    n = len(ctx.train)
    none = torch.zeros(n, dtype=torch.bool)
    scan = two_cluster_scan(n, none, none)
    # τ = 1: no posterior exceeds it, so the thresholded labeled set is empty
    method.setting = method.setting.__class__(25.0, 1.0, 1, False, "test")
    plan = method.start_epoch(0, lambda: scan)
    assert plan.metrics["split_fallback_net1"] == "median"
    assert plan.metrics["labeled_net1"] == n // 2
    batches = method.epoch_batches(0, plan)
    assert torch.isfinite(method.train_step(next(batches))["loss"])


def test_extra_state_roundtrips_with_weights_only(tmp_path):
    method, ctx = build(tmp_path, warmup_epochs=0, gmm_history=3)
    n = len(ctx.train)
    scan = two_cluster_scan(n, torch.arange(n) < 100, torch.arange(n) < 200)
    method.start_epoch(0, lambda: scan)
    buf = io.BytesIO()
    torch.save(method.extra_state(), buf)
    buf.seek(0)
    other, _ = build(tmp_path, warmup_epochs=0, gmm_history=3)
    other.load_extra_state(torch.load(buf, weights_only=True))
    assert torch.equal(other.splits["net2"].labeled, method.splits["net2"].labeled)
    assert len(other.history["net1"]) == 1


def test_method_contract():
    check_method_contract("dividemix")


def test_method_contract_past_warmup_records_selection(tmp_path):
    record = check_method_contract("dividemix", tmp_path, set={"warmup_epochs": 1})
    last = record["epochs"][-1]
    assert last["phase"] == "train" and last["labeled_net1"] > 0
    assert 0.0 <= last["detection_auc"] <= 1.0 and last["selected_precision"] is not None
    assert record["flags"] == ["noise_tuned", "two_net"]


@pytest.mark.slow
def test_dividemix_beats_erm_on_digits_at_60_percent_noise(tmp_path):
    """Same budget (digits quick profile: tiny_cnn, 30 epochs, batch 64), three seeds."""
    from nlbench.engine.runner import run

    for seed in (0, 1, 2):
        accs = {
            m: run(
                method=m, dataset="digits", noise="0.6", seed=seed, device="cpu", out=str(tmp_path)
            )["summary"]["last_acc"]
            for m in ("erm", "dividemix")
        }
        assert accs["dividemix"] > accs["erm"] + 0.1, accs


def test_clothing1m_variant_uses_class_balanced_pools(tmp_path):
    method, ctx = build(tmp_path, warmup_epochs=1, batches_per_epoch=2, batch_size=32)
    plan = method.start_epoch(0, lambda: None)  # warm-up: 2 × 32 × 2 samples per net
    assert all(p.numel() == 128 for p in method.pools.values())
    assert plan.steps == 2 * 2 and len(list(method.epoch_batches(0, plan))) == 4
    n = len(ctx.train)
    scan = two_cluster_scan(n, torch.arange(n) % 2 == 0, torch.arange(n) % 3 != 0)
    plan = method.start_epoch(1, lambda: scan)
    for name, peer in (("net1", "net2"), ("net2", "net1")):
        split, pool = method.splits[name], method.pools[peer]
        assert split.labeled.numel() + split.unlabeled.numel() == pool.numel() == 64
        assert bool(torch.isin(split.labeled, pool).all())
    assert plan.clean_prob is None  # a pool covers part of the set: no whole-set AUC
