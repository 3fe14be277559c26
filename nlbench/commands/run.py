"""``nlbench run``: train one method on one noisy dataset and write its record."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar

import click

from nlbench.core.config import RunConfig, parse_set
from nlbench.core.record import dumps
from nlbench.engine.preflight import check_run

F = TypeVar("F", bound=Callable[..., Any])


def run_options(fn: F) -> F:
    """The options shared by ``run`` and every command that builds a RunConfig."""
    options = [
        click.option("--method", "-m", default="erm", show_default=True, help="Method name."),
        click.option("--dataset", "-d", default="digits", show_default=True, help="Dataset name."),
        click.option(
            "--noise",
            "-n",
            default="none",
            show_default=True,
            help="[TYPE:]ARG, e.g. 0.6, sym:0.4, asym:0.4, cifar_n:worse, none.",
        ),
        click.option("--model", default=None, help="Model name (default: the profile's)."),
        click.option("--epochs", type=int, default=None, help="Epochs (default: the profile's)."),
        click.option(
            "--profile",
            default="quick",
            show_default=True,
            help="Hyper-parameter profile: quick, paper, cpu.",
        ),
        click.option("--seed", type=int, default=0, show_default=True, help="Training seed."),
        click.option(
            "--noise-seed",
            type=int,
            default=0,
            show_default=True,
            help="Seed of the noise draw (fixed across methods on a leaderboard).",
        ),
        click.option("--device", default="auto", show_default=True, help="auto, cpu or cuda."),
        click.option("--out", default="runs", show_default=True, help="Results directory."),
        click.option("--run-id", default=None, help="Run id (default: hash of the config)."),
        click.option(
            "--set",
            "sets",
            multiple=True,
            metavar="KEY=VALUE",
            help="Override a hyper-parameter (repeatable).",
        ),
        click.option("--data-root", default=None, help="Data directory (default $NLBENCH_DATA)."),
        click.option(
            "--train-subset",
            type=int,
            default=None,
            help="Train on a class-balanced seeded subset of N samples.",
        ),
        click.option("--resume", is_flag=True, help="Continue from the last checkpoint."),
        click.option("--compile", "compile_", is_flag=True, help="torch.compile the model."),
        click.option("--deterministic", is_flag=True, help="Deterministic kernels."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def config_from_options(**kw: Any) -> RunConfig:
    return RunConfig(
        method=kw["method"],
        dataset=kw["dataset"],
        noise=kw["noise"],
        model=kw["model"],
        epochs=kw["epochs"],
        profile=kw["profile"],
        seed=kw["seed"],
        noise_seed=kw["noise_seed"],
        device=kw["device"],
        out=kw["out"],
        run_id=kw["run_id"],
        overrides=parse_set(kw["sets"]),
        data_root=kw["data_root"],
        train_subset=kw["train_subset"],
        resume=kw["resume"],
        compile=kw["compile_"],
        deterministic=kw["deterministic"],
    )


def register(cli: click.Group) -> None:
    @cli.command("run")
    @run_options
    @click.option("--quiet", "-q", is_flag=True, help="No progress display.")
    @click.option("--json", "as_json", is_flag=True, help="Print the record as JSON.")
    def run_cmd(quiet: bool, as_json: bool, **kw: Any) -> None:
        """Train one method on one noisy dataset; write DIR/<run_id>/run.json."""
        cfg = config_from_options(**kw)
        check_run(cfg)  # bad input answers here, before torch loads
        # lazy: keeps rich out of this module's import (CLI start-up)
        from nlbench.core.console import RichProgress, console, summary_table

        # lazy: keeps filelock, numpy, torch out of this module's import (CLI start-up)
        from nlbench.engine.runner import Runner

        progress = RichProgress(quiet=quiet or as_json)
        try:
            record = Runner(cfg, progress).run()
        finally:
            progress.stop()
        if os.environ.get("RANK", "0") != "0":  # torchrun: only rank 0 reports
            return
        if as_json:
            click.echo(dumps(record), nl=False)
        else:
            console.print(summary_table(record))
            console.print(f"record: {kw['out']}/{record['run_id']}/run.json")
