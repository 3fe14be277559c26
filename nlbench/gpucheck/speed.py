"""ERM through nlbench's epoch path against a plain PyTorch loop, per training setting.

Each variant builds both legs on the same synthetic CIFAR-shaped data and the same initial
weights (:mod:`nlbench.bench.measure`), with the same bf16 autocast, memory format and compilation,
and
times them interleaved; ``nlbench_vs_plain`` is the plain loop's epoch time over nlbench's (1.0:
no overhead; the project's goal is >= 0.95, docs/performance-anchors.md goal P1).
"""

from __future__ import annotations

import statistics
from typing import Any

import torch
import torch.nn.functional as F

from nlbench.bench.legs import (
    BenchSettings,
    MethodLoop,
    ReferenceLoop,
    bench_context,
    bench_hparams,
    synthetic_dataset,
)
from nlbench.bench.measure import interleaved, run_bench
from nlbench.core.hparams import eval_batch_size, use_channels_last
from nlbench.core.seeding import derive_seed, seed_model_init, torch_generator
from nlbench.engine.context import ScanCache, scan_train_set
from nlbench.engine.epoch_loop import EpochTrainer
from nlbench.engine.prepare import resolve_device
from nlbench.gpucheck.settings import CheckSettings
from nlbench.host.plugins import get_host
from nlbench.training.data import DatasetData

VARIANTS: dict[str, dict[str, Any]] = {
    "default": {},
    "no_amp": {"amp": False},
    "no_channels_last": {"channels_last": False},
    "compile": {"compile": True},
}


class PlainLoop(ReferenceLoop):
    """The hand-written loop with the same autocast and memory format as the nlbench leg."""

    def __init__(
        self,
        model: torch.nn.Module,
        data: DatasetData,
        hp: dict[str, Any],
        device: torch.device,
        gen: torch.Generator,
        amp: bool,
        channels_last: bool,
    ) -> None:
        super().__init__(model, data, hp, device, gen)
        self.amp, self.channels_last = amp, channels_last

    def batch_loss(self, idx: torch.Tensor) -> torch.Tensor:
        x = (self.crop_flip(self.x[idx]).float() / 255.0 - self.mean) / self.std
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(self.device.type, torch.bfloat16, enabled=self.amp):
            out = self.model(x)
        return F.cross_entropy(out.float(), self.y[idx])


def bench_settings(s: CheckSettings, methods: tuple[str, ...] | None = None) -> BenchSettings:
    return BenchSettings(
        model=s.model,
        device=s.device,
        methods=methods,
        batch_size=s.bench_batch,
        steps=s.bench_steps,
        repeats=s.bench_repeats,
        warmup=s.bench_warmup,
        image_size=s.image_size,
    )


def _legs(
    bs: BenchSettings,
    data: DatasetData,
    device: torch.device,
    host: Any,
    overrides: dict[str, Any],
) -> tuple[MethodLoop, PlainLoop, dict[str, Any]]:
    """The nlbench ERM leg and the matching plain loop, from the same initial weights."""
    compile_ = bool(overrides.get("compile"))
    hp = {
        **bench_hparams("erm", bs, host),
        **{k: v for k, v in overrides.items() if k != "compile"},
    }
    cache = ScanCache()  # its compute is set once the method exists (below)
    ctx = bench_context(hp, bs, data, device, host, cache)
    make = ctx.build_model
    if compile_:
        ctx.build_model = lambda: _compiled(make())
    seed_model_init(derive_seed("init", bs.seed))
    method = host.get("methods", "erm").factory(ctx)
    cache.compute = lambda: scan_train_set(method, ctx.train, eval_batch_size(hp, device))
    plain_net = make()
    plain_net.load_state_dict(method.networks()["net"].state_dict())
    amp = bool(hp.get("amp")) and device.type == "cuda"
    gen = torch_generator(derive_seed("ref", bs.seed), device)
    plain = PlainLoop(
        plain_net if not compile_ else _compiled(plain_net),
        data,
        hp,
        device,
        gen,
        amp,
        use_channels_last(hp, device),
    )
    settings = {"amp": amp, "channels_last": use_channels_last(hp, device), "compile": compile_}
    return MethodLoop(method, ctx, EpochTrainer(), cache), plain, settings


def _compiled(net: torch.nn.Module) -> torch.nn.Module:
    net.compile()  # in place, as the runner's --compile does
    return net


def run_speed(s: CheckSettings) -> dict[str, Any]:
    """Every variant's images/s for both legs and their ratio; compile is skipped in --tiny."""
    host, device = get_host(), resolve_device(s.device)
    bs = bench_settings(s)
    data = synthetic_dataset(bs.steps * bs.batch_size, bs, torch_generator(bs.seed))
    out: dict[str, Any] = {"model": s.model, "images_per_epoch": len(data.train), "variants": {}}
    for name, overrides in VARIANTS.items():
        if overrides.get("compile") and not s.compile:
            out["variants"][name] = {"skipped": "torch.compile is not timed in --tiny"}
            continue
        try:
            erm, plain, settings = _legs(bs, data, device, host, overrides)
            times = interleaved(
                {"nlbench": erm.epoch, "plain": plain.epoch}, bs.repeats, bs.warmup, device
            )
        except Exception as exc:  # noqa: BLE001 - one broken variant is reported, not fatal
            out["variants"][name] = {"error": f"{type(exc).__name__}: {exc}"}
            continue
        med = {k: statistics.median(v) for k, v in times.items()}
        n = len(data.train)
        out["variants"][name] = {
            **settings,
            "nlbench_images_per_s": n / med["nlbench"],
            "plain_images_per_s": n / med["plain"],
            "nlbench_vs_plain": med["plain"] / med["nlbench"],
        }
    out["ok"] = not any("error" in v for v in out["variants"].values())
    return out


def run_method_ratios(s: CheckSettings) -> dict[str, Any]:
    """``nlbench bench`` for the costly methods: their epoch time over ERM's."""
    result = run_bench(bench_settings(s, s.ratio_methods))
    result["ok"] = not result["errors"] and all(r > 0 for r in result["ratios"].values())
    return result
