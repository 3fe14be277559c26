"""Phases (nlbench.training.phases): work before the first epoch, checkpointed unit by unit, shown in
progress and counted in the run's cost; a kill inside one resumes to the uninterrupted run."""

from __future__ import annotations

import time
from typing import Any

import pytest

from nlbench.core.errors import Interrupted, UsageError
from nlbench.engine import faults
from nlbench.engine.run_state import NullProgress
from nlbench.testing import check_resume, one_thread, tiny_run
from nlbench.training.phases import Phase, PhaseTotals, run_phases

CL: dict[str, Any] = {"set": {"cv_folds": 2, "cv_epochs": 2}}  # 4 units of the kfold phase


class Recorder(NullProgress):
    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def phase_start(self, name: str, units: int, done: int) -> None:
        self.calls.append(("phase", name, units, done))

    def step(self) -> None:
        self.calls.append(("step",))


def _phase(done: list[int], units: int = 3) -> Phase:
    def unit(i: int) -> int:
        done.append(i)
        return 10 * (i + 1)

    return Phase("toy", units, unit)


def test_units_run_in_order_each_saved_and_counted():
    done: list[int] = []
    saved: list[int] = []
    progress = Recorder()

    def save(t: PhaseTotals) -> None:
        assert t.log is not None
        saved.append(t.log["toy"]["done"])

    totals = run_phases(
        [_phase(done)],
        PhaseTotals(images=5, train_s=0.0),
        save,
        progress,
        faults.KillSwitch(""),
        lambda: False,
    )
    assert done == [0, 1, 2] and saved == [1, 2, 3]
    assert totals.images == 5 + 10 + 20 + 30
    assert totals.log is not None
    assert totals.log["toy"]["images"] == 60 and totals.log["toy"]["units"] == 3
    assert progress.calls[0] == ("phase", "toy", 3, 0)
    assert progress.calls.count(("step",)) == 3


def test_a_resumed_phase_runs_only_the_units_left():
    done: list[int] = []
    log = {"toy": {"units": 3, "done": 2, "unit": "unit", "images": 30, "s": 0.0}}
    totals = run_phases(
        [_phase(done)],
        PhaseTotals(30, 0.0, log),
        lambda t: None,
        NullProgress(),
        faults.KillSwitch(""),
        lambda: False,
    )
    assert totals.log is not None
    assert done == [2] and totals.log["toy"]["done"] == 3 and totals.images == 60


def test_a_finished_phase_runs_nothing_and_stop_is_honoured_between_units():
    done: list[int] = []
    log = {"toy": {"units": 3, "done": 3, "unit": "unit", "images": 0, "s": 0.0}}
    run_phases(
        [_phase(done)],
        PhaseTotals(0, 0.0, log),
        lambda t: None,
        NullProgress(),
        faults.KillSwitch(""),
        lambda: False,
    )
    assert done == []
    saved: list[int] = []
    with pytest.raises(Interrupted):
        run_phases(
            [_phase(done)],
            PhaseTotals(),
            lambda t: saved.append(1),
            NullProgress(),
            faults.KillSwitch(""),
            lambda: True,
        )
    assert done == [0] and saved == [1]  # the unit's work was checkpointed before stopping


def test_kill_switch_reads_phase_units(monkeypatch):
    died: list[bool] = []
    monkeypatch.setattr(faults, "_die", lambda: died.append(True))
    switch = faults.KillSwitch("kfold:2")
    switch.after_unit("kfold", 1)
    switch.after_unit("other", 2)
    switch.after_step(0, 2)
    assert not died
    switch.after_unit("kfold", 2)
    assert died == [True]
    with pytest.raises(UsageError, match="PHASE:UNIT"):
        faults.KillSwitch("kfold")


def test_phase_work_is_in_the_record_and_its_cost(tmp_path, monkeypatch):
    from nlbench.engine import runner

    seen: dict[str, float] = {}

    def summarise(epochs, wall_s, images, train_s, peak, cpu_s=None):
        seen.update(images=images, train_s=train_s, cpu_s=cpu_s)
        return real(epochs, wall_s, images, train_s, peak, cpu_s)

    def phases(*args, **kwargs):
        t0 = time.process_time()
        out = real_phases(*args, **kwargs)
        seen["phase_cpu"] = time.process_time() - t0
        return out

    real, real_phases = runner.summarise, runner.run_phases
    monkeypatch.setattr(runner, "summarise", summarise)
    monkeypatch.setattr(runner, "run_phases", phases)
    with one_thread():
        record = tiny_run(tmp_path, "confident_learning", epochs=1, **CL)
    phase = record["phases"]["kfold"]
    assert phase["units"] == phase["done"] == 4 and phase["unit"] == "fold epoch"
    # 2 folds × 2 epochs on half of 300 samples each, plus each held-out half predicted once
    assert phase["images"] == 2 * 2 * 150 + 300
    kept = 300 - record["epochs"][0]["label_issues"]  # one epoch on the kept samples
    assert seen["images"] == phase["images"] + kept
    assert seen["train_s"] > phase["s"] > 0
    assert seen["cpu_s"] == record["summary"]["cpu_s"] >= seen["phase_cpu"] > 0


@pytest.mark.parametrize("kill_at", ["kfold:1", "kfold:3", "kfold:4", "0:1"])
def test_kill_inside_the_kfold_phase_resumes_to_the_uninterrupted_run(tmp_path, kill_at):
    with one_thread():
        reference = tiny_run(tmp_path, "confident_learning", **CL)
        resumed = check_resume("confident_learning", tmp_path, reference, kill_at=kill_at, **CL)
    assert resumed["phases"]["kfold"]["images"] == reference["phases"]["kfold"]["images"]


def test_a_kill_inside_the_kfold_phase_keeps_the_phase_in_cpu_s(tmp_path):
    """The CPU time of the units saved before a SIGKILL (the kill at unit 3 falls between its
    work and its checkpoint) is carried by the checkpoint and counted once in the resumed
    run's ``cpu_s``: neither lost with the killed process nor counted twice."""
    import importlib

    import torch

    from nlbench.engine.faults import ENV
    from nlbench.testing import _run_killed

    for module in ("sklearn.model_selection", "cleanlab.filter", "cleanlab.count"):
        importlib.import_module(module)  # once, before the fork, not in both processes

    def killed() -> None:
        tiny_run(tmp_path, "confident_learning", run_id="cut", **CL)

    with one_thread():
        _run_killed(killed, ENV, "kfold:3", timeout=600)
        saved = torch.load(tmp_path / "cut" / "checkpoint.pt", weights_only=True)["totals"]
        t0 = time.process_time()
        resumed = tiny_run(tmp_path, "confident_learning", run_id="cut", resume=True, **CL)
        here = time.process_time() - t0
    assert saved["phases"]["kfold"]["done"] == 2 and saved["cpu_s"] > 0
    cpu_s = resumed["summary"]["cpu_s"]
    assert saved["cpu_s"] < cpu_s <= saved["cpu_s"] + here
    assert resumed["phases"]["kfold"]["done"] == 4


def test_kill_inside_the_transition_estimate_resumes(tmp_path):
    extra: dict[str, Any] = {"set": {"estimate_epochs": 3}}
    with one_thread():
        reference = tiny_run(tmp_path, "forward", **extra)
        check_resume("forward", tmp_path, reference, kill_at="estimate_t:2", **extra)


def test_ctrl_c_inside_a_phase_keeps_its_units_and_resumes(tmp_path, monkeypatch):
    import os
    import signal

    from nlbench.core.record import read_record
    from nlbench.testing import comparable_epochs
    from nlbench_plugins.method_confident_learning import ConfidentLearning

    with one_thread():
        reference = tiny_run(tmp_path / "a", "confident_learning", **CL)
        real = ConfidentLearning._fold_unit

        def unit_then_ctrl_c(self, unit):
            out = real(self, unit)
            if unit == 1:
                os.kill(os.getpid(), signal.SIGINT)  # the runner's handler sets its stop flag
            return out

        monkeypatch.setattr(ConfidentLearning, "_fold_unit", unit_then_ctrl_c)
        with pytest.raises(Interrupted, match="pre-training phase"):
            tiny_run(tmp_path / "b", "confident_learning", run_id="cut", **CL)
        run_dir = tmp_path / "b" / "cut"
        assert read_record(run_dir / "run.json")["status"] == "interrupted"
        assert (run_dir / "checkpoint.pt").exists()
        monkeypatch.setattr(ConfidentLearning, "_fold_unit", real)
        resumed = tiny_run(tmp_path / "b", "confident_learning", run_id="cut", resume=True, **CL)
    assert comparable_epochs(resumed["epochs"]) == comparable_epochs(reference["epochs"])
    assert resumed["phases"]["kfold"]["images"] == reference["phases"]["kfold"]["images"]
