"""DivideMix's per-setting hyper-parameters (paper Appendix Table 7) and its run profiles.

λu and the clean-probability threshold τ were tuned per dataset *and noise rate* by the
authors, so a run that uses them is flagged ``noise_tuned``. The rate comes from the run's
noise spec (``ctx.extras["noise_rate"]``, the nominal rate); a rate between the paper's settings
takes the nearest one, and the record says which entry was used.

Sources (``../shared/docs/methods.md`` §2.1, §2.2, §4.1): CIFAR-10 sym 20 % → λu 0, 50 % → 25,
80 % → 25, 90 % → 50; asym 40 % → 0. CIFAR-100 sym 20 % → 25, 50/80/90 % → 150. τ = 0.5, 0.6 at
90 %. Clothing1M: λu 0, τ 0.5. At r = 0.9 the official code fits the GMM on the mean of the last
5 epochs' normalised losses (``gmm_history`` 5), a path gated by the true rate.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from nlbench.errors import UsageError

# {dataset: {noise family: {nominal rate: (lambda_u, p_threshold)}}}
TABLE7: dict[str, dict[str, dict[float, tuple[float, float]]]] = {
    "cifar10": {
        "sym": {0.2: (0.0, 0.5), 0.5: (25.0, 0.5), 0.8: (25.0, 0.5), 0.9: (50.0, 0.6)},
        "asym": {0.4: (0.0, 0.5)},
    },
    "cifar100": {
        "sym": {0.2: (25.0, 0.5), 0.5: (150.0, 0.5), 0.8: (150.0, 0.5), 0.9: (150.0, 0.6)},
    },
    "clothing1m": {"real": {0.0: (0.0, 0.5)}},
}
OFFICIAL_DEFAULT = (25.0, 0.5)  # Train_CIFAR.py's argparse defaults
FAMILY = {"sym": "sym", "sym_incl": "sym", "asym": "asym"}
HISTORY_RATE = 0.9  # the official code averages 5 epochs of losses at exactly r = 0.9

# Paper profile: the source's exact schedule (Train_CIFAR.py / Train_Clothing1M.py). The quick
# profile keeps the dataset's budget (digits: tiny_cnn, 30 epochs, batch 64) and shortens the
# warm-up and ramp in proportion.
PROFILES: dict[str, dict[str, dict[str, Any]]] = {
    "paper": {
        "cifar10": {"epochs": 300, "lr": 0.02, "milestones": [150], "gamma": 0.1,
                    "batch_size": 64, "weight_decay": 5e-4, "scheduler": "multistep",
                    "warmup_epochs": 10, "alpha": 4.0},
        "cifar100": {"epochs": 300, "lr": 0.02, "milestones": [150], "gamma": 0.1,
                     "batch_size": 64, "weight_decay": 5e-4, "scheduler": "multistep",
                     "warmup_epochs": 30, "alpha": 4.0},
        "clothing1m": {"epochs": 80, "lr": 0.002, "milestones": [40], "gamma": 0.1,
                       "batch_size": 32, "weight_decay": 1e-3, "scheduler": "multistep",
                       "warmup_epochs": 1, "alpha": 0.5, "batches_per_epoch": 1000,
                       "forward_unlabeled": False, "conf_penalty": True},
    },
    "quick": {"default": {"warmup_epochs": 5, "rampup_epochs": 8}},
}  # fmt: skip


@dataclass(frozen=True)
class Setting:
    """The resolved noise-dependent hyper-parameters of one run and where they came from."""

    lambda_u: float
    p_threshold: float
    gmm_history: int
    conf_penalty: bool
    source: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def table_entry(
    dataset: str, noise_type: str, rate: float | None, num_classes: int
) -> tuple[float, float, str]:
    """(λu, τ, source) from Table 7 for the nearest listed setting.

    Datasets outside the table use CIFAR-10's entries (CIFAR-100's for ≥ 50 classes); noise
    types the paper never ran, or an unknown rate, get the official defaults λu 25, τ 0.5.
    """
    if dataset in TABLE7:
        key = dataset
    else:
        key = "cifar100" if num_classes >= 50 else "cifar10"
    family = "real" if dataset == "clothing1m" else FAMILY.get(noise_type)
    rows = TABLE7[key].get(family or "")
    if not rows:
        return (*OFFICIAL_DEFAULT, f"official defaults (no Table 7 entry for {noise_type})")
    if rate is None:
        if len(rows) > 1:
            return (*OFFICIAL_DEFAULT, "official defaults (noise rate unknown)")
        nearest = next(iter(rows))
    else:
        nearest = min(rows, key=lambda r: (abs(r - rate), r))
    lam, tau = rows[nearest]
    return lam, tau, f"Table 7 {key} {family} {nearest:g}"


def _rate(ctx) -> float | None:
    rate = ctx.extras.get("noise_rate")
    return None if rate is None else float(rate)


def resolve_setting(ctx) -> Setting:
    """λu, τ, GMM history depth and warm-up penalty for this run (``--set`` values win)."""
    hp = ctx.hparams
    rate = _rate(ctx)
    lam, tau, source = table_entry(ctx.dataset, ctx.noise_type, rate, ctx.num_classes)
    if hp.get("lambda_u") is not None:
        lam, source = float(hp["lambda_u"]), f"{source}; lambda_u set"
    if hp.get("p_threshold") is not None:
        tau, source = float(hp["p_threshold"]), f"{source}; p_threshold set"
    history = hp.get("gmm_history")
    if history is None:
        history = 5 if rate is not None and abs(rate - HISTORY_RATE) < 1e-9 else 1
    penalty = hp.get("conf_penalty")
    if penalty is None:
        penalty = ctx.noise_type == "asym" or ctx.dataset == "clothing1m"
    _check(hp, lam, tau, int(history))
    return Setting(float(lam), float(tau), int(history), bool(penalty), source)


def _check(hp, lam: float, tau: float, history: int) -> None:
    """Usage errors for values the method cannot run with."""
    if lam < 0:
        raise UsageError(f"dividemix lambda_u must be ≥ 0, got {lam}")
    if not 0.0 <= tau < 1.0:
        raise UsageError(f"dividemix p_threshold must be in [0, 1), got {tau}")
    if history < 1:
        raise UsageError(f"dividemix gmm_history must be a positive integer, got {history}")
    if not float(hp.get("temperature", 0.5)) > 0:
        raise UsageError(f"dividemix temperature must be > 0, got {hp.get('temperature')}")
    if float(hp.get("alpha", 4.0)) < 0:
        raise UsageError(f"dividemix alpha must be ≥ 0, got {hp.get('alpha')}")
    if int(hp.get("warmup_epochs", 0)) < 0:
        raise UsageError(f"dividemix warmup_epochs must be ≥ 0, got {hp.get('warmup_epochs')}")
    nb = hp.get("batches_per_epoch")
    if nb is not None and int(nb) < 1:
        raise UsageError(f"dividemix batches_per_epoch must be a positive integer or null, got {nb}")
