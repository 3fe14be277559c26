"""``nlbench verify``: one training step through the official code and through nlbench.

Each adapter (one module per method) names the official repository and the files it expects,
builds the method's networks on both sides with the same initial weights, drives the official
functions from the user's own checkout (:mod:`.official`) and nlbench's method
(:mod:`.ours`) on the same batches and random draws, and reports the largest absolute
difference of every loss and updated tensor (:mod:`.report`). Methods that have no official
step to compare say why (:data:`NOT_VERIFIABLE`).
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nlbench.core.errors import NlbenchError, UsageError, unknown_name
from nlbench.verify import official
from nlbench.verify.report import Report

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Adapter:
    """Where a method's adapter lives and what it compares (``compared`` is formatted with
    ``steps``, ``bs`` and ``dtype``)."""

    module: str
    repository: str
    files: tuple[str, ...]
    compared: str


def _adapter(module: str) -> Adapter:
    mod = importlib.import_module(module)
    return Adapter(module, mod.REPO, tuple(mod.FILES), mod.COMPARED)


# method → the module of its adapter (tests add a toy one)
ADAPTERS = {
    "dividemix": "nlbench.verify.dividemix",
    "mwnet": "nlbench.verify.mwnet",
    "famus": "nlbench.verify.famus",
}


_FL = (
    "no official step to compare: Cai, Cao & Liu's project report (docs/sources.md) describes "
    "its FL settings but releases no training code; nlbench composes them from its selectors "
    "and reweighters"
)
_BASELINE = (
    "no adapter yet: one training step was compared once against the official loss code by a "
    "script outside nlbench (docs/methods/baselines.md, 'One training step against the official "
    "code', with the agreement measured); an adapter for `nlbench verify` is still to write"
)
NOT_VERIFIABLE = {
    "l2r": "not verifiable without TensorFlow: the official code "
    "(uber-research/learning-to-reweight-examples) is TensorFlow 1 graph code that needs "
    "tf.contrib (gone in TensorFlow 2; TensorFlow 1.x runs on Python 3.7 at most), and a PyTorch "
    "port of it would be nlbench's reading of that code compared with itself",
    "erm": "no official code: plain cross-entropy training, nothing method-specific to compare",
    "fl_only": _FL,
    "density_weighted": _FL,
    "fl_weighted": _FL,
    "coteaching": _BASELINE,
    "jocor": _BASELINE,
    "elr": _BASELINE,
    "forward": _BASELINE,
    "confident_learning": _BASELINE,
}


def adapter_for(method: str) -> Adapter:
    """The adapter of ``method``; a usage error for a method without one (saying why)."""
    if method in NOT_VERIFIABLE:
        raise UsageError(f"{method}: {NOT_VERIFIABLE[method]}")
    if method not in ADAPTERS:
        raise unknown_name("method to verify", method, ADAPTERS)
    return _adapter(ADAPTERS[method])


DTYPES = ("float64", "float32")


@contextlib.contextmanager
def default_dtype(name: str) -> Iterator[None]:
    """Networks, batches and both sides' arithmetic in ``name`` (float64 by default: a meta
    step's double backward amplifies float32 rounding, which float64 separates from a real
    disagreement)."""
    import torch  # lazy: keeps torch out of this module's import (CLI start-up)

    before = torch.get_default_dtype()
    torch.set_default_dtype(getattr(torch, name))
    try:
        yield
    finally:
        torch.set_default_dtype(before)


def verify(
    method: str,
    path: str | Path,
    steps: int = 1,
    batch_size: int = 4,
    seed: int = 0,
    tolerance: float = 1e-6,
    dtype: str = "float64",
) -> Any:
    """Run ``method``'s adapter against the checkout at ``path``; a :class:`Report`."""
    if steps < 1 or batch_size < 2 or dtype not in DTYPES or not tolerance >= 0:
        raise UsageError(
            f"--steps {steps}, --batch-size {batch_size}, --dtype {dtype}, --tol {tolerance}: "
            f"accepted steps ≥ 1, batch size ≥ 2, dtype {' or '.join(DTYPES)}, tol ≥ 0"
        )
    adapter = adapter_for(method)
    root = official.check_checkout(path, adapter.repository, adapter.files)
    mod = importlib.import_module(adapter.module)
    report = Report(
        method=method,
        repository=adapter.repository,
        commit=official.commit_of(root),
        compared=adapter.compared.format(steps=steps, bs=batch_size, dtype=dtype),
        tolerance=tolerance,
    )
    try:
        with default_dtype(dtype):
            report.checks = mod.verify(root, steps, batch_size, seed)
    except NlbenchError:
        raise
    except Exception as exc:  # the official code (or a version the adapter does not know)
        log.debug("verify %s failed", method, exc_info=True)
        where = "".join(traceback.format_exception_only(exc)).strip().splitlines()[-1]
        raise NlbenchError(
            f"{method}: the comparison with {root} stopped: {where} (nlbench -vv verify ... "
            "shows where)"
        ) from None
    return report
