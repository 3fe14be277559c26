"""Rich output for the CLI: live run progress and summary tables (core code only logs)."""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
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
    """Implements the runner's Progress protocol: epoch k/N, images/s and an ETA.

    On a terminal a rich bar over the whole run; every epoch also prints one plain line (the
    epoch's metrics, images/s, ETA), which is all a log (non-TTY stderr) gets. ``quiet``: none.
    The ETA is the time per epoch so far (evaluation included) times the epochs left.
    """

    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet
        self.live = not quiet and err_console.is_terminal
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            TextColumn("ETA {task.fields[eta]}"),
            console=err_console,
            disable=not self.live,
            transient=False,
        )
        self.task: TaskID | None = None
        self.total = self.first = self.epoch = self.steps = self.done_steps = 0
        self.batch_size = 0
        self.t0 = self.epoch_t0 = self.step_t = time.monotonic()

    def start(self, run: Any, total_epochs: int) -> None:
        if not self.quiet:
            err_console.print(f"run [bold]{run.run_id}[/] → {run.run_dir}")
        hparams = getattr(getattr(run, "prep", None), "hparams", {}) or {}
        self.batch_size = int(hparams.get("batch_size") or 0)
        self.total, self.first = total_epochs, len(getattr(run, "epochs", []) or [])
        self.t0 = time.monotonic()
        self.progress.start()
        self.task = self.progress.add_task(
            self._label(self.first), total=max(1, total_epochs), rate="", eta="-"
        )
        self.progress.update(self.task, completed=self.first)

    def _task(self) -> TaskID:
        if self.task is None:
            raise RuntimeError("RichProgress.start() must come before the epoch and step hooks")
        return self.task

    def _label(self, epoch: int) -> str:
        return f"epoch {min(epoch + 1, self.total)}/{self.total}"

    def epoch_start(self, epoch: int, steps: int) -> None:
        self.epoch, self.steps, self.done_steps = epoch, max(1, steps), 0
        self.epoch_t0 = self.step_t = time.monotonic()
        self.progress.update(self._task(), description=self._label(epoch), completed=epoch)

    def images_per_s(self) -> float | None:
        """Training images per second in this epoch (steps x batch size / their time)."""
        seconds = self.step_t - self.epoch_t0
        if not self.batch_size or not self.done_steps or seconds <= 0:
            return None
        return self.done_steps * self.batch_size / seconds

    def eta_s(self, done_epochs: float) -> float | None:
        """Seconds left: the time per epoch of this session so far times the epochs left."""
        ran = done_epochs - self.first
        if ran <= 0:
            return None
        return (time.monotonic() - self.t0) / ran * (self.total - done_epochs)

    def step(self) -> None:
        self.done_steps += 1
        self.step_t = time.monotonic()
        if not self.live:
            return
        done = self.epoch + self.done_steps / self.steps
        rate = self.images_per_s()
        self.progress.update(
            self._task(),
            completed=done,
            rate="" if rate is None else f"{rate:,.0f} img/s",
            eta=duration(self.eta_s(done)),
        )

    def phase_start(self, name: str, units: int, done: int) -> None:
        """A phase before the first epoch (:mod:`nlbench.training.phases`): one tick per unit."""
        self.progress.reset(self._task(), total=units, completed=done, description=name)
        if not self.quiet:
            self.progress.console.print(f"phase {name}: {units} units before the first epoch")

    def epoch_end(self, epoch: int, metrics: dict[str, Any]) -> None:
        status = (
            f"loss {fmt(metrics.get('train_loss'), 3)}  test {fmt(metrics.get('test_acc'), 3)}"
            f"  noisy_fit {fmt(metrics.get('noisy_fit'), 3)}"
        )
        rate = self.images_per_s()
        speed = "" if rate is None else f"  {rate:,.0f} img/s"
        eta = duration(self.eta_s(epoch + 1))
        self.progress.update(self._task(), completed=epoch + 1, eta=eta)
        if not self.quiet:
            line = f"epoch {epoch + 1:>3}/{self.total}  {status}{speed}  ETA {eta}"
            self.progress.console.print(line, markup=False, highlight=False)

    def stop(self) -> None:
        self.progress.stop()


def duration(seconds: float | None) -> str:
    """``1h02m``, ``3m05s`` or ``-`` when unknown."""
    if seconds is None:
        return "-"
    total = max(0, round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


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
