"""Plugin host: loads the ``nlbench`` entry-point group and fills the registries once.

Built-ins and third parties load the same way. A plugin that fails to import or register (a
hook that raises, an invalid or already taken name, two plugins of one entry-point name, a
dataset's unknown ``asym_map``) registers nothing and is recorded in :attr:`Host.broken`
(``nlbench list`` and every "unknown name" error show it); the rest still load.

Environment:
    NLBENCH_DISABLE_PLUGIN_AUTOLOAD=1: load only the built-in plugins (tests).
    NLBENCH_LOAD_PLUGINS=a,b: load only these entry points (an allow-list).
    NLBENCH_TRACE_PLUGINS=1: log every hook call.
"""

from __future__ import annotations

import importlib
import logging
import os
import pkgutil
from dataclasses import dataclass, field
from importlib import metadata
from types import ModuleType
from typing import Any

import pluggy

from nlbench import hookspecs
from nlbench.errors import PluginError
from nlbench.registry import KINDS, Registry, check_asym_maps

ENTRY_POINT_GROUP = "nlbench"
BUILTIN_PACKAGE = "nlbench_plugins"
log = logging.getLogger(__name__)


@dataclass
class Host:
    """The loaded plugin manager and its registries."""

    pm: pluggy.PluginManager
    registries: dict[str, Registry]
    broken: list[dict[str, str]] = field(default_factory=list)
    provenance: dict[str, tuple[str, str]] = field(default_factory=dict)
    extra: list[str] = field(default_factory=list)  # plugins passed in, not found by entry point

    def registry(self, kind: str) -> Registry:
        return self.registries[kind]

    def get(self, kind: str, name: str) -> Any:
        return self.registries[kind].get(name)

    def plugin_versions(self) -> dict[str, str]:
        return {name: ver for name, (_, ver) in sorted(self.provenance.items())}


# The one piece of global state: the host every caller without one of its own shares (the CLI,
# ``nlbench.run``, sweeps). Loading imports every plugin and calls its registration hooks, so it
# happens once per process. Only entry points (commands, the runner, nlbench.api) call
# get_host(); below them the host is passed (``Runner(host=...)``, ``resolve_hparams(...,
# host)``, a method's ``ctx.components``); ``load_plugins(extra=...)`` replaces this one on purpose
# (tests and notebooks inject plugins through it) and ``reset()`` forgets it.
_host: Host | None = None


def builtin_modules() -> list[str]:
    """Names of the built-in plugin modules (every public module of ``nlbench_plugins``;
    sub-packages such as ``meta`` hold a method's internals and register nothing)."""
    pkg = importlib.import_module(BUILTIN_PACKAGE)
    return sorted(
        f"{BUILTIN_PACKAGE}.{m.name}"
        for m in pkgutil.iter_modules(pkg.__path__)
        if not m.name.startswith("_") and not m.ispkg
    )


def _entry_points() -> list[metadata.EntryPoint]:
    """The group's entry points, one per (name, module); two modules under one name both stay
    (the second is listed as broken when it loads, the first keeps working)."""
    eps = sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: (e.name, e.value))
    seen: dict[tuple[str, str], metadata.EntryPoint] = {}
    for ep in eps:
        seen.setdefault((ep.name, ep.value), ep)
    return list(seen.values())


def _dist_of(ep: metadata.EntryPoint) -> tuple[str, str]:
    dist = getattr(ep, "dist", None)
    return (dist.name, dist.version) if dist is not None else ("", "")


def _candidates() -> list[tuple[str, str, tuple[str, str]]]:
    """(plugin name, module path, (distribution, version)) for every plugin to load."""
    if os.environ.get("NLBENCH_DISABLE_PLUGIN_AUTOLOAD"):
        from nlbench import __version__

        return [(m.rsplit(".", 1)[1], m, ("nlbench", __version__)) for m in builtin_modules()]
    allow = os.environ.get("NLBENCH_LOAD_PLUGINS")
    allowed = {a.strip() for a in allow.split(",")} if allow else None
    return [
        (ep.name, ep.value, _dist_of(ep))
        for ep in _entry_points()
        if allowed is None or ep.name in allowed
    ]


def _register_module(host: Host, name: str, module: ModuleType) -> None:
    host.pm.register(module, name=name)


def _impls_by_plugin(pm: pluggy.PluginManager) -> dict[str, list[tuple[str, Any]]]:
    """(registry kind, hook implementation) per plugin name, as pluggy collected them.

    Going through pluggy means ``@hookimpl(specname=...)`` counts and unmarked functions that
    merely share a hook's name do not.
    """
    out: dict[str, list[tuple[str, Any]]] = {}
    for kind, (hook, _) in KINDS.items():
        for impl in getattr(pm.hook, hook).get_hookimpls():
            out.setdefault(impl.plugin_name, []).append((kind, impl))
    return out


def _mark_broken(host: Host, plugin: str, exc: BaseException, what: str) -> None:
    error = " ".join(f"{type(exc).__name__}: {exc}".split())
    host.broken.append({"plugin": plugin, "error": error})
    log.warning("plugin %s failed to %s: %s", plugin, what, error)


def _stage(host: Host, plugin_name: str, impls: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
    """Call one plugin's registration hooks and check every name it gives (valid, not taken,
    not twice) before any is added: PluginError names the first problem."""
    staged: list[tuple[str, Any]] = []
    for kind, impl in impls:
        impl.function(register=lambda spec, _k=kind, _s=staged: _s.append((_k, spec)))
    trial = {kind: Registry(kind) for kind in KINDS}
    for kind, spec in staged:
        name = getattr(spec, "name", None)
        if isinstance(name, str) and name in host.registries[kind]:
            host.registries[kind].add(spec, plugin_name)  # raises, naming both plugins
        trial[kind].add(spec, plugin_name)  # an invalid name, or one name twice in the plugin
    return staged


def _load_order(host: Host, plugin_name: str) -> tuple[bool, str]:
    """Built-in plugins register first: a third party's duplicate of ``erm`` is the broken one."""
    return (host.provenance.get(plugin_name, ("", ""))[0] != "nlbench", plugin_name)


def _fill_registries(host: Host) -> None:
    """Call every registration hook, plugin by plugin, so each name carries its provenance.

    A plugin whose hook raises, or that registers an invalid or already taken name, registers
    nothing (its names are all-or-none) and is listed in :attr:`Host.broken`; the others load.
    """
    broken = {b["plugin"] for b in host.broken}
    by_plugin = _impls_by_plugin(host.pm)
    for plugin_name in sorted(by_plugin, key=lambda name: _load_order(host, name)):
        if plugin_name in broken:
            continue
        dist, ver = host.provenance.get(plugin_name, ("", ""))
        try:
            staged = _stage(host, plugin_name, by_plugin[plugin_name])
        except Exception as exc:  # noqa: BLE001 - a broken plugin must not take the others down
            _mark_broken(host, plugin_name, exc, "register")
            continue
        for kind, spec in staged:
            host.registries[kind].add(spec, plugin_name, dist, ver)


def _check_hooks(host: Host) -> None:
    """A plugin implementing a hook nlbench does not have (a misspelt name) is unregistered
    and listed as broken; the others keep working."""
    while True:
        try:
            host.pm.check_pending()
            return
        except pluggy.PluginValidationError as exc:
            name = host.pm.get_name(exc.plugin)
            if name is None:
                raise
            host.pm.unregister(exc.plugin)
            _mark_broken(host, name, exc, "register")


def _check_asym_maps(host: Host) -> None:
    """A dataset naming a class-pair map no noise model knows: its plugin is listed as broken
    and its names are taken back (all-or-none), the other plugins keep working."""
    while True:
        try:
            check_asym_maps(host.registries)
            return
        except PluginError as exc:
            plugin = getattr(exc, "plugin", None)
            if plugin is None:
                raise
            for registry in host.registries.values():
                registry.remove_plugin(plugin)
            _mark_broken(host, plugin, exc, "register")


def load_plugins(extra: list[tuple[str, ModuleType | object]] | None = None) -> Host:
    """Load all plugins and fill the registries (idempotent unless ``extra`` is given)."""
    global _host
    if _host is not None and not extra:
        return _host
    pm = pluggy.PluginManager("nlbench")
    pm.add_hookspecs(hookspecs)
    host = Host(pm=pm, registries={})
    host.registries = {k: Registry(k, broken=host.broken) for k in KINDS}
    for name, module_path, dist in _candidates():
        try:
            if name in host.provenance:
                raise PluginError(
                    f"two plugins are named '{name}': this one ('{module_path}', {dist[0]}) is "
                    "not loaded; uninstall one of them"
                )
            _register_module(host, name, importlib.import_module(module_path.split(":")[0]))
            host.provenance[name] = dist
        except Exception as exc:  # noqa: BLE001 - nor one that fails to import
            _mark_broken(host, name, exc, "import")
    for name, obj in extra or []:
        pm.register(obj, name=name)
        host.provenance[name] = ("", "")
        host.extra.append(name)
    _check_hooks(host)
    _fill_registries(host)
    _check_asym_maps(host)
    if os.environ.get("NLBENCH_TRACE_PLUGINS"):
        pm.trace.root.setwriter(lambda msg: log.warning("%s", msg.rstrip()))
        pm.enable_tracing()
    _host = host
    return host


def get_host() -> Host:
    """The loaded host (loading plugins on first use)."""
    return load_plugins()


def reset() -> None:
    """Forget the loaded plugins (tests)."""
    global _host
    _host = None
