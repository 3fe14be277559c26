"""Look-ahead meta-gradients for meta-reweighting (MW-Net, L2R, FaMUS) without model copies.

One step of a meta-reweighting method (Shu et al. 2019 Eqs. (4)–(6); Ren et al. 2018 Eqs. (3)–(6);
FaMUS supplement Eqs. (1)–(6)):

* virtual step ``ŵ(θ) = w − α ∇_w L_w(θ)``, ``L_w = Σ_i W_i(θ) ℓ_i(w)`` with the live learning rate
  α (the optimizer's current lr), as plain SGD: the papers' code takes the look-ahead without
  momentum or weight decay, and so does this module;
* meta loss ``L_meta(ŵ)``: mean cross-entropy on a trusted (or pseudo-clean) batch (L2R adds
  the weight-decay cost of ŵ, as its official clean cost does);
* ``∂L_meta/∂θ`` by double backward (``torch.autograd.grad(create_graph=True)``) through
  ``torch.func.functional_call`` on the live module: no copy of the network per step.

Batch norm: functional_call writes running statistics into the buffers it is given, so every
extra forward here gets *clones* of the buffers; the real model's statistics move only in the
forward that the actual step uses. With ``reuse=True`` that forward is the look-ahead's first
forward (plain ``model(x)``), whose per-sample losses — same parameters, same batch — the actual
step then reuses, saving one forward pass.

FaMUS (``select``/``gates``, paper Eq. 9 and the official ``grad_operator_layer.py``): every
layer takes the look-ahead move, so the meta loss is evaluated at the full look-ahead weights;
only the layers in ``select`` carry a meta-gradient through their move (the others move by their
detached gradient), and the meta backward builds no graph below the deepest selected or gated
layer. Unsampled gated layers move by ``(1 − r)·g`` (detached g), which is how their gates get
gradient. With every layer selected and unit gates this is exactly the full meta-gradient.

The exact path stays eager: torch.compile cannot trace the double backward. ``fd_directional``
gives the finite-difference alternative (DARTS' Eq. (8) trick, Liu et al. 2019): the only
second-order quantity, ``<∇_w ℓ_i, v>``, is a directional derivative of each per-sample loss,
taken as a central difference of two forward passes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from nlbench.algorithms.autograd_modes import batch_stats_only, decomposed_bn, eager  # noqa: F401 (API)
from nlbench.algorithms.mixmatch import full_precision

Weigh = Callable[[torch.Tensor], torch.Tensor]


def trainable(model: nn.Module) -> dict[str, torch.Tensor]:
    """The model's trainable parameters by name (the live leaves, not copies)."""
    return {n: p for n, p in model.named_parameters() if p.requires_grad}


def buffer_clones(model: nn.Module) -> dict[str, torch.Tensor]:
    """Clones of every buffer: extra forwards update these, never the real running stats."""
    return {n: b.clone() for n, b in model.named_buffers()}


def virtual_logits(
    model: nn.Module, params: Mapping[str, torch.Tensor], x: torch.Tensor
) -> torch.Tensor:
    """Logits of ``model`` at ``params`` on buffer clones (no running-statistic side effects)."""
    return full_precision(functional_call(model, (dict(params), buffer_clones(model)), (x,)))


def per_sample_ce(
    model: nn.Module,
    params: Mapping[str, torch.Tensor],
    x: torch.Tensor,
    y: torch.Tensor,
    buffers: Mapping[str, torch.Tensor] | None = None,
) -> torch.Tensor:
    """Per-sample cross-entropy of ``model`` evaluated at ``params`` (buffer clones by default)."""
    bufs = buffer_clones(model) if buffers is None else dict(buffers)
    logits = functional_call(model, (dict(params), bufs), (x,))
    return F.cross_entropy(full_precision(logits), y, reduction="none")


def normalise_weights(w: torch.Tensor, mode: str) -> torch.Tensor:
    """Per-sample weights as the loss uses them.

    ``mean``: ``w / B`` (stable MW-Net, ``sum(w·ℓ)/B``); ``sum``: ``w / Σw`` with a zero-sum
    guard (old WRN MW-Net code and FaMUS; L2R's Eq. (6)): an all-zero batch stays all zero.
    """
    if mode == "mean":
        return w / w.numel()
    if mode == "sum":
        s = w.sum()
        return w / torch.where(s != 0, s, torch.ones_like(s))
    raise ValueError(f"weight normalisation '{mode}': accepted mean, sum")


@dataclass
class Virtual:
    """One look-ahead: per-sample training losses, the virtual parameters, the gradients.

    ``losses`` keep their graph to ``w`` (the actual step may reuse them); ``grads`` are the
    training gradients ``∇_w L_w`` of every used tensor, with their graph to the weighting
    parameters (FaMUS's ``L_g`` differentiates the classifier's).
    """

    losses: torch.Tensor
    fast: dict[str, torch.Tensor]
    grads: dict[str, torch.Tensor] = field(default_factory=dict)


def train_gradients(
    model: nn.Module,
    x: torch.Tensor | None,
    y: torch.Tensor | None,
    weigh: Weigh,
    *,
    reuse: bool = False,
    losses: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Per-sample losses and ``∇_w L_w`` of every trainable tensor, with graph (create_graph).

    ``reuse``: first forward = ``model(x)`` on the real buffers (its losses serve the actual
    step); otherwise a functional forward on buffer clones. ``losses``: precomputed per-sample
    losses with graph to the live parameters. Tensors the loss does not use are left out.
    """
    params = trainable(model)
    if losses is None:
        assert x is not None and y is not None, "no losses given: needs the batch"
        with decomposed_bn(model):  # its graph is differentiated twice
            if reuse:
                losses = F.cross_entropy(full_precision(model(x)), y, reduction="none")
            else:
                losses = per_sample_ce(model, params, x, y)
    grads = torch.autograd.grad(
        weigh(losses),
        list(params.values()),
        create_graph=True,
        retain_graph=True,
        allow_unused=True,
    )
    return losses, {n: g for n, g in zip(params, grads) if g is not None}


def look_ahead(
    params: Mapping[str, torch.Tensor],
    grads: Mapping[str, torch.Tensor],
    lr: float,
    *,
    select: Iterable[str] | None = None,
    gates: Mapping[str, torch.Tensor] | None = None,
) -> dict[str, torch.Tensor]:
    """``ŵ_l = w_l − α·m_l`` for *every* layer l (paper Eq. 9; FaMUS ``grad_operator_layer``).

    ``m_l = g_l`` on the layers in ``select`` (all by default): they carry the meta-gradient.
    Elsewhere ``m_l = g_l.detach()``: the layer still moves, so ``L_meta`` is taken at the full
    look-ahead weights, but no meta-gradient flows through its move. A gated layer (``gates``,
    straight-through r_l ∈ {0, 1}) moves by ``r_l·g_l`` when selected and by
    ``(1 − r_l)·g_l.detach()`` when not, so an unsampled gate still gets gradient.
    """
    chosen = None if select is None else set(select)
    fast = {}
    for n, p in params.items():
        g = grads.get(n)
        on = chosen is None or n in chosen
        if g is None:  # unused by the loss (e.g. a frozen branch): no move
            fast[n] = p if on else p.detach()
            continue
        r = gates.get(n) if gates is not None else None
        if on:
            fast[n] = p - lr * (g if r is None else r * g)
        else:
            g = g.detach()
            fast[n] = p.detach() - lr * (g if r is None else (1 - r) * g)
    return fast


def virtual_step(
    model: nn.Module,
    x: torch.Tensor | None,
    y: torch.Tensor | None,
    weigh: Weigh,
    lr: float,
    *,
    select: Iterable[str] | None = None,
    gates: Mapping[str, torch.Tensor] | None = None,
    reuse: bool = False,
    losses: torch.Tensor | None = None,
) -> Virtual:
    """:func:`train_gradients` then :func:`look_ahead` (every layer moves at the live lr α).

    Args:
        weigh: maps the per-sample losses ℓ (with graph) to the weighted loss ``L_w`` whose
            dependence on the weighting parameters is kept (create_graph).
        select: names of the layers whose move carries a meta-gradient (FaMUS); the others
            move by their detached gradient.
        gates: per-layer straight-through scalars r_l (see :func:`look_ahead`).
    """
    losses, grads = train_gradients(model, x, y, weigh, reuse=reuse, losses=losses)
    fast = look_ahead(trainable(model), grads, lr, select=select, gates=gates)
    return Virtual(losses, fast, grads)


def decay_penalty(fast: Mapping[str, torch.Tensor], decay: Mapping[str, float]) -> torch.Tensor:
    """``Σ_n λ_n/2·‖ŵ_n‖²``: the L2 weight-decay cost (gradient ``λ·w``, as SGD's weight_decay)."""
    terms = [0.5 * wd * fast[n].pow(2).sum() for n, wd in decay.items() if wd and n in fast]
    return torch.stack(terms).sum() if terms else torch.zeros(())


def meta_loss(
    model: nn.Module,
    fast: Mapping[str, torch.Tensor],
    meta_x: torch.Tensor,
    meta_y: torch.Tensor | None,
    objective: Callable[[torch.Tensor], torch.Tensor] | None = None,
    decay: Mapping[str, float] | None = None,
) -> torch.Tensor:
    """Mean cross-entropy of the virtual model on the meta batch (buffer clones), or
    ``objective(logits)`` (FaMUS's MixMatch variant: soft targets plus the prior penalty);
    ``decay`` adds :func:`decay_penalty` (L2R's clean cost includes the weight decay)."""
    if objective is None:
        assert meta_y is not None, "a cross-entropy meta loss needs labels"
        out = per_sample_ce(model, fast, meta_x, meta_y).mean()
    else:
        out = objective(virtual_logits(model, fast, meta_x))
    if decay:
        out = out + decay_penalty(fast, decay).to(out)
    return out


@dataclass
class MetaGrad:
    """Result of :func:`meta_gradient`: gradients wrt the targets, the losses, the meta loss."""

    grads: tuple[torch.Tensor, ...]
    losses: torch.Tensor
    meta_loss: torch.Tensor


def meta_gradient(
    model: nn.Module,
    x: torch.Tensor | None,
    y: torch.Tensor | None,
    weigh: Weigh,
    targets: Iterable[torch.Tensor],
    meta_x: torch.Tensor,
    meta_y: torch.Tensor | None,
    lr: float,
    *,
    select: Iterable[str] | None = None,
    reuse: bool = False,
    losses: torch.Tensor | None = None,
    meta_objective: Callable[[torch.Tensor], torch.Tensor] | None = None,
    decay: Mapping[str, float] | None = None,
) -> MetaGrad:
    """``∂L_meta(ŵ(θ))/∂θ`` for ``targets`` θ (meta-net parameters, or L2R's ε).

    With ``reuse`` the graph of the first forward survives (retain_graph) so the actual step
    can backpropagate ``Σ w_i ℓ_i`` through the returned ``losses``. ``losses`` (computed by the
    caller from its own first forward) and ``meta_objective`` replace the cross-entropies;
    ``decay`` (name → λ) adds the weight-decay cost of the virtual weights to the meta loss.
    """
    targets = list(targets)
    v = virtual_step(model, x, y, weigh, lr, select=select, reuse=reuse, losses=losses)
    lm = meta_loss(model, v.fast, meta_x, meta_y, meta_objective, decay)
    grads = torch.autograd.grad(lm, targets, retain_graph=reuse, allow_unused=True)
    grads = tuple(torch.zeros_like(t) if g is None else g for g, t in zip(grads, targets))
    return MetaGrad(grads, v.losses, lm.detach())


# -- finite-difference alternative ---------------------------------------------------------
@torch.no_grad()
def fd_directional(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    direction: Mapping[str, torch.Tensor],
    eps: float = 1e-2,
) -> torch.Tensor:
    """``d_i ≈ <∇_w ℓ_i(w), v>`` for every sample by a central difference along ``v``.

    The step is ``eps / ‖v‖`` (DARTS). Both forwards use buffer clones (no BN side effects).
    """
    params = {n: p.detach() for n, p in trainable(model).items()}
    norm = torch.sqrt(cast(torch.Tensor, sum((d.float() ** 2).sum() for d in direction.values())))
    h = eps / norm.clamp_min(1e-12)

    def shifted(sign: float) -> dict[str, torch.Tensor]:
        return {n: p + sign * h * direction[n] if n in direction else p for n, p in params.items()}

    up = per_sample_ce(model, shifted(1.0), x, y)
    down = per_sample_ce(model, shifted(-1.0), x, y)
    return (up - down) / (2 * h)


def meta_direction(
    model: nn.Module,
    fast: Mapping[str, torch.Tensor],
    meta_x: torch.Tensor,
    meta_y: torch.Tensor,
    decay: Mapping[str, float] | None = None,
) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """``v = ∇_ŵ L_meta(ŵ)`` at detached virtual parameters, and the meta loss."""
    leaves = {n: p.detach().requires_grad_(True) for n, p in fast.items()}
    lm = meta_loss(model, leaves, meta_x, meta_y, decay=decay)
    grads = torch.autograd.grad(lm, list(leaves.values()), allow_unused=True)
    v = {n: g for n, g in zip(leaves, grads) if g is not None}
    return v, lm.detach()


def jvp_directional(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    direction: Mapping[str, torch.Tensor],
) -> torch.Tensor:
    """``d_i = <∇_w ℓ_i(w), v>`` exactly, by one forward-mode pass (``torch.func.jvp``).

    The same quantity the double backward computes (Σ_i ∂W_i/∂θ · d_i is the chain rule of
    supplement Eq. (3)), at about two forwards' cost instead of a second-order backward.
    """
    params = {n: p.detach() for n, p in trainable(model).items()}
    tangents = {
        n: direction[n] if n in direction else torch.zeros_like(p) for n, p in params.items()
    }
    buffers = dict(model.named_buffers())

    def losses(p: dict[str, torch.Tensor]) -> torch.Tensor:
        return F.cross_entropy(
            full_precision(functional_call(model, (p, buffers), (x,))), y, reduction="none"
        )

    with batch_stats_only(model):
        d: torch.Tensor = torch.func.jvp(losses, (params,), (tangents,))[1]
    return d.detach()


def cosine(a: Iterable[torch.Tensor], b: Iterable[torch.Tensor]) -> torch.Tensor:
    """Cosine similarity of two gradient lists, flattened (validates fd against exact)."""
    va = torch.cat([t.reshape(-1).double() for t in a])
    vb = torch.cat([t.reshape(-1).double() for t in b])
    cos: torch.Tensor = (va @ vb) / (va.norm() * vb.norm()).clamp_min(1e-300)
    return cos


def fd_meta_gradient(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    weights: Callable[[torch.Tensor], torch.Tensor],
    targets: Iterable[torch.Tensor],
    meta_x: torch.Tensor,
    meta_y: torch.Tensor,
    lr: float,
    *,
    reuse: bool = False,
    lookahead: bool = True,
    eps: float = 1e-2,
    mode: str = "fd",
    decay: Mapping[str, float] | None = None,
) -> MetaGrad:
    """The meta-gradient with first-order backward passes only (``meta_grad=fd|jvp``).

    ``dL_meta/dθ = −α Σ_i (∂W_i/∂θ) <∇_w ℓ_i(w), v>`` with ``v = ∇L_meta(ŵ)`` (chain rule
    through the virtual step, supplement Eq. (3)); the inner products come from
    :func:`fd_directional` (``fd``) or exactly from :func:`jvp_directional` (``jvp``).
    ``weights(ℓ_detached)`` returns the normalised weights with their
    graph to θ. ``lookahead=False`` evaluates ``v`` at ``w`` (L2R: ε = 0 leaves ŵ = w).
    """
    targets = list(targets)
    params = trainable(model)
    if reuse:
        losses = F.cross_entropy(full_precision(model(x)), y, reduction="none")
    else:
        losses = per_sample_ce(model, params, x, y)
    w = weights(losses.detach())
    if lookahead:
        g = torch.autograd.grad(
            (w.detach() * losses).sum(),
            list(params.values()),
            retain_graph=reuse,
            allow_unused=True,
        )
        fast = {
            n: p.detach() - lr * gi if gi is not None else p.detach()
            for (n, p), gi in zip(params.items(), g)
        }
    else:
        fast = {n: p.detach() for n, p in params.items()}
    v, lm = meta_direction(model, fast, meta_x, meta_y, decay)
    d = jvp_directional(model, x, y, v) if mode == "jvp" else fd_directional(model, x, y, v, eps)
    grads = torch.autograd.grad(-lr * (w * d).sum(), targets, allow_unused=True)
    grads = tuple(torch.zeros_like(t) if gi is None else gi for gi, t in zip(grads, targets))
    return MetaGrad(grads, losses, lm)
