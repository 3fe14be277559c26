"""The base of two-network methods (Co-teaching, JoCoR, DivideMix): the pair, its optimisers,
test-time prediction and checkpoints in one place, so each method writes only its step.

Why one base: these methods must agree on how the pair is built (``net1`` then ``net2`` from
``ctx.build_model``, so a run's seed gives the same initial weights whichever method trains
them) and on what a checkpoint holds; they differ only in one optimiser or two and in which
network(s) the test measures, which are class attributes here.
"""

from __future__ import annotations

from typing import ClassVar, cast

import torch
from torch import nn

from nlbench.core.specs import MethodFlag
from nlbench.training.method import Method, TrainContext

#: The two networks' names, in build order (also their checkpoint keys).
NETS: tuple[str, str] = ("net1", "net2")
#: Each network's peer.
PEER: dict[str, str] = {"net1": "net2", "net2": "net1"}
#: The key of ``TwoNetMethod.opts`` when one optimiser trains both networks.
JOINT = "joint"


class TwoNetMethod(Method):
    """Two networks, ``self.nets["net1"]`` and ``["net2"]``, built in that order.

    A subclass implements :meth:`train_step` (and, as any method, ``start_epoch`` and so on)
    and chooses with class attributes:

    - ``shared_optimizer``: False (default), one SGD optimiser per network,
      ``self.opts["net1"]``/``["net2"]`` (Co-teaching, DivideMix); True, one over both
      networks' parameters, net 1's first, ``self.opts["joint"]`` (JoCoR's official code).
      All follow the run's learning-rate schedule (:meth:`scheduled_optimizers`).
    - ``ensemble``: False (default), :meth:`predict` is ``test_net``'s logits alone (the
      papers of Co-teaching and JoCoR report one network); True, the sum of both networks'
      logits (DivideMix). Only an ensemble is a ``MethodFlag.TWO_NET`` method
      (:meth:`spec_flags`, for ``MethodSpec.flags``): the flag tells a board that the test
      measured two networks, not that two were trained.
    - ``test_net``: the network a non-ensemble predicts with (default ``"net1"``).

    Checkpoints are :meth:`Method.state_dict`'s: ``networks`` ``{"net1", "net2"}`` and
    ``optimizers`` in ``self.opts`` order, plus whatever the subclass registers with
    :meth:`~Method.register_state`.
    """

    shared_optimizer: ClassVar[bool] = False
    ensemble: ClassVar[bool] = False
    test_net: ClassVar[str] = "net1"

    def __init__(self, ctx: TrainContext) -> None:
        super().__init__(ctx)
        self.nets: dict[str, nn.Module] = {name: ctx.build_model() for name in NETS}
        if self.shared_optimizer:
            params = [p for net in self.nets.values() for p in net.parameters()]
            self.opts: dict[str, torch.optim.Optimizer] = {JOINT: ctx.make_optimizer(params)}
        else:
            self.opts = {
                name: ctx.make_optimizer(net.parameters()) for name, net in self.nets.items()
            }

    @classmethod
    def spec_flags(cls) -> frozenset[MethodFlag]:
        """The flags every run carries because of the pair: ``TWO_NET`` for an ensemble."""
        return frozenset({MethodFlag.TWO_NET}) if cls.ensemble else frozenset()

    def networks(self) -> dict[str, nn.Module]:
        return dict(self.nets)

    def scheduled_optimizers(self) -> list[torch.optim.Optimizer]:
        return list(self.opts.values())

    def optimizer(self, name: str | None = None) -> torch.optim.Optimizer:
        """Network ``name``'s optimiser; the joint one (``name`` None) with a shared optimiser."""
        key = JOINT if self.shared_optimizer else name
        if key is None or (self.shared_optimizer and name is not None):
            want = "no network name (one shared optimiser)" if self.shared_optimizer else "a name"
            raise ValueError(f"{type(self).__name__}.optimizer({name!r}): expected {want}")
        return self.opts[key]

    def step(self, loss: torch.Tensor, name: str | None = None) -> None:
        """Zero the gradients, back-propagate ``loss`` and step :meth:`optimizer` ``(name)``."""
        opt = self.optimizer(name)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def forward_pair(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Both networks in train mode on one batch: float32 logits of net 1 and of net 2."""
        for net in self.nets.values():
            net.train()
        with self.ctx.autocast():
            return self.nets["net1"](x).float(), self.nets["net2"](x).float()

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Test-time logits: ``test_net``'s, or with ``ensemble`` the sum of both networks'."""
        with self.ctx.autocast():
            if not self.ensemble:
                return cast(torch.Tensor, self.nets[self.test_net](x)).float()
            return cast(torch.Tensor, sum(self.nets[name](x).float() for name in NETS))
