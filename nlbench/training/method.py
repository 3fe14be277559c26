"""The method contract: the runner owns the loop, a method owns its step.

A method is built from a :class:`TrainContext` and implements :meth:`Method.train_step`.
Epoch-level work (GMM fits, subset selection) goes in :meth:`Method.start_epoch`, which may
return an :class:`~nlbench.training.data.EpochPlan` restricting or weighting the epoch's batches.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

import torch
import torch.nn.functional as F
from torch import nn
from torch.optim.optimizer import ParamsT

from nlbench.core.errors import PluginError
from nlbench.core.hparam_types import Optional, Str
from nlbench.core.run_facts import NoiseSetting
from nlbench.training.data import Batch, DeviceImages, EpochPlan, TrainSet
from nlbench.training.phases import Phase


@dataclass
class Scan:
    """One pass over the train set without augmentation, shared by every component.

    Per network name: per-sample loss against the noisy labels (N), logits (N×C) and, when a
    component asked for them, penultimate features (N×D).
    """

    loss: dict[str, torch.Tensor]
    logits: dict[str, torch.Tensor]
    features: dict[str, torch.Tensor] = field(default_factory=dict)

    def ensemble_logits(self) -> torch.Tensor:
        return torch.stack(list(self.logits.values())).sum(0)


@dataclass
class MetaSet:
    """Trusted samples held out before noise (``clean:N``) for the meta-learners."""

    images: DeviceImages
    labels: torch.Tensor
    kind: str
    size: int


class ComponentLookup(Protocol):
    """Where a method looks up the registered components its hparams name (``losses``,
    ``selectors``, ``reweighters``): ``get(kind, name) -> spec``. The runner passes the plugin
    host it resolved the run's names in, so no method reaches for a global one."""

    def get(self, kind: str, name: str) -> Any: ...


#: TrainContext attributes that go: name -> (what replaces it, the API version that deprecated
#: it, the first version that may remove it); ``nlbench.api.DEPRECATED_ATTRIBUTES`` lists them.
DEPRECATED_FIELDS: dict[str, tuple[str, str, str]] = {
    "extras": ("TrainContext.seed, .components, .noise_transition, .meta", "1.1", "2.0"),
}


@dataclass
class TrainContext:
    """Everything a method may use. Clean training labels are deliberately absent.

    ``seed`` is the run's training seed (``config.seed``): derive a method's own seeds from it
    with :func:`~nlbench.core.seeding.derive_seed`. It is required, so a context built by hand
    cannot
    train every seed as seed 0 by accident. ``components`` resolves the losses, selectors and
    reweighters the hparams name (:class:`ComponentLookup`). ``noise`` is the run's noise
    setting (type, nominal rate, spec) for methods whose published hyper-parameters depend on
    it (DivideMix's per-setting table); a method that uses it should say so through
    ``MethodSpec.flags_for`` (``MethodFlag.NOISE_TUNED``). ``noise_transition`` is the run's
    clean→noisy
    label counts (C×C, row = clean), only for methods flagged ``oracle_noise`` (forward's
    oracle T); None when the noise model gave none.
    """

    hparams: dict[str, Any]
    num_classes: int
    in_chans: int
    image_size: int
    device: torch.device
    train: TrainSet
    epochs: int
    steps_per_epoch: int
    build_model: Callable[[], nn.Module]
    gen: torch.Generator
    scan: Callable[..., Scan]
    seed: int
    components: ComponentLookup
    meta: MetaSet | None = None
    amp_dtype: torch.dtype | None = None
    dataset: str = ""
    noise_type: str = ""
    noise: NoiseSetting | None = None
    noise_transition: list[list[int]] | None = None

    def __post_init__(self) -> None:
        if type(self.seed) is not int:  # a bool or a None seed would hash as another run's
            raise TypeError(f"TrainContext.seed must be an int, got {self.seed!r}")
        if not isinstance(self.device, torch.device):
            raise TypeError(f"TrainContext.device must be a torch.device, got {self.device!r}")

    @property
    def extras(self) -> dict[str, Any]:
        """Deprecated: the untyped dict of earlier contexts, as it was (``seed``, ``host``,
        ``meta_info``, ``noise_transition``); read the typed fields instead."""
        use, since, until = DEPRECATED_FIELDS["extras"]
        warnings.warn(
            f"TrainContext.extras is deprecated since API {since} and may be removed in "
            f"{until}; use {use} (CHANGELOG.md has the migration note)",
            DeprecationWarning,
            stacklevel=2,
        )
        meta_info = {"kind": str(self.hparams.get("meta_set") or "none"), "size": 0}
        if self.meta is not None:
            meta_info = {"kind": self.meta.kind, "size": self.meta.size}
        return {
            "meta_info": meta_info,
            "seed": self.seed,
            "host": self.components,
            "noise_transition": self.noise_transition,
        }

    def autocast(self) -> contextlib.AbstractContextManager:
        """bf16 autocast on CUDA when enabled; a no-op elsewhere (slower on CPU)."""
        if self.amp_dtype is None or self.device.type != "cuda":
            return contextlib.nullcontext()
        return torch.autocast("cuda", dtype=self.amp_dtype)

    def make_optimizer(self, params: ParamsT, lr: float | None = None) -> torch.optim.Optimizer:
        """SGD with the run's momentum, Nesterov flag and weight decay."""
        hp = self.hparams
        return torch.optim.SGD(
            params,
            lr=float(lr if lr is not None else hp["lr"]),
            momentum=float(hp["momentum"]),
            nesterov=bool(hp["nesterov"]) and float(hp["momentum"]) > 0,
            weight_decay=float(hp["weight_decay"]),
        )


class Method:
    """Base class: one network trained with SGD on the (plan-weighted) cross-entropy."""

    needs_features: bool = False

    def __init__(self, ctx: TrainContext) -> None:
        self.ctx = ctx
        self.hp = ctx.hparams

    # -- what the runner asks of every method -------------------------------------------
    def networks(self) -> dict[str, nn.Module]:
        """Named networks: evaluated (summed logits), scanned and checkpointed."""
        raise NotImplementedError

    def scheduled_optimizers(self) -> list[torch.optim.Optimizer]:
        """Optimizers whose learning rate follows the run's schedule."""
        raise NotImplementedError

    def set_epoch(self, epoch: int) -> None:
        """The runner tells the epoch about to start (0-based), before :meth:`start_epoch`, at
        every epoch, a resumed run's first included. Default: passes it on to ``self.loss_fn``
        when that loss has ``set_epoch`` (an epoch-aware loss, e.g. a warm-up; see
        :class:`~nlbench.core.specs.LossSpec`); a method with other epoch-aware parts extends it."""
        tell_epoch(getattr(self, "loss_fn", None), epoch)

    def start_epoch(self, epoch: int, scan: Callable[[], Scan]) -> EpochPlan | None:
        """Epoch-level work before training; ``scan()`` gives the cached train-set scan."""
        return None

    def phases(self) -> list[Phase]:
        """Work before the first epoch in resumable units (K-fold models, an estimator):
        :mod:`nlbench.training.phases`. Called once per run start; none by default."""
        return []

    def epoch_batches(self, epoch: int, plan: EpochPlan | None) -> Iterator[Batch] | None:
        """The epoch's batches when the method needs its own order (e.g. DivideMix trains
        net 1 then net 2, each on the other's split); None → the runner's shuffled batches of
        ``plan``. Set ``plan.steps`` to the number of batches yielded."""
        return None

    def train_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        """One optimisation step; returns per-batch means as device tensors (no host sync)."""
        raise NotImplementedError

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Test-time logits: the sum over the method's networks."""
        with self.ctx.autocast():
            return cast(torch.Tensor, sum(net(x).float() for net in self.networks().values()))

    # -- the one state channel (checkpoints) -----------------------------------------------
    def register_state(
        self,
        name: str,
        save: Callable[[Any], Any] | None = None,
        load: Callable[[Any], Any] | None = None,
    ) -> None:
        """Checkpoint attribute ``name`` with the networks and optimizers.

        Why: resume must equal an uninterrupted run, so every piece of state that outlives an
        epoch (a generator, a sampler's cursor, a GMM history) travels through
        :meth:`state_dict`. Objects with ``state_dict``/``load_state_dict`` (modules,
        optimizers, samplers) and ``torch.Generator`` are restored in place; other values
        (tensors, plain Python) are saved as they are and set back, tensors on the run's
        device. ``save``/``load`` convert a value that is neither (e.g. a dataclass) to and
        from tensors and plain Python: checkpoints load with ``weights_only=True``.
        """
        if not hasattr(self, name):
            raise AttributeError(f"register_state: {type(self).__name__} has no attribute {name!r}")
        self.__dict__.setdefault("_state_codecs", {})[name] = (save, load)

    def state_dict(self) -> dict[str, Any]:
        """Everything a resumed run needs: networks, scheduled optimizers, registered state."""
        legacy = type(self).extra_state is not Method.extra_state
        return {
            "networks": {k: v.state_dict() for k, v in self.networks().items()},
            "optimizers": [o.state_dict() for o in self.scheduled_optimizers()],
            "state": Method.extra_state(self),
            "extra": self.extra_state() if legacy else {},
            "facts": dict(self.__dict__.get("_facts", {})),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`; KeyError/ValueError when it is another method's."""
        nets, opts = self.networks(), self.scheduled_optimizers()
        if set(state["networks"]) != set(nets) or len(state["optimizers"]) != len(opts):
            raise KeyError(f"networks {sorted(state['networks'])}, expected {sorted(nets)}")
        for name, net in nets.items():
            net.load_state_dict(state["networks"][name])
        for opt, opt_state in zip(opts, state["optimizers"]):
            opt.load_state_dict(opt_state)
        legacy = type(self).load_extra_state is not Method.load_extra_state
        # checkpoints from before register_state kept everything under "extra"
        registered = state.get("state", {} if legacy else state.get("extra", {}))
        Method.load_extra_state(self, registered)
        if legacy:
            self.load_extra_state(state.get("extra", {}))
        self.__dict__["_facts"] = dict(state.get("facts", {}))  # none before method facts

    def extra_state(self) -> dict[str, Any]:
        """The registered state alone. Overriding it (the pre-``register_state`` API) still
        works: the override is checkpointed next to the registered state."""
        codecs = self.__dict__.get("_state_codecs", {})
        return {n: _save_value(getattr(self, n), save) for n, (save, _) in codecs.items()}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`extra_state` (KeyError when a registered name is missing)."""
        codecs = self.__dict__.get("_state_codecs", {})
        missing = sorted(set(codecs) - set(state))
        if missing:
            raise KeyError(f"registered state {', '.join(missing)} missing from the checkpoint")
        for name, (_, load) in codecs.items():
            _load_value(self, name, state[name], load)

    def record_info(self) -> dict[str, Any]:
        """Static facts about the method to store in the run record (e.g. meta-set kind)."""
        return {}

    # -- facts learned while training (record["method_facts"]) -----------------------------
    def set_fact(self, name: str, value: Any) -> None:
        """Add a fact to the run's record (``record["method_facts"][name]``), e.g. how many
        samples a pruning step removed. ``name`` must be declared in ``MethodSpec.facts``;
        ``value`` is plain JSON (numbers, strings, lists, dicts). Facts travel with the
        method's state, so a resumed run records what the uninterrupted one would."""
        self.__dict__.setdefault("_facts", {})[name] = value

    def record_facts(self) -> dict[str, Any]:
        """The run's facts so far: those given to :meth:`set_fact`. Override to derive more
        from registered state (restored on resume), keeping ``super().record_facts()``.

        Why declared: facts are results, not identity. A rerun compares them like the
        epochs' metrics, a resume must reproduce them, and neither enters the run_id."""
        return dict(self.__dict__.get("_facts", {}))


def checked_facts(method: Method, name: str, declared: Mapping[str, str]) -> dict[str, Any]:
    """``method.record_facts()`` sorted by name, each declared (PluginError otherwise)."""
    facts = method.record_facts()
    undeclared = sorted(set(facts) - set(declared))
    if undeclared:
        raise PluginError(
            f"method '{name}' recorded undeclared fact(s) {', '.join(undeclared)}; declare "
            "each in its MethodSpec.facts (name -> what it measures)"
        )
    return {key: facts[key] for key in sorted(facts)}


def _save_value(value: Any, save: Callable[[Any], Any] | None) -> Any:
    if save is not None:
        return save(value)
    if isinstance(value, torch.Generator):
        return value.get_state()
    if callable(getattr(value, "state_dict", None)):
        return value.state_dict()
    return value


def _load_value(method: Method, name: str, saved: Any, load: Callable[[Any], Any] | None) -> None:
    current = getattr(method, name)
    if load is not None:
        setattr(method, name, load(_to_device(saved, method.ctx.device)))
    elif isinstance(current, torch.Generator):
        current.set_state(saved.cpu())  # generator states are CPU byte tensors
    elif callable(getattr(current, "load_state_dict", None)):
        current.load_state_dict(saved)
    else:
        setattr(method, name, _to_device(saved, method.ctx.device))


def _to_device(value: Any, device: torch.device) -> Any:
    """Tensors (inside dicts, lists and tuples) moved to the run's device."""
    if torch.is_tensor(value):
        return value.to(device)
    if isinstance(value, dict):
        return {k: _to_device(v, device) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_to_device(v, device) for v in value)
    return value


def weighted_mean(loss: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
    """Mean of per-sample losses, weights normalised over the batch (zero-sum guarded)."""
    if weight is None:
        return loss.mean()
    return (loss * weight).sum() / weight.sum().clamp_min(1e-12)


# hparams every single-network method's spec declares: ``loss`` None is cross-entropy (None
# keeps records written before losses were pluggable the same runs); ``ce`` is stored as None,
# so ``--set loss=ce`` is the default run (one run_id), not a second one
SINGLE_NET_HPARAMS: dict[str, Any] = {
    "loss": Optional(
        Str(
            None,
            aliases=(("ce", None),),
            doc="a registered loss (ce, gce, sce, gce_warmup, a plugin's); null: ce",
        )
    ),
}


def tell_epoch(part: Any, epoch: int) -> None:
    """``part.set_epoch(epoch)`` when ``part`` (a loss, a method) has it; else nothing, so
    losses and methods written before epochs were told keep working unchanged."""
    set_epoch = getattr(part, "set_epoch", None)
    if callable(set_epoch):
        set_epoch(epoch)


def build_loss(ctx: TrainContext) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """The per-sample loss named by ``hparams["loss"]`` (a registered :class:`LossSpec`); the
    method keeps it as ``self.loss_fn`` so :meth:`Method.set_epoch` reaches it."""
    name = ctx.hparams.get("loss")
    if not name or name == "ce":
        return lambda logits, labels: F.cross_entropy(logits, labels, reduction="none")
    spec = ctx.components.get("losses", str(name))
    return cast(Callable[[torch.Tensor, torch.Tensor], torch.Tensor], spec.factory(ctx.hparams))


class SingleNetMethod(Method):
    """ERM: one network, SGD, a per-sample loss (``loss``, default cross-entropy) on the noisy
    labels, weighted if the plan or :meth:`sample_weights` says."""

    def __init__(self, ctx: TrainContext) -> None:
        super().__init__(ctx)
        self.model = ctx.build_model()
        self.optimizer = ctx.make_optimizer(self.model.parameters())
        self.loss_fn = build_loss(ctx)

    def networks(self) -> dict[str, nn.Module]:
        return {"net": self.model}

    def scheduled_optimizers(self) -> list[torch.optim.Optimizer]:
        return [self.optimizer]

    def sample_weights(self, batch: Batch, loss: torch.Tensor) -> torch.Tensor | None:
        """Per-sample loss weights for this batch (a reweighter's hook); default: the plan's."""
        return batch.weight

    def train_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        self.model.train()
        with self.ctx.autocast():
            logits = self.model(batch.x)
        loss_each = self.loss_fn(logits.float(), batch.y)
        loss = weighted_mean(loss_each, self.sample_weights(batch, loss_each.detach()))
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        acc = (logits.detach().argmax(1) == batch.y).float().mean()
        return {"loss": loss.detach(), "train_acc": acc}
