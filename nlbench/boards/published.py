"""The cited published numbers (``nlbench/resources/published.csv``), never mixed with rows."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pandas as pd

from nlbench.boards.records import noise_order
from nlbench.boards.render import DASH, pipe_table
from nlbench.core.errors import UsageError

PUBLISHED_COLUMNS = [
    "dataset",
    "noise",
    "method",
    "arch",
    "metric",
    "value",
    "std",
    "citation",
    "status",
    "note",
]


def load_published(path: Path | None = None) -> pd.DataFrame:
    """The cited published numbers (``nlbench/resources/published.csv``, one row per paper
    and table)."""
    source = path or resources.files("nlbench").joinpath("resources/published.csv")
    with source.open("r", encoding="utf-8") as fh:
        df = pd.read_csv(fh, dtype=str, keep_default_na=False)
    missing = sorted(set(PUBLISHED_COLUMNS) - set(df.columns))
    if missing:
        raise UsageError(f"{source}: published table lacks column(s) {', '.join(missing)}")
    df["noise_key"] = df["noise"].map(noise_order)
    keys = ["dataset", "noise_key", "method", "arch", "metric", "citation", "value"]
    return df.sort_values(keys, kind="mergesort").reset_index(drop=True)


def published_table(published: pd.DataFrame, dataset: str) -> str:
    rows = published[published["dataset"] == dataset]
    if rows.empty:
        return f"No published numbers for `{dataset}` in `nlbench/resources/published.csv`.\n"
    body = [
        [
            r.method,
            f"`{r.noise}`",
            r.arch,
            r.metric,
            f"{r.value} ± {r.std}" if r.std else r.value,
            r.citation,
            f"[{r.status}]",
            r.note or DASH,
        ]
        for r in rows.itertuples(index=False)
    ]
    header = ["method", "noise", "arch", "metric", "value %", "citation", "status", "note"]
    return pipe_table(header, body)
