"""``nlbench data prepare DATASET``: fetch, check and report a dataset's files before a run."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import click

from nlbench.core.download import showing_stages
from nlbench.engine.preflight import check_data, default_data_root, static_or_none
from nlbench.host.static_specs import Undecidable

if TYPE_CHECKING:
    from pathlib import Path

    from nlbench.engine.dataprep import Prepared


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
        where = Path(root) if root else default_data_root()
        _check(dataset, where, offline)  # an unknown name or surely missing files: at once
        # lazy: keeps numpy, torch out of this module's import (CLI start-up)
        from nlbench.engine.dataprep import prepare_dataset

        with _stages(as_json):
            result = prepare_dataset(dataset, where, not offline)
        if as_json:
            click.echo(json.dumps(result.as_dict(), indent=1, sort_keys=True))
            return
        _print(result)


def _check(dataset: str, root: Path, offline: bool) -> None:
    """The dataset's name and files, from the static cache (no torch)."""
    host = static_or_none()
    if host is None:
        return
    try:
        host.get("datasets", dataset)
        check_data(host, dataset, root, preparing=True, can_download=not offline)
    except Undecidable:
        return


@contextlib.contextmanager
def _stages(as_json: bool) -> Iterator[None]:
    """On a terminal, a spinner naming the step the load is at (downloading, extracting,
    checksums; downloads also show their own byte counts). A log or ``--json`` gets nothing
    but the result, or one error line."""
    # lazy: keeps rich out of this module's import (CLI start-up)
    from nlbench.core.console import err_console

    if as_json or not err_console.is_terminal:
        yield
        return
    with err_console.status("preparing") as status, showing_stages(status.update):
        yield


def _print(result: Prepared) -> None:
    # lazy: keeps rich out of this module's import (CLI start-up)
    from rich.table import Table

    # lazy: keeps rich out of this module's import (CLI start-up)
    from nlbench.core.console import console

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
