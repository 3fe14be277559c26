"""``nlbench sweep``: a grid of runs keyed by run_id; finished runs are skipped."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from nlbench.core.config import parse_set, parse_value
from nlbench.core.costs import build_model, estimate
from nlbench.core.errors import UsageError
from nlbench.engine.preflight import run_identity, static_or_none
from nlbench.host.plugins import get_host
from nlbench.host.static_specs import Undecidable
from nlbench.sweep.grid import parse_grid
from nlbench.sweep.plan import (
    grid_from_mapping,
    load_toml,
    make_executor,
    pending,
    plan,
    plan_cells,
    plan_keys,
)

if TYPE_CHECKING:  # annotations only: the CLI starts without these modules
    from rich.console import Console
    from typing_extensions import Self

    from nlbench.core.costs import CostModel
    from nlbench.sweep.plan import Grid, Job
    from nlbench.sweep.progress import SweepProgress, SweepWatch

F = TypeVar("F", bound=Callable[..., Any])

# CLI option -> grid axis; each is repeatable and takes comma-separated lists
LIST_OPTIONS = {
    "methods": "method",
    "datasets": "dataset",
    "noises": "noise",
    "seeds": "seed",
    "profiles": "profile",
    "models": "model",
    "train_subsets": "train_subset",
    "epochs": "epochs",
    "noise_seeds": "noise_seed",
}
INT_AXES = {"seed", "train_subset", "epochs", "noise_seed"}


def _split(values: tuple[str, ...], axis: str) -> list[Any]:
    items = [v.strip() for text in values for v in text.split(",") if v.strip()]
    if axis not in INT_AXES:
        return items
    try:
        return [int(v) for v in items]
    except ValueError:
        raise UsageError(f"--{axis.replace('_', '-')}: expected integers, got {values}") from None


def grid_data(
    config: str | None,
    sets: tuple[str, ...],
    diagnostics: bool,
    common: dict[str, Any],
    lists: dict[str, tuple[str, ...]],
    grids: tuple[str, ...] = (),
) -> dict[str, Any]:
    """Merge the TOML file (if any) with the CLI: options given on the CLI win."""
    data: dict[str, Any] = load_toml(config) if config else {}
    for opt, axis in LIST_OPTIONS.items():
        if lists.get(opt):
            data.pop(f"{axis}s", None)
            tables = axis == "method" and isinstance(data.get("method"), dict)
            data[f"{axis}s" if tables else axis] = _split(lists[opt], axis)  # keep [method.X]
    data["set"] = {**data.get("set", {}), **parse_set(sets)}
    data["grid"] = {**data.get("grid", {}), **parse_grid(grids)}
    if diagnostics:
        data["set"]["diagnostics"] = True
    data.update({k: v for k, v in common.items() if v is not None})
    return data


# what the grid is: its file, its axes and its hparams
GRID_OPTIONS = [
    click.option(
        "--config",
        "-c",
        type=click.Path(dir_okay=False),
        default=None,
        help="TOML sweep file (CLI options override its keys).",
    ),
    click.option("--method", "-m", "methods", multiple=True, help="Methods (a,b or repeat)."),
    click.option("--dataset", "-d", "datasets", multiple=True, help="Datasets."),
    click.option("--noise", "-n", "noises", multiple=True, help="Noise specs, e.g. 0.2,0.6."),
    click.option("--seed", "seeds", multiple=True, help="Training seeds, e.g. 0,1,2."),
    click.option("--profile", "profiles", multiple=True, help="Profiles."),
    click.option("--model", "models", multiple=True, help="Models."),
    click.option("--train-subset", "train_subsets", multiple=True, help="Train subsets."),
    click.option("--epochs", "epochs", multiple=True, help="Epoch budgets."),
    click.option("--noise-seed", "noise_seeds", multiple=True, help="Noise seeds."),
    click.option(
        "--set",
        "sets",
        multiple=True,
        metavar="KEY=VALUE",
        help="Fixed hparam override for every run whose method has the key (repeatable).",
    ),
    click.option(
        "--grid",
        "grids",
        multiple=True,
        metavar="KEY=V1,V2",
        help="Run every value of an hparam (repeatable: all combinations); "
        "KEY=search_space takes the method's search_space.",
    ),
]
# where and how it runs, and the dry run's cost model
RUN_OPTIONS = [
    click.option("--diagnostics", is_flag=True, help="Gradient diagnostics (costs a pass)."),
    click.option("--out", default=None, help="Results directory [runs]."),
    click.option("--device", default=None, help="auto, cpu or cuda."),
    click.option("--data-root", default=None, help="Data directory."),
    click.option("--executor", "-x", default=None, help="Executor name [local]."),
    click.option("--jobs", "-j", type=int, default=None, help="local: runs at once."),
    click.option(
        "--executor-option",
        "-E",
        "executor_opts",
        multiple=True,
        metavar="KEY=VALUE",
        help="Executor option, e.g. partition=gpu, time=120.",
    ),
    click.option(
        "--dry-run",
        is_flag=True,
        help="List the runs, their state and the estimated GPU-hours only.",
    ),
    click.option(
        "--erm-epoch-s",
        type=float,
        default=None,
        help="Dry run: seconds of one ERM epoch on the target GPU [per-dataset "
        "default, nlbench.core.costs].",
    ),
    click.option(
        "--ratios",
        "ratios",
        type=click.Path(dir_okay=False),
        default=None,
        help="Dry run: method cost ratios from 'nlbench bench --json' or a "
        "gpu-check report [built-in table].",
    ),
]


def _options(fn: F) -> F:
    for option in reversed([*GRID_OPTIONS, *RUN_OPTIONS]):
        fn = option(fn)
    return fn


def _executor_options(data: dict[str, Any], opts: tuple[str, ...], jobs: int | None) -> dict:
    table = dict(data.get("executor", {}))
    name = table.pop("name", "local")
    if not isinstance(name, str):
        raise UsageError(f'sweep [executor]: name must be a string such as "local", got {name!r}')
    for item in opts:
        key, _, value = item.partition("=")
        table[key.strip()] = parse_value(value)
    if jobs is not None:
        table["jobs"] = jobs
    return {"name": name, "options": table}


def register(cli: click.Group) -> None:
    @cli.command("sweep")
    @_options
    @click.option("--plan", "show_plan", is_flag=True, help="Dry run: also list every run.")
    @click.option("--quiet", "-q", is_flag=True, help="No progress display.")
    def sweep_cmd(
        config: str | None,
        sets: tuple[str, ...],
        grids: tuple[str, ...],
        diagnostics: bool,
        executor: str | None,
        jobs: int | None,
        executor_opts: tuple[str, ...],
        dry_run: bool,
        erm_epoch_s: float | None,
        ratios: str | None,
        show_plan: bool,
        quiet: bool,
        **kw: Any,
    ) -> None:
        """Run a grid of methods × datasets × noise × seeds; skip finished runs."""
        # lazy: keeps rich out of this module's import (CLI start-up)
        from nlbench.core.console import console

        common = {k: kw.pop(k) for k in ("out", "device", "data_root")}
        data = grid_data(config, sets, diagnostics, common, kw, grids)
        ex = _executor_options(data, executor_opts, jobs)
        grid = grid_from_mapping(data, config or "sweep")
        cost = build_model(ratios, erm_epoch_s, _gpus(ex["options"]))
        # the grid is keyed from the static cache first: a bad key answers before torch loads
        host, jobs_ = _plan(grid, static=True)
        if dry_run:
            _print_summary(console, jobs_, grid, show_plan)
            _print_estimate(console, jobs_, host, cost)
            return
        _run(grid, ex, executor, cost, quiet)


def _plan(grid: Grid, static: bool) -> tuple[Any, list[Job]]:
    """(host, jobs): planned on the static host when it can decide, else on the plugins."""
    host = static_or_none() if static else None
    if host is not None:
        try:
            return host, plan(grid, host)
        except Undecidable:
            pass

    host = get_host()
    return host, plan(grid, host)


def _run(
    grid: Grid, ex: dict[str, Any], executor: str | None, cost: CostModel, quiet: bool
) -> None:
    """Run what is left, with progress; exit 1 when a run failed."""
    # lazy: keeps rich out of this module's import (CLI start-up)
    from nlbench.core.console import console

    host, jobs_ = _plan(grid, static=False)
    runner = make_executor(host, executor or ex["name"], ex["options"])
    todo = pending(jobs_)
    with _progress(todo, host, cost, quiet):
        outcomes = runner.run(todo) if todo else []
    _print_outcomes(console, jobs_, outcomes)
    if any(o["status"] == "failed" for o in outcomes):
        click.get_current_context().exit(1)


def _progress(
    todo: list[Job], host: Any, cost: CostModel, quiet: bool
) -> SweepProgress | _LiveSweep:
    """Runs ended and left, and an ETA from the cost model (nlbench.sweep.progress)."""
    # lazy: keeps rich out of this module's import (CLI start-up)
    from nlbench.core.console import err_console

    # lazy: keeps rich out of this module's import (CLI start-up)
    from nlbench.sweep.progress import SweepProgress, SweepWatch, job_weight

    runs: list[tuple[Path, int, float]] = []
    model_s: float | None = 0.0
    for j in todo:
        hp = run_identity(j.cfg, host).hparams
        epochs = int(hp["epochs"])
        weight = job_weight(cost, j.cfg.method, j.cfg.dataset, str(hp["model"]), epochs)
        seconds = cost.run_s(j.cfg.method, j.cfg.dataset, str(hp["model"]), epochs)
        model_s = None if model_s is None or seconds is None else model_s + seconds
        runs.append((Path(j.cfg.out) / j.run_id, epochs, weight))
    watch = SweepWatch(runs, model_s)
    if quiet:
        return SweepProgress(watch, None, live=False)
    if not err_console.is_terminal:
        show = lambda text: err_console.print(text, markup=False, highlight=False)  # noqa: E731
        return SweepProgress(watch, show, live=False)
    return _LiveSweep(watch)


class _LiveSweep:
    """SweepProgress on a terminal: a rich status line updated every poll."""

    def __init__(self, watch: SweepWatch) -> None:
        # lazy: keeps rich out of this module's import (CLI start-up)
        from nlbench.core.console import err_console

        # lazy: keeps rich out of this module's import (CLI start-up)
        from nlbench.sweep.progress import SweepProgress

        self.status = err_console.status("sweep")
        self.inner = SweepProgress(watch, self.status.update, live=True)

    def __enter__(self) -> Self:
        self.status.start()
        self.inner.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.inner.__exit__(*exc)
        self.status.stop()


def _print_summary(console: Console, jobs: list[Job], grid: Grid, show_plan: bool) -> None:
    """How many runs in which state; with ``--plan`` every run, one plain line each: its full
    run_id (a log can be searched for it), state, and the grid values that make it that run
    (method, dataset, noise, seed, any other axis the grid varies, every ``--grid`` hparam)."""
    states = Counter(j.state for j in jobs)
    where = grid.common.get("out", "runs")
    text = ", ".join(f"{n} {state}" for state, n in sorted(states.items()))
    console.print(f"sweep plan: {len(jobs)} runs in {where} ({text or 'none'})", soft_wrap=True)
    if not show_plan:
        console.print("(--plan lists every run with its run_id)", style="dim")
        return

    keys = plan_keys(grid)
    cells = [plan_cells(j.cfg, keys) for j in jobs]
    widths = {k: max((len(c.get(k, "")) for c in cells), default=0) for k in keys}
    width = max((len(j.run_id) for j in jobs), default=0)
    for j, row in zip(jobs, cells):
        values = " ".join(f"{row.get(k, ''):<{widths[k]}}" for k in keys if widths[k]).rstrip()
        line = f"{j.run_id:<{width}}  {j.state:<8} {values}"
        console.print(line, markup=False, highlight=False, soft_wrap=True)


def _gpus(options: dict[str, Any]) -> int:
    gpus = options.get("gpus")
    return gpus if isinstance(gpus, int) and not isinstance(gpus, bool) and gpus > 0 else 1


def _print_estimate(console: Console, jobs: list[Job], host: Any, cost: CostModel) -> None:
    """Runs and estimated GPU-hours per method, under the stated cost model."""
    # lazy: keeps rich out of this module's import (CLI start-up)
    from rich.table import Table

    rows = []
    for j in jobs:
        hp = run_identity(j.cfg, host).hparams
        done = j.state == "done"
        rows.append((j.cfg.method, j.cfg.dataset, hp["model"], int(hp["epochs"]), done))
    columns = ("method", "runs", "finished", "to run", "ratio", "GPU-h to run", "longest run h")
    table = Table(title="estimated cost per method", title_justify="left")
    for name in columns:
        table.add_column(name, no_wrap=name == "method")
    total: float | None = 0.0
    for e in estimate(rows, cost):
        hours = "?" if e.gpu_h is None else f"{e.gpu_h:.1f}"
        total = None if total is None or e.gpu_h is None else total + e.gpu_h
        ratio, longest = f"{cost.ratio(e.method):.2f}", f"{e.longest_h:.1f}"
        table.add_row(
            e.method, str(e.runs), str(e.done), str(e.runs - e.done), ratio, hours, longest
        )
    console.print(table)
    to_run = sum(j.state != "done" for j in jobs)
    unknown = "? (no ERM epoch time for some dataset/model: pass --erm-epoch-s)"
    shown = unknown if total is None else f"{total:.1f}"
    console.print(f"{len(jobs)} runs, {to_run} to run: about {shown} GPU-hours", soft_wrap=True)
    console.print(cost.describe(), soft_wrap=True)


def _print_outcomes(console: Console, jobs: list[Job], outcomes: list[dict[str, Any]]) -> None:
    # lazy: keeps rich out of this module's import (CLI start-up)
    from rich.table import Table

    skipped = sum(j.state == "done" for j in jobs)
    table = Table("run_id", "status", "last_acc", "error", title="sweep")
    for o in outcomes:
        acc = "" if o["last_acc"] is None else f"{o['last_acc']:.4f}"
        table.add_row(o["run_id"], o["status"], acc, o.get("error") or "")
    console.print(table)
    console.print(f"{len(jobs)} runs: {skipped} already finished, {len(outcomes)} run now")
