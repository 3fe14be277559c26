"""The one core runner: epochs × (plan → train → scan → evaluate → record → checkpoint)."""

from __future__ import annotations

import contextlib
import datetime as _dt
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch

from nlbench import checkpoint, distributed, envinfo, observers, rundir
from nlbench.config import RunConfig
from nlbench.context import ScanCache, build_method, scan_train_set  # noqa: F401
from nlbench.data import EpochPlan, EvalSet, TrainSet
from nlbench.errors import NlbenchError, UsageError
from nlbench.faults import KillSwitch
from nlbench.fitscan import fit_logits, fit_subset_index, rows
from nlbench.hparams import eval_batch_size
from nlbench.method import Method, Scan, TrainContext
from nlbench.metrics import (
    BatchSelection,
    detection_auc,
    fit_metrics,
    plan_metrics,
    predictor_logits,
)
from nlbench.plugins import Host, get_host
from nlbench.prepare import Prepared, prepare, resolve_device
from nlbench.record import SCHEMA, append_epoch, summarise, write_record
from nlbench.run_facts import record_facts
from nlbench.schedules import lr_at
from nlbench.seeding import derive_seed, seed_model_init, set_deterministic

log = logging.getLogger(__name__)


class Progress(Protocol):
    """What the runner reports to a display (the CLI's rich progress implements it)."""

    def start(self, run: RunState, total_epochs: int) -> None: ...
    def epoch_start(self, epoch: int, steps: int) -> None: ...
    def step(self) -> None: ...
    def epoch_end(self, epoch: int, metrics: dict[str, Any]) -> None: ...


class NullProgress:
    def start(self, run, total_epochs): ...
    def epoch_start(self, epoch, steps): ...
    def step(self): ...
    def epoch_end(self, epoch, metrics): ...


class Interrupted(NlbenchError):
    """SIGINT: the run stopped at a safe point and can be resumed."""

    exit_code = 130


@dataclass
class RunState:
    """What observers see: the config, resolved inputs and the run directory."""

    cfg: RunConfig
    prep: Prepared
    run_dir: Path
    device: torch.device
    method: Method | None = None
    epochs: list[dict[str, Any]] = field(default_factory=list)

    @property
    def run_id(self) -> str:
        return self.prep.run_id


class Runner:
    """Runs one configuration to a record. ``run()`` returns the record dict."""

    def __init__(self, cfg: RunConfig, progress: Progress | None = None, host: Host | None = None):
        self.cfg = cfg
        self.progress = progress or NullProgress()
        self.host = host or get_host()
        self._stop = False
        self.dist = distributed.SINGLE
        self.selection: BatchSelection | None = None  # per-batch picks a method reports
        self.faults = KillSwitch()

    # -- setup (public in nlbench.context) ------------------------------------------------
    def _scan(
        self, method: Method, train: TrainSet, eval_bs: int, index: torch.Tensor | None = None
    ) -> Scan:
        return scan_train_set(method, train, eval_bs, self.dist, index)

    @torch.no_grad()
    def _evaluate(self, method: Method, evalset: Any, bs: int) -> float:
        for net in method.networks().values():
            net.eval()
        correct = torch.zeros((), device=method.ctx.device)
        for x, y in evalset.batches(bs):
            correct += (method.predict(x).argmax(1) == y).sum()
        return float(correct) / max(1, len(evalset))

    def _eval_sets(self, prep: Prepared, device: torch.device) -> dict[str, Any]:
        """``test`` and, when the dataset has one, ``val`` (model selection, e.g. Clothing1M)."""
        data = prep.data
        if data.stream is not None:
            return data.stream.eval_sets(device)
        sets = {"test": EvalSet(data.test, data.mean, data.std, device, False)}
        if data.val is not None:
            sets["val"] = EvalSet(data.val, data.mean, data.std, device, False)
        return sets

    def _train_epoch(self, method: Method, ctx: TrainContext, epoch: int, plan: EpochPlan | None):
        sums: dict[str, torch.Tensor] = {}
        own = method.epoch_batches(epoch, plan)
        steps = plan.steps if own is not None and plan is not None and plan.steps else None
        steps, seen = steps or ctx.train.num_batches(plan), 0
        self.progress.epoch_start(epoch, steps)
        lr = 0.0
        for i, batch in enumerate(own if own is not None else ctx.train.batches(plan)):
            lr, momentum = lr_at(epoch + i / max(1, steps), ctx.hparams)
            for opt in method.scheduled_optimizers():
                for group in opt.param_groups:
                    group["lr"] = lr
                    if momentum is not None and "momentum" in group:
                        group["momentum"] = momentum
            out = method.train_step(batch)
            if (picked := out.pop("selected", None)) is not None and self.selection is not None:
                self.selection.add(batch.index, picked)
            b = int(batch.y.shape[0])
            for k, v in out.items():
                sums[k] = sums.get(k, 0) + v.detach().float() * b
            seen += b
            self.progress.step()
            self.faults.after_step(epoch, i + 1)
            if self._stop:
                raise Interrupted("interrupted")
        means = {k: float(v) / max(1, seen) for k, v in sums.items()}  # one host sync per epoch
        return means, seen, lr

    # -- the loop ---------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        rundir.check_run_id(self.cfg.run_id)
        rundir.check_out(self.cfg.out)
        self.dist, device_name = distributed.setup(self.cfg.device)
        try:
            return self._run(resolve_device(device_name))
        finally:
            distributed.teardown(self.dist)

    def _write(self, run_dir: Path, record: dict[str, Any]) -> None:
        if self.dist.main:  # only rank 0 writes under DDP
            write_record(run_dir, record)

    def _run(self, device: torch.device) -> dict[str, Any]:
        cfg = self.cfg
        set_deterministic(cfg.deterministic)
        if not self.dist.main:
            self.progress = NullProgress()
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = not cfg.deterministic
        prep = prepare(cfg, self.host)
        run_dir = Path(cfg.out) / prep.run_id
        lock = rundir.RunLock(run_dir) if self.dist.main else contextlib.nullcontext()
        with lock:  # only rank 0 writes under DDP, so only rank 0 owns the directory
            existing = rundir.existing_record(run_dir, prep)
            if existing is not None:
                return existing
            return self._train(prep, run_dir, device)

    def _train(self, prep: Prepared, run_dir: Path, device: torch.device) -> dict[str, Any]:
        cfg = self.cfg
        state = RunState(cfg, prep, run_dir, device)
        seed_model_init(derive_seed("init", cfg.seed))
        method, ctx, cache = build_method(prep, device, self.host, self.dist)
        state.method = method
        start_epoch, prior = self._start_or_resume(state, ctx, method)
        state.epochs = prior["epochs"]
        record = self._base_record(state, method)
        with rundir.sigint_sets(self):  # from the first record on, Ctrl-C stops at a safe point
            self._write(run_dir, {**record, "status": "running"})
            self.host.pm.hook.run_started(run=state)
            self.progress.start(state, int(prep.hparams["epochs"]))
            try:
                totals = self._loop(state, ctx, method, cache, start_epoch, prior)
            except Interrupted:
                raise self._interrupted(run_dir, record, state) from None
            except BaseException as exc:
                self._write_failed(run_dir, record, state, exc)
                raise
        record.update(epochs=state.epochs, summary=summarise(state.epochs, *totals), status="done")
        self._write(run_dir, record)
        if self.dist.main:
            checkpoint.remove(run_dir)
        observers.run_finished(self.host.pm, state, record)
        return record

    def _interrupted(self, run_dir: Path, record: dict, state: RunState) -> Interrupted:
        """Record an interrupted run; before its first epoch there is nothing to keep."""
        if not state.epochs:
            if self.dist.main:
                rundir.clear_own_files(run_dir)
            return Interrupted("interrupted before the first epoch finished; nothing was recorded")
        self._write(run_dir, {**record, "epochs": state.epochs, "status": "interrupted"})
        return Interrupted(
            f"interrupted after epoch {len(state.epochs)}; resume with the same command plus "
            "--resume"
        )

    def _write_failed(self, run_dir: Path, record: dict, state: RunState, exc: BaseException):
        """Record the failure; when even that cannot be written (full disk), keep the last
        valid record and let the original error through."""
        failed = {**record, "epochs": state.epochs, "status": "failed"}
        try:
            self._write(run_dir, {**failed, "error": f"{type(exc).__name__}: {exc}"})
        except NlbenchError as write_exc:
            log.info("could not record the failure: %s", write_exc)

    def _loop(self, state, ctx, method, cache, start_epoch, prior) -> tuple:
        prep, hp = state.prep, state.prep.hparams
        evalsets = self._eval_sets(prep, ctx.device)
        eval_bs = eval_batch_size(hp, ctx.device)
        clean = torch.from_numpy(prep.clean).to(ctx.device)
        wall0 = time.perf_counter() - prior["wall_s"]
        images, train_s = prior["images"], prior["train_s"]
        fit_idx = fit_subset_index(ctx.train, self.cfg.seed)  # None: the whole train set
        if fit_idx is not None:
            prep.data_info["fit_subset"] = int(fit_idx.numel())
        for epoch in range(start_epoch, int(hp["epochs"])):
            t0 = time.perf_counter()
            calls = cache.calls
            plan = method.start_epoch(epoch, cache.get)
            self.selection = BatchSelection(ctx.train.labels, clean)
            select_s = time.perf_counter() - t0
            means, seen, lr = self._train_epoch(method, ctx, epoch, plan)
            scanned = cache.calls > calls
            cache.invalidate()
            _sync(ctx.device)
            train_s += time.perf_counter() - t0
            images += seen
            full = lambda: fit_logits(  # noqa: E731
                cache.get, lambda i: self._scan(method, ctx.train, eval_bs, i), fit_idx, scanned
            )
            logits = predictor_logits(method, full, ctx.train, eval_bs, fit_idx)
            total = lambda v: distributed.sum_scalar(v, self.dist)  # noqa: E731
            metrics = {
                "epoch": epoch,
                "lr": lr,
                "train_loss": means.pop("loss", None),
                **{f"{k}_acc": self._evaluate(method, v, eval_bs) for k, v in evalsets.items()},
                **fit_metrics(logits, rows(ctx.train.labels, fit_idx), rows(clean, fit_idx)),
                **plan_metrics(plan, ctx.train.labels, clean),
                "select_s": select_s,
                **self.selection.metrics(total),
                **{f"train_{k}" if not k.startswith("train_") else k: v for k, v in means.items()},
            }
            metrics["detection_auc"] = (
                detection_auc(plan.clean_prob, ctx.train.labels, clean)
                if plan is not None and plan.clean_prob is not None
                else None
            )
            metrics.update({k: v for k, v in (plan.metrics if plan else {}).items()})
            metrics["seconds"] = time.perf_counter() - t0
            metrics.update(observers.epoch_extras(self.host.pm, state, epoch, metrics))
            state.epochs.append(metrics)
            if self.dist.main:
                append_epoch(state.run_dir, metrics)
                self.faults.after_log(epoch)
                checkpoint.save(
                    state.run_dir,
                    state,
                    method,
                    ctx,
                    {"wall_s": time.perf_counter() - wall0, "images": images, "train_s": train_s},
                )
            self.progress.epoch_end(epoch, metrics)
        images = int(distributed.sum_scalar(images, self.dist))  # all ranks' images
        return time.perf_counter() - wall0, images, train_s, _peak_mem_mb(ctx.device)

    # -- records and resume ------------------------------------------------------------------
    def _start_or_resume(self, state: RunState, ctx, method) -> tuple[int, dict[str, Any]]:
        fresh = {"epochs": [], "wall_s": 0.0, "images": 0, "train_s": 0.0}
        if self.cfg.resume:
            loaded = checkpoint.load(state.run_dir, state, method, ctx)
            if loaded is not None:
                return len(loaded["epochs"]), loaded
        if self.dist.main:
            rundir.clear_own_files(state.run_dir)  # by name: user files stay
        distributed.barrier(self.dist)
        return 0, fresh

    def _base_record(self, state: RunState, method: Method) -> dict[str, Any]:
        prep = state.prep
        mspec = prep.method_spec
        prov = envinfo.provenance(self.host, state.device)
        prov["env"]["world_size"] = self.dist.world
        facts = record_facts(prep, self.cfg.overrides, state.device.type)
        return {
            "schema": SCHEMA,
            "run_id": prep.run_id,
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            **prov,
            "config": {
                **prep.identity,
                "model": prep.hparams["model"],
                "device": str(state.device),
            },
            "flags": facts["flags"],
            "reference": mspec.reference,
            "noise": prep.noise,
            "data": prep.data_info,
            "method_info": {**method.record_info(), "deviations": facts["deviations"]},
            "epochs": [],
            "summary": {},
            "status": "running",
        }


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _peak_mem_mb(device: torch.device) -> float | None:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    try:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    except Exception:  # pragma: no cover - non-POSIX
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
