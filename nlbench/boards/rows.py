"""One row per (method, variant) in a noise setting: estimates, Δ and cost vs ERM, rank group.

Rows are ordered by mean last-epoch accuracy, best first, and rank groups never contradict that
order (:func:`nlbench.boards.stats.rank_groups`). Δ and cost compare a row with the ERM
baseline at its budget (:mod:`nlbench.boards.baseline`), so ERM's own variants get them too.
"""

from __future__ import annotations

import json
from typing import Any

import pandas as pd

from nlbench.boards.baseline import baseline_part, cost_ratio, keyed
from nlbench.boards.stats import NONE, Estimate, difference, rank_groups, t_interval
from nlbench.core.config import canonical_json

DASH = "–"
Labels = dict[tuple[str, str], str]


def _union(values: pd.Series) -> str:
    return ",".join(sorted({f for v in values for f in v.split(",") if f}))


def aggregate(section: pd.DataFrame, labels: Labels | None = None) -> pd.DataFrame:
    """One row per (method, variant) of one noise setting, best mean first.

    ``labels`` names each (method, variant) (:func:`variant_labels` over a whole board, so that
    a row reads the same in every noise setting); by default the section's own.
    """
    g = section.groupby(["method", "variant"], sort=True)
    agg = g.agg(
        n=("last", "size"),
        last_mean=("last", "mean"),
        last_std=("last", "std"),
        last10=("last10", "mean"),
        best=("best", "mean"),
        realized=("realized", "mean"),
        model=("model", "first"),
        epochs=("epochs", "first"),
        budget=("budget", "first"),
        labels=("labels", lambda s: ",".join(sorted({v for v in s if v})) or DASH),
        runs=("run_id", lambda s: " ".join(sorted(v.rsplit("-", 1)[-1][:8] for v in s))),
        flags=("flags", _union),
        loss=("loss", lambda s: ",".join(sorted(set(s)))),
        meta_set=("meta_set", lambda s: ",".join(sorted({v for v in s if v}))),
        deviations=("deviations", lambda s: tuple(sorted({d for v in s for d in v}))),
    ).reset_index()
    parts = [part for _, part in g]
    agg["estimate"] = [t_interval(list(part["last"])) for part in parts]
    agg["samples"] = [keyed(part) for part in parts]
    bases = [baseline_part(section, b) for b in agg["budget"]]
    agg["baseline"] = [
        not base.empty and set(part["run_id"]) == set(base["run_id"])
        for part, base in zip(parts, bases)
    ]
    agg["delta"] = [
        NONE if is_base else _delta(part, base)
        for part, base, is_base in zip(parts, bases, agg["baseline"])
    ]
    agg["other_labels"] = [_other_labels(part, base) for part, base in zip(parts, bases)]
    costs = [cost_ratio(part, base) for part, base in zip(parts, bases)]
    agg["cost"] = [c for c, _ in costs]
    agg["cost_reason"] = [why for _, why in costs]
    own = variant_labels(agg[["method", "variant"]])
    agg["label"] = [
        (labels or {}).get((m, v), mine) for m, v, mine in zip(agg["method"], agg["variant"], own)
    ]
    key = [(-m, method, v) for m, method, v in zip(agg["last_mean"], agg["method"], agg["variant"])]
    agg = agg.iloc[sorted(range(len(key)), key=lambda i: key[i])].reset_index(drop=True)
    ranks = rank_groups(list(agg["samples"]))
    agg["rank"] = [DASH if r is None else str(r) for r in ranks]
    return agg


def _delta(part: pd.DataFrame, base: pd.DataFrame) -> Estimate:
    """The row's paired difference to the ERM baseline; none without pairs."""
    mine, theirs = keyed(part), keyed(base)
    if not (set(mine) & set(theirs)):
        return NONE
    return difference(mine, theirs)[0]


def _other_labels(part: pd.DataFrame, base: pd.DataFrame) -> bool:
    """Whether the row trained on other noisy labels than ERM's (none of its labels hashes is
    one of ERM's: a held-out clean meta set changes the training labels)."""
    if base.empty:
        return False
    return not (set(part["labels_sha"]) & set(base["labels_sha"]))


# -- labels --------------------------------------------------------------------------------------
def variant_labels(agg: pd.DataFrame) -> list[str]:
    """The method name, plus what sets a variant apart when a method has several.

    An option that is on (``true``) reads as its name (``famus · mixmatch``), one left off
    (``null``/``false``) as nothing, any other value as ``key=value``.
    """
    labels = []
    for method, variant in zip(agg["method"], agg["variant"]):
        others = [_flat(json.loads(v)) for v in agg.loc[agg["method"] == method, "variant"]]
        mine = _flat(json.loads(variant))
        keys = sorted(
            k for k in set(mine).union(*others) if any(o.get(k) != mine.get(k) for o in others)
        )
        parts = [_option(k, mine.get(k)) for k in keys]
        parts = [p for p in parts if p]
        labels.append(" · ".join([method, *parts]))
    return labels


def board_labels(df: pd.DataFrame) -> Labels:
    """:func:`variant_labels` over every (method, variant) of a board, as a lookup."""
    pairs = df[["method", "variant"]].drop_duplicates().sort_values(["method", "variant"])
    return dict(zip(zip(pairs["method"], pairs["variant"]), variant_labels(pairs)))


def _flat(v: dict[str, Any]) -> dict[str, str]:
    flat = {k: canonical_json(val) for k, val in v["hparams"].items()}
    flat["train_subset"] = canonical_json(v["train_subset"])
    return flat


def _option(key: str, value: str | None) -> str:
    if value in (None, "null", "false"):
        return ""
    if value == "true":
        return key
    shown = json.loads(value) if value.startswith('"') else value  # a string without quotes
    return f"{key}={shown}"
