"""``nlbench data prepare DATASET``: fetch, check and report a dataset's files before a run."""

from __future__ import annotations

import json

import click


def register(cli: click.Group) -> None:
    @cli.group("data")
    def data_group() -> None:
        """Dataset files: fetch what is public, check what was placed by hand."""

    @data_group.command("prepare")
    @click.argument("dataset")
    @click.option(
        "--root",
        "--data-root",
        "root",
        default=None,
        help="Data directory [$NLBENCH_DATA or ~/.cache/nlbench/data].",
    )
    @click.option("--offline", is_flag=True, help="Never download; only check what is there.")
    @click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
    def prepare_cmd(dataset: str, root: str | None, offline: bool, as_json: bool) -> None:
        """Fetch DATASET (official sources, checksums verified) or say which files to put where.

        Each missing piece is one line on stderr (exit 2): the files, the folder they go in and
        where to get them. Clothing1M has no public download: request it from its authors,
        unpack it under ROOT/clothing1m, and this command checks every file and image.
        """
        from pathlib import Path

        from nlbench.dataprep import prepare_dataset
        from nlbench.prepare import default_data_root

        result = prepare_dataset(dataset, Path(root) if root else default_data_root(), not offline)
        if as_json:
            click.echo(json.dumps(result.as_dict(), indent=1, sort_keys=True))
            return
        _print(result)


def _print(result) -> None:
    from rich.table import Table

    from nlbench.console import console

    sizes = ", ".join(f"{k} {v:,}" for k, v in result.splits.items())
    where = f" in {result.folder}" if result.folder else ""
    console.print(f"[bold]{result.name}[/] ready{where}: {sizes}")
    if result.files:
        table = Table("file", "checksum", title="files", title_justify="left")
        for name, status in result.files.items():
            table.add_row(name, status)
        console.print(table)
    for note in result.notes:
        console.print(note, soft_wrap=True)
