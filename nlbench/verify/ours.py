"""nlbench's side of a verification: a method built as a run builds it, on given networks.

:func:`build_method` resolves the method's hyper-parameters exactly as ``nlbench run`` does
(``--set`` overrides on the embedded digits set, whose data the comparison never touches) and
builds the method on a context whose model factory hands out the networks the adapter made, so
both sides start from the same weights. The steps themselves are then driven directly
(``method.train_step(batch)`` or a learner's ``step``) on batches the adapter supplies.
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Iterable, Sequence
from typing import Any

import torch
from torch import nn

from nlbench.core.config import RunConfig
from nlbench.core.errors import UsageError
from nlbench.engine.context import build_context
from nlbench.engine.prepare import prepare
from nlbench.host.plugins import get_host


def build_method(
    method: str, overrides: dict[str, Any], nets: Sequence[nn.Module], num_classes: int
) -> Any:
    """``method`` with its hparams resolved from ``overrides``; ``ctx.build_model()`` returns
    ``nets`` in order (a method asking for more networks than given is an adapter bug)."""
    with tempfile.TemporaryDirectory(prefix="nlbench-verify-") as out:
        cfg = RunConfig(method=method, dataset="digits", device="cpu", out=out, overrides=overrides)
        host = get_host()
        prep = prepare(cfg, host)
        device = torch.device("cpu")
        ctx = build_context(prep, device, _no_scan, host)
    queue = iter(nets)

    def next_net() -> nn.Module:
        try:
            return next(queue)
        except StopIteration:
            raise RuntimeError(f"{method} built more networks than the adapter made") from None

    # the adapters' batches: 3 × 32 × 32 images; fp32/fp64 as the official code (no autocast)
    ctx = dataclasses.replace(
        ctx,
        build_model=next_net,
        num_classes=num_classes,
        in_chans=3,
        image_size=32,
        amp_dtype=None,
    )
    return prep.method_spec.factory(ctx), ctx


def _no_scan() -> Any:
    raise UsageError("nlbench verify compares single steps; nothing scans the train set")


def classifier_last(net: nn.Module) -> list[tuple[str, torch.Tensor]]:
    """``net``'s parameters in the official scripts' order: nlbench's ``ClassifierNet``
    registers ``fc`` first (its base class sets it), the official nets define it last."""
    named: list[tuple[str, torch.Tensor]] = list(net.named_parameters())
    return [p for p in named if not p[0].startswith("fc.")] + [
        p for p in named if p[0].startswith("fc.")
    ]


def running_stats(net: nn.Module) -> list[torch.Tensor]:
    """Batch-norm running means and variances, in module order (both sides agree on it)."""
    return [b for n, b in net.named_buffers() if n.endswith(("running_mean", "running_var"))]


def copy_into(official: Iterable[torch.Tensor], ours: Iterable[torch.Tensor], what: str) -> None:
    """Copy the official tensors into nlbench's, in place (optimisers keep their references);
    a count or shape that differs is an adapter error naming the position."""
    a, b = list(official), list(ours)
    if len(a) != len(b):
        raise RuntimeError(f"{what}: {len(a)} official tensors vs {len(b)} in nlbench")
    with torch.no_grad():
        for i, (src, dst) in enumerate(zip(a, b)):
            if src.shape != dst.shape:
                raise RuntimeError(f"{what} #{i}: shape {tuple(src.shape)} vs {tuple(dst.shape)}")
            dst.copy_(src.detach())


def clone_all(tensors: Iterable[torch.Tensor]) -> list[torch.Tensor]:
    return [t.detach().clone() for t in tensors]
