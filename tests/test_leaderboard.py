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

from nlbench.boards import leaderboard as lb

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
    assert sorted(boards) == ["README.md", "claims.md", "synth-paper.md", "synth-quick.md"]
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
    """The cells of the ranked table (the first table) of one noise section."""
    section = text.split(f"## Noise `{noise}`")[1].split("\n## ")[0]
    lines = section[section.index("\n| ") + 1 :].split("\n\n")[0].splitlines()
    return [line.strip("| ").split(" | ") for line in lines[2:]]


def test_ranking_ties_cost_and_variants(tmp_path, published):
    boards, _ = lb.build(write_all(tmp_path, golden_records()), published=published, figures=False)
    text = boards["synth-quick.md"]
    sym06 = _rows(text, "sym:0.6")
    # alpha and beta tie at 40.00: the name breaks the tie; one seed each: preliminary, no rank
    assert [r[1] for r in sym06] == [
        "*alpha (1 seed: preliminary)*",
        "*beta (1 seed: preliminary)*",
        "*erm · lr=0.05 (baseline; 1 seed: preliminary)*",  # labels are board-wide
    ]
    assert [r[0] for r in sym06] == ["–", "–", "–"] and sym06[0][3] == "– (n=1)"
    fancy = next(r for r in _rows(text, "sym:0.2") if r[1] == "fancy")
    assert fancy[2] == "86.00 ± 1.41" and fancy[9] == "clean meta data, two-net ensemble"
    # no cpu_s in these records: no cost, and a note says why
    assert fancy[8].startswith("–<sup>")
    # paired with the ERM baseline (plain erm, the variant with most runs: lr=0.05) on seeds 0
    # and 1: +5, +9; sd 2.83, se 2.00, t(0.975, 1) = 12.706
    assert fancy[5] == "+7.00 ± 25.41 (n=2)"
    labels = [r[1] for r in _rows(text, "sym:0.2")]
    assert "erm · lr=0.05 (baseline)" in labels
    assert "*erm · lr=0.01 (1 seed: preliminary)*" in labels
    assert text.index("`sym:0.2`") < text.index("`sym:0.6`") < text.index("`sym_incl:0.4`")


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
    baselines = df[
        df["method"].isin(["coteaching", "jocor", "elr", "forward", "confident_learning"])
    ]
    assert baselines["citation"].str.contains("table", case=False).all()  # the exact table
    clothing = baselines[baselines["dataset"] == "clothing1m"].set_index("method")["value"]
    assert clothing.to_dict() == {"forward": "69.84", "jocor": "70.30"}  # FaMUS supp. Table 1


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
    text = boards["synth-quick.md"]
    (row,) = _rows(text, "sym:0.2")
    assert row[2:5] == ["80.00", "– (n=1)", "1"]
    runs = next(line for line in text.splitlines() if line.startswith("| erm | tiny_cnn"))
    assert new["run_id"].rsplit("-", 1)[-1][:8] in runs
    assert old["run_id"].rsplit("-", 1)[-1][:8] not in runs


def test_a_variant_reads_as_the_option_that_sets_it_apart(tmp_path, published):
    """A variant that turns an optional hparam on reads as its name; the one that leaves it off
    (None, dropped from the comparison) as the bare method; other values as key=value."""
    off = synthetic_record(accs=(0.5, 0.6))
    on = synthetic_record(accs=(0.5, 0.7), hparams={"mixmatch": True})
    lr = synthetic_record(accs=(0.5, 0.7), hparams={"lr": 0.2})
    for rec in (off, on, lr):
        write_synthetic(tmp_path, rec)
    boards, _ = lb.build(tmp_path, published=published, figures=False)
    labels = {r[1].split(" (")[0].strip("*") for r in _rows(boards["synth-quick.md"], "sym:0.2")}
    # every key in which some variant differs is shown, except options that are off
    assert labels == {"erm · lr=0.05", "erm · lr=0.05 · mixmatch", "erm · lr=0.2"}


def test_loss_and_deviations_are_numbered_notes_under_the_table(tmp_path, published):
    """A loss the label does not name and method_info["deviations"] (both optional in records)
    become numbered notes; one text shared by two rows gets one number."""
    plain = synthetic_record(accs=(0.5, 0.6))
    gce = synthetic_record(accs=(0.5, 0.7), hparams={"loss": "gce"})
    only_gce = synthetic_record("other", accs=(0.5, 0.65), hparams={"loss": "gce"})
    dev = synthetic_record("fancy", accs=(0.5, 0.8))
    dev["method_info"] = {
        "deviations": [
            {"what": "no warm-up", "why": "x", "option": "warmup"},
            "lr 0.1 | 0.2",
            {"what": "no warm-up", "why": "x", "option": "warmup_epochs"},  # named once
        ]
    }
    dev2 = synthetic_record("fancier", accs=(0.5, 0.75))
    dev2["method_info"] = {"deviations": ["no warm-up"]}
    for rec in (plain, gce, only_gce, dev, dev2):
        write_synthetic(tmp_path, rec)
    boards, _ = lb.build(tmp_path, published=published, figures=False)
    text = boards["synth-quick.md"]
    cells = {r[1].split(" (")[0].strip("*"): r[1] for r in _rows(text, "sym:0.2")}
    notes = text.split("Notes:\n\n")[1].split("\n\n")[0].splitlines()
    number = {line.split(". ", 1)[1]: line.split(".")[0] for line in notes}
    warm = number["Deviation from the official code: no warm-up"]
    lr = number["Deviation from the official code: lr 0.1 / 0.2"]
    gce_note = number["Loss gce instead of cross-entropy."]
    assert cells["fancy"].endswith(f"<sup>{lr},{warm}</sup>")
    assert cells["fancier"].endswith(f"<sup>{warm}</sup>")
    assert cells["other"].endswith(f"<sup>{gce_note}</sup>")
    assert "<sup>" not in cells["erm · loss=gce"]  # its label already names the loss
