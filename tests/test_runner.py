"""End-to-end runs on the embedded dataset through the Python API."""

from __future__ import annotations

import json

from nlbench.record import EPOCH_FIELDS, SUMMARY_FIELDS, TOP_FIELDS, read_record


def test_erm_record_has_schema_fields(nlbench_run, tmp_path):
    record = nlbench_run("erm", "0.4")
    assert record["status"] == "done"
    for key in TOP_FIELDS:
        assert key in record
    for key in SUMMARY_FIELDS:
        assert key in record["summary"]
    for epoch in record["epochs"]:
        for key in EPOCH_FIELDS:
            assert key in epoch
        assert 0.0 <= epoch["test_acc"] <= 1.0
    assert abs(record["noise"]["realized_rate"] - 0.4) < 0.01
    run_dir = tmp_path / record["run_id"]
    assert read_record(run_dir / "run.json") == json.loads((run_dir / "run.json").read_text())
    lines = (run_dir / "epochs.jsonl").read_text().splitlines()
    assert len(lines) == len(record["epochs"]) == 2
    assert not (run_dir / "checkpoint.pt").exists()


def test_channels_last_is_cuda_only_unless_always(nlbench_run):
    """``channels_last=true`` (default) leaves CPU runs as recorded; ``always`` opts CPU in."""
    import torch

    from nlbench.hparams import use_channels_last

    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert not use_channels_last({"channels_last": True}, cpu)
    assert use_channels_last({"channels_last": True}, cuda)
    assert use_channels_last({"channels_last": "always"}, cpu)
    assert not use_channels_last({"channels_last": False}, cuda)
    record = nlbench_run("erm", "0.4", set={"channels_last": "always"})
    assert record["status"] == "done" and record["config"]["hparams"]["channels_last"] == "always"
