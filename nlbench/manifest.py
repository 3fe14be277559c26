"""What a command wrote into a folder it shares with the user, so it replaces and removes only that.

``nlbench leaderboard`` (into ``leaderboards/``) and ``nlbench report`` (into ``RUN_DIR/report``)
list every file they generate in ``<folder>/nlbench-manifest.txt``. A file the manifest does not
list is never replaced or removed: a user's own SVG next to the figures stays, and a generated
name already taken by a user's file is refused, with one line, before anything is written.
Every path is checked by :func:`inside` (a plain relative name, no ``..``, no symbolic link),
the one place a path built from data is checked before a write, rename or delete.

The manifest is written first as the union of the old and new lists, then the files, then the
manifest again with the new list: a command killed in between leaves a manifest that lists at
least every file it may have written.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from pathlib import Path

from nlbench.atomic import atomic_file, atomic_write_text
from nlbench.errors import UsageError

log = logging.getLogger(__name__)

MANIFEST = "nlbench-manifest.txt"
Content = str | bytes  # a generated file's text (UTF-8) or bytes
_PLAIN = re.compile(r"[A-Za-z0-9_.-]+(?:/[A-Za-z0-9_.-]+)*")


def inside(out: Path, relative: str) -> Path:
    """``out/relative``, refusing a name that is not plain or a path that leaves ``out``.

    Plain: letters, digits, ``_.-`` components joined by ``/``, none ``.`` or ``..``. A symbolic
    link on the way (a folder inside ``out`` linking elsewhere) is refused the same way.
    """
    parts = relative.split("/")
    if not _PLAIN.fullmatch(relative) or any(p in (".", "..") for p in parts):
        raise UsageError(f"refusing to write '{relative}': not a plain path under {out}")
    path = Path(out) / relative
    if not path.resolve().is_relative_to(Path(out).resolve()):
        raise UsageError(f"refusing to write '{relative}': it resolves outside {out}")
    return path


def read_manifest(out: Path) -> set[str] | None:
    """The names ``out``'s manifest lists; None when there is none (an older nlbench's tree)."""
    path = Path(out) / MANIFEST
    if not path.exists() and not path.is_symlink():
        return None
    if path.is_symlink() or not path.is_file():
        raise UsageError(f"{path}: not a regular file; move it away (nlbench writes it)")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read it ({exc}); move it away") from None
    names = {ln.strip() for ln in lines if ln.strip() and not ln.startswith("#")}
    for name in sorted(names):
        try:
            inside(out, name)
        except UsageError:
            raise UsageError(
                f"{path} lists {name!r}, not a plain path under {out}; it was edited by hand: "
                "restore it or move it away"
            ) from None
    return names


def as_bytes(content: Content) -> bytes:
    return content if isinstance(content, bytes) else content.encode("utf-8")


def same_bytes(path: Path, content: Content) -> bool:
    """Whether ``path`` is a file holding exactly ``content``."""
    return path.is_file() and path.read_bytes() == as_bytes(content)


def manifest_text(command: str, names: set[str] | list[str]) -> str:
    header = f"# files `nlbench {command}` generated here; it replaces or removes only these\n"
    return header + "".join(f"{n}\n" for n in sorted(names))


class Outputs:
    """One command's generated files under ``out``: which exist, which it owns, what is stale.

    ``legacy_owned(name, path)`` decides ownership in a folder without a manifest (written by an
    older nlbench): what that version recognised as its own (a board's marker line).
    ``keep(name)``: a listed file not built this time that must stay (figures when matplotlib is
    missing).
    """

    def __init__(
        self,
        out: Path,
        command: str,
        legacy_owned: Callable[[str, Path], bool] = lambda name, path: False,
        keep: Callable[[str], bool] = lambda name: False,
        legacy_names: Callable[[Path], list[str]] = lambda out: [],
    ) -> None:
        self.out, self.command, self.keep = Path(out), command, keep
        self.listed = read_manifest(self.out)
        self.legacy = self.listed is None
        self.legacy_owned = legacy_owned
        if self.listed is None:  # no manifest: what the older nlbench would have removed
            self.listed = {n for n in legacy_names(self.out) if legacy_owned(n, self.out / n)}

    def removable(self, files: Mapping[str, Content]) -> list[str]:
        """Listed files that are no longer generated (kept ones excepted)."""
        assert self.listed is not None
        return sorted(n for n in self.listed if n not in files and not self.keep(n))

    def final_names(self, files: Mapping[str, Content]) -> set[str]:
        assert self.listed is not None
        return set(files) | {n for n in self.listed if n not in files and self.keep(n)}

    def check_targets(self, files: Mapping[str, Content]) -> dict[str, Path]:
        """Every target checked before anything is written: plain, inside, ours or free."""
        paths = {name: inside(self.out, name) for name in files}
        inside(self.out, MANIFEST)
        for name, path in sorted(paths.items()):
            if path.is_symlink() or (path.exists() and not path.is_file()):
                raise UsageError(
                    f"{path} is a symbolic link or a folder, not a file `nlbench "
                    f"{self.command}` wrote; move it away (nothing was written)"
                )
            if path.exists() and not self._ours(name, path, files[name]):
                raise UsageError(
                    f"{path} exists and `nlbench {self.command}` did not write it (it is not in "
                    f"{self.out / MANIFEST}); move it away or pass another --out (nothing was "
                    "written)"
                )
        return paths

    def _ours(self, name: str, path: Path, content: Content) -> bool:
        assert self.listed is not None
        if name in self.listed or path.read_bytes() == as_bytes(content):
            return True
        return self.legacy and self.legacy_owned(name, path)

    def stale(self, files: Mapping[str, Content]) -> list[str]:
        """Listed files no longer generated, and the manifest itself when it would change."""
        names = self.removable(files)
        path = self.out / MANIFEST
        final = self.final_names(files)
        if not path.is_file():
            return sorted([*names, MANIFEST] if final else names)
        if path.read_text(encoding="utf-8") != manifest_text(self.command, final):
            names.append(MANIFEST)
        return sorted(names)

    def write(
        self, files: Mapping[str, Content], differs: Callable[[str, Content], bool] | None = None
    ) -> list[Path]:
        """Write the files that ``differs``, remove listed ones no longer generated."""
        assert self.listed is not None
        paths = self.check_targets(files)
        final = self.final_names(files)
        self._save(self.listed | final)  # first: a kill below leaves every written file listed
        written = []
        differs = differs or (lambda name, content: not same_bytes(paths[name], content))
        for name, content in sorted(files.items()):
            if differs(name, content):
                with atomic_file(paths[name], "wb") as fh:
                    fh.write(as_bytes(content))
                written.append(paths[name])
        for name in self.removable(files):
            path = inside(self.out, name)
            if path.is_file() and not path.is_symlink():
                path.unlink()
            elif path.exists() or path.is_symlink():
                log.warning("left %s: it is no longer a file nlbench wrote", path)
        self._save(final)
        return written

    def _save(self, names: set[str]) -> None:
        path = self.out / MANIFEST
        text = manifest_text(self.command, names)
        if not path.is_file() and not names:
            return  # nothing generated, nothing to list
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            atomic_write_text(path, text)
