"""A run's files: the record at each status, the epoch log, checkpoints and resume.

Only rank 0 writes under DDP. Every write is atomic (:mod:`nlbench.core.atomic`), so a run killed
at any instant leaves the last valid record, and a failure that cannot even be recorded (full
disk) keeps that record and lets the original error through.
"""

from __future__ import annotations

import datetime as _dt
import logging
from typing import Any

from nlbench.core import envinfo
from nlbench.core.errors import Interrupted, NlbenchError
from nlbench.core.record import SCHEMA, append_epoch, write_record
from nlbench.core.run_facts import record_facts
from nlbench.engine import checkpoint, rundir
from nlbench.engine.faults import KillSwitch
from nlbench.engine.run_state import RunState
from nlbench.training import distributed
from nlbench.training.distributed import DistInfo
from nlbench.training.method import Method, TrainContext

log = logging.getLogger(__name__)

FRESH = {"epochs": [], "wall_s": 0.0, "cpu_s": 0.0, "images": 0, "train_s": 0.0}  # a new run


def base_record(state: RunState, method: Method, host: Any, world: int) -> dict[str, Any]:
    """The record's fixed part: identity, provenance, noise, data, method info; no epochs."""
    prep = state.prep
    prov = envinfo.provenance(host, state.device)
    prov["env"]["world_size"] = world
    facts = record_facts(prep, state.cfg.overrides, state.device.type)
    return {
        "schema": SCHEMA,
        "run_id": prep.run_id,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        **prov,
        "config": {**prep.identity, "model": prep.hparams["model"], "device": str(state.device)},
        "flags": facts["flags"],
        "reference": prep.method_spec.reference,
        "noise": prep.noise,
        "data": prep.data_info,
        "method_info": {**method.record_info(), "deviations": facts["deviations"]},
        "epochs": [],
        "summary": {},
        "status": "running",
    }


class RunFiles:
    """Reads and writes one run directory's record, epoch log and checkpoint."""

    def __init__(
        self, state: RunState, dist: DistInfo = distributed.SINGLE, faults: KillSwitch | None = None
    ) -> None:
        self.state, self.dist = state, dist
        self.faults = faults or KillSwitch("")

    @property
    def main(self) -> bool:
        return self.dist.main

    def write(self, record: dict[str, Any]) -> None:
        if self.main:  # only rank 0 writes under DDP
            write_record(self.state.run_dir, record)

    def start_or_resume(self, method: Method, ctx: TrainContext, resume: bool) -> dict[str, Any]:
        """The totals to continue from: the checkpoint's with ``resume``, else a fresh start
        (this runner's own files removed by name; user files stay)."""
        if resume:
            loaded = checkpoint.load(self.state.run_dir, self.state, method, ctx)
            if loaded is not None:
                return loaded
        if self.main:
            rundir.clear_own_files(self.state.run_dir)
        distributed.barrier(self.dist)
        return {**FRESH, "epochs": []}

    def end_epoch(self, metrics: dict[str, Any], method: Method, ctx: TrainContext, totals):
        """Log the epoch line, then checkpoint (a kill between them is what resume handles)."""
        if not self.main:
            return
        append_epoch(self.state.run_dir, metrics)
        self.faults.after_log(int(metrics["epoch"]))
        checkpoint.save(self.state.run_dir, self.state, method, ctx, totals)

    def checkpoint(self, method: Method, ctx: TrainContext, totals: dict[str, Any]) -> None:
        """A checkpoint without an epoch line: after each unit of a phase
        (nlbench.training.phases)."""
        if self.main:
            checkpoint.save(self.state.run_dir, self.state, method, ctx, totals)

    def done(self, record: dict[str, Any]) -> None:
        """The finished record; the checkpoint goes (records stay small)."""
        self.write(record)
        if self.main:
            checkpoint.remove(self.state.run_dir)

    def failed(self, record: dict[str, Any], exc: BaseException) -> None:
        """Record the failure; when even that cannot be written, keep the last valid record."""
        failed = {**record, "epochs": self.state.epochs, "status": "failed"}
        try:
            self.write({**failed, "error": f"{type(exc).__name__}: {exc}"})
        except NlbenchError as write_exc:
            log.info("could not record the failure: %s", write_exc)

    def interrupted(self, record: dict[str, Any]) -> Interrupted:
        """Record an interrupted run; before its first epoch there is nothing to keep."""
        epochs = self.state.epochs
        phase_work = (self.state.run_dir / checkpoint.NAME).exists()  # units of a phase kept
        if not epochs and not phase_work:
            if self.main:
                rundir.clear_own_files(self.state.run_dir)
            return Interrupted("interrupted before the first epoch finished; nothing was recorded")
        self.write({**record, "epochs": epochs, "status": "interrupted"})
        where = f"epoch {len(epochs)}" if epochs else "a unit of its pre-training phase"
        return Interrupted(f"interrupted after {where}; resume with the same command plus --resume")
