"""Per-epoch metric names are defined once (``nlbench.core.record.EPOCH_METRICS``); the record
schema, ``nlbench rerun``, ``nlbench report`` and the testing kit agree with it."""

from __future__ import annotations

import re
from pathlib import Path

from nlbench import testing
from nlbench.boards import report
from nlbench.commands import rerun
from nlbench.core.record import (
    EPOCH_FIELDS,
    EPOCH_METRICS,
    REPRODUCIBLE_METRICS,
    TIMING_METRICS,
    epoch_metric_names,
)

ROOT = Path(__file__).resolve().parents[1]


def test_each_name_has_one_kind():
    names = [m.name for m in EPOCH_METRICS]
    assert len(names) == len(set(names))
    assert {m.kind for m in EPOCH_METRICS} == {"index", "result", "diagnostic", "timing"}


def test_the_users_lists_agree():
    assert rerun.COMPARED == REPRODUCIBLE_METRICS
    assert testing.TIMING_FIELDS == TIMING_METRICS
    assert not set(rerun.COMPARED) & TIMING_METRICS  # a timing is never compared
    # every schema field is compared by a rerun, ignored as a timing, or the epoch index
    assert set(EPOCH_FIELDS) == set(rerun.COMPARED) & set(EPOCH_FIELDS) | (
        TIMING_METRICS & set(EPOCH_FIELDS)
    ) | {"epoch"}
    assert set(epoch_metric_names("result")) <= set(report.EPOCH_COLUMNS)
    assert set(EPOCH_FIELDS) <= set(report.EPOCH_COLUMNS) <= {m.name for m in EPOCH_METRICS}
    order = [m.name for m in EPOCH_METRICS]
    for names in (EPOCH_FIELDS, rerun.COMPARED, report.EPOCH_COLUMNS):
        assert list(names) == sorted(names, key=order.index)


def test_schema_one_epoch_fields_are_pinned():
    """The design's schema-1 epoch line (records are read back years later)."""
    assert EPOCH_FIELDS == (
        "epoch",
        "lr",
        "train_loss",
        "test_acc",
        "noisy_fit",
        "clean_fit",
        "selected",
        "selected_precision",
        "detection_auc",
        "seconds",
    )


def test_no_module_keeps_its_own_list_of_timing_fields():
    """The old deny-list of timing fields (seconds, select_s, ...) lives nowhere but the
    table."""
    pattern = re.compile(r"""["']seconds["'],\s*["']select_s["']""")
    homes = [
        p.relative_to(ROOT).as_posix()
        for folder in ("nlbench", "tests", "plugins")
        for p in sorted((ROOT / folder).rglob("*.py"))
        if pattern.search(p.read_text(encoding="utf-8"))
    ]
    assert homes == []


def test_a_runs_timings_are_all_known(nlbench_run):
    """Every per-epoch number a run writes that measures time is in the table as a timing, so
    resume and rerun comparisons ignore it."""
    record = nlbench_run("erm", "0.4")
    for epoch in record["epochs"]:
        timed = {k for k in epoch if k == "seconds" or k.endswith("_s")}
        assert timed and timed <= TIMING_METRICS, timed
        assert set(EPOCH_FIELDS) <= set(epoch)
