"""What ``nlbench bench`` times: synthetic CIFAR-shaped data, the hand-written reference loop,
and each method driven epoch by epoch exactly as the runner drives it.

:mod:`nlbench.bench.measure` interleaves and times these legs; nothing here measures anything.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import nn

from nlbench.core.config import RunConfig
from nlbench.core.errors import NlbenchError, UsageError
from nlbench.core.hparam_types import defaults
from nlbench.core.hparams import BASE_HPARAMS, eval_batch_size, resolve_hparams, use_channels_last
from nlbench.core.seeding import derive_seed, seed_model_init, torch_generator
from nlbench.core.specs import MethodFlag
from nlbench.engine.context import ScanCache, scan_train_set
from nlbench.engine.epoch_loop import EpochTrainer
from nlbench.training.data import DatasetData, DeviceImages, ImageSet, TrainSet
from nlbench.training.method import MetaSet, Method, TrainContext, tell_epoch
from nlbench.training.models import build_model

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
    trainer: Any  # nlbench.engine.epoch_loop.EpochTrainer, the runner's own epoch loop
    cache: Any
    start_s: list[float] = field(default_factory=list)

    def epoch(self, epoch: int) -> int:
        self.cache.invalidate()  # a fresh scan per epoch, as after every real epoch
        t0 = time.perf_counter()
        tell_epoch(self.method, epoch)  # as the runner does
        plan = self.method.start_epoch(epoch, self.cache.get)
        self.start_s.append(time.perf_counter() - t0)
        _, seen, _ = self.trainer.run(self.method, self.ctx, epoch, plan)
        return cast(int, seen)


def bench_hparams(name: str, s: BenchSettings, host: Any) -> dict[str, Any]:
    """The method's CIFAR-10 hparams for ``s.profile`` (defaults when that is unavailable),
    with the bench's model, batch size and schedule length imposed on every method."""
    mspec = host.get("methods", name)
    try:
        dspec = host.get("datasets", "cifar10")
        profile = s.profile if s.profile in dspec.profiles else sorted(dspec.profiles)[0]
        hp = resolve_hparams(
            mspec, dspec, RunConfig(method=name, dataset="cifar10", profile=profile), host
        )
    except (NlbenchError, IndexError):
        hp = {**BASE_HPARAMS, "lr": 0.02, **defaults(mspec.default_hparams)}
    hp.update(model=s.model, batch_size=s.batch_size, epochs=BENCH_EPOCHS)
    if MethodFlag.CLEAN_META in mspec.flags and not str(hp.get("meta_set") or "").startswith(
        "clean"
    ):
        hp["meta_set"] = f"clean:{s.meta_size}"
    return hp


def build_loop(
    name: str, s: BenchSettings, data: DatasetData, device: torch.device, host: Any
) -> MethodLoop:
    """Build method ``name`` through its ``MethodSpec.factory`` on the synthetic set."""
    hp = bench_hparams(name, s, host)
    cache = ScanCache()  # compute is set once the method exists
    ctx = bench_context(hp, s, data, device, host, cache)
    seed_model_init(derive_seed("init", s.seed))
    method = host.get("methods", name).factory(ctx)
    cache.compute = lambda: scan_train_set(method, ctx.train, eval_batch_size(hp, ctx.device))
    return MethodLoop(method, ctx, EpochTrainer(), cache)


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
    meta = None
    if str(hp.get("meta_set") or "").startswith("clean"):
        mgen = torch_generator(derive_seed("meta", s.seed))
        mdata = synthetic_dataset(s.meta_size, s, mgen)
        images = DeviceImages(mdata.train, data.mean, data.std, device, channels_last)
        meta = MetaSet(images, mdata.train.y.to(device), "clean", s.meta_size)
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
        seed=s.seed,
        components=host,
    )
