"""``nlbench list``: everything registered, with provenance; broken plugins with their error."""

from __future__ import annotations

import json
from typing import Any

import click

from nlbench.core.registry import KINDS
from nlbench.host.plugins import get_host
from nlbench.host.static_cache import cached


def listing(kinds: list[str]) -> dict[str, Any]:
    """Registered names of ``kinds`` with provenance, and broken plugins (cached: no torch)."""
    full = cached("list", lambda: _listing(list(KINDS)))
    return {**{k: full.get(k, []) for k in kinds}, "broken": full["broken"]}


def _listing(kinds: list[str]) -> dict[str, Any]:
    host = get_host()
    out: dict[str, Any] = {}
    for kind in kinds:
        rows = []
        for e in host.registry(kind).entries():
            row = {
                "name": e.name,
                "plugin": e.plugin,
                "distribution": e.distribution,
                "description": e.spec.description,
            }
            row.update(_extra(kind, e.spec))
            rows.append(row)
        out[kind] = rows
    out["broken"] = list(host.broken)
    return out


def _extra(kind: str, spec: Any) -> dict[str, Any]:
    if kind == "models":
        import torch  # lazy: keeps torch out of this module's import (CLI start-up)

        # lazy: keeps numpy, torch out of this module's import (CLI start-up)
        from nlbench.training.models import count_params

        try:
            with torch.device("meta"):  # shapes only: no memory, no init time
                net = spec.factory(num_classes=10, in_chans=3, image_size=32)
            return {"params": count_params(net)}
        # A third-party factory may fail in any way on meta tensors or these inputs (e.g. timm's
        # bridge); the listing shows no count for it rather than failing.
        except Exception:  # noqa: BLE001
            return {"params": None}
    if kind == "methods":
        return {"flags": sorted(f.value for f in spec.flags)}
    if kind == "losses":
        return {"hparams": dict(spec.hparams), "citation": spec.citation}
    return {}


def register(cli: click.Group) -> None:
    @cli.command("list")
    @click.argument("kind", required=False, type=click.Choice(sorted(KINDS)))
    @click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
    def list_cmd(kind: str | None, as_json: bool) -> None:
        """List registered datasets, noise models, models, selectors, reweighters, losses,
        methods and executors, with the plugin that registered each."""
        data = listing([kind] if kind else list(KINDS))
        if as_json:
            click.echo(json.dumps(data, indent=1, sort_keys=True))
            return
        # lazy: keeps rich out of this module's import (CLI start-up)
        from rich.table import Table

        # lazy: keeps rich out of this module's import (CLI start-up)
        from nlbench.core.console import console

        for k, rows in data.items():
            if k == "broken":
                continue
            table = Table(title=k, title_justify="left")
            for col in ("name", "plugin", "distribution", "description"):
                table.add_column(col)
            for r in rows:
                table.add_row(r["name"], r["plugin"], r["distribution"], r["description"])
            console.print(table)
        for b in data["broken"]:
            console.print(f"[red]broken plugin[/] {b['plugin']}: {b['error']}")
