"""The CLI starts at once: no torch for --version, --help, hookimpl, or a warm list/show."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
from helpers import unbuilt

PROBE = """
import sys
from nlbench.cli import main
try:
    main({argv!r})
except SystemExit as exc:
    assert exc.code in (0, None), exc.code
print("TORCH" if "torch" in sys.modules else "NO-TORCH", file=sys.stderr)
"""


def _probe(argv: list[str], env: dict | None = None) -> str:
    command = [sys.executable, "-c", PROBE.format(argv=argv)]
    environ = {**os.environ, **(env or {})}
    proc = subprocess.run(command, capture_output=True, text=True, env=environ, check=True)
    return proc.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize("argv", [["--version"], ["--help"], ["run", "--help"]])
def test_version_and_help_do_not_import_torch(argv):
    assert _probe(argv) == "NO-TORCH"


def test_hookimpl_import_does_not_import_torch():
    code = "import sys; from nlbench import hookimpl; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_lazy_api_still_importable():
    import nlbench

    assert callable(nlbench.run) and callable(nlbench.build_dataset)


def test_cache_key_changes_when_a_plugin_source_changes(tmp_path, monkeypatch):
    """Touching a plugin's source file invalidates the cached listing."""
    from nlbench.host import static_cache

    plugin = tmp_path / "nlb_cache_probe.py"
    plugin.write_text("X = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    candidates = [("probe", "nlb_cache_probe", ("d", "1"))]
    monkeypatch.setattr("nlbench.host.plugins._candidates", lambda: candidates)
    before = static_cache.fingerprint()
    assert static_cache.fingerprint() == before
    plugin.write_text("X = 22\n")
    os.utime(plugin, ns=(time.time_ns() + 10**9, time.time_ns() + 10**9))
    assert static_cache.fingerprint() != before


@pytest.mark.slow
def test_warm_list_and_show_do_not_import_torch(tmp_path):
    env = {"NLBENCH_CACHE": str(tmp_path)}
    for argv in (["list", "--json"], ["show", "loss", "gce"], ["show", "method", "erm"]):
        _probe(argv, env)  # fills the cache (loads plugins)
        assert _probe(argv, env) == "NO-TORCH", argv


def test_show_every_kind_and_list_losses(tmp_path, monkeypatch, capsys):
    from helpers import run_cli

    monkeypatch.setenv("NLBENCH_CACHE", str(tmp_path))
    shown = [
        ("loss", "gce"),
        ("dataset", "digits"),
        ("noise", "sym"),
        ("model", "tiny_cnn"),
        ("selector", "fl"),
        ("reweighter", "density"),
        ("executor", "local"),
    ]
    for kind, name in shown:
        result = run_cli(capsys, "show", kind, name, "--json")
        assert result.code == 0, result.err
        assert json.loads(result.out)["name"] == name
    result = run_cli(capsys, "show", "loss", "gcee")
    assert result.code == 2 and "Did you mean 'gce'" in result.err
    listed = json.loads(run_cli(capsys, "list", "losses", "--json").out)
    assert {"ce", "gce", "sce"} <= {row["name"] for row in listed["losses"]}


def test_cache_is_bypassed_for_plugins_passed_in(tmp_path, monkeypatch):
    import types

    from nlbench import hookimpl
    from nlbench.commands.list import listing
    from nlbench.core.specs import LossSpec
    from nlbench.host import plugins

    @hookimpl
    def register_losses(register):
        register(LossSpec("zz_passed_in", "test", unbuilt))

    monkeypatch.setenv("NLBENCH_CACHE", str(tmp_path))
    plugins.reset()
    try:
        plugin = types.SimpleNamespace(register_losses=register_losses)
        plugins.load_plugins(extra=[("zz", plugin)])
        assert "zz_passed_in" in {r["name"] for r in listing(["losses"])["losses"]}
        plugins.reset()
        assert "zz_passed_in" not in {r["name"] for r in listing(["losses"])["losses"]}
    finally:
        plugins.reset()
