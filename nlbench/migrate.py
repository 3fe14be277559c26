"""Re-key committed records to the run_id this nlbench computes (:mod:`nlbench.identity`).

Idempotent: a record whose directory already bears its run_id is left as it is, so the same
command can be run again whenever records land from an older nlbench or a declared default
changes. Each move rewrites ``run_id`` inside ``run.json`` first (atomically), then renames the
directory, so an interrupted migration is finished by running it again.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from nlbench.errors import NlbenchError
from nlbench.plugins import Host
from nlbench.record import read_record, write_record


@dataclass(frozen=True)
class Move:
    """What happened to one record: ``renamed``, ``unchanged``, ``conflict`` or ``skipped``."""

    path: str
    old: str
    new: str
    action: str
    why: str = ""


def migrate_record(run_json: Path, host: Host, dry_run: bool = False) -> Move:
    """Re-key one record; never raises on a bad record (it is ``skipped`` with the reason)."""
    from nlbench.identity import record_run_id

    run_dir = run_json.parent
    try:
        record = read_record(run_json)
        new = record_run_id(record["config"], host.get("methods", record["config"]["method"]))
    except (NlbenchError, KeyError, TypeError) as exc:
        return Move(str(run_dir), run_dir.name, "", "skipped", " ".join(str(exc).split()))
    if record["run_id"] == new == run_dir.name:
        return Move(str(run_dir), new, new, "unchanged")
    target = run_dir.parent / new
    if target != run_dir and target.exists():
        why = f"{target} exists (the same run twice); keep one and run again"
        return Move(str(run_dir), run_dir.name, new, "conflict", why)
    if not dry_run:
        if record["run_id"] != new:
            write_record(run_dir, {**record, "run_id": new})
        if target != run_dir:
            os.rename(run_dir, target)
    return Move(str(run_dir), run_dir.name, new, "renamed")


def migrate_records(root: Path, host: Host, dry_run: bool = False) -> list[Move]:
    """Re-key every ``run.json`` under ``root`` (any depth), in a stable order."""
    return [migrate_record(path, host, dry_run) for path in sorted(Path(root).rglob("run.json"))]
