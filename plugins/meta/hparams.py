"""The hyper-parameters and profiles ``mwnet``, ``l2r`` and ``famus`` share."""

from __future__ import annotations

from typing import Any

from nlbench.api import Bool, Choice, Float, Int, Optional, Str, UsageError

META_GRADS = ("exact", "jvp", "fd")
COMMON_HPARAMS: dict[str, Any] = {
    # clean:N (trusted hold-out) or pseudo (GMM pseudo-clean set)
    "meta_set": Str(
        "clean:1000",
        pattern=r"clean:[1-9][0-9]*|pseudo",
        doc="meta set: clean:N (trusted hold-out) or pseudo (GMM pseudo-clean set)",
    ),
    "meta_batch_size": Optional(Int(None, low=1, doc="meta batch; null: batch_size")),
    "meta_grad": Choice(
        "exact",
        META_GRADS,
        doc="exact (double backward), jvp (exact, forward-mode), fd (finite differences)",
    ),
    "fd_eps": Float(0.01, low=0, low_open=True, high=1, doc="fd step = fd_eps / ||v|| (DARTS)"),
    "reuse_forward": Bool(True, doc="the actual step reuses the look-ahead's forward (same maths)"),
    "warmup_epochs": Int(10, low=0, doc="pseudo meta set: plain CE epochs before the first GMM"),
    "p_threshold": Float(
        0.5, low=0, high=1, high_open=True, doc="pseudo meta set = clean probability above this"
    ),
    "famus": Bool(False, doc="FaMUS layer sampling as a speed-up plug-in"),
    "famus_k": Int(4, low=1, doc="K: layers sampled per step"),
    "famus_gated": Int(15, low=1, doc="the last N parameter tensors are gated (final two kept)"),
    "famus_lr": Float(0.1, low=0, high=10, doc="δ: sampler SGD lr"),
    "famus_tau": Float(5.0, low=0, low_open=True, high=1e6, doc="Gumbel-softmax temperature"),
    "famus_lambda_r": Float(0.1, low=0, high=1e6, doc="λ_r of (Σr − K)²"),
    "famus_lambda_g": Float(0.1, low=0, high=1e6, doc="λ_g of the gradient-statistics regulariser"),
    "famus_reg_quirk": Bool(False, doc="L_r sees only the last gate (the released code)"),
    # Clothing1M (FaMUS supplement §E): each network's epoch is this many mini-batches drawn
    # from a fresh pool balanced by noisy label; None → one pass over the whole train set
    "batches_per_epoch": Optional(
        Int(
            None,
            low=1,
            doc="mini-batches per epoch from a pool balanced by noisy label; null: one pass",
        )
    ),
}
MWNET_HPARAMS: dict[str, Any] = {
    "meta_lr": Float(1e-3, low=0, high=10, doc="β: meta-net lr"),
    "meta_opt": Choice(
        "adam", ("adam", "sgd"), doc="adam (stable MW-Net.py) | sgd (WRN script, FaMUS)"
    ),
    "meta_wd": Float(1e-4, low=0, high=1, doc="meta-net weight decay"),
    "meta_hidden": Int(100, low=1, doc="meta-net hidden units"),
    # sum: w/Σw (WRN script, FaMUS) | mean: sum(w·ℓ)/B (stable MW-Net.py). Default sum: with
    # mean the meta-net can lower the meta loss by scaling every weight up (a larger effective
    # lr) and on digits 60 % it does (weights → 1, ERM accuracy); sum leaves only the ranking.
    "weight_norm": Choice(
        "sum",
        ("sum", "mean"),
        doc="sum: w/Σw (WRN script, FaMUS) | mean: sum(w·ℓ)/B (stable MW-Net.py)",
    ),
}

# The official MW-Net (``train_WRN-28-10_Meta_PGC.py``) and L2R (its CIFAR config) scripts share
# this much:
# WRN-28-10, batch 100 noisy + 100 trusted from 1,000 clean samples, SGD lr 0.1 m 0.9 divided
# by 10 at two milestones. Each method states its differences (epochs, milestones, ...).
_WRN: dict[str, Any] = {
    "model": "wrn28_10",
    "batch_size": 100,
    "lr": 0.1,
    "gamma": 0.1,
    "momentum": 0.9,
    "scheduler": "multistep",
    "meta_set": "clean:1000",
    "meta_batch_size": 100,
}


# What the official code does on any dataset: fp32 throughout (no autocast in evaluation or the
# train-set scans: amp is an execution setting, so it changes no run_id).
PAPER_DEFAULT: dict[str, Any] = {"amp": False}


def clean_meta_profiles(official: dict[str, Any] | None = None, **paper: Any) -> dict[str, Any]:
    """Profiles of a method trained on a trusted meta set (``mwnet``, ``l2r``): ``paper`` =
    the shared WRN-28-10 script with the method's differences ``paper``, for CIFAR-10 and -100,
    and on every dataset fp32 plus the method's ``official`` code settings; ``quick`` and
    ``cpu`` only size the trusted set (100 and 1,000 samples)."""
    wrn = {**_WRN, **paper}
    default = {**PAPER_DEFAULT, **(official or {})}
    return {
        "paper": {"default": default, "cifar10": wrn, "cifar100": wrn},
        "quick": {"default": {"meta_set": "clean:100"}},
        "cpu": {"default": {"meta_set": "clean:1000"}},
    }


def check_hparams(hp: dict[str, Any], name: str) -> None:
    """Combinations the hparam types cannot reject on their own, as one clear line."""
    if hp["meta_grad"] not in META_GRADS:
        raise UsageError(f"meta_grad '{hp['meta_grad']}': accepted {', '.join(META_GRADS)}")
    if hp["meta_grad"] != "exact" and hp["famus"]:
        raise UsageError(
            f"meta_grad={hp['meta_grad']} with famus=true: famus needs meta_grad=exact"
        )
    if hp.get("weight_norm", "mean") not in ("mean", "sum"):
        raise UsageError(f"weight_norm '{hp['weight_norm']}': accepted mean, sum")
    kind = str(hp.get("meta_set"))
    if kind != "pseudo" and not kind.startswith("clean:"):
        raise UsageError(f"{name} needs a meta set: meta_set '{kind}': accepted clean:N, pseudo")
