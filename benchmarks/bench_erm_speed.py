"""ERM epoch throughput: nlbench against a minimal hand-written PyTorch loop (docs/performance-anchors.md, P1).

Same model (``cnn_small``), same synthetic CIFAR-shaped uint8 data in memory (10k train, 2k
test images), same batch size (128), same on-device crop/flip, threads fixed; both legs in one
process, interleaved epoch by epoch after a warm-up, median of the timed epochs. Target:
nlbench ≥ 0.95× the minimal loop on CPU.

Two measurements:

* ``train``: one training epoch through the runner's own path (``TrainSet.batches``,
  ``SingleNetMethod.train_step``, per-step LR schedule, device-side metric sums) against the
  minimal loop's training epoch (``nlbench.bench.measure``).
* ``full``: whole epochs of ``Runner.run`` (training, the train-set scan behind
  noisy_fit/clean_fit, test evaluation, record and checkpoint) against the minimal loop's
  training epoch plus a test-set evaluation, the reference loop run from the runner's
  ``epoch_end`` callback so the legs alternate.

Run: ``make bench`` or ``.venv/bin/python -m pytest benchmarks/bench_erm_speed.py
--benchmark-only -s``. Environment: ``NLBENCH_BENCH_IMAGES`` (10000), ``NLBENCH_BENCH_THREADS``
(2), ``NLBENCH_BENCH_REPEATS`` (5), ``NLBENCH_BENCH_DEVICE`` (cpu).
"""

from __future__ import annotations

import math
import os
import statistics
import time
from typing import Any

import torch

from nlbench.bench.legs import BenchSettings, ReferenceLoop, synthetic_dataset
from nlbench.bench.measure import fixed_threads, run_bench
from nlbench.core.config import RunConfig
from nlbench.core.specs import DatasetSpec
from nlbench.engine.runner import NullProgress, Runner
from nlbench.host.plugins import get_host

TARGET = 0.95
IMAGES = int(os.environ.get("NLBENCH_BENCH_IMAGES", "10000"))
THREADS = int(os.environ.get("NLBENCH_BENCH_THREADS", "2"))
REPEATS = int(os.environ.get("NLBENCH_BENCH_REPEATS", "5"))
DEVICE = os.environ.get("NLBENCH_BENCH_DEVICE", "cpu")
BATCH = 128


def _report(name: str, ratio: float, nl: float, ref: float, benchmark) -> None:
    benchmark.extra_info.update(
        {
            "ratio": ratio,
            "nlbench_images_per_s": nl,
            "reference_images_per_s": ref,
            "threads": THREADS,
        }
    )
    print(
        f"\n[{name}] nlbench {nl:.0f} images/s, minimal loop {ref:.0f} images/s: "
        f"ratio {ratio:.3f} (target >= {TARGET}), {THREADS} threads"
    )


def test_erm_train_epoch_vs_minimal_loop(benchmark):
    s = BenchSettings(
        model="cnn_small",
        device=DEVICE,
        methods=(),
        batch_size=BATCH,
        steps=math.ceil(IMAGES / BATCH),
        repeats=REPEATS,
        warmup=1,
        threads=THREADS,
    )
    out = benchmark.pedantic(run_bench, args=(s,), rounds=1, iterations=1)
    ratio = out["erm_vs_reference"]
    _report("train", ratio, out["erm_images_per_s"], out["reference_images_per_s"], benchmark)
    assert ratio >= TARGET


# -- whole runner epochs -------------------------------------------------------------------
class _Host:
    """The real plugin host plus one in-memory synthetic dataset (no registry change)."""

    def __init__(self, spec: DatasetSpec) -> None:
        self._host, self._spec = get_host(), spec

    def __getattr__(self, name: str) -> Any:
        return getattr(self._host, name)

    def get(self, kind: str, name: str) -> Any:
        if kind == "datasets" and name == self._spec.name:
            return self._spec
        return self._host.get(kind, name)


class _Alternate(NullProgress):
    """Times each runner epoch (from the previous ``epoch_end`` to this one), then runs one
    reference epoch (train + test evaluation) before handing back to the runner."""

    def __init__(self, reference: ReferenceLoop, test: Any) -> None:
        self.reference, self.test = reference, test
        self.nl: list[float] = []
        self.ref: list[float] = []
        self.mark = time.perf_counter()

    def epoch_end(self, epoch: int, metrics: dict[str, Any]) -> None:
        self.nl.append(time.perf_counter() - self.mark)
        t0 = time.perf_counter()
        self.reference.epoch(epoch)
        _evaluate(self.reference, self.test)
        self.ref.append(time.perf_counter() - t0)
        self.mark = time.perf_counter()


@torch.no_grad()
def _evaluate(loop: ReferenceLoop, test: Any) -> float:
    loop.model.eval()
    x, y = test.x.to(loop.device), test.y.to(loop.device)
    correct = torch.zeros((), device=loop.device)
    for start in range(0, len(y), 1024):
        xb = (x[start : start + 1024].float() / 255.0 - loop.mean) / loop.std
        correct += (loop.model(xb).argmax(1) == y[start : start + 1024]).sum()
    return float(correct) / len(y)


def _full_epochs(tmp_path) -> tuple[list[float], list[float]]:
    s = BenchSettings(model="cnn_small", batch_size=BATCH)
    data = synthetic_dataset(IMAGES + IMAGES // 5, s, torch.Generator().manual_seed(0))
    data.test, data.train = (
        data.train.take(range(IMAGES, len(data.train))),
        data.train.take(range(IMAGES)),
    )
    profile = {"model": "cnn_small", "epochs": REPEATS + 1, "batch_size": BATCH, "lr": 0.05}
    spec = DatasetSpec(
        "bench_synthetic",
        "synthetic CIFAR-shaped",
        lambda req: data,
        10,
        3,
        32,
        profiles={"quick": profile},
    )
    host = _Host(spec)
    hp = {"batch_size": BATCH, "lr": 0.05, "momentum": 0.9, "nesterov": False, "weight_decay": 5e-4}
    net = host.get("models", "cnn_small").factory(num_classes=10, in_chans=3, image_size=32)
    ref = ReferenceLoop(
        net.to(DEVICE),
        data,
        hp,
        torch.device(DEVICE),
        torch.Generator(device=DEVICE).manual_seed(1),
    )
    progress = _Alternate(ref, data.test)
    cfg = RunConfig(method="erm", dataset=spec.name, device=DEVICE, out=str(tmp_path))
    Runner(cfg, progress, host=host).run()
    return progress.nl[1:], progress.ref[1:]  # the first epoch is the warm-up


def test_erm_full_epoch_vs_minimal_loop(benchmark, tmp_path):
    with fixed_threads(THREADS):
        nl, ref = benchmark.pedantic(_full_epochs, args=(tmp_path,), rounds=1, iterations=1)
    nl_s, ref_s = statistics.median(nl), statistics.median(ref)
    _report("full", ref_s / nl_s, IMAGES / nl_s, IMAGES / ref_s, benchmark)
    assert ref_s / nl_s >= TARGET
