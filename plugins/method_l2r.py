"""``l2r``: Learning to Reweight Examples (Ren et al., ICML 2018), FaMUS optional.

Per step, per-example perturbations ε start at 0; the weights are ``max(−∂L_meta/∂ε, 0)`` of the
clean meta batch's loss after a virtual SGD step on ``Σ ε_i ℓ_i`` (Eqs. (3)–(5)), normalised to
sum one with a zero-sum guard (an all-zero batch makes no update, Eq. (6)), and enter the actual
step with a stop-gradient. No persistent meta-network. ``--set meta_grad=fd`` uses the
equivalent gradient–gradient product ``<∇ℓ_i, ∇L_meta>`` (ε = 0 leaves ŵ = w) by finite
differences; ``--set famus=true`` restricts the meta-gradient to FaMUS's sampled layers.
"""

from __future__ import annotations

from nlbench import hookimpl
from nlbench.specs import MethodSpec
from nlbench_plugins.meta import deviations
from nlbench_plugins.meta.hparams import COMMON_HPARAMS, clean_meta_profiles
from nlbench_plugins.meta.method import MetaReweight
from nlbench_plugins.meta.weighting import PerturbationWeighting

# Official config (Ren et al., ICML 2018, learning-to-reweight-examples CIFAR config):
# WRN-28-10 with dropout 0.3 and weight decay 2e-4, lr 1e-2 at 40k → 1e-3 at 50k of 60k
# iterations (490 per epoch on 49k: 122 epochs), no Nesterov.
PROFILES = clean_meta_profiles(dropout=0.3, epochs=122, milestones=[82, 102], weight_decay=2e-4)


class L2R(MetaReweight):
    """L2R on one network: per-step ε weighting; the rule from ``meta_grad``/``famus``."""

    name, weighting, nets = "l2r", PerturbationWeighting, ("net",)


@hookimpl
def register_methods(register) -> None:
    register(
        MethodSpec(
            name="l2r",
            description="Learning to Reweight: per-step example weights from a meta-gradient",
            factory=L2R,
            default_hparams=dict(COMMON_HPARAMS),
            profiles=PROFILES,
            flags=frozenset({"clean_meta"}),
            reference="Ren et al., Learning to Reweight Examples for Robust Deep Learning, "
            "ICML 2018",
            deviations=deviations.L2R,
        )
    )
