"""``forward``: forward loss correction (Patrini, Rozza, Menon, Nock & Qu, CVPR 2017), following
the paper and its code (``giorgiop/loss-correction``: ``noise.py``'s estimator, ``loss.py``).

Two stages, as the official ``experiment.py``. First the phase ``estimate_t`` (a resumable
pre-training phase, :mod:`nlbench.training.phases`) trains an estimator network with plain
cross-entropy on the noisy labels for ``estimate_epochs`` (default: the run's epochs, the
official code trains it like the final model) and estimates the transition matrix ``T`` from
anchor points (:func:`~nlbench_plugins.baselines.transition.anchor_transition`: per class the
sample with the highest probability below the column's 97th percentile; its softmax is the
row, row-normalised). Then a fresh network trains with the forward-corrected loss
−log((softmax · T)[ỹ]): the noisy-label probabilities the clean-class posterior implies.

``--set transition=oracle`` skips the estimate and uses the true noise model instead: the
row-normalised clean→noisy counts of this run's labels. Such runs know the noise and are
flagged ``oracle_noise`` on every board.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch

from nlbench.api import (
    AuxNet,
    Choice,
    Deviation,
    EpochPlan,
    Float,
    Int,
    MethodFlag,
    MethodSpec,
    NoiseSetting,
    Optional,
    Phase,
    Scan,
    SingleNetMethod,
    TrainContext,
    UsageError,
    hookimpl,
)
from nlbench_plugins.baselines.transition import anchor_transition, forward_loss, row_normalised

DEFAULT_HPARAMS: dict[str, Any] = {
    "transition": Choice(
        "estimate", ("estimate", "oracle"), doc="estimate: anchor points; oracle: true noise"
    ),
    "estimate_epochs": Optional(
        Int(None, low=1, doc="epochs of the estimator network; null: the run's epochs")
    ),
    "anchor_percentile": Optional(
        Float(97.0, low=0, high=100, doc="outlier filter of the anchors; null: plain argmax")
    ),
}

DEVIATIONS = (
    Deviation(
        "the estimator and the corrected network are the board's network and train under the "
        "board's SGD schedule; the official code trains ResNets (CIFAR) or fully connected "
        "nets (MNIST) with its own Keras optimizers",
        "every method on a board trains the same network under one budget",
    ),
    Deviation(
        "the anchor percentile filter runs on every dataset; the official experiment turns it "
        "off on CIFAR-100",
        "one rule for every dataset; null turns it off",
        "--set anchor_percentile=null",
    ),
    Deviation(
        "T is read off the estimator at its last epoch, trained on all the noisy training data; "
        "the official code reloads its cross-entropy run's lowest validation-loss epoch "
        "(ModelCheckpoint on a 10 % split of the noisy training data)",
        "no clean or held-out split exists in the run; the estimate phase is one unit per epoch",
    ),
)


def forward_flags(hp: Mapping[str, Any], noise: NoiseSetting, dataset: Any) -> set[MethodFlag]:
    """``MethodSpec.flags_for``: ``oracle_noise`` when T is the true noise model."""
    return {MethodFlag.ORACLE_NOISE} if hp.get("transition") == "oracle" else set()


class ForwardCorrection(SingleNetMethod):
    """One network trained with the forward-corrected loss; see the module docstring."""

    def __init__(self, ctx: TrainContext) -> None:
        super().__init__(ctx)
        self.T = torch.eye(ctx.num_classes, device=ctx.device)
        self.estimated = False
        self.oracle = self.hp["transition"] == "oracle"
        self.epochs_t = int(self.hp["estimate_epochs"] or ctx.epochs)
        self.aux: AuxNet | None = None
        if self.oracle:
            counts = ctx.noise_transition
            if counts is None:
                raise UsageError("transition=oracle: this run has no noise model to read")
            self.T = row_normalised(torch.tensor(counts, device=ctx.device))
            self.estimated = True
        else:
            self.aux = AuxNet(ctx)
            self.register_state("aux")
        self.register_state("T")
        self.register_state("estimated")
        self.loss_fn = lambda logits, labels: forward_loss(logits, labels, self.T)

    def phases(self) -> list[Phase]:
        if self.oracle:
            return []
        return [Phase("estimate_t", self.epochs_t, self._estimate_unit, "estimator epoch")]

    def _estimate_unit(self, epoch: int) -> int:
        """One epoch of the estimator; after the last, T from its anchor points."""
        assert self.aux is not None
        seen = self.aux.train_epoch(epoch, self.epochs_t)
        if epoch + 1 == self.epochs_t:
            probs = self.aux.probabilities(batch_size=int(self.hp["eval_batch_size"] or 512))
            self.T = anchor_transition(probs, self.hp["anchor_percentile"])
            self.estimated = True
            seen += int(probs.shape[0])
        return seen

    def start_epoch(self, epoch: int, scan: Callable[[], Scan]) -> EpochPlan | None:
        """The first epoch's line carries the T the corrected loss uses (rounded)."""
        if epoch > 0:
            return None
        rows = [[round(float(v), 4) for v in row] for row in self.T.cpu()]
        return EpochPlan(metrics={"transition_used": rows})

    def record_info(self) -> dict[str, Any]:
        return {
            "transition": "true noise model (oracle)" if self.oracle else "anchor-point estimate",
            "estimate_epochs": None if self.oracle else self.epochs_t,
        }


@hookimpl
def register_methods(register: Callable[[MethodSpec], None]) -> None:
    register(
        MethodSpec(
            name="forward",
            description="forward loss correction with T from anchor points (or the true T)",
            factory=ForwardCorrection,
            default_hparams=DEFAULT_HPARAMS,
            flags_for=forward_flags,
            deviations=DEVIATIONS,
            reference="Patrini, Rozza, Menon, Nock & Qu, Making Deep Neural Networks Robust to "
            "Label Noise: a Loss Correction Approach, CVPR 2017",
        )
    )
