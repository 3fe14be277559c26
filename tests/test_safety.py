"""Never lose or corrupt a run: safe run ids, own files only, locks, atomic writes, the error
contract (one line, exit 2 for bad input, 130 for Ctrl-C)."""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import click
import pytest
from helpers import assert_usage_error, digits_run, run_cli

TINY = digits_run("0.4", 2, 100, "-q")


def _tree(root: Path) -> dict[str, bytes]:
    files = sorted(p for p in root.rglob("*") if p.is_file())
    return {str(p.relative_to(root)): p.read_bytes() for p in files}


def _one_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


# -- run ids ---------------------------------------------------------------------------------
@pytest.mark.parametrize("run_id", [".", "..", "../x", "a/b", "/abs/dir", "x" * 129, "a b", ""])
def test_unsafe_run_id_is_refused_and_nothing_is_touched(tmp_path, capsys, run_id):
    out = tmp_path / "parent" / "out"
    (out / "other-run").mkdir(parents=True)
    (out / "other-run" / "run.json").write_text("{}")
    (tmp_path / "parent" / "keep.txt").write_text("mine")
    if run_id.startswith("/"):
        run_id = str(tmp_path / "abs")
        Path(run_id).mkdir()
        (Path(run_id) / "precious").write_text("x")
    before = _tree(tmp_path)
    res = run_cli(capsys, *TINY, "--out", str(out), "--run-id", run_id)
    assert_usage_error(res, "--run-id", "Accepted")
    assert _tree(tmp_path) == before


def test_safe_run_ids_are_accepted():
    from nlbench.engine.rundir import check_run_id

    for ok in ("abc", "A-1_b.2", "x" * 128, None):
        check_run_id(ok)


# -- existing directories: refuse what cannot be read, delete only our own files -------------
@pytest.mark.parametrize("content", ["{not json", json.dumps({"schema": 99, "status": "done"})])
def test_unreadable_or_newer_record_is_refused_not_wiped(tmp_path, capsys, content):
    run_dir = tmp_path / "r"
    run_dir.mkdir()
    (run_dir / "run.json").write_text(content)
    (run_dir / "notes.txt").write_text("user file")
    before = _tree(tmp_path)
    res = run_cli(capsys, *TINY, "--out", str(tmp_path), "--run-id", "r")
    assert_usage_error(res, "run.json", "untouched")
    assert _tree(tmp_path) == before


def test_fresh_restart_removes_only_the_runners_files(tmp_path, capsys):
    assert run_cli(capsys, *TINY, "--out", str(tmp_path), "--run-id", "r").code == 0
    run_dir = tmp_path / "r"
    record = json.loads((run_dir / "run.json").read_text())
    (run_dir / "run.json").write_text(json.dumps({**record, "status": "interrupted"}))
    (run_dir / "notes.txt").write_text("user file")
    (run_dir / "plots").mkdir()
    (run_dir / "plots" / "a.png").write_bytes(b"png")
    assert run_cli(capsys, *TINY, "--out", str(tmp_path), "--run-id", "r").code == 0
    assert json.loads((run_dir / "run.json").read_text())["status"] == "done"
    assert (run_dir / "notes.txt").read_text() == "user file"
    assert (run_dir / "plots" / "a.png").read_bytes() == b"png"


# -- the run lock ----------------------------------------------------------------------------
def test_second_process_on_a_locked_run_is_refused(tmp_path, capsys):
    from nlbench.engine.rundir import RunLock

    with RunLock(tmp_path / "r"):
        res = run_cli(capsys, *TINY, "--out", str(tmp_path), "--run-id", "r")
    assert_usage_error(res, "in use by", f"pid {os.getpid()}")
    assert not (tmp_path / "r" / "run.json").exists()


def test_lock_is_freed_when_the_holder_is_sigkilled(tmp_path):
    from nlbench.engine.rundir import RunLock, is_locked

    code = (
        "import sys, time; from nlbench.engine.rundir import RunLock; "
        f"RunLock({str(tmp_path / 'r')!r}).acquire(); print('held', flush=True); time.sleep(60)"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
        assert is_locked(tmp_path / "r")
        with pytest.raises(Exception, match="in use by pid"):
            RunLock(tmp_path / "r").acquire()
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert not is_locked(tmp_path / "r")
    RunLock(tmp_path / "r").acquire().release()


def test_sweep_skips_a_run_locked_elsewhere(tmp_path):
    from nlbench.engine.rundir import RunLock
    from nlbench.host.plugins import get_host
    from nlbench.sweep.plan import grid_from_mapping, pending, plan, run_job

    host = get_host()
    axes = {"method": "erm", "noise": "0.4", "epochs": 1, "train_subset": 100}
    grid = grid_from_mapping({**axes, "out": str(tmp_path), "device": "cpu"})
    (job,) = plan(grid, host)
    with RunLock(tmp_path / job.run_id):
        (locked,) = plan(grid, host)
        assert locked.state == "running" and pending([locked]) == []
        outcome = run_job(job.cfg)  # the executor's side: taken since the plan
    assert outcome["status"] == "running" and "in use by" in outcome["error"]
    assert not (tmp_path / job.run_id / "run.json").exists()


# -- atomic writes ---------------------------------------------------------------------------
def test_epoch_log_append_is_atomic(tmp_path, monkeypatch):
    from nlbench.core import atomic
    from nlbench.core.record import append_epoch

    append_epoch(tmp_path, {"epoch": 0})
    before = (tmp_path / "epochs.jsonl").read_bytes()

    def full(*_):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(atomic.os, "fsync", full)
    with pytest.raises(atomic.WriteError, match="No space left"):
        append_epoch(tmp_path, {"epoch": 1})
    assert (tmp_path / "epochs.jsonl").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["epochs.jsonl"]


def test_checkpoint_and_records_share_one_atomic_writer(tmp_path, monkeypatch):
    """A failed rename leaves the old checkpoint, no temp file, and one line of error."""
    import torch

    from nlbench.core import atomic
    from nlbench.engine import checkpoint

    class Method:
        def state_dict(self):
            return {"networks": {}, "optimizers": [], "state": {}, "extra": {}}

    class State:
        prep = type("P", (), {"identity": {"a": 1}, "key": {"a": 1}})()
        epochs: list = []

    ctx = type("C", (), {"gen": torch.Generator()})()
    checkpoint.save(tmp_path, State(), Method(), ctx, {})
    before = (tmp_path / "checkpoint.pt").read_bytes()

    def full(*_):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(atomic.os, "replace", full)
    with pytest.raises(atomic.WriteError):
        checkpoint.save(tmp_path, State(), Method(), ctx, {"x": 1})
    assert (tmp_path / "checkpoint.pt").read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]


def test_full_disk_mid_run_is_one_line_and_records_stay_valid(tmp_path, capsys, monkeypatch):
    from nlbench.core import atomic

    real, calls = atomic.os.replace, {"n": 0}

    def replace(src, dst):
        if Path(dst).name == "checkpoint.pt":
            calls["n"] += 1
            if calls["n"] == 2:  # the second epoch's checkpoint hits a full disk
                raise OSError(errno.ENOSPC, "No space left on device")
        return real(src, dst)

    monkeypatch.setattr(atomic.os, "replace", replace)
    res = run_cli(capsys, *TINY, "--out", str(tmp_path), "--run-id", "r")
    assert res.code == 1 and "No space left on device" in _one_line(res.err)
    record = json.loads((tmp_path / "r" / "run.json").read_text())
    assert record["status"] == "failed" and len(record["epochs"]) == 2
    lines = (tmp_path / "r" / "epochs.jsonl").read_text().splitlines()
    assert [json.loads(x)["epoch"] for x in lines] == [0, 1]
    assert not list((tmp_path / "r").glob(".*.tmp"))


# -- --out and paths -------------------------------------------------------------------------
def test_out_that_is_a_file_is_refused(tmp_path, capsys):
    (tmp_path / "f").write_text("x")
    assert_usage_error(run_cli(capsys, *TINY, "--out", str(tmp_path / "f")), "is a file")
    res = run_cli(capsys, *TINY, "--out", str(tmp_path / "f" / "sub"))
    assert_usage_error(res, "cannot be created", "not a writable directory")
    assert (tmp_path / "f").read_text() == "x"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes to read-only directories")
def test_read_only_out_is_refused(tmp_path, capsys):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        assert_usage_error(run_cli(capsys, *TINY, "--out", str(ro)), "not writable")
        assert_usage_error(run_cli(capsys, *TINY, "--out", str(ro / "sub")), "cannot be created")
    finally:
        ro.chmod(0o755)


def test_non_utf8_out_is_refused_in_one_line(tmp_path):
    out = os.fsdecode(os.fsencode(str(tmp_path)) + b"/caf\xe9")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "nlbench", *TINY, "--out", out]
    proc = subprocess.run(cmd, env=env, capture_output=True, timeout=300)
    err = proc.stderr.decode("utf-8", "replace")
    assert proc.returncode == 2 and "UTF-8" in _one_line(err)
    assert not os.path.exists(out)


# -- the CLI's error channel -----------------------------------------------------------------
@pytest.fixture
def raising_command():
    from nlbench.cli import cli

    @cli.command("raise-for-test")
    @click.argument("kind")
    def raise_for_test(kind: str) -> None:
        raise {"eof": EOFError("Ran out of input"), "int": KeyboardInterrupt()}[kind]

    yield
    cli.commands.pop("raise-for-test")


def test_eoferror_is_a_usage_error_not_an_abort(raising_command, capsys):
    assert_usage_error(run_cli(capsys, "raise-for-test", "eof"), "ended unexpectedly")


def test_ctrl_c_is_one_line_and_exit_130(raising_command, capsys):
    res = run_cli(capsys, "raise-for-test", "int")
    assert res.code == 130 and "interrupted" in _one_line(res.err)


def test_ctrl_c_while_plugins_load_is_one_line(monkeypatch, capsys):
    from nlbench import cli

    def interrupted():
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "_plugin_commands", interrupted)
    monkeypatch.setattr(cli.cli, "plugins_loaded", False)
    try:  # a command that is not built in makes the CLI load plugins (lazily)
        res = run_cli(capsys, "some-plugin-command")
    except KeyboardInterrupt:
        pytest.fail("Ctrl-C during start-up escaped as a traceback")
    assert res.code == 130 and "interrupted" in _one_line(res.err)


def test_ctrl_c_before_training_leaves_no_running_record(tmp_path, capsys, monkeypatch):
    """SIGINT as the run starts (observers, display) stops it at once and leaves no record."""
    from nlbench.core.console import RichProgress

    start = RichProgress.start

    def start_then_ctrl_c(self, *args):
        start(self, *args)
        os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(RichProgress, "start", start_then_ctrl_c)
    try:
        res = run_cli(capsys, *TINY, "--out", str(tmp_path), "--run-id", "r")
    except KeyboardInterrupt:
        pytest.fail("Ctrl-C during start-up escaped as a traceback")
    assert res.code == 130 and "nothing was recorded" in _one_line(res.err)
    assert not (tmp_path / "r" / "run.json").exists()


def test_corrupt_or_future_record_is_exit_2(tmp_path, capsys):
    bad = tmp_path / "run.json"
    bad.write_text(json.dumps({"schema": 99}))
    assert_usage_error(run_cli(capsys, "rerun", str(bad)), "schema")
    bad.write_text("{")
    assert_usage_error(run_cli(capsys, "rerun", str(bad)), "not a readable JSON record")


def test_bad_kill_spec_is_a_usage_error(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("NLBENCH_KILL_AT", "soon")
    assert_usage_error(run_cli(capsys, *TINY, "--out", str(tmp_path)), "NLBENCH_KILL_AT")


# -- generated files: a manifest, and only listed files are replaced or removed (#32) --------
def _boards_with_figures(tmp_path: Path) -> tuple[Path, Path]:
    from synthetic_records import synthetic_record, write_synthetic

    pytest.importorskip("matplotlib")
    res = tmp_path / "res"
    for seed in (0, 1):
        write_synthetic(res, synthetic_record("erm", "sym:0.2", seed, (0.3, 0.5, 0.6)))
    return res, tmp_path / "boards"


def test_leaderboard_keeps_the_users_own_svgs(tmp_path, capsys):
    res, out = _boards_with_figures(tmp_path)
    mine = {
        "figures/my-plot.svg": b"<svg>mine</svg>",
        "studies/figures/notes.svg": b"<svg>notes</svg>",
        "my-notes.md": b"# mine\n",
    }
    for name, data in mine.items():
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_bytes(data)
    args = ("leaderboard", "--results", str(res), "--out", str(out))
    assert run_cli(capsys, *args).code == 0
    listed = (out / "nlbench-manifest.txt").read_text().splitlines()
    assert "figures/synth-quick-sym-0.2.svg" in listed and "synth-quick.md" in listed
    assert not any(name in listed for name in mine)
    assert run_cli(capsys, *args, "--check").code == 0  # a user's file is never "stale"
    shutil.rmtree(res)
    res.mkdir()  # no records left: every generated file goes, the user's stay
    assert run_cli(capsys, *args).code == 0
    for name, data in mine.items():
        assert (out / name).read_bytes() == data
    assert not (out / "figures/synth-quick-sym-0.2.svg").exists()
    assert not (out / "synth-quick.md").exists()


@pytest.mark.parametrize("kind", ["file", "symlink"])
def test_leaderboard_refuses_a_generated_name_it_did_not_write(tmp_path, capsys, kind):
    res, out = _boards_with_figures(tmp_path)
    target = out / "figures" / "synth-quick-sym-0.2.svg"
    target.parent.mkdir(parents=True)
    elsewhere = tmp_path / "elsewhere.svg"
    elsewhere.write_bytes(b"<svg>elsewhere</svg>")
    if kind == "file":
        target.write_bytes(b"<svg>mine</svg>")
    else:
        target.symlink_to(elsewhere)
    before = _tree(tmp_path)
    res_ = run_cli(capsys, "leaderboard", "--results", str(res), "--out", str(out))
    assert_usage_error(res_, "figures/synth-quick-sym-0.2.svg")
    assert _tree(tmp_path) == before


def test_leaderboard_refuses_a_hand_edited_manifest(tmp_path, capsys):
    res, out = _boards_with_figures(tmp_path)
    out.mkdir()
    (tmp_path / "victim.txt").write_text("keep")
    (out / "nlbench-manifest.txt").write_text("../victim.txt\n")
    res_ = run_cli(capsys, "leaderboard", "--results", str(res), "--out", str(out))
    assert_usage_error(res_, "nlbench-manifest.txt", "../victim.txt")
    assert (tmp_path / "victim.txt").read_text() == "keep"


# -- migrate-records: paths built from records are checked before any rename (#32) ----------
def _erm_record(run_id: str, **config) -> dict:
    from synthetic_records import synthetic_record

    from nlbench.core.config import RunConfig
    from nlbench.engine.prepare import run_identity
    from nlbench.host.plugins import get_host

    ident = run_identity(RunConfig(), get_host())
    return {**synthetic_record(), "run_id": run_id, "config": {**ident.identity, **config}}


@pytest.mark.parametrize(
    "dataset", ["/../../../escaped", "../up", "digits\n", "a/b", "Digits", "x" * 200]
)
def test_migrate_records_never_moves_a_record_out_of_the_root(tmp_path, capsys, dataset):
    from nlbench.core.record import write_record

    root = tmp_path / "results"
    write_record(root / "old-id", _erm_record("old-id", dataset=dataset))
    (tmp_path / "keep.txt").write_text("mine")
    before = _tree(tmp_path)
    res = run_cli(capsys, "migrate-records", str(root))
    assert res.code == 1 and "Traceback" not in res.err
    assert "0 renamed, 0 unchanged, 0 conflict, 1 skipped" in res.out
    assert "config.dataset" in res.out or "not a safe directory name" in res.out
    assert _tree(tmp_path) == before  # run.json unchanged too: no run_id rewritten


def test_migrate_records_failed_move_rewrites_nothing(tmp_path, capsys, monkeypatch):
    from nlbench.core.record import write_record
    from nlbench.engine import migrate

    root = tmp_path / "results"
    write_record(root / "old-id", _erm_record("old-id"))
    before = _tree(tmp_path)

    def refuse(src, dst):
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(migrate.os, "rename", refuse)
    res = run_cli(capsys, "migrate-records", str(root))
    assert res.code == 1 and "cannot move it: Invalid cross-device link" in res.out
    assert _tree(tmp_path) == before


def test_migrate_records_skips_symlinked_records(tmp_path, capsys):
    from nlbench.core.record import write_record

    root, outside = tmp_path / "results", tmp_path / "outside"
    write_record(outside / "old-id", _erm_record("old-id"))
    root.mkdir()
    (root / "linked").symlink_to(outside / "old-id")
    (root / "real").mkdir()
    (root / "real" / "run.json").symlink_to(outside / "old-id" / "run.json")
    before = _tree(tmp_path)
    res = run_cli(capsys, "migrate-records", str(root))
    assert res.code == 1 and "0 renamed" in res.out and "1 skipped" in res.out
    assert _tree(tmp_path) == before
    assert (root / "linked").is_symlink()


# -- run directories: links are never followed, odd entries refused in one line (#32) -------
def test_a_symlinked_run_dir_is_refused(tmp_path, capsys):
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    out.mkdir()
    elsewhere.mkdir()
    (elsewhere / "mine.txt").write_text("x")
    (out / "r").symlink_to(elsewhere, target_is_directory=True)
    before = _tree(tmp_path)
    res = run_cli(capsys, *TINY, "--out", str(out), "--run-id", "r")
    assert_usage_error(res, "symbolic link", "--run-id")
    assert _tree(tmp_path) == before and sorted(os.listdir(elsewhere)) == ["mine.txt"]


@pytest.mark.parametrize(
    "entry, fragment",
    [
        ("", "is a file, not a run directory"),
        ("run.json/", "not a regular file"),
        ("checkpoint.pt/", "not a regular file"),
        ("epochs.jsonl/", "not a regular file"),
        ("run.lock@", "symbolic link"),
        ("epochs.jsonl@", "symbolic link"),
    ],
)
def test_odd_entries_in_a_run_dir_are_refused(tmp_path, capsys, entry, fragment):
    out = tmp_path / "out"
    out.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    if not entry:
        (out / "r").write_text("a file named like the run")
    else:
        (out / "r").mkdir()
        path = out / "r" / entry.rstrip("/@")
        path.mkdir() if entry.endswith("/") else path.symlink_to(victim)
    before = _tree(tmp_path)
    res = run_cli(capsys, *TINY, "--out", str(out), "--run-id", "r")
    assert_usage_error(res, fragment)
    assert _tree(tmp_path) == before


def test_an_out_name_over_the_limit_is_one_line(tmp_path, capsys):
    for out in (tmp_path / ("a" * 300), tmp_path / ("a" * 300) / "b"):
        assert_usage_error(run_cli(capsys, *TINY, "--out", str(out)), "--out", "too long")


# -- plugins: a registration error breaks only its plugin; the scaffold refuses taken names --
@pytest.fixture
def third_party_erm(tmp_path, monkeypatch):
    """An installed third-party plugin that registers ``erm`` again (and a name of its own)."""
    from nlbench.host import plugins

    (tmp_path / "nlb_dup_erm.py").write_text(
        "from nlbench import hookimpl\n"
        "from nlbench.core.specs import MethodSpec\n"
        "@hookimpl\n"
        "def register_methods(register):\n"
        "    register(MethodSpec('dup_own', 'x', factory=object))\n"
        "    register(MethodSpec('erm', 'x', factory=object))\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    real = plugins._candidates
    monkeypatch.setattr(
        plugins, "_candidates", lambda: [*real(), ("dup_erm", "nlb_dup_erm", ("x", "1"))]
    )
    monkeypatch.setenv("NLBENCH_NO_CACHE", "1")
    plugins.reset()
    yield
    plugins.reset()


def test_a_plugin_registering_a_taken_name_breaks_only_itself(third_party_erm, tmp_path, capsys):
    listed = run_cli(capsys, "list", "methods", "--json")
    assert listed.code == 0, listed.err
    data = json.loads(listed.out)
    (broken,) = [b for b in data["broken"] if b["plugin"] == "dup_erm"]
    assert "method_erm" in broken["error"] and "dup_erm" in broken["error"]
    names = {row["name"]: row["plugin"] for row in data["methods"]}
    assert names["erm"] == "method_erm" and "dup_own" not in names
    res = run_cli(capsys, *TINY, "--out", str(tmp_path / "runs"))
    assert res.code == 0, res.err


@pytest.mark.parametrize(
    "name, fragment",
    [("erm", "already registers"), ("foo\n", "names must match"), ("a" * 300, "at most 64")],
)
def test_new_plugin_refuses_bad_or_taken_names(tmp_path, capsys, name, fragment):
    res = run_cli(capsys, "new-plugin", str(tmp_path / "pkg"), "--name", name)
    assert_usage_error(res, "--name", fragment)
    assert list(tmp_path.iterdir()) == []


def test_new_plugin_into_a_file_or_unwritable_place_leaves_nothing(tmp_path, capsys):
    (tmp_path / "f").write_text("x")
    before = _tree(tmp_path)
    assert_usage_error(
        run_cli(capsys, "new-plugin", str(tmp_path / "f"), "--name", "zz"), "not a directory"
    )
    res = run_cli(capsys, "new-plugin", str(tmp_path / "f" / "pkg"), "--name", "zz")
    assert_usage_error(res, "nothing was written")
    assert _tree(tmp_path) == before and sorted(os.listdir(tmp_path)) == ["f"]
    if os.geteuid() != 0:
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o555)
        try:
            res = run_cli(capsys, "new-plugin", str(ro / "pkg"), "--name", "zz")
            assert_usage_error(res, "nothing was written")
        finally:
            ro.chmod(0o755)
        assert list(ro.iterdir()) == []


def test_a_name_with_a_trailing_newline_is_skipped_not_fatal(tmp_path, capsys):
    from synthetic_records import synthetic_record, write_synthetic

    res, out = tmp_path / "res", tmp_path / "out"
    write_synthetic(res, synthetic_record("erm", "sym:0.2", 0))
    bad = synthetic_record("erm", "sym:0.2", 1)
    bad["config"] = {**bad["config"], "dataset": "synth\n"}
    (res / "bad").mkdir()
    (res / "bad" / "run.json").write_text(json.dumps(bad))
    result = run_cli(capsys, "leaderboard", "--results", str(res), "--out", str(out))
    assert result.code == 0 and "Traceback" not in result.err
    (skipped,) = [ln for ln in result.err.splitlines() if ln.startswith("skipped: ")]
    assert "bad/run.json" in skipped and "config.dataset" in skipped
    assert (out / "synth-quick.md").is_file()


def test_a_marked_board_missing_from_an_older_manifest_is_still_ours(tmp_path, capsys):
    """A board carrying the generated-file marker is replaced even when the manifest predates it
    (a new generated file after an upgrade); an unmarked file at that name would be refused."""
    from nlbench.boards.leaderboard import MARKER

    res, out = _boards_with_figures(tmp_path)
    args = ("leaderboard", "--results", str(res), "--out", str(out))
    assert run_cli(capsys, *args).code == 0
    manifest = out / "nlbench-manifest.txt"
    manifest.write_text(manifest.read_text().replace("synth-quick.md\n", ""))
    (out / "synth-quick.md").write_text(f"{MARKER}\nold text\n")
    assert run_cli(capsys, *args).code == 0
    assert "old text" not in (out / "synth-quick.md").read_text()
    assert "synth-quick.md\n" in manifest.read_text()
    manifest.write_text(manifest.read_text().replace("synth-quick.md\n", ""))
    (out / "synth-quick.md").write_text("mine, no marker\n")
    assert_usage_error(run_cli(capsys, *args), "synth-quick.md", "did not write it")
    assert (out / "synth-quick.md").read_text() == "mine, no marker\n"
