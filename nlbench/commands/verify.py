"""``nlbench verify METHOD --official PATH``: a training step of nlbench next to the official code.

Exit codes: 0 every compared quantity within ``--tol``; 1 some differ (each named, with its
largest difference); 2 usage errors (unknown method, a method with no official step to compare,
PATH missing or not the expected repository: one line naming the file expected).
"""

from __future__ import annotations

import json
from typing import Any

import click

from nlbench.commands import json_printed
from nlbench.core.errors import UsageError
from nlbench.verify import adapter_for, verify


def register(cli: click.Group) -> None:
    @cli.command("verify")
    @click.argument("method")
    @click.option(
        "--official",
        "path",
        metavar="PATH",
        default=None,
        help="Your checkout of the method's official repository (never bundled).",
    )
    @click.option("--steps", type=int, default=1, show_default=True, help="Steps per network.")
    @click.option("--batch-size", type=int, default=4, show_default=True, help="Batch size.")
    @click.option("--seed", type=int, default=0, show_default=True, help="Weights and batches.")
    @click.option(
        "--dtype",
        type=click.Choice(["float64", "float32"]),
        default="float64",
        show_default=True,
        help="Arithmetic of both sides (float32 shows rounding a meta step amplifies).",
    )
    @click.option(
        "--tol",
        type=float,
        default=1e-6,
        show_default=True,
        help="Accepted difference: tol × max(1, |official value|).",
    )
    @click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
    def verify_cmd(
        method: str,
        path: str | None,
        steps: int,
        batch_size: int,
        seed: int,
        dtype: str,
        tol: float,
        as_json: bool,
    ) -> None:
        """Run METHOD's step through its official code and through nlbench; compare.

        Methods with an adapter: dividemix, mwnet, famus. Both sides start from the same
        weights and get the same batches and random draws; printed: the largest absolute
        difference of each loss and updated tensor, and the official commit. Exit 0: all
        within --tol; 1: some differ; 2: usage errors. docs/verification.md has the results.
        """
        adapter = adapter_for(method)  # a method without an official step says why here
        if path is None:
            raise UsageError(f"--official PATH is required: your checkout of {adapter.repository}")
        report = verify(method, path, steps, batch_size, seed, tol, dtype)
        _show(report, as_json)
        if not report.ok:
            click.get_current_context().exit(1)


def _show(report: Any, as_json: bool) -> None:
    """The report as a table, or as the one JSON object a failing ``--json`` call prints."""
    if not as_json:
        _print(report)
        return
    click.echo(json.dumps(report.to_json(), indent=1, ensure_ascii=False))
    if not report.ok:
        json_printed()  # exit 1 adds no error object: the report says what differs


def _print(report: Any) -> None:
    # lazy: keeps rich out of this module's import (CLI start-up)
    from rich.table import Table

    # lazy: keeps rich out of this module's import (CLI start-up)
    from nlbench.core.console import console

    console.print(f"[bold]{report.method}[/] against {report.repository} @ {report.commit}")
    console.print(f"compared: {report.compared}")
    for check in report.checks:
        table = Table("quantity", "max |diff|", "max |official|", "elements", "", title=check.name)
        for q in check.quantities:
            mark = "ok" if q.within(report.tolerance) else "[bold red]DIFFERS[/]"
            row = (q.name, f"{q.diff:.3g}", f"{q.scale:.3g}", str(q.size))
            table.add_row(*row, mark + _note(q))
        console.print(table)
    failures = report.failures()
    if failures:
        console.print(
            f"[bold red]{len(failures)} quantit{'y' if len(failures) == 1 else 'ies'} differ "
            f"by more than {report.tolerance:g} × max(1, |official|)[/]: "
            + "; ".join(f"{c}: {q.name} {q.diff:.3g}" for c, q in failures)
        )
    else:
        console.print(
            f"agree within {report.tolerance:g} × max(1, |official|) "
            f"(largest absolute difference {report.max_diff():.3g})"
        )


def _note(q: Any) -> str:
    return f" ({q.note})" if q.note else ""
