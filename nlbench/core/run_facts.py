"""What one run actually did, resolved before training from its config alone (no data).

Three facts the record and the boards need and the static :class:`~nlbench.core.specs.MethodSpec`
cannot give: the noise setting a method may tune to (:class:`NoiseSetting`, also
``TrainContext.noise``), the run's flags (a method's ``flags_for`` sees the resolved hparams
and the noise setting: DivideMix is ``noise_tuned`` when the noise chose a value it left open,
a row of its per-setting table or its r = 0.9 and asym rules), and the known deviations from
the official code that the run's options leave in effect (``method_info["deviations"]``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from nlbench.core.config import NoiseSpec, parse_value
from nlbench.core.specs import DatasetSpec, Deviation, Hparams, MethodFlag, MethodSpec


@dataclass(frozen=True)
class NoiseSetting:
    """The noise a run trains under, as the papers name it.

    Attributes:
        type: the noise model's name (``sym``, ``sym_incl``, ``asym``, ``cifar_n``, ``none``).
        rate: the *nominal* rate of the spec (``sym:0.4`` → 0.4, ``none`` → 0.0), the number a
            paper's per-setting table is keyed by; None for real or file noise (``cifar_n``,
            ``file``, a dataset's own labels such as Clothing1M) where no rate is known.
        spec: the spec as given, e.g. ``"sym:0.4"``.
    """

    type: str
    rate: float | None
    spec: str


def noise_setting(spec: NoiseSpec, dataset: DatasetSpec | None = None) -> NoiseSetting:
    """The :class:`NoiseSetting` of a parsed ``--noise`` on ``dataset``.

    The rate is the spec's argument when it is a number in [0, 1]; ``none`` is 0.0 except on a
    dataset that brings its own noisy labels (``DatasetSpec.noise_default``), where it is None.
    """
    rate: float | None = None
    if spec.type == "none":
        own = dataset is not None and dataset.noise_default is not None
        rate = None if own else 0.0
    elif spec.arg is not None:
        value = parse_value(spec.arg)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value <= 1:
            rate = float(value)
    return NoiseSetting(spec.type, rate, str(spec))


def run_flags(
    mspec: MethodSpec, hparams: Hparams, noise: NoiseSetting, dataset: DatasetSpec
) -> list[str]:
    """The run's flags: the spec's static ``flags`` plus what ``flags_for`` computes, as the
    record's sorted strings (``flags_for`` may give plain strings; an unknown one is a
    :class:`~nlbench.core.errors.UsageError` naming the accepted flags)."""
    flags = set(mspec.flags)
    if mspec.flags_for is not None:
        flags |= MethodFlag.parse_all(mspec.flags_for(hparams, noise, dataset))
    return sorted(f.value for f in flags)


SET_RE = re.compile(r"--set\s+([a-z][a-z0-9_]*)=(\S+)")


def restore_options(deviation: Deviation) -> dict[str, Any]:
    """The ``--set key=value`` pairs of a deviation's ``restore`` text (values parsed as --set
    parses them); empty when it names no option."""
    pairs = SET_RE.findall(deviation.restore)
    return {key: parse_value(value.rstrip(",.;)")) for key, value in pairs}


# options that act only on CUDA: bf16 autocast is a no-op elsewhere, so a CPU run is fp32
CUDA_ONLY = frozenset({"amp"})


def active_deviations(
    mspec: MethodSpec, hparams: Hparams, overrides: Hparams | None = None, device: str = "cuda"
) -> list[dict[str, Any]]:
    """The deviations a run leaves in effect, for ``method_info["deviations"]``.

    A deviation whose ``restore`` names options (``--set key=value``) is in effect when any of
    those options has another value in the run; one entry per such option, with the run's
    value, the official one, whether ``--set`` chose it (``set``: False means the profile's or
    the method's default) and the deviation's ``what``. Deviations without an option are
    permanent and listed by ``nlbench show method``, not per run. On a ``device`` other than
    CUDA the :data:`CUDA_ONLY` options change nothing and are not listed.
    """
    overrides = overrides or {}
    out = []
    for dev in mspec.deviations:
        for key, official in restore_options(dev).items():
            value = hparams.get(key)
            inert = key in CUDA_ONLY and device != "cuda"
            if key in hparams and value != official and not inert:
                entry = {"option": key, "value": value, "official": official}
                out.append({**entry, "set": key in overrides, "what": dev.what})
    return out


def record_facts(prep: Any, overrides: Hparams, device: str) -> dict[str, Any]:
    """The record's ``flags`` and ``method_info["deviations"]`` of a prepared run
    (:class:`nlbench.engine.prepare.Prepared`: only its specs and hparams are read)."""
    mspec, dspec, hp = prep.method_spec, prep.dataset_spec, prep.hparams
    noise = noise_setting(prep.noise_spec, dspec)
    return {
        "flags": run_flags(mspec, hp, noise, dspec),
        "deviations": active_deviations(mspec, hp, overrides, device),
    }
