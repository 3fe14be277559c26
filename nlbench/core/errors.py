"""Errors that the CLI turns into one clear line (exit code 2 for usage errors)."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class NlbenchError(Exception):
    """Base class: an error whose message is meant for the user as it stands."""

    exit_code = 1


class UsageError(NlbenchError):
    """Bad input from the user: unknown names, malformed specs, invalid values (exit code 2)."""

    exit_code = 2


class DataMissingError(UsageError):
    """Dataset files are missing and cannot be downloaded."""

    hint: str | None = None  # the command that fetches them, where the raiser knows it


class PluginError(NlbenchError):
    """A plugin is broken: duplicate names, unknown hooks, failing registration."""

    plugin: str | None = None  # the plugin at fault, when one is

    @classmethod
    def of(cls, plugin: str, message: str) -> PluginError:
        error = cls(message)
        error.plugin = plugin
        return error


def unknown_name(kind: str, name: str, accepted: Iterable[str]) -> UsageError:
    """Build the 'unknown X' error that lists what is accepted and suggests the closest match."""
    names = sorted(accepted)
    close = difflib.get_close_matches(name, names, n=1)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    return UsageError(f"unknown {kind} '{name}'.{hint} Accepted: {', '.join(names) or '(none)'}.")


class Interrupted(NlbenchError):
    """SIGINT: the run stopped at a safe point and can be resumed."""

    exit_code = 130
