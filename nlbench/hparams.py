"""Resolving a run's hyper-parameters from base, dataset profile, method profile and flags.

Order (later wins): BASE → dataset profile → method defaults → method profile ("default",
then the dataset's own entry) → --model/--epochs → --set. Unknown --set keys are usage errors.
"""

from __future__ import annotations

from typing import Any

from nlbench.config import RunConfig
from nlbench.data import AUGMENTS
from nlbench.errors import UsageError
from nlbench.specs import DatasetSpec, MethodSpec

BASE_HPARAMS: dict[str, Any] = {
    "model": None,
    "epochs": 10,
    "batch_size": 128,
    "lr": 0.1,
    "momentum": 0.9,
    "nesterov": False,
    "weight_decay": 5e-4,
    "scheduler": "multistep",
    "milestones": [0.5, 0.75],
    "gamma": 0.1,
    "onecycle_pct": 0.3,
    "onecycle_div": 25.0,
    # None: 1024 on CUDA, the training batch size on CPU (benchmarks/bench_cpu_layout.py,
    # cnn_small, 1 thread: batches of 1024 run inference ~1.85x slower per image than 128)
    "eval_batch_size": None,
    "meta_set": None,
    "dropout": None,
    "pretrained": None,
    "amp": True,
    # True: channels-last images and nets on CUDA only (the default; CPU runs stay as they
    # were recorded); "always": on CPU too (benchmarks/bench_cpu_layout.py, cnn_small, 1
    # thread, batch 128: training steps ~1.35x, inference ~1.9-2.1x faster; float results
    # differ in the last bits)
    "channels_last": True,
    # train-time augmentation: None keeps the dataset's policy (crop_flip for the image
    # sets); "crop_flip", "crop", "flip", "off" override it (the CIFAR cpu profile's reason is in its comment)
    "augment": None,
    # per-epoch gradient diagnostics (observers_diagnostics): off by default, it costs a pass
    "diagnostics": False,
}


# nlbench.data's policies, with ``off`` for ``none``: --set reads "none" as null (the
# dataset's own policy)
AUGMENT_POLICIES = (None, *("off" if a == "none" else a for a in AUGMENTS))


def profile_names(dspec: DatasetSpec) -> list[str]:
    return sorted(dspec.profiles)


def method_profile(mspec: MethodSpec, profile: str, dataset: str) -> dict[str, Any]:
    """The method's overrides for (profile, dataset)."""
    table = mspec.profiles.get(profile, {})
    return {**table.get("default", {}), **table.get(dataset, {})}


def resolve_hparams(
    mspec: MethodSpec, dspec: DatasetSpec, cfg: RunConfig, host: Any = None
) -> dict[str, Any]:
    """The fully resolved hparams of one run (validated --set keys).

    The components the run uses (``loss``, ``selector``, ``reweighter``) add the hparams they
    declare (:mod:`nlbench.component_hparams`), looked up in ``host`` (default: the loaded one).
    """
    if cfg.profile not in dspec.profiles:
        raise UsageError(
            f"dataset '{dspec.name}' has no profile '{cfg.profile}'. "
            f"Accepted: {', '.join(profile_names(dspec)) or '(none)'}."
        )
    hp: dict[str, Any] = {**BASE_HPARAMS, **dspec.profiles[cfg.profile]}
    hp.update(mspec.default_hparams)
    hp.update(method_profile(mspec, cfg.profile, dspec.name))
    if cfg.model is not None:
        hp["model"] = cfg.model
    if cfg.epochs is not None:
        hp["epochs"] = cfg.epochs
    hp.update(_components(hp, cfg, host))
    unknown = sorted(set(cfg.overrides) - set(hp))
    if unknown:
        raise UsageError(
            f"unknown --set key(s) {', '.join(unknown)} for method '{mspec.name}'. "
            f"Accepted: {', '.join(sorted(hp))}."
        )
    hp.update(cfg.overrides)
    _validate(hp)
    return hp


def _components(hp: dict[str, Any], cfg: RunConfig, host: Any) -> dict[str, Any]:
    from nlbench.component_hparams import COMPONENT_KEYS, component_hparams

    if not any(key in hp for key in COMPONENT_KEYS):
        return {}
    if host is None:
        from nlbench.plugins import get_host

        host = get_host()
    return component_hparams(hp, cfg.overrides, host)


def _validate(hp: dict[str, Any]) -> None:
    for key in ("epochs", "batch_size"):
        if not isinstance(hp[key], int) or isinstance(hp[key], bool) or hp[key] < 1:
            raise UsageError(f"{key} must be a positive integer, got {hp[key]!r}")
    for key in ("lr", "momentum", "weight_decay"):
        if not isinstance(hp[key], (int, float)) or isinstance(hp[key], bool) or hp[key] < 0:
            raise UsageError(f"{key} must be a non-negative number, got {hp[key]!r}")
    ebs = hp.get("eval_batch_size")
    if ebs is not None and (not isinstance(ebs, int) or isinstance(ebs, bool) or ebs < 1):
        raise UsageError(f"eval_batch_size must be a positive integer or None, got {ebs!r}")
    if hp.get("channels_last") not in (True, False, "always"):
        raise UsageError(f"channels_last must be true, false or always, got "
                         f"{hp['channels_last']!r}")  # fmt: skip
    if hp.get("augment") not in AUGMENT_POLICIES:
        raise UsageError(f"augment must be one of {', '.join(map(str, AUGMENT_POLICIES))}, "
                         f"got {hp['augment']!r}")  # fmt: skip
    if not isinstance(hp["milestones"], list):
        raise UsageError(f"milestones must be a list like [0.5, 0.75], got {hp['milestones']!r}")


def train_augment(hp: dict[str, Any]) -> str | None:
    """The run's augmentation policy as nlbench.data names it (None: the dataset's own)."""
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
