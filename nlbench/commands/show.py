"""``nlbench show KIND NAME``: a method's hyper-parameters per profile and dataset, flags,
citation and known differences from its official code; any other registered component's
declared facts (cached: no torch on a warm cache)."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import click

from nlbench.core.config import RunConfig
from nlbench.core.errors import UsageError
from nlbench.core.hparam_types import defaults
from nlbench.core.hparams import describe_hparams, resolve_hparams
from nlbench.host.plugins import get_host
from nlbench.host.static_cache import cached


def method_table(name: str) -> dict[str, Any]:
    """Resolved hparams of a method for every (profile, dataset) the datasets define."""
    host = get_host()
    mspec = host.get("methods", name)
    profiles: dict[str, dict[str, Any]] = {}
    for dname in host.registry("datasets").names():
        dspec = host.get("datasets", dname)
        for profile in sorted(dspec.profiles):
            cfg = RunConfig(method=name, dataset=dname, profile=profile)
            try:
                hp = resolve_hparams(mspec, dspec, cfg, host)
            except UsageError:
                continue
            profiles.setdefault(profile, {})[dname] = hp
    entry = host.registry("methods").entry(name)
    return {
        "name": name,
        "description": mspec.description,
        "reference": mspec.reference,
        "flags": sorted(f.value for f in mspec.flags),
        "plugin": entry.plugin,
        "distribution": entry.distribution,
        "default_hparams": defaults(mspec.default_hparams),
        "profiles": profiles,
        "hparam_types": describe_hparams(mspec),
        "flags_per_run": mspec.flags_for is not None,
        "deviations": [dataclasses.asdict(d) for d in mspec.deviations],
        "facts": dict(mspec.facts),
    }


def register(cli: click.Group) -> None:
    @cli.group("show")
    def show() -> None:
        """Show details of a registered component."""

    @show.command("method")
    @click.argument("name")
    @click.option("--json", "as_json", is_flag=True)
    def show_method(name: str, as_json: bool) -> None:
        """Hyper-parameters per profile and dataset, default model, flags and citation."""
        info = cached(f"show-method-{name}", lambda: method_table(name))
        if as_json:
            click.echo(json.dumps(info, indent=1, sort_keys=True, default=str))
            return
        _print(info)

    register_component_commands(show)


def _print(info: dict[str, Any]) -> None:
    # lazy: keeps rich out of this module's import (CLI start-up)
    from rich.table import Table

    # lazy: keeps rich out of this module's import (CLI start-up)
    from nlbench.core.console import console

    console.print(f"[bold]{info['name']}[/]: {info['description']}")
    console.print(f"reference: {info['reference'] or '-'}")
    per_run = "; more per run, from its hparams and noise" if info.get("flags_per_run") else ""
    flags = ", ".join(info["flags"]) or "none"
    console.print(f"flags: {flags}{per_run}  (plugin {info['plugin']})")
    console.print("hyper-parameters (--set KEY=VALUE; exec: recorded, not in the run_id):")
    for r in info["hparam_types"]:
        kind = f"{r['type']} {r['range']}".strip() + (" exec" if r["execution"] else "")
        default = json.dumps(r["default"])
        line = f"  {r['name']}: {kind}; default {default} ({r['source']}) {r['doc']}"
        console.print(line, markup=False, highlight=False)
    for profile, per_dataset in info["profiles"].items():
        table = Table(title=f"profile {profile}", title_justify="left")
        table.add_column("dataset", style="bold")
        table.add_column("model")
        table.add_column("hyper-parameters")
        for dname, hp in per_dataset.items():
            rest = ", ".join(f"{k}={v}" for k, v in sorted(hp.items()) if k != "model")
            table.add_row(dname, str(hp["model"]), rest)
        console.print(table)
    facts = info.get("facts") or {}
    if facts:  # results a run adds to its record (record["method_facts"])
        console.print("facts each run records (method_facts):")
        for key, what in sorted(facts.items()):
            console.print(f"  {key}: {what}", markup=False, highlight=False)
    print_deviations(info.get("deviations", []))


def print_deviations(deviations: list[dict[str, str]]) -> None:
    """The "differences from the official code" table: what differs, why, how to restore it.

    Runs record the ones whose option they leave non-official (``method_info["deviations"]``).
    """
    # lazy: keeps rich out of this module's import (CLI start-up)
    from rich.table import Table

    # lazy: keeps rich out of this module's import (CLI start-up)
    from nlbench.core.console import console

    title = "differences from the official code"
    if not deviations:
        console.print(f"{title}: none recorded")
        return
    table = Table(title=title, title_justify="left", show_lines=True)
    table.add_column("difference")
    table.add_column("why")
    table.add_column("official behaviour with")
    for dev in deviations:
        table.add_row(dev["what"], dev["why"], dev["restore"] or "-")
    console.print(table)


# show subcommand -> registry kind (``method`` has its own table above)
COMPONENT_KINDS = {
    "dataset": "datasets",
    "noise": "noise",
    "model": "models",
    "selector": "selectors",
    "reweighter": "reweighters",
    "loss": "losses",
    "executor": "executors",
}


def component_info(kind: str, name: str) -> dict[str, Any]:
    """A registered component's plain facts: every spec field that is data, not code."""
    entry = get_host().registry(kind).entry(name)
    info: dict[str, Any] = {
        "kind": kind,
        "plugin": entry.plugin,
        "distribution": entry.distribution,
        "version": entry.version,
    }
    for f in dataclasses.fields(entry.spec):
        value = getattr(entry.spec, f.name)
        if not callable(value):
            info[f.name] = sorted(value) if isinstance(value, (set, frozenset)) else value
    return info


def register_component_commands(show: click.Group) -> None:
    """``nlbench show dataset|noise|model|selector|reweighter|loss|executor NAME``."""
    for noun, kind in COMPONENT_KINDS.items():
        show.add_command(_component_command(noun, kind))


def _component_command(noun: str, kind: str) -> click.Command:
    @click.command(noun, help=f"The registered {noun} NAME: description, provenance, settings.")
    @click.argument("name")
    @click.option("--json", "as_json", is_flag=True)
    def command(name: str, as_json: bool) -> None:
        info = cached(f"show-{noun}-{name}", lambda: component_info(kind, name))
        if as_json:
            click.echo(json.dumps(info, indent=1, sort_keys=True, default=str))
            return
        _print_component(noun, info)

    return command


def _print_component(noun: str, info: dict[str, Any]) -> None:
    # lazy: keeps rich out of this module's import (CLI start-up)
    from nlbench.core.console import console

    console.print(f"[bold]{info['name']}[/] ({noun}): {info['description']}")
    dist = f", {info['distribution']} {info['version']}".rstrip() if info["distribution"] else ""
    console.print(f"plugin: {info['plugin']}{dist}")
    for key, value in info.items():
        if key not in {"name", "description", "kind", "plugin", "distribution", "version"}:
            text = json.dumps(value, sort_keys=True, default=str) if value != "" else "-"
            console.print(f"{key}: {text}")
