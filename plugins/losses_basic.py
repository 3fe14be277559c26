"""``ce``, ``gce``, ``sce``, ``gce_warmup``: per-sample training losses for the single-network
methods.

Chosen with ``--set loss=NAME`` on ``erm`` and the composed methods; a loss's own
hyper-parameters (``q``; ``alpha``, ``beta``) are then accepted by ``--set`` and recorded.

GCE (Zhang & Sabuncu 2018, eq. 6): ``L_q = (1 - p_y^q) / q`` with ``q = 0.7`` (the paper's
CIFAR setting; the truncated variant is not implemented). ``q → 0`` is CE, ``q = 1`` is MAE.

SCE (Wang et al. 2019, eq. 4-6): ``alpha * CE + beta * RCE`` with the reverse cross-entropy
``RCE = -sum_k p_k log y_k`` against the one-hot label; ``log 0`` is clamped to ``A = -4``
(the paper's §4.2), so ``RCE = -A (1 - p_y) = 4 (1 - p_y)``. ``alpha = 0.1``, ``beta = 1.0`` are
the paper's CIFAR-10 values (CIFAR-100 uses 6.0 and 0.1).

``gce_warmup``: plain CE for the first ``ce_epochs`` epochs, then GCE. A robust loss learns
slowly from a random start (GCE's gradient is CE's times ``p_y^q``); a short CE warm-up, before
the network memorises the noise, is the usual remedy (DivideMix warms up with CE for the same
reason). It is the example of an epoch-aware loss: its ``set_epoch`` is called by the runner
before every epoch (:class:`nlbench.api.LossSpec`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from nlbench.api import Float, Int, LossSpec, hookimpl

if TYPE_CHECKING:  # torch loads when a loss is built, not when the plugin registers
    import torch

    LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

GCE_CITATION = (
    "Zhang & Sabuncu, Generalized Cross Entropy Loss for Training Deep Neural "
    "Networks with Noisy Labels, NeurIPS 2018"
)
SCE_CITATION = (
    "Wang, Ma, Chen, Luo, Yi & Bailey, Symmetric Cross Entropy for Robust Learning "
    "with Noisy Labels, ICCV 2019"
)
GCE_Q = Float(0.7, low=0, low_open=True, high=1, doc="GCE's exponent")
LOG_ZERO = -4.0  # SCE's A: the value log 0 is clamped to in the reverse cross-entropy


def cross_entropy(hp: Any) -> LossFn:
    """Plain cross-entropy (what every method uses when ``loss`` is unset)."""
    import torch.nn.functional as F

    return lambda logits, labels: F.cross_entropy(logits, labels, reduction="none")


def generalized_ce(hp: Any) -> LossFn:
    """``(1 - p_y^q) / q`` (GCE, eq. 6)."""
    q = float(hp["q"])
    if not 0.0 < q <= 1.0:
        from nlbench.api import UsageError

        raise UsageError(f"q={q!r} is not accepted; GCE needs 0 < q <= 1 (the paper uses 0.7)")

    return lambda logits, labels: gce(logits, labels, q)


def gce(logits: torch.Tensor, labels: torch.Tensor, q: float) -> torch.Tensor:
    """Per-sample ``(1 - p_y^q) / q``."""
    p_y = logits.softmax(1).gather(1, labels[:, None]).squeeze(1)
    return (1.0 - p_y.clamp_min(1e-12) ** q) / q


class WarmupGCE:
    """CE while ``epoch < ce_epochs``, GCE after; the runner sets the epoch (``set_epoch``).

    The epoch is its only state, set again before every epoch (a resumed run's first too), so
    nothing needs checkpointing; until told, it is epoch 0 (CE).
    """

    def __init__(self, q: float, ce_epochs: int) -> None:
        self.q, self.ce_epochs, self.epoch = q, ce_epochs, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __call__(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if self.epoch < self.ce_epochs:
            import torch.nn.functional as F

            return F.cross_entropy(logits, labels, reduction="none")
        return gce(logits, labels, self.q)


def warmup_gce(hp: Any) -> WarmupGCE:
    """CE for ``ce_epochs`` epochs, then GCE with ``q``."""
    return WarmupGCE(float(hp["q"]), int(hp["ce_epochs"]))


def symmetric_ce(hp: Any) -> LossFn:
    """``alpha * CE + beta * RCE`` with ``RCE = -A (1 - p_y)`` (SCE, eq. 4-6)."""
    import torch.nn.functional as F

    alpha, beta = float(hp["alpha"]), float(hp["beta"])

    def loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        ce = F.cross_entropy(logits, labels, reduction="none")
        p_y = logits.softmax(1).gather(1, labels[:, None]).squeeze(1)
        return alpha * ce + beta * (-LOG_ZERO) * (1.0 - p_y)

    return loss


@hookimpl
def register_losses(register: Callable[[LossSpec], None]) -> None:
    register(
        LossSpec(
            "ce",
            "cross-entropy on the noisy labels (the default)",
            cross_entropy,
            citation="the standard loss",
        )
    )
    register(
        LossSpec(
            "gce",
            "generalized cross-entropy (1 - p_y^q)/q, between CE and MAE",
            generalized_ce,
            hparams={"q": GCE_Q},
            citation=GCE_CITATION,
        )
    )
    register(
        LossSpec(
            "gce_warmup",
            "cross-entropy for the first ce_epochs epochs, then GCE",
            warmup_gce,
            hparams={
                "q": GCE_Q,
                "ce_epochs": Int(10, low=0, doc="epochs of plain CE before GCE (0: GCE only)"),
            },
            citation=GCE_CITATION + " (CE warm-up: nlbench's)",
        )
    )
    register(
        LossSpec(
            "sce",
            "symmetric cross-entropy: alpha CE + beta reverse CE (log 0 = -4)",
            symmetric_ce,
            hparams={
                "alpha": Float(0.1, low=0, high=1e3, doc="weight of CE"),
                "beta": Float(1.0, low=0, high=1e3, doc="weight of reverse CE"),
            },
            citation=SCE_CITATION,
        )
    )
