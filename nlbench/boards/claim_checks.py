"""The comparisons a claim can make, each returning (verdict, numbers)."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import combinations

from scipy import stats as st

from nlbench.boards.stats import Estimate, difference, pairs, t_interval

HOLDS, FAILS, NS, UNMEASURED = "holds", "fails", "not significant", "not measured"
CELL_RE = re.compile(r"^([a-z][a-z0-9_]*)(?:\[([^\]]*)\])?@(.+)$")
Values = dict[tuple, float]


@dataclass(frozen=True)
class Cell:
    """``method[key=value,...]@noise``: a method's runs at one noise setting."""

    method: str
    noise: str
    select: dict[str, str] = field(default_factory=dict)  # key -> JSON of the wanted value
    text: str = ""


def parse_cell(text: str) -> Cell:
    m = CELL_RE.match(text)
    if not m:
        raise ValueError(f"cell {text!r}: expected method@noise or method[key=value]@noise")
    select = {}
    for pair in filter(None, (m.group(2) or "").split(",")):
        key, _, value = pair.partition("=")
        select[key.strip()] = _json_value(value.strip())
    return Cell(m.group(1), m.group(3), select, text)


def _json_value(value: str) -> str:
    """``128`` → ``128``, ``cosine`` → ``"cosine"``, as the records' JSON writes them."""
    try:
        return json.dumps(json.loads(value))
    except ValueError:
        return json.dumps(value)


UNSCALED = ("fit_epochs", "mean_cos")  # epochs and cosines; the rest are accuracies in %


def _scale(metric: str) -> float:
    return 1.0 if metric in UNSCALED else 100.0


def _fmt(metric: str, x: float, sign: str = "") -> str:
    """Accuracies in % to 2 decimals, cosines to 3 (their differences are small)."""
    return f"{_scale(metric) * x:{sign}.{3 if metric == 'mean_cos' else 2}f}"


def _mean(values: Values, metric: str) -> str:
    e = t_interval(list(values.values()))
    return f"{_fmt(metric, e.mean)} (n={e.n})"


def _direction(d: Estimate, strict: bool) -> str:
    if not d.n:
        return UNMEASURED
    if not d.has_interval:
        return NS
    if d.high < 0:
        return FAILS
    return HOLDS if (d.low > 0 or not strict) else NS


def _combine(verdicts: list[str]) -> str:
    for v in (UNMEASURED, FAILS, NS):
        if v in verdicts:
            return v
    return HOLDS


def _no_runs(cells: list[Cell], values: list[Values]) -> str:
    return "no runs for " + ", ".join(c.text for c, v in zip(cells, values) if not v) + "."


def _pairwise(cells: list[Cell], values: list[Values], metric: str, strict: bool):
    if any(not v for v in values):
        return UNMEASURED, _no_runs(cells, values)
    verdicts, parts = [], []
    for i, j in combinations(range(len(cells)), 2):
        d, kind = difference(values[i], values[j])
        verdicts.append(_direction(d, strict))
        half = f" ± {_fmt(metric, d.half)}" if d.has_interval else ""
        parts.append(
            f"{cells[i].text} − {cells[j].text} = {_fmt(metric, d.mean, '+')}{half} "
            f"({kind}, n={d.n})"
        )
    means = "; ".join(f"{c.text} {_mean(v, metric)}" for c, v in zip(cells, values))
    return _combine(verdicts), f"{means}. {'; '.join(parts)}."


def check_order(cells, values, metric):
    return _pairwise(cells, values, metric, strict=True)


def check_at_least(cells, values, metric):
    return _pairwise(cells[:2], values[:2], metric, strict=False)


def check_fits(cells, values, metric):
    """Every run fitted: ``fit_epochs`` is a number (NaN: never reached 99 %)."""
    if any(not v for v in values):
        return UNMEASURED, _no_runs(cells, values)
    runs = [x for v in values for x in v.values()]
    fitted = [x for x in runs if not math.isnan(x)]
    verdict = HOLDS if len(fitted) == len(runs) else FAILS if not fitted else NS
    epochs = ", ".join(f"{x:.0f}" for x in fitted) or "never"
    return verdict, f"fitted in {len(fitted)}/{len(runs)} run(s) (epochs to fit: {epochs})."


def _rate(noise: str) -> float:
    try:
        return float(noise.partition(":")[2])
    except ValueError:
        return math.nan


def check_grows(cells, values, metric):
    """Spearman's ρ of the metric against the noise rate; NaN (never fitted) ranks last."""
    if any(not v for v in values):
        return UNMEASURED, _no_runs(cells, values)
    xs, ys = [], []
    for c, v in zip(cells, values):
        xs += [_rate(c.noise)] * len(v)
        ys += [math.inf if math.isnan(y) else y for y in v.values()]
    finite = [y for y in ys if math.isfinite(y)]
    ys = [y if math.isfinite(y) else max(finite, default=0.0) + 1.0 for y in ys]
    shown = "; ".join(
        f"{c.text} {', '.join('never' if math.isnan(y) else f'{y:.0f}' for y in v.values())}"
        for c, v in zip(cells, values)
    )
    if len(set(ys)) < 2 or len(xs) < 3:
        return NS, f"{shown} (n={len(xs)}: no trend to test)."
    rho, p = st.spearmanr(xs, ys)
    verdict = NS if not (p < 0.05) else HOLDS if rho > 0 else FAILS
    return verdict, f"{shown}. Spearman ρ = {rho:+.2f}, p = {p:.3f} (n={len(xs)})."


def check_gap_grows(cells, values, metric):
    """Cells in pairs (a, b) at noise rates: Spearman's ρ of the paired differences a − b
    (same seed, labels and free hparams) against the noise rate; ρ > 0: the gap grows."""
    if any(not v for v in values):
        return UNMEASURED, _no_runs(cells, values)
    xs, ys, shown = [], [], []
    for k in range(0, len(cells), 2):
        gaps = pairs(values[k], values[k + 1])
        xs += [_rate(cells[k].noise)] * len(gaps)
        ys += gaps
        listed = ", ".join(_fmt(metric, g, "+") for g in gaps) or "no pairs"
        shown.append(f"{cells[k].text} − {cells[k + 1].text}: {listed}")
    text = "; ".join(shown)
    if len(set(ys)) < 2 or len(set(xs)) < 2 or len(xs) < 3:
        return NS, f"{text} (n={len(xs)}: no trend to test)."
    rho, p = st.spearmanr(xs, ys)
    verdict = NS if not (p < 0.05) else HOLDS if rho > 0 else FAILS
    return verdict, f"{text}. Spearman ρ = {rho:+.2f}, p = {p:.3f} (n={len(xs)} pairs)."


CHECKS: dict[str, Callable] = {
    "order": check_order,
    "at_least": check_at_least,
    "fits": check_fits,
    "grows": check_grows,
    "gap_grows": check_gap_grows,
}
