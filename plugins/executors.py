"""Sweep executors: ``local`` (N worker processes) and ``slurm`` (submitit array jobs).

An executor takes the pending :class:`nlbench.sweep.plan.Job` list and returns one outcome dict per
job (``run_id``, ``status``, ``last_acc``, ``error``). Every job runs
:func:`nlbench.sweep.plan.run_job`, which calls the one core runner, so a sweep run and an
``nlbench run`` of the same config write the same record.
"""

from __future__ import annotations

import logging
import multiprocessing
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nlbench.api import ExecutorSpec, Job, UsageError, hookimpl, run_job, threads_per_job

if TYPE_CHECKING:  # an optional dependency (nlbench[slurm]), imported on use
    import submitit

log = logging.getLogger(__name__)


def _failed(job: Job, error: str) -> dict[str, Any]:
    return {"run_id": job.run_id, "status": "failed", "last_acc": None, "error": error}


def _positive(name: str, value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise UsageError(f"executor option {name}={value!r}: must be a positive integer")
    return value


class LocalExecutor:
    """Run jobs on this machine, ``jobs`` at a time, each in its own spawned process.

    With ``jobs=1`` runs happen in this process (no start-up cost). Torch threads per run
    default to the CPUs divided by ``jobs`` so N runs do not fight over cores.
    """

    def __init__(self, jobs: int = 1, threads: int | None = None) -> None:
        self.jobs = _positive("jobs", jobs)
        self.threads = None if threads is None else _positive("threads", threads)

    def run(self, jobs: list[Job]) -> list[dict[str, Any]]:
        threads = self.threads or threads_per_job(self.jobs)
        if self.jobs == 1 or len(jobs) <= 1:
            return [run_job(j.cfg, threads) for j in jobs]
        # spawn, not fork: forking a process that already initialised torch can deadlock
        ctx = multiprocessing.get_context("spawn")
        workers = min(self.jobs, len(jobs))
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
            futures = [pool.submit(run_job, j.cfg, threads) for j in jobs]
            out = []
            for job, fut in zip(jobs, futures):
                try:
                    out.append(fut.result())
                except BrokenProcessPool as exc:  # a worker died (OOM kill, segfault)
                    out.append(_failed(job, f"worker process died: {exc}"))
            return out


class SlurmExecutor:
    """Submit jobs as one submitit array (``map_array``) to Slurm, or to submitit's local
    cluster with ``cluster=local`` (tests, debugging: the same code path without a scheduler).

    Options: ``partition``, ``time`` (minutes), ``gpus`` (per job), ``cpus`` (per job, also the
    torch thread count), ``mem_gb``, ``array_parallelism`` (array jobs running at once),
    ``folder`` (submitit logs and pickles), ``wait`` (block and collect outcomes; with
    ``wait=false`` the job ids are reported and the sweep command returns).
    """

    def __init__(
        self,
        partition: str | None = None,
        time: int = 60,
        gpus: int | None = None,
        cpus: int | None = None,
        mem_gb: int | None = None,
        array_parallelism: int = 64,
        folder: str = "submitit",
        cluster: str = "slurm",
        wait: bool = True,
        name: str = "nlbench",
    ) -> None:
        self.params = {
            "timeout_min": _positive("time", time),
            "gpus_per_node": gpus,
            "cpus_per_task": cpus,
            "mem_gb": mem_gb,
            "name": name,
            "slurm_partition": partition,
            "slurm_array_parallelism": _positive("array_parallelism", array_parallelism),
        }
        self.cpus, self.folder, self.cluster, self.wait = cpus, folder, cluster, wait

    def _executor(self) -> submitit.AutoExecutor:
        try:
            import submitit
        except ImportError:
            raise UsageError(
                "executor 'slurm' needs submitit; install it with pip install 'nlbench[slurm]'"
            ) from None
        executor = submitit.AutoExecutor(folder=Path(self.folder), cluster=self.cluster)
        executor.update_parameters(**{k: v for k, v in self.params.items() if v is not None})
        return executor

    def run(self, jobs: list[Job]) -> list[dict[str, Any]]:
        if not jobs:
            return []
        executor = self._executor()
        threads = [self.cpus] * len(jobs)
        submitted = executor.map_array(run_job, [j.cfg for j in jobs], threads)
        log.info("submitted %d jobs: %s", len(submitted), ", ".join(s.job_id for s in submitted))
        if not self.wait:
            return [
                {
                    "run_id": j.run_id,
                    "status": "submitted",
                    "last_acc": None,
                    "error": None,
                    "job_id": s.job_id,
                }
                for j, s in zip(jobs, submitted)
            ]
        out = []
        for job, sub in zip(jobs, submitted):
            try:
                out.append(sub.result())
            # submitit raises FailedJobError/UncompletedJobError on a job that died or timed out,
            # or the job's own exception (debug cluster): any of them fails this job only.
            except Exception as exc:  # noqa: BLE001
                out.append(_failed(job, f"job {sub.job_id}: {type(exc).__name__}: {exc}"))
        return out


@hookimpl
def register_executors(register: Callable[[ExecutorSpec], None]) -> None:
    local = "this machine, --jobs N worker processes"
    slurm = "Slurm array jobs via submitit (cluster=local to test)"
    register(ExecutorSpec(name="local", factory=LocalExecutor, description=local))
    register(ExecutorSpec(name="slurm", factory=SlurmExecutor, description=slurm))
