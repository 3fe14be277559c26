"""Figures: deterministic SVG bytes, embedded in the board; boards build without matplotlib."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from helpers import run_cli
from synthetic_records import synthetic_record, write_synthetic

from nlbench import leaderboard as lb
from nlbench.boards import figures

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


def test_figures_of_another_matplotlib_version_are_named_not_compared(tmp_path, capsys):
    res, out = records(tmp_path / "res"), tmp_path / "boards"
    run_cli(capsys, "leaderboard", "--results", str(res), "--out", str(out))
    path = out / "figures" / "synth-quick-sym-0.2.svg"
    path.write_text(
        path.read_text().replace(f"Matplotlib v{figures.version()}", "Matplotlib v0.1")
        + "<!-- other bytes -->"
    )
    check = run_cli(capsys, "leaderboard", "--results", str(res), "--out", str(out), "--check")
    assert check.code == 0 and f"not compared: {path}" in check.err
    run_cli(capsys, "leaderboard", "--results", str(res), "--out", str(out))  # rewrites it
    assert f"Matplotlib v{figures.version()}" in path.read_text()
