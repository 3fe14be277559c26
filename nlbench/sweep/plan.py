"""Sweeps: expand a grid into runs keyed by run_id, skip finished ones, hand the rest out.

A grid is the product methods × datasets × noise specs × seeds × profiles × models ×
train subsets × epochs, with fixed ``--set`` pairs. Each run is keyed by the same run_id the
runner computes (:func:`nlbench.engine.preflight.run_identity`, no data loaded), so the directory
state
decides what is left: ``done`` records are skipped, interrupted or failed runs resume from their
checkpoint, missing runs start. Killing a sweep and starting it again finishes only what is
missing (DomainBed's sweep ``Job`` states).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

import inspect

from nlbench.core.config import RunConfig
from nlbench.core.errors import NlbenchError, UsageError
from nlbench.core.record import read_record
from nlbench.engine.preflight import run_identity
from nlbench.host.plugins import Host
from nlbench.sweep.grid import (
    a_type,
    check_grid_size,
    check_sweep_mapping,
    expand_hparams,
    grid_table,
    method_tables,
)

log = logging.getLogger(__name__)

# grid axis (RunConfig field) -> value type; every axis takes one value or a list of them
AXES: dict[str, type] = {
    "method": str,
    "dataset": str,
    "noise": str,
    "seed": int,
    "profile": str,
    "model": str,
    "train_subset": int,
    "epochs": int,
    "noise_seed": int,
}
DEFAULTS: dict[str, list[Any]] = {
    "method": ["erm"],
    "dataset": ["digits"],
    "noise": ["none"],
    "seed": [0],
    "profile": ["quick"],
    "model": [None],
    "train_subset": [None],
    "epochs": [None],
    "noise_seed": [0],
}
# RunConfig fields shared by every run of a sweep (not part of the grid)
COMMON = ("out", "device", "data_root", "deterministic", "compile")


@dataclass(frozen=True)
class Grid:
    """A sweep grid: a list of values per axis, hparam settings and common settings.

    ``overrides`` (``[set]``) and ``grid`` (``[grid]``, every combination) apply to each method
    that accepts the key; ``per_method`` (``[method.NAME]`` with ``set``/``grid`` tables)
    targets one method, which must accept its keys. A grid value ``"search_space"`` takes the
    method's :attr:`MethodSpec.search_space` list for that key.
    """

    axes: Mapping[str, list[Any]]
    overrides: Mapping[str, Any] = field(default_factory=dict)
    common: Mapping[str, Any] = field(default_factory=dict)
    grid: Mapping[str, Any] = field(default_factory=dict)
    per_method: Mapping[str, Mapping[str, Mapping[str, Any]]] = field(default_factory=dict)

    def configs(self, host: Host | None = None) -> list[RunConfig]:
        """Every RunConfig of the grid, in axis order (method outermost, seed innermost).

        Without ``host`` the fixed overrides go to every run unchecked (no hparam grid).
        """
        names = list(AXES)
        values = [self.axes.get(n, DEFAULTS[n]) for n in names]
        check_grid_size(self, values)  # before any run is built: a huge grid answers at once
        combos = itertools.product(*values)
        base = [RunConfig(**dict(zip(names, combo)), **self.common) for combo in combos]
        if host is None:
            return [dataclasses.replace(c, overrides=dict(self.overrides)) for c in base]
        return expand_hparams(self, base, host)


@dataclass(frozen=True)
class Job:
    """One run of a sweep: its config (``resume`` set when a partial run exists) and state."""

    cfg: RunConfig
    run_id: str
    state: str  # "done", "running" (locked elsewhere): skipped; "partial" (resumed), "new"


# checked when the grid is planned, so a bad value is a usage error, not a failed run
POSITIVE_AXES = frozenset({"train_subset", "epochs"})
NON_NEGATIVE_AXES = frozenset({"seed", "noise_seed"})


def _as_list(key: str, value: Any) -> list[Any]:
    values = list(value) if isinstance(value, (list, tuple)) else [value]
    kind = AXES[key]
    for v in values:
        if v is not None and (not isinstance(v, kind) or isinstance(v, bool)):
            raise UsageError(f"sweep '{key}': {v!r} is not {a_type(kind)}")
        if key in POSITIVE_AXES and isinstance(v, int) and v < 1:  # None: the default
            raise UsageError(f"sweep '{key}': {v!r} must be a positive integer")
        if key in NON_NEGATIVE_AXES and (not isinstance(v, int) or v < 0):  # None has no default
            raise UsageError(f"sweep '{key}': {v!r} must be a non-negative integer")
    if not values:
        raise UsageError(f"sweep '{key}': empty list; give at least one value")
    return values


def grid_from_mapping(data: Mapping[str, Any], where: str = "sweep") -> Grid:
    """Build a Grid from a mapping (a parsed TOML file or CLI options merged into one).

    Keys: the axes (``method``, ``dataset``, ``noise``, ``seed``, ``profile``, ``model``,
    ``train_subset``, ``epochs``, ``noise_seed``; plural spellings accepted), a ``set`` table
    of fixed hparam overrides, a ``grid`` table of hparam value lists, ``method.NAME`` tables
    (per-method ``set``/``grid``), and the common settings ``out``, ``device``, ``data_root``,
    ``deterministic``, ``compile``. The ``executor`` table is read by the command.
    CONTRIBUTING.md ("Sweep files") documents the format.
    """
    check_sweep_mapping(data, where)
    axes: dict[str, list[Any]] = {}
    common: dict[str, Any] = {}
    for raw, value in data.items():
        key = raw[:-1] if raw.endswith("s") and raw[:-1] in AXES else raw
        if key == "method" and isinstance(value, Mapping):
            continue  # [method.NAME] tables
        if key in AXES:
            axes[key] = _as_list(key, value)
        elif key in COMMON:
            common[key] = value
        elif key not in {"set", "grid", "executor"}:
            accepted = ", ".join([*AXES, *COMMON, "set", "grid", "method.NAME", "executor"])
            raise UsageError(f"{where}: unknown key '{raw}'. Accepted: {accepted}.")
    per_method = method_tables(data.get("method"), where)
    if per_method and "method" not in axes:
        axes["method"] = list(per_method)
    grid = grid_table(data.get("grid", {}), "grid", where)
    return Grid(axes, dict(data.get("set", {})), common, grid, per_method)


def load_toml(path: str | Path) -> dict[str, Any]:
    """Read a sweep file (usage error naming the file when it is missing or malformed)."""
    try:
        with open(path, "rb") as fh:
            data: dict[str, Any] = tomllib.load(fh)
        check_sweep_mapping(data, f"sweep file {path}")
        return data
    except OSError as exc:
        raise UsageError(f"sweep file {path}: cannot read it ({exc.strerror})") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"sweep file {path}: not valid TOML ({exc})") from None
    except UnicodeDecodeError as exc:
        raise UsageError(f"sweep file {path}: not UTF-8 text (byte {exc.start})") from None


def run_state(run_dir: Path) -> str:
    """``done`` when run.json says so, ``running`` when another process holds the run's lock
    (it is left to that process), ``partial`` when the run started, else ``new``."""
    # lazy: keeps filelock out of this module's import (CLI start-up)
    from nlbench.engine.rundir import is_locked

    if is_locked(run_dir):
        return "running"
    path = run_dir / "run.json"
    if path.exists():
        try:
            if read_record(path).get("status") == "done":
                return "done"
        except NlbenchError:
            pass
        return "partial"
    return "partial" if (run_dir / "checkpoint.pt").exists() else "new"


def plan(grid: Grid, host: Any) -> list[Job]:
    """Key every config of the grid by run_id and read its state from the out directory.

    Duplicate configs (the same run_id twice) collapse to one job. A run that exists but is
    unfinished gets ``resume=True`` so its checkpoint is continued rather than discarded.
    Records written under an older run_id scheme are found after ``nlbench migrate-records``.
    """
    jobs: dict[str, Job] = {}
    for cfg in grid.configs(host):
        run_id = run_identity(cfg, host).run_id
        if run_id in jobs:
            continue
        state = run_state(Path(cfg.out) / run_id)
        cfg = dataclasses.replace(cfg, run_id=run_id, resume=state == "partial")
        jobs[run_id] = Job(cfg, run_id, state)
    return list(jobs.values())


# the axes every ``--plan`` line shows; the others only when the grid varies them
PLAN_AXES = ("method", "dataset", "noise", "seed")


def plan_keys(grid: Grid) -> list[str]:
    """What tells the runs of ``grid`` apart: :data:`PLAN_AXES`, every other axis with several
    values, then every ``--grid`` hparam (``[grid]`` and ``[method.NAME]`` grid keys)."""
    keys = [a for a in AXES if a in PLAN_AXES or len(grid.axes.get(a, DEFAULTS[a])) > 1]
    tables = [grid.grid, *(t.get("grid", {}) for t in grid.per_method.values())]
    for key in (k for table in tables for k in table):
        if key not in keys:
            keys.append(key)
    return keys


def plan_cells(cfg: RunConfig, keys: list[str]) -> dict[str, str]:
    """``{key: "key=value"}`` of one run for :func:`plan_keys` (an hparam its method does not
    take is left out; an hparam wins over the axis of its name), values as ``--set`` takes
    them: strings bare, the rest JSON (``null``, ``true``, ``[0.5,0.75]``)."""
    out = {}
    for key in keys:
        if key in cfg.overrides:
            value = cfg.overrides[key]
        elif key in AXES:
            value = getattr(cfg, key)
        else:
            continue
        text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
        out[key] = f"{key}={text}"
    return out


def pending(jobs: Iterable[Job]) -> list[Job]:
    return [j for j in jobs if j.state not in ("done", "running")]


def threads_per_job(jobs: int, cpus: int | None = None) -> int:
    """Torch threads for each of ``jobs`` concurrent runs: the CPUs shared out, at least 1.

    ``OMP_NUM_THREADS``, when set, caps it: on a machine shared with other work, more threads
    than free cores make every run many times slower.
    """
    if cpus is None:
        affinity = getattr(os, "sched_getaffinity", None)
        cpus = len(affinity(0)) if affinity else (os.cpu_count() or 1)
    share = max(1, cpus // max(1, jobs))
    cap = os.environ.get("OMP_NUM_THREADS", "").strip()
    return min(share, int(cap)) if cap.isdigit() and int(cap) > 0 else share


def run_job(cfg: RunConfig, threads: int | None = None) -> dict[str, Any]:
    """Run one sweep job (in whatever process an executor chose); never raise.

    Returns ``{"run_id", "status", "last_acc", "error"}`` so a failed run is reported and the
    rest of the sweep goes on; the runner has already written a ``failed`` record.
    """
    import torch  # lazy: keeps torch out of this module's import (CLI start-up)

    # lazy: keeps filelock out of this module's import (CLI start-up)
    from nlbench.engine.rundir import RunLocked

    # lazy: keeps filelock, numpy, torch out of this module's import (CLI start-up)
    from nlbench.engine.runner import Runner

    if threads:
        torch.set_num_threads(threads)
    try:
        record = Runner(cfg).run()
    except RunLocked as exc:  # another process took it since the plan: leave it to that one
        log.info("run %s is running elsewhere: %s", cfg.run_id, exc)
        return {"run_id": cfg.run_id, "status": "running", "last_acc": None, "error": str(exc)}
    except Exception as exc:  # noqa: BLE001 -- any error in one run must not end the sweep
        log.warning("run %s failed: %s", cfg.run_id, exc)
        return {
            "run_id": cfg.run_id,
            "status": "failed",
            "last_acc": None,
            "error": f"{type(exc).__name__}: {exc}",
        }
    return {
        "run_id": record["run_id"],
        "status": record["status"],
        "last_acc": record["summary"].get("last_acc"),
        "error": None,
    }


def make_executor(host: Host, name: str, options: Mapping[str, Any]) -> Any:
    """Build a registered executor; a wrong option is a usage error naming the accepted ones."""
    spec = host.get("executors", name)
    params = inspect.signature(spec.factory).parameters
    unknown = sorted(set(options) - set(params))
    if unknown:
        raise UsageError(
            f"executor '{name}': unknown option(s) {', '.join(unknown)}. "
            f"Accepted: {', '.join(p for p in params if p != 'self')}."
        )
    return spec.factory(**options)


def sweep(grid: Grid, executor: Any, host: Host) -> tuple[list[Job], list[dict[str, Any]]]:
    """Plan the grid, run what is not finished through ``executor``; (jobs, outcomes)."""
    jobs = plan(grid, host)
    todo = pending(jobs)
    log.info("sweep: %d runs, %d finished, %d to run", len(jobs), len(jobs) - len(todo), len(todo))
    return jobs, executor.run(todo) if todo else []
