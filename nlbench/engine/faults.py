"""Deterministic crash points for resume tests: ``NLBENCH_KILL_AT`` makes a run SIGKILL itself.

``E:S`` kills right after step S (1-based) of epoch E; ``E:end`` right after epoch E's line is
in ``epochs.jsonl`` and before its checkpoint is saved (the widest window for inconsistency);
``PHASE:U`` right after unit U (1-based) of the phase named PHASE (:mod:`nlbench.training.phases`)
did
its work and before its checkpoint.
Why not sleep-and-kill from outside: the kill point must not depend on machine load.
"""

from __future__ import annotations

import os
import re
import signal

from nlbench.core.errors import UsageError

ENV = "NLBENCH_KILL_AT"
_SPEC = re.compile(r"(\d+):(\d+|end)")
_PHASE_SPEC = re.compile(r"([a-z][a-z0-9_]*):(\d+)")


class KillSwitch:
    """Reads ``NLBENCH_KILL_AT`` once; the runner calls it after every step and epoch log."""

    def __init__(self, spec: str | None = None) -> None:
        spec = os.environ.get(ENV, "") if spec is None else spec
        self.epoch: int | None = None
        self.step: int | None = None  # None with an epoch: after the epoch's log line
        self.unit: tuple[str, int] | None = None  # (phase, unit)
        if not spec.strip():
            return
        if phase := _PHASE_SPEC.fullmatch(spec.strip()):
            self.unit = (phase.group(1), int(phase.group(2)))
            return
        match = _SPEC.fullmatch(spec.strip())
        if match is None:
            raise UsageError(
                f"{ENV}={spec!r}. Accepted: EPOCH:STEP, EPOCH:end or PHASE:UNIT, e.g. 1:3 or "
                "kfold:2."
            )
        self.epoch = int(match.group(1))
        self.step = None if match.group(2) == "end" else int(match.group(2))

    def after_step(self, epoch: int, step: int) -> None:
        if self.epoch == epoch and self.step == step:
            _die()

    def after_unit(self, phase: str, unit: int) -> None:
        if self.unit == (phase, unit):
            _die()

    def after_log(self, epoch: int) -> None:
        if self.epoch == epoch and self.step is None:
            _die()


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)
