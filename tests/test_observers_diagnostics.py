"""Diagnostics observer (gradient cosines, epochs_to_fit) and the TensorBoard observer."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from nlbench.core.record import epochs_to_fit, summarise
from nlbench_plugins import observers_tensorboard as tb
from nlbench_plugins.observers_diagnostics import gradient_diagnostics


class TinyTrain:
    """The slice of TrainSet the diagnostics pass uses."""

    def __init__(self, x: torch.Tensor, labels: torch.Tensor) -> None:
        self.x, self.labels = x, labels

    def scan_batches(self, bs: int):
        for start in range(0, len(self.labels), bs):
            yield torch.arange(start, min(start + bs, len(self.labels)))

    def plain(self, idx: torch.Tensor) -> torch.Tensor:
        return self.x[idx]


def _brute(net, x, noisy, clean_mask) -> tuple[float, float]:
    """Cosines from mean losses over each subset in one batch (the definition)."""

    def grad(mask):
        net.zero_grad()
        F.cross_entropy(net(x[mask]), noisy[mask]).backward()
        return torch.cat([p.grad.reshape(-1).clone() for p in net.parameters()])

    g_clean, g_all, g_noisy = grad(clean_mask), grad(torch.ones_like(clean_mask)), grad(~clean_mask)
    return (
        float(F.cosine_similarity(g_clean, g_all, dim=0)),
        float(F.cosine_similarity(g_clean, g_noisy, dim=0)),
    )


@pytest.mark.parametrize("batch_size", [7, 64])
def test_gradient_cosines_match_brute_force(batch_size):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(50, 5, generator=gen)
    clean = torch.randint(0, 3, (50,), generator=gen)
    noisy = clean.clone()
    noisy[:20] = (clean[:20] + 1) % 3
    net = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))
    out = gradient_diagnostics(net, TinyTrain(x, noisy), clean, batch_size)
    assert all(p.grad is None for p in net.parameters())  # .grad untouched: no side effects
    want_all, want_noisy = _brute(net, x, noisy, noisy == clean)
    assert out["grad_cos_clean_all"] == pytest.approx(want_all, abs=1e-5)
    assert out["grad_cos_clean_noisy"] == pytest.approx(want_noisy, abs=1e-5)


def test_diagnostics_pass_does_not_change_the_run(nlbench_run, tmp_path):
    plain = nlbench_run("erm", "0.4", seed=3)
    # diagnostics is execution-only: the same run_id, so it runs in its own directory
    diag = nlbench_run("erm", "0.4", seed=3, set={"diagnostics": True}, out=str(tmp_path / "d"))
    assert plain["run_id"] == diag["run_id"]
    for a, b in zip(plain["epochs"], diag["epochs"]):
        assert a["test_acc"] == b["test_acc"] and a["train_loss"] == b["train_loss"]
        assert "grad_cos_clean_all" not in a
        assert -1.0 <= b["grad_cos_clean_all"] <= 1.0
        assert -1.0 <= b["grad_cos_clean_noisy"] <= 1.0


def test_epochs_to_fit():
    epochs = [
        {"epoch": i, "train_acc_noisy": a, "test_acc": 0.5}
        for i, a in enumerate([0.3, 0.98, 0.995, 1.0])
    ]
    assert epochs_to_fit(epochs) == 3  # reached 99 % after the third epoch
    assert epochs_to_fit(epochs[:2]) is None
    assert summarise(epochs, 1.0, 10, 1.0, None)["epochs_to_fit"] == 3


class FakeWriter:
    instances: list[FakeWriter] = []

    def __init__(self, log_dir: str) -> None:
        self.log_dir, self.closed = log_dir, False
        self.scalars: list[tuple[str, float, int]] = []
        FakeWriter.instances.append(self)

    def add_scalar(self, key, value, step):
        self.scalars.append((key, value, step))

    def flush(self):
        pass

    def close(self):
        self.closed = True


def test_tensorboard_observer_writes_scalars(monkeypatch, tmp_path):
    monkeypatch.setattr(tb, "writer_class", lambda: FakeWriter)
    run = SimpleNamespace(run_id="r1", run_dir=Path(tmp_path))
    tb.run_started(run)
    tb.epoch_finished(
        run,
        0,
        {
            "epoch": 0,
            "test_acc": 0.5,
            "selected": None,
            "flag": True,
            "train_loss": float("nan"),
            "lr": 0.1,
        },
    )
    tb.run_finished(run, {})
    [writer] = FakeWriter.instances
    assert writer.log_dir == str(tmp_path / "tensorboard")
    assert writer.scalars == [("lr", 0.1, 0), ("test_acc", 0.5, 0)]
    assert writer.closed and tb._writers == {}


def test_tensorboard_observer_is_a_noop_without_tensorboard(monkeypatch, tmp_path):
    monkeypatch.setenv("NLBENCH_TENSORBOARD", "0")
    assert tb.writer_class() is None
    run = SimpleNamespace(run_id="r2", run_dir=Path(tmp_path))
    tb.run_started(run)
    assert tb.epoch_finished(run, 0, {"test_acc": 0.5}) is None
    tb.run_finished(run, {})
    assert not (tmp_path / "tensorboard").exists()
