"""End-of-epoch checkpoints, written atomically and read back with ``weights_only=True``.

A checkpoint holds the run's identity, finished epochs, totals, RNG states and the method's
one state channel (:meth:`nlbench.method.Method.state_dict`). A checkpoint that cannot be read
is refused with one line: never a half-loaded method, never the advice to unpickle freely.
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from nlbench.atomic import atomic_file
from nlbench.config import canonical_json
from nlbench.errors import UsageError
from nlbench.record import write_epochs

NAME = "checkpoint.pt"
RUNNER_KEYS = ("identity", "epochs", "totals", "rng")


def _rng_state(ctx: Any) -> dict[str, Any]:
    state = {"data_gen": ctx.gen.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def save(run_dir: Path, state: Any, method: Any, ctx: Any, totals: dict[str, Any]) -> None:
    """Write everything needed to continue after this epoch, atomically."""
    payload = {
        **method.state_dict(),
        "identity": canonical_json(state.prep.key),  # what the run_id hashes
        "epochs": state.epochs,
        "totals": totals,
        "rng": _rng_state(ctx),
    }
    with atomic_file(Path(run_dir) / NAME, "wb") as fh:
        torch.save(payload, fh)


class CheckpointError(UsageError):
    """A checkpoint that is truncated, empty, wrong-keyed or holds more than tensors."""


def _refuse(path: Path, reason: str) -> CheckpointError:
    return CheckpointError(
        f"checkpoint {path} cannot be read ({reason}): restart without --resume to train from "
        "epoch 0, or delete it"
    )


def _read(path: Path, device: torch.device) -> dict[str, Any]:
    """torch.load with weights_only=True; every failure becomes one CheckpointError."""
    try:
        payload = torch.load(path, map_location=device, weights_only=True)
    except pickle.UnpicklingError:  # torch's message advises weights_only=False: never
        raise _refuse(path, "it holds objects other than tensors and plain Python") from None
    except (EOFError, zipfile.BadZipFile, RuntimeError, ValueError, OSError) as exc:
        raise _refuse(path, f"empty, truncated or not a checkpoint: {type(exc).__name__}") from None
    if not isinstance(payload, dict):
        raise _refuse(path, f"a {type(payload).__name__}, not a checkpoint")
    missing = [k for k in (*RUNNER_KEYS, "networks") if k not in payload]
    if missing:
        raise _refuse(path, f"missing {', '.join(missing)}")
    return payload


def load(run_dir: Path, state: Any, method: Any, ctx: Any) -> dict[str, Any] | None:
    """Restore method and RNG state from the last checkpoint; None when there is none."""
    path = Path(run_dir) / NAME
    if not path.exists():
        return None
    payload = _read(path, ctx.device)
    known = (canonical_json(state.prep.key), canonical_json(state.prep.identity))  # new, legacy
    if payload["identity"] not in known:
        raise UsageError(
            f"--resume: the checkpoint in {run_dir} was made with a different config; "
            "rerun without --resume or with the original flags"
        )
    try:
        method.load_state_dict({k: v for k, v in payload.items() if k not in RUNNER_KEYS})
        rng = payload["rng"]
        ctx.gen.set_state(rng["data_gen"].cpu())
        torch.set_rng_state(rng["torch"].cpu())
        if "cuda" in rng and torch.cuda.is_available():
            torch.cuda.set_rng_state_all([s.cpu() for s in rng["cuda"]])
        epochs, totals = list(payload["epochs"]), dict(payload["totals"])
    except (KeyError, ValueError, RuntimeError, TypeError, AttributeError) as exc:
        detail = " ".join(str(exc).split())[:200]
        raise _refuse(path, f"it does not fit this method: {type(exc).__name__} {detail}") from None
    write_epochs(Path(run_dir), epochs)  # the log says exactly what the checkpoint holds
    return {"epochs": epochs, **totals}


def remove(run_dir: Path) -> None:
    """Drop the checkpoint once the run is done (records stay small)."""
    (Path(run_dir) / NAME).unlink(missing_ok=True)
