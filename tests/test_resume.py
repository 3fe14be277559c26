"""Resume equals uninterrupted, for every method: the one state channel and the contract."""

from __future__ import annotations

import io
import json
import os
import pickle
import random
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import pytest
import torch
from helpers import assert_usage_error, digits_run, run_cli

from nlbench import hookimpl
from nlbench.core.specs import MethodSpec
from nlbench.engine.faults import ENV
from nlbench.host import plugins
from nlbench.host.plugins import get_host
from nlbench.testing import (
    _run_killed,
    check_method_contract,
    check_resume,
    comparable_epochs,
    one_thread,
    tiny_run,
)
from nlbench.training.method import SingleNetMethod

METHODS = get_host().registry("methods").names()


@pytest.mark.parametrize("method", METHODS)
def test_every_method_resumes_to_the_uninterrupted_run(tmp_path, method):
    check_method_contract(method, tmp_path)


def test_kill_between_epoch_log_and_checkpoint(tmp_path):
    """The widest window: the epoch's line is written, its checkpoint is not."""
    with one_thread():
        reference = tiny_run(tmp_path, "erm")
        check_resume("erm", tmp_path, reference, kill_at="0:end")


# -- a method that forgets a piece of state fails the contract ------------------------------
class NoisyStep(SingleNetMethod):
    """ERM whose loss is scaled by a draw from its own generator (state beyond the nets)."""

    register = False

    def __init__(self, ctx) -> None:
        super().__init__(ctx)
        self.draws = torch.Generator().manual_seed(0)
        if self.register:
            self.register_state("draws")

    def sample_weights(self, batch, loss):
        return torch.rand(loss.shape[0], generator=self.draws).to(loss.device) + 0.5


class RegisteredNoisyStep(NoisyStep):
    register = True


@pytest.fixture
def toy_methods():
    module: Any = types.ModuleType("toy_methods")  # hooks set as attributes below

    @hookimpl
    def register_methods(register):
        register(MethodSpec(name="forgetful", description="t", factory=NoisyStep))
        register(MethodSpec(name="careful", description="t", factory=RegisteredNoisyStep))

    module.register_methods = register_methods
    plugins.reset()
    plugins.load_plugins(extra=[("toy_methods", module)])
    yield
    plugins.reset()


def test_contract_catches_unregistered_state(tmp_path, toy_methods):
    with pytest.raises(AssertionError, match="differ from the uninterrupted run"):
        check_method_contract("forgetful", tmp_path / "a")
    check_method_contract("careful", tmp_path / "b")


# -- the state channel -------------------------------------------------------------------------
class _Counter:
    def __init__(self) -> None:
        self.n = 0

    def state_dict(self):
        return {"n": self.n}

    def load_state_dict(self, state):
        self.n = state["n"]


def _method(tmp_path):
    from nlbench.testing import _build_tiny

    return _build_tiny("erm", tmp_path)


def _roundtrip(state):
    buf = io.BytesIO()
    torch.save(state, buf)
    buf.seek(0)
    return torch.load(buf, weights_only=True)


def test_register_state_round_trips_every_kind(tmp_path):
    a, b = _method(tmp_path / "a"), _method(tmp_path / "b")
    for m in (a, b):
        m.gen, m.history, m.counter = torch.Generator().manual_seed(1), [torch.zeros(2)], _Counter()
        m.pair = (1, 2)
        for name in ("gen", "history", "counter"):
            m.register_state(name)
        m.register_state("pair", save=list, load=tuple)
    torch.rand(3, generator=a.gen)
    a.history, a.counter.n, a.pair = [torch.ones(3)], 7, (3, 4)
    b.load_state_dict(_roundtrip(a.state_dict()))
    assert torch.equal(torch.rand(2, generator=a.gen), torch.rand(2, generator=b.gen))
    assert torch.equal(b.history[0], torch.ones(3)) and b.counter.n == 7 and b.pair == (3, 4)
    a_net, b_net = a.networks()["net"].state_dict(), b.networks()["net"].state_dict()
    assert all(torch.equal(a_net[k], b_net[k]) for k in a_net)


def test_load_refuses_another_methods_state(tmp_path):
    a, b = _method(tmp_path / "a"), _method(tmp_path / "b")
    b.cursor = torch.zeros(1)
    b.register_state("cursor")
    with pytest.raises(KeyError, match="cursor"):
        b.load_state_dict(a.state_dict())
    other = {**a.state_dict(), "networks": {"net1": {}, "net2": {}}}
    with pytest.raises(KeyError, match="networks"):
        a.load_state_dict(other)
    with pytest.raises(AttributeError, match="no attribute"):
        b.register_state("missing")


def test_legacy_extra_state_is_still_checkpointed(tmp_path):
    class Legacy(SingleNetMethod):
        cursor: int  # a state attribute registered by name

        def extra_state(self):
            return {"k": torch.tensor([5.0])}

        def load_extra_state(self, state):
            self.loaded = state["k"]

    a = Legacy(_method(tmp_path).ctx)
    a.cursor = 3
    a.register_state("cursor")
    b = Legacy(a.ctx)
    b.cursor = 0
    b.register_state("cursor")
    b.load_state_dict(_roundtrip(a.state_dict()))
    assert b.loaded.item() == 5.0 and b.cursor == 3


def test_old_checkpoints_of_dividemix_still_load(tmp_path):
    """Before register_state, DivideMix kept history and splits under "extra"."""
    from nlbench.core.config import RunConfig
    from nlbench.testing import build_method

    tiny: dict[str, Any] = {"device": "cpu", "epochs": 2, "train_subset": 300}
    cfg = RunConfig(method="dividemix", dataset="digits", noise="0.4", out=str(tmp_path), **tiny)
    method: Any  # the plugin's own attributes are read below
    method, _ = build_method(cfg)
    split = {"labeled": torch.arange(3), "weight": torch.ones(3), "unlabeled": torch.arange(3, 6)}
    history = {"net1": [torch.ones(2)], "net2": []}
    new = method.state_dict()
    extra = {"history": history, "splits": {"net1": {**split, "fallback": None}}}
    old = {"networks": new["networks"], "optimizers": new["optimizers"], "extra": extra}
    method.load_state_dict(_roundtrip(old))
    assert torch.equal(method.splits["net1"].labeled, torch.arange(3))
    assert len(method.history["net1"]) == 1


# -- checkpoints that cannot be read -----------------------------------------------------------
ARGS = digits_run("0.4", 2, 300, "-q")


@pytest.fixture(scope="module")
def real_checkpoint(tmp_path_factory) -> bytes:
    out = tmp_path_factory.mktemp("ckpt")
    with one_thread():
        _run_killed(lambda: tiny_run(out, "erm", run_id="k"), ENV, "1:1", 600)
    return (out / "k" / "checkpoint.pt").read_bytes()


class _Hostile:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def _bad_checkpoints(real: bytes) -> dict[str, bytes]:
    def saved(obj) -> bytes:
        buf = io.BytesIO()
        torch.save(obj, buf)
        return buf.getvalue()

    good = torch.load(io.BytesIO(real), weights_only=True)
    return {
        "empty": b"",
        "truncated": real[: len(real) // 2],
        "wrong-keyed": saved({"foo": 1}),
        "not-a-dict": saved([1, 2]),
        "hostile": pickle.dumps(_Hostile()),
        "hostile-zip": saved({"identity": _Hostile()}),
        "wrong-networks": saved({**good, "networks": {"other": {}}}),
    }


BAD = ["empty", "truncated", "wrong-keyed", "not-a-dict", "hostile", "hostile-zip"]
BAD += ["wrong-networks"]


@pytest.mark.parametrize("kind", BAD)
def test_unreadable_checkpoint_is_refused_in_one_line(tmp_path, capsys, real_checkpoint, kind):
    run_dir = tmp_path / "k"
    run_dir.mkdir()
    data = _bad_checkpoints(real_checkpoint)[kind]
    (run_dir / "checkpoint.pt").write_bytes(data)
    res = run_cli(capsys, *ARGS, "--out", str(tmp_path), "--run-id", "k", "--resume")
    assert_usage_error(res, "checkpoint", "cannot be read", "restart without --resume")
    assert "weights_only" not in res.err and "pwned" not in res.out
    assert (run_dir / "checkpoint.pt").read_bytes() == data


def _resumed(tmp_path: Path, capsys, checkpoint: bytes) -> dict:
    (tmp_path / "k").mkdir()
    (tmp_path / "k" / "checkpoint.pt").write_bytes(checkpoint)
    res = run_cli(capsys, *ARGS, "--out", str(tmp_path), "--run-id", "k", "--resume")
    assert res.code == 0, res.err
    return json.loads((tmp_path / "k" / "run.json").read_text())


def test_resume_from_a_real_checkpoint_works(tmp_path, capsys, real_checkpoint):
    record = _resumed(tmp_path, capsys, real_checkpoint)
    assert record["status"] == "done"
    before = torch.load(io.BytesIO(real_checkpoint), weights_only=True)["totals"]["cpu_s"]
    assert 0 < before < record["summary"]["cpu_s"]  # the first part's CPU time carried over


def test_a_checkpoint_from_before_cpu_time_resumes_without_it(tmp_path, capsys, real_checkpoint):
    old = torch.load(io.BytesIO(real_checkpoint), weights_only=True)
    del old["totals"]["cpu_s"]
    buf = io.BytesIO()
    torch.save(old, buf)
    record = _resumed(tmp_path, capsys, buf.getvalue())
    assert record["status"] == "done" and record["summary"]["cpu_s"] is None  # not a guess


# -- the kill loop -----------------------------------------------------------------------------
LOOP = {
    "erm": [],
    "dividemix": ["--set", "warmup_epochs=1"],
    "fl_weighted": [],
    "density_weighted": [],
    "mwnet": [],
    "l2r": [],
    "famus": [],
}


def _cli(out: Path, run_id: str, method: str, kill: str | None, *extra: str):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop(ENV, None)
    if kill:
        env[ENV] = kill
    tiny = [
        "-d",
        "digits",
        "-n",
        "0.4",
        "--epochs",
        "3",
        "--train-subset",
        "300",
        "--device",
        "cpu",
        "-q",
    ]
    cmd = [sys.executable, "-m", "nlbench", "run", "-m", method, *tiny, "--out", str(out)]
    cmd += ["--run-id", run_id, *LOOP[method], *extra]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_kill_loop_random_points_many_methods(tmp_path):
    """SIGKILL at random points, 1-3 times per run, over 10 runs: every record stays
    parseable and every resumed run equals its uninterrupted twin."""
    from nlbench.core.record import read_record

    rng = random.Random(20261201)
    for i, method in enumerate([*LOOP, "erm", "dividemix", "fl_weighted"]):
        ref = _cli(tmp_path, f"ref{i}", method, None)
        assert ref.returncode == 0, ref.stderr
        epochs = sorted(rng.randrange(3) for _ in range(rng.randint(1, 3)))
        # steps 1-2 exist in every epoch (fl_weighted trains 120 selected samples: 2 batches)
        kills = [f"{e}:{rng.choice(['1', '2', 'end'])}" for e in epochs]
        for n, kill in enumerate(kills):
            proc = _cli(tmp_path, f"run{i}", method, kill, *(["--resume"] if n else []))
            assert proc.returncode == -9, (kill, proc.returncode, proc.stderr)
            if (tmp_path / f"run{i}" / "run.json").exists():
                assert read_record(tmp_path / f"run{i}" / "run.json")["status"] == "running"
        done = _cli(tmp_path, f"run{i}", method, None, "--resume")
        assert done.returncode == 0, done.stderr
        got = read_record(tmp_path / f"run{i}" / "run.json")["epochs"]
        want = read_record(tmp_path / f"ref{i}" / "run.json")["epochs"]
        assert comparable_epochs(got) == comparable_epochs(want), (method, kills)
