"""The ``nlbench`` command line. Commands live in :mod:`nlbench.commands`, one per module.

Every error the user can cause is one line on stderr (exit 2 for usage errors), never a
traceback.
"""

from __future__ import annotations

import importlib
import json
import logging
import pkgutil
import sys
from typing import NoReturn

import click

from nlbench import commands
from nlbench.commands import FAILURE as _failure
from nlbench.core.atomic import os_error
from nlbench.core.errors import NlbenchError
from nlbench.core.version import __version__


class LazyGroup(click.Group):
    """Loads plugins only when a command name is not built in, so ``--help``, ``--version`` and
    the built-in commands start without importing torch or any plugin."""

    plugins_loaded = False

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is None and not self.plugins_loaded:
            _plugin_commands()
            command = super().get_command(ctx, cmd_name)
        return command


@click.group(
    cls=LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog="Commands added by plugins are loaded on first use: nlbench NAME --help.",
)
@click.version_option(__version__, prog_name="nlbench")
@click.option("-v", "--verbose", count=True, help="Log more (-vv for debug).")
def cli(verbose: int) -> None:
    """nlbench: benchmark methods for learning with noisy labels."""
    level = logging.WARNING - 10 * verbose
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")


def _add_commands() -> None:
    for mod in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if not mod.name.startswith("_"):
            importlib.import_module(f"nlbench.commands.{mod.name}").register(cli)


_add_commands()


def _plugin_commands() -> None:
    """Let plugins add commands (register_commands hook); a broken plugin never blocks the CLI."""
    cli.plugins_loaded = True
    try:
        from nlbench.host.plugins import get_host  # lazy: only for a name not built in

        get_host().pm.hook.register_commands(cli=cli)
    except NlbenchError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(exc.exit_code)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI, turning known errors into one line and an exit code.

    With ``--json`` a failure also prints one JSON object on stdout, ``{"error", "hint",
    "exit_code"}``, so a script always has one object to read.
    """
    args = sys.argv[1:] if argv is None else list(argv)
    _failure.clear()
    try:
        _main(args)
    except SystemExit as exc:
        if "--json" in args and exc.code not in (0, None) and "printed" not in _failure:
            error = _failure.get("error") or f"exited with code {exc.code}"
            _json_error(error, None, exc.code)
        raise
    # --json: whatever went wrong, one object (the traceback is what a run without it shows)
    except Exception as exc:
        if "--json" not in args:
            raise
        _json_error(f"{type(exc).__name__}: {' '.join(str(exc).split())}", _BUG_HINT, 1)
        sys.exit(1)


_BUG_HINT = "run the same command without --json to see the traceback"


def _json_error(error: str, hint: str | None, code: object) -> None:
    _failure["printed"] = "yes"
    payload = {"error": error, "hint": hint, "exit_code": code if isinstance(code, int) else 1}
    click.echo(json.dumps(payload, sort_keys=True))


def _fail(message: str, code: int, hint: str | None, args: list[str]) -> NoReturn:
    """One line on stderr (and the JSON object under --json), then exit ``code``."""
    click.echo(f"Error: {message}", err=True)
    if "--json" in args:
        _json_error(message, hint, code)
    sys.exit(code)


def _main(args: list[str]) -> None:
    try:  # plugins load lazily (LazyGroup): only for a command name that is not built in
        rv = cli.main(args=args, prog_name="nlbench", standalone_mode=False)
    except KeyboardInterrupt:  # Ctrl-C outside click (plugin loading)
        _interrupted()
    except click.exceptions.Abort as exc:
        # click turns both Ctrl-C and EOFError into Abort; a file that ended early is bad input
        if isinstance(exc.__context__, EOFError):
            detail = str(exc.__context__) or "EOFError"
            _fail(f"a file or input ended unexpectedly ({detail})", 2, None, args)
        _interrupted()
    except click.exceptions.UsageError as exc:
        where = exc.ctx.command_path if exc.ctx is not None else "nlbench"
        _fail(exc.format_message(), 2, f"{where} --help", args)
    except click.exceptions.ClickException as exc:
        _fail(exc.format_message(), exc.exit_code, None, args)
    except NlbenchError as exc:
        _fail(" ".join(str(exc).split()), exc.exit_code, getattr(exc, "hint", None), args)
    except (OSError, UnicodeDecodeError) as exc:  # what no command caught: still one line
        error = os_error(exc) if isinstance(exc, OSError) else NlbenchError(f"not UTF-8: {exc}")
        code = 2 if isinstance(exc, UnicodeDecodeError) else error.exit_code
        _fail(" ".join(str(error).split()), code, None, args)
    sys.exit(rv if isinstance(rv, int) else 0)


def _interrupted() -> None:
    """Ctrl-C (a run in training stops at a safe point itself: runner.Interrupted)."""
    click.echo("Aborted: interrupted by Ctrl-C.", err=True)
    _failure["error"] = "interrupted by Ctrl-C"
    sys.exit(130)
