"""``nlbench show method NAME``: hyper-parameters per profile and dataset, flags, citation."""

from __future__ import annotations

import json
from typing import Any

import click

from nlbench.config import RunConfig
from nlbench.errors import UsageError


def method_table(name: str) -> dict[str, Any]:
    """Resolved hparams of a method for every (profile, dataset) the datasets define."""
    from nlbench.hparams import resolve_hparams
    from nlbench.plugins import get_host

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
        "name": name, "description": mspec.description, "reference": mspec.reference,
        "flags": sorted(mspec.flags), "plugin": entry.plugin, "distribution": entry.distribution,
        "default_hparams": dict(mspec.default_hparams), "profiles": profiles,
    }  # fmt: skip


def register(cli: click.Group) -> None:
    @cli.group("show")
    def show() -> None:
        """Show details of a registered component."""

    @show.command("method")
    @click.argument("name")
    @click.option("--json", "as_json", is_flag=True)
    def show_method(name: str, as_json: bool) -> None:
        """Hyper-parameters per profile and dataset, default model, flags and citation."""
        info = method_table(name)
        if as_json:
            click.echo(json.dumps(info, indent=1, sort_keys=True, default=str))
            return
        _print(info)


def _print(info: dict[str, Any]) -> None:
    from rich.table import Table

    from nlbench.console import console

    console.print(f"[bold]{info['name']}[/]: {info['description']}")
    console.print(f"reference: {info['reference'] or '-'}")
    console.print(f"flags: {', '.join(info['flags']) or 'none'}  (plugin {info['plugin']})")
    for profile, per_dataset in info["profiles"].items():
        table = Table(title=f"profile {profile}", title_justify="left")
        table.add_column("dataset", style="bold")
        table.add_column("model")
        table.add_column("hyper-parameters")
        for dname, hp in per_dataset.items():
            rest = ", ".join(f"{k}={v}" for k, v in sorted(hp.items()) if k != "model")
            table.add_row(dname, str(hp["model"]), rest)
        console.print(table)
