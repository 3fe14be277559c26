"""``l2r``: Learning to Reweight Examples (Ren et al., ICML 2018), FaMUS optional.

Per step, per-example perturbations ε start at 0; the weights are ``max(−∂L_meta/∂ε, 0)`` of the
clean meta batch's loss after a virtual SGD step on ``Σ ε_i ℓ_i`` (Eqs. (3)–(5)), normalised to
sum one with a zero-sum guard (an all-zero batch makes no update, Eq. (6)), and enter the actual
step with a stop-gradient. No persistent meta-network. ``--set meta_grad=fd`` uses the
equivalent gradient–gradient product ``<∇ℓ_i, ∇L_meta>`` (ε = 0 leaves ŵ = w) by finite
differences; ``--set famus=true`` restricts the meta-gradient to FaMUS's sampled layers.
``decay_scope`` chooses the decayed tensors (SGD step and clean cost alike): every tensor in the
quick and cpu profiles, as every other method of the suite; the official conv and linear weights
only in the paper profile (``--set decay_scope=null`` there gives the old behaviour).
"""

from __future__ import annotations

from collections.abc import Callable

from nlbench.api import Choice, MethodFlag, MethodSpec, hookimpl
from nlbench_plugins.meta import deviations
from nlbench_plugins.meta.hparams import COMMON_HPARAMS, clean_meta_profiles
from nlbench_plugins.meta.method import MetaReweight
from nlbench_plugins.meta.weighting import DECAY_SCOPES, PerturbationWeighting

# Official config (Ren et al., ICML 2018, learning-to-reweight-examples CIFAR config):
# WRN-28-10 with dropout 0.3 and weight decay 2e-4, lr 1e-2 at 40k → 1e-3 at 50k of 60k
# iterations (490 per epoch on 49k: 122 epochs), no Nesterov (MomentumOptimizer 0.9). Its
# ResNet decays only the conv kernels and the final layer's weight (``resnet_module.py``), in the
# training cost and the clean cost alike: ``decay_scope=weights`` on every dataset.
PROFILES = clean_meta_profiles(
    official={"decay_scope": "weights"},
    dropout=0.3,
    epochs=122,
    milestones=[82, 102],
    weight_decay=2e-4,
)
HPARAMS = {
    **COMMON_HPARAMS,
    # null keeps every record made before it existed on its run_id and its board row
    "decay_scope": Choice(
        None,
        DECAY_SCOPES,
        doc="null: weight decay on every tensor (as every method here) | weights: conv and "
        "linear weights only, no biases or norm parameters (official; the paper profile)",
    ),
}


class L2R(MetaReweight):
    """L2R on one network: per-step ε weighting; the rule from ``meta_grad``/``famus``."""

    name, weighting, nets = "l2r", PerturbationWeighting, ("net",)


@hookimpl
def register_methods(register: Callable[[MethodSpec], None]) -> None:
    register(
        MethodSpec(
            name="l2r",
            description="Learning to Reweight: per-step example weights from a meta-gradient",
            factory=L2R,
            default_hparams=HPARAMS,
            profiles=PROFILES,
            flags=frozenset({MethodFlag.CLEAN_META}),
            reference="Ren et al., Learning to Reweight Examples for Robust Deep Learning, "
            "ICML 2018",
            deviations=deviations.L2R,
        )
    )
