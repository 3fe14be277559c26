"""Claims evaluated to each verdict from synthetic records; the packaged table is valid."""

from __future__ import annotations

import pytest
from synthetic_records import synthetic_record

from nlbench.boards import claims as cl
from nlbench.boards.records import frame
from nlbench.core.errors import UsageError


def runs(method: str, lasts: list[float], noise: str = "sym:0.2", **kw) -> list[dict]:
    return [
        synthetic_record(method, noise, seed, (0.1, last), **kw) for seed, last in enumerate(lasts)
    ]


def claim(
    compare: str,
    cells: list[str],
    metric: str = "last",
    board: str = "synth-quick",
    margin: float | None = None,
):
    return cl.Claim(
        "c", "a claim", "a paper, Table 1", board, metric, compare, tuple(cells), margin=margin
    )


@pytest.fixture
def frames() -> dict:
    records = [
        *runs("good", [0.90, 0.92, 0.91]),
        *runs("erm", [0.80, 0.81, 0.79]),
        *runs("noisy", [0.95, 0.70, 0.88]),
        *runs("single", [0.99]),
    ]
    return {"synth-quick": frame(records)}


@pytest.mark.parametrize(
    ("compare", "cells", "verdict"),
    [
        ("order", ["good@sym:0.2", "erm@sym:0.2"], "holds"),
        ("order", ["erm@sym:0.2", "good@sym:0.2"], "fails"),
        ("order", ["noisy@sym:0.2", "erm@sym:0.2"], "inconclusive"),
        ("order", ["single@sym:0.2", "erm@sym:0.2"], "inconclusive"),  # one seed: no interval
        ("order", ["good@sym:0.2", "absent@sym:0.2"], "not measured"),
        ("order", ["good@sym:0.2", "erm@sym:0.6"], "not measured"),
        ("order", ["good@sym:0.2", "noisy@sym:0.2", "erm@sym:0.2"], "inconclusive"),
        ("at_least", ["erm@sym:0.2", "good@sym:0.2"], "fails"),
    ],
)
def test_pairwise_verdicts(frames, compare, cells, verdict):
    got, numbers = cl.evaluate(claim(compare, cells), frames)
    assert got == verdict, numbers


def non_inferiority(deficits: list[float]) -> dict:
    """b at 0.90, 0.80, 0.85 per seed; a = b + each seed's difference (same seed, same labels)."""
    base = [0.90, 0.80, 0.85]
    a = [b + d for b, d in zip(base, deficits)]
    return {"synth-quick": frame([*runs("a", a), *runs("b", base)])}


@pytest.mark.parametrize(
    ("deficits", "verdict"),
    [
        # mean −0.07 points, interval [−0.33, +0.19] above −1: no worse than the margin allows
        ([-0.002, 0.001, -0.001], "holds"),
        # mean −5.5 points, interval [−6.74, −4.26] below −1: worse by more than the margin
        ([-0.05, -0.06, -0.055], "fails"),
        # the case: −8.73 ± 14.35 is not "at least as good", nor shown worse
        ([-0.2, -0.0619, 0.0], "inconclusive"),
        # not significantly below, yet the interval reaches past −margin: inconclusive
        ([0.01, -0.02, 0.0], "inconclusive"),
    ],
)
def test_non_inferiority_needs_the_interval_above_minus_margin(deficits, verdict):
    c = claim("at_least", ["a@sym:0.2", "b@sym:0.2"], margin=1.0)
    got, numbers = cl.evaluate(c, non_inferiority(deficits))
    assert got == verdict, numbers
    assert "against −margin (-1.00)" in numbers


def test_non_inferiority_with_one_seed_is_inconclusive():
    frames = {"synth-quick": frame([*runs("a", [0.9]), *runs("b", [0.8])])}
    c = claim("at_least", ["a@sym:0.2", "b@sym:0.2"], margin=1.0)
    verdict, numbers = cl.evaluate(c, frames)
    assert verdict == "inconclusive" and "no interval (one pair)" in numbers


def test_claims_page_prints_the_margin_and_a_legend_for_every_comparison(frames):
    c = claim("at_least", ["good@sym:0.2", "erm@sym:0.2"], margin=0.5)
    text = cl.render_claims([c], frames)
    assert "at_least (margin 0.50 points)" in text
    for compare in cl.CHECKS:
        assert f"| `{compare}` |" in text
    assert "**inconclusive** when" in text and "not significant" not in text


def test_numbers_name_means_differences_and_n(frames):
    _, numbers = cl.evaluate(claim("order", ["good@sym:0.2", "erm@sym:0.2"]), frames)
    # paired differences +0.10, +0.11, +0.12: mean 11.00 %, s = 1 %, t(0.975, 2) = 4.3027
    assert "good@sym:0.2 91.00 (n=3)" in numbers and "erm@sym:0.2 80.00 (n=3)" in numbers
    assert "= +11.00 ± 2.48 (paired, n=3)" in numbers


def memo_frames(fits: dict[float, list[int | None]]) -> dict:
    records = [
        synthetic_record("erm", f"random_labels:{p}", seed, (0.1, 0.2), fit_epochs=e)
        for p, epochs in fits.items()
        for seed, e in enumerate(epochs)
    ]
    return {"studies/memo": frame(records)}


CELLS = [f"erm@random_labels:{p}" for p in (0.0, 0.5, 1.0)]


@pytest.mark.parametrize(
    ("fits", "compare", "cells", "verdict"),
    [
        ({1.0: [40, 45]}, "fits", CELLS[2:], "holds"),
        ({1.0: [None, None]}, "fits", CELLS[2:], "fails"),
        ({1.0: [40, None]}, "fits", CELLS[2:], "inconclusive"),
        ({0.0: [3, 4], 0.5: [20, 25], 1.0: [40, None]}, "grows", CELLS, "holds"),
        ({0.0: [40, 45], 0.5: [20, 25], 1.0: [3, 4]}, "grows", CELLS, "fails"),
        ({0.0: [3, 40], 0.5: [20, 5], 1.0: [30, 4]}, "grows", CELLS, "inconclusive"),
        ({0.0: [3], 0.5: [20]}, "grows", CELLS, "not measured"),
    ],
)
def test_memorisation_verdicts(fits, compare, cells, verdict):
    got, numbers = cl.evaluate(
        claim(compare, cells, "fit_epochs", "studies/memo"), memo_frames(fits)
    )
    assert got == verdict, numbers


def test_selector_cells_pair_on_the_free_hparams():
    records = [
        synthetic_record("erm", "sym:0.4", 0, (0.1, fit), hparams={"batch_size": b, "scheduler": s})
        for b, s, fit in [
            (128, "cosine", 0.5),
            (128, "constant", 0.6),
            (16, "cosine", 0.3),
            (16, "constant", 0.41),
        ]
    ]
    c = claim("order", ["erm[batch_size=128]@sym:0.4", "erm[batch_size=16]@sym:0.4"])
    verdict, numbers = cl.evaluate(c, {"synth-quick": frame(records)})
    # pairs by schedule: +0.20, +0.19 → paired, n=2
    assert "(paired, n=2)" in numbers and verdict == "holds", numbers


def test_gradient_cosine_claim_averages_over_epochs_and_skips_missing_diagnostics():
    def rec(batch: int, sched: str, cosines: tuple[float | None, ...]) -> dict:
        r = synthetic_record(
            "erm",
            "sym:0.4",
            0,
            (0.1,) * len(cosines),
            hparams={"batch_size": batch, "scheduler": sched},
        )
        for epoch, cos in zip(r["epochs"], cosines):
            epoch["grad_cos_clean_all"] = cos
        return r

    records = [
        rec(16, "cosine", (0.9, 0.7)),  # mean 0.8
        rec(16, "constant", (0.6, None, 0.8)),  # an epoch without diagnostics: mean 0.7
        rec(128, "cosine", (0.5, 0.5)),
        rec(128, "constant", (0.4, 0.4, 0.4)),
    ]
    c = claim("order", ["erm[batch_size=16]@sym:0.4", "erm[batch_size=128]@sym:0.4"], "mean_cos")
    verdict, numbers = cl.evaluate(c, {"synth-quick": frame(records)})
    # pairs by schedule: 0.8 - 0.5 = 0.3 and 0.7 - 0.4 = 0.3; no spread: s = 0, holds
    assert "erm[batch_size=16]@sym:0.4 0.750 (n=2)" in numbers, numbers
    assert "= +0.300 ± 0.000 (paired, n=2)" in numbers and verdict == "holds", numbers


def test_packaged_claims_table_is_valid_and_covers_the_brief():
    claims = cl.load_claims()
    ids = {c.id for c in claims}
    assert {
        "fl-table5-0.2",
        "fl-table5-0.4",
        "fit-random-labels-digits",
        "fit-time-grows-digits",
    } <= ids
    assert all(c.source and c.cells for c in claims)
    assert all((c.margin is not None) == (c.compare == "at_least") for c in claims)


HEAD = '[[claim]]\nid = "x"\nclaim = "y"\nsource = "s"\nboard = "b"\nmetric = "last"\n'
PAIR = 'cells = ["a@sym:0.2", "b@sym:0.2"]\n'


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('[[claim]]\nid = "x"\nclaim = "y"\n', "lacks"),
        (HEAD + 'compare = "order"\ncells = ["no cell"]\n', "expected method@noise"),
        (
            HEAD + 'compare = "gap_grows"\ncells = ["erm@sym:0.2", "erm@sym:0.4", "erm@sym:0.6"]\n',
            "in pairs",
        ),
        (HEAD + 'compare = "at_least"\n' + PAIR, "at_least needs margin"),
        (HEAD + 'compare = "at_least"\nmargin = -1\n' + PAIR, "at_least needs margin"),
        (HEAD + 'compare = "at_least"\nmargin = "1"\n' + PAIR, "at_least needs margin"),
        (HEAD + 'compare = "order"\nmargin = 1.0\n' + PAIR, "only to compare = at_least"),
    ],
)
def test_a_bad_claims_table_is_one_usage_error(tmp_path, table, message):
    path = tmp_path / "claims.toml"
    path.write_text(table, encoding="utf-8")
    with pytest.raises(UsageError, match=message):
        cl.load_claims(path)


def test_a_claim_not_measured_names_the_sweep_file_that_measures_it(tmp_path):
    sweeps = tmp_path / "sweeps"
    sweeps.mkdir()
    (sweeps / "grid.toml").write_text(
        'methods = ["good", "erm"]\ndataset = "synth"\nprofile = "quick"\n'
        'noise = ["sym:0.6"]\nseeds = [0, 1]\nepochs = 2\nout = "results/synth-quick"\n'
    )
    frames = {"synth-quick": frame(runs("erm", [0.8, 0.81]))}
    asked = claim("order", ["good@sym:0.6", "erm@sym:0.6"])
    text = cl.render_claims([asked], frames, sweeps)
    assert "no runs for good@sym:0.6, erm@sym:0.6." in text
    assert "Filled by: `nlbench sweep -c leaderboards/sweeps/grid.toml`." in text
    unasked = claim("order", ["good@sym:0.4", "erm@sym:0.4"])
    assert "No sweep file asks for these cells yet." in cl.render_claims([unasked], frames, sweeps)
    assert "sweep" not in cl.render_claims([unasked], frames).split("| **not measured** |")[1]


def gap_frames(gaps: dict[float, list[float]]) -> dict:
    """Batch 16 at 0.5 + gap, batch 128 at 0.5, one run per (rate, seed)."""
    records = []
    for rate, per_seed in gaps.items():
        for seed, gap in enumerate(per_seed):
            for batch, acc in ((16, 0.5 + gap), (128, 0.5)):
                records.append(
                    synthetic_record(
                        "erm", f"sym_incl:{rate}", seed, (0.1, acc), hparams={"batch_size": batch}
                    )
                )
    return {"synth-quick": frame(records)}


GAP_CELLS = [f"erm[batch_size={b}]@sym_incl:{r}" for r in (0.0, 0.2, 0.5) for b in (16, 128)]


@pytest.mark.parametrize(
    ("gaps", "verdict"),
    [
        ({0.0: [-0.05, -0.04], 0.2: [0.0, 0.01], 0.5: [0.05, 0.06]}, "holds"),
        ({0.0: [0.05, 0.06], 0.2: [0.0, 0.01], 0.5: [-0.05, -0.04]}, "fails"),
        ({0.0: [0.05, -0.04], 0.2: [0.0, 0.01], 0.5: [-0.05, 0.06]}, "inconclusive"),
        ({0.0: [0.05], 0.2: [0.0]}, "not measured"),
    ],
)
def test_gap_grows_verdicts(gaps, verdict):
    got, numbers = cl.evaluate(claim("gap_grows", GAP_CELLS), gap_frames(gaps))
    assert got == verdict, numbers


def test_gap_grows_numbers_list_each_pair_and_rho():
    frames = gap_frames({0.0: [-0.05, -0.04], 0.2: [0.0, 0.01], 0.5: [0.05, 0.06]})
    _, numbers = cl.evaluate(claim("gap_grows", GAP_CELLS), frames)
    assert (
        "erm[batch_size=16]@sym_incl:0.5 − erm[batch_size=128]@sym_incl:0.5: +5.00, +6.00"
        in numbers
    )
    # rate ranks 1.5,1.5,3.5,3.5,5.5,5.5, gap ranks 1..6: ρ = 16 / √(16 · 17.5) = 0.956
    assert "Spearman ρ = +0.96" in numbers and "(n=6 pairs)" in numbers, numbers


def test_a_null_selector_picks_runs_without_the_option_and_none_values_do_not_split_pairs():
    def rec(batch: int, acc: float, **extra) -> dict:
        hp = {"batch_size": batch, "scheduler": "cosine", **extra}
        return synthetic_record("erm", "sym:0.4", 0, (0.1, acc), hparams=hp)

    records = [
        rec(16, 0.7),  # made before schedule_steps existed
        rec(128, 0.6, schedule_steps=None),  # made after: the option left off
        rec(16, 0.2, schedule_steps=300),
        rec(128, 0.9, schedule_steps=300),
    ]
    frames = {"synth-quick": frame(records)}
    off = [
        "erm[batch_size=16,schedule_steps=null]@sym:0.4",
        "erm[batch_size=128,schedule_steps=null]@sym:0.4",
    ]
    _, numbers = cl.evaluate(claim("order", off), frames)
    assert "= +10.00 (paired, n=1)" in numbers, numbers  # 0.7 − 0.6: the two pair up
    steps = [c.replace("null", "300") for c in off]
    _, numbers = cl.evaluate(claim("order", steps), frames)
    assert "= -70.00 (paired, n=1)" in numbers, numbers
