"""The one atomic-write implementation: temp file in the same directory, fsync, rename.

Readers (and a run killed at any instant) see the old file or the new one, never a part. Every
file the runner writes (``run.json``, ``epochs.jsonl``, ``checkpoint.pt``) goes through here, so
does every board and report.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from nlbench.core.errors import NlbenchError, UsageError

TMP_SUFFIX = ".tmp"
# a full or read-only disk is not a bug: one line, not a traceback
_ENV_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EIO}


class WriteError(NlbenchError):
    """A file could not be written (disk full, quota, read-only): what was kept stays valid."""


def tmp_prefix(name: str) -> str:
    """Temp files of ``name`` are ``.<name>.<random>.tmp`` (the runner removes them by name)."""
    return f".{name}."


@contextlib.contextmanager
def atomic_file(path: Path, mode: str = "w") -> Iterator[IO]:
    """Open a temp file next to ``path``; on success fsync it and rename it over ``path``."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=tmp_prefix(path.name), suffix=TMP_SUFFIX, dir=path.parent)
    except OSError as exc:
        raise _write_error(path, exc) from None
    try:
        encoding = None if "b" in mode else "utf-8"
        with os.fdopen(fd, mode, encoding=encoding) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; records and boards are meant to be shared
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise _write_error(path, exc) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (UTF-8)."""
    with atomic_file(path, "w") as fh:
        fh.write(text)


def _fsync_dir(directory: Path) -> None:
    """Make the rename itself durable (best effort: not every filesystem allows it)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# errors a user fixes by naming another path (exit 2), as opposed to the machine's state (exit 1)
_USAGE_ERRNOS = {
    errno.EACCES,
    errno.EPERM,
    errno.EROFS,
    errno.ENOTDIR,
    errno.EEXIST,
    errno.EISDIR,
    errno.ENAMETOOLONG,
    errno.ENOENT,
    errno.ELOOP,
}


def os_error(exc: OSError) -> NlbenchError:
    """One line for an OS error no command caught itself: exit 2 when another path fixes it
    (missing, a folder, unwritable, a name too long), 1 when the machine does (disk full)."""
    where = f" {exc.filename}" if exc.filename else ""
    reason = exc.strerror or type(exc).__name__
    if exc.errno in _USAGE_ERRNOS:
        return UsageError(f"cannot use{where}: {reason}")
    return NlbenchError(f"cannot use{where}: {reason}")


def check_output_file(path: Path, option: str) -> None:
    """A file path a command will write at its end: checked first, so hours of work are not
    lost to a bad parent (a file, unwritable, a name too long). Nothing is created."""
    path = Path(path)
    try:
        if path.is_dir():
            raise UsageError(f"{option} {path} is a directory. Accepted: a file path")
        parent = next(p for p in path.absolute().parents if p.exists())
        ok = parent.is_dir() and os.access(parent, os.W_OK | os.X_OK)
    except OSError as exc:
        raise UsageError(f"{option} {path}: {exc.strerror or type(exc).__name__}") from None
    if not ok:
        raise UsageError(f"{option} {path} cannot be written: {parent} is not a writable directory")


def _write_error(path: Path, exc: OSError) -> NlbenchError:
    reason = exc.strerror or type(exc).__name__
    if exc.errno in _USAGE_ERRNOS:
        return UsageError(f"cannot write {path}: {reason}; pass an --out directory you can write")
    if exc.errno in _ENV_ERRNOS:
        return WriteError(
            f"cannot write {path}: {reason}; the files already there are intact "
            "(free space, then resume with --resume)"
        )
    return WriteError(f"cannot write {path}: {reason}")
