"""``TwoNetMethod``: the pair built in order, per-net or joint optimisers, the test-time choice
(one network or the ensemble, and ``TWO_NET`` exactly for the ensemble), checkpoints."""

from __future__ import annotations

from typing import Any, cast

import pytest
import torch
from torch import nn

from nlbench.api import Batch, MethodFlag, TrainContext, TwoNetMethod
from nlbench.host import plugins

SGD = {"lr": 0.1, "momentum": 0.0, "nesterov": False, "weight_decay": 0.0}


def _ctx() -> TrainContext:
    """A context whose model is a 4 → 2 linear layer."""
    return TrainContext(
        hparams=dict(SGD),
        num_classes=2,
        in_chans=1,
        image_size=2,
        device=torch.device("cpu"),
        train=None,  # type: ignore[arg-type]
        epochs=1,
        steps_per_epoch=1,
        build_model=lambda: nn.Linear(4, 2),
        gen=torch.Generator(),
        scan=lambda: None,  # type: ignore[arg-type,return-value]
        seed=0,
        components=None,  # type: ignore[arg-type]
    )


class _PerNet(TwoNetMethod):
    def train_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        logits1, _ = self.forward_pair(batch.x)
        loss = nn.functional.cross_entropy(logits1, batch.y)
        self.step(loss, "net1")
        return {"loss": loss.detach()}


class _Joint(TwoNetMethod):
    shared_optimizer = True
    test_net = "net2"


class _Ensemble(TwoNetMethod):
    ensemble = True


def _weight(method: TwoNetMethod, name: str) -> torch.Tensor:
    return cast(nn.Linear, method.nets[name]).weight


def _seeded(cls: type[TwoNetMethod], seed: int = 0) -> TwoNetMethod:
    torch.manual_seed(seed)
    return cls(_ctx())


def test_the_pair_is_built_net1_then_net2_from_the_model_factory():
    method = _seeded(_PerNet)
    torch.manual_seed(0)
    first, second = nn.Linear(4, 2), nn.Linear(4, 2)
    assert list(method.networks()) == ["net1", "net2"]
    assert torch.equal(_weight(method, "net1"), first.weight)
    assert torch.equal(_weight(method, "net2"), second.weight)
    assert not torch.equal(first.weight, second.weight)


def test_per_net_optimisers_step_only_their_network():
    method = _seeded(_PerNet)
    assert list(method.opts) == ["net1", "net2"] and len(method.scheduled_optimizers()) == 2
    before = {n: _weight(method, n).detach().clone() for n in method.nets}
    method.train_step(Batch(torch.ones(3, 4), torch.tensor([0, 1, 1]), torch.arange(3)))
    assert not torch.equal(_weight(method, "net1"), before["net1"])
    assert torch.equal(_weight(method, "net2"), before["net2"])
    assert all(net.training for net in method.nets.values())
    with pytest.raises(ValueError, match="expected a name"):
        method.optimizer()


def test_a_shared_optimiser_holds_net1s_parameters_then_net2s():
    method = _seeded(_Joint)
    (opt,) = method.scheduled_optimizers()
    expected = [*method.nets["net1"].parameters(), *method.nets["net2"].parameters()]
    assert opt.param_groups[0]["params"] == expected and method.optimizer() is opt
    with pytest.raises(ValueError, match="one shared optimiser"):
        method.optimizer("net1")


def test_predict_is_the_test_net_alone_or_the_ensemble_sum():
    x = torch.randn(5, 4)
    single, joint, both = _seeded(_PerNet), _seeded(_Joint), _seeded(_Ensemble)
    with torch.no_grad():
        assert torch.equal(single.predict(x), single.nets["net1"](x))
        assert torch.equal(joint.predict(x), joint.nets["net2"](x))
        assert torch.equal(both.predict(x), both.nets["net1"](x) + both.nets["net2"](x))
    assert _PerNet.spec_flags() == frozenset() == _Joint.spec_flags()
    assert _Ensemble.spec_flags() == {MethodFlag.TWO_NET}


def test_a_checkpoint_restores_both_networks_and_optimisers():
    trained = _seeded(_PerNet, seed=1)
    trained.train_step(Batch(torch.ones(3, 4), torch.tensor([0, 1, 1]), torch.arange(3)))
    state = trained.state_dict()
    assert set(state["networks"]) == {"net1", "net2"} and len(state["optimizers"]) == 2
    fresh = _seeded(_PerNet, seed=2)
    fresh.load_state_dict(state)
    x = torch.randn(5, 4)
    assert torch.equal(fresh.predict(x), trained.predict(x))
    assert torch.equal(_weight(fresh, "net2"), _weight(trained, "net2"))
    with pytest.raises(KeyError):
        _seeded(_Joint).load_state_dict(state)  # one optimiser where the checkpoint has two


def test_builtin_two_net_methods_are_flagged_two_net_exactly_when_they_test_the_ensemble():
    methods: dict[str, Any] = {
        e.name: e.spec for e in plugins.get_host().registry("methods").entries()
    }
    two_net = {
        name: spec
        for name, spec in methods.items()
        if isinstance(spec.factory, type) and issubclass(spec.factory, TwoNetMethod)
    }
    assert {"coteaching", "jocor", "dividemix"} <= set(two_net)
    for spec in two_net.values():
        assert (MethodFlag.TWO_NET in spec.flags) == spec.factory.ensemble
    assert two_net["dividemix"].factory.ensemble and not two_net["jocor"].factory.ensemble
