"""The runner's parts, each alone: epoch loop, evaluation, run files, observers' run_failed."""

from __future__ import annotations

import json
import types
from pathlib import Path
from typing import Any

import pytest
import torch

from nlbench import hookimpl
from nlbench.core.config import RunConfig
from nlbench.core.errors import Interrupted
from nlbench.engine.context import build_method
from nlbench.engine.epoch_loop import EpochTrainer, apply_lr
from nlbench.engine.evaluation import Evaluator, evaluate
from nlbench.engine.prepare import prepare
from nlbench.engine.run_io import RunFiles, base_record
from nlbench.engine.run_state import RunState
from nlbench.host import plugins
from nlbench.training.data import EpochPlan
from nlbench.training.metrics import BatchSelection

TINY: dict[str, Any] = {
    "dataset": "digits",
    "noise": "0.4",
    "epochs": 2,
    "train_subset": 200,
    "device": "cpu",
}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A real ERM method on the runner's context (digits, 200 samples), built once."""
    out = tmp_path_factory.mktemp("parts")
    cfg = RunConfig(method="erm", out=str(out), **TINY)
    host = plugins.get_host()
    prep = prepare(cfg, host)
    method, ctx, cache = build_method(prep, torch.device("cpu"), host)
    state = RunState(cfg, prep, out / prep.run_id, torch.device("cpu"), method)
    return types.SimpleNamespace(
        cfg=cfg, host=host, prep=prep, method=method, ctx=ctx, cache=cache, state=state
    )


# -- epoch loop -------------------------------------------------------------------------------
class _Batch:
    def __init__(self, n: int, first: int) -> None:
        self.y = torch.zeros(n, dtype=torch.long)
        self.index = torch.arange(first, first + n)


class _FakeMethod:
    """Returns the batch size as its loss and picks the first sample of every batch."""

    def __init__(self, batches) -> None:
        self.batches = batches
        self.lrs: list[float] = []
        self.opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0, momentum=0.5)

    def epoch_batches(self, epoch, plan):
        return self.batches

    def scheduled_optimizers(self):
        return [self.opt]

    def train_step(self, batch):
        self.lrs.append(self.opt.param_groups[0]["lr"])
        n = batch.y.shape[0]
        return {"loss": torch.tensor(float(n)), "selected": batch.index[:1]}


def _ctx(hp):
    return types.SimpleNamespace(hparams=hp, train=None)


def test_apply_lr_sets_lr_and_momentum_only_where_there_is_momentum():
    sgd = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0, momentum=0.9)
    adam = torch.optim.Adam([torch.zeros(1, requires_grad=True)], lr=1.0)
    method: Any = types.SimpleNamespace(scheduled_optimizers=lambda: [sgd, adam])  # a stand-in
    apply_lr(method, 0.25, 0.8)
    assert sgd.param_groups[0]["lr"] == adam.param_groups[0]["lr"] == 0.25
    assert sgd.param_groups[0]["momentum"] == 0.8 and "momentum" not in adam.param_groups[0]
    apply_lr(method, 0.5, None)
    assert sgd.param_groups[0]["momentum"] == 0.8


def test_epoch_trainer_weights_means_by_batch_size_and_follows_the_schedule():
    method = _FakeMethod([_Batch(4, 0), _Batch(2, 4)])
    hp = {"lr": 0.1, "scheduler": "multistep", "milestones": [0.5], "gamma": 0.1, "epochs": 2}
    selection = BatchSelection(torch.zeros(6, dtype=torch.long), torch.zeros(6, dtype=torch.long))
    plan = EpochPlan(steps=2)
    trained = EpochTrainer().run(method, _ctx(hp), 1, plan, selection)  # type: ignore[arg-type]
    assert trained.seen == 6
    assert trained.means["loss"] == pytest.approx((4 * 4 + 2 * 2) / 6)  # per-sample mean
    assert method.lrs == pytest.approx([0.01, 0.01]) and trained.lr == pytest.approx(0.01)
    assert selection.metrics()["batch_selected"] == 2  # one pick per batch


def test_epoch_trainer_stops_at_a_step_boundary():
    method = _FakeMethod([_Batch(2, 0), _Batch(2, 2), _Batch(2, 4)])
    hp = {"lr": 0.1, "scheduler": "constant", "epochs": 1}
    calls = {"n": 0}

    def stopped() -> bool:
        calls["n"] += 1
        return calls["n"] >= 2

    with pytest.raises(Interrupted):
        EpochTrainer(stopped=stopped).run(method, _ctx(hp), 0, EpochPlan(steps=3))  # type: ignore[arg-type]
    assert len(method.lrs) == 2  # the second step finished, the third never started


# -- evaluation -------------------------------------------------------------------------------
def test_evaluate_is_the_accuracy_of_predict(built):
    test = built.prep.data.test
    from nlbench.training.data import EvalSet

    data = built.prep.data
    evalset = EvalSet(test, data.mean, data.std, torch.device("cpu"), False)
    for net in built.method.networks().values():
        net.eval()
    brute = sum(
        int((built.method.predict(x).argmax(1) == y).sum()) for x, y in evalset.batches(7)
    ) / len(test)
    assert evaluate(built.method, evalset, 64) == pytest.approx(brute)


def test_evaluator_fit_metrics_match_a_brute_force_scan(built):
    ev = Evaluator.for_run(built.prep, built.ctx, built.method, built.cache, plugins_dist())
    train = built.ctx.train
    for net in built.method.networks().values():
        net.eval()
    with torch.no_grad():
        logits = torch.cat([built.method.predict(train.plain(i)) for i in train.scan_batches(50)])
    hits = logits.argmax(1) == train.labels
    corrupted = train.labels != ev.clean
    fit = ev.fit(method_scanned=False)
    assert fit["noisy_fit"] == pytest.approx(float(hits[corrupted].float().mean()))
    assert fit["clean_fit"] == pytest.approx(float(hits[~corrupted].float().mean()))
    assert fit["train_acc_noisy"] == pytest.approx(float(hits.float().mean()))


def test_epoch_metrics_hold_the_epoch_line(built):
    from nlbench.engine.epoch_loop import EpochTrained

    ev = Evaluator.for_run(built.prep, built.ctx, built.method, built.cache, plugins_dist())
    n = len(built.ctx.train)
    plan = EpochPlan(indices=torch.arange(10), clean_prob=torch.rand(n), metrics={"extra": 1})
    trained = EpochTrained({"loss": 0.5, "acc": 0.25}, n, 0.01)
    m = ev.epoch_metrics(3, trained, plan, ev.selection(), False, 0.125)
    assert (m["epoch"], m["lr"], m["train_loss"], m["train_acc"]) == (3, 0.01, 0.5, 0.25)
    assert m["selected"] == 10 and m["select_s"] == 0.125 and m["extra"] == 1
    assert 0 <= m["test_acc"] <= 1 and 0 <= m["detection_auc"] <= 1
    assert trained.means == {"loss": 0.5, "acc": 0.25}  # not consumed


def plugins_dist():
    from nlbench.training.distributed import SINGLE

    return SINGLE


# -- run files --------------------------------------------------------------------------------
def test_base_record_carries_identity_and_provenance(built):
    record = base_record(built.state, built.method, built.host, 1)
    assert record["run_id"] == built.prep.run_id and record["status"] == "running"
    assert record["config"]["hparams"] == built.prep.hparams
    assert record["env"]["threads"] == torch.get_num_threads() and record["env"]["world_size"] == 1


def test_run_files_fresh_start_keeps_user_files_and_done_drops_the_checkpoint(built, tmp_path):
    state = RunState(built.cfg, built.prep, tmp_path / "r", torch.device("cpu"), built.method)
    files = RunFiles(state)
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "notes.txt").write_text("mine")
    (tmp_path / "r" / "epochs.jsonl").write_text("{}\n")
    prior = files.start_or_resume(built.method, built.ctx, resume=False)
    assert prior["epochs"] == [] and prior["images"] == 0
    assert sorted(p.name for p in (tmp_path / "r").iterdir()) == ["notes.txt"]
    state.epochs = [{"epoch": 0, "test_acc": 0.5}]
    files.end_epoch(
        state.epochs[0], built.method, built.ctx, {"wall_s": 1.0, "images": 2, "train_s": 1.0}
    )
    assert (tmp_path / "r" / "checkpoint.pt").exists()
    assert files.start_or_resume(built.method, built.ctx, resume=True)["images"] == 2
    files.done({"status": "done", "epochs": state.epochs})
    assert not (tmp_path / "r" / "checkpoint.pt").exists()
    assert json.loads((tmp_path / "r" / "run.json").read_text())["status"] == "done"


def test_run_files_failed_and_interrupted(built, tmp_path, monkeypatch):
    from nlbench.core.atomic import WriteError
    from nlbench.engine import run_io

    state = RunState(built.cfg, built.prep, tmp_path / "r", torch.device("cpu"), built.method)
    files = RunFiles(state)
    files.write({"status": "running"})
    assert "before the first epoch" in str(files.interrupted({"status": "running"}))
    assert not (tmp_path / "r" / "run.json").exists()  # nothing to keep
    state.epochs = [{"epoch": 0}]
    assert "--resume" in str(files.interrupted({"status": "running"}))
    assert json.loads((tmp_path / "r" / "run.json").read_text())["status"] == "interrupted"
    files.failed({"status": "running"}, RuntimeError("boom"))
    failed = json.loads((tmp_path / "r" / "run.json").read_text())
    assert failed["status"] == "failed" and failed["error"] == "RuntimeError: boom"

    def full_disk(*_):
        raise WriteError("disk full")

    monkeypatch.setattr(run_io, "write_record", full_disk)
    files.failed({"status": "running"}, RuntimeError("again"))  # logged, not raised
    assert json.loads((tmp_path / "r" / "run.json").read_text())["error"] == "RuntimeError: boom"


def test_only_rank_zero_writes(built, tmp_path):
    from nlbench.training.distributed import DistInfo

    state = RunState(built.cfg, built.prep, tmp_path / "r", torch.device("cpu"), built.method)
    RunFiles(state, DistInfo(rank=1, world=2)).write({"status": "running"})
    assert not (tmp_path / "r").exists()


# -- the runner and the observers ----------------------------------------------------------------
def test_deterministic_flags_are_set_in_one_place(tmp_path):
    """seeding.set_deterministic is the runner's only writer of torch's global flags."""
    import inspect

    from nlbench.engine import runner

    source = inspect.getsource(runner)
    assert "torch.backends" not in source and "use_deterministic_algorithms" not in source
    before = torch.are_deterministic_algorithms_enabled()
    try:
        runner.run(method="erm", out=str(tmp_path), deterministic=True, **{**TINY, "epochs": 1})
        assert torch.are_deterministic_algorithms_enabled()
    finally:
        torch.use_deterministic_algorithms(before)


@pytest.fixture
def failing_host():
    """A host with an observer that records run_failed calls and a method failing in epoch 1."""
    seen: dict[str, list] = {"failed": [], "finished": []}

    @hookimpl
    def run_failed(run, error):
        status = json.loads((run.run_dir / "run.json").read_text())["status"]  # written first
        seen["failed"].append((run.run_id, type(error).__name__, str(error), status))
        raise RuntimeError("observer cleanup broke")  # logged; never hides the run's error

    @hookimpl
    def run_finished(run, record):
        seen["finished"].append(record["status"])

    obs = types.SimpleNamespace(run_failed=run_failed, run_finished=run_finished)
    plugins.reset()
    host = plugins.load_plugins(extra=[("zz_cleanup", obs)])
    plugins.reset()
    yield host, seen
    plugins.reset()


def _explode_in_epoch(monkeypatch, epoch: int, exc: BaseException) -> None:
    from nlbench.training.method import SingleNetMethod

    original = SingleNetMethod.start_epoch

    def start_epoch(self, e, scan):
        if e == epoch:
            raise exc
        return original(self, e, scan)

    monkeypatch.setattr(SingleNetMethod, "start_epoch", start_epoch)


def test_hook_run_failed(failing_host, tmp_path, monkeypatch):
    from nlbench.engine.runner import Runner

    host, seen = failing_host
    _explode_in_epoch(monkeypatch, 1, ValueError("exploded"))
    cfg = RunConfig(method="erm", out=str(tmp_path), run_id="f", **TINY)
    with pytest.raises(ValueError, match="exploded"):
        Runner(cfg, host=host).run()
    assert seen == {"failed": [("f", "ValueError", "exploded", "failed")], "finished": []}
    assert json.loads((tmp_path / "f" / "run.json").read_text())["status"] == "failed"


def test_run_failed_on_interrupt(failing_host, tmp_path, monkeypatch):
    from nlbench.engine.runner import Runner

    host, seen = failing_host
    _explode_in_epoch(monkeypatch, 1, Interrupted("interrupted"))
    cfg = RunConfig(method="erm", out=str(tmp_path), run_id="i", **TINY)
    with pytest.raises(Interrupted, match="--resume"):
        Runner(cfg, host=host).run()
    ((run_id, kind, message, status),) = seen["failed"]
    assert (run_id, kind, status) == ("i", "Interrupted", "interrupted") and "--resume" in message
    assert seen["finished"] == []
    assert json.loads((tmp_path / "i" / "run.json").read_text())["status"] == "interrupted"


def test_tensorboard_writer_is_closed_when_a_run_fails(tmp_path, monkeypatch):
    from nlbench.engine.runner import Runner
    from nlbench_plugins import observers_tensorboard as tb

    closed: list[str] = []

    class Writer:
        def __init__(self, log_dir: str) -> None:
            self.log_dir = log_dir

        def add_scalar(self, *args) -> None: ...
        def flush(self) -> None: ...
        def close(self) -> None:
            closed.append(Path(self.log_dir).parent.name)

    monkeypatch.setattr(tb, "writer_class", lambda: Writer)
    _explode_in_epoch(monkeypatch, 1, RuntimeError("exploded"))
    cfg = RunConfig(method="erm", out=str(tmp_path), run_id="tb", **TINY)
    with pytest.raises(RuntimeError):
        Runner(cfg).run()
    assert closed == ["tb"] and "tb" not in tb._writers


# -- smaller pieces: record schema, download's recorded checks ----------------------------------
@pytest.mark.parametrize("schema", [2, True, "1", None])
def test_a_record_of_another_schema_is_refused(tmp_path, schema):
    from nlbench.core.record import RecordError, read_record

    path = tmp_path / "run.json"
    path.write_text(json.dumps({"schema": schema}))
    with pytest.raises(RecordError, match="unknown record schema"):
        read_record(path)


def test_require_files_reports_its_checks_only_inside_a_recording(tmp_path):
    from nlbench.core.download import Expected, recording_checks, require_files

    (tmp_path / "a.bin").write_bytes(b"x")
    expected = [Expected("a.bin")]
    with recording_checks() as checked:
        require_files(tmp_path, expected, name="toy", download=False)
    assert checked == {"toy": (tmp_path, tuple(expected))}
    with recording_checks() as again:
        pass
    require_files(tmp_path, expected, name="toy", download=False)  # no recording: kept nowhere
    assert again == {}
