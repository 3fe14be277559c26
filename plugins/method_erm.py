"""``erm``: plain cross-entropy on the noisy labels (the baseline every row is compared with)."""

from __future__ import annotations

from collections.abc import Callable

from nlbench.api import SINGLE_NET_HPARAMS, MethodSpec, SingleNetMethod, hookimpl


@hookimpl
def register_methods(register: Callable[[MethodSpec], None]) -> None:
    register(
        MethodSpec(
            name="erm",
            description="empirical risk minimisation: cross-entropy on the noisy labels",
            factory=SingleNetMethod,
            default_hparams=SINGLE_NET_HPARAMS,
            reference="Vapnik (1992); the 'Full'/'CE' baseline of every noisy-label paper",
        )
    )
