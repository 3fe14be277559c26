"""The ERM baseline: the one rule boards and claims use to pick the runs a row is compared with.

A board's *Δ vs ERM* and *cost vs ERM* and a claim's ``erm@noise`` cell all mean the same runs:
method ``erm`` with its default loss (``loss`` unset or ``ce``), at the same budget (model,
epochs and train subset) as the row; pairs then match on seed and noisy labels (labels sha256).
When several such ERM variants exist (an ``lr`` sweep, say), the one with most runs is the
baseline, then the one with fewest options set, then the first in canonical order. Variant rows
of ERM itself (``erm · loss=gce``) are compared with it like any other method.
"""

from __future__ import annotations

import json
import math
import statistics

import pandas as pd

BASELINE = "erm"
DEFAULT_LOSSES = (None, "ce")  # cross-entropy: the loss ERM means
Keyed = dict[tuple, float]


def is_plain_erm(method: str, variant: str) -> bool:
    """Whether a (method, variant) is ERM with its default loss."""
    return method == BASELINE and json.loads(variant)["hparams"].get("loss") in DEFAULT_LOSSES


def variant_order(sizes: pd.Series) -> list[str]:
    """Variants best first: most runs, then fewest options set, then canonical JSON order."""
    return sorted(sizes.index, key=lambda v: (-sizes[v], len(json.loads(v)["hparams"]), v))


def baseline_variant(section: pd.DataFrame, budget: str | None = None) -> str | None:
    """The variant (canonical JSON) of the ERM baseline in ``section``; None without one.

    ``budget`` (model, epochs and train subset, as :func:`nlbench.boards.records.row` writes it)
    restricts it to runs of that budget; None takes the best variant at any budget.
    """
    if section.empty:
        return None
    erm = section[section["method"] == BASELINE]
    if budget is not None:
        erm = erm[erm["budget"] == budget]
    plain = erm[[is_plain_erm(BASELINE, v) for v in erm["variant"]]]
    if plain.empty:
        return None
    return variant_order(plain.groupby("variant", sort=True).size())[0]


def baseline_part(section: pd.DataFrame, budget: str | None = None) -> pd.DataFrame:
    """The ERM baseline's runs in ``section`` (empty without one)."""
    variant = baseline_variant(section, budget)
    if variant is None:
        return section.iloc[0:0]
    return section[(section["method"] == BASELINE) & (section["variant"] == variant)]


def keyed(part: pd.DataFrame, column: str = "last") -> Keyed:
    """``{(seed, labels sha256): value}``: the key runs pair on (a run that records no labels
    hash is keyed by its run_id instead, so it pairs with nothing)."""
    return {
        (int(s), str(h) if h else f"run {r}"): float(v)
        for s, h, r, v in zip(part["seed"], part["labels_sha"], part["run_id"], part[column])
    }


def baseline_runs(section: pd.DataFrame, budget: str) -> Keyed:
    """The ERM baseline runs a row of ``budget`` is paired with, keyed by seed and labels."""
    return keyed(baseline_part(section, budget))


# -- cost ----------------------------------------------------------------------------------------
def cpu_per_epoch(part: pd.DataFrame) -> list[float]:
    """``cpu_s`` / epochs of each run (NaN where a run has no ``cpu_s``)."""
    return [c / e if e > 0 else math.nan for c, e in zip(part["cpu"], part["epochs"])]


def cost_ratio(part: pd.DataFrame, base: pd.DataFrame) -> tuple[float, str]:
    """Median CPU seconds per epoch of ``part`` over that of the ERM baseline ``base``.

    CPU time, not wall-clock time: other jobs on a shared machine stretch a run's wall-clock
    time but not the CPU time its own process used. Returns ``(ratio, "")``, or ``(nan,
    reason)`` when the ratio would compare unlike things: no baseline, a run without ``cpu_s``
    (records made before it was recorded), or runs with different torch thread counts (more
    threads spend more CPU time on the same work).
    """
    if base.empty:
        return math.nan, "no ERM baseline (plain `erm`) at this noise setting, model and epochs"
    both = pd.concat([part, base])
    if both["cpu"].isna().any():
        return math.nan, (
            "a run of this row or of the ERM baseline lacks `cpu_s` (recorded before nlbench "
            "measured CPU time), and wall-clock time measures the machine's load"
        )
    threads = sorted(set(both["threads"]))
    if len(threads) > 1 or threads[0] <= 0:
        return math.nan, (
            "this row's runs and the ERM baseline's ran with different or unknown torch thread "
            "counts (`env.threads`)"
        )
    mine, theirs = statistics.median(cpu_per_epoch(part)), statistics.median(cpu_per_epoch(base))
    if not theirs > 0:
        return math.nan, "ERM's runs record no CPU time"
    return mine / theirs, ""
