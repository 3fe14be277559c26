"""The ERM baseline: one rule for boards and claims, Δ against it, cost from CPU time only."""

from __future__ import annotations

import re

import pytest
from synthetic_records import synthetic_record, write_synthetic

from nlbench.boards import claims as cl
from nlbench.boards import leaderboard as lb
from nlbench.boards.baseline import baseline_variant, is_plain_erm
from nlbench.boards.records import frame

SCE = {"loss": "sce", "alpha": 0.1, "beta": 1.0}
GCE = {"loss": "gce", "q": 0.7}


@pytest.fixture(autouse=True)
def no_figures(monkeypatch):
    monkeypatch.setattr(lb, "figures_available", lambda: False)


def rec(method: str, seed: int, last: float, hparams: dict | None = None, **kw) -> dict:
    r = synthetic_record(method, "sym:0.6", seed, (0.1, last), hparams=hparams)
    r["env"] = {"threads": kw.get("threads", 1)}
    if "cpu" in kw:
        r["summary"]["cpu_s"] = kw["cpu"]
    return r


def several_erm_variants() -> list[dict]:
    """Plain ERM on 3 seeds, SCE on 4 (the old tie-break's pick: most runs), GCE on 3,
    DivideMix on 3 (the digits board's case)."""
    return [
        *(rec("erm", s, v) for s, v in enumerate([0.70, 0.69, 0.71])),
        *(rec("erm", s, v, SCE) for s, v in enumerate([0.88, 0.89, 0.87, 0.90])),
        *(rec("erm", s, v, GCE) for s, v in enumerate([0.91, 0.92, 0.93])),
        *(rec("dividemix", s, v) for s, v in enumerate([0.97, 0.975, 0.96])),
    ]


def board_rows(boards: dict[str, str]) -> dict[str, list[str]]:
    section = boards["synth-quick.md"].split("## Noise `sym:0.6`")[1]
    table = section[section.index("\n| ") + 1 :].split("\n\n")[0].splitlines()[2:]
    cells = [line.strip("| ").split(" | ") for line in table]
    return {re.sub(r" \(.*|<sup>.*|\*", "", c[1]): c for c in cells}


def test_the_plain_erm_run_is_the_baseline_whatever_has_most_runs(tmp_path):
    df = frame(several_erm_variants())
    plain = baseline_variant(df)
    assert plain is not None and is_plain_erm("erm", plain)
    assert '"loss"' not in plain
    for r in several_erm_variants():
        write_synthetic(tmp_path, r)
    boards, _ = lb.build(tmp_path, figures=False)
    rows = board_rows(boards)
    assert rows["erm"][1] == "erm (baseline)" and rows["erm"][5] == "baseline"
    # dividemix − plain erm per seed: +0.27, +0.285, +0.25 → +26.83 (mean); not against SCE
    assert rows["dividemix"][5].startswith("+26.83 ± ")
    # ERM's own variants get their Δ against the plain run too
    # seeds 0-2 pair (seed 3 has no plain ERM run): +0.18, +0.20, +0.16
    assert rows["erm · alpha=0.1 · beta=1.0 · loss=sce"][5].startswith("+18.00 ± ")
    assert rows["erm · loss=gce · q=0.7"][5].startswith("+22.00 ± ")


def test_a_boards_delta_is_the_claims_pages_difference_for_the_same_cells(tmp_path):
    for r in several_erm_variants():
        write_synthetic(tmp_path, r)
    boards, _ = lb.build(tmp_path, figures=False)
    board = board_rows(boards)["dividemix"][5]  # "+26.83 ± 4.50 (n=3)"
    cells = ("dividemix@sym:0.6", "erm@sym:0.6")
    claim = cl.Claim("c", "DivideMix above ERM", "a paper", "synth-quick", "last", "order", cells)
    verdict, numbers = cl.evaluate(claim, {"synth-quick": frame(several_erm_variants())})
    assert f"dividemix@sym:0.6 − erm@sym:0.6 = {board.replace('(n=', '(paired, n=')}" in numbers
    assert verdict == "holds"


def test_the_baseline_is_taken_at_the_rows_budget_on_boards_and_claims(tmp_path):
    """A longer ERM run (another epochs budget, more runs) never pairs with a short row."""
    long = [synthetic_record("erm", "sym:0.6", s, (0.1, 0.2, 0.9)) for s in range(4)]
    short = [rec("erm", s, v) for s, v in enumerate([0.70, 0.69, 0.71])]
    fancy = [rec("fancy", s, v) for s, v in enumerate([0.80, 0.80, 0.83])]
    df = frame([*long, *short, *fancy])
    claim = cl.Claim(
        "c", "x", "y", "synth-quick", "last", "order", ("fancy@sym:0.6", "erm@sym:0.6")
    )
    _, numbers = cl.evaluate(claim, {"synth-quick": df})
    assert "erm@sym:0.6 70.00 (n=3)" in numbers and "= +11.00 ± " in numbers


def cost_records(threads_b: int = 1, lacking: bool = False) -> list[dict]:
    # erm: 2 epochs, cpu 20, 22, 90 (one run slowed: the median ignores it) → 11 s/epoch
    # fancy: 33, 30, 36 → median 16.5 s/epoch → 1.50×
    cpu_erm, cpu_fancy = [20.0, 22.0, 90.0], [33.0, 30.0, 36.0]
    records = [rec("erm", s, 0.7, cpu=c) for s, c in enumerate(cpu_erm)]
    records += [rec("fancy", s, 0.8, cpu=c, threads=threads_b) for s, c in enumerate(cpu_fancy)]
    if lacking:
        del records[-1]["summary"]["cpu_s"]
    return records


@pytest.mark.parametrize(
    ("kw", "cost", "note"),
    [
        ({}, "1.50×", None),
        ({"threads_b": 4}, "–", "different or unknown torch thread counts"),
        ({"lacking": True}, "–", "lacks `cpu_s`"),
    ],
)
def test_cost_is_the_ratio_of_median_cpu_seconds_per_epoch(tmp_path, kw, cost, note):
    for r in cost_records(**kw):
        write_synthetic(tmp_path, r)
    boards, _ = lb.build(tmp_path, figures=False)
    rows = board_rows(boards)
    assert rows["erm"][8] == "1.00×"
    assert rows["fancy"][8].startswith(cost)
    if note:
        number = rows["fancy"][8].split("<sup>")[1].split("</sup>")[0]
        assert re.search(
            rf"^{number}\. No cost vs ERM: .*{re.escape(note)}", boards["synth-quick.md"], re.M
        )


def test_wall_clock_time_never_enters_the_cost(tmp_path):
    records = cost_records()
    for r in records:
        r["summary"]["wall_s"] = 1000.0 if r["config"]["method"] == "fancy" else 1.0
    for r in records:
        write_synthetic(tmp_path, r)
    boards, _ = lb.build(tmp_path, figures=False)
    assert board_rows(boards)["fancy"][8] == "1.50×"
