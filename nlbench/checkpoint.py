"""End-of-epoch checkpoints: temp file, fsync, rename; read back with weights_only=True."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from nlbench.config import canonical_json
from nlbench.errors import UsageError

NAME = "checkpoint.pt"


def _rng_state(ctx: Any) -> dict[str, Any]:
    state = {"data_gen": ctx.gen.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def save(run_dir: Path, state: Any, method: Any, ctx: Any, totals: dict[str, Any]) -> None:
    """Write everything needed to continue after this epoch, atomically."""
    payload = {
        "identity": canonical_json(state.prep.key),  # what the run_id hashes
        "epochs": state.epochs,
        "totals": totals,
        "networks": {k: v.state_dict() for k, v in method.networks().items()},
        "optimizers": [o.state_dict() for o in method.scheduled_optimizers()],
        "extra": method.extra_state(),
        "rng": _rng_state(ctx),
    }
    path = Path(run_dir) / NAME
    fd, tmp = tempfile.mkstemp(prefix=".ckpt.", suffix=".tmp", dir=run_dir)
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(payload, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load(run_dir: Path, state: Any, method: Any, ctx: Any) -> dict[str, Any] | None:
    """Restore method and RNG state from the last checkpoint; None when there is none."""
    path = Path(run_dir) / NAME
    if not path.exists():
        return None
    payload = torch.load(path, map_location=ctx.device, weights_only=True)
    known = (canonical_json(state.prep.key), canonical_json(state.prep.identity))  # new, legacy
    if payload["identity"] not in known:
        raise UsageError(
            f"--resume: the checkpoint in {run_dir} was made with a different config; "
            "rerun without --resume or with the original flags"
        )
    for name, net in method.networks().items():
        net.load_state_dict(payload["networks"][name])
    for opt, opt_state in zip(method.scheduled_optimizers(), payload["optimizers"]):
        opt.load_state_dict(opt_state)
    method.load_extra_state(payload["extra"])
    rng = payload["rng"]
    ctx.gen.set_state(rng["data_gen"].cpu() if ctx.device.type == "cpu" else rng["data_gen"].cpu())
    torch.set_rng_state(rng["torch"].cpu())
    if "cuda" in rng and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in rng["cuda"]])
    _truncate_epochs_log(Path(run_dir), len(payload["epochs"]))
    return {"epochs": list(payload["epochs"]), **payload["totals"]}


def _truncate_epochs_log(run_dir: Path, n: int) -> None:
    """Drop epoch lines written after the checkpoint (a kill between append and save)."""
    path = run_dir / "epochs.jsonl"
    if path.exists():
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
        complete = [ln for ln in lines if ln.endswith("\n")][:n]
        path.write_text("".join(complete), encoding="utf-8")


def remove(run_dir: Path) -> None:
    """Drop the checkpoint once the run is done (records stay small)."""
    (Path(run_dir) / NAME).unlink(missing_ok=True)
