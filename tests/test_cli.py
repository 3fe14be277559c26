"""End-to-end CLI tests on the embedded dataset, through the real entry point."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from helpers import assert_usage_error, run_cli


def test_run_writes_record_and_table(capsys, tmp_path):
    res = run_cli(
        capsys,
        "run",
        "--method",
        "erm",
        "--dataset",
        "digits",
        "--noise",
        "0.6",
        "--epochs",
        "2",
        "--out",
        str(tmp_path),
        "--train-subset",
        "300",
    )
    assert res.code == 0, res.err
    assert "last acc" in res.out and "record:" in res.out
    (run_dir,) = tmp_path.iterdir()
    record = json.loads((run_dir / "run.json").read_text())
    assert record["status"] == "done" and len(record["epochs"]) == 2
    assert len((run_dir / "epochs.jsonl").read_text().splitlines()) == 2


def test_run_json_output(capsys, tmp_path):
    res = run_cli(
        capsys,
        "run",
        "--epochs",
        "1",
        "--out",
        str(tmp_path),
        "--json",
        "--train-subset",
        "200",
        "--set",
        "lr=0.01",
    )
    record = json.loads(res.out)
    assert record["config"]["hparams"]["lr"] == 0.01


def test_cli_runner_help():
    from nlbench.cli import cli

    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    for command in ("run", "list", "show", "new-plugin"):
        assert command in result.output


def test_list_json_shape(capsys):
    res = run_cli(capsys, "list", "--json")
    data = json.loads(res.out)
    for kind in (
        "datasets",
        "noise",
        "models",
        "selectors",
        "reweighters",
        "methods",
        "executors",
        "broken",
    ):
        assert kind in data
    erm = next(m for m in data["methods"] if m["name"] == "erm")
    assert set(erm) >= {"name", "plugin", "distribution", "description"}
    assert all("params" in m for m in data["models"])


def test_list_one_kind(capsys):
    res = run_cli(capsys, "list", "methods", "--json")
    assert set(json.loads(res.out)) == {"methods", "broken"}


def test_show_method(capsys):
    res = run_cli(capsys, "show", "method", "erm", "--json")
    info = json.loads(res.out)
    assert info["profiles"]["quick"]["digits"]["model"] == "tiny_cnn"
    assert run_cli(capsys, "show", "method", "erm").code == 0


@pytest.mark.parametrize(
    "args, fragments",
    [
        (["--method", "ermm"], ["unknown method 'ermm'", "Did you mean 'erm'", "Accepted:"]),
        (["--dataset", "digitz"], ["unknown dataset 'digitz'", "Did you mean 'digits'"]),
        (["--model", "tiny_cn"], ["unknown model 'tiny_cn'", "Did you mean 'tiny_cnn'"]),
        (["--noise", "symm:0.4"], ["unknown noise type 'symm'", "Did you mean 'sym'"]),
        (["--noise", "1.5"], ["rate must be a number in [0, 1]"]),
        (["--noise", "sym:-0.2"], ["rate must be a number in [0, 1]"]),
        (["--set", "lrr=0.1"], ["unknown --set key(s) lrr", "Accepted:", "lr"]),
        (["--set", "novalue"], ["--set 'novalue'"]),
        (["--device", "cuda"], ["no CUDA GPU"]),
        (["--device", "tpu"], ["accepted: auto, cpu"]),
        (["--train-subset", "100000"], ["--train-subset 100000", "train size 1297"]),
        (["--profile", "huge"], ["no profile 'huge'", "Accepted: quick"]),
        (["--epochs", "0"], ["hparam epochs=0", "accepted an integer in [1, 10000]"]),
        (["--epochs", "x"], ["'x' is not a valid integer"]),
    ],
)
def test_usage_errors_are_one_line(capsys, tmp_path, args, fragments):
    if args[:2] == ["--device", "cuda"]:
        import torch

        if torch.cuda.is_available():
            pytest.skip("a GPU is present")
    res = run_cli(capsys, "run", "--out", str(tmp_path), *args)
    assert_usage_error(res, *fragments)
    assert not any(tmp_path.iterdir()), "a failed validation must not write anything"


def test_new_plugin_rejects_bad_name(capsys, tmp_path):
    assert_usage_error(
        run_cli(capsys, "new-plugin", str(tmp_path / "p"), "--name", "My-Plugin"),
        "--name 'My-Plugin'",
    )
