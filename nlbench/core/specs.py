"""What plugins register: one small frozen dataclass per registry kind.

Every spec has a ``name`` (a registry key matching :data:`nlbench.core.registry.NAME_RE`) and a
one-line ``description``.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeAlias

from nlbench.core.errors import UsageError

if TYPE_CHECKING:  # annotations only: the specs stay free of torch and of the layers above
    import torch

    from nlbench.training.components import Reweighter, Selector
    from nlbench.training.method import Method, TrainContext

#: what a registered method's factory is: the run's context in, the method out
MethodFactory: TypeAlias = "Callable[[TrainContext], Method]"
#: a per-sample loss: ``fn(logits N×C, labels N) -> N`` losses
LossFn: TypeAlias = "Callable[[torch.Tensor, torch.Tensor], torch.Tensor]"
#: a loss's factory: its resolved hyper-parameters in, the loss out
LossFactory: TypeAlias = "Callable[[Mapping[str, Any]], LossFn]"
#: a network's factory: ``(num_classes, in_chans, image_size, **options) -> nn.Module``
ModelFactory: TypeAlias = "Callable[..., torch.nn.Module]"
#: a selector's or reweighter's factory: its resolved hyper-parameters in
ComponentFactory: TypeAlias = "Callable[[Mapping[str, Any]], Selector | Reweighter]"

Hparams = Mapping[str, Any]


class MethodFlag(str, enum.Enum):
    """What a method (or one of its runs) uses that a plain method does not; boards show it.

    A ``str`` whose value is the name records and ``--json`` carry, so ``"two_net"`` and
    ``MethodFlag.TWO_NET`` are equal, hash alike and print alike.
    """

    CLEAN_META = "clean_meta"  # trusted clean data (a meta set)
    TWO_NET = "two_net"  # an ensemble of two networks
    NOISE_TUNED = "noise_tuned"  # hparams chosen knowing the noise type or rate
    ORACLE_NOISE = "oracle_noise"  # the true noise model (transition matrix)

    __hash__ = str.__hash__  # Enum hashes the member's name; a flag hashes as its value

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return format(str(self.value), spec)

    @property
    def label(self) -> str:
        """How a board's footnote names the flag."""
        return FLAG_LABELS[self]

    @classmethod
    def parse(cls, value: object) -> MethodFlag:
        """``value`` as a flag: a member, or its string (a plugin written before the enum)."""
        try:
            return cls(value)
        except ValueError:
            accepted = ", ".join(f.value for f in cls)
            raise UsageError(f"unknown method flag {value!r}; accepted: {accepted}") from None

    @classmethod
    def parse_all(cls, values: Iterable[object] | str) -> frozenset[MethodFlag]:
        """A collection of flags (one string is one flag, not its letters)."""
        return frozenset(cls.parse(v) for v in ([values] if isinstance(values, str) else values))


FLAG_LABELS = {
    MethodFlag.CLEAN_META: "clean meta data",
    MethodFlag.TWO_NET: "two-net ensemble",
    MethodFlag.NOISE_TUNED: "noise-tuned hparams",
    MethodFlag.ORACLE_NOISE: "true noise model",
}


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset.

    Attributes:
        load: ``load(request: LoadRequest) -> DatasetData`` (see :mod:`nlbench.training.data`).
        num_classes, in_chans, image_size: the shape facts models are built from.
        label_order: names the canonical train order (``"cifar10"``, ``"cifar100"``) so
            order-dependent noise (CIFAR-N label files) can refuse other datasets.
        asym_map: name of the dataset's class-pair map for class-dependent noise (``asym``), or
            None when there is none. It must be one of the names a registered noise model
            declares in ``NoiseModelSpec.asym_maps``; loading the plugins checks it.
        profiles: base training hparams per profile (``quick``, ``paper``, ``cpu``); every
            method starts from these so all methods get the same budget.
        noise_default: the noise spec when the dataset brings its own labels (Clothing1M).
    """

    name: str
    description: str
    load: Callable[..., Any]
    num_classes: int
    in_chans: int
    image_size: int
    label_order: str | None = None
    asym_map: str | None = None
    profiles: Mapping[str, Hparams] = field(default_factory=dict)
    noise_default: str | None = None
    citation: str = ""


@dataclass(frozen=True)
class NoiseModelSpec:
    """A noise model: ``apply(ctx: NoiseContext, arg: str | None) -> NoiseResult``.

    ``kind`` is ``"label"`` (changes labels) or ``"input"`` (changes images, labels untouched).
    ``convention`` is a short string stored with every leaderboard row (e.g. ``exact flips``).
    ``check_arg`` validates the argument without data (e.g.
    :func:`nlbench.training.noise.rate_arg`).
    ``asym_maps``: the ``DatasetSpec.asym_map`` names this model has a class-pair map for (the
    keys it accepts); a dataset declaring a name no noise model knows fails at registration.
    ``version``: raise it when the same spec string starts to mean different data (version 2 of
    the input corruptions also corrupts the test images); a version other than 1 enters the
    run identity, so records of the older meaning are never returned as finished runs.
    """

    name: str
    description: str
    apply: Callable[..., Any]
    kind: str = "label"
    convention: str = ""
    needs_arg: bool = True
    # check_arg(arg, spec_text) raises UsageError for an argument the model refuses; it runs
    # when the run is keyed, before any data loads (a sweep refuses `sym:2` when it plans)
    check_arg: Callable[[str | None, str], Any] | None = None
    asym_maps: tuple[str, ...] = ()
    # reads(arg) -> the files the argument names, whose contents decide the labels: their
    # SHA-256 enters the run identity (a changed file is a new run; nlbench.core.identity)
    reads: Callable[[str | None], Sequence[str | os.PathLike]] | None = None
    version: int = 1


@dataclass(frozen=True)
class ModelSpec:
    """A network: ``factory(num_classes, in_chans, image_size, **kwargs) -> nn.Module``.

    The module has ``forward_features(x)`` and ``forward_head(features)`` (as timm).
    """

    name: str
    description: str
    factory: ModelFactory
    citation: str = ""


@dataclass(frozen=True)
class ComponentSpec:
    """A component of :class:`nlbench.training.components.ComposedMethod`: a sample selector
    (``factory(hparams) -> Selector``) or a loss reweighter (``factory(hparams) -> Reweighter``),
    see :mod:`nlbench.training.components`. The two registries hold the same shape of spec;
    :data:`SelectorSpec` and :data:`ReweighterSpec` name it for each.

    ``hparams``: the component's own hyper-parameters, declared as in
    ``MethodSpec.default_hparams`` (:class:`nlbench.core.hparam_types.HParam` or plain defaults).
    """

    name: str
    description: str
    factory: ComponentFactory
    hparams: Hparams = field(default_factory=dict)


SelectorSpec = ComponentSpec
ReweighterSpec = ComponentSpec


@dataclass(frozen=True)
class LossSpec:
    """A per-sample training loss for the single-network methods (``--set loss=NAME``).

    Attributes:
        factory: ``factory(hparams) -> fn`` with ``fn(logits N×C float, labels N) -> N`` per-sample
            losses (differentiable; the method weights and averages them). ``fn`` may also have
            ``set_epoch(epoch)``: the runner calls it with the 0-based epoch before each epoch
            (a resumed run's first included), so a loss can change with training (a CE
            warm-up, a schedule); it must depend on nothing else that outlives an epoch, as it
            is not checkpointed. A loss without it is called as always.
        hparams: the loss's own hyper-parameters and their defaults; a run with this loss
            accepts them in ``--set`` and records their values.
        citation: the paper the formula is from.
    """

    name: str
    description: str
    factory: LossFactory
    hparams: Hparams = field(default_factory=dict)
    citation: str = ""


@dataclass(frozen=True)
class Deviation:
    """One known difference between a built-in method and its official code.

    ``nlbench show method M`` prints them as "differences from the official code"; a board row
    whose run set ``option`` to a non-official value says so.

    Attributes:
        what: the difference, in one sentence.
        why: why the suite keeps it (or why it is the default).
        restore: how to get the official behaviour (``--set key=value`` or a profile), or ``""``
            when there is no switch.
    """

    what: str
    why: str
    restore: str = ""


@dataclass(frozen=True)
class MethodSpec:
    """A training method.

    Attributes:
        factory: ``factory(ctx: TrainContext) -> Method``.
        default_hparams: the method's own hyper-parameters (these keys are accepted by --set):
            ``{key: HParam(default, ...)}`` (type, range, doc; :mod:`nlbench.core.hparam_types`)
            or a plain default, whose type is inferred.
        profiles: ``{profile: {dataset_or_"default": hparams}}`` overriding the dataset profile.
        flags: the :class:`MethodFlag` every run of the method carries (``CLEAN_META``: uses
            trusted clean data, ``TWO_NET``: ensemble of two networks, ``NOISE_TUNED``: hparams
            chosen knowing the noise rate, ``ORACLE_NOISE``: the true noise model); their
            string values are accepted too, an unknown one is a :class:`UsageError`.
        reference: citation of the source paper.
        search_space: optional sweep ranges, ``{key: [values]}``.
        deviations: known differences from the official code (:class:`Deviation`).
        flags_for: optional ``flags_for(hparams, noise, dataset) -> set[MethodFlag]``, the
            flags that depend on what a run does (``noise`` is a
            :class:`nlbench.core.run_facts.NoiseSetting`, ``dataset`` the :class:`DatasetSpec`); a
            run's flags are ``flags`` plus these. E.g. ``NOISE_TUNED`` when a per-setting table
            or a rate-valued hparam used the noise rate.
        facts: what the method adds to a run's record while training (``Method.set_fact``,
            ``Method.record_facts``; ``record["method_facts"]``), name -> what it measures.
            Results, not identity: a rerun compares them, a resume reproduces them.
    """

    name: str
    description: str
    factory: MethodFactory
    default_hparams: Hparams = field(default_factory=dict)
    profiles: Mapping[str, Mapping[str, Hparams]] = field(default_factory=dict)
    flags: frozenset[MethodFlag] = frozenset()
    reference: str = ""
    search_space: Mapping[str, list] = field(default_factory=dict)
    deviations: tuple[Deviation, ...] = ()
    flags_for: Callable[..., Any] | None = None
    facts: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "flags", MethodFlag.parse_all(self.flags))


@dataclass(frozen=True)
class ExecutorSpec:
    """A sweep executor: ``factory(**options) -> Executor`` with ``run(jobs) -> None``."""

    name: str
    description: str
    factory: Callable[..., Any]
