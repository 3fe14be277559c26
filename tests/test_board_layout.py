"""A board read in a minute: summary on top, monotone ranks, marked rows, the shared README."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from helpers import run_cli
from synthetic_records import synthetic_record, write_synthetic

from nlbench.boards import leaderboard as lb


@pytest.fixture(autouse=True)
def no_figures(monkeypatch):
    monkeypatch.setattr(lb, "figures_available", lambda: False)


def table(text: str, noise: str) -> list[list[str]]:
    section = text.split(f"## Noise `{noise}`")[1]
    lines = section[section.index("\n| ") + 1 :].split("\n\n")[0].splitlines()[2:]
    return [line.strip("| ").split(" | ") for line in lines]


def grid(noises=("sym:0.2", "sym:0.6"), methods=("erm", "a", "b", "c"), seeds=3, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for noise in noises:
        for method in methods:
            centre, spread = 0.5 + 0.05 * rng.normal(), 0.08 * rng.uniform()
            for s in range(seeds):
                last = float(np.clip(centre + spread * rng.normal(), 0, 1))
                out.append(synthetic_record(method, noise, s, (0.1, round(last, 4))))
    return out


def build(tmp_path, records):
    for r in records:
        write_synthetic(tmp_path, r)
    return lb.build(tmp_path, figures=False)[0]


@pytest.mark.parametrize("seed", range(8))
def test_rank_labels_never_decrease_down_a_table_sorted_by_mean(tmp_path, seed):
    boards = build(tmp_path, grid(methods=("erm", "a", "b", "c", "d", "e"), seed=seed))
    for noise in ("sym:0.2", "sym:0.6"):
        rows = table(boards["synth-quick.md"], noise)
        means = [float(r[2].split(" ")[0]) for r in rows]
        ranks = [int(r[0]) for r in rows]
        assert means == sorted(means, reverse=True)
        assert ranks == sorted(ranks) and ranks[0] == 1


def test_summary_names_the_best_row_its_delta_and_n_per_setting(tmp_path):
    records = [
        *(synthetic_record("erm", "sym:0.2", s, (0.1, v)) for s, v in enumerate([0.6, 0.62, 0.61])),
        *(synthetic_record("top", "sym:0.2", s, (0.1, v)) for s, v in enumerate([0.8, 0.83, 0.8])),
        synthetic_record("lone", "sym:0.6", 0, (0.1, 0.5)),
    ]
    text = build(tmp_path, records)["synth-quick.md"]
    summary = text.split("## What this board says")[1].split("\n## ")[0]
    # top − erm per seed: +0.20, +0.21, +0.19 → +20.00 ± 2.48 (n=3)
    assert "- `sym:0.2`: **top** 81.00 (n=3), Δ vs ERM +20.00 ± 2.48 (n=3); alone in rank 1." in (
        summary
    )
    assert "- `sym:0.6`: one-seed rows only (preliminary); highest **lone** 50.00 (n=1)." in summary
    assert text.index("## What this board says") < text.index("## Noise `sym:0.2`")
    assert "*rank* groups never contradict that order" in text  # the rule, in one sentence


def test_rows_on_other_labels_and_one_seed_rows_are_marked(tmp_path):
    records = [synthetic_record("erm", "sym:0.2", s, (0.1, 0.6)) for s in range(3)]
    for s in range(3):
        r = synthetic_record("meta", "sym:0.2", s, (0.1, 0.7), hparams={"meta_set": "clean:100"})
        r["noise"]["labels_sha256"] = "f" * 64  # the held-out images change the training labels
        records.append(r)
    records.append(synthetic_record("once", "sym:0.2", 0, (0.1, 0.9)))
    text = build(tmp_path, records)["synth-quick.md"]
    rows = {re.sub(r" \(.*", "", r[1]).strip("*"): r for r in table(text, "sym:0.2")}
    assert rows["meta"][1].startswith("meta (other labels)<sup>") and rows["meta"][5] == "–"
    assert "holds out a clean meta set (`meta_set=clean:100`)" in text
    assert rows["once"][1] == "*once (1 seed: preliminary)*" and rows["once"][0] == "–"


def test_every_board_links_the_shared_readme_which_check_covers(tmp_path, capsys):
    res, out = tmp_path / "res", tmp_path / "boards"
    for r in grid():
        write_synthetic(res, r)
    write_synthetic(res, synthetic_record("erm", "sym:0.3", 0, (0.1, 0.5)), "studies-tiny")
    boards = lb.build(res, figures=False)[0]
    assert "[README.md](README.md)" in boards["synth-quick.md"]
    assert "[README.md](../README.md)" in boards["studies/tiny.md"]
    readme = boards["README.md"]
    assert lb.MARKER in readme and "## The ERM baseline" in readme
    assert "[synth-quick](synth-quick.md)" in readme and "(studies/tiny.md)" in readme
    assert run_cli(capsys, "leaderboard", "--results", str(res), "--out", str(out)).code == 0
    (out / "README.md").write_text(readme.replace("## The ERM baseline", "## edited"))
    stale = run_cli(capsys, "leaderboard", "--results", str(res), "--out", str(out), "--check")
    assert stale.code == 1 and "README.md" in stale.err


def test_cross_setting_ranks_print_friedmans_p(tmp_path):
    text = build(tmp_path, grid())["synth-quick.md"]
    section = text.split("## Ranks across noise settings")[1].split("\n## ")[0]
    assert "![synth-quick: average ranks across noise settings](figures/synth-quick-ranks.svg)" in (
        section
    )
    assert re.search(r"Friedman χ² = \d+\.\d\d, p = [0-9.e-]+ \(k = 4 methods, N = 2", section)
    assert "Nemenyi CD = " in section
    summary = text.split("## What this board says")[1].split("\n## ")[0]
    assert "- Across `sym:0.2`, `sym:0.6`: best average rank **" in summary


BOARDS = Path(__file__).resolve().parents[1] / "leaderboards"


def committed_tables(name: str) -> dict[str, list[list[str]]]:
    text = (BOARDS / name).read_text(encoding="utf-8")
    noises = re.findall(r"^## Noise `([^`]+)`$", text, re.M)
    return {noise: table(text, noise) for noise in noises}


@pytest.mark.parametrize("name", ["digits-quick.md", "cifar10-cpu.md"])
def test_committed_boards_never_rank_against_the_means(name):
    if not (BOARDS / name).is_file():
        pytest.skip(f"leaderboards/{name} is not committed")
    for noise, rows in committed_tables(name).items():
        ranked = [(float(r[2].split(" ")[0]), int(r[0])) for r in rows if r[0] != "–"]
        assert [m for m, _ in ranked] == sorted((m for m, _ in ranked), reverse=True), noise
        assert [k for _, k in ranked] == sorted(k for _, k in ranked), noise


def test_committed_digits_delta_is_the_claims_pages_difference():
    if not (BOARDS / "digits-quick.md").is_file():
        pytest.skip("leaderboards/digits-quick.md is not committed")
    rows = committed_tables("digits-quick.md")["sym:0.6"]
    delta = next(r[5] for r in rows if r[1].startswith("dividemix"))
    claims = (BOARDS / "claims.md").read_text(encoding="utf-8")
    paired = delta.replace("(n=", "(paired, n=")
    assert f"dividemix@sym:0.6 − erm@sym:0.6 = {paired}" in claims
