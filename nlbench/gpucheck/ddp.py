"""The same ERM run under ``torchrun`` and without it: records must agree.

With several visible GPUs (or ``--tiny``: two CPU processes) the torchrun leg is real
DistributedDataParallel (NCCL on GPUs, gloo on CPUs): gradients averaged, scans all-gathered,
rank 0 writing. With one GPU, torchrun starts one process, which nlbench runs without a process
group; the leg then checks the launch path and that the record is the same run.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from nlbench.gpucheck.settings import CheckSettings


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _config(s: CheckSettings, data_root: Path | None) -> dict[str, Any]:
    """The run both legs make (RunConfig fields)."""
    cfg: dict[str, Any] = {
        "method": "erm",
        "dataset": s.ddp_dataset,
        "noise": "sym:0.4",
        "epochs": 2,
        "device": s.device,
        "run_id": "d",
        "train_subset": s.ddp_subset,
    }
    cfg.update({"model": "tiny_cnn"} if s.tiny else {"profile": "paper"})
    if data_root:
        cfg["data_root"] = str(data_root)
    return cfg


def _root(s: CheckSettings, work: Path, data_root: Path | None) -> Path | None:
    """Real CIFAR-10 when the data root has it, else a synthetic copy (no download, ever)."""
    # lazy: keeps numpy, torch out of this module's import (CLI start-up)
    from nlbench.gpucheck.epochs import has_cifar10, write_synthetic_cifar10

    if s.ddp_dataset != "cifar10" or has_cifar10(data_root):
        return data_root
    return write_synthetic_cifar10(work / "data", s.synthetic_train, s.synthetic_test)


def _cli_args(cfg: dict[str, Any]) -> list[str]:
    args = ["run", "-q"]
    for key, value in cfg.items():
        args += [f"--{key.replace('_', '-')}", str(value)]
    return args


def _procs(s: CheckSettings) -> int:
    if s.ddp_procs:
        return s.ddp_procs
    import torch  # lazy: keeps torch out of this module's import (CLI start-up)

    return max(1, torch.cuda.device_count())


def _launch(cmd: list[str], timeout: float) -> tuple[int, str, float]:
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    return proc.returncode, proc.stderr[-8000:], time.perf_counter() - t0


def _cause(stderr: str) -> str:
    """The worker's own error line, not torchrun's banner of '=' rules that follows it."""
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip().strip("=")]
    errors = [ln for ln in lines if "Error" in ln or "error:" in ln]
    return (errors or lines or ["(no stderr)"])[-1][:500]


def run_ddp(s: CheckSettings, work: Path, data_root: Path | None) -> dict[str, Any]:
    """The plain leg in this process, the torchrun leg as a subprocess; records compared."""
    # lazy: keeps numpy, torch out of this module's import (CLI start-up)
    from nlbench.api import run

    procs, cfg = _procs(s), _config(s, _root(s, work, data_root))
    backend = "none: one process runs without a process group"
    if procs > 1:
        backend = "gloo" if s.device == "cpu" else "nccl"
    out: dict[str, Any] = {"processes": procs, "backend": backend}
    t0 = time.perf_counter()
    single = run(**cfg, out=str(work / "one"))
    out["single_seconds"] = time.perf_counter() - t0
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc-per-node",
        str(procs),
        "--master-port",
        str(_free_port()),
        "-m",
        "nlbench",
        *_cli_args(cfg),
        "--out",
        str(work / "ddp"),
    ]
    code, err, out["torchrun_seconds"] = _launch(cmd, 300 if s.tiny else 420)
    if code != 0:
        out.update(ok=False, error=f"torchrun exited {code}: {_cause(err)}")
        return out
    ddp = json.loads((work / "ddp" / "d" / "run.json").read_text())
    out.update(compare(single, ddp, procs, tolerance=0.1 if s.tiny else 0.05))
    return out


def compare(a: dict[str, Any], b: dict[str, Any], procs: int, tolerance: float) -> dict[str, Any]:
    """Same labels, world size as launched, per-epoch test accuracy within ``tolerance``."""
    problems = []
    if a["noise"]["labels_sha256"] != b["noise"]["labels_sha256"]:
        problems.append("different noisy labels")
    if b["env"].get("world_size") != procs:
        problems.append(f"world_size {b['env'].get('world_size')} != {procs}")
    if len(a["epochs"]) != len(b["epochs"]) or a["status"] != "done" or b["status"] != "done":
        problems.append(f"status {a['status']} / {b['status']}")
    accs = [(x.get("test_acc"), y.get("test_acc")) for x, y in zip(a["epochs"], b["epochs"])]
    gaps = [abs(x - y) for x, y in accs if x is not None and y is not None]
    if len(gaps) != len(a["epochs"]) or not gaps or max(gaps) > tolerance:
        problems.append(f"test accuracy per epoch differs: {accs} (tolerance {tolerance})")
    return {
        "test_acc": accs,
        "max_gap": max(gaps, default=None),
        "problems": problems,
        "ok": not problems,
    }
