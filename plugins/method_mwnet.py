"""``mwnet``: Meta-Weight-Net (Shu et al., NeurIPS 2019), with FaMUS as an optional speed-up.

A 1-100-1 MLP (ReLU, sigmoid) maps each sample's detached loss to its weight. Every step: a
virtual SGD step of the network on the weighted loss (live lr), the meta-net's update from the
cross-entropy of the virtual network on a trusted meta batch (Eqs. (4)–(5), double backward via
:mod:`nlbench.algorithms.metagrad`), then the actual step with the weights recomputed by the updated
meta-net (Eq. (6)). ``weight_norm``: ``sum`` = weights normalised to one (the WRN script, FaMUS; the
default) or ``mean`` = ``sum(w·ℓ)/B`` (the official repository's stable ``MW-Net.py``): with
``mean`` the meta-net can lower the meta loss just by scaling all weights up, and on digits at 60 %
noise it does (weights → 1, ERM's accuracy). ``--set famus=true`` restricts
the meta-gradient to the layers FaMUS's samplers pick; ``--set meta_set=pseudo`` uses the
network's own GMM pseudo-clean set instead of trusted data ("MW-Net + pseudo-clean").
Every epoch's record holds the learned weight function (``weight_fn_net``: the meta-net's weight
at the epoch's loss quantiles and on a fixed loss grid, :mod:`nlbench_plugins.meta.probe`).

Class-dependent noise (``docs/methods/mwnet-cifar-n.md``): on ``cifar_n:worse`` (and digits
``pairflip:0.4``) the learned curve *increases* with the loss, so the weights are anti-correlated
with cleanliness (detection AUC ≈ 0.2) and MW-Net fits the noise more than ERM. This is MW-Net's
own dynamics, not a code defect (meta-gradient checked against finite differences and against
the forward-mode path on the real checkpoint) and not class imbalance (pairflip has balanced
noisy labels; the loss–usefulness correlation is as negative within each noisy class): the curve
is learned increasing in the first epochs, when a large loss means "not learned yet"; later the
meta objective asks for a decreasing curve (Spearman(loss, <∇ℓ_i, ∇L_meta>) = −0.37 at epoch 11),
but for learnable, class-dependent noise that push is weak and the meta-net answers it by
saturating every weight towards 1 (flat after ``w/Σw``) rather than reordering. With ``sym``
noise the push is strong and the curve flips (digits epoch 3, CIFAR ``sym:0.6`` epoch 10);
FaMUS escapes by starting meta-learning after its warm-up.
"""

from __future__ import annotations

from collections.abc import Callable

from nlbench.api import MethodFlag, MethodSpec, hookimpl
from nlbench_plugins.meta import deviations
from nlbench_plugins.meta.hparams import COMMON_HPARAMS, MWNET_HPARAMS, clean_meta_profiles
from nlbench_plugins.meta.method import MetaReweight
from nlbench_plugins.meta.weighting import MetaNetWeighting

# The official WRN-28-10 script (``train_WRN-28-10_Meta_PGC.py``, Shu et al., NeurIPS 2019):
# 20k iterations of batch 100 on 49k images ≈ 41 epochs, lr ×0.1 at 18k and 19k iterations
# (≈ epochs 37 and 39), SGD Nesterov, weight decay 5e-4; meta-net SGD 1e-3 (m 0.9, Nesterov,
# wd 5e-4) on weights normalised to sum one.
PROFILES = clean_meta_profiles(
    epochs=41,
    milestones=[37, 39],
    nesterov=True,
    weight_decay=5e-4,
    meta_opt="sgd",
    meta_wd=5e-4,
    weight_norm="sum",
)


class MWNet(MetaReweight):
    """MW-Net on one network: a meta-net weighting; the rule from ``meta_grad``/``famus``."""

    name, weighting, nets = "mwnet", MetaNetWeighting, ("net",)


@hookimpl
def register_methods(register: Callable[[MethodSpec], None]) -> None:
    register(
        MethodSpec(
            name="mwnet",
            description="Meta-Weight-Net: an MLP on the loss learns sample weights by "
            "meta-gradient",
            factory=MWNet,
            default_hparams={**COMMON_HPARAMS, **MWNET_HPARAMS},
            profiles=PROFILES,
            flags=frozenset({MethodFlag.CLEAN_META}),
            reference="Shu et al., Meta-Weight-Net: Learning an Explicit Mapping For Sample "
            "Weighting, NeurIPS 2019",
            deviations=deviations.MWNET,
        )
    )
