"""``nlbench bench``: ERM images/s here, a plain PyTorch loop's, and every method's cost ratio."""

from __future__ import annotations

import json
from typing import Any

import click


def register(cli: click.Group) -> None:
    @cli.command("bench")
    @click.option("--model", default="cnn_small", show_default=True, help="Model to train.")
    @click.option("--device", default="auto", show_default=True, help="auto, cpu or cuda.")
    @click.option(
        "--methods",
        "methods",
        multiple=True,
        metavar="NAME",
        help="Methods to compare with ERM (repeatable or comma-separated; "
        "default: every installed method).",
    )
    @click.option("--threads", type=int, default=None, help="torch intra-op threads.")
    @click.option("--batch-size", type=int, default=128, show_default=True)
    @click.option(
        "--repeats",
        type=int,
        default=5,
        show_default=True,
        help="Timed rounds (the median is reported).",
    )
    @click.option("--steps", type=int, default=20, hidden=True, help="Batches per timed epoch.")
    @click.option("--warmup", type=int, default=1, hidden=True, help="Untimed rounds.")
    @click.option("--image-size", type=int, default=32, hidden=True, help="Synthetic image side.")
    @click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
    def bench_cmd(methods: tuple[str, ...], as_json: bool, **kw: Any) -> None:
        """Measure training speed on synthetic CIFAR-shaped data (no files needed).

        ERM runs through nlbench's own epoch path and a minimal hand-written loop trains the
        same model on the same data; each method's ratio is its epoch time over ERM's
        (selection and GMM work included). All legs run interleaved in one process.
        """
        # lazy: keeps numpy, torch out of this module's import (CLI start-up)
        from nlbench.bench.legs import BenchSettings

        # lazy: keeps numpy, torch out of this module's import (CLI start-up)
        from nlbench.bench.measure import run_bench

        names = tuple(n.strip() for m in methods for n in m.split(",") if n.strip()) or None
        result = run_bench(BenchSettings(methods=names, **kw))
        if as_json:
            click.echo(json.dumps(result, indent=1, sort_keys=True))
            return
        _print(result)


def _print(result: dict) -> None:
    # lazy: keeps rich out of this module's import (CLI start-up)
    from rich.table import Table

    # lazy: keeps rich out of this module's import (CLI start-up)
    from nlbench.core.console import console

    st = result["settings"]
    console.print(
        f"[bold]{result['model']}[/] on {result['device']}, {st['threads']} threads, "
        f"batch {st['batch_size']}, {st['images']} images per epoch"
    )
    console.print(
        f"ERM {result['erm_images_per_s']:.0f} images/s; plain PyTorch loop "
        f"{result['reference_images_per_s']:.0f} images/s "
        f"(nlbench = {result['erm_vs_reference']:.2f}x)"
    )
    table = Table(title="epoch time relative to ERM", title_justify="left")
    table.add_column("method")
    table.add_column("ratio", justify="right")
    for name, ratio in result["ratios"].items():
        table.add_row(name, f"{ratio:.2f}")
    for name, error in result["errors"].items():
        table.add_row(name, f"[red]failed[/]: {error}")
    console.print(table)
