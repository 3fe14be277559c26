"""What a verification found: per check, the largest absolute difference of each quantity.

A *check* is one comparison the adapter ran (e.g. "MixMatch step, net 1"); its quantities are
losses, updated weights, batch-norm statistics, ... each reduced to the largest absolute
difference between the official code and nlbench over every element. A quantity passes when
``diff ≤ tol · max(1, largest |official value|)``: absolute for values up to one, relative for
larger ones (random initial weights give logits and losses in the hundreds, where float32's
spacing alone is 1e-5); a quantity nlbench and the official code disagree on
in shape (or that one side lacks) is reported as a mismatch, never silently dropped.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Quantity:
    """One compared quantity: ``diff`` is the largest absolute difference (inf on mismatch),
    ``scale`` the largest absolute official value."""

    name: str
    diff: float
    size: int
    note: str = ""
    scale: float = 0.0

    def within(self, tol: float) -> bool:
        return self.diff <= tol * max(1.0, self.scale)  # NaN is never within


@dataclass
class Check:
    """One comparison an adapter ran, with the quantities it compared."""

    name: str
    quantities: list[Quantity] = field(default_factory=list)

    def worst(self) -> float:
        return max((q.diff for q in self.quantities), default=0.0)


@dataclass
class Report:
    """Everything ``nlbench verify`` prints (and writes with ``--json``)."""

    method: str
    repository: str
    commit: str
    compared: str
    tolerance: float
    checks: list[Check] = field(default_factory=list)

    def max_diff(self) -> float:
        return max((c.worst() for c in self.checks), default=0.0)

    def failures(self) -> list[tuple[str, Quantity]]:
        """Every quantity outside the tolerance (a NaN difference is one too)."""
        return [
            (c.name, q) for c in self.checks for q in c.quantities if not q.within(self.tolerance)
        ]

    @property
    def ok(self) -> bool:
        return bool(self.checks) and not self.failures()

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["max_diff"] = _finite(self.max_diff())
        out["ok"] = self.ok
        for check in out["checks"]:
            for q in check["quantities"]:
                q["diff"] = _finite(q["diff"])
                q["scale"] = _finite(q["scale"])
        return out


def _finite(x: float) -> float | str:
    """JSON has no inf/NaN: those become strings."""
    return x if math.isfinite(x) else str(x)


def max_abs_diff(a: Any, b: Any) -> tuple[float, int, str, float]:
    """Largest ``|a − b|`` over two tensors (or numbers): (diff, elements, note, max ``|a|``).

    Shapes that differ give ``inf`` and a note naming both; values are compared in float64.
    """
    import torch  # lazy: keeps torch out of this module's import (CLI start-up)

    ta = torch.as_tensor(a).detach().to("cpu", torch.float64)
    tb = torch.as_tensor(b).detach().to("cpu", torch.float64)
    if ta.shape != tb.shape:
        note = f"shape {tuple(ta.shape)} (official) vs {tuple(tb.shape)} (nlbench)"
        return math.inf, 0, note, 0.0
    if ta.numel() == 0:
        return 0.0, 0, "", 0.0
    return float((ta - tb).abs().max()), int(ta.numel()), "", float(ta.abs().max())


def compare(name: str, official: Any, ours: Any) -> Quantity:
    """One quantity from a pair of tensors."""
    diff, size, note, scale = max_abs_diff(official, ours)
    return Quantity(name, diff, size, note, scale)


def compare_tensors(
    name: str, official: Iterable[Any], ours: Iterable[Any], what: str = "tensors"
) -> Quantity:
    """One quantity over two aligned lists of tensors (a network's weights): the worst one,
    each tensor measured against its own scale."""
    a, b = list(official), list(ours)
    if len(a) != len(b):
        return Quantity(name, math.inf, 0, f"{len(a)} official {what} vs {len(b)} in nlbench")
    worst = Quantity(name, 0.0, 0)
    size, notes = 0, []
    for i, (x, y) in enumerate(zip(a, b)):
        diff, n, note, scale = max_abs_diff(x, y)
        size += n
        if note:
            notes.append(f"#{i}: {note}")
        ratio = diff / max(1.0, scale) if not math.isnan(diff) else math.inf
        if ratio >= worst.diff / max(1.0, worst.scale):
            worst = Quantity(name, diff, 0, "", scale)
    worst.size, worst.note = size, "; ".join(notes)
    return worst
