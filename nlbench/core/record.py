"""Run records: ``run.json`` written atomically, epochs streamed to ``epochs.jsonl``.

Records are the truth; markdown is a build artefact. A record is never edited in place and
never half-written: every write goes through :mod:`nlbench.core.atomic` (temp file, fsync, rename).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from nlbench.core.atomic import atomic_write_text
from nlbench.core.errors import UsageError

SCHEMA = 1


@dataclass(frozen=True)
class EpochMetric:
    """One per-epoch metric name and what it is; ``schema``: every schema-1 epoch line has it."""

    name: str
    kind: Literal["index", "result", "diagnostic", "timing"]
    schema: bool = False


# Per-epoch metric names, defined once (table order). "result": what training produced;
# "diagnostic": measured with the clean labels the runner keeps back; "timing": differs between
# any two runs of one config. Every list below, and those of rerun, report and the testing kit,
# is derived from this table.
EPOCH_METRICS: tuple[EpochMetric, ...] = (
    EpochMetric("epoch", "index", schema=True),
    EpochMetric("lr", "result", schema=True),
    EpochMetric("train_loss", "result", schema=True),
    EpochMetric("test_acc", "result", schema=True),
    EpochMetric("val_acc", "result"),  # with a clean validation split only
    EpochMetric("noisy_fit", "diagnostic", schema=True),
    EpochMetric("clean_fit", "diagnostic", schema=True),
    EpochMetric("train_acc_noisy", "diagnostic"),
    EpochMetric("selected", "diagnostic", schema=True),
    EpochMetric("selected_precision", "diagnostic", schema=True),
    EpochMetric("detection_auc", "diagnostic", schema=True),
    EpochMetric("seconds", "timing", schema=True),
    EpochMetric("select_s", "timing"),
    EpochMetric("selection_s", "timing"),  # a composed method's selection time
    EpochMetric("select_seconds", "timing"),  # older records
)


def epoch_metric_names(*kinds: str) -> tuple[str, ...]:
    """The per-epoch metric names of these kinds, in table order."""
    return tuple(m.name for m in EPOCH_METRICS if m.kind in kinds)


EPOCH_FIELDS = tuple(m.name for m in EPOCH_METRICS if m.schema)  # every epoch line has these
REPRODUCIBLE_METRICS = epoch_metric_names("result", "diagnostic")  # a rerun must match these
TIMING_METRICS = frozenset(epoch_metric_names("timing"))
SUMMARY_FIELDS = (
    "last_acc",
    "best_acc",
    "best_epoch",
    "last10_acc",
    "wall_s",
    "cpu_s",
    "images_per_s",
    "peak_mem_mb",
    "epochs_to_fit",
)
FIT_THRESHOLD = 0.99  # train accuracy on the noisy labels that counts as "fitted"
TOP_FIELDS = (
    "schema",
    "run_id",
    "created",
    "nlbench_version",
    "git_sha",
    "plugins",
    "env",
    "config",
    "noise",
    "epochs",
    "summary",
    "status",
)
STATUSES = ("running", "done", "failed", "interrupted")
EPOCHS_LOG = "epochs.jsonl"


class RecordError(UsageError):
    """A record that cannot be read: corrupt JSON or an unknown schema (exit code 2)."""


def _clean(obj: Any) -> Any:
    """Make a value JSON-safe: NaN/inf → None, tuples → lists, numpy/torch scalars → Python."""
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if hasattr(obj, "item") and callable(obj.item) and getattr(obj, "ndim", 1) == 0:
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def jsonable(obj: Any) -> Any:
    """``obj`` as a record stores it (what :func:`dumps` writes and a reader gets back)."""
    return json.loads(json.dumps(_clean(obj), allow_nan=False))


def dumps(obj: Any) -> str:
    return json.dumps(_clean(obj), sort_keys=True, indent=1, allow_nan=False) + "\n"


def write_record(run_dir: Path, record: dict[str, Any]) -> Path:
    path = Path(run_dir) / "run.json"
    atomic_write_text(path, dumps(record))
    return path


def epoch_line(metrics: dict[str, Any]) -> str:
    return json.dumps(_clean(metrics), sort_keys=True, allow_nan=False) + "\n"


def write_epochs(run_dir: Path, epochs: list[dict[str, Any]]) -> None:
    """Write ``epochs.jsonl`` as exactly these epochs (atomically: a kill leaves old or new)."""
    atomic_write_text(Path(run_dir) / EPOCHS_LOG, "".join(epoch_line(e) for e in epochs))


def append_epoch(run_dir: Path, metrics: dict[str, Any]) -> None:
    """Add one epoch line to ``epochs.jsonl`` by rewriting it atomically (never a torn line)."""
    path = Path(run_dir) / EPOCHS_LOG
    old = path.read_text(encoding="utf-8") if path.exists() else ""
    complete = "".join(ln for ln in old.splitlines(keepends=True) if ln.endswith("\n"))
    atomic_write_text(path, complete + epoch_line(metrics))


def check_schema(record: dict[str, Any], source: str) -> dict[str, Any]:
    """Refuse a record this nlbench cannot read: another schema or a missing top field.

    Nothing is upgraded: every record ever written is schema 1. A future schema 2 adds its
    upgrade of schema 1 records here; until then another schema comes from a newer nlbench.
    """
    schema = record.get("schema")
    if type(schema) is not int or schema != SCHEMA:  # ``True == 1``: a bool is not a schema
        raise RecordError(
            f"{source}: unknown record schema {schema!r} (this nlbench reads {SCHEMA})"
        )
    missing = [f for f in TOP_FIELDS if f not in record]
    if missing:
        raise RecordError(f"{source}: record lacks field(s) {', '.join(missing)}")
    return record


def read_record(path: Path) -> dict[str, Any]:
    """Read and validate a ``run.json`` (RecordError names the path on any problem)."""
    try:
        record = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RecordError(f"{path}: not a readable JSON record ({exc})") from None
    if not isinstance(record, dict):
        raise RecordError(f"{path}: not a JSON object")
    return check_schema(record, str(path))


def summarise(
    epochs: list[dict[str, Any]],
    wall_s: float,
    images: int,
    train_s: float,
    peak_mem_mb: float | None,
    cpu_s: float | None = None,
) -> dict[str, Any]:
    """The record's summary: last, best (oracle), last-10 mean accuracy and costs."""
    accs = [e["test_acc"] for e in epochs if e.get("test_acc") is not None]
    best = max(range(len(accs)), key=lambda i: (accs[i], -i)) if accs else None
    vals = [e.get("val_acc") for e in epochs]
    selected = None
    if accs and all(v is not None for v in vals):  # model selection on a clean val split
        selected = max(range(len(vals)), key=lambda i: (vals[i], -i))
    return {
        "val_selected_acc": accs[selected] if selected is not None else None,
        "last_acc": accs[-1] if accs else None,
        "best_acc": accs[best] if best is not None else None,
        "best_epoch": epochs[best]["epoch"] if best is not None else None,
        "last10_acc": sum(accs[-10:]) / len(accs[-10:]) if accs else None,
        "wall_s": wall_s,
        "cpu_s": cpu_s,
        "images_per_s": images / train_s if train_s > 0 else None,
        "peak_mem_mb": peak_mem_mb,
        "epochs_to_fit": epochs_to_fit(epochs),
    }


def epochs_to_fit(epochs: list[dict[str, Any]], threshold: float = FIT_THRESHOLD) -> int | None:
    """Epochs trained until train accuracy on the noisy labels first reaches ``threshold``.

    The memorisation clock of Zhang et al. (2017) and Arpit et al. (2017): how long a network
    takes to fit the labels it was given, noise included. ``None`` when it never does.
    """
    for e in epochs:
        acc = e.get("train_acc_noisy")
        if acc is not None and acc >= threshold:
            return int(e["epoch"]) + 1
    return None
