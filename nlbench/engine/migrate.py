"""Re-key committed records to the run_id this nlbench computes (:mod:`nlbench.core.identity`).

Idempotent: a record whose directory already bears its run_id is left as it is, so the same
command can be run again whenever records land from an older nlbench or a declared default
changes. Only a real directory holding a regular ``run.json`` is moved, only to a new name that
is one safe path component (:func:`nlbench.engine.rundir.check_run_id`) beside it, inside the root,
and
never over an existing entry. Each move renames the directory first, then rewrites ``run_id``
inside ``run.json`` (atomically): a failed rename changes nothing, and an interrupted migration
is finished by running it again.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from nlbench.core.errors import NlbenchError, UsageError
from nlbench.core.identity import record_run_id
from nlbench.core.manifest import inside
from nlbench.core.record import read_record, write_record
from nlbench.core.registry import NAME_RE, NAME_SHOWN
from nlbench.host.plugins import Host


@dataclass(frozen=True)
class Move:
    """What happened to one record: ``renamed``, ``unchanged``, ``conflict`` or ``skipped``."""

    path: str
    old: str
    new: str
    action: str
    why: str = ""


def _new_run_id(run_json: Path, root: Path, host: Host) -> tuple[dict, str]:
    """The record and its run_id today; UsageError for anything that must not be moved."""
    # lazy: keeps filelock out of this module's import (CLI start-up)
    from nlbench.engine.rundir import check_run_id

    run_dir = run_json.parent
    if run_json.is_symlink() or run_dir.is_symlink() or not run_json.is_file():
        raise UsageError("not a regular run.json in a real directory; left where it is")
    if not run_dir.resolve().is_relative_to(root.resolve()) or run_dir == root:
        raise UsageError(f"not a record directory inside {root}; left where it is")
    record = read_record(run_json)
    config = record["config"]
    for field in ("method", "dataset"):
        name = config.get(field) if isinstance(config, dict) else None
        if not isinstance(name, str) or not NAME_RE.fullmatch(name):
            raise UsageError(f"config.{field} {name!r:.60} is not a name ({NAME_SHOWN})")
    new = record_run_id(config, host.get("methods", config["method"]))
    try:
        check_run_id(new)
    except UsageError:
        raise UsageError(f"its run_id {new!r:.60} is not a safe directory name") from None
    return record, new


def migrate_record(
    run_json: Path, host: Host, dry_run: bool = False, root: Path | None = None
) -> Move:
    """Re-key one record; never raises on a bad record (it is ``skipped`` with the reason)."""
    run_dir = run_json.parent
    root = Path(root) if root is not None else run_dir.parent
    try:
        record, new = _new_run_id(run_json, root, host)
    except (NlbenchError, KeyError, TypeError, AttributeError) as exc:
        return Move(str(run_dir), run_dir.name, "", "skipped", " ".join(str(exc).split()))
    if record["run_id"] == new == run_dir.name:
        return Move(str(run_dir), new, new, "unchanged")
    try:  # the one check of a path built from data (nlbench.core.manifest.inside)
        target = inside(root, (run_dir.parent / new).relative_to(root).as_posix())
    except (UsageError, ValueError) as exc:
        return Move(str(run_dir), run_dir.name, new, "skipped", " ".join(str(exc).split()))
    if target != run_dir and (target.exists() or target.is_symlink()):
        why = f"{target} exists (the same run twice); keep one and run again"
        return Move(str(run_dir), run_dir.name, new, "conflict", why)
    if not dry_run:
        try:
            if target != run_dir:
                os.rename(run_dir, target)
            if record["run_id"] != new:
                write_record(target, {**record, "run_id": new})
        except (OSError, NlbenchError) as exc:
            why = " ".join(str(getattr(exc, "strerror", None) or exc).split())
            return Move(str(run_dir), run_dir.name, new, "skipped", f"cannot move it: {why}")
    return Move(str(run_dir), run_dir.name, new, "renamed")


def migrate_records(root: Path, host: Host, dry_run: bool = False) -> list[Move]:
    """Re-key every ``run.json`` under ``root`` (any depth), in a stable order."""
    root = Path(root)
    paths = sorted(root.rglob("run.json"))
    return [migrate_record(path, host, dry_run, root) for path in paths]
