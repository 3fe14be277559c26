"""``nlbench data prepare``: fetch what can be fetched, check the layout, report what is there.

A dataset is prepared by loading it the way a run does
(:class:`nlbench.training.data.LoadRequest`): its
loader finds the official files, downloads the official archives when they are missing (MD5
checked by torchvision's downloader) or fails with one line naming the missing files, where
they go and how to get them. Then every file's checksum is reported (official, or a re-encoded
copy that is accepted), and a streamed dataset whose stream has ``verify()`` (Clothing1M) checks
that every image its key lists name is on disk, so a run does not fail hours in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nlbench.core.download import checksum_status, loading, offline, recording_checks, stage
from nlbench.core.errors import DataMissingError
from nlbench.host.plugins import get_host
from nlbench.training.data import LoadRequest


@dataclass
class Prepared:
    """What ``prepare`` found: sizes per split, files and their checksum status."""

    name: str
    root: Path
    folder: Path | None
    splits: dict[str, int]
    files: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.name,
            "root": str(self.root),
            "folder": None if self.folder is None else str(self.folder),
            "splits": self.splits,
            "files": self.files,
            "notes": self.notes,
        }


def prepare_dataset(name: str, root: Path, download: bool = True) -> Prepared:
    """Fetch (when allowed and possible) and verify dataset ``name`` under ``root``.

    Raises:
        DataMissingError: one line naming what is missing, where it goes and how to get it.
        UsageError: unknown dataset name (with the accepted names).
    """
    spec = get_host().get("datasets", name)
    stage(f"loading {name} from {root}")
    with recording_checks() as checked, loading(root, preparing=True):
        data = spec.load(LoadRequest(root=root, download=download and not offline()))
    splits = {"train": len(data.train), "test": len(data.test)}
    if data.val is not None:
        splits["val"] = len(data.val)
    folder, files = None, {}
    if name in checked:
        folder, expected = checked[name]
        files = checksum_status(folder, expected)
    notes = []
    if "differs" in files.values():
        notes.append(
            "files that differ from the official checksums are used as they are "
            "(re-encoded copies are accepted; downloads are always verified)"
        )
    verify = getattr(data.stream, "verify", None)
    if verify is not None:
        stage(f"checking that every image of {name} is on disk")
        problem = verify()
        if problem:
            raise DataMissingError(f"dataset '{name}': {problem}")
        notes.append("every image the key lists name is on disk")
    return Prepared(name, root, folder or _data_dir(data.info), splits, files, notes)


def _data_dir(info: dict[str, Any]) -> Path | None:
    return Path(info["data_dir"]) if info.get("data_dir") else None
