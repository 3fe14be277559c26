"""Invariant: a command touches only what it wrote (#32).

Every writing command (``run``, ``sweep``, ``leaderboard``, ``migrate-records``, ``report``,
``new-plugin``, ``data prepare``) runs over a tree seeded with the user's own files, symbolic
links (to files and folders outside, and inside its output) and look-alike names (``run.json.bak``,
a temp-file look-alike, an SVG beside the figures, a record that would escape its root). Every
one of them is byte-identical afterwards, links point where they pointed, and nothing outside
the tree appears.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from helpers import CliResult, digits_run, run_cli

LOOKALIKES = (
    "notes.txt",
    "run.json.bak",
    "epochs.jsonl~",
    "checkpoint.pt.old",
    ".run.json.user.tmp.keep",
    "nlbench-manifest.txt.bak",
    "report.md.orig",
    "accuracy.png.bak",
    "Digits-quick.md",
    "mine.svg",
)


def seed(folder: Path, outside: Path) -> None:
    """The user's files, look-alike names and links in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in LOOKALIKES:
        (folder / name).write_bytes(f"user's {name} in {folder.name}".encode())
    (folder / "link-to-file").symlink_to(outside / "victim.txt")
    (folder / "link-to-dir").symlink_to(outside / "dir", target_is_directory=True)
    (folder / "dangling").symlink_to(outside / "nowhere")


def snapshot(root: Path) -> dict[str, tuple[str, object]]:
    """Every entry under ``root`` without following links: files by bytes, links by target."""
    out: dict[str, tuple[str, object]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [*dirnames, *filenames]:
            path = Path(dirpath) / name
            rel = str(path.relative_to(root))
            if path.is_symlink():
                out[rel] = ("link", os.readlink(path))
            elif path.is_file():
                out[rel] = ("file", path.read_bytes())
            else:
                out[rel] = ("dir", None)
    return out


def ok(res: CliResult) -> None:
    assert res.code == 0 and "Traceback" not in res.err, res.err


@pytest.fixture
def tree(tmp_path):
    """``tmp_path`` seeded for every command; returns (root, foreign snapshot, outside)."""
    outside = tmp_path / "outside"
    (outside / "dir").mkdir(parents=True)
    (outside / "victim.txt").write_text("outside: must never change")
    (outside / "dir" / "inner.txt").write_text("outside dir")
    for name in ("runs", "results", "boards", "boards/figures", "boards/studies/figures"):
        seed(tmp_path / name, outside)
    for name in ("reports", "plugs", "dataroot", "runs/look-alike-run", "results/foreign-dir"):
        seed(tmp_path / name, outside)
    (tmp_path / "boards" / "figures" / "digits-quick-sym-0.4.svg.bak").write_text("mine")
    (tmp_path / "boards" / "my-board.md").write_text("# my own board, no marker\n")
    escape = tmp_path / "results" / "escape" / "run.json"  # a record whose new name escapes
    escape.parent.mkdir()
    escape.write_text(json.dumps({"schema": 1, "run_id": "x", "config": {"dataset": "/../../e"}}))
    return tmp_path, snapshot(tmp_path), outside


def _write_sweep(root: Path) -> Path:
    sweep = root / "sweep.toml"
    sweep.write_text(
        'methods = ["erm"]\ndataset = "digits"\nnoise = ["0.4"]\nseeds = [0, 1]\nepochs = 1\n'
        f'train_subset = 60\nout = "{root / "runs"}"\ndevice = "cpu"\n'
    )
    return sweep


def _run_every_writer(root: Path, capsys) -> None:
    runs = root / "runs"
    tiny = [*digits_run("0.4", 1, 60, "-q"), "--out", str(runs)]
    ok(run_cli(capsys, *tiny, "--run-id", "r"))
    ok(run_cli(capsys, *tiny))
    ok(run_cli(capsys, "sweep", "-c", str(_write_sweep(root))))
    for run_dir in sorted(
        p for p in runs.iterdir() if (p / "run.json").is_file() and not p.is_symlink()
    ):
        shutil.copytree(run_dir, root / "results" / f"old-{run_dir.name}")
    ok(run_cli(capsys, "report", str(runs / "r")))
    ok(run_cli(capsys, "report", str(runs / "r"), "--out", str(root / "reports")))
    res = run_cli(capsys, "migrate-records", str(root / "results"))
    assert res.code == 1 and "Traceback" not in res.err and "skipped" in res.out, res.out
    for _ in range(2):  # the second pass replaces and removes only what the first one wrote
        ok(
            run_cli(
                capsys,
                "leaderboard",
                "--results",
                str(root / "results"),
                "--out",
                str(root / "boards"),
            )
        )
    for moved in (root / "results").glob("erm-digits-*"):
        shutil.rmtree(moved)  # no records left: every generated board goes, the user's stay
    ok(
        run_cli(
            capsys, "leaderboard", "--results", str(root / "results"), "--out", str(root / "boards")
        )
    )
    ok(run_cli(capsys, "new-plugin", str(root / "plugs" / "pkg"), "--name", "zz_invariant"))
    ok(run_cli(capsys, "data", "prepare", "digits", "--root", str(root / "dataroot"), "--offline"))


def test_every_writing_command_leaves_foreign_files_alone(tree, capsys, monkeypatch):
    root, before, outside = tree
    monkeypatch.setenv("NLBENCH_OFFLINE", "1")
    monkeypatch.setenv("NLBENCH_NO_CACHE", "1")
    _run_every_writer(root, capsys)
    after = snapshot(root)
    changed = sorted(rel for rel, entry in before.items() if after.get(rel) != entry)
    assert not changed, changed
    assert sorted(os.listdir(outside)) == ["dir", "victim.txt"]
    assert sorted(os.listdir(outside / "dir")) == ["inner.txt"]
    assert not (root.parent / "e").exists() and not (root / "e").exists()
    # and they did write their own files
    assert (root / "runs" / "r" / "run.json").is_file()
    assert (root / "reports" / "report.md").is_file()
    assert (root / "plugs" / "pkg" / "pyproject.toml").is_file()
    assert (root / "boards" / "nlbench-manifest.txt").is_file()
