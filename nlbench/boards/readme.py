"""``leaderboards/README.md``: the definitions every board shares, written once.

Generated with the boards (so ``--check`` keeps it and its list of boards true); each board
links to it instead of repeating it.
"""

from __future__ import annotations

from nlbench.boards.baseline import BASELINE
from nlbench.boards.render import MARKER

COLUMNS = [
    (
        "rank",
        (
            "A rank group (competition ranking: 1, 1, 3). Rows are ordered by mean last-epoch "
            "accuracy; the best row leads group 1, which runs down the table to just above the "
            "first row significantly below the leader (a paired t-test over the runs on the same "
            "seed and noisy labels when at least two pairs exist, else Welch's t-test; "
            "Holm-corrected over every row below the leader; 5 %). That row leads the next group, "
            "tested the same way against the rows below it. So a rank never improves as the mean "
            "falls. A one-seed row has no rank (–): it is preliminary."
        ),
    ),
    (
        "method",
        (
            "The method, plus the options that set a variant apart when a method has several "
            "(`famus · mixmatch`, `erm · loss=gce · q=0.7`). Tags: *baseline* (the ERM runs every "
            "row is compared with), *other labels* (see below), *1 seed: preliminary* (italic; a "
            "mean of one run, no interval, no rank). A superscript points to the numbered notes "
            "under the table: a loss the label does not name, deviations from the official code, "
            "why a cost is missing."
        ),
    ),
    ("last % (mean ± std)", "Last-epoch test accuracy: mean ± sample std over the row's seeds."),
    (
        "95 % CI",
        (
            "The Student-t interval over seeds, mean ± t(0.975, n−1)·s/√n, shown clipped to "
            "[0, 100] (with 3 seeds a wide spread reaches past 100 %, which no accuracy can); one "
            "seed has no interval (– (n=1))."
        ),
    ),
    ("n", "Seeds (runs) behind the row."),
    (
        "Δ vs ERM (paired)",
        (
            "The mean difference to the ERM baseline's run on the same seed and the same noisy "
            "labels (same labels sha256), in points, ± the 95 % t-interval of the per-pair "
            "differences; n = pairs. – when nothing pairs (a row that trains on other labels)."
        ),
    ),
    ("last-10 %", 'Mean test accuracy over the last 10 epochs (DivideMix\'s "Last").'),
    ("best % (oracle)", "The maximum over epochs: an **oracle** that peeks at the test set."),
    (
        "cost vs ERM",
        (
            "Median CPU seconds per epoch of the row's runs over that of the ERM baseline's runs "
            "(`cpu_s` / epochs; same model, epochs and train subset). CPU time, not wall-clock "
            "time: other jobs on a shared machine stretch a run's wall-clock time, not the CPU "
            "time of its own process. – with a note when any of those runs lacks `cpu_s` (records "
            "made before it was recorded) or their torch thread counts differ (`env.threads` in "
            "the record)."
        ),
    ),
    (
        "flags",
        (
            "*clean meta data* (uses trusted clean samples), *two-net ensemble* (tests the sum of "
            "two networks), *noise-tuned hparams* (settings chosen knowing the noise)."
        ),
    ),
]

SECTIONS = [
    (
        "The ERM baseline",
        (
            f"Every comparison with ERM, on the boards (Δ, cost) and on the claims page (a cell "
            f"`{BASELINE}@noise`), uses the same runs: method `{BASELINE}` with its default loss "
            "(cross-entropy: `loss` unset or `ce`) at the row's model, epochs and train subset; "
            "pairs match on seed and noisy labels. When several such ERM variants exist, the one "
            "with most runs, then fewest options set. ERM's own variants (`erm · loss=gce`) are "
            "rows compared with it like any method (`nlbench/boards/baseline.py`)."
        ),
    ),
    (
        "Rows that train on other labels",
        (
            "A method that holds out a clean meta set (`mwnet`, `l2r` with `meta_set=clean:N`) "
            "trains on the remaining images, so its noisy training labels differ from ERM's: it is "
            "tagged *other labels*, has no paired Δ, and its mean is not a like-for-like "
            "comparison with the rows trained on all the noisy labels."
        ),
    ),
    (
        "What this board says",
        (
            "The top of each board: per noise setting, the best ranked row, its Δ vs ERM and how "
            "many rows share rank 1, and the best average rank across settings with Friedman's p."
        ),
    ),
    (
        "Ranks across noise settings",
        (
            "Average ranks over a board's noise settings as benchmark papers report them (Demšar, "
            '"Statistical comparisons of classifiers over multiple data sets", JMLR 2006): within '
            "each setting the rows are ranked by mean last-epoch accuracy (ties share the average "
            "rank), the ranks are averaged, and Friedman's test (scipy) gives the p-value that the"
            " average ranks differ only by chance. Nemenyi's critical difference CD = "
            "q₀.₀₅·√(k(k+1)/6N) is the gap two average ranks need to differ at 5 %; the diagram "
            "joins rows less than CD apart with a bar (read it only when p < 0.05). Both tests "
            "need every row in every setting, so the figure uses the largest such block of rows "
            "measured with 2 or more seeds (most cells, then most settings) and names the settings"
            " left out."
        ),
    ),
    (
        "Per-setting figures",
        (
            "Test accuracy and `noisy_fit` (the share of wrongly labelled training images the "
            "network predicts with their wrong label: memorisation) per epoch, the mean over seeds "
            "as a line and the min–max over seeds as a band."
        ),
    ),
    (
        "Runs behind each row",
        (
            "Folded under each table: model, epochs, *realized noise* (the measured fraction of "
            "wrong labels), *labels sha256* (the start of the noisy labels' hash: same hash, same "
            "labels) and *runs* (the hash part of the run_ids, "
            "`results/**/<method>-<dataset>-<hash>/run.json`)."
        ),
    ),
    (
        "Figures and `--check`",
        (
            "Every SVG starts with the SHA-256 of the data it draws and of the code that draws "
            "it; `nlbench leaderboard --check` compares that hash, not the bytes, so a new "
            "matplotlib release neither fails the check nor rewrites a figure whose data did not "
            "change."
        ),
    ),
]


def render_readme(boards: list[str]) -> str:
    """README.md linking every generated board (``name.md`` paths relative to --out)."""
    lines = [
        "# How to read the leaderboards",
        "",
        MARKER,
        "",
        "Boards: " + (", ".join(f"[{b[:-3]}]({b})" for b in boards) or "none yet") + ". "
        "Whether the papers' claims hold on them: [claims.md](claims.md) (its own legend says "
        "how each verdict is decided). Regenerate everything with `nlbench leaderboard "
        "--results results --out leaderboards`.",
        "",
        "## Columns of a board's table",
        "",
        *(f"- **{name}**: {text}" for name, text in COLUMNS),
        "",
    ]
    for title, text in SECTIONS:
        lines += [f"## {title}", "", text, ""]
    return "\n".join(lines)
