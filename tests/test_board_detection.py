"""The detection board: each selecting or weighting method's last-epoch separation of right
from wrong labels, per noise, with cleanlab's detection (confident_learning) as reference."""

from __future__ import annotations

import pytest
from synthetic_records import synthetic_record, write_synthetic

from nlbench.boards.detection import detection_facts, render_detection
from nlbench.boards.leaderboard import build


def _selecting(method, seed, precision, recall, auc=None, noise="sym:0.6", **kw):
    extra = {"selected_precision": precision, "selected_recall": recall, "detection_auc": auc}
    return synthetic_record(method, noise, seed, extra_epoch=extra, **kw)


def test_facts_come_from_the_last_epoch_with_f1():
    facts = detection_facts(_selecting("x", 0, 0.8, 0.6, auc=0.9))
    assert facts is not None
    assert facts["f1"] == pytest.approx(2 * 0.8 * 0.6 / 1.4)
    assert facts["auc"] == 0.9 and facts["source"] == "epoch subset"
    batch = synthetic_record(
        "y", extra_epoch={"batch_selected_precision": 0.9, "batch_selected_recall": 0.5}
    )
    batch_facts = detection_facts(batch)
    assert batch_facts is not None and batch_facts["source"] == "per-batch picks"
    assert detection_facts(synthetic_record("erm")) is None  # selects nothing: no row


def test_board_rows_reference_first_then_by_f1_with_seed_means():
    records = [
        _selecting("fl_only", 0, 0.5, 0.3),
        _selecting("dividemix", 0, 0.9, 0.9, auc=0.95),
        _selecting("dividemix", 1, 0.8, 0.9, auc=0.85),
        _selecting("confident_learning", 0, 0.7, 0.7, auc=0.8),
        synthetic_record("erm", "sym:0.6"),
    ]
    text = render_detection(records)["detection.md"]
    lines = [ln for ln in text.splitlines() if ln.startswith("| ") and "---" not in ln][1:]
    assert [ln.split(" | ")[0] for ln in lines] == [
        "| confident_learning (reference: cleanlab)",
        "| dividemix",
        "| fl_only",
    ]
    assert "| dividemix | 2 | 90.00 ± 7.07 | 85.00 ± 7.07 | 90.00 ± 0.00 |" in text
    assert "erm" not in text.split("## ")[1]
    assert "keep all: precision 39.9" in text  # 1 − mean realized rate of its runs


def test_the_board_is_generated_with_the_others(tmp_path):
    write_synthetic(tmp_path, _selecting("coteaching", 0, 0.9, 0.8))
    files, _ = build(tmp_path)
    assert "detection.md" in files and "coteaching" in files["detection.md"]
    assert render_detection([synthetic_record("erm")]) == {}
