"""Every validation rule of the reliability issue, through the CLI: exit 2, one line, no trace.

The parser-level rules (rates, --set keys, --device, --train-subset) are in test_cli.py; these
are the rules that need a dataset, a label file or the data root.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from helpers import assert_usage_error, run_cli


def _run(capsys, tmp_path, *args):
    out = tmp_path / "runs"
    res = run_cli(capsys, "run", "--method", "erm", "--out", str(out), *args)
    assert not out.exists() or not any(out.iterdir()), "a refused run must write nothing"
    return res


def test_asym_on_a_dataset_without_a_map(capsys, tmp_path):
    res = _run(capsys, tmp_path, "--dataset", "digits", "--noise", "asym:0.4")
    assert_usage_error(res, "no asymmetric map", "Accepted for: cifar10")


def test_cifar_n_on_a_dataset_not_in_cifar_order(capsys, tmp_path):
    res = _run(capsys, tmp_path, "--dataset", "digits", "--noise", "cifar_n:worse")
    assert_usage_error(res, "not in the official CIFAR-10/CIFAR-100 train order", "cifar10")


@pytest.mark.parametrize(
    "labels, fragments",
    [
        (np.zeros(10, dtype=np.int64), ["10 labels for a train set of 1297", "Accepted"]),
        (np.full(1297, 12, dtype=np.int64), ["labels must lie in 0..9", "12"]),
        (np.full(1297, -1, dtype=np.int64), ["labels must lie in 0..9"]),
    ],
)
def test_label_file_with_wrong_length_or_range(capsys, tmp_path, labels, fragments):
    path = tmp_path / "labels.npy"
    np.save(path, labels)
    res = _run(capsys, tmp_path, "--dataset", "digits", "--noise", f"file:{path}")
    assert_usage_error(res, *fragments)


def test_missing_label_file(capsys, tmp_path):
    res = _run(capsys, tmp_path, "--dataset", "digits", "--noise", f"file:{tmp_path}/nope.npy")
    assert res.code == 2 and "nope.npy" in res.err and "Traceback" not in res.err


def test_missing_dataset_files_offline_names_files_and_url(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("NLBENCH_OFFLINE", "1")
    res = _run(
        capsys,
        tmp_path,
        "--dataset",
        "cifar10",
        "--noise",
        "0.2",
        "--data-root",
        str(tmp_path / "empty"),
    )
    assert_usage_error(res, "data_batch_1", "cifar-10-python.tar.gz")


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ({"seeds": ["x"]}, "sweep 'seed': 'x' is not an integer"),
        ({"epochs": 2.5}, "sweep 'epochs': 2.5 is not an integer"),
        ({"dataset": 3}, "sweep 'dataset': 3 is not a string"),
        ({"out": 5}, "'out' must be a string, got 5"),
    ],
)
def test_type_errors_read_as_english(data, fragment):
    """'is not an integer', never 'is not a int': the messages are read by people."""
    from nlbench.core.errors import UsageError
    from nlbench.sweep.plan import grid_from_mapping

    with pytest.raises(UsageError) as info:
        grid_from_mapping(data)
    assert fragment in str(info.value)
    assert not re.search(r"\ba (int|str|float|bool)\b", str(info.value))
