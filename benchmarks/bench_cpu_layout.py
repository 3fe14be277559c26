"""CPU memory format and evaluation batch: the figures behind two defaults in ``hparams.py``.

* ``channels_last``: a ``cnn_small`` training step and an inference pass at batch 128, with
  contiguous (NCHW) and channels-last tensors; ``true`` keeps channels-last CUDA-only so CPU
  records reproduce, ``always`` opts CPU in.
* ``eval_batch_size``: inference per image at batch 128 (the CPU default: the training batch)
  against 1,024 (the CUDA default).

One process, the legs interleaved round by round after a warm-up round, process CPU time
(one thread: time lost to other processes on a shared machine is not counted), medians.

Run: ``.venv/bin/python -m pytest benchmarks/bench_cpu_layout.py --benchmark-only -s``.
"""

from __future__ import annotations

import statistics
import time

import torch
import torch.nn.functional as F

from nlbench.host.plugins import get_host
from nlbench.training.models import build_model

ROUNDS, STEPS, BATCH = 6, 5, 128


def _net(channels_last: bool) -> torch.nn.Module:
    torch.manual_seed(0)
    net = build_model(get_host().registry("models"), "cnn_small", 10, 3, 32)
    return net.to(memory_format=torch.channels_last) if channels_last else net


def measure() -> dict[str, float]:
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1024, 3, 32, 32, generator=g)
    y = torch.randint(0, 10, (BATCH,), generator=g)
    legs = {}
    for cl in (False, True):
        net = _net(cl)
        xb = x[:BATCH].contiguous(memory_format=torch.channels_last) if cl else x[:BATCH]
        legs[cl] = (net, torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9), xb)
    times: dict[str, list[float]] = {
        k: [] for k in ("train", "train_cl", "eval", "eval_cl", "eval_1024")
    }

    def timed(key: str, fn, r: int) -> None:
        t0 = time.process_time()
        for _ in range(STEPS):
            fn()
        if r:  # round 0 warms caches and allocators
            times[key].append((time.process_time() - t0) / STEPS)

    for r in range(ROUNDS + 1):
        for cl in (False, True):
            net, opt, xb = legs[cl]
            suffix = "_cl" if cl else ""

            def train_step(net=net, opt=opt, xb=xb):
                net.train()
                loss = F.cross_entropy(net(xb), y)
                opt.zero_grad()
                loss.backward()
                opt.step()

            def infer(net=net, xb=xb):
                net.eval()
                with torch.no_grad():
                    net(xb)

            timed("train" + suffix, train_step, r)
            timed("eval" + suffix, infer, r)
        net = legs[False][0]

        def infer_1024(net=net):
            net.eval()
            with torch.no_grad():
                net(x)

        t0 = time.process_time()
        infer_1024()
        if r:
            times["eval_1024"].append((time.process_time() - t0) / (1024 / BATCH))
    med = {k: statistics.median(v) for k, v in times.items()}
    return {
        "train_speedup_channels_last": med["train"] / med["train_cl"],
        "eval_speedup_channels_last": med["eval"] / med["eval_cl"],
        "eval_1024_over_128_per_image": med["eval_1024"] / med["eval"],
        **{f"{k}_ms": 1000 * v for k, v in med.items()},
    }


def test_cpu_layout(benchmark):
    res = benchmark.pedantic(measure, rounds=1, iterations=1)
    print(
        f"\ncnn_small, batch {BATCH}, 1 thread, CPU time: channels-last training step "
        f"{res['train_speedup_channels_last']:.2f}x faster, inference "
        f"{res['eval_speedup_channels_last']:.2f}x faster; inference per image at batch "
        f"1,024 costs {res['eval_1024_over_128_per_image']:.2f}x batch {BATCH}'s"
    )
    benchmark.extra_info.update(res)
