"""Module paths of 0.1 (one flat package) that moved into the layered packages.

A plugin written against 0.1 that copied the built-ins' ``from nlbench.specs import ...`` keeps
working for at least one minor release: importing an old path warns (``DeprecationWarning``)
and returns the module at its new path, the same object, so patches and ``isinstance`` agree.
Plugins should import :mod:`nlbench.api` instead (CHANGELOG.md, "Migration notes").
``nlbench.sweep`` (now a package) forwards its old names itself.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import warnings
from types import ModuleType

# old name under nlbench -> new name under nlbench
MOVED: dict[str, str] = {
    "atomic": "core.atomic",
    "autograd_modes": "algorithms.autograd_modes",
    "bench_legs": "bench.legs",
    "checkpoint": "engine.checkpoint",
    "component_hparams": "core.component_hparams",
    "components": "training.components",
    "config": "core.config",
    "console": "core.console",
    "context": "engine.context",
    "costs": "core.costs",
    "data": "training.data",
    "dataprep": "engine.dataprep",
    "distributed": "training.distributed",
    "download": "core.download",
    "envinfo": "core.envinfo",
    "epoch_loop": "engine.epoch_loop",
    "errors": "core.errors",
    "evaluation": "engine.evaluation",
    "facility_location": "algorithms.facility_location",
    "faults": "engine.faults",
    "fitscan": "training.fitscan",
    "gmm": "algorithms.gmm",
    "hookspecs": "core.hookspecs",
    "hparam_types": "core.hparam_types",
    "hparams": "core.hparams",
    "identity": "core.identity",
    "leaderboard": "boards.leaderboard",
    "manifest": "core.manifest",
    "metagrad": "algorithms.metagrad",
    "method": "training.method",
    "metrics": "training.metrics",
    "migrate": "engine.migrate",
    "mixmatch": "algorithms.mixmatch",
    "model_contract": "training.model_contract",
    "models": "training.models",
    "noise": "training.noise",
    "observers": "engine.observers",
    "phases": "training.phases",
    "plugins": "host.plugins",
    "preflight": "engine.preflight",
    "prepare": "engine.prepare",
    "profiles": "core.profiles",
    "record": "core.record",
    "registry": "core.registry",
    "report": "boards.report",
    "run_facts": "core.run_facts",
    "run_io": "engine.run_io",
    "run_state": "engine.run_state",
    "rundir": "engine.rundir",
    "runner": "engine.runner",
    "schedules": "core.schedules",
    "seeding": "core.seeding",
    "specs": "core.specs",
    "static_cache": "host.static_cache",
    "static_specs": "host.static_specs",
    "sweep_grid": "sweep.grid",
    "sweep_progress": "sweep.progress",
}


class _Alias(importlib.abc.Loader):
    def __init__(self, new: str) -> None:
        self.new = new

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        warnings.warn(
            f"{spec.name} moved to {self.new}; plugins should import nlbench.api",
            DeprecationWarning,
            stacklevel=4,
        )
        module = importlib.import_module(self.new)
        sys.modules[spec.name] = module
        return module

    def exec_module(self, module: ModuleType) -> None:
        """The module at its new path is already executed."""


class _MovedFinder(importlib.abc.MetaPathFinder):
    def find_spec(
        self, fullname: str, path: object = None, target: object = None
    ) -> importlib.machinery.ModuleSpec | None:
        if not fullname.startswith("nlbench."):
            return None
        new = MOVED.get(fullname[len("nlbench.") :])
        if new is None:
            return None
        return importlib.machinery.ModuleSpec(fullname, _Alias(f"nlbench.{new}"))


def install() -> None:
    """Put the finder on ``sys.meta_path`` once (after the path finders: real modules win)."""
    if not any(isinstance(f, _MovedFinder) for f in sys.meta_path):
        sys.meta_path.append(_MovedFinder())
