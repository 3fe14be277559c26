"""End-of-epoch checkpoints, written atomically and read back with ``weights_only=True``.

A checkpoint holds the run's identity (the key its run_id hashes, input file hashes included),
the noisy labels' hash, finished epochs, totals, RNG states and the method's one state channel
(:meth:`nlbench.training.method.Method.state_dict`). A checkpoint is checked completely before
anything
is restored or written (types, epochs against the run's ``epochs``, the identity, the labels):
a bad one is refused with one line and kept, never half-loaded, and the epoch log is rewritten
only from a checkpoint that passed. It is serialised in memory first, so a full disk is the
atomic writer's one-line error, never torch's wrapped ``RuntimeError``.
"""

from __future__ import annotations

import io
import json
import math
import pickle
from pathlib import Path
from typing import Any

import torch

from nlbench.core.atomic import atomic_file
from nlbench.core.config import canonical_json
from nlbench.core.errors import UsageError
from nlbench.core.identity import changed_inputs
from nlbench.core.record import write_epochs

NAME = "checkpoint.pt"
RUNNER_KEYS = ("identity", "epochs", "totals", "rng")
# not in checkpoints of nlbench <= 0.1 (labels_sha256), or before method facts
OPTIONAL_KEYS = ("labels_sha256", "method_facts")
TOTALS = ("wall_s", "images", "train_s")  # and cpu_s, None in checkpoints that predate it


def _rng_state(ctx: Any) -> dict[str, Any]:
    state = {"data_gen": ctx.gen.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _labels_sha256(state: Any) -> str | None:
    noise = getattr(state.prep, "noise", None)
    return noise.get("labels_sha256") if isinstance(noise, dict) else None


def save(
    run_dir: Path,
    state: Any,
    method: Any,
    ctx: Any,
    totals: dict[str, Any],
    facts: dict[str, Any] | None = None,
) -> None:
    """Write everything needed to continue after this epoch, atomically. ``facts`` are the
    method's record facts now: a resume checks the restored method reports the same."""
    payload = {
        **method.state_dict(),
        "identity": canonical_json(state.prep.key),  # what the run_id hashes
        "labels_sha256": _labels_sha256(state),
        "epochs": state.epochs,
        "totals": totals,
        "rng": _rng_state(ctx),
        **({"method_facts": facts} if facts is not None else {}),
    }
    buffer = io.BytesIO()  # torch reports a failed file write as RuntimeError: write bytes here
    torch.save(payload, buffer)
    with atomic_file(Path(run_dir) / NAME, "wb") as fh:
        fh.write(buffer.getbuffer())


class CheckpointError(UsageError):
    """A checkpoint that is truncated, empty, wrong-keyed or holds more than tensors."""


def _refuse(path: Path, reason: str) -> CheckpointError:
    return CheckpointError(
        f"checkpoint {path} cannot be read ({reason}): restart without --resume to train from "
        "epoch 0, or delete it"
    )


def _read(path: Path, device: torch.device) -> dict[str, Any]:
    """torch.load with weights_only=True; every failure becomes one CheckpointError."""
    if path.is_symlink() or not path.is_file():
        raise _refuse(path, "not a regular file")
    try:
        payload = torch.load(path, map_location=device, weights_only=True)
    except pickle.UnpicklingError:  # torch's message advises weights_only=False: never
        raise _refuse(path, "it holds objects other than tensors and plain Python") from None
    # a damaged file fails inside torch's unpickler in any way (KeyError, IndexError, struct
    # errors, ...): all of it is "not a checkpoint"
    except Exception as exc:  # noqa: BLE001
        raise _refuse(path, f"empty, truncated or not a checkpoint: {type(exc).__name__}") from None
    if not isinstance(payload, dict):
        raise _refuse(path, f"a {type(payload).__name__}, not a checkpoint")
    missing = [k for k in (*RUNNER_KEYS, "networks") if k not in payload]
    if missing:
        raise _refuse(path, f"missing {', '.join(missing)}")
    return payload


def _number(value: Any, none_ok: bool = False) -> bool:
    if value is None:
        return none_ok
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value >= 0
    )


def check_progress(path: Path, payload: dict[str, Any], total: int) -> tuple[list, dict]:
    """The checkpoint's epochs and totals, checked against a run of ``total`` epochs."""
    epochs, totals = payload["epochs"], payload["totals"]
    if not isinstance(epochs, list) or not all(isinstance(e, dict) for e in epochs):
        raise _refuse(path, f"epochs is a {type(epochs).__name__}, not a list of epoch records")
    if len(epochs) > total:
        raise _refuse(path, f"it holds {len(epochs)} epochs, this run has epochs={total}")
    numbers = [e.get("epoch") for e in epochs]
    if numbers != list(range(len(epochs))):
        raise _refuse(path, f"its epochs are numbered {numbers[:5]}, not 0, 1, 2, ...")
    if not isinstance(totals, dict) or not all(_number(totals.get(k)) for k in TOTALS):
        raise _refuse(path, f"totals must hold non-negative numbers {', '.join(TOTALS)}")
    if not _number(totals.get("cpu_s"), none_ok=True):
        raise _refuse(path, "totals.cpu_s must be a non-negative number")
    return epochs, totals


def check_identity(run_dir: Path, payload: dict[str, Any], state: Any) -> None:
    """The checkpoint is of this run: same key (input file hashes included), same labels."""
    stored = payload["identity"]
    known = (canonical_json(state.prep.key), canonical_json(state.prep.identity))  # new, legacy
    if stored not in known:
        try:
            changed = changed_inputs(json.loads(stored), state.prep.key)
        except (TypeError, ValueError, AttributeError):
            changed = ""
        why = f": {changed}" if changed else ""
        raise UsageError(
            f"--resume: the checkpoint in {run_dir} was made with a different config{why}; "
            "rerun without --resume or with the original flags and files"
        )
    labels, now = payload.get("labels_sha256"), _labels_sha256(state)
    if labels is not None and now is not None and labels != now:
        raise UsageError(
            f"--resume: the checkpoint in {run_dir} was trained on other noisy labels (noise "
            f"'{state.prep.noise.get('type')}': sha256 {str(labels)[:12]}… then, {now[:12]}… "
            "now; did a label file under the data root change?); rerun without --resume"
        )


def load(run_dir: Path, state: Any, method: Any, ctx: Any) -> dict[str, Any] | None:
    """Restore method and RNG state from the last checkpoint; None when there is none."""
    path = Path(run_dir) / NAME
    if not path.exists() and not path.is_symlink():
        return None
    payload = _read(path, ctx.device)
    check_identity(Path(run_dir), payload, state)
    epochs, totals = check_progress(path, payload, int(state.prep.hparams["epochs"]))
    if not isinstance(payload.get("method_facts", {}), dict):
        raise _refuse(path, "method_facts is not a mapping of fact names to values")
    skip = (*RUNNER_KEYS, *OPTIONAL_KEYS)
    try:
        method.load_state_dict({k: v for k, v in payload.items() if k not in skip})
        rng = payload["rng"]
        ctx.gen.set_state(rng["data_gen"].cpu())
        torch.set_rng_state(rng["torch"].cpu())
        if "cuda" in rng and torch.cuda.is_available():
            torch.cuda.set_rng_state_all([s.cpu() for s in rng["cuda"]])
    except (KeyError, IndexError, ValueError, RuntimeError, TypeError, AttributeError) as exc:
        detail = " ".join(str(exc).split())[:200]
        raise _refuse(path, f"it does not fit this method: {type(exc).__name__} {detail}") from None
    write_epochs(Path(run_dir), epochs)  # the log says exactly what the checkpoint holds
    facts = payload.get("method_facts")
    return {
        "epochs": list(epochs),
        **totals,
        **({"method_facts": facts} if facts is not None else {}),
    }


def remove(run_dir: Path) -> None:
    """Drop the checkpoint once the run is done (records stay small)."""
    (Path(run_dir) / NAME).unlink(missing_ok=True)
