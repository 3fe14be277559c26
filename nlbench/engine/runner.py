"""The one core runner: epochs × (plan → train → scan → evaluate → record → checkpoint).

The runner is the loop; each step is a part with one job, testable alone:

* :mod:`nlbench.engine.prepare` and :mod:`nlbench.engine.context`: resolved inputs, the method on
its
context;
* :mod:`nlbench.engine.epoch_loop`: one epoch of training steps under the LR schedule;
* :mod:`nlbench.engine.evaluation`: accuracies, train-set scans and the epoch's metrics;
* :mod:`nlbench.engine.run_io`: the record at each status, epoch log, checkpoint and resume;
* :mod:`nlbench.engine.observers`: the observer hooks (which can add to a record, never change
it).
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any

import torch

from nlbench.core.config import RunConfig
from nlbench.core.errors import Interrupted, UsageError
from nlbench.core.record import summarise
from nlbench.core.seeding import derive_seed, seed_model_init, set_deterministic
from nlbench.engine import observers, rundir
from nlbench.engine.context import ScanCache, build_method
from nlbench.engine.epoch_loop import EpochTrainer, sync
from nlbench.engine.evaluation import Evaluator
from nlbench.engine.faults import KillSwitch
from nlbench.engine.prepare import prepare, resolve_device
from nlbench.engine.run_io import RunFiles, base_record
from nlbench.engine.run_state import NullProgress, Progress, RunState
from nlbench.host.plugins import Host, get_host
from nlbench.training import distributed
from nlbench.training.method import TrainContext, tell_epoch
from nlbench.training.phases import PhaseTotals, run_phases

__all__ = ["Interrupted", "NullProgress", "Progress", "RunState", "Runner", "ScanCache", "run"]


class Runner:
    """Runs one configuration to a record. ``run()`` returns the record dict."""

    def __init__(self, cfg: RunConfig, progress: Progress | None = None, host: Host | None = None):
        self.cfg = cfg
        self.progress = progress or NullProgress()
        self.host = host or get_host()
        self._stop = False  # set by SIGINT (rundir.sigint_sets): stop at the next step
        self.dist = distributed.SINGLE
        self.faults = KillSwitch()
        self.phase_log: dict[str, Any] | None = None  # record["phases"]: work before epoch 0

    def run(self) -> dict[str, Any]:
        rundir.check_run_id(self.cfg.run_id)
        rundir.check_out(self.cfg.out)
        self.dist, device_name = distributed.setup(self.cfg.device)
        finished = False
        try:
            record = self._run(resolve_device(device_name))
            finished = True
            return record
        finally:
            distributed.teardown(self.dist, finished)

    def _run(self, device: torch.device) -> dict[str, Any]:
        set_deterministic(self.cfg.deterministic)  # the one place torch's global flags are set
        if not self.dist.main:
            self.progress = NullProgress()
        prep = prepare(self.cfg, self.host)
        run_dir = Path(self.cfg.out) / prep.run_id
        lock = rundir.RunLock(run_dir) if self.dist.main else contextlib.nullcontext()
        with lock:  # only rank 0 writes under DDP, so only rank 0 owns the directory
            existing = rundir.existing_record(run_dir, prep)
            if existing is not None:
                return existing
            return self._train(RunState(self.cfg, prep, run_dir, device))

    def _train(self, state: RunState) -> dict[str, Any]:
        seed_model_init(derive_seed("init", self.cfg.seed))
        method, ctx, cache = build_method(state.prep, state.device, self.host, self.dist)
        state.method = method
        files = RunFiles(state, self.dist, self.faults)
        prior = files.start_or_resume(method, ctx, self.cfg.resume)
        state.epochs = prior["epochs"]
        record = base_record(state, method, self.host, self.dist.world)
        with rundir.sigint_sets(self):  # from the first record on, Ctrl-C stops at a safe point
            files.write({**record, "status": "running"})
            self.host.pm.hook.run_started(run=state)
            self.progress.start(state, int(state.prep.hparams["epochs"]))
            try:
                totals = self._loop(state, files, ctx, cache, prior)
            except Interrupted:
                stopped = files.interrupted(record)  # the record first, then the observers
                observers.run_failed(self.host.pm, state, stopped)
                raise stopped from None
            except BaseException as exc:
                files.failed(record, exc)
                observers.run_failed(self.host.pm, state, exc)
                raise
        record.update(epochs=state.epochs, summary=summarise(state.epochs, *totals), status="done")
        record["method_facts"] = files.facts()  # results the method declared (MethodSpec.facts)
        if self.phase_log:
            record["phases"] = self.phase_log
        files.done(record)
        observers.run_finished(self.host.pm, state, record)
        return record

    def _loop(
        self,
        state: RunState,
        files: RunFiles,
        ctx: TrainContext,
        cache: ScanCache,
        prior: dict[str, Any],
    ) -> tuple:
        """Train the remaining epochs; returns the summary's totals."""
        method = state.method
        assert method is not None
        trainer = EpochTrainer(self.progress, self.faults, lambda: self._stop)
        evaluator = Evaluator.for_run(state.prep, ctx, method, cache, self.dist)
        wall0 = time.perf_counter() - prior["wall_s"]
        cpu = CpuClock(prior.get("cpu_s"))  # None: resumed from a checkpoint that predates it
        images, train_s = prior["images"], prior["train_s"]
        self.phase_log = prior.get("phases")
        phases = [] if state.epochs else method.phases()  # resumable work before epoch 0
        if phases:
            done = PhaseTotals(images, train_s, self.phase_log)
            images, train_s = self._phases(phases, files, ctx, done, wall0, cpu)
        for epoch in range(len(state.epochs), int(state.prep.hparams["epochs"])):
            t0 = time.perf_counter()
            calls = cache.calls
            tell_epoch(method, epoch)  # the method, and through it its loss (a warm-up)
            plan = method.start_epoch(epoch, cache.get)
            selection = evaluator.selection()
            select_s = time.perf_counter() - t0
            trained = trainer.run(method, ctx, epoch, plan, selection)
            scanned = cache.calls > calls  # did the method ask for the scan this epoch?
            cache.invalidate()
            sync(ctx.device)
            train_s += time.perf_counter() - t0
            images += trained.seen
            metrics = evaluator.epoch_metrics(epoch, trained, plan, selection, scanned, select_s)
            metrics["seconds"] = time.perf_counter() - t0
            metrics.update(observers.epoch_extras(self.host.pm, state, epoch, metrics))
            state.epochs.append(metrics)
            totals = {
                "wall_s": time.perf_counter() - wall0,
                "cpu_s": cpu.seconds(),
                "images": images,
                "train_s": train_s,
                **({"phases": self.phase_log} if self.phase_log else {}),
            }
            files.end_epoch(metrics, method, ctx, totals)
            self.progress.epoch_end(epoch, metrics)
        images = int(distributed.sum_scalar(images, self.dist))  # all ranks' images
        cpu_s = cpu.seconds()
        if cpu_s is not None:  # the CPU time of every rank: what the run cost
            cpu_s = float(distributed.sum_scalar(cpu_s, self.dist))
        wall_s = time.perf_counter() - wall0
        return wall_s, images, train_s, _peak_mem_mb(ctx.device), cpu_s

    def _phases(
        self,
        phases: list,
        files: RunFiles,
        ctx: TrainContext,
        done: PhaseTotals,
        wall0: float,
        cpu: CpuClock,
    ) -> tuple[int, float]:
        """The method's phases (:mod:`nlbench.training.phases`), a checkpoint after every unit;
        returns
        the images and training seconds so far."""
        method = files.state.method
        assert method is not None

        def save(done: PhaseTotals) -> None:
            totals: dict[str, Any] = {"wall_s": time.perf_counter() - wall0, "cpu_s": cpu.seconds()}
            totals.update(images=done.images, train_s=done.train_s, phases=done.log)
            files.checkpoint(method, ctx, totals)

        stop = lambda: self._stop  # noqa: E731
        run_phases(phases, done, save, self.progress, self.faults, stop)
        self.phase_log = done.log
        return done.images, done.train_s


class CpuClock:
    """This process's CPU seconds (all its threads) since the run began, resumes included.

    Unlike wall-clock time it does not grow when other jobs share the machine, so it is what a
    run costs on a shared CPU box (sweeps run one thread per job)."""

    def __init__(self, prior: float | None) -> None:
        self.prior, self.start = prior, time.process_time()

    def seconds(self) -> float | None:
        if self.prior is None:
            return None
        return self.prior + time.process_time() - self.start


def _peak_mem_mb(device: torch.device) -> float | None:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    try:
        import resource  # lazy: a Unix-only module

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    except (ImportError, OSError):  # pragma: no cover - non-POSIX
        return None


def run(cfg: RunConfig | None = None, progress: Progress | None = None, **kwargs: Any) -> dict:
    """Run one configuration and return its record (the notebook API)."""
    if cfg is None:
        if "set" in kwargs:
            kwargs["overrides"] = dict(kwargs.pop("set"))
        cfg = RunConfig(**kwargs)
    if cfg.train_subset is not None and cfg.train_subset < 1:
        raise UsageError("--train-subset must be a positive integer")
    return Runner(cfg, progress).run()
