"""Learning-rate schedules as pure functions of the step (the runner sets them every step)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from nlbench.core.errors import UsageError

SCHEDULERS = ("multistep", "cosine", "onecycle", "constant")


def milestone_epochs(milestones: list[float], epochs: int) -> list[float]:
    """Milestones as epochs; values below 1 are fractions of the run (scale with --epochs)."""
    return [m * epochs if isinstance(m, float) and m < 1 else float(m) for m in milestones]


def lr_at(
    epoch_pos: float, hp: Mapping[str, Any], steps_per_epoch: int = 0
) -> tuple[float, float | None]:
    """(learning rate, momentum or None) at ``epoch_pos`` (epochs done, fractional).

    cosine and onecycle run over the whole run, or with ``schedule_steps`` over that many
    optimizer steps (``epoch_pos × steps_per_epoch``: exact when every epoch has the same
    number of steps, as ERM's do) and then stay at their end values (Rajagopal et al.).

    multistep: lr × gamma^k after each milestone (the papers' schedules).
    cosine: half-cosine from lr to 0 over the run.
    onecycle: linear warm-up to lr over ``onecycle_pct`` of the run, then linear decay to
        lr/``onecycle_div``/100; momentum cycles inversely between 0.95 and 0.85 (Rajagopal et
        al., docs/sources.md).
    constant: lr.
    """
    base, epochs = float(hp["lr"]), int(hp["epochs"])
    t = min(max(epoch_pos / max(1, epochs), 0.0), 1.0)
    name = hp.get("scheduler", "multistep")
    if hp.get("schedule_steps") and steps_per_epoch > 0:
        t = min(max(epoch_pos * steps_per_epoch / int(hp["schedule_steps"]), 0.0), 1.0)
    if name == "multistep":
        k = sum(epoch_pos >= m for m in milestone_epochs(list(hp.get("milestones", [])), epochs))
        return base * float(hp.get("gamma", 0.1)) ** k, None
    if name == "cosine":
        return base * 0.5 * (1 + math.cos(math.pi * t)), None
    if name == "onecycle":
        return _onecycle(t, base, hp)
    if name == "constant":
        return base, None
    raise UsageError(f"unknown scheduler '{name}'. Accepted: {', '.join(SCHEDULERS)}.")


def _onecycle(t: float, base: float, hp: Mapping[str, Any]) -> tuple[float, float]:
    pct = float(hp.get("onecycle_pct", 0.3))
    div = float(hp.get("onecycle_div", 25.0))
    lo, hi = 0.85, 0.95
    start, end = base / div, base / div / 100
    if t <= pct:
        frac = t / pct if pct > 0 else 1.0
        return start + (base - start) * frac, hi - (hi - lo) * frac
    frac = (t - pct) / (1 - pct) if pct < 1 else 1.0
    return base + (end - base) * frac, lo + (hi - lo) * frac
