"""``famus``: FaMUS with the pseudo-clean meta set (Xu et al., CVPR 2021; supplement Alg. 2).

Two networks, each trained by MW-Net with FaMUS's layer-wise gradient samplers (Algorithm 1,
:mod:`nlbench_plugins.meta.sampler`). Every epoch a two-component GMM on each network's
per-sample training loss (:func:`nlbench.algorithms.gmm.clean_probability`: 2 components, 10
iterations,
tol 1e-2, clean = posterior of the smaller-mean component) builds its pseudo-clean set
(probability > ``p_threshold``), which is the *other* network's meta set. Test = the summed
logits of both. ``--set meta_set=clean:N`` uses trusted data instead (the Table 1 setting).

Re-implementation notes (no official CIFAR code; Xu et al., FaMUS, CVPR 2021, and its supplement):
by default the supplement's Algorithm 2 only (no MixMatch on training or meta batches, so no
uniform-prior or unlabeled terms); ``--set mixmatch=true`` adds the DivideMix machinery of the
paper's state-of-the-art runs as the official CNWL code has it (co-divided labeled/unlabeled sets,
label refinement, co-guessing, MixMatch on training and meta batches, λu·MSE on the unlabeled rows,
prior penalty: :mod:`nlbench_plugins.meta.mix`); its CIFAR λu and α are unpublished, so the official
CNWL defaults (50, 4) are used unless set;
``warmup_epochs`` of plain cross-entropy before the first GMM, as the DivideMix machinery FaMUS
builds on; normalised MW-Net weights (``weight_norm=sum``); meta-net SGD lr β = 1e-3 (m 0.9,
Nesterov, wd 5e-4); samplers SGD lr δ = 0.1 (m 0.9, Nesterov), K = 4, λ_r = λ_g = 0.1 (L_g on
the classifier's per-row gradient statistics, into the meta-net). Differences from the official
code: ``MethodSpec.deviations`` (``nlbench show method famus``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nlbench.api import (
    Bool,
    Float,
    Int,
    MethodFlag,
    MethodSpec,
    Optional,
    hookimpl,
    with_defaults,
)
from nlbench_plugins.meta import deviations
from nlbench_plugins.meta.hparams import COMMON_HPARAMS, MWNET_HPARAMS, PAPER_DEFAULT
from nlbench_plugins.meta.method import MetaReweight
from nlbench_plugins.meta.sources import PeerPseudoSet
from nlbench_plugins.meta.weighting import MetaNetWeighting

DEFAULTS = {
    **with_defaults(
        {**COMMON_HPARAMS, **MWNET_HPARAMS},
        meta_set="pseudo",
        famus=True,
        meta_opt="sgd",
        meta_wd=5e-4,
        weight_norm="sum",
    ),
    # MixMatch variant (the paper's state-of-the-art runs, official CNWL code): None = off;
    # λu, Beta(α, α) and the λu ramp default to the official 50, 4 and 16 epochs when on
    "mixmatch": Optional(Bool(None, doc="MixMatch variant (official CNWL code); null: off")),
    "lambda_u": Optional(Float(None, low=0, high=1e6, doc="λu; null: 50 with mixmatch")),
    "alpha": Optional(Float(None, low=0, high=1e3, doc="Beta(α, α) of MixMatch; null: 4")),
    "rampup_epochs": Optional(Int(None, low=0, doc="λu ramp epochs; null: 16")),
}
# Supplement §E: PreAct ResNet-18, SGD m 0.9 wd 5e-4, batch 64, lr 0.02 /10 at 200 and 250,
# 300 epochs; Clothing1M ResNet-50, batch 32, lr 0.002 /10 at 100, 150 epochs, wd 1e-3,
# 1,000 noise-balanced mini-batches per epoch. On every dataset as the official code
# (``build_models.py``: SGD with ``--nesterov`` true by default, for the networks as for the
# meta-net; torch 1.0, fp32): Nesterov and no autocast.
_CIFAR = {
    "model": "preact_resnet18",
    "epochs": 300,
    "batch_size": 64,
    "lr": 0.02,
    "milestones": [200, 250],
    "gamma": 0.1,
    "momentum": 0.9,
    "weight_decay": 5e-4,
    "scheduler": "multistep",
}
PROFILES: dict[str, Any] = {
    "paper": {
        "default": {**PAPER_DEFAULT, "nesterov": True},
        "cifar10": {**_CIFAR, "warmup_epochs": 10},
        "cifar100": {**_CIFAR, "warmup_epochs": 30},
        "clothing1m": {
            "epochs": 150,
            "batch_size": 32,
            "lr": 0.002,
            "milestones": [100],
            "gamma": 0.1,
            "weight_decay": 1e-3,
            "scheduler": "multistep",
            "warmup_epochs": 1,
            "batches_per_epoch": 1000,
        },
    },
    # Short CPU budgets: the meta-net gets the stable MW-Net optimiser (Adam 1e-3, wd 1e-4);
    # SGD 1e-3 barely moves it in a few hundred steps (digits 60 %: weights stay ~0.57, last
    # acc 0.886 at 12 epochs vs 0.924 with Adam). digits: the `make demo` budget (about a
    # minute on a laptop CPU): two networks with a look-ahead per step cost ~5x an ERM epoch,
    # so 12 epochs (3 warm-up) instead of 30.
    "quick": {
        "default": {"warmup_epochs": 3, "meta_opt": "adam", "meta_wd": 1e-4},
        "digits": {"epochs": 12},
    },
    "cpu": {"default": {"warmup_epochs": 5, "meta_opt": "adam", "meta_wd": 1e-4}},
}


class FaMUS(MetaReweight):
    """Two MW-Net networks, always layer-gated, exchanging GMM pseudo-clean meta sets."""

    name, weighting, nets = "famus", MetaNetWeighting, ("net1", "net2")
    pseudo_source, always_gated = PeerPseudoSet, True


@hookimpl
def register_methods(register: Callable[[MethodSpec], None]) -> None:
    register(
        MethodSpec(
            name="famus",
            description="FaMUS: two MW-Nets, layer-sampled meta-gradients, GMM pseudo-clean "
            "meta sets (no clean data)",
            factory=FaMUS,
            default_hparams=DEFAULTS,
            profiles=PROFILES,
            flags=frozenset({MethodFlag.TWO_NET}),
            reference="Xu et al., Faster Meta Update Strategy for Noise-Robust Deep Learning, "
            "CVPR 2021 (re-implementation)",
            deviations=deviations.FAMUS,
        )
    )
