"""Resolving a run's hyper-parameters from base, dataset profile, method profile and flags.

Order (later wins): BASE → dataset profile → method defaults → method profile ("default",
then the dataset's own entry) → --model/--epochs → --set. Unknown --set keys are usage errors;
every resolved value is checked against its declaration (:mod:`nlbench.core.hparam_types`) before
any data loads.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from nlbench.core.component_hparams import COMPONENT_KEYS, component_hparams
from nlbench.core.config import RunConfig
from nlbench.core.errors import UsageError
from nlbench.core.hparam_types import (
    Bool,
    Choice,
    Float,
    FloatList,
    HParam,
    Int,
    Optional,
    Str,
    as_hparam,
    declarations,
    defaults,
)
from nlbench.core.schedules import SCHEDULERS
from nlbench.core.specs import DatasetSpec, MethodSpec

# The train augmentation policies nlbench.training.data implements (it imports them from here, so
# that
# resolving hparams needs no torch: the CLI checks --set before importing it)
AUGMENTS = ("crop_flip", "crop", "flip", "none")
# nlbench.training.data's policies, with ``off`` for ``none``: --set reads "none" as null (the
# dataset's own policy)
AUGMENT_POLICIES = (None, *("off" if a == "none" else a for a in AUGMENTS))
META_SET = r"clean:[1-9][0-9]*|pseudo|none"

MAX_EPOCHS = 10_000  # a sane bound, checked before work starts (1e23 would run forever)
BASE_DECLARED: dict[str, HParam] = {
    "model": Optional(Str(None, doc="network name; null: the dataset profile's model")),
    "epochs": Int(10, low=1, high=MAX_EPOCHS, doc="training epochs"),
    "batch_size": Int(128, low=1, doc="training mini-batch size"),
    "lr": Float(0.1, low=0, high=10, doc="(peak) learning rate of SGD"),
    "momentum": Float(0.9, low=0, high=1, doc="SGD momentum"),
    "nesterov": Bool(False, doc="Nesterov momentum"),
    "weight_decay": Float(5e-4, low=0, high=1, doc="L2 weight decay"),
    "scheduler": Choice("multistep", SCHEDULERS, doc="learning-rate schedule"),
    "milestones": FloatList(
        [0.5, 0.75], low=0, doc="multistep decays: < 1 fractions of the run, else epochs"
    ),
    "gamma": Float(0.1, low=0, high=1, doc="multistep lr factor at each milestone"),
    "onecycle_pct": Float(0.3, low=0, high=1, doc="onecycle: warm-up share of the run"),
    "onecycle_div": Float(25.0, low=0, low_open=True, high=1e6, doc="onecycle: lr / start lr"),
    # Rajagopal et al. fix the schedule in optimizer steps (5000) for every batch size, then hold
    # lr and momentum at their end values: small batches finish their schedule in fewer epochs
    "schedule_steps": Optional(
        Int(
            None,
            low=1,
            doc="cosine/onecycle length in optimizer steps, then held at its end; null: the run",
        )
    ),
    # None: 1024 on CUDA, the training batch size on CPU (benchmarks/bench_cpu_layout.py,
    # cnn_small, 1 thread: batches of 1024 run inference ~1.85x slower per image than 128)
    "eval_batch_size": Optional(
        Int(
            None,
            low=1,
            execution=True,
            doc="batch of no-grad passes; null: 1024 on CUDA, batch_size on CPU",
        )
    ),
    "meta_set": Optional(Str(None, pattern=META_SET, doc="trusted hold-out clean:N, pseudo, none")),
    "dropout": Optional(Float(None, low=0, high=1, high_open=True, doc="dropout before the head")),
    "pretrained": Optional(Bool(None, doc="ImageNet weights (timm); null: the model's default")),
    "amp": Bool(True, execution=True, doc="mixed precision on CUDA"),
    # True: channels-last images and nets on CUDA only (the default; CPU runs stay as they
    # were recorded); "always": on CPU too (benchmarks/bench_cpu_layout.py, cnn_small, 1
    # thread, batch 128: training steps ~1.35x, inference ~1.9-2.1x faster; float results
    # differ in the last bits)
    "channels_last": Choice(
        True,
        (True, False, "always"),
        execution=True,
        doc="channels-last memory format: true (CUDA), always, false",
    ),
    # train-time augmentation: None keeps the dataset's policy (crop_flip for the image
    # sets); "crop_flip", "crop", "flip", "off" override it (the CIFAR cpu profile's reason
    # is in its comment)
    "augment": Choice(None, AUGMENT_POLICIES, doc="train augmentation; null: the dataset's"),
    # per-epoch gradient diagnostics (observers_diagnostics): off by default, it costs a pass
    "diagnostics": Bool(False, execution=True, doc="per-epoch gradient diagnostics (a pass)"),
}
BASE_HPARAMS: dict[str, Any] = defaults(BASE_DECLARED)


def profile_names(dspec: DatasetSpec) -> list[str]:
    return sorted(dspec.profiles)


def method_profile(mspec: MethodSpec, profile: str, dataset: str) -> dict[str, Any]:
    """The method's overrides for (profile, dataset)."""
    table = mspec.profiles.get(profile, {})
    return {**table.get("default", {}), **table.get(dataset, {})}


def declared_hparams(mspec: MethodSpec) -> dict[str, HParam]:
    """Every hparam a run of ``mspec`` accepts, declared (BASE, then the method's own).

    A plain value for a BASE key (``"meta_set": "clean:1000"``) keeps BASE's declaration
    with that default.
    """
    out = dict(BASE_DECLARED)
    for key, value in mspec.default_hparams.items():
        base = BASE_DECLARED.get(key)
        plain = not isinstance(value, HParam)
        out[key] = dataclasses.replace(base, default=value) if base and plain else as_hparam(value)
    return out


def resolve_hparams(
    mspec: MethodSpec, dspec: DatasetSpec, cfg: RunConfig, host: Any
) -> dict[str, Any]:
    """The fully resolved hparams of one run, each checked against its declaration.

    The components the run uses (``loss``, ``selector``, ``reweighter``) add the hparams they
    declare (:mod:`nlbench.core.component_hparams`), looked up in ``host`` (the plugin host or a
    StaticHost: anything with ``get(kind, name)``; the caller's, never a global one).
    """
    if cfg.profile not in dspec.profiles:
        raise UsageError(
            f"dataset '{dspec.name}' has no profile '{cfg.profile}'. "
            f"Accepted: {', '.join(profile_names(dspec)) or '(none)'}."
        )
    hp: dict[str, Any] = {**BASE_HPARAMS, **dspec.profiles[cfg.profile]}
    hp.update(defaults(mspec.default_hparams))
    hp.update(method_profile(mspec, cfg.profile, dspec.name))
    if cfg.model is not None:
        hp["model"] = cfg.model
    if cfg.epochs is not None:
        hp["epochs"] = cfg.epochs
    components = _components(hp, cfg, host)
    hp.update(defaults(components))
    unknown = sorted(set(cfg.overrides) - set(hp))
    if unknown:
        raise UsageError(
            f"unknown --set key(s) {', '.join(unknown)} for method '{mspec.name}'. "
            f"Accepted: {', '.join(sorted(hp))}."
        )
    hp.update(cfg.overrides)
    return check_hparams(hp, {**components, **declared_hparams(mspec)})


def check_hparams(hp: dict[str, Any], declared: dict[str, HParam]) -> dict[str, Any]:
    """``hp`` with every value coerced by its declaration (HParamError on the first bad one).

    Keys nobody declared (a dataset profile's extra key) are inferred from their value.
    """
    return {key: declared.get(key, HParam(value)).coerce(key, value) for key, value in hp.items()}


def describe_hparams(spec: Any) -> list[dict[str, Any]]:
    """Rows ``{name, type, range, default, doc, execution, source}`` for ``nlbench show``.

    ``spec`` is a MethodSpec (BASE rows, then the method's own, which win on a shared key) or
    a component spec with an ``hparams`` mapping (its rows only).
    """
    if isinstance(spec, MethodSpec):
        table = {k: ("base", h) for k, h in BASE_DECLARED.items()}
        own = declared_hparams(spec)
        table.update({k: (spec.name, own[k]) for k in spec.default_hparams})
    else:
        table = {k: (spec.name, h) for k, h in declarations(getattr(spec, "hparams", {})).items()}
    return [{**h.describe(k), "source": src} for k, (src, h) in table.items()]


def _components(hp: dict[str, Any], cfg: RunConfig, host: Any) -> dict[str, HParam]:
    if not any(key in hp for key in COMPONENT_KEYS):
        return {}
    return component_hparams(hp, cfg.overrides, host)


def train_augment(hp: dict[str, Any]) -> str | None:
    """The run's augmentation policy as nlbench.training.data names it (None: the dataset's own)."""
    value = hp.get("augment")
    return "none" if value == "off" else value


def _is_cuda(device: Any) -> bool:
    return getattr(device, "type", str(device)) == "cuda"


def use_channels_last(hp: dict[str, Any], device: Any) -> bool:
    """Whether images and networks use the channels-last memory format on ``device``."""
    value = hp.get("channels_last")
    return value == "always" or (value is True and _is_cuda(device))


def eval_batch_size(hp: dict[str, Any], device: Any) -> int:
    """The batch size of evaluation and train-set scans on ``device`` (see BASE_HPARAMS)."""
    if hp.get("eval_batch_size"):
        return int(hp["eval_batch_size"])
    return 1024 if _is_cuda(device) else int(hp["batch_size"])
