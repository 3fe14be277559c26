"""Run configuration: the noise-spec and --set parsers, RunConfig and the run_id hash."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from nlbench.core.errors import UsageError
from nlbench.core.registry import NAME_RE


@dataclass(frozen=True)
class NoiseSpec:
    """A parsed ``--noise [TYPE:]ARG``: ``0.6`` means ``sym:0.6``; ``none`` means clean labels."""

    type: str
    arg: str | None = None

    def __str__(self) -> str:
        return self.type if self.arg is None else f"{self.type}:{self.arg}"

    def rate(self) -> float:
        """The arg as a noise rate in [0, 1], or a usage error naming the spec."""
        return parse_rate(self.arg, str(self))


def parse_rate(arg: str | None, where: str) -> float:
    """Parse a rate in [0, 1] (usage error otherwise)."""
    try:
        value = float(arg) if arg is not None else math.nan
    except ValueError:
        value = math.nan
    if not (0.0 <= value <= 1.0):
        raise UsageError(f"noise '{where}': the rate must be a number in [0, 1], got {arg!r}")
    return value


def rate_arg(arg: str | None, where: str) -> None:
    """``NoiseModelSpec.check_arg`` for models whose argument is a rate in [0, 1]."""
    parse_rate(arg, where)


def optional_rate_arg(arg: str | None, where: str) -> None:
    """As :func:`rate_arg`, for models whose rate may be left out (a default applies)."""
    if arg is not None:
        rate_arg(arg, where)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def parse_noise(text: str) -> NoiseSpec:
    """Parse ``--noise``; raise UsageError on malformed input (never anything else)."""
    if not isinstance(text, str) or not text.strip():
        raise UsageError(
            "--noise: empty spec; use e.g. 0.4, sym:0.4, asym:0.4, cifar_n:worse, none"
        )
    text = text.strip()
    if _is_number(text):
        parse_rate(text, text)
        return NoiseSpec("sym", text)
    kind, sep, arg = text.partition(":")
    if not NAME_RE.match(kind):
        raise UsageError(
            f"--noise '{text}': expected [TYPE:]ARG with TYPE like sym, asym, cifar_n, file, none"
        )
    if sep and not arg:
        raise UsageError(f"--noise '{text}': '{kind}:' needs an argument after the colon")
    return NoiseSpec(kind, arg if sep else None)


def parse_value(text: str) -> Any:
    """Parse a --set value: JSON (numbers, true/false, null, lists) or a bare string."""
    lowered = text.strip().lower()
    if lowered in {"true", "false"}:
        return lowered == "true"
    if lowered in {"none", "null"}:
        return None
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return text
    if isinstance(value, float) and not math.isfinite(value):
        return text
    return value


def parse_set(items: tuple[str, ...] | list[str]) -> dict[str, Any]:
    """Parse repeated ``--set key=value`` into a dict (usage error on malformed items)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = str(item).partition("=")
        key = key.strip()
        if not sep or not NAME_RE.match(key):
            raise UsageError(f"--set '{item}': expected key=value with a lower_snake_case key")
        out[key] = parse_value(value)
    return out


@dataclass(frozen=True)
class RunConfig:
    """Everything that decides a run's result, plus where it is written.

    ``overrides`` holds --set pairs; resolved hparams live on the runner, not here.
    """

    method: str = "erm"
    dataset: str = "digits"
    noise: str = "none"
    model: str | None = None
    epochs: int | None = None
    profile: str = "quick"
    seed: int = 0
    noise_seed: int = 0
    device: str = "auto"
    out: str = "runs"
    run_id: str | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    data_root: str | None = None
    train_subset: int | None = None
    resume: bool = False
    compile: bool = False
    deterministic: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# hparams that change how a run executes, not its result (HParam(execution=True) in
# nlbench.core.hparams.BASE_DECLARED; a test keeps the two equal): eval batching (checked: digits
# ERM, 1024 vs 128, identical metrics), AMP, memory layout, extra diagnostics passes
EXECUTION_ONLY = frozenset({"amp", "channels_last", "eval_batch_size", "diagnostics"})


def comparable_hparams(hp: Mapping[str, Any]) -> dict[str, Any]:
    """The hparams that decide a run's result, comparable across nlbench versions.

    ``None`` values (an option left off, including options added after a record was written)
    and :data:`EXECUTION_ONLY` keys are dropped, tuples become lists (as in JSON). Leaderboards
    use it to group records of the same configuration; run_ids use
    :func:`nlbench.core.identity.run_key`.
    """
    return {
        k: list(v) if isinstance(v, tuple) else v
        for k, v in hp.items()
        if v is not None and k not in EXECUTION_ONLY
    }


def canonical_json(obj: Any) -> str:
    """JSON with sorted keys and no whitespace: the input of every hash."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def compute_run_id(identity: dict[str, Any]) -> str:
    """``<method>-<dataset>-<12 hex>``: readable, and a hash of ``identity`` (a run's key,
    :func:`nlbench.core.identity.run_key`)."""
    digest = hashlib.sha256(canonical_json(identity).encode()).hexdigest()[:12]
    return f"{identity['method']}-{identity['dataset']}-{digest}"
