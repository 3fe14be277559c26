"""Fit metrics on a seeded train subset (nlbench.training.fitscan), on a tiny Clothing1M fixture."""

from __future__ import annotations

import pytest
import torch
from test_datasets import write_clothing1m

from nlbench.engine import context
from nlbench.training.distributed import SINGLE
from nlbench.training.fitscan import fit_logits, fit_subset_index, rows
from nlbench.training.method import Scan


class _Train:
    def __init__(self, n: int, fit_subset: int | None) -> None:
        self.labels, self.fit_subset = torch.arange(n) % 3, fit_subset

    def __len__(self) -> int:
        return len(self.labels)


def test_subset_is_seeded_sorted_and_only_when_smaller():
    a, b = fit_subset_index(_Train(50, 7), 3), fit_subset_index(_Train(50, 7), 3)
    assert a is not None and b is not None
    assert torch.equal(a, b) and a.numel() == 7 and len(set(a.tolist())) == 7
    assert torch.equal(a, a.sort().values) and int(a.max()) < 50
    other_seed = fit_subset_index(_Train(50, 7), 4)
    assert other_seed is not None and not torch.equal(a, other_seed)  # the run's seed decides
    assert (
        fit_subset_index(_Train(5, 7), 0) is None and fit_subset_index(_Train(5, None), 0) is None
    )


def test_full_scan_only_when_the_method_scanned():
    full_logits = torch.randn(10, 3)
    calls: list[object] = []

    def full():
        calls.append("full")
        return Scan({}, {"net": full_logits})

    def subset(idx):
        calls.append(("subset", idx.tolist()))
        return Scan({}, {"net": full_logits[idx] * 1})

    idx = torch.tensor([1, 4, 8])
    assert torch.equal(fit_logits(full, subset, idx, method_scanned=False), full_logits[idx])
    assert torch.equal(fit_logits(full, subset, idx, method_scanned=True), full_logits[idx])
    assert torch.equal(fit_logits(full, subset, None, method_scanned=False), full_logits)
    assert calls == [("subset", [1, 4, 8]), "full", "full"]
    assert torch.equal(rows(torch.arange(10), idx), idx) and rows(idx, None) is idx


def _run(tmp_path, method, monkeypatch):
    from nlbench.api import run

    scans = []
    original = context.scan_train_set

    def spy(method_, train, eval_bs, dist=SINGLE, index=None):
        scans.append(len(train) if index is None else int(index.numel()))
        return original(method_, train, eval_bs, dist, index)

    monkeypatch.setattr(context, "scan_train_set", spy)
    monkeypatch.setattr("nlbench_plugins.datasets_clothing1m.FIT_SUBSET", 5)
    settings = {"batches_per_epoch": 2, "batch_size": 4, "num_workers": 0, "eval_batch_size": 8}
    record = run(
        method=method,
        dataset="clothing1m",
        profile="paper",
        model="tiny_cnn",
        epochs=2,
        data_root=str(tmp_path / "data"),
        out=str(tmp_path / "runs"),
        device="cpu",
        set=settings,
    )
    return record, scans


@pytest.fixture
def clothing(tmp_path):
    write_clothing1m(tmp_path / "data")  # 12 train images
    return tmp_path


def test_erm_scans_only_the_subset_and_records_it(clothing, monkeypatch):
    record, scans = _run(clothing, "erm", monkeypatch)
    assert record["status"] == "done" and record["data"]["fit_subset"] == 5
    assert scans == [5, 5]  # one subset scan per epoch, never the 12 images
    for epoch in record["epochs"]:
        assert epoch["noisy_fit"] is None  # noise 'none': no corrupted sample known
        assert round(epoch["train_acc_noisy"] * 5, 6) == int(round(epoch["train_acc_noisy"] * 5))
        assert 0 <= epoch["clean_fit"] <= 1


@pytest.mark.slow  # DivideMix's two nets on 224x224 images: ~75 s on a loaded 2-core box
def test_a_method_that_scans_gets_the_full_scan_and_the_same_subset_metrics(clothing, monkeypatch):
    record, scans = _run(clothing, "dividemix", monkeypatch)  # 1 warm-up epoch, then GMMs
    assert record["status"] == "done" and record["data"]["fit_subset"] == 5
    assert scans == [5, 12, 12]  # warm-up: subset; then the GMM's scan and the next epoch's
    last = record["epochs"][-1]
    assert round(last["train_acc_noisy"] * 5, 6) == int(round(last["train_acc_noisy"] * 5))
