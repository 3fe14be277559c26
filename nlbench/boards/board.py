"""One leaderboard (a dataset and profile): intro, a ranked table and a figure per noise setting."""

from __future__ import annotations

import re

import pandas as pd

from nlbench.boards.figures import figure_svg
from nlbench.boards.published import published_table
from nlbench.boards.records import noise_order
from nlbench.boards.render import DASH, MARKER, aggregate, section_table

INTRO = (
    "Per noise setting, rows are ranked by last-epoch test accuracy (mean ± sample std over n "
    "seeds). *95 % CI* is the Student-t interval over seeds, mean ± t(0.975, n−1)·s/√n, shown "
    "clipped to [0, 100] (with 3 seeds a wide spread reaches past 100 %, which no accuracy can; "
    "clipping changes no rank group); one seed "
    "has no interval (shown as – (n=1)). *rank* is a rank group: the best row and every row whose "
    "interval overlaps the best row's share rank 1, the best of the rest leads the next group, and"
    " so on (competition ranking: 1, 1, 3); a row with one seed cannot be placed and shows – (such"
    " rows follow the ranked ones). Overlapping intervals are a conservative test; *Δ vs ERM "
    "(paired)* is the sharper one: the mean difference to the `erm` run on the same seed and the "
    "same noisy labels (same labels sha256, same model, epochs and train subset) with the "
    "t-interval of the per-pair differences, n = number of pairs; – when there are no pairs "
    "(methods that hold out a clean meta set train on other labels). *last-10* is the mean of the "
    'last 10 epochs (DivideMix\'s "Last"); *best* is the maximum over epochs, an **oracle** that '
    "peeks at the test set. *cost vs ERM* is the shortest time among the row's runs divided by "
    "the shortest among the `erm` runs in the same table with the same model, epochs and train "
    "subset (– when there are none): CPU time (`cpu_s`) when all of those runs record it, else "
    "wall-clock time. Runs share a machine with other jobs, which only ever slow a run down, so "
    "the fastest run is the closest to the method's own cost (the reasoning of `timeit`); only "
    "comparable within one machine. *notes* name a loss other"
    " than cross-entropy and a run's deviations from the official code. *realized noise* is the "
    "measured fraction of wrong labels; *labels sha256* is the start of the noisy labels' hash "
    "(same hash, same labels); *runs* are the hash part of the run_ids behind the row "
    "(`results/**/<method>-<dataset>-<hash>/run.json`). A method with several variants reads as "
    "the options that set a variant apart (`famus · mixmatch`)."
)
FLAGS = (
    "Flags: *clean meta data* (uses trusted clean samples), *two-net ensemble* (tests "
    "the sum of two networks), *noise-tuned hparams* (settings chosen knowing the noise)."
)
FIGURE_NOTE = (
    "Figures: test accuracy and `noisy_fit` (the share of wrongly labelled training "
    "images the network predicts with their wrong label: memorisation) per epoch, "
    "the mean over seeds as a line and the min–max over seeds as a band."
)


def slug(text: str) -> str:
    """A file-name-safe rendering of a noise spec (``sym:0.2`` → ``sym-0.2``)."""
    return re.sub(r"[^a-z0-9.]+", "-", text.lower()).strip("-.")[:60] or "x"


def figure_names(stem: str, noises: list[str]) -> dict[str, str]:
    """``{noise: figure file name}``, unique even when two specs share a slug."""
    names: dict[str, str] = {}
    for noise in noises:
        base, k = f"{stem}-{slug(noise)}", 1
        while f"{base}.svg" in names.values():
            k += 1
            base = f"{stem}-{slug(noise)}-{k}"
        names[noise] = f"{base}.svg"
    return names


def curve_panels(section: pd.DataFrame, agg: pd.DataFrame) -> list:
    """Test accuracy and noisy_fit per epoch for every row of ``agg`` (its labels, its order)."""
    test, fit = [], []
    for r in agg.itertuples(index=False):
        part = section[(section["method"] == r.method) & (section["variant"] == r.variant)]
        test.append((r.label, [[100 * x for x in c] for c in part["test_curve"]]))
        fit.append((r.label, [[100 * x for x in c] for c in part["fit_curve"]]))
    return [("test accuracy %", test), ("noisy_fit %", fit)]


def render_board(
    df: pd.DataFrame, published: pd.DataFrame, dataset: str, profile: str, figures: bool = True
) -> dict[str, str]:
    """The markdown of one board and its figures, as ``{path relative to --out: text}``."""
    stem = f"{dataset}-{profile}"
    noises = sorted(df["noise"].unique(), key=noise_order)
    names = figure_names(stem, noises)
    files: dict[str, str] = {}
    lines = [
        f"# Leaderboard: `{dataset}`, profile `{profile}`",
        "",
        MARKER,
        "",
        f"Measured from {len(df)} run record(s); regenerate with `nlbench leaderboard "
        "--results results --out leaderboards`. " + INTRO,
        "",
        FLAGS,
        "",
        FIGURE_NOTE,
        "",
        "Whether the papers' claims hold on these rows: [claims.md](claims.md).",
        "",
    ]
    for noise in noises:
        section = df[df["noise"] == noise]
        agg = aggregate(section)
        conventions = sorted({c for c in section["convention"] if c}) or [DASH]
        lines += [
            f"## Noise `{noise}`",
            "",
            f"Noise convention: {'; '.join(conventions)}.",
            "",
            section_table(agg),
            f"![{stem}, {noise}: test accuracy and noisy_fit per epoch](figures/{names[noise]})",
            "",
        ]
        if figures:
            files[f"figures/{names[noise]}"] = figure_svg(
                f"{dataset}, {profile}, {noise}", curve_panels(section, agg)
            )
    lines += [
        "## Published numbers (cited, not measured here)",
        "",
        (
            "From the papers' own settings (architectures and budgets differ from the rows above; "
            "never compare them as one ranking). Noise is written in nlbench terms: `sym_incl` is "
            "the papers' draw over all C classes. [V] checked against a primary source, [R] as "
            "remembered from the paper."
        ),
        "",
        published_table(published, dataset),
    ]
    files[f"{stem}.md"] = "\n".join(lines)
    return files
