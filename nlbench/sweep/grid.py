"""Hyper-parameter grids of a sweep and the checks on a sweep file's types.

A sweep over several methods sets and varies hparams that only some of them have (``tau`` for
a co-teaching plugin, ``q`` only when ``loss = "gce"``). A ``[set]`` or ``[grid]`` key applies
to each run whose method accepts it (resolved as a run resolves it, components included) and
is left out of the others, so ``erm`` next to ``coteaching`` runs once, not once per ``tau``.
A key no run accepts is an error; so is a ``[method.NAME]`` key that NAME does not accept.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
from collections.abc import Mapping
from typing import Any

from nlbench.core.component_hparams import COMPONENT_KEYS
from nlbench.core.config import RunConfig, canonical_json, parse_value
from nlbench.core.errors import UsageError
from nlbench.core.hparams import resolve_hparams

SEARCH_SPACE = "search_space"  # grid value: the method's MethodSpec.search_space list
COMMON_TYPES = {
    "out": str,
    "device": str,
    "data_root": str,
    "deterministic": bool,
    "compile": bool,
}
TABLES = ("set", "grid", "executor")


def check_sweep_mapping(data: Mapping[str, Any], where: str) -> None:
    """One usage error for the first wrongly typed key (``out = 5``, ``set = "oops"``)."""
    for key, kind in COMMON_TYPES.items():
        value = data.get(key)
        if value is not None and (type(value) is not kind):
            raise UsageError(f"{where}: '{key}' must be {a_type(kind)}, got {value!r}")
    for key in TABLES:
        if key in data and not isinstance(data[key], Mapping):
            raise UsageError(
                f"{where}: '{key}' must be a table ([{key}] with key = value lines), "
                f"got {data[key]!r}"
            )
    for key, value in data.get("set", {}).items():
        if isinstance(value, Mapping):
            raise UsageError(f"{where}: set.{key} must be a value, not a table")


MAX_RUNS = 10_000  # runs one sweep may plan: beyond it, split the grid (checked before planning)


def check_grid_size(grid: Any, axis_values: list[list[Any]]) -> None:
    """Refuse a grid over :data:`MAX_RUNS` runs at once, counting axes × hparam grid values
    (an upper bound: a key only some methods accept counts for all of them)."""
    total = 1
    for values in [*axis_values, *_grid_lists(grid)]:
        total *= max(1, len(values))
    if total > MAX_RUNS:
        raise UsageError(
            f"the sweep grid has up to {total:,} runs; at most {MAX_RUNS:,} per sweep. Accepted: "
            "split it into several sweep files or narrow an axis"
        )


def _grid_lists(grid: Any) -> list[list[Any]]:
    tables = [grid.grid, *(t.get("grid", {}) for t in grid.per_method.values())]
    return [v for table in tables for v in table.values() if isinstance(v, list)]


def a_type(kind: type) -> str:
    """A Python type in words with its article: ``an integer``, ``a string``."""
    words = {str: "a string", bool: "a boolean (true or false)", int: "an integer"}
    return words.get(kind, f"a {kind.__name__}")


def grid_table(table: Mapping[str, Any], name: str, where: str) -> dict[str, Any]:
    """``{key: [values]}`` (a scalar is one value; ``"search_space"`` stays as it is)."""
    out: dict[str, Any] = {}
    for key, value in table.items():
        if value == SEARCH_SPACE:
            out[key] = SEARCH_SPACE
            continue
        values = list(value) if isinstance(value, list) else [value]
        if not values:
            raise UsageError(f"{where}: {name}.{key} is an empty list; give at least one value")
        if any(isinstance(v, Mapping) for v in values):
            raise UsageError(f"{where}: {name}.{key} must be a list of values, got {value!r}")
        out[key] = values
    return out


def method_tables(value: Any, where: str) -> dict[str, dict[str, dict[str, Any]]]:
    """``[method.NAME]`` tables: ``{NAME: {"set": {...}, "grid": {...}}}``."""
    if not isinstance(value, Mapping):
        return {}
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for name, table in value.items():
        here = f"{where}: [method.{name}]"
        if not isinstance(table, Mapping):
            raise UsageError(f"{here} must be a table with 'set' and/or 'grid', got {table!r}")
        unknown = sorted(set(table) - {"set", "grid"})
        if unknown:
            raise UsageError(f"{here}: unknown key(s) {', '.join(unknown)}. Accepted: set, grid.")
        for key in ("set", "grid"):
            if not isinstance(table.get(key, {}), Mapping):
                raise UsageError(f"{here}: '{key}' must be a table, got {table[key]!r}")
        out[name] = {
            "set": dict(table.get("set", {})),
            "grid": grid_table(table.get("grid", {}), f"method.{name}.grid", where),
        }
    return out


def parse_grid(items: tuple[str, ...] | list[str]) -> dict[str, list[Any] | str]:
    """``--grid key=v1,v2`` (JSON values, e.g. ``milestones=[0.5],[0.3,0.6]``, or bare words).

    ``key=search_space`` stays the string :data:`SEARCH_SPACE`, as in :func:`grid_table`.
    """
    out: dict[str, list[Any] | str] = {}
    for item in items:
        key, sep, text = str(item).partition("=")
        key = key.strip()
        if not sep or not key or not text.strip():
            raise UsageError(f"--grid '{item}': expected key=value1,value2 (e.g. q=0.5,0.7)")
        if text.strip() == SEARCH_SPACE:
            out[key] = SEARCH_SPACE
            continue
        try:
            values = json.loads(f"[{text}]")
        except ValueError:
            values = [parse_value(v) for v in text.split(",") if v.strip()]
        out[key] = values
    return out


class _Accepted:
    """The hparam keys a run of (method, dataset, profile) accepts, given its components."""

    def __init__(self, host: Any) -> None:
        self.host = host
        self.cache: dict[tuple[str, str, str, str], set[str]] = {}

    def __call__(self, cfg: RunConfig, wanted: Mapping[str, Any]) -> set[str]:
        mspec = self.host.get("methods", cfg.method)
        dspec = self.host.get("datasets", cfg.dataset)
        comp = {k: wanted[k] for k in COMPONENT_KEYS if k in wanted}
        key = (cfg.method, cfg.dataset, cfg.profile, canonical_json(comp))
        if key not in self.cache:
            plain = dataclasses.replace(cfg, overrides={})
            keys = set(resolve_hparams(mspec, dspec, plain, self.host))
            comp = {k: v for k, v in comp.items() if k in keys}
            if comp:
                with_comp = dataclasses.replace(cfg, overrides=comp)
                keys = set(resolve_hparams(mspec, dspec, with_comp, self.host))
            self.cache[key] = keys
        return self.cache[key]


def _method_grid(grid: Mapping[str, Any], method: str, host: Any, strict: set[str]) -> dict:
    """``grid`` with ``"search_space"`` replaced by the method's list (dropped if it has none)."""
    out = {}
    for key, values in grid.items():
        if values != SEARCH_SPACE:
            out[key] = values
            continue
        space = host.get("methods", method).search_space.get(key)
        if space:
            out[key] = list(space)
        elif key in strict:
            raise UsageError(
                f"[method.{method}] grid.{key} = \"search_space\": method '{method}' "
                f"declares no search_space for '{key}'"
            )
    return out


def expand_hparams(grid: Any, base: list[RunConfig], host: Any) -> list[RunConfig]:
    """Each base config once per combination of the grid values its method accepts."""
    accepted = _Accepted(host)
    used: dict[str, set[str]] = {}  # method -> keys some run of it accepted
    seen: set[str] = set()
    out: list[RunConfig] = []
    for cfg in base:
        per = grid.per_method.get(cfg.method, {})
        strict = set(per.get("set", {})) | set(per.get("grid", {}))
        fixed = {**grid.overrides, **per.get("set", {})}
        values = _method_grid({**grid.grid, **per.get("grid", {})}, cfg.method, host, strict)
        keys = list(values)
        for combo in itertools.product(*values.values()):
            wanted = {**fixed, **dict(zip(keys, combo))}
            ok = accepted(cfg, wanted)
            overrides = {k: v for k, v in wanted.items() if k in ok}
            used.setdefault(cfg.method, set()).update(overrides)
            run = dataclasses.replace(cfg, overrides=overrides)
            ident = canonical_json(dataclasses.asdict(run))
            if ident not in seen:
                seen.add(ident)
                out.append(run)
    _check_used(grid, used, base, accepted)
    return out


def _check_used(
    grid: Any, used: dict[str, set[str]], base: list[RunConfig], accepted: _Accepted
) -> None:
    """A [method.NAME] key no run of NAME accepts, or a [set]/[grid] key no run accepts, is an
    error (a typo must not silently run the defaults)."""
    for method, per in grid.per_method.items():
        wanted = set(per.get("set", {})) | set(per.get("grid", {}))
        missing = sorted(wanted - used.get(method, set()))
        if missing and method in used:
            ok = accepted(next(c for c in base if c.method == method), {})
            raise UsageError(
                f"[method.{method}]: method '{method}' does not accept "
                f"{', '.join(missing)}. Accepted: {', '.join(sorted(ok))}."
            )
    unused = sorted((set(grid.overrides) | set(grid.grid)) - set().union(*used.values()))
    if unused:
        methods = ", ".join(sorted({c.method for c in base}))
        raise UsageError(
            f"sweep: hparam(s) {', '.join(unused)} in --set/--grid ([set]/[grid]) are "
            f"accepted by no run of this sweep (methods: {methods})"
        )
