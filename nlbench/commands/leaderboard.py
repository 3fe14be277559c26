"""``nlbench leaderboard``: records → one markdown board per dataset and profile."""

from __future__ import annotations

from pathlib import Path

import click


def _check(boards: dict[str, str], out: Path) -> None:
    """Exit 1 naming every stale board (CI runs this against the committed results)."""
    from nlbench.leaderboard import stale

    names = stale(boards, out)
    for name in names:
        click.echo(f"stale: {name}", err=True)
    if names:
        click.echo("regenerate with `make leaderboards` and commit the boards", err=True)
        click.get_current_context().exit(1)
    click.echo(f"{len(boards)} board(s) up to date")


def _write(boards: dict[str, str], out: Path, n_records: int) -> None:
    from nlbench.leaderboard import write

    written = write(boards, out)
    for path in written:
        click.echo(f"wrote {path}")
    click.echo(f"{len(boards)} board(s) from {n_records} record(s); {len(written)} changed")


def register(cli: click.Group) -> None:
    folder = click.Path(file_okay=False)

    @cli.command("leaderboard")
    @click.option("--results", default="results", show_default=True, type=folder,
                  help="Directory searched for run.json.")  # fmt: skip
    @click.option("--out", default="leaderboards", show_default=True, type=folder,
                  help="Where the boards are written.")  # fmt: skip
    @click.option("--check", is_flag=True, help="Write nothing; exit 1 naming stale boards.")
    @click.option("--strict", is_flag=True, help="A corrupt record is an error, not a skip.")
    def leaderboard_cmd(results: str, out: str, check: bool, strict: bool) -> None:
        """Build leaderboards/<dataset>-<profile>.md from the run records under RESULTS."""
        from nlbench.leaderboard import build

        boards, collected = build(Path(results), strict)
        for problem in collected.problems:
            click.echo(f"skipped: {problem}", err=True)
        if check:
            _check(boards, Path(out))
        else:
            _write(boards, Path(out), len(collected.records))
