"""Two epochs of every method on a CIFAR-10 subset with the paper models, checked.

Real CIFAR-10 is used when ``--data-root`` holds it; otherwise a synthetic set in the official
"python version" format is written (learnable: each class is a smooth colour pattern under
pixel noise), so the check also runs on a machine with no data and no network.
"""

from __future__ import annotations

import logging
import math
import pickle
import time
from pathlib import Path
from typing import Any

import numpy as np

from nlbench.core.config import RunConfig
from nlbench.core.seeding import numpy_rng
from nlbench.core.specs import MethodFlag
from nlbench.gpucheck.settings import CheckSettings
from nlbench.host.plugins import get_host

NOISE = "sym_incl:0.2"  # DivideMix's lightest CIFAR-10 setting: every method has its hparams
CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def has_cifar10(root: Path | None) -> bool:
    # lazy: keeps torchvision out of this module's import (CLI start-up)
    from torchvision.datasets import CIFAR10

    if root is None:
        return False
    folder = root / CIFAR10.base_folder
    return all((folder / name).is_file() for name, _ in [*CIFAR10.train_list, *CIFAR10.test_list])


def write_synthetic_cifar10(root: Path, n_train: int, n_test: int, seed: int = 0) -> Path:
    """CIFAR-10's official files (5 train batches, test batch, meta) with learnable images."""
    # lazy: keeps torchvision out of this module's import (CLI start-up)
    from torchvision.datasets import CIFAR10

    rng = numpy_rng("gpucheck-cifar10", seed)
    coarse = rng.uniform(0, 255, (10, 3, 4, 4))
    protos = coarse.repeat(8, axis=2).repeat(8, axis=3)  # smooth 32x32 pattern per class
    folder = root / CIFAR10.base_folder
    folder.mkdir(parents=True, exist_ok=True)

    def batch(n: int, name: str) -> dict[str, Any]:
        y = rng.integers(0, 10, n)
        x = 0.6 * protos[y] + 0.4 * rng.uniform(0, 255, (n, 3, 32, 32))
        data = np.clip(x, 0, 255).astype(np.uint8).reshape(n, 3072)
        return {"batch_label": name, "labels": y.tolist(), "data": data}

    per = math.ceil(n_train / len(CIFAR10.train_list))
    for name, _ in CIFAR10.train_list:
        (folder / name).write_bytes(pickle.dumps(batch(per, name), protocol=2))
    test_name = CIFAR10.test_list[0][0]
    (folder / test_name).write_bytes(pickle.dumps(batch(n_test, test_name), protocol=2))
    meta = {"label_names": CLASSES}
    (folder / CIFAR10.meta["filename"]).write_bytes(pickle.dumps(meta, protocol=2))
    return root


def chance_threshold(num_classes: int, n_test: int) -> float:
    """Chance accuracy plus three binomial standard deviations over the test set."""
    p = 1.0 / num_classes
    return p + 3 * math.sqrt(p * (1 - p) / max(1, n_test))


def check_record(record: dict[str, Any], run_dir: Path) -> list[str]:
    """What is wrong with a two-epoch record (empty when nothing)."""
    problems = []
    if record.get("status") != "done":
        problems.append(f"status {record.get('status')}")
    if not (run_dir / "run.json").is_file():
        problems.append("no run.json written")
    for epoch in record.get("epochs", []):
        bad = [
            k
            for k, v in epoch.items()
            if k.startswith("train_") and isinstance(v, float) and not math.isfinite(v)
        ]
        if bad:
            problems.append(f"epoch {epoch['epoch']}: non-finite {', '.join(sorted(bad))}")
    n_test = record.get("data", {}).get("test_size", 0)
    limit = chance_threshold(record.get("data", {}).get("num_classes", 10), n_test)
    best = max((e.get("test_acc") or 0.0 for e in record.get("epochs", [])), default=0.0)
    if best <= limit:
        problems.append(f"best test accuracy {best:.3f} is not above chance ({limit:.3f})")
    return problems


def run_epochs(s: CheckSettings, work: Path, data_root: Path | None) -> dict[str, Any]:
    """Two epochs of every installed method; per method the checks, accuracy and seconds."""

    if data_root is not None and has_cifar10(data_root):
        real, root = True, data_root
    else:
        real = False
        root = write_synthetic_cifar10(work / "data", s.synthetic_train, s.synthetic_test)
    out: dict[str, Any] = {
        "data": "real" if real else "synthetic",
        "data_root": str(root),
        "train_subset": s.epochs_subset,
        "noise": NOISE,
        "methods": {},
    }
    quiet = None if real else logging.getLogger("nlbench.core.download")
    level = quiet.level if quiet else logging.NOTSET
    if quiet:  # the synthetic files cannot match the official checksums: no warning
        quiet.setLevel(logging.ERROR)
    try:
        _run_all(s, work, root, out)
    finally:
        if quiet:
            quiet.setLevel(level)
    out["ok"] = all(m["ok"] for m in out["methods"].values())
    return out


def _run_all(s: CheckSettings, work: Path, root: Path, out: dict[str, Any]) -> None:
    # lazy: keeps filelock out of this module's import (CLI start-up)
    from nlbench.engine.runner import Runner

    sets = {**s.extra_sets, **({"meta_set": s.meta_set} if s.meta_set else {})}
    host = get_host()
    for name in host.registry("methods").names():
        overrides = {k: v for k, v in sets.items() if k != "meta_set" or _uses_meta(host, name)}
        cfg = RunConfig(
            method=name,
            dataset="cifar10",
            noise=NOISE,
            profile="paper",
            epochs=2,
            train_subset=s.epochs_subset,
            model=s.epochs_model,
            overrides=overrides,
            data_root=str(root),
            out=str(work / "runs"),
            device=s.device,
            run_id=name,
        )
        t0 = time.perf_counter()
        try:
            record = Runner(cfg, host=host).run()
        except Exception as exc:  # noqa: BLE001 - a failing method is a finding, not a crash
            out["methods"][name] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
            continue
        problems = check_record(record, work / "runs" / name)
        out["methods"][name] = {
            "ok": not problems,
            "problems": problems,
            "model": record["config"]["model"],
            "test_acc": [e.get("test_acc") for e in record["epochs"]],
            "train_loss": [e.get("train_loss") for e in record["epochs"]],
            "seconds": time.perf_counter() - t0,
        }


def _uses_meta(host: Any, name: str) -> bool:
    return MethodFlag.CLEAN_META in host.get("methods", name).flags
