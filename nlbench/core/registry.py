"""Name → spec registries with provenance, filled once by the registration hooks."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from nlbench.core.errors import PluginError, unknown_name

# the one definition of a name: registry keys, --set keys, noise types, leaderboard columns.
# ``\Z``, not ``$`` (which also matches before a trailing newline): "digits\n" is no name,
# whether a caller uses ``match`` or ``fullmatch``
NAME_RE = re.compile(r"^[a-z][a-z0-9_]*\Z")
NAME_SHOWN = "[a-z][a-z0-9_]*"  # the pattern as messages show it

# registry kind -> (hook name, singular noun used in messages)
KINDS: dict[str, tuple[str, str]] = {
    "datasets": ("register_datasets", "dataset"),
    "noise": ("register_noise_models", "noise type"),
    "models": ("register_models", "model"),
    "selectors": ("register_selectors", "selector"),
    "reweighters": ("register_reweighters", "reweighter"),
    "losses": ("register_losses", "loss"),
    "methods": ("register_methods", "method"),
    "executors": ("register_executors", "executor"),
}


@dataclass(frozen=True)
class Entry:
    """One registered name with where it came from."""

    name: str
    spec: Any
    plugin: str
    distribution: str
    version: str


class Registry:
    """Names of one kind. Duplicates raise, naming both plugins (names are leaderboard keys)."""

    def __init__(self, kind: str, broken: list[dict[str, str]] | None = None) -> None:
        self.kind = kind
        self.broken = broken if broken is not None else []
        self.noun = KINDS[kind][1] if kind in KINDS else kind
        self._entries: dict[str, Entry] = {}

    def add(self, spec: Any, plugin: str, distribution: str = "", version: str = "") -> None:
        name = getattr(spec, "name", None)
        if not isinstance(name, str) or not NAME_RE.fullmatch(name):
            raise PluginError(
                f"plugin '{plugin}' registered {self.noun} name {name!r}: "
                f"names must match {NAME_SHOWN}"
            )
        if name in self._entries:
            other = self._entries[name].plugin
            raise PluginError(
                f"{self.noun} '{name}' is registered by both plugin '{other}' and plugin '{plugin}'"
            )
        self._entries[name] = Entry(name, spec, plugin, distribution, version)

    def remove_plugin(self, plugin: str) -> None:
        """Take back every name ``plugin`` registered (it turned out broken)."""
        self._entries = {n: e for n, e in self._entries.items() if e.plugin != plugin}

    def get(self, name: str) -> Any:
        """Return the spec for ``name`` or raise a usage error suggesting the closest name."""
        return self.entry(name).spec

    def entry(self, name: str) -> Entry:
        if name not in self._entries:
            error = unknown_name(self.noun, name, self._entries)
            if self.broken:  # the name may belong to a plugin that did not load
                failed = "; ".join(
                    f"plugin '{b['plugin']}' failed to load ({b['error']})" for b in self.broken
                )
                error = type(error)(f"{error} Note: {failed}.")
            raise error
        return self._entries[name]

    def names(self) -> list[str]:
        return sorted(self._entries)

    def entries(self) -> list[Entry]:
        return [self._entries[n] for n in self.names()]

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)


def check_asym_maps(registries: Mapping[str, Registry]) -> None:
    """Every dataset's ``asym_map`` is a key some noise model declares (``asym_maps``).

    The map name is a string shared by two plugins; a typo would otherwise surface only when a
    run asks for ``asym`` noise. Skipped when no loaded noise model declares maps (a host
    loaded without the noise plugins has nothing to check against).
    """
    known: dict[str, list[str]] = {}
    for entry in registries["noise"].entries():
        for key in getattr(entry.spec, "asym_maps", ()):
            known.setdefault(key, []).append(entry.name)
    if not known:
        return
    for entry in registries["datasets"].entries():
        key = getattr(entry.spec, "asym_map", None)
        if key is not None and key not in known:
            raise PluginError.of(
                entry.plugin,
                f"plugin '{entry.plugin}' registered dataset '{entry.name}' with asym_map "
                f"{key!r}, which no noise model knows. Accepted: {', '.join(sorted(known))}.",
            )
