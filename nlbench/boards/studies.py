"""Study boards (``leaderboards/studies/<name>.md``) from ``results/studies-<name>/``.

A study reproduces a source report's headline experiment; its board is a table per setting and
a figure, read against the report's findings (checked in claims.md). The kind of study comes
from the name's start (``memorisation-…``, ``batch-schedule-…``); any other name gets the
plain per-noise tables.
"""

from __future__ import annotations

import math

import pandas as pd

from nlbench.boards.board import figure_names
from nlbench.boards.figures import Curves, figure_svg
from nlbench.boards.records import noise_order
from nlbench.boards.render import DASH, MARKER, mean_std, pct, pipe_table, section_table
from nlbench.boards.rows import aggregate, board_labels

MEMO = (
    'Zhang et al. (2017), "Understanding deep learning requires rethinking generalization", '
    "as reproduced in two reports (a course project: WRN on CIFAR-10/100, corruption 0, 0.5, "
    "1; Clevorn et al., EPFL 2024: small Inception/AlexNet/MLP, random labels, shuffled and "
    "random pixels, Gaussian inputs, time to overfit against corruption): a network fits "
    "random labels, and the time it takes grows with the share of corrupted labels, while "
    "test accuracy falls to chance. Here: ERM, label corruption `random_labels:P` (a label is "
    "replaced by a uniform class with probability P, so it may keep its class) and the input "
    "corruptions. As in Zhang et al. §2.1, an input corruption changes the whole data set: "
    "`shuffled_pixels` applies one pixel permutation to the training and the test images, "
    "`random_pixels` a fresh permutation to every image, `gaussian` replaces every image by "
    "noise with the training set's per-channel mean and std, so *final test acc* is measured on "
    "corrupted test images. Until noise version 2 the test images stayed natural, where a "
    "network trained on permuted pixels scores near chance: that read as a failure to "
    "generalise and was an artefact; those cells were re-run. *epochs to fit* is the first "
    "epoch at which train accuracy on the given labels reaches 99 %."
)
BATCH = (
    "The label-noise optimisation study (Rajagopal et al., ETH Zürich): uniform noise that "
    "may keep the true class (`sym_incl`), constant, cosine and one-cycle learning-rate "
    "schedules, and two diagnostics per epoch: train accuracy on the noisy examples "
    "(`noisy_fit`, memorisation) and the cosine between the mean gradient of the clean "
    "examples and that of all examples (`--set diagnostics=true`). Its findings: label noise "
    "turns the gradient away from the noise-free direction; larger batches overfit the noisy "
    "labels more; the best batch size shrinks as noise grows; the batch-size-to-lr ratio does "
    "not predict generalization under noise and scheduling. The report fixes a schedule's "
    "length in optimizer steps for every batch size (5,000 steps in 64 epochs) and then holds "
    "the learning rate at its end value, so a small batch ends its schedule in fewer epochs; "
    "rows *over N steps* follow that protocol (`schedule_steps`), the others stretch the "
    "schedule over the run's epochs, where a small batch takes 8× the steps of a large one at "
    "every point of the schedule."
)


SPREAD = (
    "Each cell is the mean ± sample std over the row's n seeds (the mean alone for one run); "
    "the figures draw the mean over seeds as a line and the min–max over seeds as a band."
)

INPUT_NOISE = ("shuffled_pixels", "random_pixels", "gaussian")  # Clevorn et al.'s order


def corruption_order(spec: str) -> tuple:
    """Label corruptions by rate first, then the input corruptions in the reports' order."""
    kind = spec.partition(":")[0]
    return (
        kind in INPUT_NOISE,
        INPUT_NOISE.index(kind) if kind in INPUT_NOISE else 0,
        noise_order(spec),
    )


def _ms(values: pd.Series) -> str:
    """Mean ± sample std over the seeds in % (the mean alone for one run)."""
    x = values.dropna()
    return mean_std(x.mean(), x.std(ddof=1), len(x)) if len(x) else DASH


def _fit_cell(values: pd.Series, budget: int) -> str:
    fitted = pd.Series([v for v in values if not math.isnan(v)], dtype=float)
    if fitted.empty:
        return f"never in {budget}"
    text = f"{fitted.mean():.1f}"
    if len(fitted) > 1:
        text += f" ± {fitted.std(ddof=1):.1f}"
    return text if len(fitted) == len(values) else f"{text} ({len(fitted)}/{len(values)} fitted)"


def memorisation(name: str, df: pd.DataFrame) -> tuple[list[str], list]:
    """Table per corruption and the fit/test curves, one series per corruption."""
    rows, train, test = [], [], []
    for noise in sorted(df["noise"].unique(), key=corruption_order):
        part = df[df["noise"] == noise]
        rows.append(
            [
                f"`{noise}`",
                str(len(part)),
                _fit_cell(part["fit_epochs"], part["epochs"].max()),
                _ms(part["final_train"]),
                _ms(part["last"]),
                _ms(part["best"]),
                pct(part["realized"].mean(), 1),
                " ".join(sorted(r.rsplit("-", 1)[-1][:8] for r in part["run_id"])),
            ]
        )
        train.append((noise, [[100 * x for x in c] for c in part["train_fit_curve"]]))
        test.append((noise, [[100 * x for x in c] for c in part["test_curve"]]))
    header = [
        "corruption",
        "n",
        "epochs to fit",
        "final train acc on given labels %",
        "final test acc %",
        "best test acc % (oracle)",
        "realized noise %",
        "runs",
    ]
    panels = [("train accuracy on the given labels %", train), ("test accuracy %", test)]
    return [MEMO, "", SPREAD, "", pipe_table(header, rows)], [("curves", panels)]


def batch_schedule(name: str, df: pd.DataFrame) -> tuple[list[str], list]:
    """One row per (noise, batch size, schedule); one figure per noise setting with the test
    accuracy, noisy_fit and gradient-cosine curves of its batch size × schedule cells."""
    rows: list[list[str]] = []
    figures: dict[str, dict[str, list[tuple[str, Curves]]]] = {}
    groups = df.groupby(["noise", "batch_size", "scheduler", "schedule_steps"], sort=True)
    for (noise, bs, sched, steps), part in sorted(
        groups, key=lambda g: (noise_order(g[0][0]), g[0])
    ):
        sched = f"{sched} over {steps} steps" if steps else sched
        label = f"batch {bs} · {sched}"
        rows.append(
            [
                f"`{noise}`",
                str(bs),
                sched,
                str(len(part)),
                _ms(part["last"]),
                _ms(part["best"]),
                _ms(part["final_fit"]),
                _cos(part["cos_curve"]),
                _ms(part["final_train"]),
            ]
        )
        series = figures.setdefault(
            noise, {"test accuracy %": [], "noisy_fit %": [], "cos(clean, all) gradient": []}
        )
        series["test accuracy %"].append(
            (label, [[100 * x for x in c] for c in part["test_curve"]])
        )
        series["noisy_fit %"].append((label, [[100 * x for x in c] for c in part["fit_curve"]]))
        series["cos(clean, all) gradient"].append((label, [list(c) for c in part["cos_curve"]]))
    header = [
        "noise",
        "batch size",
        "schedule",
        "n",
        "last test acc %",
        "best test acc % (oracle)",
        "final noisy_fit %",
        "grad cos clean·all (first → last epoch)",
        "final train acc on given labels %",
    ]
    return [BATCH, "", SPREAD, "", pipe_table(header, rows)], [
        (noise, list(series.items())) for noise, series in figures.items()
    ]


def _cos(curves: pd.Series) -> str:
    firsts = [c[0] for c in curves if c and not math.isnan(c[0])]
    lasts = [c[-1] for c in curves if c and not math.isnan(c[-1])]
    if not lasts:
        return DASH + " (diagnostics off)"
    return f"{sum(firsts) / len(firsts):.3f} → {sum(lasts) / len(lasts):.3f}"


def plain(name: str, df: pd.DataFrame) -> tuple[list[str], list]:
    lines, labels = [], board_labels(df)
    for noise in sorted(df["noise"].unique(), key=noise_order):
        agg = aggregate(df[df["noise"] == noise], labels)
        lines += [f"## Noise `{noise}`", "", section_table(agg)]
    return lines, []


KINDS = {"memorisation": memorisation, "batch-schedule": batch_schedule}


def _intro(name: str) -> str:
    kind = next((k for k in KINDS if name.startswith(k)), "")
    return {"memorisation": MEMO, "batch-schedule": BATCH}.get(kind, "")


def render_unmeasured(name: str) -> str:
    """``studies/<name>.md`` for a study that a sweep file asks for and no record holds yet:
    what it will show, and (appended by the caller) the command that runs it."""
    lines = [
        f"# Study: {name}",
        "",
        MARKER,
        "",
        (
            f"No run record under `results/studies-{name}/` yet: nothing is measured here. "
            "The cells below list what its sweep file asks for and the command that runs them; "
            "regenerate with `nlbench leaderboard --results results --out leaderboards`. "
            "Whether the findings hold: [claims.md](../claims.md) (*not measured* until then)."
        ),
        "",
    ]
    intro = _intro(name)
    return "\n".join([*lines, intro, ""] if intro else lines)


def render_study(name: str, df: pd.DataFrame, figures: bool = True) -> dict[str, str]:
    """``studies/<name>.md`` and its figure, as ``{path relative to --out: text}``."""
    kind = next((k for k in KINDS if name.startswith(k)), "")
    body, figs = KINDS.get(kind, plain)(name, df)
    datasets = ", ".join(f"`{d}`/`{p}`" for d, p in sorted(set(zip(df["dataset"], df["profile"]))))
    lines = [
        f"# Study: {name}",
        "",
        MARKER,
        "",
        (
            f"From {len(df)} run record(s) under `results/studies-{name}/` ({datasets}); "
            f"regenerate with `nlbench leaderboard --results results --out leaderboards`. "
            "Whether the findings hold here: [claims.md](../claims.md); how to read a board: "
            "[README.md](../README.md)."
        ),
        "",
        *body,
    ]
    files = {}
    names = figure_names(name, [key for key, _ in figs])
    for key, panels in figs:
        what = "per-epoch curves" if key == "curves" else f"{key}, per-epoch curves"
        lines += [f"![{name}: {what}](figures/{names[key]})", ""]
        if figures:
            title = f"study {name}" if key == "curves" else f"study {name}, {key}"
            files[f"studies/figures/{names[key]}"] = figure_svg(title, panels)
    files[f"studies/{name}.md"] = "\n".join(lines)
    return files
