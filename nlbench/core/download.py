"""Finding dataset files on disk, and fetching official archives when they are missing.

The policy:

* files already present in the official layout are used as they are, even when their MD5 sums
  differ from the official ones (re-encoded or regenerated copies are common); a mismatch is
  logged once per folder and process;
* a download is checked against the official MD5 (torchvision's downloader enforces it);
* offline, or with ``NLBENCH_OFFLINE=1``, a missing file is one :class:`DataMissingError` that
  names the expected files, where they go and the URL to fetch them from.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import pickle
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nlbench.core.errors import DataMissingError

log = logging.getLogger(__name__)

OFFLINE_ENV = "NLBENCH_OFFLINE"
# Global on purpose: a checksum mismatch is logged once per folder and process, however many
# runs (a sweep) load the dataset; MD5-ing CIFAR again per run would cost seconds each time.
_CHECKED: set[str] = set()
# Set only inside ``recording_checks()`` (``nlbench data prepare``): the folder and files each
# dataset's loader checked, as the loader API returns data, not the files it read.
_RECORDING: ContextVar[dict[str, tuple[Path, tuple[Expected, ...]]] | None] = ContextVar(
    "nlbench_checked_files", default=None
)


@dataclass(frozen=True)
class Expected:
    """One file a loader needs: its path under the folder, official MD5 and accepted aliases.

    ``aliases`` are other names the same content may have (e.g. a gunzipped IDX file).
    """

    name: str
    md5: str | None = None
    aliases: tuple[str, ...] = ()

    def find(self, folder: Path) -> Path | None:
        """The first existing path among the name and its aliases, or None."""
        for candidate in (self.name, *self.aliases):
            path = folder / candidate
            if path.is_file():
                return path
        return None


@dataclass(frozen=True)
class Archive:
    """An official download: fetched into ``root`` and extracted there."""

    url: str
    filename: str
    md5: str | None = None
    extract: bool = True


@dataclass(frozen=True)
class Loading:
    """The load in progress (set by whoever calls ``DatasetSpec.load``): its data root and
    whether ``nlbench data prepare`` is the caller, so a missing file's message can name the
    exact command that fetches and checks the dataset (and not name itself)."""

    root: Path
    preparing: bool = False


_LOADING: ContextVar[Loading | None] = ContextVar("nlbench_loading", default=None)
# Set only while the static cache probes a loader (nlbench.host.static_specs): the first
# require_files call records what it asked for and stops the loader there.
_PROBING: ContextVar[dict[str, Any] | None] = ContextVar("nlbench_probing", default=None)


# Set by the CLI (``nlbench data prepare``) to show what a long load is doing now.
_STAGE: ContextVar[Callable[[str], None] | None] = ContextVar("nlbench_stage", default=None)


def stage(text: str) -> None:
    """Report the step a load is at (downloading, checking checksums) to the display, if any."""
    log.info("%s", text)
    show = _STAGE.get()
    if show is not None:
        show(text)


@contextlib.contextmanager
def showing_stages(show: Callable[[str], None]) -> Iterator[None]:
    """Send :func:`stage` reports inside the block to ``show``."""
    token = _STAGE.set(show)
    try:
        yield
    finally:
        _STAGE.reset(token)


class ProbeStop(Exception):
    """Raised by :func:`require_files` under :func:`probing` once it has recorded the files."""


@contextlib.contextmanager
def loading(root: Path, preparing: bool = False) -> Iterator[None]:
    """Mark a dataset load from ``root`` (see :class:`Loading`)."""
    token = _LOADING.set(Loading(Path(root), preparing))
    try:
        yield
    finally:
        _LOADING.reset(token)


@contextlib.contextmanager
def probing() -> Iterator[dict[str, Any]]:
    """Record the first :func:`require_files` call of a loader (its folder, files, downloads,
    hint) and stop the loader there with :class:`ProbeStop`."""
    found: dict[str, Any] = {}
    token = _PROBING.set(found)
    try:
        yield found
    finally:
        _PROBING.reset(token)


def prepare_command(name: str, root: Path | None) -> str:
    """The ``nlbench data prepare`` command line for dataset ``name`` under ``root``."""
    default = os.environ.get("NLBENCH_DATA") or str(Path.home() / ".cache" / "nlbench" / "data")
    where = "" if root is None or str(root) == default else f" --data-root {root}"
    return f"nlbench data prepare {name}{where}"


def missing_error(message: str, name: str) -> DataMissingError:
    """A DataMissingError whose ``hint`` is the next step: ``nlbench data prepare NAME``
    (unless that command is the one running)."""
    error = DataMissingError(message)
    command = next_command(name)
    if command is not None:
        error.hint = command
    return error


def next_command(name: str) -> str | None:
    """``nlbench data prepare NAME [--data-root ROOT]`` for the load in progress, or None
    inside that command (or outside any marked load)."""
    state = _LOADING.get()
    if state is None or state.preparing:
        return None
    return prepare_command(name, state.root)


@contextlib.contextmanager
def recording_checks() -> Iterator[dict[str, tuple[Path, tuple[Expected, ...]]]]:
    """Collect ``{dataset: (folder, expected files)}`` of every successful
    :func:`require_files` inside the block (what ``nlbench data prepare`` reports)."""
    found: dict[str, tuple[Path, tuple[Expected, ...]]] = {}
    token = _RECORDING.set(found)
    try:
        yield found
    finally:
        _RECORDING.reset(token)


def offline() -> bool:
    """True when ``NLBENCH_OFFLINE`` asks never to touch the network."""
    return os.environ.get(OFFLINE_ENV, "").strip().lower() not in {"", "0", "false", "no"}


def missing_files(folder: Path, expected: Sequence[Expected]) -> list[Expected]:
    return [e for e in expected if e.find(folder) is None]


def warn_checksums(folder: Path, expected: Sequence[Expected], name: str) -> list[str]:
    """Compare present files with their official MD5s; log a mismatch once per folder.

    Returns the names that differ (empty when all match or were already checked).
    """
    # lazy: keeps torchvision out of this module's import (CLI start-up)
    from torchvision.datasets.utils import check_md5

    key = str(folder.resolve())
    if key in _CHECKED:
        return []
    _CHECKED.add(key)
    stage(f"comparing {name}'s files in {folder} with the official checksums")
    differ = []
    for e in expected:
        path = e.find(folder)
        official = e.md5 and path is not None and path.name == Path(e.name).name
        if official and not check_md5(str(path), e.md5):
            differ.append(e.name)
    if differ:
        log.warning(
            "%s: %s in %s differ from the official checksums; using them as they are "
            "(re-encoded copies are accepted, downloads are verified)",
            name,
            ", ".join(differ),
            folder,
        )
    return differ


def fetch(archive: Archive, root: Path) -> None:
    """Download ``archive`` into ``root`` (MD5-checked) and extract it there.

    The download lands in a temporary folder first and moves into ``root`` only once its MD5
    matched: torchvision leaves a corrupt download in place, which the next load would then
    accept as a re-encoded copy.
    """
    # lazy: keeps torchvision out of this module's import (CLI start-up)
    from torchvision.datasets.utils import download_url, extract_archive

    root.mkdir(parents=True, exist_ok=True)
    stage(f"downloading {archive.url} into {root}")
    with tempfile.TemporaryDirectory(dir=root, prefix=".download-") as tmp:
        download_url(archive.url, tmp, filename=archive.filename, md5=archive.md5)
        os.replace(Path(tmp) / archive.filename, root / archive.filename)
    if archive.extract:
        stage(f"extracting {archive.filename}")
        extract_archive(str(root / archive.filename), str(root))


def require_files(
    folder: Path,
    expected: Sequence[Expected],
    *,
    name: str,
    archives: Sequence[Archive] = (),
    download: bool = True,
    download_root: Path | None = None,
    hint: str = "",
) -> Path:
    """Make sure every expected file is in ``folder``, downloading ``archives`` if allowed.

    Args:
        folder: where the files live (e.g. ``<data-root>/cifar-10-batches-py``).
        expected: the files the loader reads.
        name: the dataset name, for messages.
        archives: official downloads that produce the files.
        download: False never touches the network (as does ``NLBENCH_OFFLINE=1``).
        download_root: where archives are fetched and extracted (default ``folder.parent``).
        hint: what to do when there is no public download (Clothing1M).

    Returns:
        ``folder``.

    Raises:
        DataMissingError: files missing and not downloadable; names files, place and URL.
    """
    target = download_root or folder.parent
    probe = _PROBING.get()
    if probe is not None:
        probe.update(folder=folder, expected=expected, archives=archives, target=target, hint=hint)
        raise ProbeStop(name)
    missing = missing_files(folder, expected)
    reason = ""
    if missing and archives and download and not offline():
        try:
            for archive in archives:
                fetch(archive, target)
        except Exception as exc:  # noqa: BLE001 - any downloader failure becomes one clear error
            reason = f" The download failed: {' '.join(str(exc).split())[:160]}."
            log.info("%s: download failed: %s", name, exc)
        missing = missing_files(folder, expected)
    if missing:
        message = missing_message(folder, target, missing, name, archives, hint, next_command(name))
        raise missing_error(message + reason, name)
    warn_checksums(folder, expected, name)
    recording = _RECORDING.get()
    if recording is not None:
        recording[name] = (folder, tuple(expected))
    return folder


def checksum_status(folder: Path, expected: Sequence[Expected]) -> dict[str, str]:
    """Per expected file: ``official`` (MD5 matches), ``differs`` (a re-encoded or regenerated
    copy, accepted), ``no checksum`` (none published) or ``missing``."""
    # lazy: keeps torchvision out of this module's import (CLI start-up)
    from torchvision.datasets.utils import check_md5

    status = {}
    for e in expected:
        stage(f"checking the checksum of {e.name}")
        path = e.find(folder)
        if path is None:
            status[e.name] = "missing"
        elif not e.md5 or path.name != Path(e.name).name:
            status[e.name] = "no checksum"
        else:
            status[e.name] = "official" if check_md5(str(path), e.md5) else "differs"
    return status


def missing_message(
    folder: Path,
    target: Path,
    missing: Sequence[Expected],
    name: str,
    archives: Sequence[Archive],
    hint: str,
    command: str | None,
) -> str:
    """One line: what is missing where, and the next step (``command`` when given: the
    ``nlbench data prepare`` line that fetches or checks it)."""
    files = ", ".join(e.name for e in missing[:6]) + (" ..." if len(missing) > 6 else "")
    urls = " ".join(a.url for a in archives)
    extract = [a for a in archives if a.extract]
    unpack = f" and extract {'it' if len(extract) == 1 else 'them'} there" if extract else ""
    get = f"download {urls} into {target}{unpack}" if archives else ""
    if command is None:
        fix = f"To fix: {get}{hint}"
    elif archives and not offline():
        fix = f"To fix: run `{command}` (it will {get}{hint})"
    else:
        fix = f"To fix: {get}{hint}, then check it with `{command}`"
    return (
        f"dataset '{name}': missing {files} in {folder}. {fix}, "
        f"or point --data-root (or $NLBENCH_DATA) at a folder that has them."
    )


_PICKLE_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),
}


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickles plain containers and numpy arrays only (no arbitrary callables)."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _PICKLE_ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load global {module}.{name}")
        if name == "_reconstruct":
            return _numpy_internal("multiarray", name)
        if name == "_frombuffer":
            return _numpy_internal("numeric", name)
        return super().find_class(module, name)


def _numpy_internal(module: str, name: str) -> Any:
    """``numpy._core.<module>.<name>`` (numpy 2) or ``numpy.core.<module>.<name>`` (numpy 1):
    pickles name either, whichever numpy wrote them."""
    import numpy as np  # lazy: keeps numpy out of this module's import (CLI start-up)

    base = "numpy._core" if hasattr(np, "_core") else "numpy.core"
    return getattr(importlib.import_module(f"{base}.{module}"), name)


def load_numpy_pickle(path: Path) -> Any:
    """Load a pickle of dicts/lists/numpy arrays (CIFAR batches) without arbitrary unpickling.

    ``latin1`` decodes the Python 2 pickles of the official CIFAR release.
    """
    with open(path, "rb") as f:
        try:
            return _NumpyOnlyUnpickler(f, encoding="latin1").load()
        except (pickle.UnpicklingError, EOFError, ValueError) as exc:
            raise DataMissingError(f"{path}: not a readable CIFAR python batch ({exc})") from exc


def numpy_safe_globals() -> list[Any]:
    """Globals that ``torch.load(weights_only=True)`` needs for pickled numpy arrays.

    Registered under both the numpy 1 and numpy 2 module names, since files written with
    either refer to their own.
    """
    import numpy as np  # lazy: keeps numpy out of this module's import (CLI start-up)

    reconstruct = _numpy_internal("multiarray", "_reconstruct")
    dtypes = [type(np.dtype(code)) for code in "bBhHiIlLqQefd?"]
    return [
        (reconstruct, "numpy.core.multiarray._reconstruct"),
        (reconstruct, "numpy._core.multiarray._reconstruct"),
        np.ndarray,
        np.dtype,
        *dtypes,
    ]
