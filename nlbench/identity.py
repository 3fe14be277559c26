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

The key is computed from resolved hparams alone, so it can be recomputed from any record
(:func:`record_run_id`), which is what ``nlbench migrate-records`` does when a declared
default changes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from nlbench.config import canonical_json, compute_run_id
from nlbench.errors import NlbenchError
from nlbench.hparam_types import HParam
from nlbench.specs import MethodSpec

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
    """The dict the run_id hashes (``config`` holds :data:`KEY_FIELDS`; ``hp`` is resolved).

    ``noise_version`` counts only when it is not 1 (``NoiseModelSpec.version``): every record
    of a noise model whose meaning never changed keeps its run_id, and a record without it is
    one of version 1.
    """
    key = {**{f: config.get(f) for f in KEY_FIELDS}, "hparams": identity_hparams(hp, declared)}
    version = config.get("noise_version")
    if version not in (None, 1):
        key["noise_version"] = version
    return key


def record_key(config: Mapping[str, Any], mspec: MethodSpec) -> dict[str, Any]:
    """The key of a record's ``config`` under today's declarations of ``mspec``.

    Raises NlbenchError (a UsageError naming the hparam) when a stored value is not one the
    declaration accepts, or the config is not a mapping with a mapping of hparams.
    """
    from nlbench.hparams import check_hparams, declared_hparams

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
    from nlbench.hparams import declared_hparams

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
