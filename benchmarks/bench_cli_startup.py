"""Start-up time of the ``nlbench`` CLI as a ratio to ``python -c pass``.

    pytest benchmarks/bench_cli_startup.py --benchmark-only -s

Each command runs as a child process (one process tree, as a user's shell runs it); the
targets are checked on the children's CPU time (user + sys), which a machine shared with other
work does not inflate the way it inflates wall time. Targets:
``--version`` and ``--help`` within 0.5 s of a bare interpreter (no torch, no plugins);
``list`` and ``show`` on a warm static cache (nlbench.static_cache) likewise without torch.
The ratios are printed after the last benchmark.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys

import pytest

COMMANDS = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "nlbench --version": [sys.executable, "-m", "nlbench", "--version"],
    "nlbench --help": [sys.executable, "-m", "nlbench", "--help"],
    "nlbench list (warm)": [sys.executable, "-m", "nlbench", "list", "--json"],
    "nlbench show method erm (warm)": [sys.executable, "-m", "nlbench", "show", "method", "erm"],
}
TARGET_S = {"nlbench --version": 0.5, "nlbench --help": 0.5}
RESULTS: dict[str, float] = {}


def _cpu_seconds(argv: list[str], env: dict[str, str]) -> float:
    """user + sys seconds of one child process running ``argv``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(argv, env=env, capture_output=True, check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    environ = {**os.environ, "NLBENCH_CACHE": str(tmp_path_factory.mktemp("cache"))}
    for argv in COMMANDS.values():  # warm the static cache and the OS file cache
        subprocess.run(argv, env=environ, capture_output=True, check=True)
    return environ


@pytest.mark.parametrize("name", list(COMMANDS))
def test_cli_startup(benchmark, env, name):
    argv = COMMANDS[name]
    cpu: list[float] = []
    benchmark.pedantic(lambda: cpu.append(_cpu_seconds(argv, env)), rounds=5, warmup_rounds=1)
    RESULTS[name] = sorted(cpu)[len(cpu) // 2]
    if name in TARGET_S:
        overhead = RESULTS[name] - RESULTS["python -c pass"]
        assert overhead < TARGET_S[name], f"{name}: {overhead:.2f} s over python -c pass"
    if len(RESULTS) == len(COMMANDS):
        base = RESULTS["python -c pass"]
        for key, seconds in RESULTS.items():
            ratio = seconds / max(base, 1e-3)
            print(f"\n{key:32s} {seconds:6.3f} s CPU  {ratio:5.1f}x python -c pass", end="")
