"""Leaderboards: run records → boards, figures, claims page and study boards under ``--out``.

Same records in, same bytes out: records are read in sorted path order and de-duplicated by
run_id, every sort has an explicit total order, numbers are formatted once, and nothing
time-dependent is written. Every output is a path relative to ``--out`` built from validated
names (:data:`nlbench.core.registry.NAME_RE`) and checked to stay inside it; the files written are
listed in ``--out/nlbench-manifest.txt`` and only those are ever replaced or removed
(:mod:`nlbench.core.manifest`). The pieces live in
:mod:`nlbench.boards` (records, stats, render, figures, claims, studies).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from nlbench.boards import claims as claims_mod
from nlbench.boards import detection, studies
from nlbench.boards.board import render_board
from nlbench.boards.figures import available as figures_available
from nlbench.boards.figures import made_by_other_version, same_figure
from nlbench.boards.pending import section as pending_section
from nlbench.boards.pending import study_names
from nlbench.boards.published import load_published, published_table
from nlbench.boards.readme import render_readme
from nlbench.boards.records import Collected, collect, frame, noise_order
from nlbench.boards.render import DASH, MARKER, pipe_table
from nlbench.core.manifest import MANIFEST, Outputs, inside

__all__ = [  # re-exported: nlbench.boards.report and the tests use these names from here
    "DASH",
    "MANIFEST",
    "MARKER",
    "Built",
    "Collected",
    "build",
    "build_all",
    "collect",
    "frame",
    "inside",
    "load_published",
    "noise_order",
    "other_version_figures",
    "pipe_table",
    "published_table",
    "stale",
    "write",
]
FIGURE_DIRS = ("figures", "studies/figures")
BOARD_GLOBS = ("*.md", "studies/*.md")


@dataclass
class Built:
    """Every generated file as ``{path relative to --out: text}``, and what was left out."""

    files: dict[str, str] = field(default_factory=dict)
    figures: bool = True  # False: matplotlib missing, no SVG built or compared


def board_name(dataset: str, profile: str) -> str:
    return f"{dataset}-{profile}.md"


def build(
    results: Path,
    strict: bool = False,
    published: pd.DataFrame | None = None,
    claims: list[claims_mod.Claim] | None = None,
    figures: bool | None = None,
    sweeps: Path | None = None,
) -> tuple[dict[str, str], Collected]:
    """Every generated file as ``{relative path: text}`` from the records under ``results``."""
    built, collected = build_all(results, strict, published, claims, figures, sweeps)
    return built.files, collected


def build_all(
    results: Path,
    strict: bool = False,
    published: pd.DataFrame | None = None,
    claims: list[claims_mod.Claim] | None = None,
    figures: bool | None = None,
    sweeps: Path | None = None,
) -> tuple[Built, Collected]:
    """:func:`build`, also saying whether figures were built; with ``sweeps`` (the folder of
    sweep files, ``leaderboards/sweeps``) each board ends with the cells still to run."""
    collected = collect(results, strict)
    published = load_published() if published is None else published
    claims = claims_mod.load_claims() if claims is None else claims
    built = Built(figures=figures_available() if figures is None else figures)
    main = frame(r for _, r, study in collected.records if not study)
    frames = {"": main}
    by_board: dict[tuple[str, str], list[dict]] = {}  # one pass: each board's own records
    for _, r, study in collected.records:
        if not study:
            by_board.setdefault((r["config"]["dataset"], r["config"]["profile"]), []).append(r)
    if not main.empty:
        for (dataset, profile), part in main.groupby(["dataset", "profile"], sort=True):
            name = board_name(dataset, profile)
            built.files.update(render_board(part, published, dataset, profile, built.figures))
            todo = pending_section(sweeps, name[:-3], by_board.get((dataset, profile), []))
            if todo:
                built.files[name] = built.files[name].rstrip("\n") + "\n\n" + "\n".join(todo)
            frames[name[:-3]] = part
    measured = {s for _, _, s in collected.records if s}
    for name in sorted(measured | set(study_names(sweeps))):  # a study sweep without records
        own = [r for _, r, study in collected.records if study == name]  # still gets its board
        key = f"studies/{name}.md"
        if own:
            frames[f"studies/{name}"] = df = frame(own)
            files = studies.render_study(name, df, built.figures)
        else:
            files = {key: studies.render_unmeasured(name)}
        todo = pending_section(sweeps, f"studies/{name}", own)
        if todo:
            files[key] = files[key].rstrip("\n") + "\n\n" + "\n".join(todo)
        built.files.update(files)
    built.files.update(detection.render_detection(r for _, r, s in collected.records if not s))
    if collected.records:  # nothing measured: no claims page to check
        built.files["claims.md"] = claims_mod.render_claims(claims, frames, sweeps)
        boards = sorted(n for n in built.files if n.endswith(".md") and n != "claims.md")
        built.files["README.md"] = render_readme(boards)
    return built, collected


def _marked(name: str, path: Path) -> bool:
    """A board that says it is generated (the marker line): this command's, listed or not."""
    return name.endswith(".md") and path.is_file() and MARKER.encode() in path.read_bytes()


def _legacy_owned(name: str, path: Path) -> bool:
    """In a folder without a manifest (an older nlbench's): a marked board, or a figure
    matplotlib made at a name this command generates."""
    data = path.read_bytes() if path.is_file() else b""
    return _marked(name, path) or (name.endswith(".svg") and b"Matplotlib v" in data[:4000])


def _legacy_boards(out: Path) -> list[str]:
    return sorted(p.relative_to(out).as_posix() for g in BOARD_GLOBS for p in out.glob(g))


def outputs(out: Path, figures: bool = True) -> Outputs:
    """The generated files under ``out`` and the manifest listing them
    (:mod:`nlbench.core.manifest`);
    without matplotlib the listed figures are kept, neither compared nor removed."""
    return Outputs(
        out,
        "leaderboard",
        legacy_owned=_legacy_owned,
        keep=lambda name: not figures and name.endswith(".svg"),
        legacy_names=_legacy_boards,
        marked=_marked,
    )


def generated_files(out: Path, figures: bool = True) -> list[str]:
    """Files in ``out`` this command wrote: the ones its manifest lists."""
    if not Path(out).is_dir():
        return []
    listed = outputs(out, figures).listed or set()
    return sorted(n for n in listed if (Path(out) / n).is_file())


def _differs(out: Path, name: str, text: str) -> bool:
    path = inside(out, name)
    if name.endswith(".svg") and path.is_file():  # by the data it draws, not matplotlib's bytes
        return not same_figure(path.read_bytes(), text)
    return not path.is_file() or path.read_bytes() != text.encode("utf-8")


def other_version_figures(boards: dict[str, str], out: Path, figures: bool = True) -> list[str]:
    """Committed SVGs made by another matplotlib version: their bytes cannot be compared."""
    if not figures:
        return []
    names = []
    for name in sorted(n for n in boards if n.endswith(".svg")):
        path = inside(out, name)
        if path.is_file() and made_by_other_version(path.read_bytes()):
            names.append(name)
    return names


def stale(boards: dict[str, str], out: Path, figures: bool = True) -> list[str]:
    """Files in ``out`` that differ from ``boards``: missing, changed, or no longer generated
    (listed in the manifest, which is stale itself when its list would change).

    SVGs are compared only when ``figures`` (matplotlib installed) and made by the installed
    matplotlib version (:func:`other_version_figures`).
    """
    skip = set(other_version_figures(boards, out, figures))
    names = {n for n, text in boards.items() if n not in skip and _differs(out, n, text)}
    names |= set(outputs(out, figures).stale(boards))
    return sorted(str(out / n) for n in names)


def write(boards: dict[str, str], out: Path, figures: bool = True) -> list[Path]:
    """Write the files that changed and remove listed files that have no records left.

    Only files the manifest lists are replaced or removed; a user's file at a generated name,
    or a symbolic link there, is refused before anything is written.
    """
    return outputs(out, figures).write(boards, lambda name, text: _differs(out, name, str(text)))
