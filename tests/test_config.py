"""The --noise and --set parsers, hparam resolution, schedules and run ids."""

from __future__ import annotations

import json

import pytest
from helpers import digits_run, run_cli
from hypothesis import given, settings
from hypothesis import strategies as st

from nlbench.core.config import NoiseSpec, RunConfig, compute_run_id, parse_noise, parse_set
from nlbench.core.errors import UsageError
from nlbench.core.schedules import lr_at


@pytest.mark.parametrize(
    "text, expected",
    [
        ("0.6", NoiseSpec("sym", "0.6")),
        ("sym:0.4", NoiseSpec("sym", "0.4")),
        ("asym:0.4", NoiseSpec("asym", "0.4")),
        ("cifar_n:worse", NoiseSpec("cifar_n", "worse")),
        ("file:/tmp/a:b.npy", NoiseSpec("file", "/tmp/a:b.npy")),
        ("none", NoiseSpec("none", None)),
        ("random_labels", NoiseSpec("random_labels", None)),
    ],
)
def test_parse_noise(text, expected):
    assert parse_noise(text) == expected
    assert parse_noise(str(expected)) == expected


@pytest.mark.parametrize("text", ["", "1.5", "-0.1", "nan", "Sym:0.4", "sym:", ":0.4", "a b"])
def test_parse_noise_rejects(text):
    with pytest.raises(UsageError):
        parse_noise(text)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=30))
def test_parse_noise_total(text):
    """Any string gives a spec or a usage error, never another exception."""
    try:
        spec = parse_noise(text)
    except UsageError:
        return
    assert isinstance(spec, NoiseSpec)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(max_size=20), max_size=4))
def test_parse_set_total(items):
    try:
        out = parse_set(items)
    except UsageError:
        return
    assert isinstance(out, dict)


def test_parse_set_values():
    assert parse_set(
        [
            "lr=0.05",
            "famus=true",
            "milestones=[10, 20]",
            "model=resnet32",
            "meta_set=clean:100",
            "x=null",
        ]
    ) == {
        "lr": 0.05,
        "famus": True,
        "milestones": [10, 20],
        "model": "resnet32",
        "meta_set": "clean:100",
        "x": None,
    }


def test_run_id_stable_and_sensitive():
    ident = {"method": "erm", "dataset": "digits", "hparams": {"lr": 0.1, "epochs": 3}}
    same = {"dataset": "digits", "hparams": {"epochs": 3, "lr": 0.1}, "method": "erm"}
    assert compute_run_id(ident) == compute_run_id(same)
    assert compute_run_id(ident) != compute_run_id({**ident, "hparams": {"lr": 0.2, "epochs": 3}})
    assert compute_run_id(ident).startswith("erm-digits-")


def test_hparams_resolution_order():
    from nlbench.core.hparams import resolve_hparams
    from nlbench.host.plugins import get_host

    host = get_host()
    cfg = RunConfig(method="erm", dataset="digits", epochs=7, overrides={"lr": 0.01})
    hp = resolve_hparams(host.get("methods", "erm"), host.get("datasets", "digits"), cfg, host)
    assert hp["epochs"] == 7 and hp["lr"] == 0.01 and hp["model"] == "tiny_cnn"
    with pytest.raises(UsageError, match="unknown --set key.*Accepted"):
        resolve_hparams(
            host.get("methods", "erm"),
            host.get("datasets", "digits"),
            RunConfig(overrides={"lrr": 0.1}),
            host,
        )


@pytest.mark.parametrize(
    "sched, pos, expected",
    [
        ("multistep", 0.0, 0.1),
        ("multistep", 5.0, 0.01),
        ("multistep", 7.6, 0.001),
        ("constant", 9.0, 0.1),
        ("cosine", 0.0, 0.1),
        ("cosine", 5.0, 0.05),
        ("cosine", 10.0, 0.0),
        ("onecycle", 3.0, 0.1),
        ("onecycle", 0.0, 0.004),
    ],
)
def test_schedules(sched, pos, expected):
    hp = {"lr": 0.1, "epochs": 10, "scheduler": sched, "milestones": [0.5, 0.75], "gamma": 0.1}
    lr, _ = lr_at(pos, hp)
    assert lr == pytest.approx(expected, abs=1e-9)


def test_onecycle_momentum_cycles():
    hp = {"lr": 0.1, "epochs": 10, "scheduler": "onecycle"}
    assert lr_at(0.0, hp)[1] == pytest.approx(0.95)
    assert lr_at(3.0, hp)[1] == pytest.approx(0.85)
    assert lr_at(10.0, hp)[1] == pytest.approx(0.95)


@pytest.mark.parametrize(
    ("sched", "pos", "expected"),
    [
        ("cosine", 1.0, 0.05),  # step 5 of 10: half way down the half-cosine
        ("cosine", 2.0, 0.0),  # step 10: the schedule's end
        ("cosine", 7.0, 0.0),  # held at its end value afterwards
        ("onecycle", 0.6, 0.1),  # step 3 of 10: the peak (30 % warm-up)
        ("onecycle", 9.0, 0.1 / 25 / 100),  # held at the final lr
        ("multistep", 6.0, 0.01),  # milestones stay in epochs
    ],
)
def test_schedule_steps_fix_the_schedule_in_optimizer_steps(sched, pos, expected):
    hp = {"lr": 0.1, "epochs": 10, "scheduler": sched, "milestones": [0.5, 0.75], "gamma": 0.1}
    lr, _ = lr_at(pos, {**hp, "schedule_steps": 10}, steps_per_epoch=5)
    assert lr == pytest.approx(expected, abs=1e-12)
    assert lr_at(pos, {**hp, "schedule_steps": None}, 5) == lr_at(pos, hp)  # null: the run


def test_a_run_with_schedule_steps_holds_the_end_lr(tmp_path, capsys):
    sets = ["scheduler=cosine", "schedule_steps=3", "batch_size=100"]
    args = digits_run("0.2", 2, 300, "--out", str(tmp_path), "--json", "-q")
    res = run_cli(capsys, *args, *[x for s in sets for x in ("--set", s)])
    assert res.code == 0, res.err
    record = json.loads(res.out)
    assert record["config"]["hparams"]["schedule_steps"] == 3
    # 3 steps an epoch, lr 0.05: epoch 1's last step is step 2 of 3, cos(2π/3) = -1/2, so
    # 0.05 · (1 − 1/2) / 2; from step 3 on the schedule is over and stays at 0
    assert [e["lr"] for e in record["epochs"]] == pytest.approx([0.0125, 0.0], abs=1e-12)
