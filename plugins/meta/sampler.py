"""FaMUS layer-wise gradient samplers (Xu et al., CVPR 2021, §3.2 and supplement Alg. 1).

Not a plugin (no entry point): ``method_famus``, ``method_mwnet`` and ``method_l2r`` use it.

Per gated layer l a small MLP Γ(·; η_l) (in → 128 → PReLU → 128 → PReLU → 2) reads the layer's
look-ahead gradient, summed per output channel and standardised, and a hard Gumbel-softmax
(temperature 5, straight-through) draws the gate r_l ∈ {0, 1}. Every layer moves in the
look-ahead (:func:`nlbench.algorithms.metagrad.look_ahead`): sampled gated layers by ``r_l·g_l``
(they carry
the meta-gradient), unsampled ones by ``(1 − r_l)·g_l.detach()``, layers below the gated ones by
their detached gradient, the classifier by ``g``. The samplers learn with SGD (lr δ, momentum
0.9, Nesterov, no weight decay: the official ``build_grad_models``) from the meta loss (through
r_l) plus

* ``L_r = (Σ_l r_l − K)²`` (λ_r): about K layers per step. The released code appends the gate
  activations outside its layer loop, so its ``L_r`` only sees the *last* gate; we use the
  paper's sum over all gates and keep the quirk behind ``famus_reg_quirk=true``.

and the meta-net (MW-Net) additionally from

* ``L_g`` (λ_g, paper Eqs. 11–12): per output row of the classifier's weight (whole tensor for
  its bias), squared differences of the mean and std of the *training* gradient (graph to the
  meta-net) and the detached meta-loss gradient at the look-ahead weights.

Choices of this re-implementation (no official CIFAR code exists; the sampler follows
``grad_operator_layer.py`` of the official CNWL code):
* gated = the last ``famus_gated`` (15) parameter tensors in forward order (found from the
  autograd graph) but the classifier's weight and bias, which are always kept;
* the class-1 bias starts at log(K/(L−K)), so a fresh sampler picks K of L layers on average;
* the layer choice shapes the autograd graph, so it is read on the host: one tiny
  device→host copy per step (famus only).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from nlbench.api.algorithms import full_precision


def forward_order(model: nn.Module, x: torch.Tensor) -> list[str]:
    """Trainable parameter names from the input side to the output side.

    Registration order is not forward order (timm-style nets register the classifier first),
    so walk the autograd graph of one forward (on buffer clones: no BN side effects) and sort
    by the backward distance from the loss; the longest distance comes first.
    """
    from nlbench.api.algorithms import buffer_clones, trainable

    params = trainable(model)
    ids = {id(p): n for n, p in params.items()}
    out = torch.func.functional_call(model, (params, buffer_clones(model)), (x,))
    depth: dict[str, int] = {}
    frontier, seen, d = [out.sum().grad_fn], set(), 0
    while frontier:
        nxt: list = []
        for fn in frontier:
            if fn is None or fn in seen:
                continue
            seen.add(fn)
            var = getattr(fn, "variable", None)
            if var is not None and id(var) in ids:
                depth.setdefault(ids[id(var)], d)
            nxt.extend(f for f, _ in fn.next_functions)
        frontier, d = nxt, d + 1
    unused = [n for n in params if n not in depth]
    return unused + sorted(depth, key=lambda n: -depth[n])


def gated_names(order: list[str], gated: int, kept: list[str]) -> tuple[list[str], list[str]]:
    """(gated, always kept): the last ``gated`` tensors of ``order`` minus the classifier's."""
    rest = [n for n in order if n not in set(kept)]
    return rest[max(0, len(rest) - (gated - len(kept))) :], list(kept)


def hard_gumbel(logits: torch.Tensor, tau: float, gen: torch.Generator | None) -> torch.Tensor:
    """Straight-through hard Gumbel-softmax over the last dim with an explicit generator."""
    u = torch.rand(logits.shape, generator=gen, device=logits.device, dtype=logits.dtype)
    gumbel = -torch.log(-torch.log(u.clamp(1e-10, 1 - 1e-7)))
    soft = F.softmax((logits + gumbel) / tau, dim=-1)
    hard = F.one_hot(soft.argmax(-1), logits.shape[-1]).to(soft.dtype)
    return hard - soft.detach() + soft


def channel_sums(grad: torch.Tensor | None, channels: int, device: torch.device) -> torch.Tensor:
    """Per-output-channel sum of a gradient, standardised ``(s − mean)/(std + 1e-9)`` (the
    official ``input_norm``); zeros when there is no gradient or a single channel. Half-precision
    gradients are summed in float32; float32 and float64 ones in their own dtype."""
    if grad is None or channels < 2:
        return torch.zeros(channels, device=device)
    s = full_precision(grad.detach()).reshape(channels, -1).sum(1)
    return (s - s.mean()) / (s.std() + 1e-9)


class LayerSamplers(nn.Module):
    """One gate network per gated layer; ``forward`` returns the straight-through gates."""

    def __init__(
        self, shapes: dict[str, torch.Size], k: int, hidden: int = 128, tau: float = 5.0
    ) -> None:
        super().__init__()
        self.names = list(shapes)
        self.channels = [int(s[0]) if len(s) else 1 for s in shapes.values()]
        self.tau = float(tau)
        n = max(1, len(self.names))
        prior = math.log(max(k, 1e-3) / max(n - k, 1e-3))
        self.nets = nn.ModuleList()
        for c in self.channels:
            body = [nn.Linear(c, hidden), nn.PReLU(), nn.Linear(hidden, hidden), nn.PReLU()]
            last = nn.Linear(hidden, 2)  # created last: the same initialisation draws
            with torch.no_grad():
                last.weight.mul_(0.1)
                last.bias.copy_(torch.tensor([0.0, prior]))
            self.nets.append(nn.Sequential(*body, last))

    def forward(
        self, grads: dict[str, torch.Tensor | None], gen: torch.Generator | None
    ) -> torch.Tensor:
        """Gates r (L,) with value 0/1 and the soft sample's gradient (straight-through)."""
        device = next(self.parameters()).device
        logits = torch.stack(
            [
                net(channel_sums(grads.get(name), c, device))
                for name, c, net in zip(self.names, self.channels, self.nets)
            ]
        )
        return hard_gumbel(logits, self.tau, gen)[:, 1]


def count_penalty(r: torch.Tensor, k: int, quirk: bool = False) -> torch.Tensor:
    """``(Σ r − K)²``; with ``quirk`` the released code's ``(r_last − K)²``."""
    return (r[-1] - k) ** 2 if quirk else (r.sum() - k) ** 2


def grad_stat_penalty(train: list[torch.Tensor], meta: list[torch.Tensor]) -> torch.Tensor:
    """``L_g`` (Eqs. 11–12) summed over the classifier's tensors.

    Per output row of a matrix (the whole tensor for a vector): ``(mean_t − mean_m)² +
    (std_t − std_m)²``, averaged over rows; ``train`` keeps its graph (to the meta-net),
    ``meta`` (the meta loss's gradient at the look-ahead weights) is the detached target.
    """
    total = torch.zeros((), device=train[0].device, dtype=full_precision(train[0]).dtype)
    for t, m in zip(train, meta):
        t, m = full_precision(t), full_precision(m.detach())
        if t.dim() >= 2:
            t, m = t.reshape(t.shape[0], -1), m.reshape(m.shape[0], -1)
            diff = (t.mean(1) - m.mean(1)) ** 2 + (t.std(1) - m.std(1)) ** 2
        else:
            diff = (t.mean() - m.mean()) ** 2 + (t.std() - m.std()) ** 2
        total = total + diff.mean()
    return total
