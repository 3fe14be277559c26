"""What the GPU check runs: the full settings (one modern GPU, ~8 minutes) and ``--tiny`` (CPU)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass


@dataclass(frozen=True)
class CheckSettings:
    """Sizes of every section; :func:`full` and :func:`tiny` are the two used."""

    tiny: bool
    device: str
    model: str  # ERM-vs-plain-loop and method-ratio model
    bench_batch: int
    bench_steps: int
    bench_repeats: int
    bench_warmup: int
    image_size: int
    ratio_methods: tuple[str, ...]
    compile: bool
    epochs_subset: int  # CIFAR-10 train images for the two-epoch runs
    epochs_model: str | None  # None: each method's paper model
    synthetic_train: int  # size of the synthetic CIFAR-10 when the real one is absent
    synthetic_test: int
    meta_set: str | None  # overrides the clean meta set (the tiny subset is too small)
    ddp_dataset: str
    ddp_subset: int
    ddp_procs: int | None  # None: one per visible GPU, at least one

    @property
    def extra_sets(self) -> dict[str, object]:
        """Overrides for the two-epoch runs (tiny: fit a few hundred images quickly)."""
        out: dict[str, object] = {}
        if self.tiny:
            out.update(batch_size=32, eval_batch_size=64)
        return out


RATIO_METHODS = ("mwnet", "l2r", "famus", "dividemix")


def full(device: str = "cuda") -> CheckSettings:
    return CheckSettings(
        tiny=False,
        device=device,
        model="preact_resnet18",
        bench_batch=128,
        bench_steps=40,
        bench_repeats=5,
        bench_warmup=2,
        image_size=32,
        ratio_methods=RATIO_METHODS,
        compile=True,
        epochs_subset=5000,
        epochs_model=None,
        synthetic_train=50000,
        synthetic_test=10000,
        meta_set=None,
        ddp_dataset="cifar10",
        ddp_subset=5000,
        ddp_procs=None,
    )


def tiny(device: str = "cpu") -> CheckSettings:
    """The full check at CPU scale: the same legs, a few steps of a tiny model."""
    return dataclasses.replace(
        full(device),
        tiny=True,
        model="tiny_cnn",
        bench_batch=8,
        bench_steps=2,
        bench_repeats=1,
        bench_warmup=0,
        image_size=8,
        compile=False,  # compiling takes minutes on a CPU; the leg is reported as skipped
        epochs_subset=120,
        epochs_model="tiny_cnn",
        synthetic_train=250,
        synthetic_test=100,
        meta_set="clean:30",
        ddp_dataset="digits",
        ddp_subset=128,
        ddp_procs=2,
    )
