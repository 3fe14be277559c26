"""``nlbench new-plugin DIR --name NAME``: write a complete pip-installable plugin package.

The package is written into a temporary folder beside DIR and renamed into place only when
every file is there: a refused name, a full disk or an unwritable parent leave nothing behind.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from importlib import resources
from pathlib import Path

import click

from nlbench.commands.list import listing
from nlbench.core.errors import UsageError
from nlbench.core.registry import NAME_RE, NAME_SHOWN

FILES = {
    "pyproject.toml": "plugin_pyproject.toml.tmpl",
    "nlbench_{name}.py": "plugin_module.py.tmpl",
    "tests/test_{name}.py": "plugin_test.py.tmpl",
    "README.md": "plugin_readme.md.tmpl",
    "sweep.toml": "plugin_sweep.toml.tmpl",
}
# the names the scaffold registers: (registry kind, name pattern)
REGISTERS = (
    ("methods", "{name}"),
    ("methods", "{name}_weighted"),
    ("reweighters", "{name}_pweight"),
    ("losses", "{name}_mae"),
)
NAME_MAX = 64  # a plugin name becomes file and distribution names


def check_name(name: str) -> None:
    """A lower_snake name, short enough for a file name, that no installed plugin registers."""
    if not NAME_RE.fullmatch(name) or len(name) > NAME_MAX:
        raise UsageError(
            f"--name {name!r}: names must match {NAME_SHOWN}, at most {NAME_MAX} characters "
            "(e.g. my_method)"
        )

    taken = listing([kind for kind, _ in REGISTERS])
    for kind, pattern in REGISTERS:
        wanted = pattern.format(name=name)
        rows = [r for r in taken.get(kind, []) if r["name"] == wanted]
        if rows:
            raise UsageError(
                f"--name {name}: the scaffold would register {kind[:-1]} '{wanted}', which plugin "
                f"'{rows[0]['plugin']}' already registers; choose another name"
            )


def _check_target(target: Path) -> None:
    if target.is_symlink() or (target.exists() and not target.is_dir()):
        raise UsageError(f"{target} exists and is not a directory; choose a new directory")
    if target.exists() and any(target.iterdir()):
        raise UsageError(f"{target} exists and is not empty; choose a new directory")


def _render(name: str) -> dict[str, str]:
    values = {
        "name": name,
        "dist": name.replace("_", "-"),
        "cls": "".join(p.capitalize() for p in name.split("_")) + "Method",
    }
    templates = resources.files("nlbench").joinpath("templates")
    return {
        rel.format(**values): templates.joinpath(template).read_text().format(**values)
        for rel, template in FILES.items()
    }


def write_plugin(target: Path, name: str) -> list[Path]:
    """Render the plugin templates into ``target`` (new, or an empty directory)."""
    check_name(name)
    target = Path(target)
    try:
        _check_target(target)
        files = _render(name)
        parent = target.absolute().parent
        parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name[:40]}.", dir=parent))
    except OSError as exc:
        raise _os_error(target, exc) from None
    try:
        for rel, text in files.items():
            (staging / rel).parent.mkdir(parents=True, exist_ok=True)
            (staging / rel).write_text(text, encoding="utf-8")
        os.chmod(staging, 0o755)  # mkdtemp makes 0700
        if target.is_dir():
            target.rmdir()  # empty (checked): the package takes its place
        os.rename(staging, target)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise _os_error(target, exc) from None
    return [target / rel for rel in files]


def _os_error(target: Path, exc: OSError) -> UsageError:
    reason = exc.strerror or type(exc).__name__
    if exc.errno == errno.ENAMETOOLONG:
        reason += " (the directory or --name is longer than the file system allows)"
    return UsageError(f"cannot write the plugin into {target}: {reason}; nothing was written")


def register(cli: click.Group) -> None:
    @cli.command("new-plugin")
    @click.argument("directory", type=click.Path(path_type=Path))
    @click.option("--name", required=True, help="Registry name of the new method (lower_snake).")
    def new_plugin(directory: Path, name: str) -> None:
        """Write a pip-installable plugin package: an example method, reweighter, composed
        method and loss with typed hyper-parameters, their tests and a sweep file."""
        for path in write_plugin(directory, name):
            click.echo(f"wrote {path}")
        click.echo(
            f"next: pip install -e '{directory}[test]' && nlbench list methods && "
            f"pytest {directory}"
        )
