"""What the runner's parts share: the run's state, the progress display and the interrupt.

Kept apart from :mod:`nlbench.engine.runner` so that the parts (:mod:`nlbench.engine.run_io`,
:mod:`nlbench.engine.epoch_loop`, :mod:`nlbench.engine.evaluation`) import it without importing the
runner.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch

from nlbench.core.config import RunConfig
from nlbench.core.errors import Interrupted as Interrupted  # re-exported: 0.1 imported it here
from nlbench.engine.prepare import Prepared
from nlbench.training.method import Method


class Progress(Protocol):
    """What the runner reports to a display (the CLI's rich progress implements it)."""

    def start(self, run: RunState, total_epochs: int) -> None: ...
    def epoch_start(self, epoch: int, steps: int) -> None: ...
    def step(self) -> None: ...
    def epoch_end(self, epoch: int, metrics: dict[str, Any]) -> None: ...


class NullProgress:
    """No display (notebooks, sweeps, every rank but 0)."""

    def start(self, run: RunState, total_epochs: int) -> None: ...
    def epoch_start(self, epoch: int, steps: int) -> None: ...
    def step(self) -> None: ...
    def epoch_end(self, epoch: int, metrics: dict[str, Any]) -> None: ...


@dataclass
class RunState:
    """What observers see: the config, resolved inputs and the run directory."""

    cfg: RunConfig
    prep: Prepared
    run_dir: Path
    device: torch.device
    method: Method | None = None
    epochs: list[dict[str, Any]] = field(default_factory=list)

    @property
    def run_id(self) -> str:
        return self.prep.run_id
