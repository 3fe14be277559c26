"""Figures: deterministic SVG bytes stamped with their data's hash, embedded in the board;
``--check`` compares the data, not the drawing library's bytes; boards build without matplotlib."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import run_cli
from synthetic_records import synthetic_record, write_synthetic

from nlbench.boards import figures
from nlbench.boards import leaderboard as lb

pytest.importorskip("matplotlib")


def records(root: Path) -> Path:
    for seed, accs in enumerate([(0.3, 0.5, 0.6), (0.35, 0.55, 0.62)]):
        write_synthetic(root, synthetic_record("erm", "sym:0.2", seed, accs))
        write_synthetic(root, synthetic_record("fancy", "sym:0.2", seed, (0.4, 0.6, 0.7)))
    return root


def test_svg_bytes_are_deterministic_and_embedded(tmp_path):
    res = records(tmp_path / "res")
    first, _ = lb.build(res)
    second, _ = lb.build(res)
    svg = first["figures/synth-quick-sym-0.2.svg"]
    assert svg == second["figures/synth-quick-sym-0.2.svg"]
    assert (
        svg.startswith("<?xml")
        and "<dc:date>" not in svg
        and f"Matplotlib v{figures.version()}" in svg
    )
    assert ">fancy<" in svg  # text stays text (svg.fonttype none)
    assert "](figures/synth-quick-sym-0.2.svg)" in first["synth-quick.md"]


def test_spread_handles_unequal_lengths():
    mean, lo, hi = figures.spread([[1.0, 2.0, 3.0], [3.0, 4.0]])
    assert list(mean) == [2.0, 3.0, 3.0] and list(lo) == [1.0, 2.0, 3.0] and hi[1] == 4.0


@pytest.mark.slow
def test_svg_bytes_are_the_same_in_another_process(tmp_path):
    res = records(tmp_path / "res")
    mine, _ = lb.build(res)
    code = (
        "import sys; from pathlib import Path; from nlbench import leaderboard as lb; "
        "sys.stdout.write(lb.build(Path(sys.argv[1]))[0]['figures/synth-quick-sym-0.2.svg'])"
    )
    env = {"PYTHONHASHSEED": "123", "PATH": "/usr/bin:/bin", "PYTHONPATH": ":".join(sys.path)}
    out = subprocess.run(
        [sys.executable, "-c", code, str(res)], capture_output=True, text=True, env=env, check=True
    ).stdout
    assert out == mine["figures/synth-quick-sym-0.2.svg"]


def test_board_builds_without_matplotlib(tmp_path, capsys, monkeypatch):
    res, out = records(tmp_path / "res"), tmp_path / "boards"
    with_figures, _ = lb.build(res)
    assert run_cli(capsys, "leaderboard", "--results", str(res), "--out", str(out)).code == 0
    (out / "figures" / "synth-quick-sym-0.2.svg").write_text("old figure", encoding="utf-8")
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now fails
    assert not figures.available()
    boards, _ = lb.build(res)
    assert not any(name.endswith(".svg") for name in boards)
    assert boards["synth-quick.md"] == with_figures["synth-quick.md"]  # same markdown
    check = run_cli(capsys, "leaderboard", "--results", str(res), "--out", str(out), "--check")
    assert check.code == 0 and "matplotlib is not installed" in check.err  # SVGs not compared
    wrote = run_cli(capsys, "leaderboard", "--results", str(res), "--out", str(out))
    assert wrote.code == 0 and "no SVG was built" in wrote.err
    assert (out / "figures" / "synth-quick-sym-0.2.svg").read_text() == "old figure"  # kept
    monkeypatch.delitem(sys.modules, "matplotlib")
    stale = run_cli(capsys, "leaderboard", "--results", str(res), "--out", str(out), "--check")
    assert stale.code == 1 and "synth-quick-sym-0.2.svg" in stale.err


def test_a_figure_is_compared_by_its_data_not_by_matplotlibs_bytes(tmp_path, capsys):
    """Another matplotlib release draws other bytes from the same data: --check passes and
    writing keeps the committed figure; new data makes it stale and rewrites it."""
    res, out = records(tmp_path / "res"), tmp_path / "boards"
    run_cli(capsys, "leaderboard", "--results", str(res), "--out", str(out))
    path = out / "figures" / "synth-quick-sym-0.2.svg"
    redrawn = path.read_text().replace(f"Matplotlib v{figures.version()}", "Matplotlib v99.0")
    redrawn = redrawn.replace("stroke-width", "stroke-width ")  # other drawing bytes
    path.write_text(redrawn)
    check = run_cli(capsys, "leaderboard", "--results", str(res), "--out", str(out), "--check")
    assert check.code == 0, check.err
    assert "not compared" not in check.err
    run_cli(capsys, "leaderboard", "--results", str(res), "--out", str(out))
    assert path.read_text() == redrawn  # same data: not rewritten, whatever drew it
    write_synthetic(res, synthetic_record("fancy", "sym:0.2", 5, (0.1, 0.2, 0.3)))
    stale = run_cli(capsys, "leaderboard", "--results", str(res), "--out", str(out), "--check")
    assert stale.code == 1 and str(path) in stale.err


def test_the_data_hash_names_what_is_drawn():
    panels: list[figures.Panel] = [("acc %", [("a", [[1.0, 2.0]])])]
    svg = figures.figure_svg("t", panels)
    assert svg.splitlines()[1] == (
        f"<!-- nlbench-figure-data sha256:{figures.data_hash('curves', ['t', panels, 'epoch'])} -->"
    )
    other = figures.figure_svg("t", [("acc %", [("a", [[1.0, 2.5]])])])
    assert not figures.same_figure(svg.encode(), other)
    assert figures.same_figure(svg.replace("<svg", "<svg ").encode(), svg)
    assert not figures.same_figure(b"<svg>legacy</svg>", svg)  # no hash: bytes decide


def test_legacy_figures_of_another_matplotlib_version_are_named_not_compared(tmp_path, capsys):
    res, out = records(tmp_path / "res"), tmp_path / "boards"
    run_cli(capsys, "leaderboard", "--results", str(res), "--out", str(out))
    path = out / "figures" / "synth-quick-sym-0.2.svg"
    legacy = re.sub(r"<!-- nlbench-figure-data sha256:[0-9a-f]+ -->\n", "", path.read_text())
    path.write_text(legacy.replace(f"Matplotlib v{figures.version()}", "Matplotlib v0.1"))
    check = run_cli(capsys, "leaderboard", "--results", str(res), "--out", str(out), "--check")
    assert check.code == 0 and f"not compared: {path}" in check.err
    run_cli(capsys, "leaderboard", "--results", str(res), "--out", str(out))  # rewrites it
    assert f"Matplotlib v{figures.version()}" in path.read_text()


def test_rank_figure_is_deterministic_and_stamped(tmp_path):
    root = tmp_path / "res"
    for noise in ("sym:0.2", "sym:0.6"):
        for m, method in enumerate(("erm", "fancy", "plain")):
            for seed in range(2):
                acc = 0.5 + 0.1 * m + 0.01 * seed
                write_synthetic(root, synthetic_record(method, noise, seed, (0.1, acc)))
    first, _ = lb.build(root)
    second, _ = lb.build(root)
    svg = first["figures/synth-quick-ranks.svg"]
    assert svg == second["figures/synth-quick-ranks.svg"]
    assert figures.DATA_RE.search(svg.encode()) and ">CD = " in svg
    assert "](figures/synth-quick-ranks.svg)" in first["synth-quick.md"]
