"""The papers' claims, checked by the records: ``nlbench/resources/claims.toml`` → claims.md.

Each claim names board cells (``method@noise``, optionally ``method[key=value,...]@noise`` to
pick runs by hparams) and a comparison:

* ``order``: every cell above every later one (a > b > c means a > b, a > c, b > c);
* ``at_least``: the first cell not below the second;
* ``fits``: every run of every cell fitted its training labels (``epochs_to_fit`` reached);
* ``grows``: the metric grows with the noise rate across the cells (Spearman's ρ);
* ``gap_grows``: cells in pairs (a, b), one pair per noise rate: the paired difference a − b
  grows with the rate (Spearman's ρ over every pair).

Verdicts: *holds*, *fails* (the data contradict the claim at the 95 % level), *not
significant* (intervals include no difference, or one seed), *not measured* (a cell has no
runs). A difference pairs runs on the same seed and noisy labels (t-interval of the pair
differences), else Welch's interval (:mod:`nlbench.boards.stats`).
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

from nlbench.boards.claim_checks import CHECKS, UNMEASURED, Cell, parse_cell
from nlbench.boards.pending import sweeps_for
from nlbench.boards.render import MARKER, pipe_table
from nlbench.errors import UsageError

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
    return Claim(**{k: c[k] for k in FIELDS}, note=c.get("note", ""))


def cell_values(df: pd.DataFrame, cell: Cell, metric: str) -> dict[tuple, float]:
    """The cell's runs as ``{(seed, labels sha256[, other hparams]): value}``.

    Without a selector a cell is one variant of the method (the one with most runs, then
    fewest options set); with one, every run whose hparams match, keyed also by the hparams
    the selector leaves free, so that pairs match on them.
    """
    if df.empty:
        return {}
    part = df[(df["method"] == cell.method) & (df["noise"] == cell.noise)]
    if part.empty:
        return {}
    hp = part["variant"].map(lambda v: json.loads(v)["hparams"])
    if cell.select:
        keep = hp.map(lambda h: all(json.dumps(h.get(k)) == v for k, v in cell.select.items()))
        part, hp = part[keep], hp[keep]
    else:
        sizes = part.groupby("variant").size()
        best = sorted(sizes.index, key=lambda v: (-sizes[v], len(json.loads(v)["hparams"]), v))[0]
        keep = part["variant"] == best
        part, hp = part[keep], hp[keep]
    rest = hp.map(  # None: an option left off, or one added after the record was made
        lambda h: json.dumps(
            {k: h[k] for k in sorted(h) if k not in cell.select and h[k] is not None}
        )
    )
    out = {}
    for seed, sha, extra, value in zip(part["seed"], part["labels_sha"], rest, part[metric]):
        key = (int(seed), str(sha), extra if cell.select else "")
        out[key] = float(value)
    return out


def evaluate(claim: Claim, frames: dict[str, pd.DataFrame]) -> tuple[str, str]:
    """(verdict, the numbers behind it) for one claim against the boards' frames."""
    df = frames.get(claim.board, pd.DataFrame())
    cells = [parse_cell(c) for c in claim.cells]
    values = [cell_values(df, c, claim.metric) for c in cells]
    return CHECKS[claim.compare](cells, values, claim.metric)


_INTRO = (
    "Each claim comes from `nlbench/resources/claims.toml` (claim, source and table, board cells, "
    "comparison) and is tested on the committed records: a difference between two cells pairs runs "
    "on the same seed and noisy labels (mean ± 95 % t-interval of the pair differences) or, "
    "without pairs, uses Welch's interval. **holds**: every comparison in the claim is significant "
    "in its direction; **fails**: one is significant against it; **not significant**: neither "
    "(including one seed, which has no interval); **not measured**: a cell has no runs yet (and "
    "the sweep file that would run it, if one asks for it). `fits` "
    "asks that every run reach 99 % train accuracy on the labels it was given; `grows` tests "
    "Spearman's ρ between the noise rate and the metric (a run that never fits counts as slower "
    "than any that does); `gap_grows` tests Spearman's ρ between the noise rate and the paired "
    "differences of its cell pairs. Boards at CPU scale test the *direction* of a claim under a "
    "small budget, not the papers' numbers."
)


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
                f"{METRICS[c.metric]}, {c.compare}",
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
            f"Verdicts: {tally}.",
            "",
            pipe_table(header, rows),
        ]
    )
