"""`nlbench leaderboard` never breaks on a bad record: it names it on one line and skips it.

Exit codes (nlbench/commands/leaderboard.py): 0 with bad records named and skipped; 2 under
--strict; 2 under --check when two records of one run_id disagree; nothing is ever written
outside --out.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from helpers import run_cli
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from synthetic_records import synthetic_record, write_synthetic

from nlbench.boards import leaderboard as lb


@pytest.fixture(autouse=True)
def no_figures(monkeypatch):
    monkeypatch.setattr(lb, "figures_available", lambda: False)


def write_raw(root: Path, name: str, record: dict | str) -> Path:
    path = root / name / "run.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(record if isinstance(record, str) else json.dumps(record), encoding="utf-8")
    return path


def deep(n: int) -> str:
    return "[" * n + "]" * n


def bad_records() -> dict[str, dict | str]:
    good = synthetic_record
    cases: dict[str, dict | str] = {}
    r = good(seed=11)
    r["config"] = {**r["config"], "dataset": "../../evil"}
    cases["escape"] = r
    r = good(seed=12)
    r["summary"] = {**r["summary"], "last_acc": float("nan")}
    cases["nan"] = r
    r = good(seed=13)
    r["config"] = {**r["config"], "method": "erm\n| x |"}
    cases["newline"] = r
    r = good(seed=14)
    r["config"] = {**r["config"], "seed": float("inf")}  # OverflowError
    cases["overflow"] = r
    r = good(seed=15)
    r["noise"] = ["not", "a", "dict"]  # AttributeError (.get on a list)
    cases["attribute"] = r
    r = good(seed=16)
    r["config"] = {**r["config"], "hparams": json.loads(deep(50))}
    cases["hparams-list"] = r
    cases["recursion"] = '{"schema": ' + deep(100_000) + "}"
    r = good(seed=17)
    r["run_id"] = ["unhashable"]
    cases["run-id"] = r
    return cases


def test_each_bad_record_is_named_once_and_skipped(tmp_path, capsys):
    res, out = tmp_path / "res", tmp_path / "out"
    write_synthetic(res, synthetic_record())
    cases = bad_records()
    for name, record in cases.items():
        write_raw(res, name, record)
    result = run_cli(capsys, "leaderboard", "--results", str(res), "--out", str(out))
    assert result.code == 0, result.err
    assert "Traceback" not in result.err
    skipped = [line for line in result.err.splitlines() if line.startswith("skipped: ")]
    for name in cases:
        assert sum(f"/{name}/run.json" in line for line in skipped) == 1, (name, result.err)
    assert len(skipped) == len(cases)
    assert not (tmp_path / "evil.md").exists() and not list(tmp_path.glob("*.md"))
    assert sorted(p.name for p in out.glob("*.md")) == ["README.md", "claims.md", "synth-quick.md"]
    board = (out / "synth-quick.md").read_text(encoding="utf-8")
    assert "| 1 |" in board and "evil" not in board and "| x |" not in board
    strict = run_cli(capsys, "leaderboard", "--results", str(res), "--out", str(out), "--strict")
    assert strict.code == 2 and len(strict.err.strip().splitlines()) == 1


def test_two_records_of_one_run_that_disagree(tmp_path, capsys):
    res, out = tmp_path / "res", tmp_path / "out"
    rec = synthetic_record(accs=(0.5, 0.6))
    write_raw(res, "a", rec)
    write_raw(res, "b", {**rec, "summary": {**rec["summary"], "last_acc": 0.9}})
    write_raw(res, "c", rec)  # an identical copy is no conflict
    wrote = run_cli(capsys, "leaderboard", "--results", str(res), "--out", str(out))
    conflicts = [line for line in wrote.err.splitlines() if line.startswith("conflict: ")]
    assert wrote.code == 0 and len(conflicts) == 1
    assert f"{res}/a/run.json and {res}/b/run.json differ" in conflicts[0]
    check = run_cli(capsys, "leaderboard", "--results", str(res), "--out", str(out), "--check")
    assert check.code == 2 and "a/run.json" in check.err and "b/run.json" in check.err


def test_a_record_cannot_write_outside_out(tmp_path):
    with pytest.raises(Exception, match="refusing"):
        lb.write({"../x.md": "x"}, tmp_path / "out")
    assert not (tmp_path / "x.md").exists()


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=12)
    | st.sampled_from(["../../x", "a\nb", "a|b", "erm", "sym:0.2", "`", "studies"]),
    lambda kids: (
        st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=6), kids, max_size=3)
    ),
    max_leaves=8,
)
FIELDS = (
    [("config", k) for k in ("dataset", "profile", "method", "noise", "seed", "hparams")]
    + [("summary", k) for k in ("last_acc", "best_acc", "wall_s", "epochs_to_fit")]
    + [
        (k, None)
        for k in (
            "config",
            "summary",
            "noise",
            "epochs",
            "run_id",
            "flags",
            "status",
            "method_info",
            "created",
        )
    ]
)
DIRS = ["", "studies-memorisation-x/", "studies-batch-schedule-x/", "studies-other/"]


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    mutations=st.lists(
        st.tuples(st.sampled_from(FIELDS), JSON, st.sampled_from(DIRS)), min_size=1, max_size=4
    )
)
def test_generated_bad_records_never_break_the_command(capsys, mutations):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        res, out = root / "res", root / "out"
        write_synthetic(res, synthetic_record(seed=0))
        for i, ((top, key), value, folder) in enumerate(mutations):
            rec = synthetic_record(seed=i + 1)
            if key is None:
                rec[top] = value
            else:
                rec[top] = {**rec[top], key: value}
            write_raw(res, f"{folder}bad{i}", rec)
        before = {p for p in root.rglob("*")}
        result = run_cli(capsys, "leaderboard", "--results", str(res), "--out", str(out))
        assert result.code == 0, result.err
        assert "Traceback" not in result.err and "Error:" not in result.err
        lines = [line for line in result.err.splitlines() if line.startswith("skipped: ")]
        for i, (_, _, folder) in enumerate(mutations):
            assert sum(f"/{folder}bad{i}/run.json" in line for line in lines) <= 1
        new = {p for p in root.rglob("*")} - before
        assert all(p.is_relative_to(out) for p in new), new


def test_a_record_of_an_older_noise_version_is_left_off_with_its_reason(tmp_path):
    """A noise model whose meaning changed (NoiseModelSpec.version) never fills a board cell
    with records of its old meaning; a record of the current version does."""
    from nlbench.boards.records import collect, current_noise_versions

    assert current_noise_versions()["shuffled_pixels"] == 2  # the built-in's version now
    old = synthetic_record(noise="shuffled_pixels", seed=0)
    new = synthetic_record(noise="shuffled_pixels", seed=1)
    new["config"]["noise_version"] = 2
    for record in (old, new):
        write_synthetic(tmp_path, record)
    got = collect(tmp_path, noise_versions={"shuffled_pixels": 2})
    assert [r["config"]["seed"] for _, r, _ in got.records] == [1]
    assert len(got.problems) == 1
    assert "version 1 of noise 'shuffled_pixels', which is at version 2" in got.problems[0]
    assert len(collect(tmp_path, noise_versions={}).records) == 2  # unknown versions: kept
