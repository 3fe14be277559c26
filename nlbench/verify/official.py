"""The user's copy of an official repository: checked, its commit read, its code loaded in scope.

Nothing of the official code ships with nlbench (several repositories have no licence or a
non-commercial one), so the adapters import the copy the user points at. The official training
scripts run their whole experiment at import (argument parsing, data loading, ``.cuda()``), so
:func:`load_script` executes only the named top-level functions and classes of a script, with
the imports they use, in a fresh namespace the adapter fills with the globals they read
(``args``, the loss object, ...). Every import happens with the checkout first on ``sys.path``
and leaves ``sys.modules`` as it found it (:func:`scoped_imports`), so a file of the checkout
named ``utils.py`` never shadows anything else.
"""

from __future__ import annotations

import ast
import contextlib
import importlib
import subprocess
import symtable
import sys
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from nlbench.core.errors import UsageError


def check_checkout(path: str | Path, repo: str, files: Sequence[str]) -> Path:
    """``path`` as a checkout of ``repo``: a usage error naming the first expected file missing."""
    root = Path(path).expanduser()
    if not root.is_dir():
        raise UsageError(f"--official {path}: no such directory (a checkout of {repo})")
    for name in files:
        if not (root / name).is_file():
            raise UsageError(
                f"--official {path}: not a checkout of {repo}: expected the file {name}"
            )
    return root.resolve()


def commit_of(path: Path) -> str:
    """``git rev-parse HEAD`` of the checkout (``+modified`` when tracked files were edited);
    ``unknown`` without git or outside a repository."""
    try:
        head = subprocess.run(
            ["git", "-C", str(path), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(path), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{head}+modified" if head and dirty else head or "unknown"


def _under(module: Any, root: Path) -> bool:
    file = getattr(module, "__file__", None)
    return file is not None and Path(file).resolve().is_relative_to(root)


@contextlib.contextmanager
def scoped_imports(root: Path) -> Iterator[None]:
    """Import from ``root`` first; afterwards ``sys.path`` and ``sys.modules`` are as before.

    Modules the checkout provides (``resnet``, ``utils``, ...) are set aside while it imports
    and dropped after, so neither side sees the other's module of the same name.
    """
    local = {p.stem for p in root.glob("*.py")} | {
        p.parent.name for p in root.glob("*/__init__.py")
    }
    stashed = {name: sys.modules.pop(name) for name in list(local) if name in sys.modules}
    before = set(sys.modules)
    sys.path.insert(0, str(root))
    try:
        yield
    finally:
        with contextlib.suppress(ValueError):
            sys.path.remove(str(root))
        for name in set(sys.modules) - before:
            if name.split(".")[0] in local or _under(sys.modules[name], root):
                del sys.modules[name]
        sys.modules.update(stashed)


def _bound_names(node: ast.Import | ast.ImportFrom) -> set[str]:
    return {(a.asname or a.name).split(".")[0] for a in node.names}


def _global_names(defs: Sequence[ast.AST]) -> set[str]:
    """Names the definitions read from module scope (a parameter that shares a module's name,
    like ``warmup(..., dataloader)``, does not count)."""

    def walk(table: symtable.SymbolTable) -> Iterator[str]:
        for sym in table.get_symbols():
            if sym.is_global() or (table.get_type() == "module" and sym.is_referenced()):
                yield sym.get_name()
        for child in table.get_children():
            yield from walk(child)

    source = ast.unparse(ast.Module(body=list(defs), type_ignores=[]))  # type: ignore[arg-type]
    return set(walk(symtable.symtable(source, "<definitions>", "exec")))


def _wanted_imports(tree: ast.Module, used: set[str]) -> list[ast.stmt]:
    """Top-level imports binding a name the definitions use (and star imports); plotting or
    data-loading modules that the step never touches are not imported."""
    keep: list[ast.stmt] = []
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module == "__future__":
            continue
        if isinstance(node, ast.Import | ast.ImportFrom):
            star = any(a.name == "*" for a in node.names)
            if star or _bound_names(node) & used:
                keep.append(node)
    return keep


def load_script(
    root: Path, file: str, names: Sequence[str], globals_: Mapping[str, Any], repo: str
) -> dict[str, Any]:
    """The named top-level definitions of ``root/file``, executed without the script's body.

    ``globals_`` are set after the imports ran and stand in for the script body's globals (an
    ``np`` proxy, a stub ``plt``); imports of names they provide are skipped. Returns the
    namespace.
    """
    source_path = root / file
    tree = ast.parse(source_path.read_text(encoding="utf-8"), filename=str(source_path))
    defs = [
        n
        for n in tree.body
        if isinstance(n, ast.FunctionDef | ast.ClassDef) and n.name in set(names)
    ]
    missing = sorted(set(names) - {d.name for d in defs})
    if missing:
        raise UsageError(
            f"--official {root}: {file} defines no {', '.join(missing)} "
            f"(not the version of {repo} this adapter knows)"
        )
    # an import whose names the adapter provides (a stub, a proxy) is not executed
    body = _wanted_imports(tree, _global_names(defs) - set(globals_)) + defs
    code = compile(ast.Module(body=body, type_ignores=[]), str(source_path), "exec")
    namespace: dict[str, Any] = {"__name__": f"official_{source_path.stem}", "__file__": file}
    with scoped_imports(root):
        exec(code, namespace)  # the user's own copy, which they asked us to run
    namespace.update(globals_)
    return namespace


def import_module(root: Path, name: str) -> Any:
    """``import name`` from the checkout (a model file without side effects), in scope."""
    with scoped_imports(root):
        return importlib.import_module(name)


class Proxy:
    """A module seen through some replaced attributes (``np.random.beta`` → a recorded draw)."""

    def __init__(self, module: Any, **replaced: Any) -> None:
        self._module = module
        self.__dict__.update(replaced)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._module, name)


@contextlib.contextmanager
def on_cpu() -> Iterator[None]:
    """``.cuda()`` of tensors and modules returns its receiver: the official code runs on the
    CPU next to nlbench (the same kernels on both sides). The deprecation warnings of the old
    code (``reduce=False``, ``kaiming_normal``) are not shown."""
    import torch  # lazy: keeps torch out of this module's import (CLI start-up)

    saved = torch.Tensor.cuda, torch.nn.Module.cuda
    torch.Tensor.cuda = lambda self, *a, **k: self  # type: ignore[method-assign]
    torch.nn.Module.cuda = lambda self, *a, **k: self  # type: ignore[method-assign]
    try:
        with warnings.catch_warnings():
            for category in (UserWarning, FutureWarning, DeprecationWarning):
                warnings.simplefilter("ignore", category)
            yield
    finally:
        torch.Tensor.cuda, torch.nn.Module.cuda = saved  # type: ignore[method-assign]
