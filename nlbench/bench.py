"""How fast is training here? ERM vs a minimal PyTorch loop, and every method relative to ERM.

What a researcher asks before spending GPU hours. Everything is built directly on synthetic
CIFAR-shaped data (random uint8 images and labels, no files): the ERM leg goes through the
runner's own epoch path (:class:`~nlbench.data.TrainSet` batches, the method's
``start_epoch`` and ``train_step``, the per-step LR schedule), the reference leg is a
hand-written loop doing the same work (shuffle, batched crop/flip, normalise, SGD step) with
nothing else. All legs run in one process, interleaved round by round after warm-up, and each
reports the median of its epoch times, so load on a shared machine hits every leg alike.
"""

from __future__ import annotations

import contextlib
import logging
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from nlbench.config import RunConfig
from nlbench.data import DatasetData, DeviceImages, ImageSet, TrainSet
from nlbench.errors import NlbenchError, UsageError
from nlbench.hparam_types import defaults
from nlbench.hparams import BASE_HPARAMS, eval_batch_size, resolve_hparams, use_channels_last
from nlbench.method import MetaSet, Method, TrainContext
from nlbench.models import build_model
from nlbench.seeding import derive_seed, seed_model_init, torch_generator

log = logging.getLogger(__name__)

CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2470, 0.2435, 0.2616)
BENCH_EPOCHS = 200  # the schedule length methods see; timing happens mid-run (after warm-ups)


@dataclass(frozen=True)
class BenchSettings:
    """What to measure. ``steps`` batches make one timed epoch (``steps × batch_size`` images).

    ``methods=None`` measures every installed method; ``threads=None`` keeps torch's default.
    ``profile`` picks the methods' hyper-parameters (their CIFAR-10 settings when available).
    """

    model: str = "cnn_small"
    device: str = "auto"
    methods: tuple[str, ...] | None = None
    batch_size: int = 128
    steps: int = 20
    repeats: int = 5
    warmup: int = 1
    threads: int | None = None
    seed: int = 0
    profile: str = "paper"
    meta_size: int = 1000
    num_classes: int = 10
    image_size: int = 32
    in_chans: int = 3

    def validate(self) -> None:
        for key in ("batch_size", "steps", "repeats", "meta_size"):
            if int(getattr(self, key)) < 1:
                raise UsageError(f"bench: {key} must be a positive integer")
        if self.warmup < 0 or (self.threads is not None and self.threads < 1):
            raise UsageError("bench: warmup must be >= 0 and threads >= 1")


def synthetic_dataset(n: int, s: BenchSettings, gen: torch.Generator) -> DatasetData:
    """Random uint8 images and labels shaped like CIFAR-10 (crop/flip augmentation)."""
    shape = (n, s.in_chans, s.image_size, s.image_size)
    x = torch.randint(0, 256, shape, generator=gen, dtype=torch.uint8)
    y = torch.randint(0, s.num_classes, (n,), generator=gen)
    mean, std = CIFAR_MEAN[: s.in_chans], CIFAR_STD[: s.in_chans]
    test = ImageSet(x[: s.batch_size], y[: s.batch_size])
    return DatasetData(
        ImageSet(x, y),
        test,
        s.num_classes,
        [str(c) for c in range(s.num_classes)],
        mean,
        std,
        augment="crop_flip",
    )


# -- the reference: a minimal hand-written loop --------------------------------------------
class ReferenceLoop:
    """What one would write by hand: shuffle, gather, crop/flip, normalise, SGD step."""

    def __init__(
        self,
        model: nn.Module,
        data: DatasetData,
        hp: dict[str, Any],
        device: torch.device,
        gen: torch.Generator,
    ) -> None:
        self.model, self.gen, self.device, self.bs = model, gen, device, int(hp["batch_size"])
        self.x, self.y = data.train.x.to(device), data.train.y.to(device)
        c = self.x.shape[1]
        self.mean = torch.tensor(data.mean, device=device).view(1, c, 1, 1)
        self.std = torch.tensor(data.std, device=device).view(1, c, 1, 1)
        momentum = float(hp["momentum"])
        self.opt = torch.optim.SGD(
            model.parameters(),
            lr=float(hp["lr"]),
            momentum=momentum,
            nesterov=bool(hp["nesterov"]) and momentum > 0,
            weight_decay=float(hp["weight_decay"]),
        )

    def crop_flip(self, x: torch.Tensor) -> torch.Tensor:
        """Random 4-pixel-padded crop and horizontal flip as one gather of pixel indices."""
        n, c, h, w = x.shape
        dev = self.device
        d = torch.randint(0, 9, (2, n), generator=self.gen, device=dev)
        flip = torch.rand(n, 1, generator=self.gen, device=dev) < 0.5
        cols = d[1, :, None] + torch.arange(w, device=dev)
        cols = torch.where(flip, cols.flip(1), cols)
        rows = d[0, :, None] + torch.arange(h, device=dev)
        index = (rows[:, :, None] * (w + 8) + cols[:, None, :]).reshape(n, 1, -1)
        flat = F.pad(x, (4, 4, 4, 4)).reshape(n, c, -1)
        return flat.gather(2, index.expand(-1, c, -1)).reshape(n, c, h, w)

    def epoch(self, epoch: int) -> int:
        self.model.train()
        n = self.x.shape[0]
        order = torch.randperm(n, generator=self.gen, device=self.device)
        for start in range(0, n, self.bs):
            idx = order[start : start + self.bs]
            loss = self.batch_loss(idx)
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
        float(loss.detach())  # one host sync per epoch, as the runner does
        return n

    def batch_loss(self, idx: torch.Tensor) -> torch.Tensor:
        """The mean loss of one augmented batch (subclasses add autocast or a memory format)."""
        x = (self.crop_flip(self.x[idx]).float() / 255.0 - self.mean) / self.std
        return F.cross_entropy(self.model(x), self.y[idx])


# -- nlbench's path: a method driven by the runner's epoch ---------------------------------
@dataclass
class MethodLoop:
    """One method on the synthetic set, run epoch by epoch exactly as the runner runs it."""

    method: Method
    ctx: TrainContext
    runner: Any
    cache: Any
    start_s: list[float] = field(default_factory=list)

    def epoch(self, epoch: int) -> int:
        self.cache.invalidate()  # a fresh scan per epoch, as after every real epoch
        t0 = time.perf_counter()
        plan = self.method.start_epoch(epoch, self.cache.get)
        self.start_s.append(time.perf_counter() - t0)
        _, seen, _ = self.runner._train_epoch(self.method, self.ctx, epoch, plan)
        return seen


def bench_hparams(name: str, s: BenchSettings, host: Any) -> dict[str, Any]:
    """The method's CIFAR-10 hparams for ``s.profile`` (defaults when that is unavailable),
    with the bench's model, batch size and schedule length imposed on every method."""
    mspec = host.get("methods", name)
    try:
        dspec = host.get("datasets", "cifar10")
        profile = s.profile if s.profile in dspec.profiles else sorted(dspec.profiles)[0]
        hp = resolve_hparams(
            mspec, dspec, RunConfig(method=name, dataset="cifar10", profile=profile)
        )
    except (NlbenchError, IndexError):
        hp = {**BASE_HPARAMS, "lr": 0.02, **defaults(mspec.default_hparams)}
    hp.update(model=s.model, batch_size=s.batch_size, epochs=BENCH_EPOCHS)
    if "clean_meta" in mspec.flags and not str(hp.get("meta_set") or "").startswith("clean"):
        hp["meta_set"] = f"clean:{s.meta_size}"
    return hp


def build_loop(
    name: str, s: BenchSettings, data: DatasetData, device: torch.device, host: Any
) -> MethodLoop:
    """Build method ``name`` through its ``MethodSpec.factory`` on the synthetic set."""
    from nlbench.runner import Runner, ScanCache

    hp = bench_hparams(name, s, host)
    runner = Runner(RunConfig(method=name, device=str(device)), host=host)
    cache = ScanCache(lambda: None)
    ctx = bench_context(hp, s, data, device, host, cache)
    seed_model_init(derive_seed("init", s.seed))
    method = host.get("methods", name).factory(ctx)
    cache.compute = lambda: runner._scan(method, ctx.train, eval_batch_size(hp, ctx.device))
    return MethodLoop(method, ctx, runner, cache)


def bench_context(
    hp: dict[str, Any],
    s: BenchSettings,
    data: DatasetData,
    device: torch.device,
    host: Any,
    cache: Any,
) -> TrainContext:
    """A TrainContext like the runner's, on synthetic data (clean meta set when asked)."""
    gen = torch_generator(derive_seed("data", s.seed), device)
    channels_last = use_channels_last(hp, device)
    noisy = data.train.y.clone()
    train = TrainSet(data.train, noisy, data, device, s.batch_size, gen, channels_last)
    meta, meta_info = None, {"kind": str(hp.get("meta_set") or "none"), "size": 0}
    if str(hp.get("meta_set") or "").startswith("clean"):
        mgen = torch_generator(derive_seed("meta", s.seed))
        mdata = synthetic_dataset(s.meta_size, s, mgen)
        images = DeviceImages(mdata.train, data.mean, data.std, device, channels_last)
        meta = MetaSet(images, mdata.train.y.to(device), "clean", s.meta_size)
        meta_info = {"kind": "clean", "size": s.meta_size}
    registry = host.registry("models")

    def make() -> nn.Module:
        net = build_model(
            registry,
            hp["model"],
            s.num_classes,
            s.in_chans,
            s.image_size,
            dropout=hp.get("dropout"),
            pretrained=hp.get("pretrained"),
        ).to(device)
        return net.to(memory_format=torch.channels_last) if channels_last else net

    amp = torch.bfloat16 if hp.get("amp") and device.type == "cuda" else None
    return TrainContext(
        hparams=hp,
        num_classes=s.num_classes,
        in_chans=s.in_chans,
        image_size=s.image_size,
        device=device,
        train=train,
        epochs=BENCH_EPOCHS,
        steps_per_epoch=train.num_batches(),
        build_model=make,
        gen=gen,
        scan=cache.get,
        meta=meta,
        amp_dtype=amp,
        dataset="cifar10",
        noise_type="sym",
        extras={"meta_info": meta_info, "seed": s.seed, "noise_rate": 0.5, "noise": "sym:0.5"},
    )


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
    from nlbench.plugins import get_host
    from nlbench.prepare import resolve_device

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
                raise failed.__cause__ from None  # noqa: B904 - the baseline itself broke
            errors[failed.name] = failed.message
            log.warning("bench: %s failed: %s", failed.name, failed.message)
            legs.pop(failed.name)


class _LegFailed(Exception):
    def __init__(self, name: str, exc: BaseException) -> None:
        super().__init__(name)
        self.name, self.message = name, f"{type(exc).__name__}: {exc}"


def _guard(name: str, fn: Callable[[int], int]) -> Callable[[int], int]:
    def run(epoch: int) -> int:
        try:
            return fn(epoch)
        except Exception as exc:  # noqa: BLE001
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
    from nlbench.envinfo import device_name

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
