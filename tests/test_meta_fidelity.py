"""MW-Net, L2R and FaMUS against their official code: precision, optimiser and weight decay.

The paper profiles run as the official code (fp32; FaMUS's networks with Nesterov; L2R decaying
only conv and linear weights); the quick and cpu profiles keep the suite's shared settings, and
``nlbench show method`` and the records say where they differ.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import nn

from nlbench.core.config import RunConfig
from nlbench.core.hparams import resolve_hparams
from nlbench.core.run_facts import active_deviations
from nlbench.host.plugins import get_host
from nlbench.testing import TINY, build_method
from nlbench_plugins.meta.weighting import decay_groups, decay_map

META = ["mwnet", "l2r", "famus"]


def resolved(method: str, profile: str, dataset: str = "cifar10") -> dict:
    host = get_host()
    cfg = RunConfig(method=method, dataset=dataset, profile=profile)
    return resolve_hparams(host.get("methods", method), host.get("datasets", dataset), cfg, host)


@pytest.mark.parametrize("method", META)
@pytest.mark.parametrize("dataset", ["cifar10", "cifar100", "fashionmnist"])
def test_paper_profiles_are_fp32_as_the_official_code(method, dataset):
    assert resolved(method, "paper", dataset)["amp"] is False
    assert resolved(method, "quick", dataset)["amp"] is True  # execution-only: no run_id moved


def test_famus_paper_networks_use_nesterov_as_build_models():
    assert resolved("famus", "paper")["nesterov"] is True
    assert resolved("famus", "paper", "clothing1m")["nesterov"] is True
    assert resolved("famus", "cpu")["nesterov"] is False
    assert resolved("famus", "quick", "digits")["nesterov"] is False


def test_l2r_decay_scope_official_only_in_the_paper_profile():
    assert resolved("l2r", "paper")["decay_scope"] == "weights"
    assert resolved("l2r", "cpu")["decay_scope"] is None  # board rows and run_ids unchanged
    assert "decay_scope" not in resolved("mwnet", "paper")


def small_net() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(2 * 2 * 2, 3)
    )


def test_decay_groups_decay_only_conv_and_linear_weights():
    net = small_net()
    conv, bn, fc = net[0], net[1], net[3]
    (whole,) = decay_groups(net, None)
    assert [id(p) for p in whole["params"]] == [id(p) for p in net.parameters()]
    decayed, rest = decay_groups(net, "weights")
    assert {id(p) for p in decayed["params"]} == {id(conv.weight), id(fc.weight)}
    assert {id(p) for p in rest["params"]} == {
        id(conv.bias),
        id(bn.weight),
        id(bn.bias),
        id(fc.bias),
    }
    assert rest["weight_decay"] == 0.0 and "weight_decay" not in decayed
    opt = torch.optim.SGD(decay_groups(net, "weights"), lr=0.1, weight_decay=0.5)
    assert set(decay_map(net, opt)) == {"0.weight", "3.weight"}  # L2R's clean cost follows


def test_official_decay_leaves_biases_and_norm_parameters_alone():
    """One SGD step on a zero loss: only decayed tensors shrink (by lr·wd), as the official
    cost's L2 term on conv kernels and the final weight does."""
    net = small_net()
    before = {n: p.detach().clone() for n, p in net.named_parameters()}
    opt = torch.optim.SGD(decay_groups(net, "weights"), lr=0.1, weight_decay=0.5)
    zero = 0.0 * sum(p.sum() for p in net.parameters())
    assert isinstance(zero, torch.Tensor)
    zero.backward()
    opt.step()
    for name, p in net.named_parameters():
        factor = 0.95 if name in ("0.weight", "3.weight") else 1.0
        assert torch.allclose(p.detach(), factor * before[name]), name


@pytest.mark.parametrize("scope,expect_bn", [(None, True), ("weights", False)])
def test_l2r_learner_decays_the_scope_in_step_and_clean_cost(tmp_path, scope, expect_bn):
    cfg = RunConfig(
        method="l2r",
        dataset="digits",
        noise="0.4",
        out=str(tmp_path),
        device="cpu",
        overrides={"decay_scope": scope},
        **TINY,
    )
    method: Any  # the plugin's own attributes are read below
    method, _ = build_method(cfg)
    learner = method.learners["net"]
    decayed = set(learner.weighting.decay)
    norm_params = {n for n, m in learner.model.named_modules() if isinstance(m, nn.BatchNorm2d)}
    has_bn = any(name.rsplit(".", 1)[0] in norm_params for name in decayed)
    assert has_bn is expect_bn
    assert any(name.endswith("bias") for name in decayed) is (scope is None)
    assert method.record_info()["decayed"].endswith(f"(decay_scope={scope or 'null'})")


def test_records_list_the_cpu_profiles_remaining_differences():
    """On CUDA a cpu-profile FaMUS run records its autocast and non-Nesterov optimiser; the
    paper profile records neither; on CPU autocast does nothing and is not listed."""
    famus = get_host().get("methods", "famus")
    options = {d["option"] for d in active_deviations(famus, resolved("famus", "cpu"))}
    assert {"amp", "nesterov"} <= options
    paper = {d["option"] for d in active_deviations(famus, resolved("famus", "paper"))}
    assert not paper & {"amp", "nesterov"}
    on_cpu = active_deviations(famus, resolved("famus", "cpu"), device="cpu")
    assert "amp" not in {d["option"] for d in on_cpu}
    l2r = get_host().get("methods", "l2r")
    cpu = {d["option"] for d in active_deviations(l2r, resolved("l2r", "cpu"), device="cpu")}
    assert "decay_scope" in cpu
    paper = {d["option"] for d in active_deviations(l2r, resolved("l2r", "paper"))}
    assert "decay_scope" not in paper and "amp" not in paper
