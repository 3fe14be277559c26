"""Each board ends with the cells its sweep files ask for and no finished record fills."""

from __future__ import annotations

from pathlib import Path

from synthetic_records import synthetic_record, write_synthetic

from nlbench.boards import leaderboard as lb
from nlbench.boards.pending import missing, spent

SWEEP = """
methods = ["erm", "mwnet"]
dataset = "synth"
profile = "quick"
noise = ["sym:0.2", "sym:0.6"]
seeds = [0, 1]
epochs = 2
out = "results/synth-quick"
"""


def _sweeps(tmp_path: Path, **files: str) -> Path:
    folder = tmp_path / "leaderboards" / "sweeps"
    folder.mkdir(parents=True)
    for name, text in files.items():
        (folder / f"{name}.toml").write_text(text)
    return folder


def test_missing_cells_are_listed_by_method_noise_and_seed(tmp_path):
    sweeps = _sweeps(tmp_path, grid=SWEEP)
    records = [
        synthetic_record("erm", "sym:0.2", 0, accs=(0.5, 0.6)),
        synthetic_record("erm", "sym:0.2", 1, accs=(0.5, 0.6)),
        synthetic_record("erm", "sym:0.6", 1, accs=(0.5, 0.6)),
        synthetic_record("mwnet", "sym:0.2", 0, accs=(0.5, 0.6, 0.7)),  # 3 epochs: another cell
    ]
    cost = spent(sweeps, "synth-quick", records)["grid.toml"]
    assert (cost.done, cost.cells, cost.wall_h, cost.with_cpu) == (3, 8, 30.0 / 3600, 0)
    rows = missing(sweeps, "synth-quick", records)["grid.toml"]
    assert rows == [
        ["erm", "`sym:0.6`", "–", "0"],
        ["mwnet", "`sym:0.2`", "–", "0, 1"],
        ["mwnet", "`sym:0.6`", "–", "0, 1"],
    ]


def test_set_and_grid_settings_must_match_the_record(tmp_path):
    text = SWEEP.replace('["erm", "mwnet"]', '["erm"]').replace(
        '["sym:0.2", "sym:0.6"]', '"sym:0.2"'
    )
    sweeps = _sweeps(tmp_path, losses=text + "\n[set]\nlr = 0.05\n[grid]\nloss = ['gce', 'sce']\n")
    plain = [synthetic_record("erm", "sym:0.2", s, accs=(0.5, 0.6)) for s in (0, 1)]
    rows = missing(sweeps, "synth-quick", plain)["losses.toml"]
    assert rows == [
        ["erm", "`sym:0.2`", "loss=gce lr=0.05", "0, 1"],
        ["erm", "`sym:0.2`", "loss=sce lr=0.05", "0, 1"],
    ]
    gce = [
        synthetic_record("erm", "sym:0.2", s, accs=(0.5, 0.6), hparams={"loss": "gce"})
        for s in (0, 1)
    ]
    rows = missing(sweeps, "synth-quick", plain + gce)["losses.toml"]
    assert rows == [["erm", "`sym:0.2`", "loss=sce lr=0.05", "0, 1"]]


def test_other_boards_studies_and_unreadable_files_are_left_out(tmp_path):
    sweeps = _sweeps(
        tmp_path,
        other=SWEEP.replace('profile = "quick"', 'profile = "paper"'),
        study=SWEEP.replace("results/synth-quick", "results/studies-memo"),
        broken="methods = [",
        space=SWEEP + '\n[grid]\nlr = "search_space"\n',
    )
    assert missing(sweeps, "synth-quick", []) == {}


def test_the_board_ends_with_the_cells_still_to_run(tmp_path):
    results = tmp_path / "results"
    sweeps = _sweeps(tmp_path, grid=SWEEP.replace('["erm", "mwnet"]', '["erm"]'))
    for noise in ("sym:0.2", "sym:0.6"):
        for seed in (0, 1):
            write_synthetic(results, synthetic_record("erm", noise, seed, accs=(0.5, 0.6)))
    files, _ = lb.build(results, figures=False, sweeps=sweeps)
    board = files["synth-quick.md"]
    assert "## Cells still to run" in board
    head = "- `nlbench sweep -c leaderboards/sweeps/grid.toml`: 4 of 4 cells, 0.01 h wall-clock;"
    assert f"{head} every cell has a finished record." in board  # 4 runs of wall_s 10
    files, _ = lb.build(results, figures=False)  # no sweep folder: no section
    assert "Cells still to run" not in files["synth-quick.md"]
    write_synthetic(results, synthetic_record("mwnet", "sym:0.2", 0, accs=(0.5, 0.6)))
    (sweeps / "grid.toml").write_text(SWEEP)
    board = lb.build(results, figures=False, sweeps=sweeps)[0]["synth-quick.md"]
    assert "| mwnet | `sym:0.2` | – | 1 |" in board and "| mwnet | `sym:0.6` | – | 0, 1 |" in board


STUDY = """
methods = ["erm"]
dataset = "synth"
profile = "quick"
noise = ["random_labels:0.0", "random_labels:1.0"]
seeds = [0]
epochs = 2
out = "results/studies-memorisation-synth"
"""


def test_a_study_sweep_lands_on_its_study_board(tmp_path):
    sweeps = _sweeps(tmp_path, study=STUDY)
    done = synthetic_record("erm", "random_labels:0.0", 0, accs=(0.5, 0.6))
    assert missing(sweeps, "synth-quick", [done]) == {}  # not the main board's cells
    rows = missing(sweeps, "studies/memorisation-synth", [done])["study.toml"]
    assert rows == [["erm", "`random_labels:1.0`", "–", "0"]]


def test_a_study_without_records_still_gets_a_board_that_lists_its_cells(tmp_path):
    results = tmp_path / "results"
    sweeps = _sweeps(tmp_path, study=STUDY)
    write_synthetic(results, synthetic_record())  # only a main-board record so far
    files, _ = lb.build(results, figures=False, sweeps=sweeps)
    board = files["studies/memorisation-synth.md"]
    assert "No run record under `results/studies-memorisation-synth/` yet" in board
    assert "rethinking generalization" in board  # the study's intro: what it will show
    assert "`nlbench sweep -c leaderboards/sweeps/study.toml`: 0 of 2 cells, 0.00 h wall" in board
    assert "| erm | `random_labels:1.0` | – | 0 |" in board
    assert lb.MARKER in board  # a generated file: --check covers it, a rebuild replaces it

    write_synthetic(
        results / "studies-memorisation-synth",
        synthetic_record("erm", "random_labels:0.0", 0, accs=(0.5, 0.6), fit_epochs=2),
    )
    board = lb.build(results, figures=False, sweeps=sweeps)[0]["studies/memorisation-synth.md"]
    assert "No run record" not in board and "From 1 run record(s)" in board
    assert "1 of 2 cells" in board and "| erm | `random_labels:1.0` | – | 0 |" in board
    assert "| erm | `random_labels:0.0` |" not in board


def test_no_sweep_folder_no_empty_study_boards(tmp_path):
    results = tmp_path / "results"
    write_synthetic(results, synthetic_record())
    files, _ = lb.build(results, figures=False)
    assert not [name for name in files if name.startswith("studies/")]


def test_a_study_sweep_with_an_unusable_name_makes_no_study_board(tmp_path):
    results = tmp_path / "results"
    sweeps = _sweeps(
        tmp_path,
        empty=STUDY.replace("studies-memorisation-synth", "studies-"),
        upper=STUDY.replace("studies-memorisation-synth", "studies-Memo"),
        dots=STUDY.replace("studies-memorisation-synth", "studies-a..b"),
    )
    write_synthetic(results, synthetic_record())
    files, _ = lb.build(results, figures=False, sweeps=sweeps)
    assert not [name for name in files if name.startswith("studies/")]


def test_cpu_hours_count_the_records_that_have_them(tmp_path):
    sweeps = _sweeps(tmp_path, grid=SWEEP)
    records = [synthetic_record("erm", "sym:0.2", s, accs=(0.5, 0.6)) for s in (0, 1)]
    records[0]["summary"]["cpu_s"] = 1800.0  # the other predates cpu_s
    cost = spent(sweeps, "synth-quick", records)["grid.toml"]
    assert (cost.cpu_h, cost.with_cpu) == (0.5, 1)
    assert cost.text() == (
        "2 of 8 cells, 0.01 h wall-clock (0.50 CPU-h over the 1 that record CPU time)"
    )
