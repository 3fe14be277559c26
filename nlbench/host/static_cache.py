"""A cache of what ``nlbench list`` and ``nlbench show`` print, so they start without torch.

Loading plugins imports torch (seconds); what they register does not change until a plugin's
source, nlbench or the installed plugin set changes. The cache key is a hash of exactly that:
nlbench's version and source files, every plugin entry point (name, module, distribution,
version) with the size and mtime of its source files, and the plugin environment switches.
Nothing is cached while a plugin is broken (installing its missing dependency changes no file).

Environment: ``NLBENCH_CACHE`` (default ``~/.cache/nlbench``); ``NLBENCH_NO_CACHE=1`` disables.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nlbench.core.atomic import atomic_write_text
from nlbench.core.errors import NlbenchError
from nlbench.core.version import __version__
from nlbench.host import plugins

ENV_KEYS = ("NLBENCH_DISABLE_PLUGIN_AUTOLOAD", "NLBENCH_LOAD_PLUGINS")


def cache_dir() -> Path:
    root = os.environ.get("NLBENCH_CACHE") or Path.home() / ".cache" / "nlbench"
    return Path(root) / "static"


def _source_files(module: str) -> list[Path]:
    """The module's file, or every ``.py`` of its top-level package (helpers included)."""
    top = module.split(":")[0].split(".")[0]
    spec = importlib.util.find_spec(top)
    if spec is None:
        return []
    if spec.submodule_search_locations:
        return sorted(p for d in spec.submodule_search_locations for p in Path(d).rglob("*.py"))
    return [Path(spec.origin)] if spec.origin else []


def _stamp(path: Path) -> str:
    st = path.stat()
    return f"{path}:{st.st_size}:{st.st_mtime_ns}"


def fingerprint() -> str:
    """Hash of everything that decides what the plugins register (see the module doc)."""
    parts = [__version__, sys.version, *(f"{k}={os.environ.get(k, '')}" for k in ENV_KEYS)]
    modules = {"nlbench"}
    for name, module, (dist, version) in plugins._candidates():  # via the module: patchable
        parts.append(f"{name}={module}@{dist}=={version}")
        modules.add(module)
    files = sorted({f for m in modules for f in _source_files(m)})
    parts.extend(_stamp(f) for f in files)
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def cached(key: str, compute: Callable[[], Any]) -> Any:
    """``compute()``'s JSON result, read from the cache when the plugin fingerprint matches."""
    if os.environ.get("NLBENCH_NO_CACHE") or (plugins._host is not None and plugins._host.extra):
        return compute()  # plugins passed in by a test are in no fingerprint
    try:
        path = cache_dir() / fingerprint() / f"{key}.json"
    # A plugin set we cannot fingerprint (no home, unreadable source, a broken spec, two plugins
    # of one name): compute as before, which reports what is wrong.
    except (OSError, ImportError, ValueError, RuntimeError, NlbenchError):
        return compute()
    if path.exists():
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            pass
    value = compute()
    if _healthy():
        _write(path, json.dumps(value, sort_keys=True, default=str))
        value = json.loads(path.read_text(encoding="utf-8")) if path.exists() else value
    return value


def _healthy() -> bool:
    return not plugins.get_host().broken


def _write(path: Path, text: str) -> None:
    """Write atomically; a cache that cannot be written is skipped silently."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, text)
    except (OSError, NlbenchError):
        pass
