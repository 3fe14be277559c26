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
from pluggy import HookImpl

from nlbench.core import hookspecs
from nlbench.core.errors import PluginError
from nlbench.core.registry import KINDS, Registry, check_asym_maps
from nlbench.core.version import __version__

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
        return [(m.rsplit(".", 1)[1], m, ("nlbench", __version__)) for m in builtin_modules()]
    allow = os.environ.get("NLBENCH_LOAD_PLUGINS")
    allowed = {a.strip() for a in allow.split(",")} if allow else None
    return [
        (ep.name, ep.value, _dist_of(ep))
        for ep in _entry_points()
        if allowed is None or ep.name in allowed
    ]


def _hashable(name: str, obj: object) -> object:
    """``obj``, or a module holding its attributes when it cannot be hashed (a
    ``SimpleNamespace``): pluggy's per-plugin hook calls keep plugins in a set."""
    try:
        hash(obj)
    except TypeError:
        stand_in = ModuleType(name)
        for attr in dir(obj):
            if not attr.startswith("__"):
                setattr(stand_in, attr, getattr(obj, attr))
        return stand_in
    return obj


def _register_module(host: Host, name: str, module: ModuleType) -> None:
    host.pm.register(module, name=name)


def _plugins_by_kind(pm: pluggy.PluginManager) -> dict[str, list[str]]:
    """The registry kinds each plugin implements, as pluggy collected its hook implementations.

    Going through pluggy means ``@hookimpl(specname=...)`` counts and unmarked functions that
    merely share a hook's name do not. Wrappers register nothing of their own: they wrap the
    calls of the others.
    """
    out: dict[str, list[str]] = {}
    for kind, (hook, _) in KINDS.items():
        for impl in getattr(pm.hook, hook).get_hookimpls():
            if not is_wrapper(impl) and kind not in out.setdefault(impl.plugin_name, []):
                out[impl.plugin_name].append(kind)
    return out


def is_wrapper(impl: HookImpl) -> bool:
    return bool(impl.hookwrapper or impl.wrapper)


def call_for(pm: pluggy.PluginManager, hook: str, plugin_name: str) -> Any:
    """``pm.hook.<hook>`` narrowed to one plugin's implementations plus every wrapper.

    Each plugin's registration is its own pluggy hook call (pluggy stops a call at the first
    exception, so one call for all would let a broken plugin hide the rest), yet wrappers and
    ``add_hookcall_monitoring`` (``pm.enable_tracing``) see every one of them.
    """
    others = {
        impl.plugin
        for impl in getattr(pm.hook, hook).get_hookimpls()
        if impl.plugin_name != plugin_name and not is_wrapper(impl)
    }
    return pm.subset_hook_caller(hook, remove_plugins=others)


def _culprit(pm: pluggy.PluginManager, exc: BaseException, plugin_name: str) -> str:
    """The plugin whose hook implementation raised ``exc``: the innermost traceback frame that
    runs one (a wrapper's bug is its own plugin's, not that of the plugin it wrapped)."""
    codes = {
        getattr(impl.function, "__code__", None): impl.plugin_name
        for hook, _ in KINDS.values()
        for impl in getattr(pm.hook, hook).get_hookimpls()
    }
    culprit, tb = plugin_name, exc.__traceback__
    while tb is not None:
        culprit = codes.get(tb.tb_frame.f_code, culprit)
        tb = tb.tb_next
    return culprit


def _mark_broken(host: Host, plugin: str, exc: BaseException, what: str) -> None:
    error = " ".join(f"{type(exc).__name__}: {exc}".split())
    host.broken.append({"plugin": plugin, "error": error})
    log.warning("plugin %s failed to %s: %s", plugin, what, error)


def _stage(host: Host, plugin_name: str, kinds: list[str]) -> list[tuple[str, Any]]:
    """Call one plugin's registration hooks and check every name it gives (valid, not taken,
    not twice) before any is added: PluginError names the first problem."""
    staged: list[tuple[str, Any]] = []
    for kind in kinds:
        call = call_for(host.pm, KINDS[kind][0], plugin_name)
        call(register=lambda spec, _k=kind, _s=staged: _s.append((_k, spec)))
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


def _drop(host: Host, plugin: str, exc: BaseException) -> None:
    """List ``plugin`` as broken, take back its names and unregister it (its wrappers too)."""
    for registry in host.registries.values():
        registry.remove_plugin(plugin)
    obj = host.pm.get_plugin(plugin)
    if obj is not None:
        host.pm.unregister(obj)
    _mark_broken(host, plugin, exc, "register")


def _register_one(host: Host, plugin_name: str, kinds: list[str]) -> None:
    """Register one plugin's names; a wrapper that raised is dropped and the call retried."""
    while True:
        try:
            staged = _stage(host, plugin_name, kinds)
        except Exception as exc:  # noqa: BLE001 - a broken plugin must not take the others down
            culprit = _culprit(host.pm, exc, plugin_name)
            _drop(host, culprit, exc)
            if culprit == plugin_name:
                return
            continue
        dist, ver = host.provenance.get(plugin_name, ("", ""))
        for kind, spec in staged:
            host.registries[kind].add(spec, plugin_name, dist, ver)
        return


def _fill_registries(host: Host) -> None:
    """Call every registration hook, plugin by plugin, so each name carries its provenance.

    A plugin whose hook raises, or that registers an invalid or already taken name, registers
    nothing (its names are all-or-none) and is listed in :attr:`Host.broken`; the others load.
    """
    by_plugin = _plugins_by_kind(host.pm)
    for plugin_name in sorted(by_plugin, key=lambda name: _load_order(host, name)):
        if plugin_name not in {b["plugin"] for b in host.broken}:
            _register_one(host, plugin_name, by_plugin[plugin_name])


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
        pm.register(_hashable(name, obj), name=name)
        host.provenance[name] = ("", "")
        host.extra.append(name)
    _check_hooks(host)
    if os.environ.get("NLBENCH_TRACE_PLUGINS"):  # before registration, so it is traced too
        pm.trace.root.setwriter(lambda msg: log.warning("%s", msg.rstrip()))
        pm.enable_tracing()
    _fill_registries(host)
    _check_asym_maps(host)
    _host = host
    return host


def get_host() -> Host:
    """The loaded host (loading plugins on first use)."""
    return load_plugins()


def reset() -> None:
    """Forget the loaded plugins (tests)."""
    global _host
    _host = None
