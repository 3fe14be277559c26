"""``nlbench rerun RUN_DIR/run.json``: reproduce a run from its record alone and compare.

The record's ``config`` holds everything that decides the result (method, dataset, noise spec,
profile, seeds, train subset and the fully resolved hparams), so the rerun passes every hparam
as a ``--set`` override: it reproduces the run even if a profile's defaults changed since.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path
from typing import Any

import click

from nlbench.config import RunConfig

# per-epoch metrics that must reproduce (timings never do)
COMPARED = ("lr", "train_loss", "test_acc", "val_acc", "noisy_fit", "clean_fit",
            "train_acc_noisy", "selected", "selected_precision", "detection_auc")  # fmt: skip


def config_from_record(record: dict[str, Any], out: str, device: str = "auto") -> RunConfig:
    """The RunConfig that reproduces ``record`` (every resolved hparam as an override)."""
    cfg = record["config"]
    return RunConfig(
        method=cfg["method"], dataset=cfg["dataset"], noise=cfg["noise"], profile=cfg["profile"],
        seed=int(cfg["seed"]), noise_seed=int(cfg["noise_seed"]),
        train_subset=cfg.get("train_subset"), overrides=dict(cfg["hparams"]), out=out,
        device=device,
    )  # fmt: skip


def _differs(a: Any, b: Any, atol: float) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return not math.isclose(float(a), float(b), rel_tol=0.0, abs_tol=atol)
    return a != b


def compare_epochs(old: list[dict], new: list[dict], atol: float) -> list[str]:
    """One line per metric that differs (and one if the epoch counts differ)."""
    problems = []
    if len(old) != len(new):
        problems.append(f"epochs: record has {len(old)}, rerun has {len(new)}")
    for a, b in zip(old, new):
        for key in COMPARED:
            if _differs(a.get(key), b.get(key), atol):
                problems.append(f"epoch {a.get('epoch')}: {key} {a.get(key)!r} → {b.get(key)!r}")
    return problems


def _id_line(old: dict[str, Any], new: dict[str, Any]) -> str:
    """Say whether the run_id reproduced; if not, which resolved hparams are new or changed."""
    if new["run_id"] == old["run_id"]:
        return "run_id matches"
    a, b = old["config"]["hparams"], new["config"]["hparams"]
    keys = sorted(k for k in set(a) | set(b) if a.get(k, "<absent>") != b.get(k, "<absent>"))
    why = f" (hparams this nlbench resolves differently: {', '.join(keys)})" if keys else ""
    return f"run_id differs: {new['run_id']}{why}"


def register(cli: click.Group) -> None:
    @cli.command("rerun")
    @click.argument("record_path", type=click.Path(dir_okay=False, exists=True))
    @click.option("--out", default=None, help="Fresh results directory (default: a temp dir).")
    @click.option("--device", default="auto", show_default=True, help="auto, cpu or cuda.")
    @click.option(
        "--atol",
        type=float,
        default=1e-6,
        show_default=True,
        help="Absolute tolerance per metric (GPU kernels are not bit-exact).",
    )
    def rerun_cmd(record_path: str, out: str | None, device: str, atol: float) -> None:
        """Re-run RECORD_PATH's config into a fresh directory; exit 1 if the metrics differ."""
        from nlbench.errors import UsageError
        from nlbench.record import read_record
        from nlbench.runner import Runner

        old = read_record(Path(record_path))
        out = out or tempfile.mkdtemp(prefix="nlbench-rerun-")
        if (Path(out) / old["run_id"]).exists():
            raise UsageError(f"--out {out}: already holds {old['run_id']}; pass a fresh directory")
        new = Runner(config_from_record(old, out, device)).run()
        click.echo(f"rerun: {out}/{new['run_id']}/run.json")
        click.echo(_id_line(old, new))
        problems = compare_epochs(old["epochs"], new["epochs"], atol)
        for line in problems:
            click.echo(f"mismatch: {line}")
        click.echo("per-epoch metrics match" if not problems else
                   f"per-epoch metrics differ ({len(problems)} value(s), atol={atol})")  # fmt: skip
        if problems:
            click.get_current_context().exit(1)
