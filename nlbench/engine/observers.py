"""Calling the observer hooks so that observers can add to a record but never change it.

Each observer gets its own deep copy of the epoch metrics (or the record), so editing what it
was given changes nothing. What ``epoch_finished`` returns may only add new keys: a key the
runner already wrote (``test_acc``) or another observer added is a :class:`PluginError` naming
both, never a silently rewritten number.
``run_failed`` tells every observer that a run ended without a record of ``done`` (an error or
Ctrl-C), so that it releases what it holds; an observer failing there is logged, never allowed
to replace the run's own error.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

from nlbench.core.errors import PluginError
from nlbench.host.plugins import call_for, is_wrapper

log = logging.getLogger(__name__)


def _observers(pm: Any, hook: str) -> list[Any]:
    """The hook's implementations, wrappers left out (they wrap each call below)."""
    impls = getattr(pm.hook, hook).get_hookimpls()
    return [impl for impl in impls if not is_wrapper(impl)]


def _call(pm: Any, hook: str, impl: Any, **kwargs: Any) -> Any:
    """One observer's implementation as its own pluggy hook call (wrappers, tracing and
    ``add_hookcall_monitoring`` see it), so each can get its own copy and its own error."""
    results = call_for(pm, hook, impl.plugin_name)(**kwargs)
    return results[0] if results else None


def epoch_extras(pm: Any, run: Any, epoch: int, metrics: dict[str, Any]) -> dict[str, Any]:
    """The new keys every ``epoch_finished`` observer adds to ``metrics``, by plugin."""
    extras: dict[str, Any] = {}
    owner: dict[str, str] = {}
    for impl in _observers(pm, "epoch_finished"):
        extra = _call(
            pm, "epoch_finished", impl, run=run, epoch=epoch, metrics=copy.deepcopy(metrics)
        )
        if extra is None:
            continue
        if not isinstance(extra, dict):
            raise PluginError(
                f"observer plugin '{impl.plugin_name}': epoch_finished must return a dict or "
                f"None, not {type(extra).__name__}"
            )
        for key, value in extra.items():
            if key in metrics or key in extras:
                who = "the runner" if key in metrics else f"plugin '{owner[key]}'"
                raise PluginError(
                    f"observer plugin '{impl.plugin_name}' returned '{key}', which {who} "
                    "already writes; observers may only add new keys"
                )
            extras[key], owner[key] = value, impl.plugin_name
    return extras


def run_finished(pm: Any, run: Any, record: dict[str, Any]) -> None:
    """Tell every observer the run finished, each with its own copy of the record."""
    for impl in _observers(pm, "run_finished"):
        _call(pm, "run_finished", impl, run=run, record=copy.deepcopy(record))


def run_failed(pm: Any, run: Any, error: BaseException) -> None:
    """Tell every observer the run failed or was interrupted; each one is called even when
    another raises (what it raises is logged: the run's own error is the one reported)."""
    for impl in _observers(pm, "run_failed"):
        try:
            _call(pm, "run_failed", impl, run=run, error=error)
        except Exception as exc:  # noqa: BLE001 - cleanup must not mask the run's error
            log.warning("observer plugin '%s': run_failed raised %s", impl.plugin_name, exc)
