"""The papers' claims, checked by the records: ``nlbench/resources/claims.toml`` → claims.md.

Each claim names board cells (``method@noise``, optionally ``method[key=value,...]@noise`` to
pick runs by hparams) and a comparison:

* ``order``: every cell above every later one (a > b > c means a > b, a > c, b > c);
* ``at_least``: the first cell no worse than the second by more than the claim's ``margin``
  (non-inferiority; the margin is stated in the table and printed on the page);
* ``fits``: every run of every cell fitted its training labels (``epochs_to_fit`` reached);
* ``grows``: the metric grows with the noise rate across the cells (Spearman's ρ);
* ``gap_grows``: cells in pairs (a, b), one pair per noise rate: the paired difference a − b
  grows with the rate (Spearman's ρ over every pair).

Verdicts: *holds*, *fails*, *inconclusive*, *not measured*; ``claim_checks.RULES`` says how
each comparison reaches them. A difference pairs runs on the same seed and noisy labels
(t-interval of the pair differences), else Welch's interval (:mod:`nlbench.boards.stats`). A
cell ``erm@noise`` is the ERM baseline the boards use (:mod:`nlbench.boards.baseline`), at the
budget of the claim's other cells, so a claim's difference and a board's Δ are one number.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

from nlbench.boards.baseline import BASELINE, baseline_part, variant_order
from nlbench.boards.claim_checks import CHECKS, RULES, UNMEASURED, Cell, parse_cell
from nlbench.boards.pending import sweeps_for
from nlbench.boards.render import MARKER, pipe_table
from nlbench.core.errors import UsageError

FIELDS = ("id", "claim", "source", "board", "metric", "compare", "cells")
METRICS = {
    "last": "last-epoch test acc %",
    "final_train": "final train acc on given labels %",
    "fit_epochs": "epochs to fit",
    "final_fit": "final noisy_fit %",
    "mean_cos": "clean·all gradient cosine, mean over epochs",
}


@dataclass(frozen=True)
class Claim:
    id: str
    claim: str
    source: str
    board: str
    metric: str
    compare: str
    cells: tuple[str, ...]
    note: str = ""
    margin: float | None = None  # at_least only: in the metric's shown unit (points for accuracy)


def load_claims(path: Path | None = None) -> list[Claim]:
    """The committed, cited claims table (one ``[[claim]]`` each), validated."""
    source = path or resources.files("nlbench").joinpath("resources/claims.toml")
    try:
        with source.open("rb") as fh:
            raw = tomllib.load(fh).get("claim", [])
        claims = [_claim(c) for c in raw]
    except (tomllib.TOMLDecodeError, TypeError, KeyError, ValueError) as exc:
        raise UsageError(f"{source}: not a valid claims table ({exc})") from None
    ids = [c.id for c in claims]
    if len(set(ids)) != len(ids):
        raise UsageError(f"{source}: claim ids must be unique")
    return claims


def _claim(c: dict[str, Any]) -> Claim:
    missing = [f for f in FIELDS if f not in c]
    if missing:
        raise ValueError(f"claim {c.get('id', '?')} lacks {', '.join(missing)}")
    if c["compare"] not in CHECKS or c["metric"] not in METRICS:
        raise ValueError(
            f"claim {c['id']}: compare must be one of {', '.join(CHECKS)} and "
            f"metric one of {', '.join(METRICS)}"
        )
    for cell in c["cells"]:
        parse_cell(cell)
    if c["compare"] == "gap_grows" and (len(c["cells"]) % 2 or not c["cells"]):
        raise ValueError(f"claim {c['id']}: gap_grows takes cells in pairs (a, b), one per rate")
    return Claim(**{k: c[k] for k in FIELDS}, note=c.get("note", ""), margin=_margin(c))


def _margin(c: dict[str, Any]) -> float | None:
    """An ``at_least`` claim's non-inferiority margin: required there, refused elsewhere."""
    margin = c.get("margin")
    if c["compare"] != "at_least":
        if margin is not None:
            raise ValueError(f"claim {c['id']}: margin applies only to compare = at_least")
        return None
    if not isinstance(margin, (int, float)) or isinstance(margin, bool) or not 0 <= margin < 1e300:
        raise ValueError(
            f"claim {c['id']}: at_least needs margin = a number >= 0 (the largest deficit that "
            "still counts as at least as good, in points for accuracies)"
        )
    return float(margin)


def cell_part(df: pd.DataFrame, cell: Cell, budget: str | None = None) -> pd.DataFrame:
    """The cell's runs: with a selector every run whose hparams match; ``erm@noise`` the ERM
    baseline (at ``budget`` when given); any other cell the method's variant with most runs,
    then fewest options set."""
    if df.empty:
        return df
    part = df[(df["method"] == cell.method) & (df["noise"] == cell.noise)]
    if part.empty:
        return part
    if cell.select:
        hp = part["variant"].map(lambda v: json.loads(v)["hparams"])
        keep = hp.map(lambda h: all(json.dumps(h.get(k)) == v for k, v in cell.select.items()))
        return part[keep]
    if cell.method == BASELINE:
        return baseline_part(part, budget)
    best = variant_order(part.groupby("variant", sort=True).size())[0]
    return part[part["variant"] == best]


def cell_values(
    df: pd.DataFrame, cell: Cell, metric: str, budget: str | None = None
) -> dict[tuple, float]:
    """The cell's runs as ``{(seed, labels sha256[, other hparams]): value}``; with a selector
    keyed also by the hparams it leaves free, so that pairs match on them."""
    part = cell_part(df, cell, budget)
    if part.empty:
        return {}
    hp = part["variant"].map(lambda v: json.loads(v)["hparams"])
    rest = hp.map(  # None: an option left off, or one added after the record was made
        lambda h: json.dumps(
            {k: h[k] for k in sorted(h) if k not in cell.select and h[k] is not None}
        )
    )
    out = {}
    for seed, sha, run, extra, value in zip(
        part["seed"], part["labels_sha"], part["run_id"], rest, part[metric]
    ):
        key = (int(seed), str(sha) if sha else f"run {run}", extra if cell.select else "")
        out[key] = float(value)
    return out


def claim_budget(df: pd.DataFrame, cells: list[Cell]) -> str | None:
    """The budget (model, epochs, subset) of the claim's first cell with runs that is not
    ``erm@noise``: its ERM baseline is taken at that budget, as a board's is."""
    for cell in cells:
        if cell.method == BASELINE and not cell.select:
            continue
        part = cell_part(df, cell)
        if not part.empty:
            return str(part["budget"].iloc[0])
    return None


def evaluate(claim: Claim, frames: dict[str, pd.DataFrame]) -> tuple[str, str]:
    """(verdict, the numbers behind it) for one claim against the boards' frames."""
    df = frames.get(claim.board, pd.DataFrame())
    cells = [parse_cell(c) for c in claim.cells]
    budget = claim_budget(df, cells)
    values = [cell_values(df, c, claim.metric, budget) for c in cells]
    return CHECKS[claim.compare](cells, values, claim.metric, margin=claim.margin or 0.0)


_INTRO = (
    "Each claim comes from `nlbench/resources/claims.toml` (claim, source and table, board cells, "
    "comparison, and for `at_least` its margin) and is tested on the committed records: a "
    "difference between two cells pairs runs on the same seed and noisy labels (mean ± 95 % "
    "t-interval of the pair differences) or, without pairs, uses Welch's interval. A cell "
    "`erm@noise` is the boards' ERM baseline (plain `erm`, default loss, the other cells' model, "
    "epochs and train subset), so a difference here equals the board's Δ vs ERM for the same "
    "cells. Boards at CPU scale test the *direction* of a claim under a small budget, not the "
    "papers' numbers."
)


def legend() -> list[str]:
    """How each comparison reaches each verdict (the same four words for all of them)."""
    rows = [[f"`{compare}`", *rule] for compare, rule in RULES.items()]
    return [
        (
            "How a verdict is decided (**not measured**: a cell has no runs yet; the sweep file "
            "that would run it is named when one asks for it):"
        ),
        "",
        pipe_table(
            ["comparison", "**holds** when", "**fails** when", "**inconclusive** when"], rows
        ),
    ]


def _how_to_measure(claim: Claim, frames: dict[str, pd.DataFrame], sweeps: Path | None) -> str:
    """For a claim not measured yet: the sweep files that would fill its empty cells."""
    df = frames.get(claim.board, pd.DataFrame())
    empty = [c for c in map(parse_cell, claim.cells) if not cell_values(df, c, claim.metric)]
    files = sorted(
        {f for c in empty for f in sweeps_for(sweeps, claim.board, c.method, c.noise, c.select)}
    )
    if files:
        return (
            " Filled by: "
            + ", ".join(f"`nlbench sweep -c leaderboards/sweeps/{f}`" for f in files)
            + "."
        )
    return " No sweep file asks for these cells yet." if sweeps is not None else ""


def _margin_text(c: Claim) -> str:
    if c.margin is None:
        return ""
    unit = "" if c.metric in ("fit_epochs", "mean_cos") else " points"
    return f" (margin {c.margin:.2f}{unit})"


def render_claims(
    claims: list[Claim], frames: dict[str, pd.DataFrame], sweeps: Path | None = None
) -> str:
    """claims.md: one row per claim with its verdict, numbers and n; with ``sweeps`` (the sweep
    files' folder) a claim not measured yet names the sweep files that would measure it."""
    rows: list[list[str]] = []
    counts: dict[str, int] = {}
    for c in claims:
        verdict, numbers = evaluate(c, frames)
        if verdict == UNMEASURED:
            numbers += _how_to_measure(c, frames, sweeps)
        counts[verdict] = counts.get(verdict, 0) + 1
        link = f"[{c.board}]({c.board}.md)"
        rows.append(
            [
                c.id,
                c.claim,
                c.source,
                link,
                f"{METRICS[c.metric]}, {c.compare}" + _margin_text(c),
                f"**{verdict}**",
                numbers + (f" {c.note}" if c.note else ""),
            ]
        )
    tally = ", ".join(f"{k}: {counts[k]}" for k in sorted(counts)) or "no claims"
    header = ["id", "claim", "source", "board", "metric, test", "verdict", "numbers (n)"]
    return "\n".join(
        [
            "# The papers' claims, checked by the records",
            "",
            MARKER,
            "",
            _INTRO,
            "",
            *legend(),
            f"Verdicts: {tally}.",
            "",
            pipe_table(header, rows),
        ]
    )
