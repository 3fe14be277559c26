"""What a run reports: per-batch selections scored, fit metrics from the tested predictor,
observers that add keys but cannot change results."""

from __future__ import annotations

import types

import pytest
import torch

from nlbench import hookimpl
from nlbench.core.errors import PluginError
from nlbench.core.specs import MethodSpec
from nlbench.host import plugins
from nlbench.training.method import SINGLE_NET_HPARAMS, Method, Scan, SingleNetMethod
from nlbench.training.metrics import BatchSelection, predictor_logits


def test_batch_selection_matches_brute_force():
    gen = torch.Generator().manual_seed(0)
    clean = torch.randint(0, 3, (50,), generator=gen)
    noisy = torch.where(torch.rand(50, generator=gen) < 0.4, (clean + 1) % 3, clean)
    sel = BatchSelection(noisy, clean)
    batches = [torch.arange(0, 20), torch.arange(20, 50)]
    picks = [batches[0][::2], batches[1][noisy[20:50] == clean[20:50]]]
    sel.add(batches[0], picks[0])
    mask = torch.zeros(30, dtype=torch.bool)
    mask[noisy[20:50] == clean[20:50]] = True
    sel.add(batches[1], mask)  # a boolean mask over the batch counts the same
    picked = torch.cat(picks)
    correct = noisy == clean
    out = sel.metrics()
    assert out["batch_selected"] == picked.numel()
    assert out["batch_selected_frac"] == pytest.approx(picked.numel() / 50)
    assert out["batch_selected_precision"] == pytest.approx(correct[picked].float().mean().item())
    assert out["batch_selected_recall"] == pytest.approx(
        correct[picked].sum().item() / correct.sum().item()
    )
    assert BatchSelection(noisy, clean).metrics() == {}


class SmallLoss(SingleNetMethod):
    """Trains on the smaller-loss half of every batch and reports it."""

    def train_step(self, batch):
        self.model.train()
        logits = self.model(batch.x)
        loss = self.loss_fn(logits.float(), batch.y)
        keep = loss.detach().argsort()[: max(1, len(loss) // 2)]
        self.optimizer.zero_grad(set_to_none=True)
        loss[keep].mean().backward()
        self.optimizer.step()
        return {"loss": loss[keep].detach().mean(), "selected": batch.index[keep]}


class OneOfTwo(SingleNetMethod):
    """Predicts with the negated logits: fit metrics must follow predict, not the scan."""

    @torch.no_grad()
    def predict(self, x):
        return -self.model(x).float()


@hookimpl
def register_methods(register):
    register(MethodSpec("zz_small_loss", "test", SmallLoss, default_hparams=SINGLE_NET_HPARAMS))
    register(MethodSpec("zz_negated", "test", OneOfTwo))


@pytest.fixture
def test_methods():
    plugins.reset()
    plugin = types.SimpleNamespace(register_methods=register_methods)
    plugins.load_plugins(extra=[("zz_methods", plugin)])
    yield
    plugins.reset()


def test_per_batch_selection_is_scored(test_methods, nlbench_run):
    record = nlbench_run("zz_small_loss", "sym:0.6", epochs=2)
    for epoch in record["epochs"]:
        assert epoch["batch_selected_frac"] == pytest.approx(0.5, abs=0.05)
        assert 0.0 <= epoch["batch_selected_precision"] <= 1.0
        assert 0.0 <= epoch["batch_selected_recall"] <= 1.0
    assert "batch_selected" not in nlbench_run("erm", "sym:0.6", epochs=1)["epochs"][0]


def test_fit_metrics_use_the_tested_predictor():
    class Fake(Method):
        def __init__(self):
            pass

        def networks(self):
            return {}

    scan = Scan({}, {"a": torch.ones(3, 2), "b": torch.ones(3, 2)})
    logits = predictor_logits(Fake(), lambda: scan.ensemble_logits(), None, 8)
    assert torch.equal(logits, torch.full((3, 2), 2.0))


def test_fit_metrics_follow_an_overridden_predict(test_methods, nlbench_run):
    """predict = -logits is wrong on (almost) every sample, on test and train alike; fit
    metrics from the scan's logits would say the network fits its labels (~0.8)."""
    record = nlbench_run("zz_negated", "none", epochs=2)
    last = record["epochs"][-1]
    assert last["test_acc"] < 0.3 and last["train_acc_noisy"] < 0.3


@pytest.fixture
def observer(request):
    plugins.reset()
    plugins.load_plugins(extra=[("bad_observer", types.SimpleNamespace(**request.param))])
    yield
    plugins.reset()


@hookimpl
def _rewrites(run, epoch, metrics):
    return {"test_acc": 1.0}


@hookimpl(specname="epoch_finished")
def _mutates(metrics):
    metrics["test_acc"] = 1.0
    metrics.clear()


@pytest.mark.parametrize("observer", [{"epoch_finished": _rewrites}], indirect=True)
def test_observer_cannot_rewrite_a_runner_metric(observer, nlbench_run):
    with pytest.raises(PluginError, match="bad_observer.*'test_acc'.*runner"):
        nlbench_run("erm", "0.4", epochs=1)


@pytest.mark.parametrize("observer", [{"on_epoch": _mutates}], indirect=True)
def test_observer_sees_a_copy(observer, nlbench_run):
    record = nlbench_run("erm", "0.4", epochs=1)
    assert record["epochs"][0]["test_acc"] < 1.0 and "lr" in record["epochs"][0]


def test_best_epoch_is_shown_from_one():
    """Records count epochs from 0; the CLI summary shows best_epoch 0 as epoch 1."""
    from rich.console import Console

    from nlbench.core.console import summary_table

    config = {"method": "erm", "dataset": "digits", "noise": "0.4"}
    record = {"run_id": "r", "config": config, "noise": {}, "epochs": [{"epoch": 0}]}
    record["summary"] = {"best_epoch": 0}
    console = Console(record=True, width=120)
    console.print(summary_table(record))
    row = next(line for line in console.export_text().splitlines() if "best epoch" in line)
    assert row.split("│")[2].strip() == "1"
