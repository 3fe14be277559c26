"""Packaging: a wheel carries the built-in plugins and exposes them through entry points."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_wheel_exposes_builtin_plugins(tmp_path):
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            str(ROOT),
            "-w",
            str(tmp_path / "wheel"),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = (tmp_path / "wheel").glob("nlbench-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        entry_points = zf.read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert "nlbench_plugins/method_erm.py" in names
    assert "method_erm = nlbench_plugins.method_erm" in entry_points
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--target",
            str(target),
            str(wheel),
        ],
        check=True,
        capture_output=True,
    )
    env = {k: v for k, v in os.environ.items() if k != "NLBENCH_DISABLE_PLUGIN_AUTOLOAD"}
    env["PYTHONPATH"] = str(target)
    code = (
        "import json, nlbench, nlbench.host.plugins as p; h = p.load_plugins(); "
        "print(json.dumps([nlbench.__file__, h.registry('methods').entry('erm').distribution]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    path, dist = json.loads(out)
    assert path.startswith(str(target)) and dist == "nlbench"


def _pip(python: Path, *args: str, cwd: Path | None = None) -> None:
    """pip offline: only the given wheels and what the venv already has."""
    cmd = [str(python), "-m", "pip", "install", "-q", "--no-index", "--no-build-isolation", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _fresh_venv(where: Path) -> Path:
    """A venv that sees this environment's third-party packages (torch is big: never
    reinstalled) through a .pth line to a view of them without nlbench (symlinks)."""
    import sysconfig
    import venv

    venv.create(where / "venv", with_pip=False)  # pip and setuptools: this environment's
    python = where / "venv" / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    view = where / "outer-site"
    view.mkdir()
    for entry in Path(sysconfig.get_paths()["purelib"]).iterdir():
        own = entry.name.startswith(("nlbench", "__editable__")) or entry.suffix == ".pth"
        if not own:
            (view / entry.name).symlink_to(entry)
    (Path(purelib) / "outer_site.pth").write_text(f"{view}\n")
    return python


@pytest.mark.slow
def test_wheel_passes_twine_and_a_scaffolded_plugin_installs_against_it(tmp_path):
    """python -m build → twine check → a fresh venv with the wheel → new-plugin → pip install
    the plugin (offline) → it registers and trains."""
    dist = tmp_path / "dist"
    build = [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(dist), str(ROOT)]
    proc = subprocess.run(build, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    (wheel,) = dist.glob("nlbench-*.whl")
    (sdist,) = dist.glob("nlbench-*.tar.gz")
    check = subprocess.run(
        [sys.executable, "-m", "twine", "check", "--strict", str(wheel), str(sdist)],
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    python = _fresh_venv(tmp_path)
    _pip(python, "--find-links", str(dist), "nlbench")
    nlbench = [str(python), "-m", "nlbench"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("NLBENCH_")}
    env["NLBENCH_CACHE"] = str(tmp_path / "cache")
    plugin = tmp_path / "plug"
    scaffold = [*nlbench, "new-plugin", str(plugin), "--name", "zz_plug"]
    subprocess.run(scaffold, check=True, env=env, cwd=tmp_path, capture_output=True)
    _pip(python, "--find-links", str(dist), str(plugin))
    listed = subprocess.run(
        [*nlbench, "list", "methods", "--json"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert listed.returncode == 0, listed.stderr
    rows = {r["name"]: r for r in json.loads(listed.stdout)["methods"]}
    assert rows["zz_plug"]["distribution"] == "nlbench-zz-plug"
    assert rows["erm"]["distribution"] == "nlbench"
    where = subprocess.run(
        [str(python), "-c", "import nlbench; print(nlbench.__file__)"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    ).stdout
    assert str(tmp_path / "venv") in where  # the wheel's copy, not this checkout
    run = [*nlbench, "run", "-m", "zz_plug", "-d", "digits", "--epochs", "1"]
    run += ["--train-subset", "200", "--device", "cpu", "--out", str(tmp_path / "runs"), "-q"]
    trained = subprocess.run(run, capture_output=True, text=True, env=env, cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr[-2000:]
