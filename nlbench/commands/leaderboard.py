"""``nlbench leaderboard``: records → boards, figures, claims.md and study boards.

Exit codes: 0 done (bad records are named on stderr, one line each, and skipped); 1 under
``--check`` when a generated file is stale; 2 bad usage, a bad record under ``--strict``, or
two records of one run_id with different numbers under ``--check``.
"""

from __future__ import annotations

from pathlib import Path

import click

NO_FIGURES = (
    "figures: matplotlib is not installed, so no SVG was built or compared "
    "(pip install 'nlbench[report]')"
)


def _check(boards: dict[str, str], out: Path, figures: bool) -> None:
    """Exit 1 naming every stale file (CI runs this against the committed results)."""
    # lazy: keeps numpy, pandas, scipy out of this module's import (CLI start-up)
    from nlbench.boards.leaderboard import other_version_figures, stale

    for name in other_version_figures(boards, out, figures):
        click.echo(f"not compared: {out / name} (made by another matplotlib version)", err=True)
    names = stale(boards, out, figures)
    for name in names:
        click.echo(f"stale: {name}", err=True)
    if names:
        click.echo("regenerate with `make leaderboards` and commit the boards", err=True)
        click.get_current_context().exit(1)
    click.echo(f"{len(boards)} generated file(s) up to date")


def _write(boards: dict[str, str], out: Path, n_records: int, figures: bool) -> None:
    # lazy: keeps numpy, pandas, scipy out of this module's import (CLI start-up)
    from nlbench.boards.leaderboard import write

    written = write(boards, out, figures)
    for path in written:
        click.echo(f"wrote {path}")
    click.echo(f"{len(boards)} file(s) from {n_records} record(s); {len(written)} changed")


def register(cli: click.Group) -> None:
    folder = click.Path(file_okay=False)

    @cli.command("leaderboard")
    @click.option(
        "--results",
        default="results",
        show_default=True,
        type=folder,
        help="Directory searched for run.json.",
    )
    @click.option(
        "--out",
        default="leaderboards",
        show_default=True,
        type=folder,
        help="Where the boards are written.",
    )
    @click.option("--check", is_flag=True, help="Write nothing; exit 1 naming stale files.")
    @click.option("--strict", is_flag=True, help="A bad record is an error, not a skip.")
    def leaderboard_cmd(results: str, out: str, check: bool, strict: bool) -> None:
        """Build leaderboards/<dataset>-<profile>.md, figures, claims.md and studies/ from
        the run records under RESULTS (results/studies-<name>/ feed studies/<name>.md)."""
        # lazy: keeps numpy, pandas, scipy out of this module's import (CLI start-up)
        from nlbench.boards.leaderboard import build_all

        built, collected = build_all(Path(results), strict, sweeps=Path(out) / "sweeps")
        for problem in collected.problems:
            click.echo(f"skipped: {problem}", err=True)
        for conflict in collected.conflicts:
            click.echo(f"conflict: {conflict}", err=True)
        if not built.figures:
            click.echo(NO_FIGURES, err=True)
        if check and collected.conflicts:
            click.echo("two records of one run disagree (above): keep one", err=True)
            click.get_current_context().exit(2)
        if check:
            _check(built.files, Path(out), built.figures)
        else:
            _write(built.files, Path(out), len(collected.records), built.figures)
