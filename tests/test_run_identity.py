"""Run identity: pinned run_ids, ids that do not drift, migration of older records."""

from __future__ import annotations

import dataclasses
import hashlib
import json

import pytest
from helpers import run_cli
from synthetic_records import synthetic_record

from nlbench.commands.rerun import config_from_record
from nlbench.core import hparams as hparams_mod
from nlbench.core.config import RunConfig, canonical_json
from nlbench.core.errors import UsageError
from nlbench.core.hparam_types import Float
from nlbench.core.identity import record_run_id, same_run
from nlbench.core.record import read_record, write_record
from nlbench.engine.migrate import migrate_records
from nlbench.engine.prepare import run_identity
from nlbench.host.plugins import get_host
from nlbench.sweep.plan import Grid, plan

GOLDEN = [
    (RunConfig(), "erm-digits-ebe23d80550a"),
    (RunConfig(method="famus", noise="sym:0.6", seed=2, epochs=30), "famus-digits-c9adc3984f43"),
    (
        RunConfig(method="dividemix", dataset="cifar10", profile="paper", noise="sym:0.5"),
        "dividemix-cifar10-07cebc406363",
    ),
    (
        RunConfig(
            method="fl_weighted",
            dataset="cifar10",
            profile="cpu",
            noise="cifar_n:worse",
            train_subset=5000,
        ),
        "fl_weighted-cifar10-2bd14c4dbf4e",
    ),
    (
        RunConfig(noise="asym:0.4", noise_seed=1, overrides={"lr": 0.01, "milestones": [3]}),
        "erm-digits-0053ee4ebfb0",
    ),
]


def _id(cfg: RunConfig) -> str:
    return run_identity(cfg, get_host()).run_id


@pytest.mark.parametrize("cfg, expected", GOLDEN)
def test_golden_run_ids(cfg, expected):
    """Pinned: a change here orphans every committed record (run nlbench migrate-records)."""
    assert _id(cfg) == expected


def test_the_key_is_the_documented_dict():
    """run_id = method-dataset-sha256(canonical JSON of the key)[:12], recomputable by hand."""
    ident = run_identity(RunConfig(), get_host())
    text = (
        '{"dataset":"digits","hparams":{"batch_size":64,"epochs":30,"lr":0.05,'
        '"model":"tiny_cnn"},"method":"erm","noise":"none","noise_seed":0,"profile":"quick",'
        '"seed":0,"train_subset":null}'
    )
    assert canonical_json(ident.key) == text
    assert ident.run_id == "erm-digits-" + hashlib.sha256(text.encode()).hexdigest()[:12]
    assert ident.identity["hparams"]["amp"] is True  # the record still stores everything


@pytest.mark.parametrize(
    "item",
    [{"amp": False}, {"channels_last": "always"}, {"eval_batch_size": 256}, {"diagnostics": True}],
)
def test_execution_settings_do_not_change_the_id(item):
    assert _id(RunConfig(overrides=item)) == GOLDEN[0][1]


def test_equivalent_requests_share_an_id():
    base = _id(RunConfig(overrides={"lr": 0.01}))
    assert _id(RunConfig(overrides={"lr": 0.05})) == GOLDEN[0][1]  # the profile's own value
    assert _id(RunConfig(epochs=30)) == _id(RunConfig(overrides={"epochs": 30})) == GOLDEN[0][1]
    assert _id(RunConfig(overrides={"lr": 1e-2})) == base
    assert _id(RunConfig(overrides={"milestones": [1, 2]})) == _id(
        RunConfig(overrides={"milestones": [1.0, 2.0]})
    )


@pytest.mark.parametrize("method", ["erm", "fl_only"])
def test_loss_ce_is_the_default_run(method):
    """``--set loss=ce`` names the default loss: one run_id, one resolved value (null), so a
    sweep does not run it twice and a board shows one row."""
    host = get_host()
    default = run_identity(RunConfig(method=method), host)
    ce = run_identity(RunConfig(method=method, overrides={"loss": "ce"}), host)
    assert ce.run_id == default.run_id and ce.key == default.key
    assert ce.hparams["loss"] is None and ce.identity == default.identity
    gce = run_identity(RunConfig(method=method, overrides={"loss": "gce"}), host)
    assert gce.run_id != default.run_id
    if method == "erm":
        assert default.run_id == GOLDEN[0][1]  # and the id every record already has


def test_a_record_that_says_loss_ce_keeps_the_default_id():
    """A record written before the alias, with ``"loss": "ce"``, is the default run."""
    mspec = get_host().get("methods", "erm")
    config = synthetic_record()["config"]
    with_ce = {**config, "hparams": {**config["hparams"], "loss": "ce"}}
    with_null = {**config, "hparams": {**config["hparams"], "loss": None}}
    assert record_run_id(with_ce, mspec) == record_run_id(with_null, mspec)


def test_sweep_with_loss_null_and_ce_plans_one_run(tmp_path):
    grid = Grid(
        {"method": ["erm"], "dataset": ["digits"]},
        common={"out": str(tmp_path)},
        grid={"loss": [None, "ce", "gce"]},
    )
    jobs = plan(grid, get_host())
    assert len(jobs) == 2 and jobs[0].run_id == GOLDEN[0][1]


@pytest.mark.parametrize(
    "change",
    [
        {"noise": "sym:0.2"},
        {"seed": 1},
        {"noise_seed": 1},
        {"train_subset": 500},
        {"dataset": "fashionmnist"},
        {"epochs": 2},
        {"model": "cnn_small"},
        {"overrides": {"lr": 0.01}},
        {"overrides": {"augment": "off"}},
        {"overrides": {"batch_size": 32}},
    ],
)
def test_what_changes_results_changes_the_id(change):
    assert _id(RunConfig(**change)) != GOLDEN[0][1]


def test_a_new_hparam_with_a_default_changes_no_id(monkeypatch):
    """The drift this scheme removes: a new BASE or method hparam leaves every id as it was."""
    before = [_id(cfg) for cfg, _ in GOLDEN]
    monkeypatch.setitem(
        hparams_mod.BASE_DECLARED, "label_smoothing", Float(0.0, low=0, high=1, doc="new")
    )
    monkeypatch.setitem(hparams_mod.BASE_HPARAMS, "label_smoothing", 0.0)
    famus = get_host().get("methods", "famus")
    original = famus.default_hparams
    object.__setattr__(famus, "default_hparams", {**original, "new_knob": Float(None, doc="off")})
    try:
        assert [_id(cfg) for cfg, _ in GOLDEN] == before
        assert _id(RunConfig(overrides={"label_smoothing": 0.1})) != GOLDEN[0][1]
    finally:
        object.__setattr__(famus, "default_hparams", original)


def test_a_changed_profile_value_is_a_new_id(monkeypatch):
    """A record is never silently reused for a run whose resolved hparams differ."""
    dspec = get_host().get("datasets", "digits")
    quick = {**dspec.profiles["quick"], "lr": 0.02}
    monkeypatch.setitem(dspec.profiles, "quick", quick)
    assert _id(RunConfig()) != GOLDEN[0][1]


def _record_for(cfg: RunConfig, run_id: str = "old-id", **hp_changes) -> dict:
    ident = run_identity(cfg, get_host())
    config = {**ident.identity, "hparams": {**ident.identity["hparams"], **hp_changes}}
    return {**synthetic_record(), "run_id": run_id, "config": {**config, "device": "cpu"}}


def test_rerun_config_reproduces_the_id():
    for cfg, expected in GOLDEN:
        record = _record_for(cfg, expected)
        assert _id(config_from_record(record, out="x")) == expected


def test_same_run_and_record_run_id():
    mspec = get_host().get("methods", "erm")
    cfg = RunConfig(overrides={"eval_batch_size": 1024})
    ident = run_identity(cfg, get_host())
    old = _record_for(cfg)["config"]
    old_hp = {k: v for k, v in old["hparams"].items() if k not in ("dropout", "diagnostics")}
    older = {**old, "hparams": old_hp}  # written before two hparams existed
    assert record_run_id(older, mspec) == ident.run_id == GOLDEN[0][1]
    assert same_run(older, ident.key, mspec)
    assert not same_run({**old, "hparams": {**old_hp, "lr": 0.5}}, ident.key, mspec)
    assert not same_run({**old, "hparams": {**old_hp, "lr": "x"}}, ident.key, mspec)
    assert not same_run([1, 2], ident.key, mspec)


def _grid(tmp_path, **axes) -> Grid:
    return Grid(
        {"method": ["erm"], "dataset": ["digits"], "seed": [0, 1], **axes},
        common={"out": str(tmp_path)},
    )


def test_migration_renames_and_sweeps_see_done(tmp_path, capsys):
    host = get_host()
    grid = _grid(tmp_path)
    jobs = plan(grid, host)
    assert [j.state for j in jobs] == ["new", "new"]
    for n, job in enumerate(jobs):
        hp = {"eval_batch_size": 1024} if n else {}
        write_record(
            tmp_path / f"erm-digits-old{n}", _record_for(job.cfg, f"erm-digits-old{n}", **hp)
        )
    bad = tmp_path / "broken"
    bad.mkdir()
    (bad / "run.json").write_text("{not json")
    res = run_cli(capsys, "migrate-records", str(tmp_path))
    assert res.code == 1 and "2 renamed, 0 unchanged, 0 conflict, 1 skipped" in res.out
    for job in jobs:
        record = read_record(tmp_path / job.run_id / "run.json")
        assert record["run_id"] == job.run_id and record["config"]["seed"] == job.cfg.seed
    assert [j.state for j in plan(grid, host)] == ["done", "done"]
    again = run_cli(capsys, "migrate-records", str(tmp_path))
    assert "0 renamed, 2 unchanged" in again.out  # idempotent
    assert {p.name for p in tmp_path.iterdir()} == {j.run_id for j in jobs} | {"broken"}


def test_migration_reports_two_records_of_one_run(tmp_path):
    (job, _) = plan(_grid(tmp_path), get_host())
    for name in ("a", "b"):
        write_record(tmp_path / name, _record_for(job.cfg, name))
    moves = migrate_records(tmp_path, get_host())
    assert [m.action for m in moves] == ["renamed", "conflict"]
    assert (tmp_path / "b").is_dir() and (tmp_path / job.run_id).is_dir()


def test_migration_dry_run_changes_nothing(tmp_path):
    (job, _) = plan(_grid(tmp_path), get_host())
    write_record(tmp_path / "x", _record_for(job.cfg, "x"))
    before = (tmp_path / "x" / "run.json").read_text()
    (move,) = migrate_records(tmp_path, get_host(), dry_run=True)
    assert move.action == "renamed" and move.new == job.run_id
    assert (tmp_path / "x" / "run.json").read_text() == before


def test_runner_refuses_a_dir_holding_another_run(tmp_path):
    """--run-id reuse: the existing record is of another run (a usage error, nothing lost)."""
    from nlbench.engine.runner import Runner

    cfg = RunConfig(out=str(tmp_path), run_id="mine", epochs=1, train_subset=100)
    record = _record_for(RunConfig(seed=5), "mine")
    write_record(tmp_path / "mine", record)
    before = (tmp_path / "mine" / "run.json").read_text()
    with pytest.raises(UsageError, match="different config"):
        Runner(cfg).run()
    assert (tmp_path / "mine" / "run.json").read_text() == before
    same = dataclasses.replace(cfg, seed=5, epochs=None, train_subset=None)
    assert Runner(same).run()["run_id"] == "mine"  # the finished record is the answer
    assert json.loads(before)["run_id"] == "mine"


def test_execution_only_matches_the_declarations():
    from nlbench.core.config import EXECUTION_ONLY

    declared = {k for k, h in hparams_mod.BASE_DECLARED.items() if h.execution}
    assert declared == EXECUTION_ONLY


def test_a_finished_run_asked_with_other_execution_settings_says_so():
    from nlbench.core.identity import execution_note

    mspec = get_host().get("methods", "erm")
    record = _record_for(RunConfig())
    hp = dict(record["config"]["hparams"])
    assert execution_note(record["config"], hp, mspec) == ""
    note = execution_note(record["config"], {**hp, "diagnostics": True, "lr": 0.5}, mspec)
    assert "diagnostics=false (asked: true)" in note and "--out" in note and "lr" not in note
