"""Plugin host: loads the ``nlbench`` entry-point group and fills the registries once.

Built-ins and third parties load the same way. A plugin that fails to import or register is
recorded in :attr:`Host.broken` (``nlbench list`` shows it) and the rest still load.

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
# happens once per process. Code that is given a host (``Runner(host=...)``, a method's
# ``ctx.extras["host"]``) uses that one; ``load_plugins(extra=...)`` replaces this one on purpose
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
    eps = sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name)
    seen: dict[str, metadata.EntryPoint] = {}
    for ep in eps:
        if ep.name in seen and seen[ep.name].value != ep.value:
            a, b = _dist_of(seen[ep.name])[0], _dist_of(ep)[0]
            raise PluginError(
                f"two plugins are named '{ep.name}': '{seen[ep.name].value}' ({a}) "
                f"and '{ep.value}' ({b}); uninstall one of them"
            )
        seen[ep.name] = ep
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


def _fill_registries(host: Host) -> None:
    """Call every registration hook, plugin by plugin, so each name carries its provenance.

    A plugin whose hook raises registers nothing (its names are all-or-none).
    """
    broken = {b["plugin"] for b in host.broken}
    for plugin_name, impls in sorted(_impls_by_plugin(host.pm).items()):
        if plugin_name in broken:
            continue
        dist, ver = host.provenance.get(plugin_name, ("", ""))
        staged: list[tuple[str, Any]] = []
        try:
            for kind, impl in impls:
                impl.function(register=lambda spec, _k=kind, _s=staged: _s.append((_k, spec)))
            for kind, spec in staged:
                host.registries[kind].add(spec, plugin_name, dist, ver)
        except PluginError:
            raise
        except Exception as exc:  # noqa: BLE001 - a broken plugin must not take the others down
            host.broken.append({"plugin": plugin_name, "error": f"{type(exc).__name__}: {exc}"})
            log.warning("plugin %s failed to register: %s", plugin_name, exc)


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
            _register_module(host, name, importlib.import_module(module_path.split(":")[0]))
            host.provenance[name] = dist
        except Exception as exc:  # noqa: BLE001 - nor one that fails to import
            host.broken.append({"plugin": name, "error": f"{type(exc).__name__}: {exc}"})
            log.warning("plugin %s failed to import: %s", name, exc)
    for name, obj in extra or []:
        pm.register(obj, name=name)
        host.provenance[name] = ("", "")
        host.extra.append(name)
    pm.check_pending()
    _fill_registries(host)
    check_asym_maps(host.registries)
    if os.environ.get("NLBENCH_TRACE_PLUGINS"):
        pm.trace.root.setwriter(lambda msg: log.warning("%s", msg.rstrip()))
        pm.enable_tracing()
    _host = host
    return host


def get_host() -> Host:
    """The loaded host (loading plugins on first use)."""
    return load_plugins()


def host_of(extras: dict[str, Any]) -> Host:
    """The host a :class:`~nlbench.method.TrainContext` was built in (``ctx.extras``); the
    global one only for a context built by hand without one."""
    host = extras.get("host")
    return host if host is not None else get_host()


def reset() -> None:
    """Forget the loaded plugins (tests)."""
    global _host
    _host = None
