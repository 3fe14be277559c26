"""The comparisons a claim can make, each returning (verdict, numbers).

Every comparison speaks the same four words: *holds* (the data support the claim at 95 %),
*fails* (they contradict it at 95 %), *inconclusive* (neither: an interval that straddles the
bound, a trend test with p ≥ 0.05, one seed) and *not measured* (a cell has no runs).
:data:`RULES` says, per comparison, how each is decided; claims.md prints it as its legend.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import combinations

from scipy import stats as st

from nlbench.boards.stats import Estimate, difference, pairs, t_interval

HOLDS, FAILS, NS, UNMEASURED = "holds", "fails", "inconclusive", "not measured"
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


def _against(d: Estimate, bound: float) -> str:
    """A difference against ``bound``: holds when its 95 % interval lies above the bound, fails
    when it lies below, inconclusive otherwise (also with one pair: no interval)."""
    if not d.n:
        return UNMEASURED
    if not d.has_interval:
        return NS
    if d.low > bound:
        return HOLDS
    return FAILS if d.high < bound else NS


def _combine(verdicts: list[str]) -> str:
    for v in (UNMEASURED, FAILS, NS):
        if v in verdicts:
            return v
    return HOLDS


def _no_runs(cells: list[Cell], values: list[Values]) -> str:
    return "no runs for " + ", ".join(c.text for c, v in zip(cells, values) if not v) + "."


def _pairwise(
    cells: list[Cell], values: list[Values], metric: str, bound: float = 0.0
) -> tuple[str, str]:
    if any(not v for v in values):
        return UNMEASURED, _no_runs(cells, values)
    verdicts, parts = [], []
    for i, j in combinations(range(len(cells)), 2):
        d, kind = difference(values[i], values[j])
        verdicts.append(_against(d, bound))
        half = f" ± {_fmt(metric, d.half)}" if d.has_interval else ""
        parts.append(
            f"{cells[i].text} − {cells[j].text} = {_fmt(metric, d.mean, '+')}{half} "
            f"({kind}, n={d.n})"
        )
    means = "; ".join(f"{c.text} {_mean(v, metric)}" for c, v in zip(cells, values))
    return _combine(verdicts), f"{means}. {'; '.join(parts)}."


def check_order(
    cells: list[Cell], values: list[Values], metric: str, margin: float = 0.0
) -> tuple[str, str]:
    """a > b > …: every pairwise difference's interval above 0."""
    return _pairwise(cells, values, metric)


def check_at_least(
    cells: list[Cell], values: list[Values], metric: str, margin: float = 0.0
) -> tuple[str, str]:
    """a at least as good as b (non-inferiority): the interval of a − b above −margin (margin in
    the metric's shown unit: points for accuracies)."""
    verdict, numbers = _pairwise(cells[:2], values[:2], metric, -margin / _scale(metric))
    if verdict == UNMEASURED:
        return verdict, numbers
    d, _ = difference(values[0], values[1])
    where = "difference has no interval (one pair)"
    if d.has_interval:
        where = f"difference's interval [{_fmt(metric, d.low, '+')}, {_fmt(metric, d.high, '+')}]"
    bound = _fmt(metric, -margin / _scale(metric), "+")
    return verdict, f"{numbers} The {where} against −margin ({bound})."


def check_fits(
    cells: list[Cell], values: list[Values], metric: str, margin: float = 0.0
) -> tuple[str, str]:
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


def check_grows(
    cells: list[Cell], values: list[Values], metric: str, margin: float = 0.0
) -> tuple[str, str]:
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


def check_gap_grows(
    cells: list[Cell], values: list[Values], metric: str, margin: float = 0.0
) -> tuple[str, str]:
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


_NO_INTERVAL = "the interval straddles the bound, or one pair only (no interval)"
RULES = {  # comparison: (holds when, fails when, inconclusive when)
    "order": (
        "every pairwise difference (a − b for a listed before b) has its 95 % interval above 0",
        "some pairwise difference has its interval below 0",
        f"otherwise: {_NO_INTERVAL}",
    ),
    "at_least": (
        (
            "the 95 % interval of a − b lies above −margin (a is no worse than b by more than the "
            "margin)"
        ),
        "the interval lies below −margin (a is worse than b by more than the margin)",
        f"otherwise: {_NO_INTERVAL}",
    ),
    "fits": (
        "every run reached 99 % train accuracy on the labels it was given",
        "no run did",
        "otherwise: some runs did, some did not",
    ),
    "grows": (
        (
            "Spearman's ρ between the noise rate and the metric is positive with p < 0.05 (a run "
            "that never fits counts as slower than any that does)"
        ),
        "ρ is negative with p < 0.05",
        "otherwise: p ≥ 0.05, or too few runs or rates to test a trend",
    ),
    "gap_grows": (
        (
            "Spearman's ρ between the noise rate and the paired differences of the cell pairs is "
            "positive with p < 0.05"
        ),
        "ρ is negative with p < 0.05",
        "otherwise: p ≥ 0.05, or too few pairs or rates to test a trend",
    ),
}

CHECKS: dict[str, Callable[..., tuple[str, str]]] = {
    "order": check_order,
    "at_least": check_at_least,
    "fits": check_fits,
    "grows": check_grows,
    "gap_grows": check_gap_grows,
}
