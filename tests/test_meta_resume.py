"""MW-Net, L2R (and MW-Net + FaMUS) resume to the same numbers when the meta set cycles
mid-epoch: the meta stream's order and position are part of the checkpoint."""

from __future__ import annotations

import pytest

from nlbench.api import run
from nlbench.core.record import TIMING_METRICS
from nlbench.engine import checkpoint

TIMING = TIMING_METRICS  # one definition (nlbench.core.record)
# 200 meta images in batches of 30: the stream reshuffles in the middle of every epoch
BASE = {
    "dataset": "digits",
    "noise": "sym:0.4",
    "train_subset": 300,
    "epochs": 3,
    "device": "cpu",
    "deterministic": True,
}
META = {"meta_set": "clean:200", "meta_batch_size": 30, "batch_size": 32}


class Stop(Exception):
    """Stands in for a kill right after a checkpoint."""


def _metrics(record: dict) -> list[dict]:
    return [{k: v for k, v in e.items() if k not in TIMING} for e in record["epochs"]]


@pytest.mark.parametrize(
    "method,extra",
    [
        ("mwnet", {}),
        ("l2r", {}),
        pytest.param("mwnet", {"famus": True}, marks=pytest.mark.slow),
    ],
)
def test_resume_after_epoch_one_matches_uninterrupted(tmp_path, monkeypatch, method, extra):
    hp = {**META, **extra}
    reference = run(method=method, out=str(tmp_path / "a"), run_id="ref", set=hp, **BASE)
    save, calls = checkpoint.save, []

    def save_then_stop(*args, **kwargs):
        save(*args, **kwargs)
        calls.append(1)
        if len(calls) == 2:  # checkpoint after epochs 0 and 1 written, then the "kill"
            raise Stop

    monkeypatch.setattr(checkpoint, "save", save_then_stop)
    with pytest.raises(Stop):
        run(method=method, out=str(tmp_path / "b"), run_id="cut", set=hp, **BASE)
    monkeypatch.setattr(checkpoint, "save", save)
    resumed = run(method=method, out=str(tmp_path / "b"), run_id="cut", resume=True, set=hp, **BASE)
    assert resumed["status"] == "done"
    assert [e["epoch"] for e in resumed["epochs"]] == [0, 1, 2]
    assert _metrics(resumed) == _metrics(reference)
