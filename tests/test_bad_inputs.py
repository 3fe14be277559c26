"""Bad inputs to ``run`` and ``rerun``: exit 2, one line, no traceback, nothing written.

The generated cases fail before any data loads (hparams, noise specs and records are checked
when the config is resolved), so the examples are cheap; label and dataset files follow.
"""

from __future__ import annotations

import gzip
import json
import os
import pickle
import tempfile
from pathlib import Path

import numpy as np
import pytest
from helpers import CliResult, assert_usage_error, run_cli
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from synthetic_records import synthetic_record

from nlbench.core.config import RunConfig, parse_noise, parse_value
from nlbench.core.errors import DataMissingError, UsageError
from nlbench.core.hparam_types import HParamError
from nlbench.core.hparams import BASE_DECLARED
from nlbench.engine.prepare import run_identity
from nlbench.host.plugins import get_host

SETTINGS = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
WORDS = st.sampled_from(
    [
        "abc",
        "nan",
        "inf",
        "-inf",
        "1e308",
        "1e999",
        "-1",
        "0.4,0.6",
        "[",
        '[0.5,"a"]',
        "{}",
        "[[1]]",
        "true",
        "null",
        "2.5",
        "-0",
        "99999999",
        "clean:",
        "always",
        "'x'",
        "1_000",
        "0x10",
        "１",
    ]
)
VALUES = st.one_of(WORDS, st.text(max_size=8), st.floats().map(repr), st.integers().map(str))


def _bad_value(key: str, text: str) -> bool:
    try:
        BASE_DECLARED[key].coerce(key, parse_value(text))
    except HParamError:
        return True
    return False


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def _check(res: CliResult, root: Path, before: dict[str, bytes], out: Path) -> None:
    assert_usage_error(res)
    assert not out.exists(), "a refused run must not create its --out"
    assert _tree(root) == before, "a refused run must change no file"


@SETTINGS
@given(key=st.sampled_from(sorted(BASE_DECLARED)), text=VALUES)
def test_run_with_a_bad_set_value(capsys, key, text):
    assume(_bad_value(key, text))
    res = _refused_run(capsys, "--set", f"{key}={text}")
    assert f"hparam {key}=" in res.err or "--set" in res.err


def _refused_run(capsys, *bad: str) -> CliResult:
    """A one-epoch digits run with the bad options: refused in one line, nothing written."""
    with tempfile.TemporaryDirectory() as tmp:
        root, out = Path(tmp), Path(tmp) / "runs"
        args = ["run", "--dataset", "digits", "--out", str(out), "--epochs", "1", *bad]
        res = run_cli(capsys, *args)
        _check(res, root, {}, out)
        return res


NOISE = st.one_of(
    st.text(max_size=12),
    st.builds("sym:{}".format, VALUES),
    st.builds("{}:0.2".format, st.from_regex(r"[a-z]{1,6}", fullmatch=True)),
)


def _bad_noise(text: str) -> bool:
    try:
        spec = parse_noise(text)
        model = get_host().get("noise", spec.type)
    except UsageError:
        return True
    return spec.type in ("sym", "sym_incl") and model is not None and _bad_rate(spec.arg)


def _bad_rate(arg: str | None) -> bool:
    if arg is None:
        return True
    try:
        return not 0.0 <= float(arg) <= 1.0
    except (TypeError, ValueError):
        return True


@SETTINGS
@given(text=NOISE)
def test_run_with_a_bad_noise_spec(capsys, text):
    assume(text.strip() and _bad_noise(text))
    _refused_run(capsys, "--noise", text)


def _valid_record() -> dict:
    ident = run_identity(RunConfig(epochs=1, train_subset=100), get_host())
    return {
        **synthetic_record(),
        "run_id": ident.run_id,
        "config": {**ident.identity, "device": "cpu"},
    }


REQUIRED = ["method", "dataset", "noise", "profile", "seed", "noise_seed", "hparams"]
WRONG = st.one_of(
    st.lists(st.integers(), max_size=2),
    st.floats(),
    st.booleans(),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=1),
)
MUTATIONS = st.one_of(
    st.tuples(st.just("drop"), st.sampled_from(REQUIRED), st.none()),
    st.tuples(st.just("retype"), st.sampled_from(REQUIRED + ["train_subset"]), WRONG),
    st.tuples(st.just("hparam"), st.sampled_from(sorted(BASE_DECLARED)), VALUES),
    st.tuples(st.just("unknown"), st.from_regex(r"zz_[a-z]{1,5}", fullmatch=True), st.integers()),
    st.tuples(
        st.just("nest"), st.sampled_from(["lr", "milestones", "zz"]), st.integers(50_000, 100_000)
    ),
    st.tuples(st.just("top"), st.sampled_from(["config", "epochs", "run_id", "schema"]), WRONG),
)


def _mutated(kind: str, field: str, value) -> str:
    """The JSON text of a valid record with one thing broken (never a valid record)."""
    record = _valid_record()
    cfg = record["config"]
    if kind == "drop":
        del cfg[field]
    elif kind == "retype":
        if field in ("seed", "noise_seed", "train_subset"):
            assume(not isinstance(value, int) or isinstance(value, bool))
        assume(field != "hparams" or not isinstance(value, dict) or value)
        cfg[field] = value
    elif kind == "hparam":
        assume(_bad_value(field, value))
        cfg["hparams"][field] = parse_value(value)
    elif kind == "unknown":
        cfg["hparams"][field] = value
    elif kind == "top":
        assume(value != [] and not (field == "config" and isinstance(value, dict)))
        record[field] = value
    if kind == "nest":
        cfg["hparams"].pop(field, None)  # a duplicate key would hide the nested value
    text = json.dumps(record, default=str)
    if kind == "nest":  # deeper than any JSON reader recurses
        text = text.replace(
            '"hparams": {', f'"hparams": {{"{field}": ' + "[" * value + "]" * value + ",", 1
        )
    return text


@SETTINGS
@given(mutation=MUTATIONS)
def test_rerun_of_a_hand_edited_record(capsys, mutation):
    text = _mutated(*mutation)
    with tempfile.TemporaryDirectory() as tmp:
        root, out = Path(tmp), Path(tmp) / "again"
        (root / "rec").mkdir()
        (root / "rec" / "run.json").write_text(text)
        before = _tree(root)
        temp_before = set(os.listdir(tempfile.gettempdir()))
        res = run_cli(capsys, "rerun", str(root / "rec" / "run.json"), "--out", str(out))
        _check(res, root, before, out)
        res = run_cli(capsys, "rerun", str(root / "rec" / "run.json"))  # no --out: no temp dir
        assert_usage_error(res)
        assert set(os.listdir(tempfile.gettempdir())) - temp_before <= {Path(tmp).name}


# -- label files and dataset files: one data/usage error each, never "Aborted." or a traceback --
def _run_noise_file(capsys, tmp_path, path, *extra):
    out = tmp_path / "runs"
    res = run_cli(
        capsys,
        "run",
        "--dataset",
        "digits",
        "--out",
        str(out),
        "--epochs",
        "1",
        "--noise",
        f"file:{path}",
        *extra,
    )
    assert not out.exists()
    return res


@pytest.mark.parametrize(
    "n, extra, fragments",
    [
        (1297 + 5, (), ["1302 labels for a train set of 1297", "full official train set (1297)"]),
        (1000, ("--train-subset", "200"), ["1000 labels for a train set of 200", "(1297)"]),
        (2000, ("--train-subset", "200"), ["2000 labels"]),
    ],
)
def test_label_file_longer_or_shorter_than_the_dataset(capsys, tmp_path, n, extra, fragments):
    path = tmp_path / "labels.npy"
    np.save(path, np.zeros(n, dtype=np.int64))
    assert_usage_error(_run_noise_file(capsys, tmp_path, path, *extra), *fragments)


@pytest.mark.parametrize(
    "name, content, fragments",
    [
        ("empty.npy", b"", ["not a plain .npy array", "Accepted"]),
        ("cut.npy", None, ["not a plain .npy array"]),
        ("latin1.csv", "index,label\n0,1\n1,\xe9\n".encode("latin-1"), ["not UTF-8", "Accepted"]),
        ("huge.csv", b"0,1\n1,99999999999999999999999999\n", ["line 2", "index,label integers"]),
        ("hugeidx.csv", b"0,1\n" + b"9" * 5000 + b",1\n", ["line 2"]),
        ("nul.csv", b"0,1\n1,\x002\n", ["noise file"]),
    ],
)
def test_unreadable_label_files(capsys, tmp_path, name, content, fragments):
    path = tmp_path / name
    if content is None:  # a .npy cut off after its header
        np.save(path, np.zeros(1297, dtype=np.int64))
        content = path.read_bytes()[:200]
    path.write_bytes(content)
    assert_usage_error(_run_noise_file(capsys, tmp_path, path), *fragments)


@pytest.mark.parametrize(
    "batch, match",
    [
        ({"labels": [0]}, "needs keys 'data' and 'labels'"),
        ({"data": np.zeros((2, 3072), np.uint8), "fine_labels": [0, 1]}, "needs keys"),
        ({"data": np.zeros((2, 1024), np.uint8), "labels": [0, 1]}, r"shape \(2, 1024\)"),
        ({"data": np.zeros((2, 3072), np.float32), "labels": [0, 1]}, "float32"),
        ({"data": np.zeros((2, 3072), np.uint8), "labels": [0]}, "labels of shape"),
        ({"data": np.zeros((2, 3072), np.uint8), "labels": [0, 10]}, r"labels 0\.\.10 outside"),
        ([1, 2], "needs keys"),
    ],
)
def test_cifar_batches_with_wrong_keys_or_shapes(tmp_path, batch, match):
    from test_datasets import load, write_cifar10

    write_cifar10(tmp_path)
    (tmp_path / "cifar-10-batches-py" / "data_batch_2").write_bytes(pickle.dumps(batch))
    with pytest.raises(DataMissingError, match=match):
        load("cifar10", tmp_path)
    (tmp_path / "cifar-10-batches-py" / "batches.meta").write_bytes(pickle.dumps({"x": 1}))
    with pytest.raises(DataMissingError, match="not a CIFAR meta file"):
        load("cifar10", tmp_path)


def test_cifar_bad_batch_through_the_cli(capsys, tmp_path):
    from test_datasets import write_cifar10

    write_cifar10(tmp_path / "data")
    (tmp_path / "data" / "cifar-10-batches-py" / "test_batch").write_bytes(pickle.dumps({}))
    out = tmp_path / "runs"
    res = run_cli(
        capsys,
        "run",
        "--dataset",
        "cifar10",
        "--data-root",
        str(tmp_path / "data"),
        "--out",
        str(out),
        "--epochs",
        "1",
    )
    assert res.code == 2 and "Traceback" not in res.err and not out.exists()
    assert "test_batch: not a CIFAR python batch" in res.err.strip().splitlines()[-1]


def test_truncated_gz_is_a_data_error(tmp_path):
    from nlbench_plugins.datasets_fashionmnist import read_idx

    path = tmp_path / "train-labels-idx1-ubyte.gz"
    payload = b"\x00\x00\x08\x01" + np.random.default_rng(0).bytes(4000)  # incompressible
    path.write_bytes(gzip.compress(payload)[:2000])  # a download cut off half-way
    with pytest.raises(DataMissingError, match="unreadable"):
        read_idx(path)


@pytest.mark.parametrize(
    "content, match",
    [
        (b"images/a.jpg 3\nimages/b.jpg \xff\xfe\n", "not UTF-8"),
        (b"images/a.jpg 99999999999999999999\n", "line 1: label"),
        (b"images/a.jpg 14\n", r"0\.\.13"),
        (b"images/a.jpg x\n", "not an integer"),
    ],
)
def test_clothing1m_label_files(tmp_path, content, match):
    from nlbench_plugins.datasets_clothing1m import read_kv

    path = tmp_path / "noisy_label_kv.txt"
    path.write_bytes(content)
    with pytest.raises(DataMissingError, match=match):
        read_kv(path)


# -- sweep files ------------------------------------------------------------------------------
# each entry: a TOML body that is wrong in one way (type, axis value, table shape, hparam)
SWEEP_BAD_LINES = st.sampled_from(
    [
        "out = 5",
        'set = "oops"',
        'seeds = ["a"]',
        "seeds = 1.5",
        "methods = 3",
        'methods = ["no_such_method"]',
        'noise = ["sym:2"]',
        'noise = ["nope:0.2"]',
        "epochs = [0]",
        "train_subsets = [-1]",
        'device = ["cpu"]',
        'deterministic = "yes"',
        "[set]\nlr = nan",
        "[set]\nlr = -1.0",
        "[set]\nno_such_key = 1",
        '[set]\nmilestones = [0.5, "a"]',
        '[grid]\nlr = "abc"',
        "[grid]\nlr = []",
        "[executor]\nname = 7",
        "[method.erm]\nset = 3",
    ]
)


@SETTINGS
@given(line=SWEEP_BAD_LINES, dry=st.booleans())
def test_sweep_with_a_bad_file(capsys, line, dry):
    with tempfile.TemporaryDirectory() as tmp:
        root, out = Path(tmp), Path(tmp) / "runs"
        sweep = root / "sweep.toml"
        head = f'dataset = "digits"\nepochs = 1\nout = "{out}"\n'
        body = line if line.startswith("[") else f"{line}\n"
        if line.split(" =")[0] == "out":
            head = 'dataset = "digits"\nepochs = 1\n'
        sweep.write_text(head + body + "\n", encoding="utf-8")
        before = _tree(root)
        res = run_cli(capsys, "sweep", "-c", str(sweep), *(["--dry-run"] if dry else []))
        assert_usage_error(res)
        assert _tree(root) == before, "a refused sweep must change no file"
        assert not out.exists() and not (Path.cwd() / "5").exists()


# -- #32, low: tracebacks where one line is promised, bounds, misleading messages ------------
def test_a_sweep_file_that_is_not_utf8(capsys, tmp_path):
    sweep = tmp_path / "sweep.toml"
    sweep.write_bytes(b'dataset = "caf\xe9"\n')
    assert_usage_error(run_cli(capsys, "sweep", "-c", str(sweep), "--dry-run"), "not UTF-8")


def test_a_huge_sweep_grid_is_refused_at_once(capsys, tmp_path):
    sweep = tmp_path / "sweep.toml"
    seeds = list(range(1000))
    sweep.write_text(f'seeds = {seeds}\nnoise_seeds = {seeds}\nout = "{tmp_path / "runs"}"\n')
    res = run_cli(capsys, "sweep", "-c", str(sweep), "--dry-run")
    assert_usage_error(res, "1,000,000 runs", "at most 10,000")


@pytest.mark.parametrize("value", ["100000000000000000000000", "10001"])
def test_epochs_have_an_upper_bound(capsys, tmp_path, value):
    res = run_cli(capsys, "run", "--out", str(tmp_path / "runs"), "--set", f"epochs={value}")
    assert_usage_error(res, "epochs", "10000")
    assert not (tmp_path / "runs").exists()


def test_a_uint64_label_file_names_its_real_values(capsys, tmp_path):
    path = tmp_path / "labels.npy"
    np.save(path, np.full(1297, 2**64 - 1, dtype=np.uint64))
    res = _run_noise_file(capsys, tmp_path, path)
    assert_usage_error(res, str(2**64 - 1))
    assert "got -1" not in res.err


@pytest.mark.parametrize(
    "mutation, fragment",
    [
        (lambda r: r.update(env=["not", "an", "object"]), "env must be an object"),
        (lambda r: r.update(summary="x"), "summary must be an object"),
    ],
)
def test_rerun_of_a_record_with_bad_parts_trains_nothing(capsys, tmp_path, mutation, fragment):
    record = synthetic_record()
    mutation(record)
    path = tmp_path / "run.json"
    path.write_text(json.dumps(record))
    res = run_cli(capsys, "rerun", str(path), "--out", str(tmp_path / "out"))
    assert_usage_error(res, fragment)
    assert not (tmp_path / "out").exists()


def test_rerun_of_a_custom_run_id_says_so(capsys, tmp_path):
    args = ["run", "--epochs", "1", "--train-subset", "100", "--device", "cpu", "-q"]
    assert run_cli(capsys, *args, "--out", str(tmp_path), "--run-id", "mine").code == 0
    res = run_cli(capsys, "rerun", str(tmp_path / "mine" / "run.json"), "--device", "cpu")
    assert res.code == 0, res.err
    assert "custom --run-id" in res.out and "declared default" not in res.out


REPORT_MUTATIONS = {
    "config": lambda r: r.update(config=[1]),
    "noise": lambda r: r.update(noise="x"),
    "summary": lambda r: r["summary"].update(last_acc="high"),
    "epochs": lambda r: r.update(epochs=[{"epoch": "one"}]),
    "metric": lambda r: r["epochs"][0].update(test_acc=[0.5]),
    "flags": lambda r: r.update(flags=3),
}


@pytest.mark.parametrize("name", sorted(REPORT_MUTATIONS))
def test_report_of_an_edited_record(capsys, tmp_path, name):
    pytest.importorskip("matplotlib")
    record = synthetic_record()
    REPORT_MUTATIONS[name](record)
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "run.json").write_text(json.dumps(record))
    before = _tree(tmp_path)
    res = run_cli(capsys, "report", str(tmp_path / "r"))
    assert_usage_error(res, "run.json")
    assert _tree(tmp_path) == before


def test_report_replaces_only_its_own_files(capsys, tmp_path):
    pytest.importorskip("matplotlib")
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "run.json").write_text(json.dumps(synthetic_record()))
    assert run_cli(capsys, "report", str(tmp_path / "r")).code == 0
    out = tmp_path / "r" / "report"
    listed = (out / "nlbench-manifest.txt").read_text()
    assert "report.md" in listed and "accuracy.png" in listed
    assert run_cli(capsys, "report", str(tmp_path / "r")).code == 0  # its own: replaced
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "accuracy.png").write_bytes(b"my own picture")
    res = run_cli(capsys, "report", str(tmp_path / "r"), "--out", str(mine))
    assert_usage_error(res, "accuracy.png", "did not write it")
    assert sorted(os.listdir(mine)) == ["accuracy.png"]
    assert (mine / "accuracy.png").read_bytes() == b"my own picture"


def test_gpucheck_out_into_a_bad_parent_is_refused_first(capsys, tmp_path):
    from helpers import run_cli_main

    from nlbench.gpucheck.__main__ import main

    (tmp_path / "f").write_text("x")
    for out in (tmp_path / "f" / "report.json", tmp_path):
        res = run_cli_main(main, capsys, "--tiny", "--out", str(out))
        assert_usage_error(res, "--out")
    assert (tmp_path / "f").read_text() == "x"
