"""Rich output for the CLI: live run progress and summary tables (core code only logs)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

console = Console()
err_console = Console(stderr=True)


def fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


class RichProgress:
    """Implements the runner's Progress protocol with a rich progress bar per run."""

    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[status]}"),
            TimeElapsedColumn(),
            console=err_console,
            disable=quiet,
            transient=False,
        )
        self.task: TaskID | None = None

    def start(self, run: Any, total_epochs: int) -> None:
        if not self.quiet:
            err_console.print(f"run [bold]{run.run_id}[/] → {run.run_dir}")
        self.progress.start()
        self.task = self.progress.add_task("epoch 1", total=1, status="")

    def _task(self) -> TaskID:
        if self.task is None:
            raise RuntimeError("RichProgress.start() must come before the epoch and step hooks")
        return self.task

    def epoch_start(self, epoch: int, steps: int) -> None:
        self.progress.reset(self._task(), total=steps, description=f"epoch {epoch + 1}")

    def step(self) -> None:
        self.progress.advance(self._task())

    def phase_start(self, name: str, units: int, done: int) -> None:
        """A phase before the first epoch (:mod:`nlbench.phases`): one tick per unit."""
        self.progress.reset(self._task(), total=units, completed=done, description=name)
        if not self.quiet:
            self.progress.console.print(f"phase {name}: {units} units before the first epoch")

    def epoch_end(self, epoch: int, metrics: dict[str, Any]) -> None:
        status = (
            f"loss {fmt(metrics.get('train_loss'), 3)}  test {fmt(metrics.get('test_acc'), 3)}"
            f"  noisy_fit {fmt(metrics.get('noisy_fit'), 3)}"
        )
        self.progress.update(self._task(), status=status)
        if not self.quiet:
            self.progress.console.print(f"epoch {epoch + 1:>3}  {status}")

    def stop(self) -> None:
        self.progress.stop()


def human_epoch(epoch: int | None) -> int | None:
    """Records count epochs from 0 (``epoch``, ``best_epoch``); people read them from 1."""
    return None if epoch is None else int(epoch) + 1


def summary_table(record: dict[str, Any]) -> Table:
    """The final table of a run: what a researcher looks at first."""
    s, cfg, noise = record.get("summary", {}), record["config"], record["noise"]
    table = Table(title=f"{cfg['method']} on {cfg['dataset']} ({cfg['noise']})", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    rows = [
        ("run_id", record["run_id"]),
        ("model", cfg.get("model")),
        ("realized noise", fmt(noise.get("realized_rate"))),
        ("last acc", fmt(s.get("last_acc"))),
        ("best acc (oracle)", fmt(s.get("best_acc"))),
        ("best epoch", fmt(human_epoch(s.get("best_epoch")))),
        ("last-10 mean", fmt(s.get("last10_acc"))),
        (
            "noisy_fit (last)",
            fmt(record["epochs"][-1].get("noisy_fit") if record["epochs"] else None),
        ),
        ("wall s", fmt(s.get("wall_s"), 1)),
        ("CPU s", fmt(s.get("cpu_s"), 1)),
        ("images/s", fmt(s.get("images_per_s"), 0)),
        ("status", record.get("status")),
    ]
    for name, value in rows:
        table.add_row(name, str(value))
    return table
