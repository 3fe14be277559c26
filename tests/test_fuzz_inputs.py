"""Property tests: mutated inputs never crash a command that reads them (#32).

Records, checkpoints, sweep files, claims tables and noise label files are mutated (a field set
to an odd JSON or Python value, a field removed, bytes flipped or cut off), and every command
that reads them must answer with exit 0, 1 or 2, and on 1 or 2 with exactly one line on stderr
and no traceback. A refused input leaves its run directory as it was. Bounded: few examples,
derandomised (the same cases on every run), each command on a tiny digits run at most.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers import CliResult, digits_run, run_cli
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

FUZZ = settings(
    max_examples=12,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
ODD = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["", "../../x", "digits\n", "a/b", "x" * 300, "erm", "sym:0.2", "é", "\x00"]),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.sampled_from(["epoch", "a", "test_acc"]), st.integers(), max_size=2),
)


def clean_exit(res: CliResult) -> None:
    """Exit 0, 1 or 2, never a traceback; a usage error (2) is one line on stderr, and an exit 1
    is one line there or the command's own report on stdout (rerun's mismatches, migrate's
    skipped records)."""
    assert "Traceback" not in res.err + res.out, res.err
    assert res.code in (0, 1, 2), (res.code, res.err)
    lines = [ln for ln in res.err.splitlines() if ln.strip()]
    if res.code == 2:
        assert len(lines) == 1, res.err
    if res.code == 1:
        assert len(lines) == 1 or (not lines and res.out.strip()), (res.out, res.err)


def mutate_json(data: Any, path: list[str], value: Any, delete: bool) -> Any:
    """``data`` with the field at ``path`` (as far as it exists) set to ``value`` or removed."""
    node = data
    for key in path[:-1]:
        nxt = (
            node[0]
            if isinstance(node, list) and node
            else node.get(key)
            if isinstance(node, dict)
            else None
        )
        if not isinstance(nxt, (dict, list)):
            break
        node = nxt
    key = path[-1]
    if isinstance(node, dict):
        if delete:
            node.pop(key, None)
        else:
            node[key] = value
    elif isinstance(node, list) and node:
        node[0] = value
    return data


def mutate_bytes(data: bytes, where: float, how: str, byte: int) -> bytes:
    at = int(where * len(data))
    if how == "cut":
        return data[:at]
    if how == "flip":
        return data[:at] + bytes([data[at] ^ byte if at < len(data) else byte]) + data[at + 1 :]
    return data[:at] + bytes([byte]) * 3 + data[at:]


BYTE_EDITS = st.tuples(
    st.floats(min_value=0, max_value=1),
    st.sampled_from(["cut", "flip", "insert"]),
    st.integers(1, 255),
)
RECORD_PATHS = st.sampled_from(
    [
        ["run_id"],
        ["schema"],
        ["status"],
        ["epochs"],
        ["summary"],
        ["noise"],
        ["env"],
        ["flags"],
        ["config"],
        ["config", "method"],
        ["config", "dataset"],
        ["config", "noise"],
        ["config", "seed"],
        ["config", "hparams"],
        ["config", "hparams", "lr"],
        ["config", "inputs"],
        ["summary", "last_acc"],
        ["noise", "realized_rate"],
        ["epochs", "0", "epoch"],
        ["epochs", "0", "test_acc"],
    ]
)


@pytest.fixture(scope="module")
def real_record() -> dict:
    """A finished record of a real 1-epoch digits run (so a rerun of it is quick)."""
    from synthetic_records import synthetic_record

    from nlbench.core.config import RunConfig
    from nlbench.engine.prepare import run_identity
    from nlbench.host.plugins import get_host

    ident = run_identity(RunConfig(epochs=1, train_subset=60), get_host())
    record = synthetic_record(accs=(0.5,))
    config = {**ident.identity, "model": ident.hparams["model"], "device": "cpu"}
    return {**record, "run_id": ident.run_id, "config": config}


@FUZZ
@given(path=RECORD_PATHS, value=ODD, delete=st.booleans(), raw=st.none() | BYTE_EDITS)
def test_mutated_records(real_record, capsys, path, value, delete, raw):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        record = mutate_json(json.loads(json.dumps(real_record)), path, value, delete)
        text = json.dumps(record).encode()
        if raw is not None:
            text = mutate_bytes(text, *raw)
        run_json = root / "results" / "r" / "run.json"
        run_json.parent.mkdir(parents=True)
        run_json.write_bytes(text)
        clean_exit(
            run_cli(
                capsys, "leaderboard", "--results", str(root / "results"), "--out", str(root / "b")
            )
        )
        clean_exit(run_cli(capsys, "report", str(run_json.parent), "--out", str(root / "rep")))
        clean_exit(run_cli(capsys, "migrate-records", str(root / "results"), "--dry-run"))
        clean_exit(run_cli(capsys, "migrate-records", str(root / "results")))
        (moved,) = list((root / "results").rglob("run.json"))
        res = run_cli(capsys, "rerun", str(moved), "--out", str(root / "again"), "--device", "cpu")
        clean_exit(res)


@pytest.fixture(scope="module")
def checkpointed(tmp_path_factory) -> tuple[Path, list[str]]:
    """A run directory holding an interrupted 2-epoch run's checkpoint after epoch 1."""
    from _pytest.monkeypatch import MonkeyPatch

    from nlbench.cli import main
    from nlbench.engine import checkpoint

    out = tmp_path_factory.mktemp("ckpt")
    args = [*digits_run("0.4", 2, 60, "-q"), "--out", str(out), "--run-id", "r"]
    with MonkeyPatch.context() as mp:
        mp.setattr(checkpoint, "remove", lambda run_dir: None)
        with pytest.raises(SystemExit) as done:
            main(args)
        assert done.value.code in (0, None)
    record = json.loads((out / "r" / "run.json").read_text())
    (out / "r" / "run.json").write_text(json.dumps({**record, "status": "interrupted"}))
    return out / "r", args


CHECKPOINT_KEYS = st.sampled_from(
    ["identity", "epochs", "totals", "rng", "networks", "optimizers", "labels_sha256", "state"]
)
TORCH_ODD = st.one_of(
    ODD,
    st.sampled_from(["tensor", "tensors", "epochs-long", "epoch-dict"]),
)


def _odd_torch_value(value: Any, payload: dict) -> Any:
    import torch

    if value == "tensor":
        return torch.zeros(3)
    if value == "tensors":
        return {"a": torch.ones(2, 2)}
    if value == "epochs-long":
        return [dict(payload["epochs"][0], epoch=i) for i in range(9)]
    if value == "epoch-dict":
        return [{"epoch": 0, "test_acc": "x"}]
    return value


@FUZZ
@given(key=CHECKPOINT_KEYS, value=TORCH_ODD, delete=st.booleans(), raw=st.none() | BYTE_EDITS)
def test_mutated_checkpoints(checkpointed, capsys, key, value, delete, raw):
    import torch

    source, args = checkpointed
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp) / "r"
        shutil.copytree(source, run_dir)
        path = run_dir / "checkpoint.pt"
        payload = torch.load(path, weights_only=True)
        if delete:
            payload.pop(key, None)
        else:
            payload[key] = _odd_torch_value(value, payload)
        torch.save(payload, path)
        if raw is not None:
            path.write_bytes(mutate_bytes(path.read_bytes(), *raw))
        before = {p.name: p.read_bytes() for p in run_dir.iterdir()}
        out = [a if a != str(source.parent) else tmp for a in args]
        res = run_cli(capsys, *out, "--resume")
        clean_exit(res)
        if res.code == 2:  # refused: the run directory is as it was
            assert {
                p.name: p.read_bytes() for p in run_dir.iterdir() if p.name != "run.lock"
            } == before


SWEEP = """\
methods = ["erm", "fl_only"]
dataset = "digits"
noise = ["sym:0.2", "asym:0.4"]
seeds = [0, 1]
epochs = 2
train_subset = 100
out = "{out}"

[set]
lr = 0.05

[grid]
loss = ["gce", "sce"]

[method.fl_only]
set = {{radius = 3.0}}
"""
TOKENS = st.sampled_from(
    [
        '"x"',
        "-1",
        "0",
        "1e999",
        "nan",
        "[]",
        "{}",
        '[1, "a"]',
        "true",
        '"../x"',
        '"file:/nope.npy"',
        "=",
        "[",
        '"é"',
        "99999999999999999999",
    ]
)


@FUZZ
@given(line=st.integers(0, 15), token=TOKENS, keep_key=st.booleans(), raw=st.none() | BYTE_EDITS)
def test_mutated_sweep_files(capsys, line, token, keep_key, raw):
    with tempfile.TemporaryDirectory() as tmp:
        lines = SWEEP.format(out=Path(tmp) / "runs").splitlines()
        at = line % len(lines)
        key = lines[at].split("=")[0].strip()
        lines[at] = f"{key} = {token}" if keep_key and "=" in lines[at] else token
        data = ("\n".join(lines) + "\n").encode()
        if raw is not None:
            data = mutate_bytes(data, *raw)
        sweep = Path(tmp) / "sweep.toml"
        sweep.write_bytes(data)
        clean_exit(run_cli(capsys, "sweep", "-c", str(sweep), "--dry-run"))
        assert not (Path(tmp) / "runs").exists()


CLAIMS = """\
[[claim]]
id = "order-1"
claim = "fancy beats erm"
source = "a paper, Table 1"
board = "synth-quick"
metric = "last"
compare = "order"
cells = ["fancy@sym:0.2", "erm@sym:0.2"]
"""


@FUZZ
@given(line=st.integers(0, 8), token=TOKENS, keep_key=st.booleans(), raw=st.none() | BYTE_EDITS)
def test_mutated_claims_tables(capsys, monkeypatch, line, token, keep_key, raw):
    from synthetic_records import synthetic_record, write_synthetic

    from nlbench.boards import claims

    real = claims.load_claims
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        lines = CLAIMS.splitlines()
        at = line % len(lines)
        key = lines[at].split("=")[0].strip()
        lines[at] = f"{key} = {token}" if keep_key and "=" in lines[at] else token
        data = ("\n".join(lines) + "\n").encode()
        if raw is not None:
            data = mutate_bytes(data, *raw)
        (root / "claims.toml").write_bytes(data)
        for method in ("erm", "fancy"):
            write_synthetic(root / "res", synthetic_record(method, "sym:0.2", 0))
        monkeypatch.setattr(claims, "load_claims", lambda path=None: real(root / "claims.toml"))
        monkeypatch.setattr("nlbench.boards.leaderboard.figures_available", lambda: False)
        res = run_cli(
            capsys, "leaderboard", "--results", str(root / "res"), "--out", str(root / "b")
        )
        clean_exit(res)


@FUZZ
@given(
    kind=st.sampled_from(["npy", "csv"]),
    raw=BYTE_EDITS,
    dtype=st.sampled_from(["int64", "uint64", "float32", "int8"]),
)
def test_mutated_noise_files(capsys, kind, raw, dtype):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"labels.{kind}"
        labels = np.random.default_rng(0).integers(0, 10, 60).astype(dtype)
        if kind == "npy":
            np.save(path, labels)
        else:
            path.write_text("index,label\n" + "".join(f"{i},{y}\n" for i, y in enumerate(labels)))
        path.write_bytes(mutate_bytes(path.read_bytes(), *raw))
        args = [*digits_run(f"file:{path}", 1, 60, "-q"), "--out", str(Path(tmp) / "runs")]
        clean_exit(run_cli(capsys, *args))
