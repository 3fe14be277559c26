"""A run's identity: what its run_id hashes, so that ids do not drift as nlbench grows.

The run_id is ``<method>-<dataset>-<12 hex>`` of the canonical JSON of the *key*: method,
dataset, noise spec (and the noise model's version when it is not 1), profile, seed, noise
seed, train subset and every hyper-parameter whose
resolved value differs from its declared default, execution-only ones left out (as DomainBed
names a run directory by a hash of its arguments). So:

* adding a hyper-parameter with a default (the behaviour so far) changes no run_id;
* execution settings (``HParam(execution=True)``: AMP, channels-last, eval batching,
  diagnostics) change no run_id: the record still stores them;
* anything that changes the result changes the run_id, a profile's new value included: a
  record is never silently reused for a run whose resolved hparams differ.

* anything read from a file enters by the SHA-256 of the file's contents, not its path
  (``inputs``: ``{"noise": {PATH: HEX}}`` for ``file:PATH`` noise, :func:`input_hashes`): a
  changed file is a new run, and ``--resume`` refuses a checkpoint of other contents, naming
  the file. A run that reads no file has no ``inputs`` and keeps the run_id it always had.
  CIFAR-N's label files stay out: they are the published files of a named variant, and the
  record's ``noise.labels_sha256`` (checked again on ``--resume``) holds what they gave.

The key is computed from the record's ``config`` alone (resolved hparams, ``inputs``), so it can
be recomputed from any record (:func:`record_run_id`), which is what ``nlbench migrate-records``
does when a declared default changes.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from nlbench.core.config import canonical_json, compute_run_id
from nlbench.core.errors import NlbenchError, UsageError
from nlbench.core.hparam_types import HParam
from nlbench.core.hparams import check_hparams, declared_hparams
from nlbench.core.specs import MethodSpec

KEY_FIELDS = ("method", "dataset", "noise", "profile", "seed", "noise_seed", "train_subset")


def identity_hparams(hp: Mapping[str, Any], declared: Mapping[str, HParam]) -> dict[str, Any]:
    """The hparams that name a run: those not at their declared default, minus execution-only.

    A key nobody declared (a dataset profile's extra) always counts.
    """
    out = {}
    for key, value in hp.items():
        decl = declared.get(key)
        if decl is None or not (decl.execution or _at_default(key, value, decl)):
            out[key] = value
    return out


def _at_default(key: str, value: Any, decl: HParam) -> bool:
    return canonical_json(value) == canonical_json(decl.coerce(key, decl.default))


def run_key(
    config: Mapping[str, Any], hp: Mapping[str, Any], declared: Mapping[str, HParam]
) -> dict[str, Any]:
    """The dict the run_id hashes (``config`` holds :data:`KEY_FIELDS` and, for a run that reads
    files, ``inputs``; ``hp`` is resolved)."""
    key = {**{f: config.get(f) for f in KEY_FIELDS}, "hparams": identity_hparams(hp, declared)}
    if config.get("inputs"):  # only then: runs that read no file keep their run_ids
        key["inputs"] = config["inputs"]
    version = config.get("noise_version")  # NoiseModelSpec.version; counts only when not 1
    if version not in (None, 1):
        key["noise_version"] = version
    return key


def file_sha256(path: str | os.PathLike, what: str) -> str:
    """SHA-256 of a file's bytes; a usage error naming ``what`` when it cannot be read."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    except OSError as exc:
        raise UsageError(
            f"{what}: cannot read {path} ({exc.strerror or type(exc).__name__}). Accepted: a "
            "readable file"
        ) from None
    return digest.hexdigest()


def input_hashes(reads: Mapping[str, Iterable[str | os.PathLike]], what: str) -> dict[str, Any]:
    """``{input: {path: sha256}}`` for every file a run reads (``reads``: input → paths)."""
    out: dict[str, Any] = {}
    for name, paths in reads.items():
        hashed = {str(Path(p)): file_sha256(Path(p), what) for p in paths}
        if hashed:
            out[name] = hashed
    return out


def changed_inputs(old: Any, new: Mapping[str, Any]) -> str:
    """``""``, or which file a stored key or config read with other contents than ``new``."""
    stored = old.get("inputs") if isinstance(old, Mapping) else None
    before: Mapping[str, Any] = stored if isinstance(stored, Mapping) else {}
    for name, files in sorted((new.get("inputs") or {}).items()):
        then_files = before.get(name)
        then: Mapping[str, Any] = then_files if isinstance(then_files, Mapping) else {}
        for path, digest in sorted(files.items()):
            was = then.get(path)
            if was not in (None, digest):
                return (
                    f"{path} ({name}) has changed: sha256 {str(was)[:12]}… then, {digest[:12]}… now"
                )
    return ""


def record_key(config: Mapping[str, Any], mspec: MethodSpec) -> dict[str, Any]:
    """The key of a record's ``config`` under today's declarations of ``mspec``.

    Raises NlbenchError (a UsageError naming the hparam) when a stored value is not one the
    declaration accepts, or the config is not a mapping with a mapping of hparams.
    """
    hp = config.get("hparams") if isinstance(config, Mapping) else None
    if not isinstance(hp, Mapping):
        raise NlbenchError("record config has no mapping of hparams")
    declared = declared_hparams(mspec)
    return run_key(config, check_hparams(dict(hp), declared), declared)


def record_run_id(config: Mapping[str, Any], mspec: MethodSpec) -> str:
    """The run_id this nlbench gives the run a record's ``config`` describes."""
    return compute_run_id(record_key(config, mspec))


def same_run(config: Any, key: Mapping[str, Any], mspec: MethodSpec) -> bool:
    """Whether a stored record ``config`` is the run ``key`` names (False if unreadable)."""
    try:
        return canonical_json(record_key(config, mspec)) == canonical_json(key)
    except NlbenchError:
        return False


def execution_note(config: Any, hp: Mapping[str, Any], mspec: MethodSpec) -> str:
    """``""``, or what a finished record of the same run executed differently from ``hp``.

    Execution settings are not part of the run_id, so asking for ``diagnostics=true`` on a
    finished run returns that run's record; the note says so and how to run it again.
    """
    declared = declared_hparams(mspec)
    stored = config.get("hparams") if isinstance(config, Mapping) else None
    stored = stored if isinstance(stored, Mapping) else {}
    diff = [
        f"{k}={json.dumps(stored.get(k))} (asked: {json.dumps(v)})"
        for k, v in hp.items()
        if declared.get(k, HParam(v)).execution and stored.get(k) != v
    ]
    if not diff:
        return ""
    return f"; it ran with {', '.join(diff)}: pass another --out to run it again that way"
