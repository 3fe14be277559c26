"""Start-up time of the ``nlbench`` CLI as a ratio to ``python -c pass``.

    pytest benchmarks/bench_cli_startup.py --benchmark-only -s

Each command runs as a child process (one process tree, as a user's shell runs it); the
targets are checked on the children's CPU time (user + sys), which a machine shared with other
work does not inflate the way it inflates wall time. Targets:
``--version`` and ``--help`` within 0.5 s of a bare interpreter (no torch, no plugins);
``list`` and ``show`` on a warm static cache (nlbench.host.static_cache) likewise without torch;
the usage errors of a first hour (an unknown method, ``--set lr=abc``, a run whose dataset is
missing) answered from that cache (nlbench.engine.preflight) within 1 s in all, torch never imported.
The ratios are printed after the last benchmark. Measured on the project's shared 2-core
machine (busy, median of 5): the three usage errors 0.13-0.14 s of CPU each, 7x ``python -c
pass`` (0.019 s), about 0.4 s wall; before this check they imported torch first (4-5 s of CPU,
37-96 s wall under load).
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
    "run -m nosuch -d digits": [
        sys.executable,
        "-m",
        "nlbench",
        "run",
        "-m",
        "nosuch",
        "-d",
        "digits",
    ],
    "run --set lr=abc": [sys.executable, "-m", "nlbench", "run", "-d", "digits", "--set", "lr=abc"],
    "run, data missing": [
        sys.executable,
        "-m",
        "nlbench",
        "run",
        "-d",
        "cifar100",
        "--data-root",
        "{empty}",
    ],
}
TARGET_S = {"nlbench --version": 0.5, "nlbench --help": 0.5}
USAGE_ERRORS = ("run -m nosuch -d digits", "run --set lr=abc", "run, data missing")
USAGE_ERROR_S = 1.0  # the whole answer, interpreter included
RESULTS: dict[str, float] = {}


def _cpu_seconds(argv: list[str], env: dict[str, str]) -> float:
    """user + sys seconds of one child process running ``argv`` (usage errors exit 2)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run(argv, env=env, capture_output=True, text=True)
    assert proc.returncode in (0, 2), proc.stderr
    assert "Traceback" not in proc.stderr
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    environ = {**os.environ, "NLBENCH_CACHE": str(tmp_path_factory.mktemp("cache"))}
    environ["NLBENCH_OFFLINE"] = "1"  # a missing dataset is an answer, not a download
    empty = str(tmp_path_factory.mktemp("empty"))
    for name, argv in COMMANDS.items():
        COMMANDS[name] = [a.replace("{empty}", empty) for a in argv]
    for argv in COMMANDS.values():  # warm the static cache and the OS file cache
        subprocess.run(argv, env=environ, capture_output=True)
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
    if name in USAGE_ERRORS:
        assert RESULTS[name] < USAGE_ERROR_S, f"{name}: {RESULTS[name]:.2f} s CPU"
    if len(RESULTS) == len(COMMANDS):
        base = RESULTS["python -c pass"]
        for key, seconds in RESULTS.items():
            ratio = seconds / max(base, 1e-3)
            print(f"\n{key:32s} {seconds:6.3f} s CPU  {ratio:5.1f}x python -c pass", end="")
