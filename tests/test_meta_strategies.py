"""mwnet, l2r and famus as compositions of strategies (plugins/meta/): which weighting, which
meta-gradient rule and which meta-set source each run gets, that the parts are wired to agree
(first-order and exact rules give one meta-gradient), and that method internals stay inside
their packages."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from nlbench.algorithms import metagrad
from nlbench.core.config import RunConfig
from nlbench.host.plugins import builtin_modules
from nlbench.testing import TINY, build_method
from nlbench_plugins.meta.gated import GatedLookAhead
from nlbench_plugins.meta.rules import ExactLookAhead, FirstOrder, MetaStep
from nlbench_plugins.meta.sources import CleanSet, OwnPseudoSet, PeerPseudoSet
from nlbench_plugins.meta.weighting import MetaNetWeighting, PerturbationWeighting

ROOT = Path(__file__).resolve().parents[1]


def build(name: str, tmp_path, **overrides):
    cfg = RunConfig(
        method=name,
        dataset="digits",
        noise="0.4",
        out=str(tmp_path),
        device="cpu",
        overrides=overrides,
        **TINY,
    )
    return build_method(cfg)[0]


@pytest.mark.parametrize(
    "name,overrides,weighting,rule,source",
    [
        ("mwnet", {}, MetaNetWeighting, ExactLookAhead, CleanSet),
        ("mwnet", {"meta_grad": "fd"}, MetaNetWeighting, FirstOrder, CleanSet),
        (
            "mwnet",
            {"famus": True, "meta_set": "pseudo"},
            MetaNetWeighting,
            GatedLookAhead,
            OwnPseudoSet,
        ),
        ("l2r", {}, PerturbationWeighting, ExactLookAhead, CleanSet),
        ("l2r", {"meta_grad": "jvp"}, PerturbationWeighting, FirstOrder, CleanSet),
        ("l2r", {"famus": True}, PerturbationWeighting, GatedLookAhead, CleanSet),
        ("famus", {}, MetaNetWeighting, GatedLookAhead, PeerPseudoSet),
        ("famus", {"meta_set": "clean:100"}, MetaNetWeighting, GatedLookAhead, CleanSet),
    ],
)
def test_each_run_composes_its_weighting_rule_and_source(
    tmp_path, name, overrides, weighting, rule, source
):
    method = build(name, tmp_path, **overrides)
    assert type(method.source) is source
    for learner in method.learners.values():
        assert type(learner.weighting) is weighting and type(learner.rule) is rule
    assert method.famus == (rule is GatedLookAhead)
    assert method.record_info()["famus"] == method.famus


def test_pseudo_sources_exchange_between_two_networks_and_not_with_one(tmp_path):
    famus = build("famus", tmp_path).source
    assert [famus.peer(n) for n in ("net1", "net2")] == ["net2", "net1"] and famus.exchanged
    own = build("mwnet", tmp_path, meta_set="pseudo").source
    assert own.peer("net") == "net" and not own.exchanged
    assert famus.record_info()["source"] != own.record_info()["source"]


@pytest.mark.parametrize("name", ["mwnet", "l2r"])
def test_forward_mode_rule_matches_the_exact_rule_on_the_same_learner(tmp_path, name):
    """FirstOrder(jvp) and ExactLookAhead on one learner and batch give one meta-gradient:
    the weighting's flags (look-ahead or not, L2R's weight-decay cost) reach both rules."""
    torch.manual_seed(0)
    method = build(name, tmp_path, meta_grad="jvp")
    learner = method.learners["net"]
    learner.model.double().eval()  # eval: no batch statistics, so both rules see one function
    if learner.vnet is not None:
        learner.vnet.double()
    g = torch.Generator().manual_seed(1)
    x = torch.randn(12, 1, 8, 8, generator=g, dtype=torch.float64)
    y = torch.randint(0, 10, (12,), generator=g)
    out = []
    for rule in (learner.rule, ExactLookAhead(learner.ctx, learner.model)):
        wt = learner.weighting
        wt.begin(12, x.device)
        step = MetaStep(x, y, x[:6], y[:6], 0.1, False, wt.weigh)
        out.append(rule.meta_grads(learner.model, step, wt).grads)
    assert max(float(g.abs().max()) for g in out[1]) > 0
    assert float(metagrad.cosine(out[0], out[1])) > 1 - 1e-9
    for a, b in zip(*out):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-9)


def test_method_internals_live_in_packages_that_register_nothing():
    """``nlbench_plugins.meta`` and ``.dividemix`` are packages, not plugins: the scan of
    built-in plugin modules skips them (``nlbench list`` is unchanged)."""
    assert (ROOT / "plugins" / "meta" / "__init__.py").exists()
    assert (ROOT / "plugins" / "dividemix" / "__init__.py").exists()
    mods = builtin_modules()
    assert {"nlbench_plugins.method_mwnet", "nlbench_plugins.method_famus"} <= set(mods)
    assert not {"nlbench_plugins.meta", "nlbench_plugins.dividemix"} & set(mods)


def test_no_private_plugin_module_is_imported_outside_the_plugins():
    """Tests, benchmarks, docs and the core import only public plugin modules."""
    private = re.compile(r"nlbench_plugins(\.\w+)*\._\w+|from nlbench_plugins(\.\w+)* import _")
    found = [
        f"{p.relative_to(ROOT)}:{i}"
        for top in ("nlbench", "tests", "benchmarks", "docs")
        for p in sorted((ROOT / top).rglob("*.py"))
        for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
        if line.lstrip().startswith(("import ", "from ")) and private.search(line)
    ]
    assert not found, found
