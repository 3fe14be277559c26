"""``nlbench new-plugin DIR --name NAME``: write a complete pip-installable plugin package."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import click

from nlbench.errors import UsageError
from nlbench.registry import NAME_RE

FILES = {
    "pyproject.toml": "plugin_pyproject.toml.tmpl",
    "nlbench_{name}.py": "plugin_module.py.tmpl",
    "tests/test_{name}.py": "plugin_test.py.tmpl",
    "README.md": "plugin_readme.md.tmpl",
    "sweep.toml": "plugin_sweep.toml.tmpl",
}


def write_plugin(target: Path, name: str) -> list[Path]:
    """Render the plugin templates into ``target`` (which must not hold files already)."""
    if not NAME_RE.match(name):
        raise UsageError(f"--name '{name}': names must match {NAME_RE.pattern} (e.g. my_method)")
    if target.exists() and any(target.iterdir()):
        raise UsageError(f"{target} exists and is not empty; choose a new directory")
    values = {
        "name": name,
        "dist": name.replace("_", "-"),
        "cls": "".join(p.capitalize() for p in name.split("_")) + "Method",
    }
    written = []
    for rel, template in FILES.items():
        text = resources.files("nlbench").joinpath("templates").joinpath(template).read_text()
        path = target / rel.format(**values)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text.format(**values), encoding="utf-8")
        written.append(path)
    return written


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
