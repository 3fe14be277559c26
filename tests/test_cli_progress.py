"""Progress people expect: epoch k/N, images/s and an ETA for runs; runs left and an ETA for
sweeps; clean output for logs and ``--quiet``."""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
from helpers import digits_run, run_cli

from nlbench.core.console import RichProgress, duration
from nlbench.core.costs import default_model
from nlbench.sweep.progress import SweepProgress, SweepWatch, job_weight, run_fraction


def test_a_run_in_a_log_prints_one_clean_line_per_epoch(tmp_path, capsys):
    result = run_cli(capsys, *digits_run("sym:0.4", 3, 200, "--out", str(tmp_path)))
    assert result.code == 0, result.err
    lines = [ln for ln in result.err.splitlines() if ln.startswith("epoch")]
    assert [ln.split()[1] for ln in lines] == ["1/3", "2/3", "3/3"]
    assert all(re.search(r"[\d,]+ img/s  ETA \d+m\d\ds$", ln) for ln in lines), lines
    assert lines[-1].endswith("ETA 0m00s")
    assert "\x1b[" not in result.err and "\r" not in result.err  # no terminal codes in a log


def test_quiet_and_json_runs_print_no_progress(tmp_path, capsys):
    quiet = run_cli(capsys, *digits_run("sym:0.4", 1, 200, "--out", str(tmp_path), "-q"))
    assert quiet.code == 0 and "epoch" not in quiet.err and "ETA" not in quiet.err
    again = run_cli(capsys, *digits_run("sym:0.4", 1, 200, "--out", str(tmp_path / "j"), "--json"))
    assert again.code == 0 and "ETA" not in again.err
    assert json.loads(again.out)["status"] == "done"


def test_eta_is_time_per_epoch_times_epochs_left(monkeypatch):
    clock = iter([100.0, 100.0, 100.0, 120.0, 130.0, 130.0])
    monkeypatch.setattr("nlbench.core.console.time.monotonic", lambda: next(clock))
    progress = RichProgress(quiet=True)
    run = SimpleNamespace(
        run_id="r", run_dir="d", epochs=[{}], prep=SimpleNamespace(hparams={"batch_size": 10})
    )
    progress.start(run, total_epochs=4)  # resumed after one epoch
    progress.epoch_start(1, steps=3)
    progress.step()
    progress.step()
    assert progress.images_per_s() == pytest.approx(20 / 30)
    assert progress.eta_s(2) == pytest.approx(60)  # one epoch took 30 s here, two are left
    assert duration(3725) == "1h02m" and duration(65) == "1m05s" and duration(None) == "-"


def _run_dir(root: Path, name: str, epochs_done: int, status: str | None = None) -> Path:
    path = root / name
    path.mkdir()
    (path / "epochs.jsonl").write_text("{}\n" * epochs_done)
    if status:
        (path / "run.json").write_text(json.dumps({"status": status}))
    return path


def test_sweep_progress_weights_runs_by_their_cost(tmp_path):
    cost = default_model()
    erm = job_weight(cost, "erm", "digits", "tiny_cnn", 10)
    dividemix = job_weight(cost, "dividemix", "digits", "tiny_cnn", 10)
    assert dividemix == pytest.approx(erm * cost.ratio("dividemix"))
    runs = [
        (_run_dir(tmp_path, "a", 10, "done"), 10, erm),
        (_run_dir(tmp_path, "b", 5), 10, dividemix),
        (_run_dir(tmp_path, "c", 0, "failed"), 10, erm),
        (tmp_path / "not-started", 10, erm),
    ]
    assert run_fraction(runs[1][0], 10) == (0.5, None)
    watch = SweepWatch(runs, model_s=None)
    ended, failed, share, eta = watch.poll()
    expected = (2 * erm + 0.5 * dividemix) / (3 * erm + dividemix)
    assert (ended, failed) == (2, 1) and share == pytest.approx(expected)
    assert eta is not None and eta >= 0


def test_sweep_progress_in_a_log_prints_when_a_run_ends(tmp_path):
    run = _run_dir(tmp_path, "a", 0)
    shown: list[str] = []
    progress = SweepProgress(SweepWatch([(run, 2, 1.0)], model_s=None), shown.append, live=False)
    progress.tick()  # nothing ended: a log gets no new line
    (run / "run.json").write_text(json.dumps({"status": "done"}))
    progress.tick()
    progress.tick()
    assert shown == ["sweep: 1/1 runs ended, 0 left, 100% of the estimated work, ETA 0m00s"]


def test_a_sweep_reports_runs_left_in_its_log(tmp_path, capsys):
    args = ["sweep", "-m", "erm", "--seed", "0,1", "--epochs", "1", "--train-subset", "100"]
    result = run_cli(capsys, *args, "--device", "cpu", "--out", str(tmp_path))
    assert result.code == 0, result.err
    assert "sweep: 0/2 runs ended, 2 left" in result.err
    quiet = run_cli(capsys, *args, "--seed", "2", "--device", "cpu", "--out", str(tmp_path), "-q")
    assert quiet.code == 0 and "runs ended" not in quiet.err
