"""GPU-hour estimates for a sweep, from a cost model stated in full so it can be checked.

    run seconds = epochs × (ratio[method] × erm_epoch_s + scan_s[dataset] if the method scans)

* ``ratio``: a method's epoch time over ERM's on the same model and batch. Measured by
  ``nlbench bench --json`` (or ``make gpu-check``, whose report carries the same table) and read
  with ``--ratios FILE``; otherwise :data:`DEFAULT_RATIOS`, the cost-model floors and
  measurements in ``docs/performance-anchors.md`` §1, and for the baselines the committed
  records' cost vs ERM on a board (each entry says where it comes from).
* ``erm_epoch_s``: seconds of one ERM epoch of the run's dataset and model on the GPU at hand:
  given (``--erm-epoch-s``) or the documented default of :data:`ERM_EPOCH_S`.
* ``scan_s``: on datasets whose epoch is a sample of a much larger train set (Clothing1M: 1,000
  batches of 1M images), methods that scan the whole train set every epoch (GMMs, selection,
  MW-Net's weight diagnostics) pay that scan on top of the ratio; :data:`SCAN_S`. On the other
  datasets the bench ratio already contains the scan.

GPU-hours are run seconds × GPUs per run / 3,600, summed over the runs still to do.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from nlbench.core.errors import UsageError

# method -> (epoch time / ERM epoch time, where the figure comes from)
DEFAULT_RATIOS: dict[str, tuple[float, str]] = {
    "erm": (1.0, "by definition"),
    "fl_only": (1.25, "ERM + per-epoch FL selection (goal P12: <= 0.25 epoch on a GPU)"),
    "fl_weighted": (1.25, "ERM + per-epoch FL selection (goal P12: <= 0.25 epoch on a GPU)"),
    "density_weighted": (1.25, "ERM + per-epoch density weights (as FL selection, P12)"),
    "mwnet": (
        4.4,
        "exact second-order meta step, measured 4.44x ERM (docs/performance-anchors.md §1)",
    ),
    "l2r": (
        4.3,
        "exact second-order meta step, measured 4.27x ERM (docs/performance-anchors.md §1)",
    ),
    "famus": (
        3.6,
        "two nets x 0.4x MW-Net (proxy 1.76x ERM, docs/performance-anchors.md §1) + GMM scan",
    ),
    "dividemix": (
        6.7,
        "two nets, 12|L|/N + 0.67 at |L|/N = 0.5 (docs/performance-anchors.md §1); warm-up 2x",
    ),
    # The baselines (issue #28): the "cost vs ERM" of leaderboards/digits-quick.md, i.e.
    # nlbench.boards.baseline.cost_ratio (median cpu_s per epoch over plain ERM's, 1 torch
    # thread) over the runs of both its settings (sym:0.2, sym:0.6; tiny_cnn, 30 epochs, 3 seeds
    # each): n = 6 runs against ERM's 6. CPU figures on a tiny network, where per-epoch
    # evaluation weighs more than on a GPU; cifar10-cpu has no figure (its ERM runs lack cpu_s).
    "coteaching": (1.5, "digits-quick cost vs ERM, n=6: 1.48x (sym:0.2 1.47x, sym:0.6 1.60x)"),
    "jocor": (1.6, "digits-quick cost vs ERM, n=6: 1.62x (sym:0.2 1.59x, sym:0.6 1.70x)"),
    "elr": (1.1, "digits-quick cost vs ERM, n=6: 1.07x (sym:0.2 1.16x, sym:0.6 1.06x)"),
    "forward": (
        1.6,
        (
            "digits-quick cost vs ERM, n=6, estimated T (estimator phase included): 1.57x "
            "(sym:0.2 1.64x, sym:0.6 1.51x); transition=oracle, no phase: 0.92x"
        ),
    ),
    "confident_learning": (
        2.6,
        (
            "digits-quick cost vs ERM, n=6, the 4-fold kfold phase included (cpu_s counts it): "
            "2.56x (sym:0.2 2.69x, sym:0.6 2.48x)"
        ),
    ),
}
UNKNOWN_RATIO = (5.0, "no figure for this method: assumed 5x ERM (pass --ratios)")

# (dataset, model) -> (ERM epoch seconds on one A100/H100-class GPU, bf16 autocast, derivation).
# The first entry of a dataset is its `paper` profile's model: --erm-epoch-s replaces that one
# and scales the dataset's other models by the same factor.
_RN18 = (
    "50k images; tuned CIFAR RN-18 2.09 s/epoch on A100 at bs 500 "
    "(docs/performance-anchors.md §2), bs 128 + eval"
)
_WRN = "WRN-28-10: 5.25 vs 0.56 GMACs per image (9.4x RN-18), better GPU use at that size"
_C1M = "1,000 x 32 JPEGs decoded by 8 workers (~800 img/s) + 24k val/test images"
_R32 = "ResNet-32: 0.07 GMACs per image, launch-bound: ~6 ms per batch of 128"
ERM_EPOCH_S: dict[tuple[str, str], tuple[float, str]] = {
    ("cifar10", "preact_resnet18"): (4.0, _RN18),
    ("cifar10", "wrn28_10"): (30.0, _WRN),
    ("cifar10", "resnet32"): (2.5, _R32),
    ("cifar100", "preact_resnet18"): (4.0, _RN18),
    ("cifar100", "wrn28_10"): (30.0, _WRN),
    ("cifar100", "resnet32"): (2.5, _R32),
    ("fashionmnist", "preact_resnet18"): (4.0, "60k 28x28 grey images: ~0.9x CIFAR's pixels"),
    ("fashionmnist", "resnet32"): (3.0, _R32),
    ("clothing1m", "resnet50"): (60.0, _C1M),
}
# dataset -> (seconds of one scan of the whole train set, derivation)
SCAN_S: dict[str, tuple[float, str]] = {
    "clothing1m": (600.0, "1M centre-cropped JPEGs at ~1,700 img/s (decode-bound, 8 workers)"),
}
# methods that scan the whole train set (almost) every epoch
FULL_SCAN = frozenset({"dividemix", "famus", "mwnet", "fl_only", "fl_weighted", "density_weighted"})


@dataclass(frozen=True)
class CostModel:
    """Ratios per method and, optionally, one ERM epoch time that overrides the defaults."""

    ratios: Mapping[str, float]
    ratio_source: str
    erm_epoch_s: float | None = None
    gpus_per_run: int = 1

    def ratio(self, method: str) -> float:
        if method in self.ratios:
            return float(self.ratios[method])
        return DEFAULT_RATIOS.get(method, UNKNOWN_RATIO)[0]

    def epoch_s(self, dataset: str, model: str) -> float | None:
        """ERM epoch seconds: the default, scaled when an epoch time was given."""
        known = ERM_EPOCH_S.get((dataset, model))
        if self.erm_epoch_s is None:
            return None if known is None else known[0]
        anchor = next((v[0] for (d, _m), v in ERM_EPOCH_S.items() if d == dataset), None)
        if known is None or anchor is None:
            return self.erm_epoch_s
        return known[0] * self.erm_epoch_s / anchor

    def run_s(self, method: str, dataset: str, model: str, epochs: int) -> float | None:
        """Seconds of one run, or None when no ERM epoch time is known for dataset/model."""
        erm = self.epoch_s(dataset, model)
        if erm is None:
            return None
        scan = SCAN_S.get(dataset, (0.0, ""))[0] if method in FULL_SCAN else 0.0
        return epochs * (self.ratio(method) * erm + scan)

    def describe(self) -> str:
        """One line stating the model, for the dry-run output."""
        erm = "the documented default per dataset/model (nlbench.core.costs.ERM_EPOCH_S)"
        if self.erm_epoch_s is not None:
            erm = f"{self.erm_epoch_s:g} s for each dataset's paper model (others scaled)"
        return (
            f"cost model: epochs x (ratio x ERM epoch + full-scan s on sampled-epoch sets) "
            f"x {self.gpus_per_run} GPU(s); ratios: {self.ratio_source}; ERM epoch: {erm}"
        )


def default_model(erm_epoch_s: float | None = None, gpus_per_run: int = 1) -> CostModel:
    ratios = {k: v[0] for k, v in DEFAULT_RATIOS.items()}
    return CostModel(
        ratios, "default table (nlbench.core.costs.DEFAULT_RATIOS)", erm_epoch_s, gpus_per_run
    )


def load_ratios(path: str | Path) -> dict[str, float]:
    """Read ``ratios`` from ``nlbench bench --json`` output or a gpu-check report."""
    try:
        data = json.loads(Path(path).read_text())
    except OSError as exc:
        raise UsageError(f"--ratios {path}: cannot read it ({exc.strerror})") from None
    except json.JSONDecodeError as exc:
        raise UsageError(f"--ratios {path}: not JSON ({exc.msg} at line {exc.lineno})") from None
    table = _find_ratios(data)
    if table is None:
        raise UsageError(
            f"--ratios {path}: no 'ratios' table; accepted: the output of "
            "'nlbench bench --json' or a gpu-check report"
        )
    bad = [k for k, v in table.items() if not _positive_number(v)]
    if bad:
        raise UsageError(f"--ratios {path}: ratio of {bad[0]} is not a positive number")
    return {k: float(v) for k, v in table.items()}


def _find_ratios(data: Any) -> dict[str, Any] | None:
    if not isinstance(data, dict):
        return None
    if isinstance(data.get("ratios"), dict):
        return cast(dict[str, Any], data["ratios"])
    for value in data.values():  # a gpu-check report nests the bench output
        found = _find_ratios(value) if isinstance(value, dict) else None
        if found is not None:
            return found
    return None


def _positive_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > 0


def build_model(ratios_path: str | None, erm_epoch_s: float | None, gpus: int = 1) -> CostModel:
    """The cost model for the CLI: measured ratios when a file is given, else the defaults."""
    if erm_epoch_s is not None and not (math.isfinite(erm_epoch_s) and erm_epoch_s > 0):
        raise UsageError(f"--erm-epoch-s {erm_epoch_s}: must be a positive number of seconds")
    if ratios_path is None:
        return default_model(erm_epoch_s, gpus)
    measured = load_ratios(ratios_path)
    merged = {**{k: v[0] for k, v in DEFAULT_RATIOS.items()}, **measured}
    return CostModel(merged, f"measured ({ratios_path}), defaults for the rest", erm_epoch_s, gpus)


@dataclass
class MethodEstimate:
    """Runs of one method in a sweep plan and the GPU-hours of those still to do."""

    method: str
    runs: int = 0
    done: int = 0
    gpu_h: float | None = 0.0
    longest_h: float = 0.0


def estimate(
    rows: Iterable[tuple[str, str, str, int, bool]], model: CostModel
) -> list[MethodEstimate]:
    """Per method: (method, dataset, model, epochs, finished) rows summed into estimates.

    GPU-hours count only unfinished runs; None when some run's ERM epoch time is unknown.
    """
    out: dict[str, MethodEstimate] = {}
    for method, dataset, net, epochs, finished in rows:
        est = out.setdefault(method, MethodEstimate(method))
        est.runs += 1
        est.done += int(finished)
        seconds = model.run_s(method, dataset, net, epochs)
        if seconds is None:
            est.gpu_h = None
            continue
        hours = seconds * model.gpus_per_run / 3600
        est.longest_h = max(est.longest_h, seconds / 3600)
        if est.gpu_h is not None and not finished:
            est.gpu_h += hours
    return list(out.values())
