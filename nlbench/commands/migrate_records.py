"""``nlbench migrate-records DIR``: rename record directories to today's run_ids."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import click

from nlbench.engine.migrate import migrate_records
from nlbench.host.plugins import get_host


def register(cli: click.Group) -> None:
    @cli.command("migrate-records")
    @click.argument("root", type=click.Path(file_okay=False, exists=True))
    @click.option("--dry-run", is_flag=True, help="Say what would move; change nothing.")
    def migrate_cmd(root: str, dry_run: bool) -> None:
        """Re-key every run.json under ROOT to the run_id this nlbench computes (idempotent).

        Run it on results/ after records from an older nlbench land or a declared hparam
        default changes; exit 1 if any record could not be moved.
        """
        moves = migrate_records(Path(root), get_host(), dry_run)
        for m in moves:
            if m.action == "renamed":
                click.echo(f"{'would rename' if dry_run else 'renamed'} {m.path} -> {m.new}")
            elif m.action != "unchanged":
                click.echo(f"{m.action} {m.path}: {m.why}")
        counts = Counter(m.action for m in moves)
        click.echo(
            ", ".join(f"{counts[a]} {a}" for a in ("renamed", "unchanged", "conflict", "skipped"))
        )
        if counts["conflict"] or counts["skipped"]:
            click.get_current_context().exit(1)
