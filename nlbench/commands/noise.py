"""``nlbench noise``: draw a noise model's labels and show what it did, without training."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from nlbench.core.config import parse_noise
from nlbench.core.download import loading
from nlbench.engine.preflight import check_noise, default_data_root
from nlbench.host.plugins import get_host

if TYPE_CHECKING:
    from rich.table import Table

FULL_MATRIX_MAX = 20  # more classes than this: a per-class summary instead of the C×C table


def noise_summary(dataset: str, noise: str, noise_seed: int, data_root: str | None) -> dict:
    """The record's ``noise`` block for (dataset, noise, noise_seed), as a full-set run draws it."""
    import numpy as np  # lazy: keeps numpy out of this module's import (CLI start-up)

    # lazy: keeps numpy, torch out of this module's import (CLI start-up)
    from nlbench.api import make_noisy_labels

    # lazy: keeps numpy, torch out of this module's import (CLI start-up)
    from nlbench.training.noise import noise_report

    host = get_host()
    spec = parse_noise(noise)
    dspec = host.get("datasets", dataset)
    model = host.get("noise", spec.type)
    with loading(Path(data_root) if data_root else default_data_root()):
        clean, result = make_noisy_labels(dataset, noise, noise_seed, data_root)
    num_classes = dspec.num_classes or int(max(np.max(clean), np.max(result.labels)) + 1)
    return noise_report(spec, clean, result, num_classes, model.convention)


def register(cli: click.Group) -> None:
    @cli.command("noise")
    @click.option("--dataset", "-d", required=True, help="Dataset name.")
    @click.option("--noise", "-n", required=True, help="[TYPE:]ARG, e.g. 0.4, asym:0.4.")
    @click.option("--noise-seed", type=int, default=0, show_default=True, help="Noise seed.")
    @click.option("--data-root", default=None, help="Data directory (default $NLBENCH_DATA).")
    @click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
    def noise_cmd(
        dataset: str, noise: str, noise_seed: int, data_root: str | None, as_json: bool
    ) -> None:
        """Realized noise rate and transition matrix of a noise spec on a dataset's train set."""
        check_noise(dataset, noise, data_root)  # bad input answers here, before torch loads
        report = noise_summary(dataset, noise, noise_seed, data_root)
        if as_json:
            click.echo(json.dumps(report, indent=1, sort_keys=True))
            return
        _print(dataset, report)


def _print(dataset: str, report: dict[str, Any]) -> None:
    # lazy: keeps rich out of this module's import (CLI start-up)
    from rich.table import Table

    # lazy: keeps rich out of this module's import (CLI start-up)
    from nlbench.core.console import console

    spec = report["type"] if report["arg"] is None else f"{report['type']}:{report['arg']}"
    console.print(
        f"[bold]{dataset}[/] noise [bold]{spec}[/] ({report['convention'] or '-'}): "
        f"{report['num_samples']} samples, realized rate "
        f"[bold]{report['realized_rate']:.4f}[/]"
    )
    console.print(f"labels sha256 {report['labels_sha256']}")
    matrix = report["transition_matrix"]
    if len(matrix) <= FULL_MATRIX_MAX:
        table = Table(title="transition counts (row = clean, column = noisy)", title_justify="left")
        table.add_column("clean", style="bold", justify="right")
        for j in range(len(matrix)):
            table.add_column(str(j), justify="right")
        for i, row in enumerate(matrix):
            table.add_row(str(i), *(f"[dim]{v}[/]" if v == 0 else str(v) for v in row))
    else:
        table = _per_class(matrix)
    console.print(table)


def _per_class(matrix: list[list[int]]) -> Table:
    """One row per clean class: count, flip rate and the most frequent wrong label."""
    # lazy: keeps rich out of this module's import (CLI start-up)
    from rich.table import Table

    table = Table(title="per clean class", title_justify="left")
    for name in ("clean", "samples", "flipped", "rate", "top noisy label"):
        table.add_column(name, justify="right")
    for i, row in enumerate(matrix):
        total = sum(row)
        wrong = [(v, j) for j, v in enumerate(row) if j != i]
        top = max(wrong) if wrong else (0, i)
        flipped = total - row[i]
        rate = flipped / total if total else 0.0
        table.add_row(
            str(i),
            str(total),
            str(flipped),
            f"{rate:.3f}",
            f"{top[1]} ({top[0]})" if top[0] else "-",
        )
    return table
