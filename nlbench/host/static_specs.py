"""The plugins' specs as data, kept in the static cache, so the CLI checks input without torch.

Loading the plugins imports torch (seconds, more on a busy machine). What a run's input is
checked against is plain data: names, typed hyper-parameter declarations, profiles, search
spaces, which noise models need an argument, and which files a dataset reads. This module
writes that data to the static cache (:mod:`nlbench.host.static_cache`, keyed by the plugins'
source files, so installing or removing a plugin or editing one rebuilds it) and reads it back
as :class:`StaticHost`, which answers ``get``/``registry`` as :class:`nlbench.host.plugins.Host`
does with the same spec classes, their code replaced by stubs.

Exactness is checked when the cache is written: a spec whose data does not survive the round
trip unchanged (a default of a plugin's own class, say) is kept out, by name, and anything
that touches it raises :class:`Undecidable`, so the caller lets the loaded plugins decide.
A noise model's ``check_arg`` is kept only when it lives in a module that imports no torch
(:data:`TORCH_FREE`); otherwise the argument is checked once torch has loaded.
"""

from __future__ import annotations

import dataclasses
import importlib
import math
import tempfile
from pathlib import Path
from typing import Any

from nlbench.core import specs
from nlbench.core.download import ProbeStop, probing
from nlbench.core.hparam_types import HParam
from nlbench.core.registry import KINDS, Registry
from nlbench.host import plugins
from nlbench.host.static_cache import cached

# modules whose functions may be called before torch loads (they import none of it)
TORCH_FREE = ("nlbench.core.config",)
CODE_FIELDS = {"factory", "load", "apply", "check_arg", "flags_for"}
SPEC_CLASSES = {
    cls.__name__: cls
    for cls in (
        specs.DatasetSpec,
        specs.NoiseModelSpec,
        specs.ModelSpec,
        specs.ComponentSpec,
        specs.LossSpec,
        specs.MethodSpec,
        specs.ExecutorSpec,
    )
}


class Undecidable(Exception):
    """The static data cannot decide this check; the loaded plugins will."""


class Unencodable(TypeError):
    """A value with no exact plain-data form (it keeps its spec out of the static cache)."""


def _needs_plugins(*_args: Any, **_kwargs: Any) -> Any:
    raise Undecidable("this needs the loaded plugins")


# -- encoding: JSON with tags, so tuples, sets and declarations come back as they were ------
def encode(value: Any) -> Any:
    """``value`` as JSON data; Unencodable for anything without an exact plain form."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else {"f": repr(value)}
    if isinstance(value, list):
        return [encode(v) for v in value]
    if isinstance(value, tuple):
        return {"t": [encode(v) for v in value]}
    if isinstance(value, (set, frozenset)):
        return {
            "s": [encode(v) for v in sorted(value, key=repr)],
            "frozen": type(value) is frozenset,
        }
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {"d": {k: encode(v) for k, v in value.items()}}
    if type(value) is HParam:
        fields = {f.name: getattr(value, f.name) for f in dataclasses.fields(HParam)}
        return {"h": encode(fields)}
    raise Unencodable(f"{type(value).__name__} value")


def decode(data: Any) -> Any:
    """The inverse of :func:`encode`."""
    if isinstance(data, list):
        return [decode(v) for v in data]
    if not isinstance(data, dict):
        return data
    if "t" in data:
        return tuple(decode(v) for v in data["t"])
    if "s" in data:
        items = (decode(v) for v in data["s"])
        return frozenset(items) if data["frozen"] else set(items)
    if "d" in data:
        return {k: decode(v) for k, v in data["d"].items()}
    if "h" in data:
        return HParam(**decode(data["h"]))
    return float(data["f"])


def function_ref(fn: Any) -> str | None:
    """``module:qualname`` of a torch-free module's function, else None."""
    module, qualname = getattr(fn, "__module__", ""), getattr(fn, "__qualname__", "")
    if module in TORCH_FREE and "<" not in qualname:
        return f"{module}:{qualname}"
    return None


def _resolve(ref: str | None) -> Any:
    if ref is None:
        return None
    module, _, qualname = ref.partition(":")
    if module not in TORCH_FREE:
        return None
    obj: Any = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


def encode_spec(spec: Any) -> dict[str, Any]:
    """One spec as data: its class, plain fields and, for ``check_arg``, a function reference."""
    cls = type(spec)
    if SPEC_CLASSES.get(cls.__name__) is not cls:
        raise Unencodable(f"spec class {cls.__module__}.{cls.__name__}")
    fields: dict[str, Any] = {}
    for f in dataclasses.fields(spec):
        value = getattr(spec, f.name)
        if f.name == "check_arg":
            fields["check_arg_ref"] = function_ref(value)
        elif f.name == "deviations":
            continue  # shown by `nlbench show` (its own cache); no check reads them
        elif f.name == "reads":  # which files a noise model reads is the plugin's code to say
            fields["reads"] = value is not None
        elif f.name not in CODE_FIELDS:
            fields[f.name] = encode(value)
    out = {"class": cls.__name__, "fields": fields}
    if decode_spec(out) != _comparable(spec):
        raise Unencodable(f"{cls.__name__} '{spec.name}' does not survive the round trip")
    return out


def _comparable(spec: Any) -> Any:
    """``spec`` as :func:`decode_spec` rebuilds it (code stubbed, deviations left out)."""
    changes: dict[str, Any] = {
        f.name: _needs_plugins for f in dataclasses.fields(spec) if f.name in CODE_FIELDS
    }
    if hasattr(spec, "deviations"):
        changes["deviations"] = ()
    if hasattr(spec, "flags_for"):
        changes["flags_for"] = None
    if hasattr(spec, "check_arg"):  # a plugin's own check runs once torch has loaded
        changes["check_arg"] = _resolve(function_ref(spec.check_arg))
    if getattr(spec, "reads", None) is not None:
        changes["reads"] = _needs_plugins
    return dataclasses.replace(spec, **changes)


def decode_spec(data: dict[str, Any]) -> Any:
    cls = SPEC_CLASSES[data["class"]]
    fields = {k: decode(v) for k, v in data["fields"].items() if k != "check_arg_ref"}
    for f in dataclasses.fields(cls):
        if f.name in CODE_FIELDS:
            fields[f.name] = _needs_plugins
    if "flags_for" in fields:
        fields["flags_for"] = None
    if "check_arg" in fields:  # None when the plugin's own check needs torch (it runs later)
        fields["check_arg"] = _resolve(data["fields"]["check_arg_ref"])
    if "reads" in fields:  # the run's identity hashes the files it reads: left to the plugins
        fields["reads"] = _needs_plugins if fields["reads"] else None
    return cls(**fields)


# -- the payload: every registry, the broken plugins and what each dataset reads ------------
def payload(host: Any) -> dict[str, Any]:
    """The static form of a loaded host (written to the cache as JSON)."""
    registries: dict[str, list[dict[str, Any]]] = {}
    dynamic: dict[str, list[str]] = {}
    for kind in KINDS:
        rows = registries.setdefault(kind, [])
        for e in host.registry(kind).entries():
            try:
                spec = encode_spec(e.spec)
            except Unencodable:
                dynamic.setdefault(kind, []).append(e.name)
                continue
            rows.append(
                {"spec": spec, "plugin": e.plugin, "dist": e.distribution, "ver": e.version}
            )
    data = {name: probe_dataset(host.get("datasets", name)) for name in host.registry("datasets")}
    return {"registries": registries, "dynamic": dynamic, "broken": host.broken, "data": data}


def probe_dataset(spec: Any) -> dict[str, Any] | None:
    """What the dataset's loader asks :func:`nlbench.core.download.require_files` for first, with
    paths relative to the data root (``{"files": None}``: it needs none; None: unknown).

    The loader runs on an empty root and is stopped at that first call; one that loads without
    calling it (embedded data) needs no files; any other outcome leaves the check to the run.
    """
    # lazy: keeps numpy, torch out of this module's import (CLI start-up)
    from nlbench.training.data import LoadRequest

    with tempfile.TemporaryDirectory(prefix="nlbench-probe-") as tmp:
        root = Path(tmp).resolve()
        with probing() as found:
            try:
                spec.load(LoadRequest(root=root / "data", download=False))
            except ProbeStop:
                return _relative(found, root / "data")
            # a loader may fail in any way on an empty root: the run will say what is missing
            except Exception:  # noqa: BLE001
                return None
    return {"files": None}


def _relative(found: dict[str, Any], root: Path) -> dict[str, Any] | None:
    try:
        folder = found["folder"].resolve().relative_to(root)
        target = found["target"].resolve().relative_to(root)
    except ValueError:  # files outside the data root ($NLBENCH_IMAGEFOLDER and the like)
        return None
    return {
        "folder": str(folder),
        "target": str(target),
        "files": [[e.name, e.md5, list(e.aliases)] for e in found["expected"]],
        "archives": [[a.url, a.filename, a.md5, a.extract] for a in found["archives"]],
        "hint": found["hint"],
    }


class StaticHost:
    """A host answering from the static payload: ``registry(kind)``, ``get(kind, name)`` and
    ``broken`` as :class:`nlbench.host.plugins.Host`; ``data`` maps datasets to their probes."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.broken: list[dict[str, str]] = list(data["broken"])
        self.registries = {k: Registry(k, broken=self.broken) for k in KINDS}
        for kind, rows in data["registries"].items():
            for row in rows:
                spec = decode_spec(row["spec"])
                self.registries[kind].add(spec, row["plugin"], row["dist"], row["ver"])
        self.dynamic = {k: set(v) for k, v in data["dynamic"].items()}
        self.data: dict[str, Any] = data["data"]

    def registry(self, kind: str) -> Registry:
        if self.dynamic.get(kind):
            raise Undecidable(f"some {kind} are not in the static cache")
        return self.registries[kind]

    def get(self, kind: str, name: str) -> Any:
        if name in self.dynamic.get(kind, ()):
            raise Undecidable(f"{kind} '{name}' is not in the static cache")
        return self.registries[kind].get(name)


def static_host() -> StaticHost:
    """The static host of the installed plugins (built, which loads them, on a cold cache).

    Raises Undecidable when the cache holds something this nlbench cannot read.
    """
    try:
        return StaticHost(cached("static", lambda: payload(plugins.get_host())))
    except (KeyError, TypeError, ValueError) as exc:  # a cache file of another layout
        raise Undecidable(f"static cache unreadable: {exc}") from None
