"""Weightings: what the meta-gradient trains and how it turns into per-sample weights.

:class:`MetaNetWeighting` (MW-Net, FaMUS): a persistent meta-net on the detached loss, stepped by
its meta-gradient; the actual step uses the weights the *updated* meta-net gives (Eq. (6)).
:class:`PerturbationWeighting` (L2R): per-step perturbations ε = 0, weights
``max(−∂L_meta/∂ε, 0)`` normalised to sum one (Eqs. (3)–(6)); the clean cost includes the
network's weight decay, as the official ``model.cost``.

A rule (:mod:`.rules`) differentiates the meta loss with respect to :attr:`targets` through
:meth:`weigh` (exact look-ahead) or :meth:`weights` (first-order rules).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import torch
from torch import nn
from torch.optim.optimizer import ParamsT

from nlbench.api import TrainContext, UsageError
from nlbench.api.algorithms import distributed, metagrad
from nlbench_plugins.meta.probe import WEIGHT_FN, WeightProbe


class VNet(nn.Module):
    """MW-Net's weighting function: Linear(1→h)–ReLU–Linear(h→1)–Sigmoid on the loss."""

    def __init__(self, hidden: int = 100) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(1, hidden), nn.ReLU(), nn.Linear(hidden, 1))

    def forward(self, loss: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.net(loss.reshape(-1, 1))).reshape(-1)


def meta_optimizer(params: ParamsT, hp: dict[str, Any]) -> torch.optim.Optimizer:
    """Adam(lr β, wd) as the stable MW-Net code, or SGD(β, m 0.9, Nesterov, wd) as FaMUS."""
    name = str(hp["meta_opt"])
    if name == "adam":
        return torch.optim.Adam(params, lr=float(hp["meta_lr"]), weight_decay=float(hp["meta_wd"]))
    if name == "sgd":
        return torch.optim.SGD(
            params,
            lr=float(hp["meta_lr"]),
            momentum=0.9,
            nesterov=True,
            weight_decay=float(hp["meta_wd"]),
        )
    raise UsageError(f"meta_opt '{name}': accepted adam, sgd")


DECAY_SCOPES = (None, "weights")  # None: every tensor
_KERNELS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)


def decay_groups(model: nn.Module, scope: str | None) -> list[dict[str, Any]]:
    """The network's parameter groups for its optimiser (and so for L2R's clean cost, which
    :func:`decay_map` reads from them).

    None: one group, every tensor decayed (every other method of the suite).
    ``weights``: only the convolution kernels and linear weights are decayed, as in the official
    L2R, whose ResNet puts an L2 regulariser on each conv kernel and the final layer's weight and
    none on biases or batch-norm parameters (``models/cnn/resnet_module.py``).
    """
    params = [p for p in model.parameters() if p.requires_grad]
    if scope is None:
        return [{"params": params}]
    if scope not in DECAY_SCOPES:
        raise UsageError(f"decay_scope '{scope}': accepted null (every tensor), weights")
    kernels = {id(m.weight) for m in model.modules() if isinstance(m, _KERNELS)}
    decayed = [p for p in params if id(p) in kernels]
    rest = [p for p in params if id(p) not in kernels]
    groups: list[dict[str, Any]] = [{"params": decayed}, {"params": rest, "weight_decay": 0.0}]
    return [g for g in groups if g["params"]]


def decay_map(model: nn.Module, opt: torch.optim.Optimizer) -> dict[str, float]:
    """Each trainable tensor's weight decay in the network's optimizer: L2R's clean cost adds
    ``λ/2·‖ŵ‖²`` as the official ``model.cost`` (cross-entropy plus the L2 decay) does."""
    wd = {id(p): float(g.get("weight_decay", 0.0)) for g in opt.param_groups for p in g["params"]}
    return {
        n: wd[id(p)] for n, p in model.named_parameters() if p.requires_grad and wd.get(id(p), 0.0)
    }


class MetaNetWeighting:
    """MW-Net: weights ``W(ℓ; θ)`` of a meta-net θ, normalised by ``weight_norm``."""

    lookahead = True  # first-order rules: the meta direction is taken at the virtual weights
    grad_stats = True  # FaMUS's L_g reaches θ through the training gradient
    decay: dict[str, float] | None = None  # the meta loss is plain cross-entropy

    def __init__(self, ctx: TrainContext, model: nn.Module, opt: torch.optim.Optimizer) -> None:
        self.hp = ctx.hparams
        self.vnet = VNet(int(self.hp["meta_hidden"])).to(ctx.device)
        self.vopt = meta_optimizer(self.vnet.parameters(), self.hp)
        self.probe = WeightProbe()  # the epoch's weighed losses (MW-Net's weight function)

    @property
    def targets(self) -> list[torch.Tensor]:
        return list(self.vnet.parameters())

    def begin(self, n: int, device: torch.device) -> None:
        """Nothing per step: the meta-net persists."""

    def weights(self, losses: torch.Tensor) -> torch.Tensor:
        """Normalised weights of detached losses (graph to the meta-net)."""
        return metagrad.normalise_weights(self.vnet(losses), str(self.hp["weight_norm"]))

    def weigh(self, losses: torch.Tensor) -> torch.Tensor:
        """``Σ W(ℓ_i) ℓ_i``: graph to the meta-net and, through ℓ, to the network."""
        return (self.weights(losses.detach()) * losses).sum()

    def update(
        self, grads: tuple[torch.Tensor, ...], losses: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Step the meta-net (gradients averaged over DDP ranks, so every rank's meta-net stays
        the same), then the actual step's weights from the *updated* meta-net."""
        theta = self.targets
        self.vopt.zero_grad(set_to_none=True)
        for p, g in zip(theta, grads):
            p.grad = g
        distributed.average_grads(theta)
        self.vopt.step()
        with torch.no_grad():
            raw = self.vnet(losses.detach())
            w = metagrad.normalise_weights(raw, str(self.hp["weight_norm"]))
        self.probe.add(losses)
        return w, {"weight_mean": raw.mean()}

    @torch.no_grad()
    def scores(self, losses: Callable[[], torch.Tensor]) -> torch.Tensor | None:
        """The meta-net's weight of each training loss (``losses()``: the scan's), as a clean
        score (detection AUC)."""
        return cast(torch.Tensor, self.vnet(losses())).float()

    def take_curve(self) -> dict[str, Any]:
        """The meta-net's weight at this epoch's loss quantiles and a fixed grid (and reset)."""
        curve: dict[str, Any] = self.probe.take(self.vnet)
        return curve

    def record_info(self) -> dict[str, Any]:
        hp = self.hp
        return {
            "weight_norm": hp["weight_norm"],
            "meta_opt": hp["meta_opt"],
            "meta_lr": hp["meta_lr"],
            "weight_fn": WEIGHT_FN,
        }

    def state(self) -> dict[str, Any]:
        return {"vnet": self.vnet.state_dict(), "vopt": self.vopt.state_dict()}

    def load(self, state: dict[str, Any]) -> None:
        if "vnet" in state:
            self.vnet.load_state_dict(state["vnet"])
            self.vopt.load_state_dict(state["vopt"])


class PerturbationWeighting:
    """L2R: per-example perturbations ε (zero each step), no persistent meta-network."""

    lookahead = False  # ε = 0 leaves ŵ = w: the meta direction is taken at w
    grad_stats = False  # the training gradient at ε = 0 is zero: L_g has no gradient there

    def __init__(self, ctx: TrainContext, model: nn.Module, opt: torch.optim.Optimizer) -> None:
        self.decay: dict[str, float] | None = decay_map(model, opt)
        self.scope = ctx.hparams.get("decay_scope")
        self.eps = torch.zeros(0)

    @property
    def targets(self) -> list[torch.Tensor]:
        return [self.eps]

    def begin(self, n: int, device: torch.device) -> None:
        """This step's ε = 0, one per example."""
        self.eps = torch.zeros(n, device=device, requires_grad=True)

    def weights(self, losses: torch.Tensor) -> torch.Tensor:
        return self.eps

    def weigh(self, losses: torch.Tensor) -> torch.Tensor:
        return (self.eps * losses).sum()

    def update(
        self, grads: tuple[torch.Tensor, ...], losses: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """``max(−∂L_meta/∂ε, 0)`` normalised to sum one (an all-zero batch stays zero)."""
        (g,) = grads
        w = metagrad.normalise_weights((-g).clamp_min(0), "sum").detach()
        return w, {"weight_zero_frac": (w == 0).float().mean()}

    def scores(self, losses: Callable[[], torch.Tensor]) -> torch.Tensor | None:
        """None (and no scan): ε is per step, so a sample has no weight between steps."""
        return None

    def take_curve(self) -> dict[str, Any]:
        return {}

    def record_info(self) -> dict[str, Any]:
        decayed = "every tensor" if self.scope is None else "conv and linear weights"
        return {
            "clean_cost": "mean CE + weight_decay/2 * ||w||^2 (official model.cost)",
            "decayed": f"{decayed} (decay_scope={self.scope or 'null'})",
        }

    def state(self) -> dict[str, Any]:
        return {}

    def load(self, state: dict[str, Any]) -> None:
        """Nothing persists."""
