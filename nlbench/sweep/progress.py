"""A sweep's progress: runs done and left, and an ETA weighted by the dry run's cost model.

Executors run jobs however they like (this process, worker processes, Slurm), so progress is
read where every one of them writes: each run's directory. A background thread looks at the
pending runs every few seconds (``epochs.jsonl`` lines for a run under way, ``run.json``'s
status for an ended one). Runs differ in cost (DivideMix ~7x ERM), so the share of the sweep
done is weighted by each run's estimated cost (:meth:`nlbench.core.costs.CostModel.run_s`, or
epochs x the method's cost ratio where no ERM epoch time is known) and the ETA is the elapsed
time scaled by the weighted share left.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nlbench.core.console import duration

if TYPE_CHECKING:
    from typing_extensions import Self

POLL_S = 3.0


def job_weight(cost: Any, method: str, dataset: str, model: str, epochs: int) -> float:
    """A run's estimated cost: seconds under the cost model, else epochs x the method ratio."""
    seconds = cost.run_s(method, dataset, model, epochs)
    return float(seconds) if seconds is not None else float(epochs) * cost.ratio(method)


def run_fraction(run_dir: Path, epochs: int) -> tuple[float, str | None]:
    """(share of the run done, its final status or None while it runs) from its files."""
    record = run_dir / "run.json"
    try:
        status = json.loads(record.read_text(encoding="utf-8")).get("status")
    except (OSError, ValueError, AttributeError):
        status = None
    if status in ("done", "failed"):
        return 1.0, status
    try:
        with open(run_dir / "epochs.jsonl", "rb") as fh:
            lines = sum(1 for line in fh if line.strip())
    except OSError:
        lines = 0
    return min(1.0, lines / max(1, epochs)), None


class SweepWatch:
    """Polls the pending runs' directories and reports ``(ended, failed, share, eta_s)``."""

    def __init__(self, runs: list[tuple[Path, int, float]], model_s: float | None) -> None:
        self.runs = runs  # (run directory, epochs, weight) of every pending run
        self.total = sum(w for _, _, w in runs) or 1.0
        self.model_s = model_s  # the cost model's estimate of the whole, when it has one
        self.start = time.monotonic()

    def poll(self) -> tuple[int, int, float, float | None]:
        ended = failed = 0
        done = 0.0
        for run_dir, epochs, weight in self.runs:
            share, status = run_fraction(run_dir, epochs)
            done += share * weight
            ended += status is not None
            failed += status == "failed"
        share = done / self.total
        elapsed = time.monotonic() - self.start
        eta = elapsed * (1 - share) / share if share > 0 else self.model_s
        return ended, failed, share, eta


class SweepProgress:
    """Shows a :class:`SweepWatch` while a sweep runs: a rich bar on a terminal, one line per
    ended run otherwise (logs), nothing when quiet."""

    def __init__(self, watch: SweepWatch, show: Callable[[str], None] | None, live: bool) -> None:
        self.watch, self.show, self.live = watch, show, live
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._last_ended = 0

    def line(self) -> tuple[int, str]:
        """(runs ended, the progress line)."""
        ended, failed, share, eta = self.watch.poll()
        left = len(self.watch.runs) - ended
        bad = f", {failed} failed" if failed else ""
        return ended, (
            f"sweep: {ended}/{len(self.watch.runs)} runs ended{bad}, {left} left, "
            f"{share:.0%} of the estimated work, ETA {duration(eta)}"
        )

    def _loop(self) -> None:
        while not self._stop.wait(POLL_S):
            self.tick()

    def tick(self) -> None:
        """Show the line (on a terminal every poll, in a log only when a run has ended)."""
        if self.show is None:
            return
        ended, text = self.line()
        if self.live or ended != self._last_ended:
            self._last_ended = ended
            self.show(text)

    def __enter__(self) -> Self:
        if self.show is not None and self.watch.runs:
            self.show(self.line()[1])
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=POLL_S * 2)
