"""Provenance for records: versions, git sha, plugins, hardware."""

from __future__ import annotations

import platform
import subprocess
from pathlib import Path
from typing import Any

import torch

from nlbench.core.version import __version__


def git_sha() -> str | None:
    """The commit of the nlbench checkout, when it is one (None for a wheel install)."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return platform.processor() or platform.machine() or "cpu"


def cpu_capability() -> str | None:
    """The vector ISA torch dispatches CPU kernels to (``AVX512``, ``AVX2``, ...): CPU float
    results depend on it as on the thread count, so a rerun can say why it differs."""
    get = getattr(getattr(torch.backends, "cpu", None), "get_cpu_capability", None)
    return str(get()) if get is not None else None


def cpu_model() -> str | None:
    """The CPU's model name (``/proc/cpuinfo`` on Linux, else the platform's processor string):
    two CPUs with one vector ISA (say AVX512 on an Intel and on an AMD part) can still give
    different float results, so a record names the part it ran on."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip() or None
    except OSError:
        pass
    return platform.processor() or None


def provenance(host: Any, device: torch.device) -> dict[str, Any]:
    return {
        "nlbench_version": __version__,
        "git_sha": git_sha(),
        "plugins": host.plugin_versions(),
        "env": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "device": str(device),
            "device_name": device_name(device),
            "threads": torch.get_num_threads(),  # a rerun sets it back (nlbench rerun)
            "cpu_capability": cpu_capability(),
            "cpu_model": cpu_model(),
        },
    }
