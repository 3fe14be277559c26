"""CLI commands: each module defines ``register(cli)`` and is added automatically."""

from __future__ import annotations

FAILURE: dict[str, str] = {}  # this call's error line, and whether its JSON was printed


def json_printed() -> None:
    """The command printed its own JSON object before a failing exit (``verify --json``'s
    report with ``"ok": false``): ``nlbench.cli.main`` adds no error object, stdout stays one
    object."""
    FAILURE["printed"] = "yes"
