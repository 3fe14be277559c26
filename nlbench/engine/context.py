"""Building a method the way the runner does: its :class:`TrainContext` and the train-set scan.

Public so that tests and plugin authors (:mod:`nlbench.testing`) get exactly the runner's
context without touching its internals.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from nlbench.core.errors import UsageError
from nlbench.core.hparams import eval_batch_size, train_augment, use_channels_last
from nlbench.core.run_facts import noise_setting
from nlbench.core.seeding import derive_seed, torch_generator
from nlbench.engine.prepare import Prepared
from nlbench.training import distributed
from nlbench.training.data import DeviceImages, TrainSet
from nlbench.training.method import MetaSet, Method, Scan, TrainContext
from nlbench.training.models import build_model, features_and_logits


class ScanCache:
    """The train-set scan of the current weights, computed at most once per epoch."""

    def __init__(self, compute: Callable[[], Scan] | None = None) -> None:
        self.compute = compute
        self._scan: Scan | None = None
        self.calls = 0  # how often anyone asked (the runner tells whether the method did)

    def get(self) -> Scan:
        self.calls += 1
        if self._scan is None:
            if self.compute is None:
                raise RuntimeError("ScanCache.get() before a compute function was set")
            self._scan = self.compute()
        return self._scan

    def invalidate(self) -> None:
        self._scan = None


def _train_set(
    prep: Prepared,
    device: torch.device,
    gen: torch.Generator,
    channels_last: bool,
    dist: distributed.DistInfo,
) -> Any:
    hp, data, noisy = prep.hparams, prep.data, torch.from_numpy(prep.noisy)
    if data.stream is None:
        shard = (dist.rank, dist.world)
        bs = int(hp["batch_size"])
        return TrainSet(
            data.train, noisy, data, device, bs, gen, channels_last, shard, train_augment(hp)
        )
    if train_augment(hp) not in (None, data.augment):  # streamed sets bring their own loader
        raise UsageError(
            f"augment={hp['augment']!r} is not available for the streamed dataset "
            f"'{prep.cfg.dataset}'; it decodes with {data.augment!r}. Accepted: {data.augment!r}."
        )
    return data.stream.train_set(noisy, device, int(hp["batch_size"]), gen, hp)


def _model_factory(
    prep: Prepared, device: torch.device, registry: Any, channels_last: bool, dist: Any
) -> Callable[[], torch.nn.Module]:
    """``ctx.build_model``: the run's network, on its device and memory format (compiled and
    DDP-wrapped when the run says)."""
    hp, spec = prep.hparams, prep.dataset_spec

    def make() -> torch.nn.Module:
        net = build_model(
            registry,
            hp["model"],
            prep.data.num_classes,
            spec.in_chans,
            spec.image_size,
            dropout=hp.get("dropout"),
            pretrained=hp.get("pretrained"),
        ).to(device)
        if channels_last:
            net = net.to(memory_format=torch.channels_last)
        if prep.cfg.compile:
            net.compile()  # in place: state_dict keys stay those of the eager module
        return distributed.wrap(net, dist, device)

    return make


def build_context(
    prep: Prepared,
    device: torch.device,
    scan: Callable[[], Scan],
    host: Any,
    dist: Any = distributed.SINGLE,
) -> TrainContext:
    """The run's TrainContext: train set, model factory, optimiser settings, meta set.

    ``host`` is the plugin host the run resolved its names in: the models come from it and
    ``ctx.components`` is it, so a method resolves its loss (or selector) where the run did.
    """
    hp, data, cfg = prep.hparams, prep.data, prep.cfg
    gen = torch_generator(derive_seed("data", cfg.seed), device)
    channels_last = use_channels_last(hp, device)
    train = _train_set(prep, device, gen, channels_last, dist)
    meta = None
    if prep.meta is not None:
        meta_images = DeviceImages(prep.meta, data.mean, data.std, device, channels_last)
        meta = MetaSet(meta_images, prep.meta.y.to(device), "clean", len(prep.meta))
    amp = torch.bfloat16 if hp.get("amp") and device.type == "cuda" else None
    return TrainContext(
        hparams=hp,
        num_classes=data.num_classes,
        in_chans=prep.dataset_spec.in_chans,
        image_size=prep.dataset_spec.image_size,
        device=device,
        train=train,
        epochs=int(hp["epochs"]),
        steps_per_epoch=train.num_batches(),
        build_model=_model_factory(prep, device, host.registry("models"), channels_last, dist),
        gen=gen,
        scan=scan,
        meta=meta,
        amp_dtype=amp,
        dataset=prep.dataset_spec.name,
        noise_type=prep.noise_spec.type,
        noise=noise_setting(prep.noise_spec, prep.dataset_spec),
        seed=cfg.seed,
        components=host,
        # clean→noisy counts: only for methods flagged oracle_noise (forward's oracle T)
        noise_transition=prep.noise.get("transition_matrix"),
    )


@torch.no_grad()
def scan_train_set(
    method: Method,
    train: Any,
    eval_bs: int,
    dist: Any = distributed.SINGLE,
    index: torch.Tensor | None = None,
) -> Scan:
    """Per-network loss/logits (and features if asked) over the train set, eval mode.

    Under DDP each rank scans its shard and the rows are all-gathered. With ``index`` only
    those samples are scanned (rows in that order), by every rank alike.
    """
    losses, logits, feats = {}, {}, {}
    lo, hi = distributed.shard_range(len(train), dist)
    if index is not None:
        lo, hi = 0, len(train)
    for name, net in method.networks().items():
        net = distributed.unwrap(net)
        net.eval()
        parts: list[tuple[torch.Tensor, torch.Tensor | None]] = []
        chunks = train.scan_batches(eval_bs) if index is None else index.split(eval_bs)
        for idx in chunks:
            idx = idx[(idx >= lo) & (idx < hi)]
            if idx.numel() == 0:
                continue
            x = train.plain(idx)
            with method.ctx.autocast():
                if method.needs_features:
                    f, out = features_and_logits(net, x)
                else:
                    f, out = None, net(x)
            parts.append((out.float(), None if f is None else f.float()))
        gather = lambda t: distributed.gather_rows(t, len(train), dist)  # noqa: E731
        if index is not None:
            gather = lambda t: t  # noqa: E731 - every rank scanned the whole subset
        logits[name] = gather(torch.cat([p[0] for p in parts]))
        labels = train.labels if index is None else train.labels[index]
        losses[name] = F.cross_entropy(logits[name], labels, reduction="none")
        if method.needs_features:
            feats[name] = gather(torch.cat([f for _, f in parts if f is not None]))
    return Scan(losses, logits, feats)


def build_method(
    prep: Prepared, device: torch.device, host: Any, dist: Any = distributed.SINGLE
) -> tuple[Method, TrainContext, ScanCache]:
    """The run's method built on its context, with the scan cache its ``ctx.scan`` reads."""
    cache = ScanCache()
    ctx = build_context(prep, device, cache.get, host, dist)
    method = prep.method_spec.factory(ctx)
    scan_bs = eval_batch_size(prep.hparams, ctx.device)
    cache.compute = lambda: scan_train_set(method, ctx.train, scan_bs, dist)
    return method, ctx, cache
