"""Helpers shared by the CLI tests."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from typing import Any


@dataclass
class CliResult:
    code: int
    out: str
    err: str


def run_cli(capsys, *args: str) -> CliResult:
    """Run ``nlbench ARGS`` in-process through the real entry point (error handling included)."""
    from nlbench.cli import main

    return run_cli_main(main, capsys, *args)


def run_cli_main(main, capsys, *args: str) -> CliResult:
    """Call an entry point ``main(argv)`` in-process: its exit code and captured output."""
    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return CliResult(code, captured.out, captured.err)


def run_cli_subprocess(*args: str, env=None, timeout: float = 300) -> CliResult:
    proc = subprocess.run(
        [sys.executable, "-m", "nlbench", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


def assert_usage_error(result: CliResult, *fragments: str) -> None:
    """Exit code 2, exactly one line on stderr, no traceback, mentioning each fragment."""
    assert result.code == 2, (result.code, result.err)
    lines = [ln for ln in result.err.splitlines() if ln.strip()]
    assert len(lines) == 1, result.err
    assert "Traceback" not in result.err
    for frag in fragments:
        assert frag in lines[0], (frag, lines[0])


def digits_run(noise: str, epochs: int, train_subset: int, *extra: str) -> list[str]:
    """``nlbench run`` arguments for a small ERM run on the embedded digits set on the CPU."""
    base = f"run -m erm -d digits -n {noise} --epochs {epochs} --train-subset {train_subset}"
    return [*base.split(), "--device", "cpu", *extra]


def unbuilt(*args: Any, **kwargs: Any) -> Any:
    """The factory of a spec a test registers but never builds (registry, listing, checks)."""
    raise AssertionError("this test spec is never built")
