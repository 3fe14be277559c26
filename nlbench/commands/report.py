"""``nlbench report RUN_DIR``: PNG plots and a markdown summary of one run."""

from __future__ import annotations

from pathlib import Path

import click


def register(cli: click.Group) -> None:
    @cli.command("report")
    @click.argument("run_dir", type=click.Path(file_okay=False))
    @click.option(
        "--out",
        default=None,
        type=click.Path(file_okay=False),
        help="Output directory (default RUN_DIR/report).",
    )
    def report_cmd(run_dir: str, out: str | None) -> None:
        """Plot test accuracy, noisy_fit and selection precision; write report.md."""
        # lazy: keeps numpy, pandas, scipy out of this module's import (CLI start-up)
        from nlbench.boards.report import report

        path = report(Path(run_dir), Path(out) if out else None)
        click.echo(f"wrote {path}")
