"""Test helpers for nlbench and for plugin authors (installed as a ``pytest11`` plugin).

Fixtures:
    nlbench_run: ``nlbench_run(method="erm", noise="0.4", **config) -> record``, a tiny
        end-to-end run on the embedded ``digits`` dataset written under ``tmp_path``.

Functions:
    check_method_contract(name): build a registered method on tiny data and check the contract,
        "SIGKILL at a deterministic point + ``--resume`` = the uninterrupted run" included.
        ``dataset=`` checks it on another dataset, with that dataset's shapes.
    check_resume(name, out, reference): that last check alone.
    check_bad_hparams(name, {key: [bad values]}): each is a usage error naming the key.
    build_method(cfg): a method on the runner's own context (:func:`nlbench.api.build_method`).

Written on :mod:`nlbench.api` alone, as a plugin is, and imports it (and torch) only inside
the helpers: pytest loads this module in every environment nlbench is installed in, and
collecting tests there must not pay for torch.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import signal
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

import pytest

if TYPE_CHECKING:
    from nlbench.api import Method, RunConfig, TrainContext


class _Tiny(TypedDict):
    """The RunConfig fields that make a run tiny (typed, so ``**TINY`` type-checks)."""

    epochs: int
    train_subset: int


TINY: _Tiny = {"epochs": 2, "train_subset": 300}
RESUME_ID = "contract-resume"


def tiny_run(
    tmp_path: str | os.PathLike[str], method: str = "erm", noise: str = "0.4", **kwargs: Any
) -> dict[str, Any]:
    """Run ``method`` for 2 epochs on 300 digits samples (``dataset=`` another); return the
    record."""
    # lazy: keeps numpy, torch out of this module's import (CLI start-up)
    from nlbench.api import run

    config = {
        "method": method,
        "dataset": "digits",
        "noise": noise,
        "out": str(tmp_path),
        "device": "cpu",
        **TINY,
        **kwargs,
    }
    return run(**config)


@pytest.fixture
def nlbench_run(tmp_path: os.PathLike[str]) -> Callable[..., dict[str, Any]]:
    """A callable running a tiny end-to-end run in a temporary results directory."""

    def _run(method: str = "erm", noise: str = "0.4", **kwargs: Any) -> dict[str, Any]:
        return tiny_run(tmp_path, method, noise, **kwargs)

    return _run


def check_method_contract(
    name: str, tmp_path: str | os.PathLike[str] | None = None, **overrides: Any
) -> dict[str, Any]:
    """Check that method ``name`` honours the runner's contract; return a tiny run's record.

    Checks: it trains end to end; every epoch has finite loss and an accuracy in [0, 1];
    its networks predict the right shape; its state (:meth:`Method.state_dict`) survives
    ``torch.save`` and a ``weights_only`` load; a run SIGKILLed mid-epoch and resumed gives
    the uninterrupted run's per-epoch metrics and method facts (:func:`check_resume`). Runs
    use one torch thread so the forked run computes exactly as this process does.
    """
    # lazy: keeps numpy, torch out of this module's import (CLI start-up)
    from nlbench.api import MethodFlag, get_spec

    spec = get_spec("methods", name)
    out = Path(tmp_path) if tmp_path is not None else Path(tempfile.mkdtemp())
    with one_thread():
        record = tiny_run(out, name, "0.4", **overrides)
        assert record["status"] == "done", record.get("error")
        for epoch in record["epochs"]:
            loss = epoch["train_loss"]
            assert loss is not None and math.isfinite(loss), f"{name}: non-finite loss {loss}"
            assert 0.0 <= epoch["test_acc"] <= 1.0
        check_predict_and_state(name, out, **overrides)
        assert all(isinstance(f, MethodFlag) for f in spec.flags), f"{name}: unknown flags"
        check_resume(name, out, record, **overrides)
    return record


def check_predict_and_state(name: str, out: str | os.PathLike[str], **overrides: Any) -> None:
    """``predict`` gives ``(N, classes)`` logits for a batch of the dataset's images (shapes
    from the run's context, so any dataset), and the state round-trips a ``weights_only`` load.
    """
    import torch  # lazy: keeps torch out of this module's import (CLI start-up)

    method, ctx = build_method(tiny_config(name, out, **overrides))
    x = torch.zeros(4, ctx.in_chans, ctx.image_size, ctx.image_size, device=ctx.device)
    shape = tuple(method.predict(x).shape)
    assert shape == (4, ctx.num_classes), (
        f"{name}: predict must return (N, C) logits; got {shape} for {ctx.num_classes} classes"
    )
    buf = io.BytesIO()
    torch.save(method.state_dict(), buf)
    buf.seek(0)
    _build_tiny(name, out, **overrides).load_state_dict(torch.load(buf, weights_only=True))


def comparable_epochs(epochs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per-epoch metrics without the timing fields."""
    # lazy: keeps numpy, torch out of this module's import (CLI start-up)
    from nlbench.api import TIMING_METRICS

    return [{k: v for k, v in e.items() if k not in TIMING_METRICS} for e in epochs]


def check_resume(
    name: str,
    out: str | os.PathLike[str],
    reference: dict[str, Any],
    kill_at: str | None = None,
    timeout: float = 600,
    **overrides: Any,
) -> dict[str, Any]:
    """SIGKILL a forked tiny run of ``name`` at ``kill_at`` (``EPOCH:STEP`` or ``EPOCH:end``,
    default: after the first step of the second epoch), resume it here and check its epochs
    and method facts equal ``reference``'s (the uninterrupted run of the same config). Returns
    the record."""
    # lazy: keeps numpy, torch out of this module's import (CLI start-up)
    from nlbench.api import KILL_AT_ENV, read_record

    if not hasattr(os, "fork"):  # pragma: no cover - Windows
        return reference
    n = len(reference["epochs"])
    kill_at = kill_at or ("1:1" if n >= 2 else "0:1")

    def killed() -> None:
        tiny_run(out, name, "0.4", run_id=RESUME_ID, **overrides)

    _run_killed(killed, KILL_AT_ENV, kill_at, timeout)
    run_dir = Path(out) / RESUME_ID
    if (run_dir / "run.json").exists():
        assert read_record(run_dir / "run.json")["status"] == "running"
    resumed = tiny_run(out, name, "0.4", run_id=RESUME_ID, resume=True, **overrides)
    assert resumed["status"] == "done", resumed.get("error")
    assert comparable_epochs(resumed["epochs"]) == comparable_epochs(reference["epochs"]), (
        f"{name}: killed at {kill_at} and resumed, the epochs differ from the uninterrupted run"
    )
    assert resumed.get("method_facts") == reference.get("method_facts"), (
        f"{name}: killed at {kill_at} and resumed, its method facts differ from the "
        f"uninterrupted run's: {resumed.get('method_facts')} vs {reference.get('method_facts')}"
    )
    lines = (run_dir / "epochs.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == n, f"{name}: epochs.jsonl has {len(lines)} lines, expected {n}"
    return resumed


def _run_killed(fn: Callable[[], object], env: str, kill_at: str, timeout: float) -> None:
    """Run ``fn`` in a forked child that SIGKILLs itself at ``kill_at``; wait for its death."""
    with warnings.catch_warnings():  # Python 3.12 warns about fork in threaded processes
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # the child: never returns into the caller's stack
        code = 3
        try:
            os.environ[env] = kill_at
            fn()
        except BaseException:  # noqa: BLE001 - reported through the exit code
            code = 4
        finally:
            os._exit(code)
    deadline = time.monotonic() + timeout
    while (done := os.waitpid(pid, os.WNOHANG))[0] == 0:
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            raise AssertionError(f"the run to kill at {kill_at} took over {timeout:.0f} s")
        time.sleep(0.02)
    status = done[1]
    killed = os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    assert killed, f"the run never reached the kill point {kill_at} (exit status {status})"


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """One torch thread: a process forked after multi-threaded OpenMP work can hang."""
    import torch  # lazy: keeps torch out of this module's import (CLI start-up)

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def build_method(cfg: RunConfig) -> tuple[Method, TrainContext]:
    """A method built with the runner's real context for ``cfg`` on the CPU (unit tests of one
    method). Returns ``(method, ctx)``; ``ctx.scan()`` runs the runner's own no-augmentation
    scan, and ``ctx`` has the dataset's ``num_classes``, ``in_chans`` and ``image_size``.
    """
    # lazy: keeps numpy, torch out of this module's import (CLI start-up)
    from nlbench.api import build_method as _build

    return _build(cfg, "cpu")


def tiny_config(name: str, out: str | os.PathLike[str], **overrides: Any) -> RunConfig:
    """The RunConfig of :func:`tiny_run` (digits unless ``dataset=``), for building by hand."""
    # lazy: keeps numpy, torch out of this module's import (CLI start-up)
    from nlbench.api import RunConfig

    fields = {"method": name, "dataset": "digits", "noise": "0.4", "out": str(out)}
    if "set" in overrides:  # as nlbench.api.run takes it: ``set=`` for ``overrides=``
        overrides = {**overrides, "overrides": dict(overrides["set"])}
        del overrides["set"]
    return RunConfig(**{**fields, "device": "cpu", **TINY, **overrides})


def _build_tiny(name: str, out: str | os.PathLike[str], **overrides: Any) -> Method:
    return build_method(tiny_config(name, out, **overrides))[0]


def check_bad_hparams(
    name: str,
    bad: dict[str, list[Any]],
    dataset: str = "digits",
    settings: dict[str, Any] | None = None,
) -> None:
    """Each bad ``--set`` value of method ``name`` is refused before any data loads.

    ``bad`` maps a key to values its declaration must reject (wrong type, out of range). The
    error is the usage error the CLI prints as one line (exit 2), naming the key and what is
    accepted. ``settings`` are ``--set`` values every check runs with: ``{"loss": "gce"}``
    checks that loss's own settings (``q``), as ``selector``/``reweighter`` do a component's.
    A key the run does not accept at all fails the check: its "unknown key" error proves nothing.
    """
    # lazy: keeps numpy, torch out of this module's import (CLI start-up)
    from nlbench.api import RunConfig, UsageError, resolve_config

    fixed = dict(settings or {})
    accepted = resolve_config(RunConfig(method=name, dataset=dataset, overrides=fixed))["hparams"]
    where = name + "".join(f" --set {k}={v}" for k, v in fixed.items())
    for key, values in bad.items():
        assert key in accepted, (
            f"{where}: '{key}' is not a setting of this run (a loss's or selector's own "
            "setting needs settings={'loss': NAME}); nothing to check"
        )
        for value in values:
            cfg = RunConfig(method=name, dataset=dataset, overrides={**fixed, key: value})
            try:
                resolve_config(cfg)
            except UsageError as exc:
                text, asked = str(exc), f"{where}: --set {key}={value!r}"
                assert key in text, f"{asked}: error names no key: {exc}"
                assert "accept" in text.lower(), f"{asked}: error says not what is accepted: {exc}"
                assert "\n" not in text.strip(), f"{asked}: error is not one line: {exc}"
            else:
                pytest.fail(f"{where}: --set {key}={value!r} was accepted")


def __getattr__(name: str) -> Any:
    """``TIMING_FIELDS`` (the per-epoch fields that differ between any two runs), read from
    :mod:`nlbench.api` on first use so that loading this pytest plugin imports no torch."""
    if name == "TIMING_FIELDS":
        from nlbench.api import TIMING_METRICS  # lazy: resolved on first use (PEP 562)

        return TIMING_METRICS
    raise AttributeError(f"module 'nlbench.testing' has no attribute {name!r}")
