"""Test helpers for nlbench and for plugin authors (installed as a ``pytest11`` plugin).

Fixtures:
    nlbench_run: ``nlbench_run(method="erm", noise="0.4", **config) -> record``, a tiny
        end-to-end run on the embedded ``digits`` dataset written under ``tmp_path``.

Functions:
    check_method_contract(name): build a registered method on tiny data and check the contract.
    check_bad_hparams(name, {key: [bad values]}): each is a usage error naming the key.
    build_method(cfg): a method on the runner's own context (:mod:`nlbench.context`).
"""

from __future__ import annotations

import io
import math
from typing import Any

import pytest
import torch

TINY = {"epochs": 2, "train_subset": 300}


def tiny_run(tmp_path, method: str = "erm", noise: str = "0.4", **kwargs: Any) -> dict[str, Any]:
    """Run ``method`` for 2 epochs on 300 digits samples; return the record."""
    from nlbench.runner import run

    config = {"method": method, "dataset": "digits", "noise": noise, "out": str(tmp_path),
              "device": "cpu", **TINY, **kwargs}  # fmt: skip
    return run(**config)


@pytest.fixture
def nlbench_run(tmp_path):
    """A callable running a tiny end-to-end run in a temporary results directory."""

    def _run(method: str = "erm", noise: str = "0.4", **kwargs: Any) -> dict[str, Any]:
        return tiny_run(tmp_path, method, noise, **kwargs)

    return _run


def check_method_contract(name: str, tmp_path=None, **overrides: Any) -> dict[str, Any]:
    """Check that method ``name`` honours the runner's contract; return a tiny run's record.

    Checks: it trains end to end; every epoch has finite loss and an accuracy in [0, 1];
    its networks predict the right shape; its extra state survives ``torch.save`` and a
    ``weights_only`` load (so checkpoints never need arbitrary unpickling).
    """
    import tempfile
    from pathlib import Path

    from nlbench.plugins import get_host

    spec = get_host().get("methods", name)
    out = Path(tmp_path) if tmp_path is not None else Path(tempfile.mkdtemp())
    record = tiny_run(out, name, "0.4", **overrides)
    assert record["status"] == "done", record.get("error")
    for epoch in record["epochs"]:
        loss = epoch["train_loss"]
        assert loss is not None and math.isfinite(loss), f"{name}: non-finite loss {loss}"
        assert 0.0 <= epoch["test_acc"] <= 1.0
    method = _build_tiny(name, out)
    x = torch.zeros(4, 1, 8, 8)
    assert method.predict(x).shape == (4, 10), f"{name}: predict must return (N, C) logits"
    buf = io.BytesIO()
    torch.save(method.extra_state(), buf)
    buf.seek(0)
    torch.load(buf, weights_only=True)
    assert spec.flags <= {"clean_meta", "two_net", "noise_tuned"}, f"{name}: unknown flags"
    return record


def build_method(cfg: Any) -> tuple[Any, Any]:
    """A method built with the runner's real context for ``cfg`` (unit tests of one method).

    Returns ``(method, ctx)``; ``ctx.scan()`` runs the runner's own no-augmentation scan.
    Built on the public :func:`nlbench.context.build_method`, as the runner is.
    """
    from nlbench import context
    from nlbench.plugins import get_host
    from nlbench.prepare import prepare

    host = get_host()
    method, ctx, _ = context.build_method(prepare(cfg, host), torch.device("cpu"), host)
    return method, ctx


def _build_tiny(name: str, out) -> Any:
    from nlbench.config import RunConfig

    cfg = RunConfig(method=name, dataset="digits", noise="0.4", out=str(out), device="cpu", **TINY)
    return build_method(cfg)[0]


def check_bad_hparams(name: str, bad: dict[str, list[Any]], dataset: str = "digits") -> None:
    """Each bad ``--set`` value of method ``name`` is refused before any data loads.

    ``bad`` maps a key to values its declaration must reject (wrong type, out of range). The
    error is the usage error the CLI prints as one line (exit 2), naming the key.
    """
    from nlbench.config import RunConfig
    from nlbench.errors import UsageError
    from nlbench.plugins import get_host
    from nlbench.prepare import run_identity

    host = get_host()
    for key, values in bad.items():
        for value in values:
            cfg = RunConfig(method=name, dataset=dataset, overrides={key: value})
            try:
                run_identity(cfg, host)
            except UsageError as exc:
                assert key in str(exc), f"{name}: --set {key}={value!r}: error names no key: {exc}"
            else:
                pytest.fail(f"{name}: --set {key}={value!r} was accepted")
