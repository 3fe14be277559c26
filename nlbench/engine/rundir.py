"""A run directory's safety rules: safe names, one owner at a time, only our own files touched.

- A run id is one safe path component, so ``--out`` confines every write.
- A process owns a run directory through an OS lock on ``run.lock`` (``flock``; the kernel frees
  it when the holder exits or is killed, SIGKILL included). A second process is refused. The
  holder removes the file when it is done; a killed holder leaves it, unlocked, for the next.
- Nothing in a run directory is deleted except the files the runner wrote there, by name.
- A ``run.json`` that cannot be read, or comes from a newer nlbench, is never overwritten.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import glob
import logging
import os
import re
import signal
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from filelock import lock_descriptor, unlock_descriptor

from nlbench.core.atomic import TMP_SUFFIX, tmp_prefix
from nlbench.core.errors import UsageError
from nlbench.core.identity import changed_inputs, execution_note, same_run
from nlbench.core.record import EPOCHS_LOG, RecordError, read_record

if TYPE_CHECKING:
    from typing_extensions import Self

log = logging.getLogger(__name__)

LOCK = "run.lock"
RECORD = "run.json"
CHECKPOINT = "checkpoint.pt"
RUNNER_FILES = (RECORD, EPOCHS_LOG, CHECKPOINT)  # what a fresh start may remove, by name
RUN_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")


class RunLocked(UsageError):
    """Another live process owns this run directory."""


def check_run_id(run_id: str | None) -> None:
    """A run id is one path component: letters, digits, ``._-``, 1-128 characters."""
    if run_id is None:
        return
    if not RUN_ID.fullmatch(run_id) or run_id in (".", ".."):
        raise UsageError(
            f"--run-id {run_id!r} is not a safe directory name. Accepted: 1-128 letters, digits, "
            "'.', '_' or '-', not '.' or '..'."
        )


def check_out(out: str | os.PathLike) -> None:
    """``--out`` must be a writable directory, or creatable, with a UTF-8 name (checked before
    any data loads; nothing is created here)."""
    try:
        _check_out(out)
    except OSError as exc:  # a name over the file system's limit, a loop of links, ...
        raise UsageError(
            f"--out {os.fspath(out)!r:.80}: {exc.strerror or type(exc).__name__}. Accepted: a "
            "directory path the file system can hold"
        ) from None


def _check_out(out: str | os.PathLike) -> None:
    text = os.fspath(out)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise UsageError(
            f"--out {text.encode('utf-8', 'surrogateescape')!r}: the path is not valid UTF-8; "
            "records store paths as text. Accepted: a UTF-8 directory name."
        ) from None
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise UsageError(f"--out {path} is a file. Accepted: a directory (created if missing).")
    if path.is_dir():
        if not os.access(path, os.W_OK | os.X_OK):
            raise UsageError(f"--out {path} is not writable. Accepted: a directory you can write.")
        return
    parent = next(p for p in path.absolute().parents if p.exists())
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise UsageError(f"--out {path} cannot be created: {parent} is not a writable directory.")


def check_run_dir(run_dir: Path) -> None:
    """A run is written only into a real directory (or a new one) under ``--out``, and the
    runner's own files there are regular files: a symbolic link is never followed."""
    run_dir = Path(run_dir)
    hint = "move it away or pass another --run-id or --out"
    if run_dir.is_symlink():
        raise UsageError(f"{run_dir} is a symbolic link, not a run directory; {hint}")
    if run_dir.exists() and not run_dir.is_dir():
        raise UsageError(f"{run_dir} is a file, not a run directory; {hint}")
    for name in (*RUNNER_FILES, LOCK):
        path = run_dir / name
        if path.is_symlink() or (path.exists() and not path.is_file()):
            what = "a symbolic link" if path.is_symlink() else "not a regular file"
            raise UsageError(f"{path} is {what}, so nlbench did not write it; {hint}")


class RunLock:
    """An exclusive lock on ``run_dir/run.lock`` naming its holder (pid and host) inside."""

    def __init__(self, run_dir: Path) -> None:
        self.path = Path(run_dir) / LOCK
        self.fd: int | None = None

    def acquire(self) -> RunLock:
        for _ in range(3):  # the file may be unlinked by a releasing holder: retry on a new one
            fd = self._open()
            try:
                got = lock_descriptor(fd, blocking=False)
            except OSError as exc:  # e.g. a Lustre mount without flock, NFS without lockd
                os.close(fd)
                reason = exc.strerror or type(exc).__name__
                msg = f"cannot lock {self.path} ({reason}); see the README on NFS"
                raise UsageError(msg) from None
            if not got:
                holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip()
                os.close(fd)
                raise RunLocked(
                    f"{self.path.parent} is in use by {holder or 'another process'}; wait for it "
                    "to finish or pass another --run-id"
                )
            if _same_file(fd, self.path):
                break
            os.close(fd)
        else:
            raise RunLocked(f"{self.path.parent} is in use (its lock file keeps changing)")
        now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        with contextlib.suppress(OSError):  # the name is a courtesy; the flock is the lock
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()} since {now}\n".encode(), 0)
        self.fd = fd
        return self

    def _open(self) -> int:
        check_run_dir(self.path.parent)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # O_NOFOLLOW: a link planted at run.lock never gets its target truncated
            return os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        except OSError as exc:
            raise UsageError(f"cannot create {self.path} ({exc.strerror})") from None

    def release(self) -> None:
        """Remove the lock file while still holding it (a clean run directory), then unlock."""
        if self.fd is not None:
            with contextlib.suppress(OSError):
                self.path.unlink()
            unlock_descriptor(self.fd)
            os.close(self.fd)
            self.fd = None

    def __enter__(self) -> Self:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _same_file(fd: int, path: Path) -> bool:
    """Whether ``fd`` is still the file at ``path`` (not one a releasing holder unlinked)."""
    try:
        st, now = os.fstat(fd), os.stat(path)
    except OSError:
        return False
    return (st.st_dev, st.st_ino) == (now.st_dev, now.st_ino)


def is_locked(run_dir: Path) -> bool:
    """Whether a live process holds ``run_dir``'s lock (a probe: takes and drops it)."""
    path = Path(run_dir) / LOCK
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        if lock_descriptor(fd, blocking=False):
            unlock_descriptor(fd)
            return False
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def existing_record(run_dir: Path, prep: Any) -> dict[str, Any] | None:
    """The record already in ``run_dir``: returned when finished, refused when unreadable,
    newer or of another config; None when there is none or it is unfinished."""
    path = Path(run_dir) / RECORD
    if not path.exists():
        return None
    try:
        record = read_record(path)
    except RecordError as exc:
        raise UsageError(
            f"{exc}; it is left untouched: upgrade nlbench, or move {path.parent} away, or pass "
            "another --run-id or --out"
        ) from None

    if not same_run(record.get("config"), prep.key, prep.method_spec):
        changed = changed_inputs(record.get("config"), prep.key)
        why = f" ({changed})" if changed else ""
        raise UsageError(
            f"{run_dir} holds a run with a different config{why}; pass another --run-id or --out"
        )
    if record.get("status") == "done":
        note = execution_note(record["config"], prep.hparams, prep.method_spec)
        log.warning(
            "run %s already finished; returning its record (%s)%s", run_dir.name, path, note
        )
        return record
    return None


def clear_own_files(run_dir: Path) -> None:
    """Remove what an earlier attempt of the runner wrote, by name; leave everything else."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    for name in RUNNER_FILES:
        (run_dir / name).unlink(missing_ok=True)
        for tmp in run_dir.glob(f"{glob.escape(tmp_prefix(name))}*{TMP_SUFFIX}"):
            tmp.unlink(missing_ok=True)
    for tmp in run_dir.glob(".ckpt.*.tmp"):  # temp checkpoints of nlbench <= 0.1
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def sigint_sets(flag_owner: Any, attr: str = "_stop") -> Iterator[None]:
    """While inside, SIGINT sets ``flag_owner.attr`` (the loop stops at a safe point)."""
    try:
        old = signal.signal(signal.SIGINT, lambda *_: setattr(flag_owner, attr, True))
    except ValueError:  # not the main thread
        old = None
    try:
        yield
    finally:
        if old is not None:
            signal.signal(signal.SIGINT, old)
