"""Per-run facts (nlbench/core/run_facts.py): noise setting, flags per run, deviations in effect.

DivideMix's Table 7 is checked through the path ``nlbench run`` takes: the resolved identity
(no data), and real runs on tiny CIFAR files written in the official formats.
"""

from __future__ import annotations

import math
from types import SimpleNamespace
from typing import Any

import pytest
from test_datasets import write_cifar10, write_cifar100

from nlbench import hookimpl
from nlbench.core.config import NoiseSpec, RunConfig, parse_noise
from nlbench.core.run_facts import (
    NoiseSetting,
    active_deviations,
    noise_setting,
    restore_options,
    run_flags,
)
from nlbench.core.specs import Deviation, MethodSpec
from nlbench.engine.prepare import run_identity
from nlbench.host.plugins import get_host, load_plugins, reset
from nlbench.training.method import SingleNetMethod
from nlbench_plugins.dividemix.settings import setting_for

# (dataset, noise, (λu, τ, GMM history), Table 7 row): Li, Socher & Hoi, DivideMix, ICLR 2020,
# Appendix Table 7 and §4.1
TABLE7_CASES = [
    ("cifar10", "sym:0.2", (0.0, 0.5, 1), "cifar10 sym 0.2"),
    ("cifar10", "sym:0.5", (25.0, 0.5, 1), "cifar10 sym 0.5"),
    ("cifar10", "sym:0.9", (50.0, 0.6, 5), "cifar10 sym 0.9"),
    ("cifar10", "asym:0.4", (0.0, 0.5, 1), "cifar10 asym 0.4"),
    ("cifar100", "sym:0.5", (150.0, 0.5, 1), "cifar100 sym 0.5"),
]


def resolved(dataset: str, noise: str, **overrides):
    """(setting, flags) as ``nlbench run`` resolves them before training, without data."""
    cfg = RunConfig(method="dividemix", dataset=dataset, noise=noise, overrides=overrides)
    ident = run_identity(cfg, get_host())
    setting = noise_setting(ident.noise_spec, ident.dataset_spec)
    spec = ident.dataset_spec
    flags = run_flags(ident.method_spec, ident.hparams, setting, spec)
    return setting_for(ident.hparams, spec.name, spec.num_classes, setting), flags


# -- noise setting ------------------------------------------------------------------------------
RATES = [
    ("0.6", 0.6),
    ("sym:0.2", 0.2),
    ("asym:0.4", 0.4),
    ("sym_incl:0.9", 0.9),
    ("none", 0.0),
    ("cifar_n:worse", None),
    ("file:/tmp/x.npy", None),
    ("random_labels", None),
]


@pytest.mark.parametrize("text,rate", RATES)
def test_noise_setting_is_the_nominal_rate(text, rate):
    spec = parse_noise(text)
    assert noise_setting(spec) == NoiseSetting(spec.type, rate, str(spec))


def test_noise_setting_of_a_dataset_with_its_own_labels_has_no_rate():
    clothing = get_host().get("datasets", "clothing1m")
    assert noise_setting(NoiseSpec("none"), clothing).rate is None


# -- DivideMix's Table 7 through the run's resolution --------------------------------------------
@pytest.mark.parametrize("dataset,noise,expected,row", TABLE7_CASES)
def test_dividemix_table7_resolved_as_nlbench_run_does(dataset, noise, expected, row):
    setting, flags = resolved(dataset, noise)
    assert (setting.lambda_u, setting.p_threshold, setting.gmm_history) == expected
    assert setting.table7_row == row
    assert flags == ["noise_tuned", "two_net"]


def test_dividemix_on_digits_takes_the_cifar10_row():
    setting, flags = resolved("digits", "sym:0.2")
    assert (setting.lambda_u, setting.table7_row) == (0.0, "cifar10 sym 0.2")
    assert "noise_tuned" in flags


@pytest.mark.parametrize("noise", ["none", "instance:0.4", "pairflip:0.4"])
def test_dividemix_on_official_defaults_is_not_noise_tuned(noise):
    setting, flags = resolved("cifar10", noise)
    assert (setting.lambda_u, setting.p_threshold, setting.table7_row) == (25.0, 0.5, None)
    assert flags == ["two_net"]


def test_dividemix_with_explicit_values_is_not_noise_tuned():
    setting, flags = resolved("cifar10", "sym:0.9", lambda_u=25, p_threshold=0.5, gmm_history=1)
    assert (setting.lambda_u, setting.p_threshold, setting.gmm_history) == (25.0, 0.5, 1)
    assert flags == ["two_net"]
    _, flags = resolved("cifar10", "sym:0.9", lambda_u=25, p_threshold=0.5)  # history by rate
    assert flags == ["noise_tuned", "two_net"]


@pytest.mark.parametrize("dataset,noise,expected,row", TABLE7_CASES)
def test_dividemix_records_the_row_it_trained_with(tmp_path, dataset, noise, expected, row):
    """A real run (one warm-up epoch) on CIFAR files written in the official formats."""
    from nlbench.api import run

    root = tmp_path / "data"
    (write_cifar10 if dataset == "cifar10" else write_cifar100)(root)
    out = str(tmp_path / "runs")
    config = {"model": "tiny_cnn", "epochs": 1, "data_root": str(root), "out": out}
    record = run(method="dividemix", dataset=dataset, noise=noise, device="cpu", **config)
    info = record["method_info"]
    assert (info["lambda_u"], info["p_threshold"], info["gmm_history"]) == expected
    assert info["table7_row"] == row and info["noise_tuned"] is True
    assert record["flags"] == ["noise_tuned", "two_net"]
    assert record["config"]["hparams"]["lambda_u"] is None  # "by Table 7" in the run_id


# -- flags per run for a third party -----------------------------------------------------------
def coteaching_flags(hp, noise, dataset) -> set[str]:
    """Co-teaching's forget rate set to the true noise rate is tuned knowing the noise."""
    tau, rate = hp.get("tau"), noise.rate
    tuned = tau is not None and rate is not None and math.isclose(float(tau), rate)
    return {"noise_tuned"} if tuned else set()


class CoteachingPlugin:
    @hookimpl
    def register_methods(self, register) -> None:
        spec = MethodSpec(
            name="coteach_like",
            description="ERM with a forget rate knob",
            factory=SingleNetMethod,
            default_hparams={"tau": 0.2},
            flags=frozenset({"two_net"}),  # type: ignore[arg-type]
            flags_for=coteaching_flags,
        )
        register(spec)


@pytest.fixture
def third_party():
    try:
        yield load_plugins(extra=[("coteach_like", CoteachingPlugin())])
    finally:
        reset()


@pytest.mark.parametrize("tau,flags", [(0.4, ["noise_tuned", "two_net"]), (0.2, ["two_net"])])
def test_third_party_flags_follow_the_run(tmp_path, third_party, tau, flags):
    from nlbench.testing import tiny_run

    record = tiny_run(tmp_path, "coteach_like", "sym:0.4", epochs=1, overrides={"tau": tau})
    assert record["flags"] == flags


def test_static_flags_keep_working():
    spec = MethodSpec(
        name="m",
        description="",
        factory=SingleNetMethod,
        flags=frozenset({"clean_meta"}),  # type: ignore[arg-type]
    )
    noise = NoiseSetting("sym", 0.4, "sym:0.4")
    dataset: Any = SimpleNamespace(name="d", num_classes=10)  # the two fields run_flags reads
    assert run_flags(spec, {}, noise, dataset) == ["clean_meta"]


# -- deviations in effect ----------------------------------------------------------------------
def test_restore_options_parse_set_pairs_only():
    dev = Deviation("w", "y", "--set radius=2.0 --set radius_quantile=null (paper)")
    assert restore_options(dev) == {"radius": 2.0, "radius_quantile": None}
    assert restore_options(Deviation("w", "y", "--profile paper")) == {}
    assert restore_options(Deviation("w", "y")) == {}


def test_active_deviations_name_the_option_value_and_who_chose_it():
    deviations = (
        Deviation("per class", "why", "--set fl_scope=global"),
        Deviation("bf16", "why", "--set amp=false"),
        Deviation("seeded", "why"),
    )
    spec = MethodSpec(name="m", description="", factory=SingleNetMethod, deviations=deviations)
    hp = {"fl_scope": None, "amp": False}
    entry = {"option": "fl_scope", "value": None, "official": "global", "set": False}
    assert active_deviations(spec, hp) == [{**entry, "what": "per class"}]
    out = active_deviations(spec, {"fl_scope": "global", "amp": True}, {"amp": True})
    assert [(d["option"], d["set"]) for d in out] == [("amp", True)]
    assert active_deviations(spec, {"fl_scope": "global", "amp": True}, {}, "cpu") == []


def test_run_records_its_deviations(tmp_path):
    from nlbench.testing import tiny_run

    record = tiny_run(tmp_path, "fl_only", "sym:0.4", epochs=1, overrides={"fl_ratio": 0.5})
    options = {d["option"]: d for d in record["method_info"]["deviations"]}
    assert options["fl_scope"]["value"] is None and options["fl_scope"]["official"] == "global"
    assert options["fl_scope"]["set"] is False
    assert "amp" not in options  # bf16 autocast is CUDA-only: this CPU run was fp32


@pytest.mark.parametrize("method", ["dividemix", "fl_only", "density_weighted", "fl_weighted"])
@pytest.mark.parametrize("dataset", ["cifar10", "fashionmnist"])
def test_paper_profiles_run_the_official_fp32(method, dataset):
    def identity(profile: str):
        return run_identity(RunConfig(method=method, dataset=dataset, profile=profile), get_host())

    paper, quick = identity("paper"), identity("quick")
    assert paper.hparams["amp"] is False and quick.hparams["amp"] is True
    on_cuda = [d["option"] for d in active_deviations(quick.method_spec, quick.hparams)]
    assert "amp" in on_cuda
    assert "amp" not in [d["option"] for d in active_deviations(paper.method_spec, paper.hparams)]
