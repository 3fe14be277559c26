"""Hyper-parameters that components (losses, selectors, reweighters) declare for themselves.

A method names its components in its own hparams (``loss``, ``selector``, ``reweighter``); the
component chosen for a run adds its declared hparams, so ``--set q=0.5`` is accepted exactly
when the run's loss (or reweighter) has a ``q``, and the record names the value used.
Method defaults and profiles win over a component's defaults; ``--set`` wins over both.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nlbench.core.errors import PluginError
from nlbench.core.hparam_types import HParam, declarations

# method hparam naming a component -> registry kind
COMPONENT_KEYS: dict[str, str] = {
    "loss": "losses",
    "selector": "selectors",
    "reweighter": "reweighters",
}


def declared_hparams(spec: Any) -> dict[str, HParam]:
    """A component spec's declared hparams, typed (``{}`` when it declares none)."""
    return declarations(getattr(spec, "hparams", None) or {})


def component_hparams(
    hp: Mapping[str, Any], overrides: Mapping[str, Any], host: Any
) -> dict[str, HParam]:
    """Declarations of the components this run uses, for keys ``hp`` does not hold yet."""
    out: dict[str, HParam] = {}
    owner: dict[str, str] = {}
    for key, kind in COMPONENT_KEYS.items():
        if key not in hp:
            continue
        name = overrides.get(key, hp[key])
        if not name:
            continue
        spec = host.get(kind, str(name))
        for hkey, decl in declared_hparams(spec).items():
            if hkey in hp:
                continue
            if hkey in out and out[hkey].default != decl.default:
                raise PluginError(
                    f"{key} '{name}' and {owner[hkey]} both declare hparam "
                    f"'{hkey}' with different defaults; rename one"
                )
            out[hkey] = decl
            owner[hkey] = f"{key} '{name}'"
    return out
