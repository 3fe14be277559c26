"""Sweeps: grid expansion, run_id keys identical to the runner's, skip/resume, executors."""

from __future__ import annotations

import dataclasses

import pytest
from helpers import run_cli
from synthetic_records import synthetic_record

from nlbench.core.config import RunConfig
from nlbench.core.errors import UsageError
from nlbench.core.record import read_record, write_record
from nlbench.engine.prepare import prepare, run_identity
from nlbench.host.plugins import get_host
from nlbench.sweep.plan import (
    Grid,
    grid_from_mapping,
    load_toml,
    make_executor,
    plan,
    run_state,
    sweep,
    threads_per_job,
)

TINY = {"epochs": [1], "train_subset": [200], "dataset": ["digits"]}


@pytest.mark.parametrize(
    "cfg",
    [
        RunConfig(method="erm", noise="0.2", seed=1),
        RunConfig(
            method="erm",
            noise="sym:0.6",
            train_subset=300,
            epochs=2,
            overrides={"lr": 0.02, "milestones": [0.5]},
        ),
        RunConfig(method="erm", noise="none", noise_seed=3, model="tiny_cnn"),
    ],
)
def test_run_id_matches_prepare(cfg):
    """The cheap identity (no data) hashes exactly like the runner's prepare()."""
    host = get_host()
    assert run_identity(cfg, host).run_id == prepare(cfg, host).run_id


def test_grid_expansion_and_run_id_keys(tmp_path):
    grid = grid_from_mapping(
        {
            "methods": ["erm"],
            "noise": ["0.2", "sym:0.2", "0.6"],
            "seeds": [0, 1],
            "out": str(tmp_path),
            **TINY,
        }
    )
    assert len(grid.configs()) == 6
    jobs = plan(grid, get_host())
    assert len(jobs) == 4  # "0.2" and "sym:0.2" are one run: same run_id
    assert len({j.run_id for j in jobs}) == 4
    assert all(j.state == "new" and not j.cfg.resume for j in jobs)
    assert all(j.cfg.run_id == j.run_id for j in jobs)


def test_run_state_skip_and_resume(tmp_path):
    done = synthetic_record(status="done")
    failed = synthetic_record(seed=1, status="failed")
    write_record(tmp_path / "a", done)
    write_record(tmp_path / "b", failed)
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "checkpoint.pt").write_bytes(b"")
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "run.json").write_text("{half a record", encoding="utf-8")
    states = [run_state(tmp_path / n) for n in "abcde"]
    assert states == ["done", "partial", "partial", "partial", "new"]


def test_toml_file_and_cli_override(tmp_path, capsys):
    path = tmp_path / "sweep.toml"
    path.write_text(
        'methods = ["erm"]\nnoise = ["0.2", "0.6"]\nseeds = [0, 1, 2]\n'
        "epochs = 1\ntrain_subset = 200\n[set]\nlr = 0.02\n"
        '[executor]\nname = "local"\njobs = 2\n',
        encoding="utf-8",
    )
    data = load_toml(path)
    grid = grid_from_mapping(data)
    assert len(grid.configs()) == 6 and grid.overrides == {"lr": 0.02}
    result = run_cli(
        capsys,
        "sweep",
        "-c",
        str(path),
        "--seed",
        "5",
        "--out",
        str(tmp_path),
        "--dry-run",
        "--plan",
    )
    assert result.code == 0, result.err
    assert result.out.count("erm-digits-") == 2  # --seed 5 replaced the file's three seeds


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ({"method": ["erm"], "colour": "red"}, "unknown key 'colour'"),
        ({"seed": ["zero"]}, "not an integer"),
        ({"seed": [None]}, "None must be a non-negative integer"),
        ({"noise_seed": [-1]}, "-1 must be a non-negative integer"),
        ({"epochs": [0]}, "0 must be a positive integer"),
        ({"noise": []}, "empty list"),
        ({"set": 3}, "'set' must be a table"),
    ],
)
def test_bad_grid_is_usage_error(data, fragment):
    with pytest.raises(UsageError, match=fragment):
        grid_from_mapping(data)


def test_bad_toml_and_bad_executor_option(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("methods = [", encoding="utf-8")
    with pytest.raises(UsageError, match="not valid TOML"):
        load_toml(bad)
    with pytest.raises(UsageError, match="unknown option.*colour.*Accepted: jobs"):
        make_executor(get_host(), "local", {"colour": 1})
    with pytest.raises(UsageError, match="jobs"):
        make_executor(get_host(), "local", {"jobs": 0})


def test_threads_per_job(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert threads_per_job(2, cpus=16) == 8
    assert threads_per_job(4, cpus=2) == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert threads_per_job(1, cpus=16) == 3 and threads_per_job(8, cpus=16) == 2


class Recorder:
    """An executor that records what it was asked to run (and runs nothing)."""

    def __init__(self) -> None:
        self.seen: list = []

    def run(self, jobs):
        self.seen.extend(jobs)
        return [
            {"run_id": j.run_id, "status": "done", "last_acc": None, "error": None} for j in jobs
        ]


def _grid(out, seeds=(0, 1)) -> Grid:
    return grid_from_mapping(
        {
            "method": "erm",
            "noise": "0.4",
            "seed": list(seeds),
            "out": str(out),
            "device": "cpu",
            **TINY,
        }
    )


def test_sweep_through_submitit_local_executor(tmp_path):
    """The slurm executor's real code path (map_array), on submitit's local cluster."""
    host = get_host()
    executor = make_executor(
        host, "slurm", {"cluster": "local", "folder": str(tmp_path / "sub"), "time": 5, "cpus": 1}
    )
    jobs, outcomes = sweep(_grid(tmp_path / "runs", seeds=(0,)), executor, host)
    assert [o["status"] for o in outcomes] == ["done"], outcomes
    for job in jobs:
        record = read_record(tmp_path / "runs" / job.run_id / "run.json")
        assert record["status"] == "done" and len(record["epochs"]) == 1
    # restarted: everything finished, nothing is handed to the executor
    again = Recorder()
    jobs, outcomes = sweep(_grid(tmp_path / "runs", seeds=(0,)), again, host)
    assert again.seen == [] and outcomes == [] and {j.state for j in jobs} == {"done"}


@pytest.mark.slow  # two spawned workers each import torch: ~20 s on a loaded 2-core box
def test_local_executor_two_jobs(tmp_path):
    host = get_host()
    executor = make_executor(host, "local", {"jobs": 2, "threads": 1})
    jobs, outcomes = sweep(_grid(tmp_path), executor, host)
    assert sorted(o["run_id"] for o in outcomes) == sorted(j.run_id for j in jobs)
    assert {o["status"] for o in outcomes} == {"done"}
    for job in jobs:
        assert read_record(tmp_path / job.run_id / "run.json")["status"] == "done"


def test_restarted_sweep_resumes_only_the_unfinished_run(tmp_path):
    host = get_host()
    jobs, _ = sweep(_grid(tmp_path), make_executor(host, "local", {"jobs": 1}), host)
    # a killed run: its record says interrupted → the restarted sweep resumes only that one
    victim = tmp_path / jobs[0].run_id / "run.json"
    write_record(victim.parent, {**read_record(victim), "status": "interrupted"})
    recorder = Recorder()
    sweep(_grid(tmp_path), recorder, host)
    assert [j.run_id for j in recorder.seen] == [jobs[0].run_id]
    assert recorder.seen[0].cfg.resume and recorder.seen[0].state == "partial"
    single = make_executor(host, "local", {"jobs": 1})
    assert single.run(recorder.seen)[0]["status"] == "done"
    assert read_record(victim)["status"] == "done"


def test_failed_run_is_reported_not_raised(tmp_path):
    cfg = RunConfig(
        method="erm",
        dataset="digits",
        noise="0.4",
        epochs=1,
        train_subset=200,
        out=str(tmp_path),
        device="cpu",
        overrides={"batch_size": 0},
    )
    from nlbench.sweep.plan import Job

    job = Job(dataclasses.replace(cfg, run_id="broken"), "broken", "new")
    [outcome] = make_executor(get_host(), "local", {}).run([job])
    assert outcome["status"] == "failed" and "batch_size" in outcome["error"]


def test_sweep_cli_runs_and_skips(tmp_path, capsys):
    args = [
        "sweep",
        "-m",
        "erm",
        "-n",
        "0.4",
        "--epochs",
        "1",
        "--train-subset",
        "200",
        "--out",
        str(tmp_path),
        "--device",
        "cpu",
    ]
    first = run_cli(capsys, *args)
    assert first.code == 0, first.err
    assert "0 already finished, 1 run now" in first.out
    second = run_cli(capsys, *args)
    assert "1 already finished, 0 run now" in second.out


# -- hparam grids, per-method settings, sweep-file types ----------------------------------------
def _overrides(grid: Grid) -> list[tuple[str, dict]]:
    return [(c.method, dict(c.overrides)) for c in grid.configs(get_host())]


def test_grid_varies_an_hparam_only_for_methods_that_have_it(tmp_path):
    data = {"methods": ["erm", "fl_only"], "grid": {"fl_ratio": [0.2, 0.4]}}
    grid = grid_from_mapping({**data, "out": str(tmp_path), **TINY})
    assert _overrides(grid) == [
        ("erm", {}),
        ("fl_only", {"fl_ratio": 0.2}),
        ("fl_only", {"fl_ratio": 0.4}),
    ]
    assert len(plan(grid, get_host())) == 3


def test_set_targets_methods_that_accept_the_key(tmp_path):
    data = {"methods": ["erm", "fl_only"], "set": {"radius": 3.0}}
    grid = grid_from_mapping({**data, "out": str(tmp_path), **TINY})
    assert _overrides(grid) == [("erm", {}), ("fl_only", {"radius": 3.0})]


def test_per_method_tables_and_component_hparams(tmp_path):
    """[method.NAME] targets one method; q exists only where loss = gce."""
    tables = {
        "erm": {"grid": {"loss": ["gce", "sce"]}, "set": {"q": 0.5}},
        "fl_only": {"set": {"fl_ratio": 0.3}},
    }
    grid = grid_from_mapping({"method": tables, "out": str(tmp_path), **TINY})
    assert _overrides(grid) == [
        ("erm", {"loss": "gce", "q": 0.5}),
        ("erm", {"loss": "sce"}),
        ("fl_only", {"fl_ratio": 0.3}),
    ]


def test_search_space_grid(tmp_path):
    data = {"methods": ["erm", "fl_only"], "grid": {"fl_ratio": "search_space"}}
    grid = grid_from_mapping({**data, "out": str(tmp_path), **TINY})
    space = get_host().get("methods", "fl_only").search_space["fl_ratio"]
    assert [o.get("fl_ratio") for _, o in _overrides(grid)] == [None, *space]


BAD_MAPPINGS = [
    ({"methods": ["erm"], "set": {"tau": 0.6}}, "tau.*accepted by no run"),
    ({"methods": ["erm"], "grid": {"tau": [0.4, 0.6]}}, "tau.*accepted by no run"),
    ({"method": {"erm": {"set": {"fl_ratio": 0.3}}}}, "'erm' does not accept fl_ratio"),
    ({"method": {"erm": {"sets": {}}}}, "unknown key.*sets"),
    ({"method": {"erm": "oops"}}, "must be a table"),
    ({"grid": {"lr": []}}, "empty list"),
    ({"out": 5}, "'out' must be a string"),
    ({"deterministic": "yes"}, "'deterministic' must be a boolean"),
    ({"set": "oops"}, "'set' must be a table"),
    ({"grid": "oops"}, "'grid' must be a table"),
    ({"executor": "slurm"}, "'executor' must be a table"),
]


@pytest.mark.parametrize("data, fragment", BAD_MAPPINGS)
def test_bad_sweep_mappings_are_usage_errors(tmp_path, data, fragment):
    with pytest.raises(UsageError, match=fragment):
        grid_from_mapping({"out": str(tmp_path), **TINY, **data}).configs(get_host())


@pytest.mark.parametrize(
    "text, fragment",
    [("out = 5\n", "'out' must be a string"), ('set = "oops"\n', "'set' must be a table")],
)
def test_bad_sweep_files_exit_2_with_one_line(tmp_path, capsys, text, fragment):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    result = run_cli(capsys, "sweep", "-c", str(path), "--dry-run")
    assert result.code == 2 and fragment in result.err
    assert len(result.err.strip().splitlines()) == 1 and "Traceback" not in result.err


def test_cli_grid_and_method_tables(tmp_path, capsys):
    path = tmp_path / "s.toml"
    path.write_text(
        'methods = ["erm", "fl_only"]\ndataset = "digits"\nepochs = 1\n'
        "[method.fl_only]\nset = {radius = 3.0}\n"
    )
    out = str(tmp_path / "runs")
    args = ["sweep", "-c", str(path), "--grid", "lr=0.05,0.1", "--dry-run", "--plan", "--out", out]
    result = run_cli(capsys, *args)
    assert result.code == 0, result.err
    assert result.out.count("erm-digits-") == 2 and result.out.count("fl_only-digits-") == 2


def test_plan_lines_show_each_runs_grid_values(tmp_path, capsys):
    """``--plan``: each run_id with the axis and ``--grid`` values that make it that run."""
    args = ["sweep", "-m", "erm,coteaching", "-d", "digits", "--seed", "0,1", "--epochs", "1"]
    args += ["--grid", "loss=ce,gce", "--grid", "q=0.5,0.7", "--grid", "milestones=[0.5],[0.3]"]
    result = run_cli(capsys, *args, "--dry-run", "--plan", "--out", str(tmp_path))
    assert result.code == 0, result.err
    lines = [ln for ln in result.out.splitlines() if ln.startswith(("erm-", "coteaching-"))]
    # erm: (ce + gce × 2 q) × 2 milestones × 2 seeds; coteaching takes milestones only
    assert len(lines) == 12 + 4
    cells = [set(ln.split()[2:]) for ln in lines]
    first = "method=erm dataset=digits noise=none seed=0 loss=ce milestones=[0.5]"
    assert cells[0] == set(first.split())
    assert {"loss=gce", "q=0.7", "milestones=[0.3]", "seed=1"} <= cells[11]
    assert all("epochs=1" not in c for c in cells)  # one value: the same for every run
    assert all(not any(k.startswith(("loss=", "q=")) for k in c) for c in cells[12:])
    ids = [ln.split()[0] for ln in lines]
    assert len(set(ids)) == len(ids)  # and no two lines show the same values
    assert len({frozenset(c) for c in cells}) == len(cells)


def test_plan_keys_and_cells():
    from nlbench.sweep.plan import plan_cells, plan_keys

    grid = grid_from_mapping(
        {"method": ["erm"], "profile": ["quick", "paper"], "grid": {"lr": [0.1]}},
    )
    grid = dataclasses.replace(grid, per_method={"erm": {"grid": {"augment": [None, "flip"]}}})
    keys = plan_keys(grid)
    assert keys == ["method", "dataset", "noise", "seed", "profile", "lr", "augment"]
    cfg = RunConfig(method="erm", profile="paper", overrides={"lr": 0.1, "augment": None})
    shown = "method=erm dataset=digits noise=none seed=0 profile=paper lr=0.1 augment=null"
    assert list(plan_cells(cfg, keys).values()) == shown.split()
    assert "lr" not in plan_cells(RunConfig(), keys)  # a run whose method lacks the key
