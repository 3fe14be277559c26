"""End-to-end runs on the embedded dataset through the Python API."""

from __future__ import annotations

import json

from nlbench.core.record import EPOCH_FIELDS, SUMMARY_FIELDS, TOP_FIELDS, read_record


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

    from nlbench.core.hparams import use_channels_last

    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert not use_channels_last({"channels_last": True}, cpu)
    assert use_channels_last({"channels_last": True}, cuda)
    assert use_channels_last({"channels_last": "always"}, cpu)
    assert not use_channels_last({"channels_last": False}, cuda)
    record = nlbench_run("erm", "0.4", set={"channels_last": "always"})
    assert record["status"] == "done" and record["config"]["hparams"]["channels_last"] == "always"


def test_augment_overrides_the_datasets_policy(nlbench_run):
    """``augment`` replaces the dataset's train-time policy; ``off`` is nlbench.training.data's "none"
    (``--set augment=none`` would parse as null, the dataset's own policy)."""
    import pytest
    import torch

    from nlbench.core.errors import UsageError
    from nlbench.core.hparams import resolve_hparams, train_augment
    from nlbench.training.data import DatasetData, ImageSet, TrainSet

    assert train_augment({"augment": None}) is None
    assert train_augment({"augment": "off"}) == "none"
    assert train_augment({"augment": "crop"}) == "crop"
    images = ImageSet(torch.zeros(4, 1, 8, 8, dtype=torch.uint8), torch.zeros(4, dtype=torch.long))
    data = DatasetData(
        train=images,
        test=images,
        num_classes=2,
        classes=["a", "b"],
        mean=(0.5,),
        std=(0.5,),
        augment="crop_flip",
    )
    gen = torch.Generator().manual_seed(0)
    labels = torch.zeros(4, dtype=torch.long)
    assert TrainSet(images, labels, data, torch.device("cpu"), 2, gen).augment == "crop_flip"
    assert (
        TrainSet(images, labels, data, torch.device("cpu"), 2, gen, augment="none").augment
        == "none"
    )

    plain = nlbench_run("erm", "0.4")  # digits: no augmentation of its own
    cropped = nlbench_run("erm", "0.4", set={"augment": "crop"})
    assert cropped["config"]["hparams"]["augment"] == "crop"
    assert cropped["run_id"] != plain["run_id"]
    assert cropped["epochs"][-1]["train_loss"] != plain["epochs"][-1]["train_loss"]

    from nlbench.core.config import RunConfig
    from nlbench.host.plugins import get_host

    host = get_host()
    cfg = RunConfig(method="erm", dataset="digits", overrides={"augment": "mirror"})
    with pytest.raises(UsageError, match="augment.*accepted one of"):
        resolve_hparams(host.get("methods", "erm"), host.get("datasets", "digits"), cfg, host)
