"""Loss plugins: closed forms of GCE and SCE, the loss hparam on single-network methods."""

from __future__ import annotations

import math

import pytest
import torch
from helpers import unbuilt

from nlbench.core.errors import UsageError
from nlbench.host import plugins


@pytest.fixture(scope="module")
def host():
    plugins.reset()
    yield plugins.load_plugins()
    plugins.reset()


LOGITS = torch.tensor([[2.0, 0.5, -1.0], [0.0, 0.0, 0.0], [-3.0, 1.0, 4.0]])
LABELS = torch.tensor([0, 2, 1])


def _p_y() -> list[float]:
    """p_y by hand: exp(z_y) / sum exp(z)."""
    out = []
    for row, y in zip(LOGITS.tolist(), LABELS.tolist()):
        out.append(math.exp(row[y]) / sum(math.exp(z) for z in row))
    return out


def test_losses_registered_with_citations(host):
    reg = host.registry("losses")
    assert {"ce", "gce", "sce", "gce_warmup"} <= set(reg.names())
    assert "Zhang & Sabuncu" in reg.get("gce").citation
    assert "Symmetric Cross Entropy" in reg.get("sce").citation
    from nlbench.core.hparam_types import defaults

    assert defaults(reg.get("gce").hparams) == {"q": 0.7}
    assert defaults(reg.get("sce").hparams) == {"alpha": 0.1, "beta": 1.0}
    assert defaults(reg.get("gce_warmup").hparams) == {"q": 0.7, "ce_epochs": 10}


def test_ce_is_minus_log_p_y(host):
    loss = host.get("losses", "ce").factory({})(LOGITS, LABELS)
    assert torch.allclose(loss, torch.tensor([-math.log(p) for p in _p_y()]))


@pytest.mark.parametrize("q", [0.7, 1.0, 0.3])
def test_gce_closed_form(host, q):
    loss = host.get("losses", "gce").factory({"q": q})(LOGITS, LABELS)
    expected = torch.tensor([(1 - p**q) / q for p in _p_y()])
    assert torch.allclose(loss, expected, atol=1e-6)


def test_gce_limits_are_mae_and_ce(host):
    """q = 1: MAE up to a factor 2 (1 - p_y); q → 0: CE."""
    p = torch.tensor(_p_y())
    mae = host.get("losses", "gce").factory({"q": 1.0})(LOGITS, LABELS)
    assert torch.allclose(mae, 1 - p, atol=1e-6)
    near_ce = host.get("losses", "gce").factory({"q": 1e-4})(LOGITS, LABELS)
    assert torch.allclose(near_ce, -p.log(), atol=1e-3)


def test_gce_rejects_q_out_of_range(host):
    with pytest.raises(UsageError, match="0 < q <= 1"):
        host.get("losses", "gce").factory({"q": 0.0})


def test_sce_closed_form_with_log_zero_minus_four(host):
    """RCE = -sum_k p_k log y_k with log 0 = -4: 4 (1 - p_y)."""
    alpha, beta = 0.1, 1.0
    loss = host.get("losses", "sce").factory({"alpha": alpha, "beta": beta})(LOGITS, LABELS)
    expected = []
    for row, y in zip(LOGITS.tolist(), LABELS.tolist()):
        p = [math.exp(z) / sum(math.exp(v) for v in row) for z in row]
        rce = -sum(pk * (0.0 if k == y else -4.0) for k, pk in enumerate(p))
        expected.append(alpha * -math.log(p[y]) + beta * rce)
    assert torch.allclose(loss, torch.tensor(expected), atol=1e-6)


def test_gce_gradient_matches_finite_differences(host):
    fn = host.get("losses", "gce").factory({"q": 0.7})
    z = LOGITS.clone().double().requires_grad_(True)
    fn(z, LABELS).sum().backward()
    eps, num = 1e-6, torch.zeros_like(z)
    for i in range(z.shape[0]):
        for j in range(z.shape[1]):
            hi, lo = z.detach().clone(), z.detach().clone()
            hi[i, j] += eps
            lo[i, j] -= eps
            num[i, j] = (fn(hi, LABELS).sum() - fn(lo, LABELS).sum()) / (2 * eps)
    assert z.grad is not None and torch.allclose(z.grad, num, atol=1e-6)


def test_loss_hparams_join_the_run_only_with_their_loss(host):
    from nlbench.core.config import RunConfig
    from nlbench.core.hparams import resolve_hparams

    erm, digits = host.get("methods", "erm"), host.get("datasets", "digits")
    plain = resolve_hparams(erm, digits, RunConfig(), host)
    assert plain["loss"] is None and "q" not in plain
    gce = resolve_hparams(erm, digits, RunConfig(overrides={"loss": "gce", "q": 0.5}), host)
    assert (gce["loss"], gce["q"]) == ("gce", 0.5)
    sce = resolve_hparams(erm, digits, RunConfig(overrides={"loss": "sce"}), host)
    assert (sce["alpha"], sce["beta"]) == (0.1, 1.0) and "q" not in sce
    with pytest.raises(UsageError, match="unknown --set key.*q"):
        resolve_hparams(erm, digits, RunConfig(overrides={"loss": "sce", "q": 0.5}), host)
    with pytest.raises(UsageError, match="unknown loss 'gcee'"):
        resolve_hparams(erm, digits, RunConfig(overrides={"loss": "gcee"}), host)
    with pytest.raises(UsageError, match="q"):  # typed: GCE declares 0 < q <= 1
        resolve_hparams(erm, digits, RunConfig(overrides={"loss": "gce", "q": 1.5}), host)
    with pytest.raises(UsageError, match="beta"):
        resolve_hparams(erm, digits, RunConfig(overrides={"loss": "sce", "beta": "x"}), host)


def test_composed_methods_take_a_loss(host):
    from nlbench.core.config import RunConfig
    from nlbench.core.hparams import resolve_hparams

    spec, digits = host.get("methods", "fl_only"), host.get("datasets", "digits")
    hp = resolve_hparams(spec, digits, RunConfig(overrides={"loss": "gce"}), host)
    assert hp["q"] == 0.7 and hp["selector"] == "fl"


def test_erm_trains_with_the_chosen_loss(nlbench_run):
    record = nlbench_run("erm", "0.4", overrides={"loss": "sce", "beta": 0.5})
    hp = record["config"]["hparams"]
    assert (hp["loss"], hp["alpha"], hp["beta"]) == ("sce", 0.1, 0.5)
    assert record["status"] == "done" and record["summary"]["last_acc"] > 0.3


# -- epoch-aware losses: set_epoch ------------------------------------------------------------
def test_gce_warmup_is_ce_until_ce_epochs_then_gce(host):
    fn = host.get("losses", "gce_warmup").factory({"q": 0.5, "ce_epochs": 2})
    ce = host.get("losses", "ce").factory({})(LOGITS, LABELS)
    gce = host.get("losses", "gce").factory({"q": 0.5})(LOGITS, LABELS)
    assert torch.equal(fn(LOGITS, LABELS), ce)  # never told: epoch 0
    fn.set_epoch(1)
    assert torch.equal(fn(LOGITS, LABELS), ce)
    fn.set_epoch(2)
    assert torch.equal(fn(LOGITS, LABELS), gce)
    fn.set_epoch(0)  # told again (a rerun from the start): CE again
    assert torch.equal(fn(LOGITS, LABELS), ce)


def test_method_set_epoch_reaches_its_loss_and_spares_old_ones():
    from types import SimpleNamespace

    from nlbench.training.method import Method, tell_epoch

    seen: list[int] = []

    class Loss:
        def set_epoch(self, epoch: int) -> None:
            seen.append(epoch)

    method = Method(SimpleNamespace(hparams={}))  # type: ignore[arg-type]
    method.set_epoch(0)  # no loss_fn: nothing to tell
    method.loss_fn = lambda logits, labels: logits  # type: ignore[attr-defined]
    method.set_epoch(1)  # a loss without set_epoch: left alone
    method.loss_fn = Loss()  # type: ignore[attr-defined]
    method.set_epoch(2)
    tell_epoch(object(), 3)  # a duck-typed method without set_epoch: nothing
    tell_epoch(method, 4)
    assert seen == [2, 4]


def test_runner_tells_the_loss_each_epoch_and_resume_keeps_it(tmp_path):
    """CE in epoch 0, GCE (bounded by 1/q) in epoch 1; killed in epoch 1 and resumed, the
    resumed epoch is GCE again (check_resume compares it with the uninterrupted run)."""
    from nlbench.testing import check_method_contract

    q = 0.7
    overrides = {"loss": "gce_warmup", "ce_epochs": 1, "q": q}
    record = check_method_contract("erm", tmp_path, overrides=overrides)
    first, second = (e["train_loss"] for e in record["epochs"])
    assert first > 1 / q  # CE near log(10) ≈ 2.3 at the start: above what GCE can reach
    assert second <= 1 / q
    assert record["config"]["hparams"]["ce_epochs"] == 1


# -- a loss's own settings are checked, and check_bad_hparams reaches them --------------------
@pytest.mark.parametrize(
    "method, loss, bad",
    [
        ("erm", "gce", {"q": [0, -0.5, 1.5, "x", None, float("nan")]}),
        ("erm", "sce", {"alpha": [-1, "a", float("inf")], "beta": [-0.1, 1e4, True]}),
        ("erm", "gce_warmup", {"ce_epochs": [-1, 1.5, "x"], "q": [2]}),
        ("fl_only", "gce", {"q": [0, 1.01]}),  # a composed method: the same declarations
    ],
)
def test_bad_loss_settings_are_usage_errors(host, method, loss, bad):
    from nlbench.testing import check_bad_hparams

    check_bad_hparams(method, bad, settings={"loss": loss})


def test_check_bad_hparams_refuses_a_key_the_run_does_not_have(host):
    """Without its loss, ``q`` is an unknown key: that error must not pass for a range check."""
    from nlbench.testing import check_bad_hparams

    with pytest.raises(AssertionError, match="'q' is not a setting of this run"):
        check_bad_hparams("erm", {"q": [1.5]})
    with pytest.raises(AssertionError, match="'q' is not a setting"):
        check_bad_hparams("erm", {"q": [1.5]}, settings={"loss": "sce"})


def test_check_bad_hparams_catches_an_unchecked_loss_setting():
    """A loss plugin declaring ``q`` as a plain default has no range: 1.5 is accepted, and
    the helper says so."""
    import types

    from nlbench.api import LossSpec, hookimpl
    from nlbench.host import plugins as plugins_mod
    from nlbench.testing import check_bad_hparams

    module = types.ModuleType("zz_loose_loss")

    @hookimpl
    def register_losses(register):
        register(LossSpec("zz_loose", "t", unbuilt, hparams={"q": 0.7}))

    module.register_losses = register_losses  # type: ignore[attr-defined]
    plugins_mod.reset()
    try:
        plugins_mod.load_plugins(extra=[("zz_loose_loss", module)])
        check_bad_hparams("erm", {"q": ["x"]}, settings={"loss": "zz_loose"})  # typed: a float
        with pytest.raises(pytest.fail.Exception, match="q=1.5 was accepted"):
            check_bad_hparams("erm", {"q": [1.5]}, settings={"loss": "zz_loose"})
    finally:
        plugins_mod.reset()


@pytest.mark.parametrize(
    "args, fragments",
    [
        (["run", "--set", "loss=gce", "--set", "q=1.5"], ("q=1.5", "accepted", "(0, 1]")),
        (["run", "--set", "loss=sce", "--set", "alpha=-1"], ("alpha=-1", "accepted", "[0, 1000]")),
        (["sweep", "--set", "loss=gce", "--grid", "q=0.5,0", "--dry-run"], ("q=0", "(0, 1]")),
    ],
)
def test_cli_bad_loss_setting_is_one_line_exit_2(capsys, tmp_path, args, fragments):
    from helpers import assert_usage_error, run_cli

    result = run_cli(capsys, *args, "--out", str(tmp_path / "runs"))
    assert_usage_error(result, *fragments)
    assert not (tmp_path / "runs").exists()  # refused before any run started
