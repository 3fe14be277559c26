"""``python -m nlbench.gpucheck --out FILE [--tiny]`` (``make gpu-check``)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from nlbench.core.atomic import check_output_file, os_error
from nlbench.core.errors import NlbenchError
from nlbench.gpucheck.check import run_check, settings_for, write_report

SECTIONS = ("speed", "method_ratios", "epochs", "ddp")


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--out",
    default="benchmarks/results/gpu-check.json",
    show_default=True,
    help="Where the JSON report goes.",
)
@click.option("--tiny", is_flag=True, help="CPU self-test: tiny model, a few steps, gloo.")
@click.option("--device", default="auto", show_default=True, help="auto, cuda, cuda:N or cpu.")
@click.option(
    "--data-root",
    default=None,
    help="Folder with real CIFAR-10 (cifar-10-batches-py/); synthetic otherwise.",
)
@click.option("--only", multiple=True, type=click.Choice(SECTIONS), help="Run only these.")
def gpucheck(
    out: str, tiny: bool, device: str, data_root: str | None, only: tuple[str, ...]
) -> None:
    """Check a GPU machine in one go and write one JSON report (exit 1 when a check fails)."""
    check_output_file(Path(out), "--out")  # before the checks: minutes of work need a place
    settings = settings_for(tiny, device)
    report = run_check(settings, Path(data_root) if data_root else None, tuple(only))
    write_report(report, Path(out))
    status = "passed" if report["ok"] else f"FAILED: {', '.join(report['failed'])}"
    click.echo(f"gpu-check {status}; report in {out}")
    if not report["ok"]:
        sys.exit(1)


def main(argv: list[str] | None = None) -> None:
    """Run with nlbench's error contract: a usage error is one line and exit code 2."""
    try:
        gpucheck.main(args=argv, prog_name="python -m nlbench.gpucheck", standalone_mode=False)
    except click.exceptions.UsageError as exc:
        click.echo(f"Error: {exc.format_message()}", err=True)
        sys.exit(2)
    except NlbenchError as exc:
        click.echo(f"Error: {' '.join(str(exc).split())}", err=True)
        sys.exit(exc.exit_code)
    except OSError as exc:
        error = os_error(exc)
        click.echo(f"Error: {' '.join(str(error).split())}", err=True)
        sys.exit(error.exit_code)


if __name__ == "__main__":
    main()
