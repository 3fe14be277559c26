"""The cells a board's sweep files ask for that no finished record fills yet.

A board is only as complete as its sweep files say it should be: each board ends with the cells
still to run and the command that fills them, computed from ``leaderboards/sweeps/*.toml`` and
the records, so that the list can never drift from the truth (``--check`` covers it).
"""

from __future__ import annotations

import functools
import itertools
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nlbench.boards.records import study_name
from nlbench.boards.render import pipe_table
from nlbench.core.errors import NlbenchError
from nlbench.sweep.plan import grid_from_mapping, load_toml

# RunConfig fields a sweep cell is matched on (None in the sweep: any value)
_MATCHED = ("method", "dataset", "noise", "profile", "seed", "noise_seed", "train_subset", "model")


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return float(a) == float(b)
    return bool(a == b)


def _shown(value: Any) -> str:
    """A setting as the sweep file and ``--set`` write it (``true``, not ``True``)."""
    return "true" if value is True else "false" if value is False else str(value)


def _cells(path: Path) -> list[tuple[Any, dict[str, Any]]] | None:
    """Every (RunConfig, hparam settings) of a sweep file; None for a file whose cells depend
    on a method's search space or per-method tables (not listed) or that cannot be read.

    Each board, study and claim asks for the sweep files' cells: a file is resolved once per
    version of its bytes, not once per question."""
    try:
        stat = path.stat()
    except OSError:
        return None
    return _cells_of(path, stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=256)
def _cells_of(path: Path, mtime_ns: int, size: int) -> list[tuple[Any, dict[str, Any]]] | None:
    try:
        grid = grid_from_mapping(load_toml(path), f"sweep file {path}")
    except NlbenchError:
        return None
    if grid.per_method or any(not isinstance(v, list) for v in grid.grid.values()):
        return None
    keys = sorted(grid.grid)
    variants = [
        dict(zip(keys, combo)) for combo in itertools.product(*(grid.grid[k] for k in keys))
    ]
    return [
        (cfg, {**dict(grid.overrides), **variant})
        for cfg in grid.configs()
        for variant in variants or [{}]
    ]


def _filled(
    cfg: Any, settings: Mapping[str, Any], records: Iterable[dict[str, Any]]
) -> dict[str, Any] | None:
    """The first finished record of the cell, None when there is none."""
    for record in records:
        rc, hp = record["config"], record["config"].get("hparams") or {}
        if not all(
            getattr(cfg, k) is None
            or _same(getattr(cfg, k), rc.get(k) if k != "model" else hp.get(k))
            for k in _MATCHED
        ):
            continue
        if cfg.epochs is not None and not _same(cfg.epochs, hp.get("epochs")):
            continue
        if all(_same(v, hp.get(k)) for k, v in settings.items()):
            return record
    return None


def target(cells: list[tuple[Any, dict[str, Any]]]) -> str | None:
    """The board a sweep file's runs land on: ``studies/<name>`` for a study sweep (its
    ``out`` is ``results/studies-<name>``), else ``<dataset>-<profile>``; None when its cells
    would land on several boards."""
    found = set()
    for cfg, _ in cells:
        name = study_name(Path(cfg.out or "").name)  # as the records' folder is read
        found.add(f"studies/{name}" if name else f"{cfg.dataset}-{cfg.profile}")
    return found.pop() if len(found) == 1 else None


def _board_cells(sweeps: Path, stem: str) -> dict[str, list[tuple[Any, dict[str, Any]]]]:
    """The cells of each sweep file whose runs land on board ``stem`` (``<dataset>-<profile>``
    or ``studies/<name>``)."""
    out = {}
    for path in sorted(sweeps.glob("*.toml")):
        cells = _cells(path)
        if cells and target(cells) == stem:
            out[path.name] = cells
    return out


def study_names(sweeps: Path | None) -> list[str]:
    """The studies the sweep files ask for (``studies-<name>`` outs), records or not, so that
    a study board (and the claims' links to it) exists before its first run."""
    if sweeps is None or not sweeps.is_dir():
        return []
    names = set()
    for path in sorted(sweeps.glob("*.toml")):
        cells = _cells(path)
        where = target(cells) if cells else None
        if where and where.startswith("studies/"):
            names.add(where.removeprefix("studies/"))
    return sorted(names)


def sweeps_for(
    sweeps: Path | None, board: str, method: str, noise: str, select: Mapping[str, str]
) -> list[str]:
    """The sweep files with a cell on ``board`` for ``method`` at ``noise`` whose settings
    match ``select`` (``{key: JSON value}``): the commands that would measure a claim's cell."""
    if sweeps is None or not sweeps.is_dir():
        return []

    return [
        name
        for name, cells in _board_cells(sweeps, board).items()
        if any(
            cfg.method == method
            and cfg.noise == noise
            and all(json.dumps(settings.get(k)) == v for k, v in select.items())
            for cfg, settings in cells
        )
    ]


def missing(sweeps: Path, stem: str, records: list[dict[str, Any]]) -> dict[str, list[list[str]]]:
    """``{sweep file name: rows (method, noise, settings, seeds)}`` for the sweep files whose
    cells land on board ``stem``; an empty list: all filled."""
    out: dict[str, list[list[str]]] = {}
    for name, cells in _board_cells(sweeps, stem).items():
        todo: dict[tuple[str, str, str], list[str]] = {}
        for cfg, settings in cells:
            if _filled(cfg, settings, records) is None:
                shown = " ".join(f"{k}={_shown(v)}" for k, v in sorted(settings.items())) or "–"
                todo.setdefault((cfg.method, cfg.noise, shown), []).append(str(cfg.seed))
        out[name] = [[m, f"`{n}`", s, ", ".join(seeds)] for (m, n, s), seeds in todo.items()]
    return out


@dataclass(frozen=True)
class Spent:
    """What a sweep file has cost so far, from its finished records."""

    done: int
    cells: int
    wall_h: float  # the sum of the records' summary.wall_s
    cpu_h: float  # the sum of summary.cpu_s over the records that have it
    with_cpu: int  # how many do (records made before cpu_s have none)

    def text(self) -> str:
        out = f"{self.done} of {self.cells} cells, {self.wall_h:.2f} h wall-clock"
        if self.with_cpu:
            out += f" ({self.cpu_h:.2f} CPU-h over the {self.with_cpu} that record CPU time)"
        return out


def _seconds(records: list[dict[str, Any]], key: str) -> list[float]:
    values = (r["summary"].get(key) for r in records)
    return [float(v) for v in values if isinstance(v, (int, float))]


def spent(sweeps: Path, stem: str, records: list[dict[str, Any]]) -> dict[str, Spent]:
    """What each sweep file of board ``stem`` has cost so far, traceable to the records."""
    out = {}
    for name, cells in _board_cells(sweeps, stem).items():
        found = [_filled(cfg, settings, records) for cfg, settings in cells]
        done = [r for r in found if r is not None]
        cpu = _seconds(done, "cpu_s")
        wall = sum(_seconds(done, "wall_s")) / 3600
        out[name] = Spent(len(done), len(cells), wall, sum(cpu) / 3600, len(cpu))
    return out


def section(sweeps: Path | None, stem: str, records: list[dict[str, Any]]) -> list[str]:
    """The board's closing "Cells still to run" section (nothing without sweep files)."""
    if sweeps is None or not sweeps.is_dir():
        return []
    found, cost = missing(sweeps, stem, records), spent(sweeps, stem, records)
    if not found:
        return []
    where = f"leaderboards/{sweeps.name}"
    lines = [
        "## Cells still to run",
        "",
        (
            f"What the sweep files of this board (`{where}/`) ask for and no finished record "
            "holds yet, and what each file has cost so far (the sum of its finished runs' "
            "`wall_s`, and of their `cpu_s` where recorded). A sweep skips finished runs, so "
            "the command of each file fills exactly these; then `nlbench migrate-records "
            "results && make leaderboards`."
        ),
        "",
    ]
    for name, rows in found.items():
        head = f"- `nlbench sweep -c {where}/{name}`: {cost[name].text()}"
        if not rows:
            lines += [f"{head}; every cell has a finished record.", ""]
            continue
        table = pipe_table(["method", "noise", "settings", "seeds to run"], rows).rstrip("\n")
        lines += [f"{head}; to run:", "", table, ""]
    return lines
