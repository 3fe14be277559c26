"""Synthetic schema-1 run records for leaderboard, sweep and report tests (no training)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from nlbench.core.config import compute_run_id
from nlbench.core.record import SCHEMA, write_record

CONVENTIONS = {"sym": "exact flips", "sym_incl": "may keep the true class"}


def synthetic_record(
    method: str = "erm",
    noise: str = "sym:0.2",
    seed: int = 0,
    accs: tuple[float, ...] = (0.5, 0.6, 0.7),
    dataset: str = "synth",
    profile: str = "quick",
    wall_s: float = 10.0,
    flags: tuple[str, ...] = (),
    status: str = "done",
    hparams: dict[str, Any] | None = None,
    train_subset: int | None = None,
    extra_epoch: dict | None = None,
    fit_epochs: int | None = None,
) -> dict:
    """A complete record whose test accuracies per epoch are ``accs``.

    The noisy labels' sha256 depends on dataset, noise and noise seed only (as real labels do),
    so runs of different methods on one seed pair up on the boards.
    """
    hp = {"model": "tiny_cnn", "epochs": len(accs), "lr": 0.05, **(hparams or {})}
    identity = {
        "method": method,
        "dataset": dataset,
        "noise": noise,
        "profile": profile,
        "hparams": hp,
        "seed": seed,
        "noise_seed": 0,
        "train_subset": train_subset,
    }
    epochs = [
        {
            "epoch": i,
            "lr": 0.05,
            "train_loss": 2.0 - i * 0.1,
            "test_acc": a,
            "noisy_fit": 0.1 * i,
            "clean_fit": 0.5 + 0.1 * i,
            "train_acc_noisy": 0.4 + 0.3 * i,
            "selected": None,
            "selected_precision": None,
            "detection_auc": None,
            "seconds": 1.0,
            **(extra_epoch or {}),
        }
        for i, a in enumerate(accs)
    ]
    kind, _, arg = noise.partition(":")
    sha = hashlib.sha256(f"{dataset}|{noise}|0|{train_subset}".encode()).hexdigest()
    return {
        "schema": SCHEMA,
        "run_id": compute_run_id(identity),
        "created": "2024-01-01T00:00:00",
        "nlbench_version": "0.1.0",
        "git_sha": None,
        "plugins": {},
        "env": {},
        "config": {**identity, "model": hp["model"], "device": "cpu"},
        "flags": sorted(flags),
        "reference": "",
        "data": {},
        "method_info": {},
        "noise": {
            "type": kind,
            "arg": arg,
            "realized_rate": float(arg or 0) + 0.001 * seed,
            "convention": CONVENTIONS.get(kind, ""),
            "labels_sha256": sha,
        },
        "epochs": epochs,
        "summary": {
            "last_acc": accs[-1],
            "best_acc": max(accs),
            "best_epoch": accs.index(max(accs)),
            "last10_acc": sum(accs[-10:]) / len(accs[-10:]),
            "wall_s": wall_s,
            "images_per_s": 1000.0 / wall_s,
            "peak_mem_mb": None,
            "epochs_to_fit": fit_epochs,
        },
        "status": status,
    }


def write_synthetic(root: Path, record: dict, subdir: str | None = None) -> Path:
    """Write ``record`` as ``root/[subdir/]<run_id>/run.json``; return the run directory."""
    run_dir = Path(root) / (subdir or "") / record["run_id"]
    write_record(run_dir, record)
    return run_dir
