"""``nlbench report``: plots and markdown from a record; ``nlbench rerun`` reproduces a run."""

from __future__ import annotations

import json
import sys

import pytest
from helpers import run_cli
from synthetic_records import synthetic_record, write_synthetic

from nlbench.boards.report import load_run, report
from nlbench.commands.rerun import compare_epochs
from nlbench.core.errors import UsageError
from nlbench.core.record import read_record, write_record

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_report_writes_plots_and_summary(tmp_path):
    record = synthetic_record(
        "fancy",
        "sym:0.4",
        accs=(0.5, 0.6, 0.7),
        extra_epoch={"selected_precision": 0.9, "selected": 100},
    )
    run_dir = write_synthetic(tmp_path, record)
    path = report(run_dir)
    out = run_dir / "report"
    assert path == out / "report.md"
    for stem in ("accuracy", "fit", "selection"):
        assert (out / f"{stem}.png").read_bytes()[:8] == PNG_MAGIC
    assert not (out / "gradients.png").exists()  # no diagnostics in this record
    text = path.read_text(encoding="utf-8")
    assert f"# Run `{record['run_id']}`" in text
    assert "| last-epoch accuracy | 70.00 % |" in text
    assert "| best | 70.00 % at epoch 3 (oracle) |" in text
    assert "![selection](selection.png)" in text
    assert "| epoch | lr | train_loss | test_acc |" in text and "selected_precision" in text
    assert "\n| 1 | " in text and "\n| 0 | " not in text  # 1-based, as the CLI prints


def test_report_of_unfinished_run_reads_epochs_jsonl(tmp_path, capsys):
    record = synthetic_record(accs=(0.4, 0.5), status="interrupted")
    epochs, record["epochs"] = record["epochs"], []
    run_dir = write_synthetic(tmp_path, record)
    (run_dir / "epochs.jsonl").write_text("".join(json.dumps(e) + "\n" for e in epochs))
    assert [e["test_acc"] for e in load_run(run_dir)["epochs"]] == [0.4, 0.5]
    result = run_cli(capsys, "report", str(run_dir), "--out", str(tmp_path / "rep"))
    assert result.code == 0, result.err
    assert "status | interrupted" in (tmp_path / "rep" / "report.md").read_text()


def test_report_errors(tmp_path, capsys, monkeypatch):
    result = run_cli(capsys, "report", str(tmp_path))
    assert result.code == 2 and "no run.json" in result.err
    run_dir = write_synthetic(tmp_path, synthetic_record())
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)  # as if not installed
    with pytest.raises(UsageError, match=r"nlbench\[report\]"):
        report(run_dir)


def test_compare_epochs():
    a = [{"epoch": 0, "test_acc": 0.5, "seconds": 1.0}, {"epoch": 1, "test_acc": 0.6}]
    b = [{"epoch": 0, "test_acc": 0.5, "seconds": 9.0}, {"epoch": 1, "test_acc": 0.61}]
    assert compare_epochs(a, a, 0.0) == []
    assert compare_epochs(a, b, 0.0) == ["epoch 1: test_acc 0.6 → 0.61"]
    assert compare_epochs(a, b, 0.05) == []
    assert compare_epochs(a, b[:1], 0.05) == ["epochs: record has 2, rerun has 1"]


def test_rerun_reproduces_a_run_from_its_record(nlbench_run, tmp_path, capsys):
    record = nlbench_run("erm", "0.4", set={"lr": 0.03})
    path = tmp_path / record["run_id"] / "run.json"
    out = tmp_path / "again"
    result = run_cli(capsys, "rerun", str(path), "--out", str(out), "--device", "cpu")
    assert result.code == 0, result.out + result.err
    assert "run_id matches" in result.out and "per-epoch metrics match" in result.out
    assert read_record(out / record["run_id"] / "run.json")["config"]["hparams"]["lr"] == 0.03
    # a tampered record no longer reproduces: exit 1, the differing metric named
    tampered = read_record(path)
    tampered["epochs"][0]["test_acc"] = 0.0
    write_record(path.parent, tampered)
    again = run_cli(capsys, "rerun", str(path), "--out", str(tmp_path / "third"), "--device", "cpu")
    assert again.code == 1 and "epoch 0: test_acc 0.0" in again.out
    fresh = run_cli(capsys, "rerun", str(path), "--out", str(out))
    assert fresh.code == 2 and "fresh directory" in fresh.err


def test_report_figures_are_titled_with_the_run(tmp_path, monkeypatch):
    """A PNG read on its own names its run: run id, method, dataset and noise."""
    from matplotlib.axes import Axes

    titles: list[str] = []
    original = Axes.set_title

    def set_title(ax, text, **kw):
        titles.append(text)
        return original(ax, text, **kw)

    monkeypatch.setattr(Axes, "set_title", set_title)
    record = synthetic_record("fancy", "sym:0.4", accs=(0.5, 0.6))
    report(write_synthetic(tmp_path, record))
    assert titles and all(
        t.endswith(f"{record['run_id']}: fancy on synth, noise sym:0.4") for t in titles
    )
    assert titles[0].startswith("Test accuracy\n")
