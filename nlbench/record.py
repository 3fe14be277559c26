"""Run records: ``run.json`` written atomically, epochs streamed to ``epochs.jsonl``.

Records are the truth; markdown is a build artefact. A record is never edited in place and
never half-written: every write goes to a temp file that is fsynced and renamed.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

from nlbench.errors import NlbenchError

SCHEMA = 1
EPOCH_FIELDS = (
    "epoch", "lr", "train_loss", "test_acc", "noisy_fit", "clean_fit",
    "selected", "selected_precision", "detection_auc", "seconds",
)  # fmt: skip
SUMMARY_FIELDS = (
    "last_acc", "best_acc", "best_epoch", "last10_acc", "wall_s", "images_per_s", "peak_mem_mb",
    "epochs_to_fit",
)  # fmt: skip
FIT_THRESHOLD = 0.99  # train accuracy on the noisy labels that counts as "fitted"
TOP_FIELDS = (
    "schema", "run_id", "created", "nlbench_version", "git_sha", "plugins", "env", "config",
    "noise", "epochs", "summary", "status",
)  # fmt: skip
STATUSES = ("running", "done", "failed", "interrupted")


class RecordError(NlbenchError):
    """A record that cannot be read: corrupt JSON or an unknown schema."""


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


def dumps(obj: Any) -> str:
    return json.dumps(_clean(obj), sort_keys=True, indent=1, allow_nan=False) + "\n"


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so readers see the old file or the new one, never a part."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; records and boards are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_record(run_dir: Path, record: dict[str, Any]) -> Path:
    path = Path(run_dir) / "run.json"
    atomic_write_text(path, dumps(record))
    return path


def append_epoch(run_dir: Path, metrics: dict[str, Any]) -> None:
    """Append one epoch line to ``epochs.jsonl`` (one write call, fsynced)."""
    path = Path(run_dir) / "epochs.jsonl"
    line = json.dumps(_clean(metrics), sort_keys=True, allow_nan=False) + "\n"
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(line)
        fh.flush()
        os.fsync(fh.fileno())


def upgrade(record: dict[str, Any], source: str) -> dict[str, Any]:
    """Upgrade older schemas on read; refuse unknown ones."""
    schema = record.get("schema")
    if schema != SCHEMA:
        raise RecordError(f"{source}: unknown record schema {schema!r} (this nlbench reads {SCHEMA})")
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
    return upgrade(record, str(path))


def summarise(epochs: list[dict[str, Any]], wall_s: float, images: int, train_s: float,
              peak_mem_mb: float | None) -> dict[str, Any]:
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
        "best_acc": accs[best] if accs else None,
        "best_epoch": epochs[best]["epoch"] if accs else None,
        "last10_acc": sum(accs[-10:]) / len(accs[-10:]) if accs else None,
        "wall_s": wall_s,
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
