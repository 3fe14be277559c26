"""Resume after SIGKILL, SIGINT handling, failed runs, atomic records, safe loading."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import assert_usage_error, digits_run, run_cli

from nlbench.core.record import TIMING_METRICS
from nlbench.engine.faults import ENV as KILL_ENV

RUN = digits_run("0.6", 6, 800, "--deterministic", "-q")
TIMING = TIMING_METRICS  # one definition (nlbench.core.record)


def _spawn(out: Path, run_id: str, *extra: str, kill_at: str = "") -> subprocess.Popen:
    """The run in a child process; ``kill_at`` makes it SIGKILL itself there (nlbench.engine.faults):
    a crash point that does not depend on how loaded the machine is."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", KILL_ENV: kill_at}
    cmd = [sys.executable, "-m", "nlbench", *RUN, "--out", str(out), "--run-id", run_id, *extra]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _killed(proc: subprocess.Popen) -> None:
    """Wait for a run to SIGKILL itself at its crash point."""
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == -signal.SIGKILL, err


def _wait_for_epochs(run_dir: Path, n: int, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    log = run_dir / "epochs.jsonl"
    while time.time() < deadline:
        if log.exists() and len(log.read_text().splitlines()) >= n:
            return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.02)
    raise AssertionError("run did not reach the epoch in time")


def _metrics(record: dict) -> list[dict]:
    return [{k: v for k, v in e.items() if k not in TIMING} for e in record["epochs"]]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("ref")
    proc = _spawn(out, "ref")
    assert proc.wait(timeout=300) == 0, proc.communicate()
    return json.loads((out / "ref" / "run.json").read_text())


@pytest.mark.parametrize("kill_at,logged", [("1:3", 1), ("3:end", 4)])
def test_sigkill_then_resume_matches_uninterrupted(tmp_path, reference, kill_at, logged):
    """Killed mid-epoch (step 3 of epoch 1) and between an epoch's line and its checkpoint."""
    proc = _spawn(tmp_path, "r", kill_at=kill_at)
    _killed(proc)
    assert len((tmp_path / "r" / "epochs.jsonl").read_text().splitlines()) == logged
    partial = json.loads((tmp_path / "r" / "run.json").read_text())
    assert partial["status"] == "running"  # never a half-written file
    resumed = _spawn(tmp_path, "r", "--resume")
    assert resumed.wait(timeout=300) == 0, resumed.communicate()
    record = json.loads((tmp_path / "r" / "run.json").read_text())
    assert record["status"] == "done"
    assert _metrics(record) == _metrics(reference)
    lines = (tmp_path / "r" / "epochs.jsonl").read_text().splitlines()
    assert [json.loads(x)["epoch"] for x in lines] == list(range(6))


def test_sigint_leaves_resumable_checkpoint(tmp_path, reference):
    proc = _spawn(tmp_path, "s")
    _wait_for_epochs(tmp_path / "s", 1, proc)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and "--resume" in lines[0] and "Traceback" not in err
    assert json.loads((tmp_path / "s" / "run.json").read_text())["status"] == "interrupted"
    resumed = _spawn(tmp_path, "s", "--resume")
    assert resumed.wait(timeout=300) == 0, resumed.communicate()
    record = json.loads((tmp_path / "s" / "run.json").read_text())
    assert _metrics(record) == _metrics(reference)


def test_resume_with_different_config_is_refused(tmp_path, capsys):
    _killed(_spawn(tmp_path, "c", kill_at="1:1"))  # epoch 0's checkpoint is there
    res = run_cli(
        capsys, *RUN, "--out", str(tmp_path), "--run-id", "c", "--resume", "--set", "lr=0.01"
    )
    assert_usage_error(res, "different config")


def test_failed_run_records_status_and_error(tmp_path, monkeypatch):
    from nlbench.engine.runner import run
    from nlbench.training.method import SingleNetMethod

    calls = {"n": 0}
    original = SingleNetMethod.train_step

    def flaky(self, batch):
        calls["n"] += 1
        if calls["n"] > 5:
            raise RuntimeError("exploded")
        return original(self, batch)

    monkeypatch.setattr(SingleNetMethod, "train_step", flaky)
    with pytest.raises(RuntimeError):
        run(
            method="erm",
            dataset="digits",
            noise="0.2",
            epochs=3,
            out=str(tmp_path),
            run_id="f",
            device="cpu",
            train_subset=300,
        )
    record = json.loads((tmp_path / "f" / "run.json").read_text())
    assert record["status"] == "failed" and "exploded" in record["error"]
    assert not list((tmp_path / "f").glob(".*.tmp"))


def test_checkpoint_loads_with_weights_only(tmp_path):
    import torch

    _killed(_spawn(tmp_path, "w", kill_at="1:1"))  # after epoch 0's checkpoint, before the end
    payload = torch.load(tmp_path / "w" / "checkpoint.pt", weights_only=True)
    assert set(payload) >= {"networks", "optimizers", "rng", "epochs", "identity"}


def test_finished_run_is_not_rerun(tmp_path, capsys):
    args = ["run", "--epochs", "1", "--train-subset", "200", "--out", str(tmp_path), "-q"]
    assert run_cli(capsys, *args).code == 0
    (run_dir,) = tmp_path.iterdir()
    before = (run_dir / "run.json").read_bytes()
    assert run_cli(capsys, *args).code == 0
    assert (run_dir / "run.json").read_bytes() == before


# -- a changed input file is a new run (#32) -------------------------------------------------
def _file_run(labels: Path, out: Path, *extra: str) -> list[str]:
    return [*digits_run(f"file:{labels}", 2, 100, "-q"), "--out", str(out), *extra]


def _labels(path: Path, seed: int) -> None:
    import numpy as np

    np.save(path, np.random.default_rng(seed).integers(0, 10, 100))


def test_a_changed_noise_file_is_a_new_run(tmp_path, capsys):
    labels, out = tmp_path / "labels.npy", tmp_path / "runs"
    _labels(labels, 0)
    first = run_cli(capsys, *_file_run(labels, out))
    assert first.code == 0, first.err
    (old,) = [p.name for p in out.iterdir()]
    before = (out / old / "run.json").read_bytes()
    assert run_cli(capsys, *_file_run(labels, out)).code == 0  # same contents: the same run
    assert [p.name for p in out.iterdir()] == [old]
    assert (out / old / "run.json").read_bytes() == before
    sweep = ["sweep", "-m", "erm", "-n", f"file:{labels}", "--epochs", "2", "--train-subset"]
    sweep += ["100", "--out", str(out), "--device", "cpu", "--dry-run"]
    assert "done" in run_cli(capsys, *sweep).out
    _labels(labels, 1)  # other contents at the same path
    assert "done" not in run_cli(capsys, *sweep).out
    assert run_cli(capsys, *_file_run(labels, out)).code == 0
    assert (out / old / "run.json").read_bytes() == before
    new = sorted(p.name for p in out.iterdir() if p.name != old)
    assert len(new) == 1
    records = [json.loads((out / d / "run.json").read_text()) for d in (old, new[0])]
    assert records[0]["noise"]["labels_sha256"] != records[1]["noise"]["labels_sha256"]
    hashes = [r["config"]["inputs"]["noise"][str(labels)] for r in records]
    assert hashes[0] != hashes[1] and len(hashes[1]) == 64


def test_resume_refuses_a_checkpoint_of_other_file_contents(tmp_path):
    labels = tmp_path / "labels.npy"
    _labels(labels, 0)
    env = {**os.environ, "OMP_NUM_THREADS": "1", KILL_ENV: "1:1"}
    cmd = [sys.executable, "-m", "nlbench", *_file_run(labels, tmp_path, "--run-id", "r")]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert (tmp_path / "r" / "checkpoint.pt").exists()
    _labels(labels, 1)

    def files():
        return {p.name: p.read_bytes() for p in (tmp_path / "r").iterdir() if p.name != "run.lock"}

    before = files()
    env[KILL_ENV] = ""
    for without in (None, "run.json"):  # the record names the file, and so does the checkpoint
        if without:
            (tmp_path / "r" / without).unlink()
            before.pop(without)
        cmd_ = [*cmd, "--resume"]
        proc = subprocess.run(cmd_, env=env, capture_output=True, text=True, timeout=300)
        lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
        assert proc.returncode == 2 and len(lines) == 1 and "Traceback" not in proc.stderr
        assert str(labels) in lines[0] and "has changed" in lines[0]
        assert files() == before


# -- checkpoints are checked completely before anything is restored or written (#32) ---------
@pytest.fixture
def kept_checkpoint(tmp_path, capsys, monkeypatch):
    """An interrupted 3-epoch run whose checkpoint after epoch 2 is kept (in-process, fast)."""
    from nlbench.engine import checkpoint

    monkeypatch.setattr(checkpoint, "remove", lambda run_dir: None)
    args = [*digits_run("0.4", 3, 100, "-q"), "--out", str(tmp_path), "--run-id", "r"]
    assert run_cli(capsys, *args).code == 0
    monkeypatch.undo()
    run_dir = tmp_path / "r"
    record = json.loads((run_dir / "run.json").read_text())
    (run_dir / "run.json").write_text(json.dumps({**record, "status": "interrupted"}))
    return run_dir, [*args, "--resume"]


def _edit_checkpoint(run_dir: Path, **changes) -> None:
    import torch

    payload = torch.load(run_dir / "checkpoint.pt", weights_only=True)
    torch.save({**payload, **changes}, run_dir / "checkpoint.pt")


@pytest.mark.parametrize(
    "changes, fragment",
    [
        ("long", "holds 12 epochs, this run has epochs=3"),
        ({"epochs": "junk"}, "epochs is a str"),
        ({"epochs": [{"epoch": 5}]}, "numbered [5]"),
        ({"totals": {"wall_s": -1.0}}, "totals"),
        ({"totals": []}, "totals"),
    ],
)
def test_a_bad_checkpoint_is_refused_and_nothing_is_written(
    kept_checkpoint, capsys, changes, fragment
):
    import torch

    run_dir, resume = kept_checkpoint
    if changes == "long":
        epochs = torch.load(run_dir / "checkpoint.pt", weights_only=True)["epochs"]
        changes = {"epochs": [{**epochs[0], "epoch": i} for i in range(12)]}
    _edit_checkpoint(run_dir, **changes)
    before = {p.name: p.read_bytes() for p in run_dir.iterdir()}
    res = run_cli(capsys, *resume)
    assert_usage_error(res, "checkpoint", fragment)
    assert {p.name: p.read_bytes() for p in run_dir.iterdir()} == before


def test_a_good_checkpoint_still_resumes(kept_checkpoint, capsys):
    run_dir, resume = kept_checkpoint
    assert run_cli(capsys, *resume).code == 0
    record = json.loads((run_dir / "run.json").read_text())
    assert record["status"] == "done" and len(record["epochs"]) == 3


def test_full_disk_while_the_checkpoint_is_written_is_one_line(tmp_path, capsys, monkeypatch):
    """ENOSPC in the middle of the checkpoint's bytes (/dev/full), not only at the rename:
    torch would raise it as a RuntimeError; the record and the log stay valid."""
    from nlbench.core import atomic

    if not os.path.exists("/dev/full"):
        pytest.skip("needs /dev/full")
    real, calls = atomic.os.fdopen, {"n": 0}

    def fdopen(fd, mode, **kw):
        if "b" in mode:  # the checkpoint (records are text)
            calls["n"] += 1
            if calls["n"] == 2:
                os.close(fd)
                return real(os.open("/dev/full", os.O_WRONLY), mode, **kw)
        return real(fd, mode, **kw)

    monkeypatch.setattr(atomic.os, "fdopen", fdopen)
    args = [*digits_run("0.4", 3, 100, "-q"), "--out", str(tmp_path), "--run-id", "r"]
    res = run_cli(capsys, *args)
    lines = [ln for ln in res.err.splitlines() if ln.strip()]
    assert res.code == 1 and len(lines) == 1 and "No space left on device" in lines[0], res.err
    record = json.loads((tmp_path / "r" / "run.json").read_text())
    assert record["status"] == "failed" and len(record["epochs"]) == 2
    assert not list((tmp_path / "r").glob(".*.tmp"))
