"""Run records → one validated row each; bad records are named, never fatal.

Names that become file names or table cells (dataset, profile, method) must match
:data:`nlbench.core.registry.NAME_RE`; numbers must be finite accuracies in [0, 1]. Anything else
makes the record *bad*: it is named on one line and skipped, whatever exception the malformed
JSON would otherwise raise (``AttributeError`` from a list where a dict belongs, ``OverflowError``
from a huge or infinite integer, ``RecursionError`` from deep nesting).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from nlbench.core.config import canonical_json, comparable_hparams, parse_noise
from nlbench.core.errors import NlbenchError, UsageError
from nlbench.core.record import read_record
from nlbench.core.registry import NAME_RE, NAME_SHOWN
from nlbench.engine.preflight import static_or_none
from nlbench.host.static_specs import Undecidable

RUN_ID_RE = re.compile(r"^[a-z0-9_]+(-[a-z0-9_]+)+$")
STUDY_PREFIX = "studies-"  # results/studies-<name>/ feed leaderboards/studies/<name>.md
BAD_RECORD = (
    NlbenchError,
    KeyError,
    TypeError,
    ValueError,
    AttributeError,
    OverflowError,
    RecursionError,
    IndexError,
)


@dataclass
class Collected:
    """Usable records (path, record, study name or ""), plus what was skipped and why."""

    records: list[tuple[str, dict[str, Any], str]]
    problems: list[str]
    unfinished: int = 0
    conflicts: list[str] = field(default_factory=list)


def study_of(path: Path, results: Path) -> str:
    """``name`` for a record under ``results/studies-<name>/``, else ``""``."""
    return study_name(path.relative_to(results).parts[0])


def study_name(folder: str) -> str:
    """``name`` for a folder ``studies-<name>`` whose name is valid (``-``-joined registry
    names, so that ``studies/<name>.md`` is a plain path), else ``""``."""
    name = folder[len(STUDY_PREFIX) :] if folder.startswith(STUDY_PREFIX) else ""
    return name if name and all(NAME_RE.match(p) for p in name.split("-")) else ""


def one_line(text: str, limit: int = 300) -> str:
    """A message on one line, bounded (a record's content may be anything)."""
    flat = text.replace("\r", "\\r").replace("\n", "\\n")
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def current_noise_versions() -> dict[str, int]:
    """Each registered noise model's version (``NoiseModelSpec.version``), from the static cache;
    empty when the plugins cannot be described without loading them."""
    host = static_or_none()
    if host is None:
        return {}
    try:
        return {
            e.name: int(getattr(e.spec, "version", 1)) for e in host.registry("noise").entries()
        }
    except Undecidable:
        return {}


def outdated_noise(record: dict[str, Any], versions: dict[str, int]) -> str:
    """Why a record's noise means something else now (its model's version moved), or ``""``."""
    cfg = record.get("config") or {}
    try:
        kind = parse_noise(str(cfg.get("noise"))).type
    except NlbenchError:
        return ""
    have, want = cfg.get("noise_version") or 1, versions.get(kind)
    if want is None or have == want:
        return ""
    return (
        f"made under version {have} of noise '{kind}', which is at version {want} now (its "
        "meaning changed): left off the boards; re-run the cell"
    )


def collect(
    results: Path, strict: bool = False, noise_versions: dict[str, int] | None = None
) -> Collected:
    """Read every ``run.json`` under ``results`` in sorted order; keep the finished, valid ones.

    A bad record is named and skipped (``strict`` makes it an error). A run_id seen twice counts
    once, from the first path in sorted order; when the two copies disagree on the numbers both
    paths are named in ``conflicts`` (``--check`` fails on them).
    """
    if not results.is_dir():
        raise UsageError(f"--results {results}: not a directory")
    out = Collected([], [])
    versions = current_noise_versions() if noise_versions is None else noise_versions
    seen: dict[str, tuple[str, str]] = {}  # run_id -> (first path, its numbers)
    for path in sorted(results.rglob("run.json"), key=lambda p: p.as_posix()):
        try:
            record = read_record(path)
            done = record.get("status") == "done"
            if done:
                run_id = row(record)["run_id"]  # validate now so a bad record is named here
                numbers = json.dumps([record["summary"], record["epochs"]], sort_keys=True)
        except BAD_RECORD as exc:
            msg = str(exc) if isinstance(exc, NlbenchError) else f"{path}: bad record ({exc!r})"
            if strict:
                raise UsageError(one_line(f"{msg} (--strict)")) from None
            out.problems.append(one_line(msg))
            continue
        stale = outdated_noise(record, versions) if done else ""
        if not done:
            out.unfinished += 1
        elif stale:
            out.problems.append(one_line(f"{path}: {stale}"))
        elif run_id in seen:
            first, first_numbers = seen[run_id]
            if numbers != first_numbers:
                msg = f"run_id {run_id}: {first} and {path} differ; using {first}"
                out.conflicts.append(one_line(msg))
        else:
            seen[run_id] = (path.as_posix(), numbers)
            out.records.append((path.as_posix(), record, study_of(path, results)))
    return out


def _name(value: Any, what: str) -> str:
    if not isinstance(value, str) or not NAME_RE.match(value):
        raise ValueError(f"config.{what} {value!r} is not a name matching {NAME_SHOWN}")
    return value


def _run_id(value: Any) -> str:
    if not isinstance(value, str) or not RUN_ID_RE.match(value):
        raise ValueError(f"run_id {value!r} is not <method>-<dataset>-<hash>")
    return value


def _acc(value: Any, what: str, required: bool = False) -> float:
    if value is None and not required:
        return math.nan
    x = float(value)
    if not 0.0 <= x <= 1.0:  # also rejects NaN
        raise ValueError(f"{what} {value!r} is not an accuracy in [0, 1]")
    return x


def _noise(value: Any) -> str:
    if not isinstance(value, str) or not value.isprintable() or "`" in value or len(value) > 200:
        raise ValueError(f"config.noise {value!r} is not a printable spec without backticks")
    return value


def _curve(epochs: list[dict[str, Any]], key: str) -> tuple[float, ...]:
    return tuple(_acc(e.get(key), f"epochs[].{key}") for e in epochs)


def _deviations(info: Any) -> tuple[str, ...]:
    """``method_info["deviations"]`` (optional): a list of strings or of dicts with ``what``."""
    items = info.get("deviations") if isinstance(info, dict) else None
    if not isinstance(items, list):
        return ()
    texts = [
        str(d.get("what", d.get("option", ""))) if isinstance(d, dict) else str(d) for d in items
    ]
    # one deviation can span several options (meta_opt and meta_wd): name it once
    return tuple(dict.fromkeys(one_line(t, 400).replace("|", "/") for t in texts if t))


def _threads(env: Any) -> int:
    """torch's thread count the run recorded (``env.threads``); 0 when it did not."""
    threads = env.get("threads") if isinstance(env, dict) else None
    if isinstance(threads, int) and not isinstance(threads, bool) and threads > 0:
        return threads
    return 0


def row(record: dict[str, Any]) -> dict[str, Any]:
    """One validated board row; raises one of :data:`BAD_RECORD` on a malformed record."""
    cfg, summary, noise = record["config"], record["summary"], record["noise"]
    hp, epochs = dict(cfg["hparams"]), list(record["epochs"])
    if not all(isinstance(e, dict) for e in epochs):
        raise ValueError("epochs[] holds a non-object")
    fit = summary.get("epochs_to_fit")
    return {
        "dataset": _name(cfg["dataset"], "dataset"),
        "profile": _name(cfg["profile"], "profile"),
        "noise": _noise(cfg["noise"]),
        "method": _name(cfg["method"], "method"),
        "seed": int(cfg["seed"]),
        "noise_seed": int(cfg["noise_seed"]),
        "run_id": _run_id(record["run_id"]),
        "model": one_line(str(hp.get("model")), 40),
        "epochs": int(hp["epochs"]),
        "variant": canonical_json(
            {"hparams": comparable_hparams(hp), "train_subset": cfg.get("train_subset")}
        ),
        "created": str(record.get("created") or ""),
        "budget": canonical_json([hp.get("model"), hp["epochs"], cfg.get("train_subset")]),
        "last": _acc(summary["last_acc"], "summary.last_acc", required=True),
        "last10": _acc(summary.get("last10_acc"), "summary.last10_acc"),
        "best": _acc(summary.get("best_acc"), "summary.best_acc"),
        "wall": _finite(summary.get("wall_s")),
        "cpu": _finite(summary.get("cpu_s")),
        "threads": _threads(record.get("env")),
        "fit_epochs": _finite(fit),
        "flags": ",".join(sorted(one_line(str(f), 40) for f in record.get("flags") or [])),
        "realized": _finite(noise.get("realized_rate")),
        "convention": one_line(str(noise.get("convention") or ""), 120),
        "labels_sha": str(noise.get("labels_sha256") or ""),
        "labels": str(noise.get("labels_sha256") or "")[:8],
        "loss": one_line(str(hp.get("loss") or "ce"), 40),
        "meta_set": one_line(str(hp.get("meta_set") or ""), 40),
        "deviations": _deviations(record.get("method_info")),
        "test_curve": _curve(epochs, "test_acc"),
        "fit_curve": _curve(epochs, "noisy_fit"),
        "train_fit_curve": _curve(epochs, "train_acc_noisy"),
        "final_train": _acc(epochs[-1].get("train_acc_noisy") if epochs else None, "train acc"),
        "final_fit": _acc(epochs[-1].get("noisy_fit") if epochs else None, "noisy_fit"),
        "cos_curve": tuple(_finite(e.get("grad_cos_clean_all")) for e in epochs),
        "mean_cos": _nanmean(_finite(e.get("grad_cos_clean_all")) for e in epochs),
        "batch_size": int(hp.get("batch_size") or 0),
        "scheduler": one_line(str(hp.get("scheduler")), 40),
        "schedule_steps": int(hp.get("schedule_steps") or 0),  # 0: the schedule spans the run
    }


def _nanmean(values: Iterable[float]) -> float:
    """The mean of the numbers that are there (NaN: none, e.g. diagnostics off)."""
    kept = [v for v in values if not math.isnan(v)]
    return sum(kept) / len(kept) if kept else math.nan


def _finite(value: Any) -> float:
    if value is None:
        return math.nan
    x = float(value)
    if not math.isfinite(x):
        raise ValueError(f"{value!r} is not a finite number")
    return x


def noise_order(spec: str) -> tuple[str, int, float, str]:
    """Sort key for noise specs: by type, then numeric rates ascending, then other args."""
    kind, _, arg = spec.partition(":")
    try:
        return (kind, 0, float(arg), "")
    except ValueError:
        return (kind, 1, 0.0, arg)


def frame(records: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """One row per run, in a total order that does not depend on the input order.

    Two records of the same run (same configuration by :func:`comparable_hparams`, seed and
    noise seed, under different run_ids: e.g. one re-run after a new optional hparam changed
    the hash) count once: the later ``created``, so a seed is never counted twice.
    """
    df = pd.DataFrame([row(r) for r in records])
    if df.empty:
        return df
    df["noise_key"] = df["noise"].map(noise_order)
    run = ["dataset", "profile", "noise", "method", "variant", "seed", "noise_seed"]
    df = df.sort_values(
        [*run, "created", "run_id"], ascending=[True] * len(run) + [False, True], kind="mergesort"
    ).drop_duplicates(run, keep="first")
    keys = ["dataset", "profile", "noise_key", "method", "variant", "seed", "noise_seed", "run_id"]
    return df.sort_values(keys, kind="mergesort").reset_index(drop=True)
