"""Study boards from results/studies-<name>/: kinds, tables, and their place under --out."""

from __future__ import annotations

import pytest
from synthetic_records import synthetic_record, write_synthetic

from nlbench.boards import leaderboard as lb


@pytest.fixture(autouse=True)
def no_figures(monkeypatch):
    monkeypatch.setattr(lb, "figures_available", lambda: False)


def test_memorisation_study_board(tmp_path):
    res = tmp_path / "res"
    for noise, fit in [("random_labels:1.0", None), ("gaussian", 4), ("random_labels:0.0", 2)]:
        rec = synthetic_record("erm", noise, 0, (0.2, 0.3), dataset="digits", fit_epochs=fit)
        if noise == "gaussian":  # the input corruptions are at version 2 (test images too)
            rec["config"]["noise_version"] = 2
        write_synthetic(res / "studies-memorisation-digits", rec)
    write_synthetic(res, synthetic_record())  # a main-board record stays on the main board
    boards, collected = lb.build(res)
    assert collected.problems == []
    text = boards["studies/memorisation-digits.md"]
    assert "](figures/memorisation-digits-curves.svg)" in text
    rows = [line for line in text.splitlines() if line.startswith("| `")]
    # label corruptions by rate, then input corruptions; never-fitted runs say so
    assert [r.split(" | ")[0] for r in rows] == [
        "| `random_labels:0.0`",
        "| `random_labels:1.0`",
        "| `gaussian`",
    ]
    assert "| never in 2 |" in rows[1] and "| 2.0 |" in rows[0]
    assert "digits" not in "".join(k for k in boards if not k.startswith("studies/"))


def test_batch_schedule_study_board(tmp_path):
    res = tmp_path / "res" / "studies-batch-schedule-digits"
    for bs, sched in [(128, "cosine"), (16, "constant")]:
        rec = synthetic_record(
            "erm",
            "sym_incl:0.4",
            0,
            (0.2, 0.3),
            hparams={"batch_size": bs, "scheduler": sched},
            extra_epoch={"grad_cos_clean_all": 0.5},
        )
        write_synthetic(res, rec)
    boards, _ = lb.build(tmp_path / "res")
    text = boards["studies/batch-schedule-digits.md"]
    rows = [line for line in text.splitlines() if line.startswith("| `")]
    assert rows[0].startswith("| `sym_incl:0.4` | 16 | constant | 1 | 30.00 |")
    assert "| 0.500 → 0.500 |" in rows[1]


def test_study_cells_show_the_spread_over_seeds_and_one_figure_per_noise(tmp_path):
    res = tmp_path / "res" / "studies-batch-schedule-digits"
    for noise in ("sym_incl:0.4", "sym_incl:0.0", "sym_incl:0.2"):
        for seed, last in enumerate((0.30, 0.32, 0.34)):
            rec = synthetic_record(
                "erm", noise, seed, (0.2, last), hparams={"batch_size": 16, "scheduler": "cosine"}
            )
            write_synthetic(res, rec)
    boards, _ = lb.build(tmp_path / "res", figures=False)
    text = boards["studies/batch-schedule-digits.md"]
    rows = [line for line in text.splitlines() if line.startswith("| `")]
    assert [r.split(" | ")[0] for r in rows] == [  # noise rate order, not string order
        "| `sym_incl:0.0`",
        "| `sym_incl:0.2`",
        "| `sym_incl:0.4`",
    ]
    assert "| 3 | 32.00 ± 2.00 |" in rows[0]  # mean ± sample std over the 3 seeds
    for slug in ("sym-incl-0.0", "sym-incl-0.2", "sym-incl-0.4"):
        assert f"](figures/batch-schedule-digits-{slug}.svg)" in text


def test_epochs_to_fit_show_their_spread(tmp_path):
    res = tmp_path / "res" / "studies-memorisation-digits"
    for seed, fit in enumerate((10, 14, None)):
        rec = synthetic_record("erm", "random_labels:1.0", seed, (0.1, 0.1), fit_epochs=fit)
        write_synthetic(res, rec)
    text = lb.build(tmp_path / "res", figures=False)[0]["studies/memorisation-digits.md"]
    assert "| 12.0 ± 2.8 (2/3 fitted) |" in text


def test_a_schedule_fixed_in_steps_is_its_own_row(tmp_path):
    res = tmp_path / "res" / "studies-batch-schedule-digits"
    for steps in (None, 300):
        hp = {"batch_size": 16, "scheduler": "cosine", "schedule_steps": steps}
        write_synthetic(res, synthetic_record("erm", "sym_incl:0.4", 0, (0.2, 0.3), hparams=hp))
    text = lb.build(tmp_path / "res", figures=False)[0]["studies/batch-schedule-digits.md"]
    rows = [line for line in text.splitlines() if line.startswith("| `")]
    assert [r.split(" | ")[2] for r in rows] == ["cosine", "cosine over 300 steps"]
