"""The public API: build pieces by name or run a configuration (notebooks), and every name a
plugin author needs (the one import point for plugins, built-in ones included).

Plugin authors: the spec classes to register (with :class:`MethodFlag`), :data:`hookimpl`,
the model contract (:class:`ClassifierNet`, :class:`TimmClassifier`,
:func:`check_classifier_contract`, :func:`check_options`, :func:`on_meta_device`), the dataset
profiles (:func:`small_image_profiles`), typed hyper-parameters and the method base classes
(:class:`Method`, :class:`SingleNetMethod`, :class:`TwoNetMethod`), with what a method's code
meets (:class:`TrainContext`, :class:`Batch`, :class:`EpochPlan`, the
pre-training :class:`Phase` and its :class:`AuxNet`, :class:`NoiseSetting`,
:func:`derive_seed`, :class:`UsageError`). For their tests (:mod:`nlbench.testing` is built
on these): :func:`build_method`, :func:`resolve_config`, :func:`get_spec`, :func:`read_record`,
:data:`KILL_AT_ENV`.
"""

from __future__ import annotations

import importlib
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nlbench.core.config import RunConfig, parse_noise, parse_rate
from nlbench.core.download import (
    Archive,
    Expected,
    load_numpy_pickle,
    numpy_safe_globals,
    require_files,
)
from nlbench.core.errors import DataMissingError, UsageError
from nlbench.core.hookspecs import hookimpl
from nlbench.core.hparam_types import (
    Bool,
    Choice,
    Float,
    FloatList,
    HParam,
    Int,
    Optional,
    Str,
    with_defaults,
)
from nlbench.core.hparams import eval_batch_size
from nlbench.core.profiles import small_image_profiles
from nlbench.core.record import TIMING_METRICS, read_record
from nlbench.core.run_facts import NoiseSetting
from nlbench.core.seeding import derive_seed
from nlbench.core.specs import (
    ComponentFactory,
    ComponentSpec,
    DatasetSpec,
    Deviation,
    ExecutorSpec,
    Hparams,
    LossFactory,
    LossFn,
    LossSpec,
    MethodFactory,
    MethodFlag,
    MethodSpec,
    ModelFactory,
    ModelSpec,
    NoiseModelSpec,
    ReweighterSpec,
    SelectorSpec,
)
from nlbench.engine.context import build_method as _build_method
from nlbench.engine.faults import ENV as KILL_AT_ENV
from nlbench.engine.preflight import run_identity
from nlbench.engine.prepare import default_data_root, prepare
from nlbench.host.plugins import get_host
from nlbench.sweep.plan import Job, run_job, threads_per_job
from nlbench.training.components import ComposedMethod, Selection, check_choice, composed_hparams
from nlbench.training.data import (
    Batch,
    DatasetData,
    DeviceImages,
    EpochPlan,
    ImageSet,
    LoadRequest,
    TrainSet,
    class_balanced_pool,
)
from nlbench.training.method import (
    DEPRECATED_FIELDS,
    SINGLE_NET_HPARAMS,
    ComponentLookup,
    Method,
    Scan,
    SingleNetMethod,
    TrainContext,
)
from nlbench.training.model_contract import (
    ClassifierNet,
    TimmClassifier,
    check_classifier_contract,
    check_options,
    on_meta_device,
)
from nlbench.training.models import build_model as _build_model
from nlbench.training.noise import (
    NoiseContext,
    NoiseResult,
    apply_noise,
    noise_rng,
    optional_rate_arg,
    rate_arg,
)
from nlbench.training.phases import AuxNet, Phase
from nlbench.training.two_net import TwoNetMethod

#: The plugin API's version: the minor number grows when names are added, the major number only
#: after a removal that went through :data:`DEPRECATED` (CHANGELOG.md, "Deprecation policy").
API_VERSION = "1.1"

#: Public names that moved or go: name -> (where it lives now, "module:attr"; the API version
#: that deprecated it; the first version that may remove it). Each still resolves, with a
#: DeprecationWarning, for at least one minor release.
DEPRECATED: dict[str, tuple[str, str, str]] = {}

#: Attributes of public classes that go, as :data:`DEPRECATED` lists names: "Class.attr" ->
#: (what replaces it, the API version that deprecated it, the first version that may remove
#: it). Each still reads, with a DeprecationWarning, for at least one minor release.
DEPRECATED_ATTRIBUTES: dict[str, tuple[str, str, str]] = {
    f"TrainContext.{name}": entry for name, entry in DEPRECATED_FIELDS.items()
}


def __getattr__(name: str) -> Any:
    """Resolve a deprecated public name to its new home, warning once per use."""
    if name not in DEPRECATED:
        raise AttributeError(f"module 'nlbench.api' has no attribute {name!r}")
    target, since, until = DEPRECATED[name]
    module, _, attr = target.partition(":")
    warnings.warn(
        f"nlbench.api.{name} is deprecated since API {since} and may be removed in {until}; "
        f"use {module}.{attr} (CHANGELOG.md has the migration note)",
        DeprecationWarning,
        stacklevel=2,
    )
    return getattr(importlib.import_module(module), attr)


def run(**kwargs: Any) -> dict[str, Any]:
    """Train one configuration and return its record, e.g.
    ``nlbench.run(method="erm", dataset="digits", noise="0.6", epochs=5)``.

    Keyword arguments are :class:`nlbench.core.config.RunConfig` fields; ``set={"lr": 0.05}``
    overrides hyper-parameters like ``--set``.
    """
    # lazy: keeps filelock out of this module's import (CLI start-up)
    from nlbench.engine.runner import run as _run

    return _run(**kwargs)


def build_dataset(name: str, data_root: str | Path | None = None) -> DatasetData:
    """Load a registered dataset (train/test uint8 tensors, labels, classes, mean/std)."""
    spec = get_host().get("datasets", name)
    data: DatasetData = spec.load(
        LoadRequest(root=Path(data_root) if data_root else default_data_root())
    )
    return data


def build_model(
    name: str, num_classes: int = 10, in_chans: int = 3, image_size: int = 32, **kwargs: Any
) -> torch.nn.Module:
    """Instantiate a registered model (``timm:<arch>`` works too)."""
    return _build_model(
        get_host().registry("models"), name, num_classes, in_chans, image_size, **kwargs
    )


def get_spec(kind: str, name: str) -> Any:
    """The spec a plugin registered under ``name`` (``kind``: "methods", "datasets", "noise",
    "models", "losses", ...); a UsageError listing the choices when there is none."""
    return get_host().get(kind, name)


def resolve_config(cfg: RunConfig) -> dict[str, Any]:
    """What a run of ``cfg`` records as its ``config`` (names, noise, every hyper-parameter,
    seeds), resolved as the runner does but without loading data: a bad name or ``--set``
    value raises the UsageError the CLI prints."""
    return dict(run_identity(cfg, get_host()).identity)


def build_method(cfg: RunConfig, device: str | torch.device = "cpu") -> tuple[Method, TrainContext]:
    """A method built as the runner builds it for ``cfg`` (data loaded, labels noised), with its
    :class:`TrainContext`; ``ctx.scan()`` runs the runner's own no-augmentation scan. For unit
    tests of one method (:mod:`nlbench.testing`)."""
    host = get_host()
    method, ctx, _ = _build_method(prepare(cfg, host), torch.device(device), host)
    return method, ctx


def make_noisy_labels(
    dataset: str, noise: str, noise_seed: int = 0, data_root: str | Path | None = None
) -> tuple[np.ndarray, NoiseResult]:
    """(clean train labels, NoiseResult) for a dataset and noise spec, as a run would draw them."""
    host = get_host()
    spec = parse_noise(noise)
    data = build_dataset(dataset, data_root)
    clean = data.train.y.numpy().astype(np.int64)
    dspec = host.get("datasets", dataset)
    ctx = NoiseContext(
        clean=clean.copy(),
        num_classes=data.num_classes,
        rng=noise_rng(dataset, spec, noise_seed, len(clean)),
        dataset=dataset,
        dataset_spec=dspec,
        train_x=data.train.x,
        data_root=Path(data_root) if data_root else default_data_root(),
        sample_ids=np.arange(len(clean)),
        full_size=len(clean),
    )
    return clean, apply_noise(spec, ctx, host.registry("noise"))


__all__ = [
    "API_VERSION",
    "DEPRECATED",
    "DEPRECATED_ATTRIBUTES",
    "KILL_AT_ENV",
    "SINGLE_NET_HPARAMS",
    "TIMING_METRICS",
    "Archive",
    "AuxNet",
    "Batch",
    "Bool",
    "Choice",
    "ClassifierNet",
    "ComponentFactory",
    "ComponentLookup",
    "ComponentSpec",
    "ComposedMethod",
    "DataMissingError",
    "DatasetData",
    "DatasetSpec",
    "Deviation",
    "DeviceImages",
    "EpochPlan",
    "ExecutorSpec",
    "Expected",
    "Float",
    "FloatList",
    "HParam",
    "Hparams",
    "ImageSet",
    "Int",
    "Job",
    "LoadRequest",
    "LossFactory",
    "LossFn",
    "LossSpec",
    "Method",
    "MethodFactory",
    "MethodFlag",
    "MethodSpec",
    "ModelFactory",
    "ModelSpec",
    "NoiseContext",
    "NoiseModelSpec",
    "NoiseResult",
    "NoiseSetting",
    "Optional",
    "Phase",
    "ReweighterSpec",
    "RunConfig",
    "Scan",
    "Selection",
    "SelectorSpec",
    "SingleNetMethod",
    "Str",
    "TimmClassifier",
    "TrainContext",
    "TrainSet",
    "TwoNetMethod",
    "UsageError",
    "build_dataset",
    "build_method",
    "build_model",
    "check_choice",
    "check_classifier_contract",
    "check_options",
    "class_balanced_pool",
    "composed_hparams",
    "derive_seed",
    "eval_batch_size",
    "get_spec",
    "hookimpl",
    "load_numpy_pickle",
    "make_noisy_labels",
    "numpy_safe_globals",
    "on_meta_device",
    "optional_rate_arg",
    "parse_rate",
    "rate_arg",
    "read_record",
    "require_files",
    "resolve_config",
    "run",
    "run_job",
    "small_image_profiles",
    "threads_per_job",
    "with_defaults",
]
