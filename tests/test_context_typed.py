"""A method's context is typed and passed, not looked up; a method's facts reach its record.

- ``TrainContext.seed`` is required (no silent seed 0), ``components`` is where a method
  resolves its loss or selector (the run's host, never the global one), ``noise_transition``
  the oracle counts; ``ctx.extras`` still reads, with a DeprecationWarning.
- ``Method.set_fact`` / ``record_facts`` (declared in ``MethodSpec.facts``) end up in
  ``record["method_facts"]``, survive a resume and are compared by ``nlbench rerun``.
"""

from __future__ import annotations

import inspect
import io
import json
import logging
import types
from typing import Any

import pytest
import torch
from torch import nn

from nlbench.api import MethodSpec, SingleNetMethod, TrainContext, hookimpl
from nlbench.commands.rerun import compare_facts
from nlbench.core.config import RunConfig
from nlbench.core.errors import PluginError
from nlbench.engine import checkpoint
from nlbench.host import plugins
from nlbench.testing import tiny_run
from nlbench.training.method import MetaSet, build_loss, checked_facts

SGD = {"lr": 0.1, "momentum": 0.9, "nesterov": False, "weight_decay": 0.0}


class _Lookup:
    """A ComponentLookup that records what it was asked."""

    def __init__(self, spec: Any = None) -> None:
        self.spec = spec
        self.calls: list[tuple[str, str]] = []

    def get(self, kind: str, name: str) -> Any:
        self.calls.append((kind, name))
        return self.spec


def _fields(**changes: Any) -> dict[str, Any]:
    """TrainContext keyword arguments for a 4-feature, 2-class linear model."""
    fields: dict[str, Any] = {
        "hparams": dict(SGD),
        "num_classes": 2,
        "in_chans": 1,
        "image_size": 2,
        "device": torch.device("cpu"),
        "train": None,
        "epochs": 1,
        "steps_per_epoch": 1,
        "build_model": lambda: nn.Linear(4, 2),
        "gen": torch.Generator(),
        "scan": lambda: None,
        "seed": 3,
        "components": _Lookup(),
    }
    return {**fields, **changes}


# -- the typed context -------------------------------------------------------------------------
def test_a_context_without_a_seed_fails_instead_of_training_as_seed_0():
    fields = _fields()
    del fields["seed"]
    with pytest.raises(TypeError, match="seed"):
        TrainContext(**fields)
    for bad in (None, True, "3", 3.0):
        with pytest.raises(TypeError, match="seed must be an int"):
            TrainContext(**_fields(seed=bad))
    with pytest.raises(TypeError, match="extras"):  # the old keyword is refused, loudly
        TrainContext(**_fields(), extras={"seed": 3})  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="device"):
        TrainContext(**_fields(device="cpu"))


def test_extras_still_reads_the_same_data_with_a_deprecation_warning():
    lookup = _Lookup()
    ctx = TrainContext(**_fields(seed=7, components=lookup, noise_transition=[[3, 1], [0, 4]]))
    with pytest.warns(DeprecationWarning, match=r"TrainContext.extras is deprecated.*\.seed"):
        extras = ctx.extras
    assert extras == {
        "seed": 7,
        "host": lookup,
        "noise_transition": [[3, 1], [0, 4]],
        "meta_info": {"kind": "none", "size": 0},
    }
    meta = MetaSet(None, torch.zeros(5), "clean", 5)  # type: ignore[arg-type]
    with pytest.warns(DeprecationWarning):
        assert TrainContext(**_fields(meta=meta)).extras["meta_info"] == {
            "kind": "clean",
            "size": 5,
        }


def test_the_runners_context_carries_the_seed_the_host_and_the_counts(tmp_path):
    from nlbench.engine.context import build_method
    from nlbench.engine.prepare import prepare

    host = plugins.get_host()
    cfg = RunConfig(
        method="erm", dataset="digits", noise="sym:0.4", epochs=1, train_subset=100, seed=5
    )
    prep = prepare(cfg, host)
    _, ctx, _ = build_method(prep, torch.device("cpu"), host)
    assert ctx.seed == 5 and ctx.components is host
    assert ctx.noise_transition == prep.noise["transition_matrix"]
    assert ctx.noise_transition is not None
    assert sum(sum(row) for row in ctx.noise_transition) == 100
    with pytest.warns(DeprecationWarning):  # what build_context used to put in extras
        assert ctx.extras["meta_info"] == prep.data_info["meta_set"]


def test_the_loss_is_resolved_in_the_contexts_components_never_the_global_host(monkeypatch):
    def no_global_host():
        raise AssertionError("a method looked up the global plugin host")

    monkeypatch.setattr(plugins, "get_host", no_global_host)
    monkeypatch.setattr(plugins, "load_plugins", no_global_host)
    spec = types.SimpleNamespace(
        factory=lambda hp: lambda logits, y: torch.full((len(y),), float(hp["q"]))
    )
    lookup = _Lookup(spec)
    ctx = TrainContext(**_fields(hparams={**SGD, "loss": "mine", "q": 0.25}, components=lookup))
    loss = build_loss(ctx)
    assert lookup.calls == [("losses", "mine")]
    assert loss(torch.zeros(3, 2), torch.zeros(3, dtype=torch.long)).tolist() == [0.25] * 3
    assert build_loss(TrainContext(**_fields(hparams={**SGD, "loss": "ce"}))) is not None
    assert lookup.calls == [("losses", "mine")]  # cross-entropy needs no registry


def test_resolve_hparams_takes_the_host_it_resolves_components_in():
    from nlbench.core.hparams import resolve_hparams

    host = inspect.signature(resolve_hparams).parameters["host"]
    assert host.default is inspect.Parameter.empty


# -- method facts, unit ----------------------------------------------------------------------
def test_facts_travel_with_the_methods_state_through_a_weights_only_checkpoint():
    ctx = TrainContext(**_fields())
    method = SingleNetMethod(ctx)
    method.set_fact("pruned", 3)
    method.set_fact("summary", {"diag": [0.5, 0.75], "kind": "anchor"})
    buf = io.BytesIO()
    torch.save(method.state_dict(), buf)
    buf.seek(0)
    fresh = SingleNetMethod(ctx)
    assert fresh.record_facts() == {}
    fresh.load_state_dict(torch.load(buf, weights_only=True))
    assert fresh.record_facts() == {"pruned": 3, "summary": {"diag": [0.5, 0.75], "kind": "anchor"}}
    before_facts = method.state_dict()
    del before_facts["facts"]  # a checkpoint written before method facts existed
    fresh.load_state_dict(before_facts)
    assert fresh.record_facts() == {}


def test_an_undeclared_fact_is_a_plugin_error_naming_it():
    method = SingleNetMethod(TrainContext(**_fields()))
    method.set_fact("b", 1)
    method.set_fact("a", 2)
    assert list(checked_facts(method, "m", {"a": "", "b": ""})) == ["a", "b"]
    with pytest.raises(PluginError, match="method 'm' recorded undeclared fact.*b"):
        checked_facts(method, "m", {"a": "the a"})


def test_rerun_compares_facts_as_results_and_skips_records_from_before_them():
    old = {"method_facts": {"n": 3, "t": [[0.9, 0.1]], "gone": 1}}
    new = {"method_facts": {"n": 3, "t": [[0.9, 0.1 + 1e-9]], "extra": "x"}}
    assert compare_facts(old, new, atol=1e-6) == [
        "method_facts.extra: '<absent>' → 'x'",
        "method_facts.gone: 1 → '<absent>'",
    ]
    assert compare_facts(old, {"method_facts": {**old["method_facts"], "n": 4}}, 0.0) == [
        "method_facts.n: 3 → 4"
    ]
    assert compare_facts({}, new, 0.0) == []  # a record that predates facts: reported only


# -- method facts, end to end --------------------------------------------------------------------
class Counting(SingleNetMethod):
    """Counts its epochs in a fact (state channel: resumes continue the count)."""

    def start_epoch(self, epoch: int, scan) -> None:
        self.set_fact("epochs_started", self.record_facts().get("epochs_started", 0) + 1)
        self.set_fact("seed", self.ctx.seed)


class Forgetful(SingleNetMethod):
    """Derives its fact from an attribute it does not checkpoint (a resume loses it)."""

    def __init__(self, ctx: TrainContext) -> None:
        super().__init__(ctx)
        self.calls = 0

    def start_epoch(self, epoch: int, scan) -> None:
        self.calls += 1

    def record_facts(self) -> dict[str, Any]:
        return {**super().record_facts(), "epochs_started": self.calls}


class Undeclared(SingleNetMethod):
    def start_epoch(self, epoch: int, scan) -> None:
        self.set_fact("secret", 1)


FACTS = {"epochs_started": "start_epoch calls", "seed": "the context's seed"}


@hookimpl
def register_methods(register):
    register(MethodSpec("zz_counting", "test", Counting, facts=FACTS))
    register(MethodSpec("zz_forgetful", "test", Forgetful, facts=FACTS))
    register(MethodSpec("zz_undeclared", "test", Undeclared))


@pytest.fixture
def fact_methods():
    plugins.reset()
    plugins.load_plugins(
        extra=[("zz_facts", types.SimpleNamespace(register_methods=register_methods))]
    )
    yield
    plugins.reset()


class Stop(Exception):
    """Stands in for a kill right after a checkpoint."""


def _cut_after_first_checkpoint(monkeypatch, fn) -> None:
    save = checkpoint.save

    def save_then_stop(*args, **kwargs):
        save(*args, **kwargs)
        raise Stop

    monkeypatch.setattr(checkpoint, "save", save_then_stop)
    with pytest.raises(Stop):
        fn()
    monkeypatch.setattr(checkpoint, "save", save)


def test_facts_reach_the_record_and_a_resume_reproduces_them(fact_methods, tmp_path, monkeypatch):
    run = lambda **kw: tiny_run(tmp_path, "zz_counting", epochs=3, seed=2, **kw)  # noqa: E731
    reference = run(run_id="ref")
    assert reference["method_facts"] == {"epochs_started": 3, "seed": 2}
    _cut_after_first_checkpoint(monkeypatch, lambda: run(run_id="cut"))
    cut = json.loads((tmp_path / "cut" / "run.json").read_text())  # the kill, recorded
    assert cut["status"] == "failed" and cut["method_facts"]["epochs_started"] == 1
    resumed = run(run_id="cut", resume=True)
    assert resumed["status"] == "done" and resumed["method_facts"] == reference["method_facts"]
    assert resumed["run_id"] == "cut"
    again = run(run_id="ref")  # a finished record is returned as it is: facts are not identity
    assert again["created"] == reference["created"]


def test_a_resume_warns_when_facts_live_outside_the_state(
    fact_methods, tmp_path, monkeypatch, caplog
):
    run = lambda **kw: tiny_run(tmp_path, "zz_forgetful", epochs=2, run_id="cut", **kw)  # noqa: E731
    _cut_after_first_checkpoint(monkeypatch, run)
    with caplog.at_level(logging.WARNING, logger="nlbench.engine.run_io"):
        resumed = run(resume=True)
    assert resumed["method_facts"] == {"epochs_started": 1}  # the lost count shows
    assert "reports other facts after --resume" in caplog.text


def test_an_undeclared_fact_fails_the_run_naming_it(fact_methods, tmp_path):
    with pytest.raises(PluginError, match="undeclared fact.*secret"):
        tiny_run(tmp_path, "zz_undeclared", epochs=1, run_id="bad")
    record = json.loads((tmp_path / "bad" / "run.json").read_text())
    assert record["status"] == "failed" and "secret" in record["error"]
    assert "method_facts" not in record


def test_rerun_compares_the_records_facts(fact_methods, tmp_path, capsys):
    from helpers import run_cli

    record = tiny_run(tmp_path / "a", "zz_counting", epochs=1, run_id="r")
    path = tmp_path / "a" / "r" / "run.json"
    ok = run_cli(capsys, "rerun", str(path), "--out", str(tmp_path / "b"), "--device", "cpu")
    assert ok.code == 0 and "per-epoch metrics match, method facts too" in ok.out, ok.out
    path.write_text(json.dumps({**record, "method_facts": {"epochs_started": 5, "seed": 0}}))
    bad = run_cli(capsys, "rerun", str(path), "--out", str(tmp_path / "c"), "--device", "cpu")
    assert bad.code == 1 and "mismatch: method_facts.epochs_started: 5 → 1" in bad.out, bad.out
    del record["method_facts"]  # a record from before method facts: reported, not compared
    path.write_text(json.dumps(record))
    old = run_cli(capsys, "rerun", str(path), "--out", str(tmp_path / "d"), "--device", "cpu")
    assert old.code == 0 and "the record predates them; the rerun's: epochs_started=1" in old.out


def test_confident_learning_records_its_pruned_count_across_a_resume(tmp_path, monkeypatch):
    hp = {"cv_folds": 2, "cv_epochs": 1}
    run = lambda **kw: tiny_run(  # noqa: E731
        tmp_path, "confident_learning", epochs=1, train_subset=200, set=hp, **kw
    )
    reference = run(run_id="ref")
    issues = reference["method_facts"]["label_issues"]
    assert issues == reference["epochs"][0]["label_issues"] and 0 < issues < 200
    _cut_after_first_checkpoint(monkeypatch, lambda: run(run_id="cut"))  # inside the kfold phase
    assert run(run_id="cut", resume=True)["method_facts"] == {"label_issues": issues}
