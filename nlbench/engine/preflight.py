"""A run's input, checked before torch loads: names, noise, hyper-parameters, paths, data.

A usage error should answer at once, not after the seconds (a minute on a busy machine) that
importing torch and the plugins takes. The CLI therefore resolves the run with the same code
the runner uses (:func:`run_identity`), against the plugins' specs as the static cache keeps
them (:class:`nlbench.host.static_specs.StaticHost`), and checks the paths and the dataset's files
(as its loader's first :func:`nlbench.core.download.require_files` asks for them); only then does it
import torch. Whatever the static data cannot decide (a plugin's own argument check, a spec
that is not plain data, a dataset whose files it does not know) is left to the runner, which
checks everything again: these checks only ever answer sooner, never differently.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nlbench.core import download
from nlbench.core.config import NoiseSpec, RunConfig, compute_run_id, parse_noise
from nlbench.core.errors import DataMissingError, UsageError
from nlbench.core.hparams import declared_hparams, resolve_hparams
from nlbench.core.identity import input_hashes, run_key
from nlbench.core.specs import DatasetSpec, MethodSpec
from nlbench.host.static_specs import Undecidable, static_host

DEVICES = "auto, cpu, cuda, cuda:N"


def default_data_root() -> Path:
    return Path(os.environ.get("NLBENCH_DATA") or Path.home() / ".cache" / "nlbench" / "data")


@dataclass(frozen=True)
class Identity:
    """What decides a run's result, resolved without loading any data.

    ``identity`` is the record's ``config`` (every resolved hparam); ``key`` is the part the
    run_id hashes (:mod:`nlbench.core.identity`).
    """

    method_spec: MethodSpec
    dataset_spec: DatasetSpec
    noise_spec: NoiseSpec
    hparams: dict[str, Any]
    identity: dict[str, Any]
    run_id: str
    key: dict[str, Any]


def read_inputs(nmodel: Any, nspec: NoiseSpec) -> dict[str, Any]:
    """The SHA-256 of every file the run reads (the noise model's ``reads``), by input."""
    reads = getattr(nmodel, "reads", None)
    if reads is None:
        return {}
    return input_hashes({"noise": reads(nspec.arg)}, f"noise '{nspec}'")


def run_identity(cfg: RunConfig, host: Any) -> Identity:
    """Resolve specs and hparams and hash their key into the run_id, as the runner does.

    Cheap (no data is loaded, no torch needed), so a sweep can key thousands of runs before
    starting any. ``host`` is the loaded :class:`nlbench.host.plugins.Host` or a StaticHost.
    """
    mspec = host.get("methods", cfg.method)
    dspec = host.get("datasets", cfg.dataset)
    nspec = parse_noise(cfg.noise)
    nmodel = host.get("noise", nspec.type)
    if nmodel.needs_arg and nspec.arg is None:
        raise UsageError(f"noise '{nspec}' needs an argument, e.g. {nspec.type}:0.4")
    if nmodel.check_arg is not None:
        nmodel.check_arg(nspec.arg, str(nspec))
    hp = resolve_hparams(mspec, dspec, cfg, host)
    if hp["model"] is None:
        raise UsageError(f"dataset '{dspec.name}' names no default model; pass --model")
    # as nlbench.training.models.resolve_model_spec: ``timm:<arch>`` is the ``timm`` bridge
    model = str(hp["model"])
    host.get("models", "timm" if model.startswith("timm:") else model)
    identity = {
        "method": cfg.method,
        "dataset": cfg.dataset,
        "noise": str(nspec),
        "profile": cfg.profile,
        "hparams": hp,
        "seed": cfg.seed,
        "noise_seed": cfg.noise_seed,
        "train_subset": cfg.train_subset,
    }
    if nmodel.version != 1:  # a noise model whose meaning changed (NoiseModelSpec.version)
        identity["noise_version"] = nmodel.version
    inputs = read_inputs(nmodel, nspec)
    if inputs:  # the contents of the files the run reads (nlbench.core.identity)
        identity["inputs"] = inputs
    key = run_key(identity, hp, declared_hparams(mspec))
    run_id = cfg.run_id or compute_run_id(key)
    return Identity(mspec, dspec, nspec, hp, identity, run_id, key)


def static_or_none() -> Any:
    """The static host, or None when the plugins cannot be described without loading them."""
    try:
        return static_host()
    except Undecidable:
        return None


def check_run(cfg: RunConfig) -> None:
    """Every check a run makes before loading data, without torch (UsageError on bad input).

    Returns quietly when the input is fine or when only the loaded plugins can tell.
    """
    # lazy: keeps filelock out of this module's import (CLI start-up)
    from nlbench.engine import rundir

    rundir.check_run_id(cfg.run_id)
    rundir.check_out(cfg.out)
    check_device(cfg.device)
    if cfg.train_subset is not None and cfg.train_subset < 1:
        raise UsageError(f"--train-subset {cfg.train_subset}: must be a positive integer")
    host = static_or_none()
    if host is None:
        return
    try:
        run_identity(cfg, host)
        check_data(host, cfg.dataset, cfg.data_root)
    except Undecidable:
        return


def check_device(name: str) -> None:
    """The device's spelling (whether CUDA is there is asked once torch has loaded)."""
    if name in ("auto", "cpu", "cuda") or (name.startswith("cuda:") and name[5:].isdigit()):
        return
    raise UsageError(f"--device '{name}': accepted: {DEVICES}.")


def check_noise(dataset: str, noise: str, data_root: str | None) -> None:
    """``nlbench noise``'s input: the dataset, the noise spec and its argument, the data."""
    host = static_or_none()
    if host is None:
        return
    try:
        host.get("datasets", dataset)
        nspec = parse_noise(noise)
        nmodel = host.get("noise", nspec.type)
        if nmodel.needs_arg and nspec.arg is None:
            raise UsageError(
                f"noise '{nspec.type}' needs an argument, e.g. --noise {nspec.type}:0.4"
            )
        if nmodel.check_arg is not None:
            nmodel.check_arg(nspec.arg, str(nspec))
        check_data(host, dataset, data_root)
    except Undecidable:
        return


def check_data(
    host: Any,
    dataset: str,
    data_root: str | os.PathLike | None,
    preparing: bool = False,
    can_download: bool = True,
) -> None:
    """DataMissingError, naming the next step, when the dataset's files are surely missing.

    "Surely": the files its loader asks for first are not there, and the run could not fetch
    them (no official download, or offline). A download the run would make, or a folder the
    loader may find under another spelling (``clothing1M``), is left to the loader.
    """
    probe = host.data.get(dataset)
    if not probe or probe.get("files") is None:
        return
    root = Path(data_root) if data_root else default_data_root()
    first = Path(probe["folder"]).parts[:1]
    if first and not (root / first[0]).exists() and _other_spelling(root, first[0]):
        return
    folder, target = root / probe["folder"], root / probe["target"]
    expected = [download.Expected(n, m, tuple(a)) for n, m, a in probe["files"]]
    missing = download.missing_files(folder, expected)
    archives = [download.Archive(*a) for a in probe["archives"]]
    if not missing or (archives and can_download and not download.offline()):
        return
    command = None if preparing else download.prepare_command(dataset, root)
    message = download.missing_message(
        folder, target, missing, dataset, archives, probe["hint"], command
    )
    error = DataMissingError(message)
    if command is not None:
        error.hint = command
    raise error


def _other_spelling(root: Path, name: str) -> bool:
    try:
        return any(p.name.lower() == name.lower() for p in root.iterdir())
    except OSError:
        return False
