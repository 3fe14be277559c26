"""``nlbench rerun RUN_DIR/run.json``: reproduce a run from its record alone and compare.

The record's ``config`` holds everything that decides the result (method, dataset, noise spec,
profile, seeds, train subset and the fully resolved hparams), so the rerun passes every hparam
as a ``--set`` override: it reproduces the run even if a profile's defaults changed since.
CPU float results also depend on torch's intra-op thread count, so the rerun uses the record's
(``env.threads``).
A hand-edited record is checked first (:func:`check_record`, then every hparam against its
declaration): a bad one is one usage error and nothing is written.
"""

from __future__ import annotations

import dataclasses
import math
import re
import tempfile
from pathlib import Path
from typing import Any

import click

from nlbench.core.config import RunConfig
from nlbench.core.errors import NlbenchError, UsageError
from nlbench.core.identity import changed_inputs
from nlbench.core.record import REPRODUCIBLE_METRICS, read_record
from nlbench.host.plugins import get_host

COMPARED = REPRODUCIBLE_METRICS  # per-epoch metrics that must reproduce (timings never do)


# record config fields a rerun needs, with the JSON types they must have
FIELDS: dict[str, tuple[type, ...]] = {
    "method": (str,),
    "dataset": (str,),
    "noise": (str,),
    "profile": (str,),
    "seed": (int,),
    "noise_seed": (int,),
    "train_subset": (int, type(None)),
    "hparams": (dict,),
}
TYPE_NAMES = {str: "a string", int: "an integer", dict: "an object", type(None): "null"}


def check_record(record: Any, where: str) -> None:
    """A usage error naming the first field a hand-edited record gets wrong (what a rerun reads)."""
    if isinstance(record.get("schema"), bool):  # read_record's ``schema == 1`` lets true pass
        raise UsageError(f"{where}: schema must be an integer, got {record['schema']}")
    if not isinstance(record.get("run_id"), str):
        raise UsageError(f"{where}: run_id must be a string")
    epochs = record.get("epochs")
    if not isinstance(epochs, list) or not all(isinstance(e, dict) for e in epochs):
        raise UsageError(f"{where}: epochs must be a list of objects")
    cfg = record.get("config")
    if not isinstance(cfg, dict):
        raise UsageError(f"{where}: config must be an object with {', '.join(FIELDS)}")
    for key, types in FIELDS.items():
        value = cfg.get(key)
        if key not in cfg and type(None) not in types:
            raise UsageError(f"{where}: config lacks '{key}'")
        if not isinstance(value, types) or isinstance(value, bool):
            accepted = " or ".join(TYPE_NAMES[t] for t in types)
            raise UsageError(f"{where}: config.{key} must be {accepted}, got {value!r:.40}")
    if cfg["train_subset"] is not None and cfg["train_subset"] < 1:
        raise UsageError(f"{where}: config.train_subset must be null or a positive integer")
    for key in ("env", "summary", "noise"):  # read after the rerun trains: checked before
        if key in record and record[key] is not None and not isinstance(record[key], dict):
            raise UsageError(f"{where}: {key} must be an object, got {record[key]!r:.40}")


def read_rerun_record(path: Path) -> dict[str, Any]:
    """The record at ``path``, checked for what a rerun needs (usage errors, exit 2)."""
    try:
        record = read_record(path)
    except RecursionError:
        raise UsageError(f"{path}: JSON nested too deeply to be a run record") from None
    except NlbenchError as exc:
        raise UsageError(str(exc)) from None
    check_record(record, str(path))
    return record


def config_from_record(record: dict[str, Any], out: str, device: str = "auto") -> RunConfig:
    """The RunConfig that reproduces ``record`` (every resolved hparam as an override)."""
    cfg = record["config"]
    return RunConfig(
        method=cfg["method"],
        dataset=cfg["dataset"],
        noise=cfg["noise"],
        profile=cfg["profile"],
        seed=int(cfg["seed"]),
        noise_seed=int(cfg["noise_seed"]),
        train_subset=cfg.get("train_subset"),
        overrides=dict(cfg["hparams"]),
        out=out,
        device=device,
    )


def record_threads(record: dict[str, Any]) -> int | None:
    """The intra-op thread count the record was made with (CPU float results depend on it)."""
    env = record.get("env")
    threads = env.get("threads") if isinstance(env, dict) else None
    return (
        threads
        if isinstance(threads, int) and not isinstance(threads, bool) and threads > 0
        else None
    )


def use_record_threads(record: dict[str, Any]) -> int | None:
    """Run with the record's thread count, as ``torch.set_num_threads`` (None: left as is)."""
    threads = record_threads(record)
    if threads is not None:
        import torch  # lazy: keeps torch out of this module's import (CLI start-up)

        torch.set_num_threads(threads)
    return threads


def _differs(a: Any, b: Any, atol: float) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return not math.isclose(float(a), float(b), rel_tol=0.0, abs_tol=atol)
    return bool(a != b)


def compare_epochs(old: list[dict], new: list[dict], atol: float) -> list[str]:
    """One line per metric that differs (and one if the epoch counts differ)."""
    problems = []
    if len(old) != len(new):
        problems.append(f"epochs: record has {len(old)}, rerun has {len(new)}")
    for a, b in zip(old, new):
        for key in COMPARED:
            if _differs(a.get(key), b.get(key), atol):
                problems.append(f"epoch {a.get('epoch')}: {key} {a.get(key)!r} → {b.get(key)!r}")
    return problems


def compare_facts(old: dict[str, Any], new: dict[str, Any], atol: float) -> list[str]:
    """One line per method fact (``record["method_facts"]``) that differs: facts are results
    the method declared (``MethodSpec.facts``), compared as the epochs' metrics are; they are
    not part of the run's identity. A record from before method facts has none to compare."""
    if "method_facts" not in old:
        return []
    a, b = old.get("method_facts") or {}, new.get("method_facts") or {}
    return [
        f"method_facts.{key}: {a.get(key, '<absent>')!r} → {b.get(key, '<absent>')!r}"
        for key in sorted(set(a) | set(b))
        if key not in a or key not in b or _differs_deep(a[key], b[key], atol)
    ]


def _differs_deep(a: Any, b: Any, atol: float) -> bool:
    """:func:`_differs` inside lists and dicts (a fact may be a summary such as a matrix)."""
    if isinstance(a, list) and isinstance(b, list):
        return len(a) != len(b) or any(_differs_deep(x, y, atol) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() != b.keys() or any(_differs_deep(a[k], b[k], atol) for k in a)
    return _differs(a, b, atol)


def _facts_line(old: dict[str, Any], new: dict[str, Any]) -> str | None:
    """What the rerun says about method facts it could not compare (None: nothing to say)."""
    facts = new.get("method_facts") or {}
    if "method_facts" in old or not facts:
        return None
    listed = ", ".join(f"{k}={v!r}" for k, v in sorted(facts.items()))
    return f"method facts: the record predates them; the rerun's: {listed}"


def _isa_line(old: dict[str, Any], new: dict[str, Any]) -> str:
    """Whether both ran on the same CPU vector ISA (older records do not say)."""
    a, b = old.get("env", {}).get("cpu_capability"), new["env"].get("cpu_capability")
    if a is None or a == b:
        line = f"cpu capability: {b}" + (" (the record does not say its own)" if a is None else "")
    else:
        line = f"cpu capability: {b}, the record's was {a} (CPU float results may differ)"
    m, n = old.get("env", {}).get("cpu_model"), new["env"].get("cpu_model")
    if m is not None and m != n:
        line += f"; cpu model: {n}, the record's was {m} (CPU float results may differ)"
    return line


def _id_line(old: dict[str, Any], new: dict[str, Any]) -> str:
    """Say whether the run_id reproduced; if not, why: a custom ``--run-id``, an input file
    whose contents changed, or the resolved hparams that are new or changed."""
    if new["run_id"] == old["run_id"]:
        return "run_id matches"
    a, b = old["config"]["hparams"], new["config"]["hparams"]
    keys = sorted(k for k in set(a) | set(b) if a.get(k, "<absent>") != b.get(k, "<absent>"))
    versions = [c["config"].get("noise_version") or 1 for c in (old, new)]
    changed = changed_inputs(old["config"], new["config"])
    if _custom_id(old):
        why = " (the record was saved under a custom --run-id; its config gives this one)"
    elif changed:
        why = f" ({changed})"
    elif versions[0] != versions[1]:
        why = (
            f" (noise '{old['config']['noise']}' changed meaning: version {versions[0]} → "
            f"{versions[1]}, see NoiseModelSpec.version)"
        )
    elif keys:
        why = f" (hparams this nlbench resolves differently: {', '.join(keys)})"
    else:
        why = " (a declared default changed since: `nlbench migrate-records` re-keys records)"
    return f"run_id differs: {new['run_id']}{why}"


def _custom_id(record: dict[str, Any]) -> bool:
    """Whether the record's run_id is not of the ``<method>-<dataset>-<12 hex>`` form (a
    ``--run-id`` the user chose)."""
    cfg = record["config"]
    pattern = f"{re.escape(cfg['method'])}-{re.escape(cfg['dataset'])}-[0-9a-f]{{12}}"
    return re.fullmatch(pattern, record["run_id"]) is None


def register(cli: click.Group) -> None:
    @cli.command("rerun")
    @click.argument("record_path", type=click.Path(dir_okay=False, exists=True))
    @click.option("--out", default=None, help="Fresh results directory (default: a temp dir).")
    @click.option("--device", default="auto", show_default=True, help="auto, cpu or cuda.")
    @click.option(
        "--atol",
        type=float,
        default=1e-6,
        show_default=True,
        help="Absolute tolerance per metric (GPU kernels are not bit-exact).",
    )
    def rerun_cmd(record_path: str, out: str | None, device: str, atol: float) -> None:
        """Re-run RECORD_PATH's config into a fresh directory; exit 1 if the metrics (or the
        method's declared facts) differ."""
        # lazy: keeps numpy, torch out of this module's import (CLI start-up)
        from nlbench.engine.prepare import run_identity

        # lazy: keeps filelock, numpy, torch out of this module's import (CLI start-up)
        from nlbench.engine.runner import Runner

        old = read_rerun_record(Path(record_path))
        cfg = config_from_record(old, out or "", device)
        try:  # every value checked before anything is written
            run_id = run_identity(cfg, get_host()).run_id
        except RecursionError:
            raise UsageError(f"{record_path}: hparams nested too deeply") from None
        if out and (Path(out) / run_id).exists():
            raise UsageError(f"--out {out}: already holds {run_id}; pass a fresh directory")
        out = out or tempfile.mkdtemp(prefix="nlbench-rerun-")
        threads = use_record_threads(old)
        new = Runner(dataclasses.replace(cfg, out=out)).run()
        if threads is not None:
            click.echo(f"threads: {threads}, as recorded")
        click.echo(_isa_line(old, new))
        click.echo(f"rerun: {out}/{new['run_id']}/run.json")
        click.echo(_id_line(old, new))
        problems = compare_epochs(old["epochs"], new["epochs"], atol)
        problems += compare_facts(old, new, atol)
        for line in problems:
            click.echo(f"mismatch: {line}")
        note = _facts_line(old, new)
        if note:
            click.echo(note)
        facts = bool(old.get("method_facts"))
        click.echo(
            "per-epoch metrics match" + (", method facts too" if facts else "")
            if not problems
            else f"per-epoch metrics{' or method facts' if facts else ''} differ "
            f"({len(problems)} value(s), atol={atol})"
        )
        if problems:
            click.get_current_context().exit(1)
