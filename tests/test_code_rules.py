"""Size and formatting rules that hold themselves: counted from the source, not from review.

Functions stay under ~60 lines and modules under ~400 once formatted (ruff format, line length
100), and the formatter is not switched off line by line.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import TypeGuard

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted([*ROOT.glob("nlbench/**/*.py"), *ROOT.glob("plugins/**/*.py")])
MAX_FUNCTION_LINES = 60
MAX_MODULE_LINES = 400
# modules still over the limit, each to be split by meaning; the
# list may only shrink
OVERSIZE: set[str] = set()


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def test_no_formatter_switched_off():
    """Nothing in the package, the plugins, the tests or the benchmarks opts out of
    ``ruff format`` (this file names the markers, so it is the one exception)."""
    checked = [*SOURCES, *ROOT.glob("tests/**/*.py"), *ROOT.glob("benchmarks/**/*.py")]
    marked = [
        f"{_rel(p)}:{i}"
        for p in checked
        if p != Path(__file__).resolve()
        for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
        if "fmt: " + "skip" in line or "fmt: " + "off" in line
    ]
    assert not marked, marked


def _lines(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    assert node.end_lineno is not None  # ast.parse sets it
    return node.end_lineno - node.lineno + 1


@pytest.mark.parametrize("path", SOURCES, ids=_rel)
def test_functions_are_short(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    long = [
        f"{node.name} ({_lines(node)} lines)"
        for node in ast.walk(tree)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        and _lines(node) > MAX_FUNCTION_LINES
    ]
    assert not long, f"{_rel(path)}: {long}"


def test_modules_are_short():
    sizes = {_rel(p): p.read_text(encoding="utf-8").count("\n") for p in SOURCES}
    over = {name for name, n in sizes.items() if n > MAX_MODULE_LINES}
    assert over <= OVERSIZE, f"new modules over {MAX_MODULE_LINES} lines: {sorted(over - OVERSIZE)}"
    assert over >= OVERSIZE, f"split already, drop from OVERSIZE: {sorted(OVERSIZE - over)}"


def test_built_in_plugins_import_only_the_public_api():
    """The built-ins show third parties what to import: ``nlbench.api`` (and its submodules),
    never an internal module of the core, so the plugin boundary is the one that holds still."""
    root = Path(__file__).resolve().parents[1] / "plugins"
    found = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.ImportFrom) and not node.level:
                names = [node.module or ""]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            for name in names:
                internal = name == "nlbench" or name.startswith("nlbench.")
                if internal and not (name == "nlbench.api" or name.startswith("nlbench.api.")):
                    found.append(f"{path.relative_to(root.parent)}:{node.lineno} {name}")
    assert not found, f"plugins import internal nlbench modules (use nlbench.api): {found}"


def test_built_in_plugins_name_flags_through_the_enum():
    """A built-in plugin writes ``MethodFlag.TWO_NET``, not ``"two_net"`` (third parties may
    still pass the string)."""
    from nlbench.api import MethodFlag

    values = {flag.value for flag in MethodFlag}
    found = [
        f"{_rel(path)}:{node.lineno} {node.value!r}"
        for path in sorted((ROOT / "plugins").rglob("*.py"))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Constant) and node.value in values
    ]
    assert not found, f"use nlbench.api.MethodFlag: {found}"


# modules below the runner: they get the plugin host (or what it resolves) passed in
BELOW_THE_RUNNER = (
    "nlbench.training.method",
    "nlbench.core.hparams",
    "nlbench.training.components",
    "nlbench.training.data",
    "nlbench.training.metrics",
    "nlbench.training.phases",
)


def _imports_plugins(node: ast.AST) -> TypeGuard[ast.Import | ast.ImportFrom]:
    if isinstance(node, ast.Import):
        return any(a.name == "nlbench.host.plugins" for a in node.names)
    if isinstance(node, ast.ImportFrom) and not node.level:
        if node.module == "nlbench":
            return any(a.name == "plugins" for a in node.names)
        return node.module == "nlbench.host.plugins"
    return False


@pytest.mark.parametrize("module", BELOW_THE_RUNNER)
def test_no_global_host_below_the_runner(module):
    """Only entry points (commands, the runner, nlbench.api) may reach the global plugin host;
    below them it is passed in (``ctx.components``, ``resolve_hparams(..., host)``), so a run
    built on one host never resolves a name in another. Imports inside functions count."""
    import importlib

    path = Path(importlib.import_module(module).__file__ or "")
    found = [n.lineno for n in ast.walk(ast.parse(path.read_text())) if _imports_plugins(n)]
    assert not found, f"{module} imports nlbench.host.plugins at line(s) {found}"


def _function_level_imports(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    """Imports inside a def or class body (module-level ``if``/``try`` blocks are top level)."""
    top: set[int] = set()
    for node in tree.body:
        nodes = ast.walk(node) if isinstance(node, (ast.If, ast.Try)) else [node]
        top.update(id(n) for n in nodes)
    return [
        n
        for n in ast.walk(tree)
        if isinstance(n, (ast.Import, ast.ImportFrom)) and id(n) not in top
    ]


def test_function_level_imports_say_why_they_are_lazy():
    """With no import cycle left, an import inside a function is there only to keep something
    heavy (torch, numpy, an optional dependency) out of a module's import, mostly the CLI's
    start-up; it says so in a ``# lazy: ...`` comment on its line or just above its block."""
    missing = []
    for path in sorted((ROOT / "nlbench").rglob("*.py")):
        lines = path.read_text(encoding="utf-8").split("\n")
        for node in _function_level_imports(ast.parse("\n".join(lines))):
            i = node.lineno - 1
            while i >= 0:
                line = lines[i].strip()
                if "# lazy" in line:
                    break
                if i < node.lineno - 1 and line and not line.startswith(("#", "import ", "from ")):
                    i = -1
                    break
                i -= 1
            if i < 0:
                missing.append(f"{_rel(path)}:{node.lineno} {lines[node.lineno - 1].strip()}")
    assert not missing, "function-level imports without a '# lazy: why' comment:\n" + "\n".join(
        missing
    )
