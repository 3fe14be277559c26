"""``nlbench bench`` on tiny settings, the interleaved timer, and the batched crop it relies on.

Timing targets live in ``benchmarks/``; these tests check shapes, bookkeeping and failure
reporting only.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, cast

import pytest
import torch
import torch.nn.functional as F
from helpers import assert_usage_error, run_cli

from nlbench.bench.legs import BenchSettings, ReferenceLoop, synthetic_dataset
from nlbench.bench.measure import interleaved, run_bench
from nlbench.core.specs import MethodSpec
from nlbench.host.plugins import get_host
from nlbench.training.data import random_crop_flip

TINY = [
    "--model",
    "tiny_cnn",
    "--steps",
    "2",
    "--repeats",
    "1",
    "--warmup",
    "0",
    "--batch-size",
    "8",
    "--image-size",
    "8",
    "--threads",
    "1",
]


def test_bench_json_has_every_installed_method(capsys):
    result = run_cli(capsys, "bench", "--json", *TINY)
    assert result.code == 0, result.err
    out = json.loads(result.out)
    assert out["model"] == "tiny_cnn" and out["device"].startswith("cpu")
    assert out["erm_images_per_s"] > 0 and out["reference_images_per_s"] > 0
    assert out["ratios"]["erm"] == 1.0
    methods = set(get_host().registry("methods").names())
    assert methods == set(out["ratios"]) | set(out["errors"])
    assert all(r > 0 for r in out["ratios"].values())
    assert out["settings"]["threads"] == 1 and out["settings"]["images"] == 16


def test_bench_table_output_and_method_selection(capsys):
    result = run_cli(capsys, "bench", *TINY, "--methods", "erm")
    assert result.code == 0, result.err
    assert "images/s" in result.out and "erm" in result.out


def test_bench_rejects_bad_settings(capsys):
    assert_usage_error(run_cli(capsys, "bench", *TINY, "--repeats", "0"), "repeats")


class _HostWith:
    """The real host plus extra method specs (so the global registry stays untouched)."""

    def __init__(self, *specs: MethodSpec) -> None:
        self.host, self.extra = get_host(), {s.name: s for s in specs}

    def get(self, kind: str, name: str):
        if kind == "methods" and name in self.extra:
            return self.extra[name]
        return self.host.get(kind, name)

    def registry(self, kind: str):
        return self.host.registry(kind)


class _FailsInStep:
    def __init__(self, ctx) -> None:
        self.ctx = ctx

    def start_epoch(self, epoch, scan):
        return None

    def epoch_batches(self, epoch, plan):
        return None

    def scheduled_optimizers(self):
        return []

    def train_step(self, batch):
        raise RuntimeError("step exploded")


def _cannot_build(ctx):
    raise ValueError("needs real data")


def test_failing_methods_are_reported_not_fatal():
    host = _HostWith(
        MethodSpec("broken_build", "x", _cannot_build),
        MethodSpec("broken_step", "x", cast(Any, _FailsInStep)),  # duck-typed Method
    )
    s = BenchSettings(
        model="tiny_cnn",
        methods=("broken_build", "broken_step"),
        steps=2,
        repeats=1,
        warmup=0,
        batch_size=8,
        image_size=8,
        threads=1,
    )
    out = run_bench(s, host=host)
    assert out["errors"] == {
        "broken_build": "ValueError: needs real data",
        "broken_step": "RuntimeError: step exploded",
    }
    assert set(out["ratios"]) == {"erm"}


def test_interleaved_rotates_order_and_skips_warmup():
    calls: list[tuple[str, int]] = []

    def leg(k: str) -> Callable[[int], int]:
        def run(epoch: int) -> int:
            calls.append((k, epoch))
            return 1

        return run

    legs = {k: leg(k) for k in "abc"}
    times = interleaved(legs, repeats=3, warmup=1, device=torch.device("cpu"), first_epoch=10)
    assert {k: len(v) for k, v in times.items()} == {"a": 3, "b": 3, "c": 3}
    rounds = [calls[i : i + 3] for i in range(0, 12, 3)]
    assert [r[0][0] for r in rounds] == ["a", "b", "c", "a"]  # each leg leads in turn
    assert [r[0][1] for r in rounds] == [10, 11, 12, 13]


def test_reference_loop_trains():
    s = BenchSettings(batch_size=16, image_size=8)
    data = synthetic_dataset(32, s, torch.Generator().manual_seed(0))
    linear = torch.nn.Linear(3 * 64, 10)
    model = torch.nn.Sequential(torch.nn.Flatten(), linear)
    hp = {"batch_size": 16, "lr": 0.1, "momentum": 0.9, "nesterov": False, "weight_decay": 0.0}
    loop = ReferenceLoop(model, data, hp, torch.device("cpu"), torch.Generator().manual_seed(1))
    before = linear.weight.detach().clone()
    assert loop.epoch(0) == 32
    assert not torch.equal(before, linear.weight)


@pytest.mark.parametrize("flip", [True, False])
def test_random_crop_flip_matches_per_sample_crops(flip):
    """Brute force: pad each image, slice its window, flip it when the mask says so."""
    x = torch.randint(0, 256, (6, 3, 5, 7), dtype=torch.uint8)
    out = random_crop_flip(x, torch.Generator().manual_seed(3), pad=2, flip=flip)
    gen = torch.Generator().manual_seed(3)
    dy, dx = (torch.randint(0, 5, (6,), generator=gen) for _ in range(2))
    mask = torch.rand(6, generator=gen) < 0.5 if flip else torch.zeros(6, dtype=torch.bool)
    padded = F.pad(x, (2, 2, 2, 2))
    for i in range(6):
        crop = padded[i, :, dy[i] : dy[i] + 5, dx[i] : dx[i] + 7]
        assert torch.equal(out[i], crop.flip(2) if mask[i] else crop)


def test_flip_policy_only_mirrors():
    """``flip`` (the CIFAR cpu profile's policy): every view is the image or its mirror."""
    from nlbench.training.data import DeviceImages, ImageSet

    x = torch.randint(0, 256, (64, 3, 5, 7), dtype=torch.uint8)
    images = DeviceImages(
        ImageSet(x, torch.zeros(64, dtype=torch.long)),
        (0.0,) * 3,
        (1 / 255,) * 3,
        torch.device("cpu"),
        channels_last=False,
    )
    out = images.augmented(torch.arange(64), "flip", torch.Generator().manual_seed(0))
    same = ((out - x.float()).abs() < 1e-3).flatten(1).all(1)
    mirrored = ((out - x.flip(3).float()).abs() < 1e-3).flatten(1).all(1)
    assert bool((same | mirrored).all()) and 0 < int(mirrored.sum()) < 64
