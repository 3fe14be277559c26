"""Leaderboards from synthetic records: golden bytes, order independence, --check, bad records.

The golden file ``tests/golden/synth-quick.md`` is regenerated with::

    NLBENCH_REGEN_GOLDEN=1 .venv/bin/python -m pytest tests/test_leaderboard.py -k golden

Review the diff before committing it: it is the leaderboard format.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import run_cli
from synthetic_records import synthetic_record, write_synthetic

from nlbench import leaderboard as lb

GOLDEN = Path(__file__).parent / "golden" / "synth-quick.md"
PUBLISHED_CSV = """dataset,noise,method,arch,metric,value,std,citation,status,note
synth,sym_incl:0.4,fancy,Net-9,best,91.5,0.2,"Someone et al., Fancy, 2020, Table 1",V,3 seeds
synth,sym_incl:0.4,erm,Net-9,last10,80.1,,"Someone et al., Fancy, 2020, Table 1",R,
other,sym:0.2,erm,Net-9,best,1.0,,"Not this dataset",R,
"""


def golden_records() -> list[dict]:
    """Three noise settings, seeds, a tie, flags, an hparam variant and a second profile."""
    r = synthetic_record
    return [
        r("erm", "sym:0.2", 0, (0.60, 0.70, 0.80), wall_s=10.0),
        r("erm", "sym:0.2", 1, (0.62, 0.74, 0.78), wall_s=12.0),
        r("erm", "sym:0.2", 2, (0.61, 0.71, 0.82), wall_s=11.0),
        r("erm", "sym:0.2", 0, (0.50, 0.60, 0.70), wall_s=11.0, hparams={"lr": 0.01}),
        r("fancy", "sym:0.2", 0, (0.70, 0.90, 0.85), wall_s=33.0, flags=("clean_meta", "two_net")),
        r("fancy", "sym:0.2", 1, (0.72, 0.88, 0.87), wall_s=50.0, flags=("clean_meta", "two_net")),
        r("beta", "sym:0.6", 0, (0.30, 0.50, 0.40), wall_s=5.0, flags=("noise_tuned",)),
        r("alpha", "sym:0.6", 0, (0.35, 0.45, 0.40), wall_s=5.0),
        r("erm", "sym:0.6", 0, (0.30, 0.40, 0.30), wall_s=5.0),
        r("fancy", "sym_incl:0.4", 0, (0.50, 0.55, 0.60), wall_s=7.0),
        r("erm", "sym:0.2", 0, (0.10, 0.20, 0.30), profile="paper"),
    ]


@pytest.fixture(autouse=True)
def no_figures(monkeypatch):
    """Figures have their own tests (test_board_figures.py); here they only cost time."""
    monkeypatch.setattr(lb, "figures_available", lambda: False)


@pytest.fixture
def published(tmp_path) -> pd.DataFrame:
    path = tmp_path / "published.csv"
    path.write_text(PUBLISHED_CSV, encoding="utf-8")
    return lb.load_published(path)


def write_all(
    root: Path,
    records: list[dict],
    order: list[int] | None = None,
    prefixes: list[str] | None = None,
) -> Path:
    for i in order or range(len(records)):
        write_synthetic(root, records[i], prefixes[i] if prefixes else None)
    return root


def test_golden_board(tmp_path, published):
    res = write_all(tmp_path / "res", golden_records())
    boards, collected = lb.build(res, published=published, figures=False)
    assert sorted(boards) == ["claims.md", "synth-paper.md", "synth-quick.md"]
    assert collected.problems == []
    if os.environ.get("NLBENCH_REGEN_GOLDEN"):
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_bytes(boards["synth-quick.md"].encode("utf-8"))
    assert boards["synth-quick.md"] == GOLDEN.read_text(encoding="utf-8")


def test_same_bytes_whatever_the_file_order(tmp_path, published):
    records = golden_records()
    reference, _ = lb.build(write_all(tmp_path / "a", records), published=published)
    rng = np.random.default_rng(0)
    for trial in range(3):
        order = [int(i) for i in rng.permutation(len(records))]
        prefixes = [f"batch{int(rng.integers(100))}" for _ in records]  # different sorted paths
        root = write_all(tmp_path / f"shuffled{trial}", records, order, prefixes)
        # a duplicate copy of one record elsewhere counts once
        shutil.copytree(root / prefixes[0] / records[0]["run_id"], root / "dup" / "x")
        boards, _ = lb.build(root, published=published)
        assert boards == reference


def _rows(text: str, noise: str) -> list[list[str]]:
    section = text.split(f"## Noise `{noise}`")[1].split("##")[0]
    lines = [line for line in section.splitlines() if line.startswith("| ") and "---" not in line]
    return [line.strip("| ").split(" | ") for line in lines[1:]]


def test_ranking_ties_cost_and_variants(tmp_path, published):
    boards, _ = lb.build(write_all(tmp_path, golden_records()), published=published, figures=False)
    text = boards["synth-quick.md"]
    sym06 = _rows(text, "sym:0.6")
    # alpha and beta tie at 40.00: the name breaks the tie; one seed each: no rank group
    assert [r[1] for r in sym06] == ["alpha", "beta", "erm"]
    assert [r[0] for r in sym06] == ["–", "–", "–"] and sym06[0][3] == "– (n=1)"
    fancy = next(r for r in _rows(text, "sym:0.2") if r[1] == "fancy")
    # cost: the fastest fancy run (33 s; the other took 50 s) over the fastest erm run (10 s)
    assert fancy[2] == "86.00 ± 1.41" and fancy[8] == "3.30×"
    assert fancy[11] == "clean meta data, two-net ensemble"
    # paired with erm lr=0.05 (the ERM variant with most runs) on seeds 0 and 1: +5, +9;
    # sd 2.83, se 2.00, t(0.975, 1) = 12.706
    assert fancy[5] == "+7.00 ± 25.41 (n=2)"
    labels = [r[1] for r in _rows(text, "sym:0.2")]
    assert "erm · lr=0.01" in labels and "erm · lr=0.05" in labels
    assert text.index("`sym:0.2`") < text.index("`sym:0.6`") < text.index("`sym_incl:0.4`")


def test_cost_uses_cpu_time_when_every_run_records_it(tmp_path, published):
    def rec(method: str, seed: int, wall: float, cpu: float | None) -> dict:
        r = synthetic_record(method, "sym:0.2", seed, (0.5, 0.6), wall_s=wall)
        r["summary"]["cpu_s"] = cpu
        return r

    records = [
        rec("erm", 0, 100.0, 20.0),
        rec("erm", 1, 300.0, 22.0),  # slowed down by other jobs: its wall time says 3x
        rec("slow", 0, 150.0, 60.0),
        rec("slow", 1, 170.0, 61.0),
        rec("old", 0, 250.0, None),  # a record from before cpu_s: wall-clock for this row
    ]
    boards, _ = lb.build(write_all(tmp_path, records), published=published, figures=False)
    cost = {r[1]: r[8] for r in _rows(boards["synth-quick.md"], "sym:0.2")}
    assert cost == {"erm": "1.00×", "slow": "3.00×", "old": "2.50×"}  # 60/20; 250/100


def test_published_numbers_are_a_separate_cited_table(tmp_path, published):
    boards, _ = lb.build(write_all(tmp_path, golden_records()), published=published, figures=False)
    measured, cited = boards["synth-quick.md"].split("## Published numbers")
    assert "91.5 ± 0.2" in cited and "Someone et al." in cited and "[V]" in cited
    assert "Someone et al." not in measured and "Not this dataset" not in cited


def test_packaged_published_table():
    df = lb.load_published()
    assert set(df["status"]) <= {"V", "R"}
    assert (df["citation"].str.len() > 0).all()
    values = df["value"].astype(float)
    assert ((values > 0) & (values <= 100)).all()
    famus = df[(df["method"] == "famus") & (df["dataset"] == "cifar10")]
    assert "95.37" in set(famus["value"])  # Xu et al., FaMUS, CVPR 2021, Table 5


def test_check_fails_on_stale_board_and_names_it(tmp_path, capsys):
    res, out = write_all(tmp_path / "res", golden_records()), tmp_path / "boards"
    assert run_cli(capsys, "leaderboard", "--results", str(res), "--out", str(out)).code == 0
    ok = run_cli(capsys, "leaderboard", "--results", str(res), "--out", str(out), "--check")
    assert ok.code == 0, ok.err
    write_synthetic(res, synthetic_record("erm", "sym:0.2", 7, (0.9, 0.9, 0.9)))
    stale = run_cli(capsys, "leaderboard", "--results", str(res), "--out", str(out), "--check")
    assert stale.code == 1
    assert str(out / "synth-quick.md") in stale.err and "synth-paper.md" not in stale.err


def test_check_names_boards_without_records(tmp_path, capsys):
    res, out = write_all(tmp_path / "res", golden_records()), tmp_path / "boards"
    run_cli(capsys, "leaderboard", "--results", str(res), "--out", str(out))
    shutil.rmtree(res / golden_records()[-1]["run_id"])  # the only `paper` record
    stale = run_cli(capsys, "leaderboard", "--results", str(res), "--out", str(out), "--check")
    assert stale.code == 1 and "synth-paper.md" in stale.err
    run_cli(capsys, "leaderboard", "--results", str(res), "--out", str(out))
    assert not (out / "synth-paper.md").exists() and (out / "synth-quick.md").exists()


def test_corrupt_and_unknown_schema_records_are_named_and_skipped(tmp_path, capsys):
    res = write_all(tmp_path / "res", golden_records())
    (res / "broken").mkdir()
    (res / "broken" / "run.json").write_text("{not json", encoding="utf-8")
    future = {**synthetic_record("erm", "sym:0.2", 9), "schema": 99}
    (res / "future").mkdir()
    (res / "future" / "run.json").write_text(json.dumps(future), encoding="utf-8")
    write_synthetic(res, synthetic_record("erm", "sym:0.2", 5, status="failed"))
    out = tmp_path / "boards"
    result = run_cli(capsys, "leaderboard", "--results", str(res), "--out", str(out))
    assert result.code == 0
    assert str(res / "broken" / "run.json") in result.err
    assert str(res / "future" / "run.json") in result.err and "schema 99" in result.err
    clean, _ = lb.build(write_all(tmp_path / "clean", golden_records()), figures=False)
    assert (out / "synth-quick.md").read_text(encoding="utf-8") == clean["synth-quick.md"]
    strict = run_cli(capsys, "leaderboard", "--results", str(res), "--out", str(out), "--strict")
    assert strict.code == 2 and "broken" in strict.err


def test_empty_results_and_missing_dir(tmp_path, capsys):
    (tmp_path / "res").mkdir()
    assert (
        run_cli(
            capsys,
            "leaderboard",
            "--results",
            str(tmp_path / "res"),
            "--out",
            str(tmp_path / "b"),
            "--check",
        ).code
        == 0
    )
    missing = run_cli(capsys, "leaderboard", "--results", str(tmp_path / "nope"))
    assert missing.code == 2 and "not a directory" in missing.err


@pytest.mark.parametrize(
    ("specs", "expected"),
    [
        (["sym:0.6", "sym:0.2", "sym:0.10"], ["sym:0.10", "sym:0.2", "sym:0.6"]),
        (
            ["none", "asym:0.4", "cifar_n:worse", "cifar_n:aggre"],
            ["asym:0.4", "cifar_n:aggre", "cifar_n:worse", "none"],
        ),
    ],
)
def test_noise_order(specs, expected):
    assert sorted(specs, key=lb.noise_order) == expected


def test_pipe_table_is_unpadded_and_escapes_pipes():
    text = lb.pipe_table(["a", "b"], [["x|y", "1"]])
    assert text == "| a | b |\n| --- | --- |\n| x\\|y | 1 |\n"


def test_a_run_recorded_twice_counts_once_the_later(tmp_path, published):
    """The same configuration and seed under two run_ids (a re-run after a new optional hparam
    changed the hash, or a batching-only difference) is one run: the later record counts."""
    old = synthetic_record(accs=(0.5, 0.6), hparams={"eval_batch_size": 1024})
    new = synthetic_record(accs=(0.5, 0.8), hparams={"eval_batch_size": None, "added": None})
    new["created"] = "2025-06-01T00:00:00"
    assert old["run_id"] != new["run_id"]
    for rec in (old, new):
        write_synthetic(tmp_path, rec)
    boards, _ = lb.build(tmp_path, published=published, figures=False)
    row = next(line for line in boards["synth-quick.md"].splitlines() if "| erm |" in line)
    assert "| 80.00 | – (n=1) | 1 |" in row and new["run_id"].rsplit("-", 1)[-1][:8] in row
    assert old["run_id"].rsplit("-", 1)[-1][:8] not in row


def test_a_variant_reads_as_the_option_that_sets_it_apart(tmp_path, published):
    """A variant that turns an optional hparam on reads as its name; the one that leaves it off
    (None, dropped from the comparison) as the bare method; other values as key=value."""
    off = synthetic_record(accs=(0.5, 0.6))
    on = synthetic_record(accs=(0.5, 0.7), hparams={"mixmatch": True})
    lr = synthetic_record(accs=(0.5, 0.7), hparams={"lr": 0.2})
    for rec in (off, on, lr):
        write_synthetic(tmp_path, rec)
    boards, _ = lb.build(tmp_path, published=published, figures=False)
    labels = {r[1] for r in _rows(boards["synth-quick.md"], "sym:0.2")}
    # every key in which some variant differs is shown, except options that are off
    assert labels == {"erm · lr=0.05", "erm · lr=0.05 · mixmatch", "erm · lr=0.2"}


def test_loss_and_deviations_are_noted(tmp_path, published):
    """A non-`ce` loss and method_info["deviations"] (both optional in records) are named."""
    plain = synthetic_record(accs=(0.5, 0.6))
    gce = synthetic_record(accs=(0.5, 0.7), hparams={"loss": "gce"})
    dev = synthetic_record("fancy", accs=(0.5, 0.7))
    dev["method_info"] = {
        "deviations": [
            {"what": "no warm-up", "why": "x", "option": "warmup"},
            "lr 0.1 | 0.2",
            {"what": "no warm-up", "why": "x", "option": "warmup_epochs"},  # named once
        ]
    }
    for rec in (plain, gce, dev):
        write_synthetic(tmp_path, rec)
    boards, _ = lb.build(tmp_path, published=published, figures=False)
    notes = {r[1]: r[12] for r in _rows(boards["synth-quick.md"], "sym:0.2")}
    assert notes["erm · loss=gce"] == "loss gce" and notes["erm"] == "–"
    assert notes["fancy"] == "no warm-up; lr 0.1 / 0.2"
