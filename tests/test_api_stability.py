"""The plugin API holds still: a public name of ``nlbench.api`` never disappears silently.

``tests/golden/api_names.txt`` lists every name the API ever published. Each must still be in
``nlbench.api.__all__`` or in ``nlbench.api.DEPRECATED`` (where it resolves with a
DeprecationWarning), and CHANGELOG.md must name it; a new public name is added to the list and
to CHANGELOG.md in the same change.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from nlbench import api

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = Path(__file__).parent / "golden" / "api_names.txt"


def published() -> list[str]:
    return [line.strip() for line in GOLDEN.read_text().splitlines() if line.strip()]


def test_no_public_name_disappears_without_a_deprecation():
    gone = [n for n in published() if n not in api.__all__ and n not in api.DEPRECATED]
    assert not gone, f"public names removed without a DEPRECATED entry: {gone}"


def test_every_public_name_is_published_and_in_the_changelog():
    listed = set(published())
    new = sorted(set(api.__all__) - listed)
    assert not new, f"new public names: add them to {GOLDEN.name} and CHANGELOG.md: {new}"
    changelog = (ROOT / "CHANGELOG.md").read_text()
    missing = sorted(n for n in listed if f"`{n}`" not in changelog)
    assert not missing, f"CHANGELOG.md does not name: {missing}"


def test_every_exported_name_resolves():
    for name in api.__all__:
        assert getattr(api, name) is not None or name == "DEPRECATED"


@pytest.mark.parametrize("name", sorted(api.DEPRECATED) or ["<none>"])
def test_deprecated_names_warn_and_resolve(name):
    if name == "<none>":
        pytest.skip("no deprecated public names in this release")
    with pytest.warns(DeprecationWarning, match=name):
        assert getattr(api, name) is not None


def test_deprecation_hook_resolves_with_a_warning(monkeypatch):
    monkeypatch.setitem(api.DEPRECATED, "OldLossSpec", ("nlbench.api:LossSpec", "1.1", "2.0"))
    with pytest.warns(DeprecationWarning, match="OldLossSpec is deprecated since API 1.1"):
        assert api.OldLossSpec is api.LossSpec  # resolved by the module's __getattr__
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(AttributeError):
            api.NoSuchName  # noqa: B018


def test_api_version_is_major_minor():
    major, minor = api.API_VERSION.split(".")
    assert major.isdigit() and minor.isdigit()


def test_old_flat_module_paths_import_with_a_deprecation_warning():
    """0.1's ``nlbench.core.specs`` etc. are the modules at their layered paths, with a warning."""
    import subprocess
    import sys

    from nlbench import _moved

    code = (
        "import warnings, importlib, sys\n"
        "warnings.simplefilter('error', DeprecationWarning)\n"
        "old, new = sys.argv[1], sys.argv[2]\n"
        "try:\n"
        "    importlib.import_module(old)\n"
        "    print('no warning')\n"
        "except DeprecationWarning as w:\n"
        "    print('warned', new in str(w))\n"
    )
    for old, new in [("specs", "core.specs"), ("runner", "engine.runner")]:
        out = subprocess.run(
            [sys.executable, "-c", code, f"nlbench.{old}", f"nlbench.{new}"],
            capture_output=True,
            text=True,
            check=True,
        )
        assert out.stdout.split() == ["warned", "True"], out.stderr
    import importlib
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        for old, new in _moved.MOVED.items():
            assert importlib.import_module(f"nlbench.{old}") is importlib.import_module(
                f"nlbench.{new}"
            ), old


@pytest.mark.parametrize("name", sorted(api.DEPRECATED_ATTRIBUTES) or ["<none>"])
def test_deprecated_attributes_are_properties_named_in_the_changelog(name):
    """Each "Class.attr" still reads (a property that warns; its behaviour is tested with the
    class) and CHANGELOG.md names it with its migration."""
    if name == "<none>":
        pytest.skip("no deprecated attributes in this release")
    import inspect

    cls, _, attr = name.partition(".")
    assert isinstance(inspect.getattr_static(getattr(api, cls), attr), property), name
    _, since, until = api.DEPRECATED_ATTRIBUTES[name]
    version = lambda text: tuple(int(p) for p in text.split("."))  # noqa: E731
    assert version(since) <= version(api.API_VERSION) < version(until), (since, until)
    assert f"`{name}`" in (ROOT / "CHANGELOG.md").read_text(), f"CHANGELOG.md does not name {name}"
