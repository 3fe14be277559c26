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
from nlbench.core.record import SCHEMA, append_epoch, jsonable, write_record
from nlbench.core.run_facts import record_facts
from nlbench.engine import checkpoint, rundir
from nlbench.engine.faults import KillSwitch
from nlbench.engine.run_state import RunState
from nlbench.training import distributed
from nlbench.training.distributed import DistInfo
from nlbench.training.method import Method, TrainContext, checked_facts

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

    def facts(self) -> dict[str, Any]:
        """The method's facts now (``record["method_facts"]``), each declared by its spec."""
        method, spec = self.state.method, self.state.prep.method_spec
        assert method is not None
        facts: dict[str, Any] = jsonable(checked_facts(method, spec.name, spec.facts))
        return facts

    def _facts_if_any(self) -> dict[str, Any]:
        """:meth:`facts` for a failed or interrupted record: none when they cannot be had."""
        try:
            return {"method_facts": self.facts()}
        except Exception as exc:  # noqa: BLE001 - the run's own error is the one to report
            log.info("no method facts for this record: %s", exc)
            return {}

    def start_or_resume(self, method: Method, ctx: TrainContext, resume: bool) -> dict[str, Any]:
        """The totals to continue from: the checkpoint's with ``resume``, else a fresh start
        (this runner's own files removed by name; user files stay)."""
        if resume:
            loaded = checkpoint.load(self.state.run_dir, self.state, method, ctx)
            if loaded is not None:
                self._check_facts(loaded.pop("method_facts", None))
                return loaded
        if self.main:
            rundir.clear_own_files(self.state.run_dir)
        distributed.barrier(self.dist)
        return {**FRESH, "epochs": []}

    def _check_facts(self, saved: dict[str, Any] | None) -> None:
        """Warn when the restored method reports other facts than it did when checkpointed:
        it keeps what they derive from outside its registered state, so the resumed record
        would not be the uninterrupted run's."""
        if saved is None:  # a checkpoint from before method facts
            return
        now = self.facts()
        if jsonable(saved) != now:
            log.warning(
                "method '%s' reports other facts after --resume (%s) than when checkpointed "
                "(%s): keep what record_facts() reads in register_state() or use set_fact()",
                self.state.prep.method_spec.name,
                now,
                saved,
            )

    def end_epoch(
        self, metrics: dict[str, Any], method: Method, ctx: TrainContext, totals: dict[str, Any]
    ) -> None:
        """Log the epoch line, then checkpoint (a kill between them is what resume handles)."""
        if not self.main:
            return
        append_epoch(self.state.run_dir, metrics)
        self.faults.after_log(int(metrics["epoch"]))
        checkpoint.save(self.state.run_dir, self.state, method, ctx, totals, self.facts())

    def checkpoint(self, method: Method, ctx: TrainContext, totals: dict[str, Any]) -> None:
        """A checkpoint without an epoch line: after each unit of a phase
        (nlbench.training.phases)."""
        if self.main:
            checkpoint.save(self.state.run_dir, self.state, method, ctx, totals, self.facts())

    def done(self, record: dict[str, Any]) -> None:
        """The finished record; the checkpoint goes (records stay small)."""
        self.write(record)
        if self.main:
            checkpoint.remove(self.state.run_dir)

    def failed(self, record: dict[str, Any], exc: BaseException) -> None:
        """Record the failure; when even that cannot be written, keep the last valid record."""
        failed = {**record, **self._facts_if_any(), "epochs": self.state.epochs, "status": "failed"}
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
        self.write({**record, **self._facts_if_any(), "epochs": epochs, "status": "interrupted"})
        where = f"epoch {len(epochs)}" if epochs else "a unit of its pre-training phase"
        return Interrupted(f"interrupted after {where}; resume with the same command plus --resume")
