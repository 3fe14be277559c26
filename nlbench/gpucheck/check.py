"""Run the GPU check's sections and write one JSON report (atomically, ``ok`` at the top)."""

from __future__ import annotations

import datetime as _dt
import json
import logging
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nlbench.core.atomic import atomic_write_text
from nlbench.core.errors import UsageError
from nlbench.gpucheck import settings as presets
from nlbench.gpucheck.ddp import run_ddp
from nlbench.gpucheck.settings import CheckSettings
from nlbench.host.plugins import get_host

log = logging.getLogger(__name__)


def _sections(data_root: Path | None) -> dict[str, Callable[[CheckSettings, Path], dict]]:
    # lazy: keeps numpy, torch out of this module's import (CLI start-up)
    from nlbench.gpucheck.epochs import run_epochs

    # lazy: keeps numpy, torch out of this module's import (CLI start-up)
    from nlbench.gpucheck.speed import run_method_ratios, run_speed

    return {
        "speed": lambda s, work: run_speed(s),
        "method_ratios": lambda s, work: run_method_ratios(s),
        "epochs": lambda s, work: run_epochs(s, work, data_root),
        "ddp": lambda s, work: run_ddp(s, work, data_root),
    }


def settings_for(tiny: bool, device: str) -> CheckSettings:
    """``--tiny`` on any device (CPU by default); the full check needs a CUDA GPU."""
    import torch  # lazy: keeps torch out of this module's import (CLI start-up)

    if tiny:
        return presets.tiny("cpu" if device == "auto" else device)
    if device in ("auto", "cuda") and not torch.cuda.is_available():
        raise UsageError(
            "gpu-check: no CUDA GPU is visible here; run it on the GPU machine, "
            "or pass --tiny for the CPU self-test"
        )
    return presets.full("cuda" if device == "auto" else device)


def run_check(s: CheckSettings, data_root: Path | None, only: tuple[str, ...] = ()) -> dict:
    """Every section (or those in ``only``) in a scratch folder; the report dict."""
    # lazy: keeps numpy, torch out of this module's import (CLI start-up)
    from nlbench.core.envinfo import provenance

    # lazy: keeps numpy, torch out of this module's import (CLI start-up)
    from nlbench.engine.prepare import resolve_device

    started = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    report: dict[str, Any] = {
        "ok": False,
        "tiny": s.tiny,
        "started": started,
        **provenance(get_host(), resolve_device(s.device)),
        "sections": {},
    }
    with tempfile.TemporaryDirectory(prefix="nlbench-gpucheck-") as tmp:
        for name, section in _sections(data_root).items():
            if only and name not in only:
                continue
            t0 = time.perf_counter()
            work = Path(tmp) / name
            work.mkdir()
            try:
                result = section(s, work)
            except Exception as exc:  # noqa: BLE001 - a broken section is reported, not fatal
                log.warning("gpu-check %s failed: %s", name, exc)
                result = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
            result["seconds"] = time.perf_counter() - t0
            report["sections"][name] = result
    report["ok"] = all(sec.get("ok") for sec in report["sections"].values())
    report["failed"] = [k for k, v in report["sections"].items() if not v.get("ok")]
    return report


def write_report(report: dict[str, Any], out: Path) -> None:
    """Write ``out`` whole or not at all (a temporary file renamed into place)."""
    atomic_write_text(out, json.dumps(report, indent=1, sort_keys=True, default=str) + "\n")
