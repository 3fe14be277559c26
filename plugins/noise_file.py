"""``file:PATH``: per-sample noisy labels from a ``.npy`` array or a ``.csv`` of index,label.

Two lengths are accepted, no other (a file of another dataset or a cut-off one is refused):

* the length of the current train set: the labels are used as they are, in train order;
* the length of the full official train set (``ctx.full_size``): the labels are picked by
  ``ctx.sample_ids`` (positions in the official order), so the same file works with
  ``--train-subset`` and meta hold-outs.

``.npy`` files are read with ``allow_pickle=False``; a ``.csv`` has one ``index,label`` row per
sample (an optional header line), indices covering 0..M-1 exactly once, UTF-8. Every way a
file can be wrong (empty, truncated, not UTF-8, huge numbers) is one usage error naming it.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from nlbench.api import NoiseContext, NoiseModelSpec, NoiseResult, UsageError, hookimpl

LABEL_MAX = 2**31  # indices and labels beyond this are not a label file


def read_npy(path: Path) -> np.ndarray:
    try:
        arr = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:  # EOFError: an empty or cut-off file
        why = " ".join(str(exc).split()) or "empty or truncated"
        raise UsageError(
            f"noise file {path}: not a plain .npy array ({why}). Accepted: a "
            "1-D integer array saved by numpy.save"
        ) from None
    if arr.ndim != 1:
        raise UsageError(
            f"noise file {path}: expected a 1-D array of labels, got shape {arr.shape}"
        )
    if arr.dtype.kind == "f" and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
        arr = arr.astype(np.int64)
    if arr.dtype.kind not in "iu":
        raise UsageError(f"noise file {path}: labels must be integers, got dtype {arr.dtype}")
    if arr.size and (int(arr.max()) >= LABEL_MAX or int(arr.min()) <= -LABEL_MAX):
        raise UsageError(  # checked before the cast: a uint64 label must not wrap to -1
            f"noise file {path}: labels must be class indices, got {int(arr.min())}.."
            f"{int(arr.max())}"
        )
    labels: np.ndarray = arr.astype(np.int64)
    return labels


def _csv_rows(path: Path) -> Iterator[tuple[int, list[str]]]:
    """(line number, row) of a UTF-8 CSV; usage errors for undecodable or malformed text."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            yield from enumerate(csv.reader(f), start=1)
    except UnicodeDecodeError as exc:
        raise UsageError(
            f"noise file {path}: not UTF-8 text (byte {exc.start}). Accepted: a "
            "UTF-8 .csv of index,label rows"
        ) from None
    except csv.Error as exc:
        raise UsageError(f"noise file {path}: not a readable CSV ({exc})") from None


def _csv_pair(path: Path, line_no: int, row: list[str]) -> tuple[int, int]:
    try:
        i, y = (int(v) for v in row[:2])
        if len(row) < 2 or not (0 <= i < LABEL_MAX and -LABEL_MAX < y < LABEL_MAX):
            raise ValueError
    except ValueError:
        shown = repr(row) if len(repr(row)) <= 60 else repr(row)[:57] + "..."
        raise UsageError(
            f"noise file {path}, line {line_no}: expected index,label integers "
            f"(0 <= index < {LABEL_MAX}), got {shown}"
        ) from None
    return i, y


def read_csv(path: Path) -> np.ndarray:
    """index,label rows → labels ordered by index (every index 0..M-1 exactly once)."""
    index, labels = [], []
    for line_no, row in _csv_rows(path):
        if not row or (line_no == 1 and not row[0].strip().lstrip("-").isdigit()):
            continue  # blank line or header
        i, y = _csv_pair(path, line_no, row)
        index.append(i)
        labels.append(y)
    idx = np.asarray(index, dtype=np.int64)
    if len(idx) == 0 or not np.array_equal(np.sort(idx), np.arange(len(idx))):
        raise UsageError(
            f"noise file {path}: the indices must cover 0..{len(idx) - 1} exactly once"
        )
    out = np.empty(len(idx), dtype=np.int64)
    out[idx] = labels
    return out


def check_path(path: Path) -> None:
    """An existing .npy or .csv file (checked when the run is keyed, before its hash is taken)."""
    if not path.is_file():
        raise UsageError(f"noise 'file:{path}': no such file. Accepted: a .npy or .csv file")
    if path.suffix not in (".npy", ".csv"):
        raise UsageError(
            f"noise 'file:{path}': unknown format '{path.suffix}'. Accepted: .npy, .csv"
        )


def read_labels(path: Path) -> np.ndarray:
    check_path(path)
    if path.suffix == ".npy":
        return read_npy(path)
    if path.suffix == ".csv":
        return read_csv(path)
    raise UsageError(f"noise 'file:{path}': unknown format '{path.suffix}'. Accepted: .npy, .csv")


def label_path(arg: str | None) -> Path:
    """The file ``file:ARG`` names (its contents' hash is part of the run identity)."""
    return Path(str(arg)).expanduser()


def file_labels(ctx: NoiseContext, arg: str | None) -> NoiseResult:
    """Labels from ``arg`` (a path), aligned with the train set as the module docstring says."""
    path = label_path(arg)
    labels = read_labels(path)
    n, full, ids = len(ctx.clean), ctx.full_size, ctx.sample_ids
    if len(labels) != n:
        fits = ids is not None and len(ids) == n and (not n or int(np.max(ids)) < len(labels))
        if not fits or (full is not None and len(labels) != full):
            whole = f" ({full})" if full is not None else ""
            raise UsageError(
                f"noise file {path}: {len(labels)} labels for a train set of {n} "
                "samples. Accepted: one label per train sample, or one per sample "
                f"of the full official train set{whole}"
            )
        labels = labels[np.asarray(ids)]
    if n and (labels.min() < 0 or labels.max() >= ctx.num_classes):
        raise UsageError(
            f"noise file {path}: labels must lie in 0..{ctx.num_classes - 1}, got "
            f"{labels.min()}..{labels.max()}"
        )
    return NoiseResult(labels.copy(), info={"file": str(path)})


@hookimpl
def register_noise_models(register: Callable[[NoiseModelSpec], None]) -> None:
    register(
        NoiseModelSpec(
            "file",
            "per-sample noisy labels from a .npy or .csv (index,label)",
            file_labels,
            convention="labels from file",
            check_arg=lambda arg, spec: check_path(label_path(arg)),
            reads=lambda arg: [label_path(arg)],
        )
    )
