"""How fast is training here? ERM vs a minimal PyTorch loop, and every method relative to ERM.

What a researcher asks before spending GPU hours. Everything is built directly on synthetic
CIFAR-shaped data (random uint8 images and labels, no files): the ERM leg goes through the
runner's own epoch path (:class:`~nlbench.training.data.TrainSet` batches, the method's
``start_epoch`` and ``train_step``, the per-step LR schedule), the reference leg is a
hand-written loop doing the same work (shuffle, batched crop/flip, normalise, SGD step) with
nothing else. All legs run in one process, interleaved round by round after warm-up, and each
reports the median of its epoch times, so load on a shared machine hits every leg alike. The
legs themselves are in :mod:`nlbench.bench.legs`.
"""

from __future__ import annotations

import contextlib
import logging
import statistics
import time
from collections.abc import Callable, Iterator
from typing import Any

import torch

from nlbench.bench.legs import (
    BENCH_EPOCHS,
    BenchSettings,
    MethodLoop,
    ReferenceLoop,
    build_loop,
    synthetic_dataset,
)
from nlbench.core.envinfo import device_name
from nlbench.core.seeding import derive_seed, seed_model_init, torch_generator
from nlbench.engine.prepare import resolve_device
from nlbench.host.plugins import get_host
from nlbench.training.data import DatasetData

log = logging.getLogger(__name__)


# -- timing ---------------------------------------------------------------------------------
def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def interleaved(
    legs: dict[str, Callable[[int], int]],
    repeats: int,
    warmup: int,
    device: torch.device,
    first_epoch: int = BENCH_EPOCHS // 2,
) -> dict[str, list[float]]:
    """Epoch seconds per leg: ``warmup`` untimed rounds, then ``repeats`` timed rounds.

    Each round runs every leg once; the order rotates from round to round so no leg always
    follows the same neighbour (caches, turbo clocks, a neighbour's burst of load).
    """
    names = list(legs)
    times: dict[str, list[float]] = {n: [] for n in names}
    for r in range(warmup + repeats):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            _sync(device)
            t0 = time.perf_counter()
            legs[name](first_epoch + r)
            _sync(device)
            if r >= warmup:
                times[name].append(time.perf_counter() - t0)
    return times


@contextlib.contextmanager
def fixed_threads(n: int | None) -> Iterator[int]:
    """Pin torch's intra-op threads for the measurement (restored afterwards)."""
    old = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield torch.get_num_threads()
    finally:
        torch.set_num_threads(old)


def run_bench(s: BenchSettings, host: Any = None) -> dict[str, Any]:
    """Measure ERM and the reference loop, then every method's epoch-time ratio to ERM.

    Returns the JSON-ready dict: ``device, model, erm_images_per_s, reference_images_per_s,
    ratios{method: ratio}``, plus ``errors{method: message}`` for methods that could not be
    built or run on the synthetic set, and the settings and raw medians.
    """
    s.validate()
    host = host or get_host()
    device = resolve_device(s.device)
    names = sorted(s.methods) if s.methods is not None else host.registry("methods").names()
    with fixed_threads(s.threads) as threads:
        data = synthetic_dataset(s.steps * s.batch_size, s, torch_generator(s.seed))
        legs, errors = _build_legs(names, s, data, device, host)
        times = _time_legs(legs, errors, s, device)
    return _report(s, device, threads, data, times, errors, legs)


def _build_legs(
    names: list[str], s: BenchSettings, data: DatasetData, device: torch.device, host: Any
) -> tuple[dict[str, Any], dict[str, str]]:
    legs: dict[str, Any] = {"erm": build_loop("erm", s, data, device, host)}
    erm = legs["erm"]
    seed_model_init(derive_seed("init", s.seed))
    ref_model = erm.ctx.build_model()
    ref_model.load_state_dict(erm.method.networks()["net"].state_dict())
    legs["reference"] = ReferenceLoop(
        ref_model,
        data,
        erm.ctx.hparams,
        device,
        torch_generator(derive_seed("ref", s.seed), device),
    )
    errors: dict[str, str] = {}
    for name in names:
        if name in legs:
            continue
        try:
            legs[name] = build_loop(name, s, data, device, host)
        except Exception as exc:  # noqa: BLE001 - report any method that cannot be built
            errors[name] = f"{type(exc).__name__}: {exc}"
            log.warning("bench: %s failed to build: %s", name, exc)
    return legs, errors


def _time_legs(
    legs: dict[str, Any], errors: dict[str, str], s: BenchSettings, device: torch.device
) -> dict[str, list[float]]:
    """Time all legs together; a leg that fails mid-run is dropped and reported, then the
    survivors are timed again from scratch so every reported median shares its rounds."""
    while True:
        try:
            return interleaved(
                {k: _guard(k, v.epoch) for k, v in legs.items()}, s.repeats, s.warmup, device
            )
        except _LegFailed as failed:
            if failed.name in ("erm", "reference"):
                raise failed.exc from None  # the baseline itself broke: no bench without it
            errors[failed.name] = failed.message
            log.warning("bench: %s failed: %s", failed.name, failed.message)
            legs.pop(failed.name)


class _LegFailed(Exception):
    def __init__(self, name: str, exc: BaseException) -> None:
        super().__init__(name)
        self.name, self.exc, self.message = name, exc, f"{type(exc).__name__}: {exc}"


def _guard(name: str, fn: Callable[[int], int]) -> Callable[[int], int]:
    def run(epoch: int) -> int:
        try:
            return fn(epoch)
        except Exception as exc:
            raise _LegFailed(name, exc) from exc

    return run


def _report(
    s: BenchSettings,
    device: torch.device,
    threads: int,
    data: DatasetData,
    times: dict[str, list[float]],
    errors: dict[str, str],
    legs: dict[str, Any],
) -> dict[str, Any]:
    med = {k: statistics.median(v) for k, v in times.items()}
    n = len(data.train)
    start = {
        k: statistics.median(v.start_s)
        for k, v in legs.items()
        if isinstance(v, MethodLoop) and v.start_s
    }
    return {
        "device": f"{device.type}: {device_name(device)}",
        "model": s.model,
        "erm_images_per_s": n / med["erm"],
        "reference_images_per_s": n / med["reference"],
        "erm_vs_reference": med["reference"] / med["erm"],
        "ratios": {k: v / med["erm"] for k, v in sorted(med.items()) if k != "reference"},
        "errors": dict(sorted(errors.items())),
        "epoch_s": med,
        "start_epoch_s": start,
        "settings": {
            "threads": threads,
            "batch_size": s.batch_size,
            "images": n,
            "repeats": s.repeats,
            "warmup": s.warmup,
            "profile": s.profile,
        },
    }
