"""What ``mwnet``, ``l2r`` and ``famus`` share: meta batches, one network's meta step.

Not a plugin (no entry point). A :class:`Learner` owns one network with its optimizer, the
weighting parameters (MW-Net's meta-net; L2R has none), optional FaMUS samplers and the meta
batches it draws from; :meth:`Learner.step` is Algorithm 1 of the FaMUS supplement (virtual
step → meta step → actual step with the weights recomputed by the updated meta-net).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from nlbench import distributed, metagrad
from nlbench.errors import UsageError
from nlbench.hparam_types import Bool, Choice, Float, Int, Optional, Str
from nlbench.method import TrainContext
from nlbench_plugins._famus_sampler import (
    LayerSamplers,
    count_penalty,
    forward_order,
    gated_names,
    grad_stat_penalty,
)
from nlbench_plugins._meta_batches import MetaBatches
from nlbench_plugins._meta_weights import WeightProbe

META_GRADS = ("exact", "jvp", "fd")
COMMON_HPARAMS: dict[str, Any] = {
    # clean:N (trusted hold-out) or pseudo (GMM pseudo-clean set)
    "meta_set": Str(
        "clean:1000",
        pattern=r"clean:[1-9][0-9]*|pseudo",
        doc="meta set: clean:N (trusted hold-out) or pseudo (GMM pseudo-clean set)",
    ),
    "meta_batch_size": Optional(Int(None, low=1, doc="meta batch; null: batch_size")),
    "meta_grad": Choice(
        "exact",
        META_GRADS,
        doc="exact (double backward), jvp (exact, forward-mode), fd (finite differences)",
    ),
    "fd_eps": Float(0.01, low=0, low_open=True, high=1, doc="fd step = fd_eps / ||v|| (DARTS)"),
    "reuse_forward": Bool(True, doc="the actual step reuses the look-ahead's forward (same maths)"),
    "warmup_epochs": Int(10, low=0, doc="pseudo meta set: plain CE epochs before the first GMM"),
    "p_threshold": Float(
        0.5, low=0, high=1, high_open=True, doc="pseudo meta set = clean probability above this"
    ),
    "famus": Bool(False, doc="FaMUS layer sampling as a speed-up plug-in"),
    "famus_k": Int(4, low=1, doc="K: layers sampled per step"),
    "famus_gated": Int(15, low=1, doc="the last N parameter tensors are gated (final two kept)"),
    "famus_lr": Float(0.1, low=0, high=10, doc="δ: sampler SGD lr"),
    "famus_tau": Float(5.0, low=0, low_open=True, high=1e6, doc="Gumbel-softmax temperature"),
    "famus_lambda_r": Float(0.1, low=0, high=1e6, doc="λ_r of (Σr − K)²"),
    "famus_lambda_g": Float(0.1, low=0, high=1e6, doc="λ_g of the gradient-statistics regulariser"),
    "famus_reg_quirk": Bool(False, doc="L_r sees only the last gate (the released code)"),
    # Clothing1M (FaMUS supplement §E): each network's epoch is this many mini-batches drawn
    # from a fresh pool balanced by noisy label; None → one pass over the whole train set
    "batches_per_epoch": Optional(
        Int(
            None,
            low=1,
            doc="mini-batches per epoch from a pool balanced by noisy label; null: one pass",
        )
    ),
}
MWNET_HPARAMS: dict[str, Any] = {
    "meta_lr": Float(1e-3, low=0, high=10, doc="β: meta-net lr"),
    "meta_opt": Choice(
        "adam", ("adam", "sgd"), doc="adam (stable MW-Net.py) | sgd (WRN script, FaMUS)"
    ),
    "meta_wd": Float(1e-4, low=0, high=1, doc="meta-net weight decay"),
    "meta_hidden": Int(100, low=1, doc="meta-net hidden units"),
    # sum: w/Σw (WRN script, FaMUS) | mean: sum(w·ℓ)/B (stable MW-Net.py). Default sum: with
    # mean the meta-net can lower the meta loss by scaling every weight up (a larger effective
    # lr) and on digits 60 % it does (weights → 1, ERM accuracy); sum leaves only the ranking.
    "weight_norm": Choice(
        "sum",
        ("sum", "mean"),
        doc="sum: w/Σw (WRN script, FaMUS) | mean: sum(w·ℓ)/B (stable MW-Net.py)",
    ),
}


class VNet(nn.Module):
    """MW-Net's weighting function: Linear(1→h)–ReLU–Linear(h→1)–Sigmoid on the loss."""

    def __init__(self, hidden: int = 100) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(1, hidden), nn.ReLU(), nn.Linear(hidden, 1))

    def forward(self, loss: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.net(loss.reshape(-1, 1))).reshape(-1)


def meta_optimizer(params, hp: dict[str, Any]) -> torch.optim.Optimizer:
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


def check_hparams(hp: dict[str, Any], name: str) -> None:
    if hp["meta_grad"] not in META_GRADS:
        raise UsageError(f"meta_grad '{hp['meta_grad']}': accepted {', '.join(META_GRADS)}")
    if hp["meta_grad"] != "exact" and hp["famus"]:
        raise UsageError(
            f"meta_grad={hp['meta_grad']} with famus=true: famus needs meta_grad=exact"
        )
    if hp.get("weight_norm", "mean") not in ("mean", "sum"):
        raise UsageError(f"weight_norm '{hp['weight_norm']}': accepted mean, sum")
    kind = str(hp.get("meta_set"))
    if kind != "pseudo" and not kind.startswith("clean:"):
        raise UsageError(f"{name} needs a meta set: meta_set '{kind}': accepted clean:N, pseudo")


def decay_map(model: nn.Module, opt: torch.optim.Optimizer) -> dict[str, float]:
    """Each trainable tensor's weight decay in the network's optimizer: L2R's clean cost adds
    ``λ/2·‖ŵ‖²`` as the official ``model.cost`` (cross-entropy plus the L2 decay) does."""
    wd = {id(p): float(g.get("weight_decay", 0.0)) for g in opt.param_groups for p in g["params"]}
    return {
        n: wd[id(p)] for n, p in model.named_parameters() if p.requires_grad and wd.get(id(p), 0.0)
    }


def classifier_names(model: nn.Module, params: dict[str, torch.Tensor]) -> list[str]:
    """Names of the classifier's parameters (timm's ``get_classifier()``), if the model has one."""
    head = getattr(model, "get_classifier", None)
    if head is None:
        return []
    ids = {id(p) for p in head().parameters()}
    return [n for n, p in params.items() if id(p) in ids]


class Learner:
    """One network trained by meta-reweighting: ``rule`` is ``mwnet`` or ``l2r``."""

    def __init__(self, ctx: TrainContext, rule: str, famus: bool) -> None:
        self.ctx, self.hp, self.rule = ctx, ctx.hparams, rule
        self.model = ctx.build_model()
        self.opt = ctx.make_optimizer(self.model.parameters())
        self.vnet = self.vopt = None
        if rule == "mwnet":
            self.vnet = VNet(int(self.hp["meta_hidden"])).to(ctx.device)
            self.vopt = meta_optimizer(self.vnet.parameters(), self.hp)
        self.meta: MetaBatches | None = None
        self.decay = decay_map(self.model, self.opt) if rule == "l2r" else None
        self.samplers = self.sopt = None
        self.gated: list[str] = []
        self.kept: list[str] = []
        if famus:
            params = metagrad.trainable(self.model)
            probe = torch.zeros(2, ctx.in_chans, ctx.image_size, ctx.image_size, device=ctx.device)
            order = forward_order(self.model, probe)
            kept = classifier_names(self.model, params) or order[-2:]
            self.gated, self.kept = gated_names(order, int(self.hp["famus_gated"]), kept)
            shapes = {n: params[n].shape for n in self.gated}
            self.samplers = LayerSamplers(
                shapes, int(self.hp["famus_k"]), tau=float(self.hp["famus_tau"])
            ).to(ctx.device)
            self.sopt = torch.optim.SGD(
                self.samplers.parameters(),
                lr=float(self.hp["famus_lr"]),
                momentum=0.9,
                nesterov=True,
            )  # official build_grad_models
        self.counts = torch.zeros(len(self.gated))
        self.steps = 0
        self.probe = WeightProbe()  # the epoch's weighed losses (MW-Net's weight function)

    # -- weights ----------------------------------------------------------------------------
    def weights(self, losses: torch.Tensor) -> torch.Tensor:
        """MW-Net's normalised weights of detached losses (graph to the meta-net)."""
        return metagrad.normalise_weights(self.vnet(losses), str(self.hp["weight_norm"]))

    # -- one step ----------------------------------------------------------------------------
    def warmup_step(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        """Plain cross-entropy (pseudo meta sets before the first GMM)."""
        self.model.train()
        logits = self.model(x)
        loss = F.cross_entropy(logits.float(), y)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return {"loss": loss.detach(), "train_acc": (logits.argmax(1) == y).float().mean()}

    def step(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        """Virtual step → meta update → actual step (FaMUS supplement, Algorithm 1)."""
        self.model.train()
        lr = float(self.opt.param_groups[0]["lr"])
        mbs = int(self.hp["meta_batch_size"] or self.hp["batch_size"])
        mx, my = self.meta.draw(mbs)
        reuse = bool(self.hp["reuse_forward"])
        with metagrad.eager(self.model):
            if self.rule == "mwnet":
                losses, meta_loss = self._mwnet_meta(x, y, mx, my, lr, reuse)
                with torch.no_grad():
                    raw = self.vnet(losses.detach())  # recomputed with the updated meta-net
                    w = metagrad.normalise_weights(raw, str(self.hp["weight_norm"]))
                stat = {"weight_mean": raw.mean()}
                self.probe.add(losses)
            else:
                losses, meta_loss, w = self._l2r_meta(x, y, mx, my, lr, reuse)
                stat = {"weight_zero_frac": (w == 0).float().mean()}
        if not reuse:
            losses = F.cross_entropy(self.model(x).float(), y, reduction="none")
        loss = self._actual_step((w.detach() * losses).sum())
        return {"loss": loss, "meta_loss": meta_loss, **stat}

    def _actual_step(self, loss: torch.Tensor) -> torch.Tensor:
        """The real update of the network with the (fixed) weights; the loss, detached."""
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self.steps += 1
        return loss.detach()

    def _step_meta_net(self, theta: list[torch.Tensor], grads) -> None:
        """One meta-net step from its meta-gradient (averaged over ranks under DDP, so every
        rank's meta-net stays the same)."""
        self.vopt.zero_grad(set_to_none=True)
        for p, g in zip(theta, grads):
            p.grad = g
        distributed.average_grads(theta)
        self.vopt.step()

    def _mwnet_meta(self, x, y, mx, my, lr, reuse):
        theta = list(self.vnet.parameters())
        if self.samplers is not None:

            def weigh(losses):
                return (self.weights(losses.detach()) * losses).sum()

            losses, meta_loss, grads = self._famus_meta(x, y, mx, my, lr, reuse, weigh, theta)
        elif self.hp["meta_grad"] in ("fd", "jvp"):
            mg = metagrad.fd_meta_gradient(
                self.model,
                x,
                y,
                self.weights,
                theta,
                mx,
                my,
                lr,
                reuse=reuse,
                eps=float(self.hp["fd_eps"]),
                mode=str(self.hp["meta_grad"]),
            )
            losses, meta_loss, grads = mg.losses, mg.meta_loss, mg.grads
        else:
            mg = metagrad.meta_gradient(
                self.model,
                x,
                y,
                lambda l: (self.weights(l.detach()) * l).sum(),
                theta,
                mx,
                my,
                lr,
                reuse=reuse,
            )
            losses, meta_loss, grads = mg.losses, mg.meta_loss, mg.grads
        self._step_meta_net(theta, grads)
        return losses, meta_loss

    def _l2r_meta(self, x, y, mx, my, lr, reuse):
        """ε = 0, weights ``max(−∂L_meta/∂ε, 0)`` normalised to sum 1 (L2R Eqs. (4)–(6)); the
        clean cost includes the weight decay, as the official ``model.cost``."""
        eps = torch.zeros(y.shape[0], device=y.device, requires_grad=True)
        if self.samplers is not None:
            losses, meta_loss, (g,) = self._famus_meta(
                x, y, mx, my, lr, reuse, lambda l: (eps * l).sum(), [eps], decay=self.decay
            )
        elif self.hp["meta_grad"] in ("fd", "jvp"):
            mg = metagrad.fd_meta_gradient(
                self.model,
                x,
                y,
                lambda _l: eps,
                [eps],
                mx,
                my,
                lr,
                reuse=reuse,
                lookahead=False,
                eps=float(self.hp["fd_eps"]),
                mode=str(self.hp["meta_grad"]),
                decay=self.decay,
            )
            losses, meta_loss, (g,) = mg.losses, mg.meta_loss, mg.grads
        else:
            mg = metagrad.meta_gradient(
                self.model,
                x,
                y,
                lambda l: (eps * l).sum(),
                [eps],
                mx,
                my,
                lr,
                reuse=reuse,
                decay=self.decay,
            )
            losses, meta_loss, (g,) = mg.losses, mg.meta_loss, mg.grads
        w = metagrad.normalise_weights((-g).clamp_min(0), "sum")
        return losses, meta_loss, w.detach()

    def mix_step(self, task) -> dict[str, torch.Tensor]:
        """One step of FaMUS's MixMatch variant (:mod:`nlbench_plugins._famus_mix`).

        As :meth:`step` with MW-Net's rule, but the per-sample loss (the meta-net's input) is
        the soft cross-entropy of each mixed row, the weighted objective is ``task.total`` and
        the meta loss ``task.meta`` on the mixed pseudo-clean batch.
        """
        self.model.train()
        lr = float(self.opt.param_groups[0]["lr"])
        reuse = bool(self.hp["reuse_forward"])
        theta = list(self.vnet.parameters())
        with metagrad.eager(self.model):
            with metagrad.decomposed_bn(self.model):  # the first forward is differentiated twice
                logits = (
                    self.model(task.x)
                    if reuse
                    else metagrad.virtual_logits(self.model, metagrad.trainable(self.model), task.x)
                )
            costs = task.costs(logits)

            def weigh(c: torch.Tensor) -> torch.Tensor:
                return task.total(logits, c, self.weights(c.detach()))

            meta_loss, grads = self._mix_meta_grads(task, lr, reuse, weigh, theta, costs)
            self._step_meta_net(theta, grads)
            with torch.no_grad():
                raw = self.vnet(costs.detach())  # recomputed with the updated meta-net
                w = metagrad.normalise_weights(raw, str(self.hp["weight_norm"]))
            self.probe.add(costs)
        if not reuse:
            logits = self.model(task.x)
            costs = task.costs(logits)
        loss = self._actual_step(task.total(logits, costs, w.detach()))
        return {
            "loss": loss,
            "meta_loss": meta_loss,
            "weight_mean": raw.mean(),
            "lambda_u": torch.full((), task.lambda_u, device=loss.device),
        }

    def _mix_meta_grads(self, task, lr, reuse, weigh, theta, costs):
        """The meta-net's gradient for a mixed batch: FaMUS-gated when samplers exist."""
        if self.samplers is not None:
            _, meta_loss, grads = self._famus_meta(
                None,
                None,
                task.meta_x,
                None,
                lr,
                reuse,
                weigh,
                theta,
                losses=costs,
                meta_objective=task.meta,
            )
        else:
            mg = metagrad.meta_gradient(
                self.model,
                None,
                None,
                weigh,
                theta,
                task.meta_x,
                None,
                lr,
                reuse=reuse,
                losses=costs,
                meta_objective=task.meta,
            )
            meta_loss, grads = mg.meta_loss, mg.grads
        return meta_loss, grads

    def _famus_meta(
        self, x, y, mx, my, lr, reuse, weigh, theta, losses=None, meta_objective=None, decay=None
    ):
        """FaMUS's meta step (official ``meta_step``): gates from the look-ahead gradients,
        every layer moved, one backward of ``L_meta + λ_g·L_g + λ_r·L_r`` into the weighting
        parameters and the samplers; updates the samplers (δ)."""
        losses, grads = metagrad.train_gradients(
            self.model, x, y, weigh, reuse=reuse, losses=losses
        )
        r = self.samplers(grads, self.ctx.gen) if self.gated else torch.zeros(0)
        mask = r.detach().cpu() > 0.5  # the layer choice shapes the graph: one host read
        self.counts += mask.float()
        chosen = [n for n, m in zip(self.gated, mask.tolist()) if m]
        gates = {n: r[i] for i, n in enumerate(self.gated)}
        fast = metagrad.look_ahead(
            metagrad.trainable(self.model), grads, lr, select=self.kept + chosen, gates=gates
        )
        lm = metagrad.meta_loss(self.model, fast, mx, my, meta_objective, decay)
        hp = self.hp
        total = lm
        if self.gated:
            total = total + float(hp["famus_lambda_r"]) * count_penalty(
                r, int(hp["famus_k"]), bool(hp["famus_reg_quirk"])
            ).to(lm)
        lam_g, kept = float(hp["famus_lambda_g"]), [n for n in self.kept if n in grads]
        if lam_g > 0 and self.rule == "mwnet" and kept:  # L2R: ∇ at ε = 0 is 0 (no std grad)
            target = torch.autograd.grad(lm, [fast[n] for n in kept], retain_graph=True)
            total = total + lam_g * grad_stat_penalty([grads[n] for n in kept], list(target))
        eta = list(self.samplers.parameters())
        g = torch.autograd.grad(total, theta + eta, retain_graph=reuse, allow_unused=True)
        self.sopt.zero_grad(set_to_none=True)
        for p, gp in zip(eta, g[len(theta) :]):
            p.grad = gp if gp is not None else torch.zeros_like(p)
        distributed.average_grads(eta)
        self.sopt.step()
        g_theta = tuple(
            torch.zeros_like(t) if gt is None else gt for gt, t in zip(g[: len(theta)], theta)
        )
        return losses, lm.detach(), g_theta

    # -- epoch bookkeeping ----------------------------------------------------------------------
    def take_layer_stats(self) -> dict[str, Any]:
        """Per gated layer, the fraction of this epoch's steps that sampled it (and reset)."""
        if not self.gated or self.steps == 0:
            return {}
        frac = (self.counts / self.steps).tolist()
        out = {
            "layers": dict(zip(self.gated, [round(f, 4) for f in frac])),
            "mean_sampled": round(float(self.counts.sum()) / self.steps, 3),
        }
        self.counts.zero_()
        self.steps = 0
        return out

    def take_weight_function(self) -> dict[str, Any]:
        """The meta-net's weight at this epoch's loss quantiles and a fixed grid (and reset)."""
        return self.probe.take(self.vnet) if self.vnet is not None else {}

    def state(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.vnet is not None:
            out.update(vnet=self.vnet.state_dict(), vopt=self.vopt.state_dict())
        if self.samplers is not None:
            out.update(samplers=self.samplers.state_dict(), sopt=self.sopt.state_dict())
        if self.meta is not None:  # the clean stream spans epochs; a pseudo one is rebuilt
            out["meta"] = self.meta.state()
        return out

    def load(self, state: dict[str, Any]) -> None:
        if self.vnet is not None and "vnet" in state:
            self.vnet.load_state_dict(state["vnet"])
            self.vopt.load_state_dict(state["vopt"])
        if self.samplers is not None and "samplers" in state:
            self.samplers.load_state_dict(state["samplers"])
            self.sopt.load_state_dict(state["sopt"])
        if self.meta is not None and "meta" in state:
            self.meta.load_state(state["meta"])
