"""Dataset profiles: the training budget every method starts from on a dataset.

A :class:`nlbench.core.specs.DatasetSpec` carries ``profiles`` (``{profile: hparams}``); the
small-image datasets (and third-party ones like them) share one budget through
:func:`small_image_profiles`, so all methods on them get the same epochs, model and schedule.
Plugin authors import it from :mod:`nlbench.api`.
"""

from __future__ import annotations

from typing import Any


def small_image_profiles(paper_epochs: int) -> dict[str, dict[str, Any]]:
    """``paper``: PreAct ResNet-18, SGD lr 0.02, decays at 50 % / 75 % of ``paper_epochs``;
    ``quick``: cnn_small for 15 epochs on a CPU."""
    return {
        "paper": {
            "model": "preact_resnet18",
            "epochs": paper_epochs,
            "batch_size": 128,
            "lr": 0.02,
            "milestones": [0.5, 0.75],
            "weight_decay": 5e-4,
            "scheduler": "multistep",
        },
        "quick": {
            "model": "cnn_small",
            "epochs": 15,
            "batch_size": 128,
            "lr": 0.05,
            "milestones": [0.5, 0.75],
            "weight_decay": 5e-4,
            "scheduler": "multistep",
        },
    }
