"""One leaderboard (a dataset and profile): what it says, ranks across noise settings, a ranked
table and a figure per noise setting, the cited published numbers.

The definitions every board shares live in ``leaderboards/README.md``
(:mod:`nlbench.boards.readme`); a board keeps only what a reader needs to read it in a minute.
"""

from __future__ import annotations

import re

import pandas as pd

from nlbench.boards.figures import figure_svg, rank_svg
from nlbench.boards.published import published_table
from nlbench.boards.ranks import MIN_METHODS, MIN_SEEDS, MIN_SETTINGS, RankTest, cliques, rank_test
from nlbench.boards.records import noise_order
from nlbench.boards.render import DASH, MARKER, diff_cell, pct, section_table
from nlbench.boards.rows import aggregate, board_labels

RANK_RULE = (
    "Rows are ordered by mean last-epoch test accuracy, and *rank* groups never contradict that "
    "order: the best row leads group 1, which runs down the table to just above the first row "
    "significantly below it (paired t-test on the same seeds and noisy labels, else Welch's "
    "test; Holm-corrected over the rows below the leader; 5 %), that row leads the next group, "
    "and so on; one-seed rows are preliminary and have no rank."
)
SUMMARY_NOTE = (
    "Per noise setting, the row with the best mean last-epoch test accuracy %, its paired "
    "difference to the ERM baseline in points (mean ± 95 % interval, n = pairs of runs on the "
    "same seed and noisy labels) and how many rows share its rank."
)


def slug(text: str) -> str:
    """A file-name-safe rendering of a noise spec (``sym:0.2`` → ``sym-0.2``)."""
    return re.sub(r"[^a-z0-9.]+", "-", text.lower()).strip("-.")[:60] or "x"


def rank_figure_name(stem: str) -> str:
    return f"{stem}-ranks.svg"


def figure_names(stem: str, noises: list[str]) -> dict[str, str]:
    """``{noise: figure file name}``, unique even when two specs share a slug (or a spec's slug
    is ``ranks``, the cross-setting figure's)."""
    names: dict[str, str] = {}
    taken = {rank_figure_name(stem)}
    for noise in noises:
        base, k = f"{stem}-{slug(noise)}", 1
        while f"{base}.svg" in taken:
            k += 1
            base = f"{stem}-{slug(noise)}-{k}"
        names[noise] = f"{base}.svg"
        taken.add(names[noise])
    return names


def curve_panels(section: pd.DataFrame, agg: pd.DataFrame) -> list:
    """Test accuracy and noisy_fit per epoch for every row of ``agg`` (its labels, its order)."""
    test, fit = [], []
    for r in agg.itertuples(index=False):
        part = section[(section["method"] == r.method) & (section["variant"] == r.variant)]
        test.append((r.label, [[100 * x for x in c] for c in part["test_curve"]]))
        fit.append((r.label, [[100 * x for x in c] for c in part["fit_curve"]]))
    return [("test accuracy %", test), ("noisy_fit %", fit)]


def summary_line(noise: str, agg: pd.DataFrame) -> str:
    """``noise``: the best ranked row, its Δ vs ERM and how many rows share its rank."""
    ranked = agg[agg["rank"] != DASH]
    if ranked.empty:
        top = agg.iloc[0]
        return (
            f"- `{noise}`: one-seed rows only (preliminary); highest **{top.label}** "
            f"{pct(top.last_mean)} (n=1)."
        )
    top = ranked.iloc[0]
    if top.baseline:
        delta = "the ERM baseline itself"
    elif top.other_labels:
        delta = "no paired Δ vs ERM (trains on other labels)"
    elif not top.delta.n:
        delta = "no paired Δ vs ERM (no ERM run on the same seed and labels)"
    else:
        delta = f"Δ vs ERM {diff_cell(top.delta)}"
    shared = int((ranked["rank"] == "1").sum()) - 1
    share = f"rank 1 shared with {shared} other row(s)" if shared else "alone in rank 1"
    return f"- `{noise}`: **{top.label}** {pct(top.last_mean)} (n={top.n}), {delta}; {share}."


def rank_section(stem: str, test: RankTest | None) -> tuple[list[str], str]:
    """The cross-setting rank section and the one-line summary of it."""
    if test is None:
        why = (
            f"No cross-setting ranks: they need at least {MIN_METHODS} rows measured with "
            f"{MIN_SEEDS} or more seeds in each of at least {MIN_SETTINGS} noise settings."
        )
        return ["## Ranks across noise settings", "", why, ""], f"- {why}"
    settings = ", ".join(f"`{s}`" for s in test.settings)
    left = ", ".join(f"`{s}`" for s in test.left_out)
    stats = (
        f"Friedman χ² = {test.chi2:.2f}, p = {test.p:.3g} (k = {test.k} methods, "
        f"N = {test.n} settings); Nemenyi CD = {test.cd:.2f}"
    )
    text = (
        f"Average rank (1 = best mean last-epoch accuracy) over {settings}: the rows measured "
        f"with {MIN_SEEDS}+ seeds in each ({left or 'no setting'} left out, to keep every row "
        f"in every setting). {stats}. Rows joined by a bar are less than CD apart; with p ≥ "
        "0.05 the test finds no difference at all."
    )
    lines = [
        "## Ranks across noise settings",
        "",
        f"![{stem}: average ranks across noise settings](figures/{rank_figure_name(stem)})",
        "",
        text,
        "",
    ]
    best = f"**{test.labels[0]}** (average rank {test.mean_ranks[0]:.2f} of {test.k})"
    verdict = "the ranks differ" if test.p < 0.05 else "no difference between the ranks shown"
    return lines, f"- Across {settings}: best average rank {best}; {stats}: {verdict}."


def _intro(dataset: str, profile: str, n: int) -> list[str]:
    return [
        f"# Leaderboard: `{dataset}`, profile `{profile}`",
        "",
        MARKER,
        "",
        (
            f"Measured from {n} run record(s); regenerate with `nlbench leaderboard --results "
            "results --out leaderboards`. How to read a board (every column, test and figure): "
            "[README.md](README.md); whether the papers' claims hold on these rows: "
            "[claims.md](claims.md)."
        ),
        "",
    ]


def render_board(
    df: pd.DataFrame, published: pd.DataFrame, dataset: str, profile: str, figures: bool = True
) -> dict[str, str]:
    """The markdown of one board and its figures, as ``{path relative to --out: text}``."""
    stem = f"{dataset}-{profile}"
    noises = sorted(df["noise"].unique(), key=noise_order)
    names, labels = figure_names(stem, noises), board_labels(df)
    aggs = {noise: aggregate(df[df["noise"] == noise], labels) for noise in noises}
    test = rank_test(pd.concat([a.assign(noise=noise) for noise, a in aggs.items()]), list(noises))
    ranks_lines, ranks_summary = rank_section(stem, test)
    files: dict[str, str] = {}
    lines = [*_intro(dataset, profile, len(df)), "## What this board says", "", SUMMARY_NOTE, ""]
    lines += [summary_line(noise, aggs[noise]) for noise in noises] + [ranks_summary, ""]
    lines += [RANK_RULE, "", *ranks_lines]
    if figures and test is not None:
        title = f"{dataset}, {profile}: average rank over {test.n} noise settings, p = {test.p:.3g}"
        files[f"figures/{rank_figure_name(stem)}"] = rank_svg(
            title, test.labels, test.mean_ranks, test.cd, cliques(test)
        )
    for noise in noises:
        section = df[df["noise"] == noise]
        conventions = sorted({c for c in section["convention"] if c}) or [DASH]
        lines += [
            f"## Noise `{noise}`",
            "",
            f"Noise convention: {'; '.join(conventions)}.",
            "",
            section_table(aggs[noise]),
            f"![{stem}, {noise}: test accuracy and noisy_fit per epoch](figures/{names[noise]})",
            "",
        ]
        if figures:
            files[f"figures/{names[noise]}"] = figure_svg(
                f"{dataset}, {profile}, {noise}", curve_panels(section, aggs[noise])
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
