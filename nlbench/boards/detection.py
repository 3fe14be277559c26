"""The detection board (``detection.md``): how well each method that splits, selects or weights
samples tells right labels from wrong ones, scored against the true noise mask.

Every record already knows the truth: the runner scores a method's choices against the clean
labels it never shows the method (:mod:`nlbench.training.metrics`). This board reads the last epoch
of
each run: ``detection_auc`` (the AUC of the method's clean probability, where it gives one),
the precision and recall of its clean set (the epoch plan's subset, ``selected_*``, or the
samples its steps trained on, ``batch_selected_*``: the fraction of the set whose label is
right, and the fraction of right labels it kept), their F1, and ``weighted_precision`` for
methods that weight samples. ``confident_learning`` is cleanlab's own label-issue detection
(``find_label_issues`` on out-of-fold probabilities): the reference row.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import pandas as pd

from nlbench.boards.records import frame, noise_order
from nlbench.boards.render import MARKER, cell, pct, pipe_table
from nlbench.boards.rows import DASH, variant_labels

NAME = "detection.md"
REFERENCE = "confident_learning"
SOURCES = (  # (what the clean set is, its precision key, its recall key)
    ("epoch subset", "selected_precision", "selected_recall"),
    ("per-batch picks", "batch_selected_precision", "batch_selected_recall"),
)
METRICS = ("auc", "precision", "recall", "f1", "weighted")
INTRO = (
    "Per noise setting, every method that splits, selects or weights samples, scored at its "
    "last epoch against the true noise mask (mean ± std over seeds): *AUC* of its clean "
    "probability (where it gives one), *precision* (share of its clean set whose label is "
    "right), *recall* (share of the right labels it kept), *F1*, and *weighted precision* "
    "(weight-averaged, for methods that weight samples). *clean set*: the epoch plan's subset "
    "or the samples its training steps picked. The reference row is cleanlab's label-issue "
    "detection (`confident_learning`: `cleanlab.filter.find_label_issues` on out-of-fold "
    "probabilities). *keep all* is the precision of keeping every sample (1 − realized rate)."
)


def detection_facts(record: dict[str, Any]) -> dict[str, Any] | None:
    """The last epoch's detection numbers of one record; None when it selects nothing."""
    epochs = record.get("epochs") or []
    last = epochs[-1] if epochs and isinstance(epochs[-1], dict) else {}
    source, precision, recall = DASH, None, None
    for what, p_key, r_key in SOURCES:
        if last.get(p_key) is not None and last.get(r_key) is not None:
            source, precision, recall = what, float(last[p_key]), float(last[r_key])
            break
    auc, weighted = last.get("detection_auc"), last.get("weighted_precision")
    if precision is None and auc is None and weighted is None:
        return None
    f1 = None
    if precision is not None and recall is not None and precision + recall > 0:
        f1 = 2 * precision * recall / (precision + recall)
    return {
        "auc": _num(auc),
        "precision": _num(precision),
        "recall": _num(recall),
        "f1": _num(f1),
        "weighted": _num(weighted),
        "source": source,
    }


def _num(value: Any) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return math.nan
    return out if math.isfinite(out) else math.nan


def detection_frame(records: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """One row per run that selects or weights: the board's run identity plus its facts."""
    facts = {}
    kept = []
    for record in records:
        found = detection_facts(record)
        if found is not None:
            facts[str(record["run_id"])] = found
            kept.append(record)
    df = frame(kept)
    if df.empty:
        return df
    extra = pd.DataFrame([facts[r] for r in df["run_id"]], index=df.index)
    return pd.concat([df, extra], axis=1)


def _mean_std(values: pd.Series) -> str:
    values = values.dropna()
    if values.empty:
        return DASH
    if len(values) < 2:
        return pct(values.mean())
    return f"{pct(values.mean())} ± {pct(values.std())}"


def _section(part: pd.DataFrame) -> list[str]:
    g = part.groupby(["method", "variant"], sort=True)
    agg = g.agg(n=("run_id", "size"), source=("source", "first")).reset_index()
    agg["label"] = variant_labels(agg)
    rows = []
    for (method, _), runs in g:
        label = agg.loc[(agg["method"] == method) & (agg["variant"] == _), "label"].iloc[0]
        if method == REFERENCE:
            label += " (reference: cleanlab)"
        cells = [_mean_std(runs[m]) for m in METRICS]
        f1 = runs["f1"].mean()
        key = (method != REFERENCE, -(f1 if not math.isnan(f1) else -1), label)
        rows.append((key, [cell(label), str(len(runs)), *cells, str(runs["source"].iloc[0])]))
    header = ["method", "n", "AUC", "precision", "recall", "F1", "weighted precision"]
    table = pipe_table([*header, "clean set"], [r for _, r in sorted(rows, key=lambda t: t[0])])
    keep_all = 1 - part["realized"].mean()
    return [f"keep all: precision {pct(keep_all)}, recall 100.00.", "", table]


def render_detection(records: Iterable[dict[str, Any]]) -> dict[str, str]:
    """``{"detection.md": text}``; empty when no record selects or weights samples."""
    df = detection_frame(records)
    if df.empty:
        return {}
    lines = ["# Detection: who finds the wrong labels", "", MARKER, "", INTRO, ""]
    for (dataset, profile), board in df.groupby(["dataset", "profile"], sort=True):
        lines += [f"## `{dataset}`, profile `{profile}`", ""]
        for noise in sorted(board["noise"].unique(), key=noise_order):
            lines += [f"### Noise `{noise}`", "", *_section(board[board["noise"] == noise])]
    return {NAME: "\n".join(lines).rstrip("\n") + "\n"}
