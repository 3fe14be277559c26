"""TensorBoard scalars for every run, when TensorBoard is installed (``pip install
'nlbench[tensorboard]'``); a no-op otherwise. ``NLBENCH_TENSORBOARD=0`` turns it off.

Event files go to ``<run_dir>/tensorboard`` next to ``epochs.jsonl`` (which is always written by
the runner and stays the record of truth), so ``tensorboard --logdir runs`` shows a whole sweep.
"""

from __future__ import annotations

import logging
import math
import os
from typing import Any

from nlbench.api import hookimpl

log = logging.getLogger(__name__)
# run_id -> SummaryWriter of the runs open in this process: hooks are module functions, so the
# writer a run opened in run_started lives here until run_finished or run_failed closes it
_writers: dict[str, Any] = {}


def writer_class() -> Any:
    """``SummaryWriter`` when TensorBoard can be used here, else None."""
    if os.environ.get("NLBENCH_TENSORBOARD", "1").lower() in {"0", "false", "no", "off"}:
        return None
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is an optional extra
        return None
    return SummaryWriter


def scalars(metrics: dict[str, Any]) -> dict[str, float]:
    """The finite numeric metrics of an epoch (booleans and missing values left out)."""
    return {
        k: float(v)
        for k, v in sorted(metrics.items())
        if isinstance(v, (int, float))
        and not isinstance(v, bool)
        and math.isfinite(v)
        and k != "epoch"
    }


@hookimpl
def run_started(run: Any) -> None:
    cls = writer_class()
    if cls is not None:
        _writers[run.run_id] = cls(log_dir=str(run.run_dir / "tensorboard"))


@hookimpl
def epoch_finished(run: Any, epoch: int, metrics: dict) -> None:
    writer = _writers.get(run.run_id)
    if writer is None:
        return
    for key, value in scalars(metrics).items():
        writer.add_scalar(key, value, epoch)
    writer.flush()


def close(run: Any) -> None:
    """Flush and close the run's writer (its event file stays readable)."""
    writer = _writers.pop(run.run_id, None)
    if writer is not None:
        writer.close()


@hookimpl
def run_finished(run: Any, record: dict) -> None:
    close(run)


@hookimpl
def run_failed(run: Any, error: BaseException) -> None:
    close(run)  # a failed or interrupted run must not leak its writer (open file, thread)
