"""Hook specifications: the whole plugin surface of nlbench.

Registration hooks are called once per process with a ``register`` callback (the llm/datasette
style); observer hooks never change results.

The annotations are the public contract: a ``register`` callback takes the spec class of its
registry kind. They are imported for type checkers only, so ``from nlbench import hookimpl``
stays free of torch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    import click

    from nlbench.core.specs import (
        DatasetSpec,
        ExecutorSpec,
        LossSpec,
        MethodSpec,
        ModelSpec,
        NoiseModelSpec,
        ReweighterSpec,
        SelectorSpec,
    )
    from nlbench.engine.runner import RunState

hookspec = pluggy.HookspecMarker("nlbench")
hookimpl = pluggy.HookimplMarker("nlbench")


@hookspec
def register_datasets(register: Callable[[DatasetSpec], None]) -> None:
    """Register datasets: ``register(DatasetSpec(...))``."""


@hookspec
def register_noise_models(register: Callable[[NoiseModelSpec], None]) -> None:
    """Register label or input noise models: ``register(NoiseModelSpec(...))``."""


@hookspec
def register_models(register: Callable[[ModelSpec], None]) -> None:
    """Register network architectures: ``register(ModelSpec(...))``."""


@hookspec
def register_selectors(register: Callable[[SelectorSpec], None]) -> None:
    """Register sample selectors (subset choosers): ``register(SelectorSpec(...))``."""


@hookspec
def register_reweighters(register: Callable[[ReweighterSpec], None]) -> None:
    """Register per-sample loss reweighters: ``register(ReweighterSpec(...))``."""


@hookspec
def register_losses(register: Callable[[LossSpec], None]) -> None:
    """Register per-sample training losses: ``register(LossSpec(...))`` (``--set loss=NAME``).

    A loss with ``set_epoch(epoch)`` is told each epoch as it starts (:class:`LossSpec`)."""


@hookspec
def register_methods(register: Callable[[MethodSpec], None]) -> None:
    """Register training methods: ``register(MethodSpec(...))``."""


@hookspec
def register_executors(register: Callable[[ExecutorSpec], None]) -> None:
    """Register sweep executors: ``register(ExecutorSpec(...))``."""


@hookspec
def register_commands(cli: click.Group) -> None:
    """Add click commands to the ``nlbench`` command group.

    :param cli: the root :class:`click.Group`; call ``cli.command()`` or ``cli.add_command``.
    """


@hookspec
def run_started(run: RunState) -> None:
    """Observe the start of a run, after data, noise and method are built.

    :param run: the :class:`nlbench.engine.runner.RunState` (config, noise report, run directory).
    """


@hookspec
def epoch_finished(
    run: RunState, epoch: int, metrics: dict[str, object]
) -> dict[str, object] | None:
    """Observe one finished epoch; may return new metrics added to the epoch record.

    :param run: the :class:`nlbench.engine.runner.RunState`.
    :param epoch: zero-based epoch index.
    :param metrics: a copy of the epoch's metrics so far (changing it changes nothing).
    :return: a dict of *new* JSON-serialisable keys, or ``None``; a key the runner or another
        observer already wrote is a :class:`~nlbench.core.errors.PluginError` (results cannot be
        rewritten by an observer).
    """


@hookspec
def run_finished(run: RunState, record: dict[str, object]) -> None:
    """Observe a finished run with its final record (read only).

    :param run: the :class:`nlbench.engine.runner.RunState`.
    :param record: a copy of the run record as written to ``run.json``.
    """


@hookspec
def run_failed(run: RunState, error: BaseException) -> None:
    """Observe a run that failed or was interrupted (Ctrl-C), so the observer can release what
    it holds (open writers, files); ``run_finished`` is not called for it.

    :param run: the :class:`nlbench.engine.runner.RunState`.
    :param error: the exception that ended the run (:class:`nlbench.engine.runner.Interrupted` for
        Ctrl-C); the record already says ``failed`` or ``interrupted``. An error raised here is
        logged and does not hide the run's own.
    """
