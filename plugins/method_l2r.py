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
from nlbench_plugins import _meta_deviations as deviations
from nlbench_plugins._meta_common import COMMON_HPARAMS
from nlbench_plugins._meta_method import MetaReweight

# Official config (methods.md §2.4): WRN-28-10 dropout 0.3 wd 2e-4, batch 100 noisy + 100 clean,
# lr 0.1 → 1e-2 at 40k → 1e-3 at 50k of 60k iterations (490 per epoch on 49k: 122 epochs).
_WRN = {
    "model": "wrn28_10",
    "dropout": 0.3,
    "epochs": 122,
    "batch_size": 100,
    "lr": 0.1,
    "milestones": [82, 102],
    "gamma": 0.1,
    "momentum": 0.9,
    "weight_decay": 2e-4,
    "scheduler": "multistep",
    "meta_set": "clean:1000",
    "meta_batch_size": 100,
}
PROFILES = {
    "paper": {"cifar10": _WRN, "cifar100": _WRN},
    "quick": {"default": {"meta_set": "clean:100"}},
    "cpu": {"default": {"meta_set": "clean:1000"}},
}


class L2R(MetaReweight):
    """L2R on one network; see the module docstring."""

    rule, nets, name = "l2r", ("net",), "l2r"


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
