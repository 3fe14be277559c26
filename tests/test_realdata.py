"""Real CIFAR-10 from ../shared/data (skipped when absent): loading, CIFAR-N, a short ERM run."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytestmark = pytest.mark.realdata


def test_cifar10_loads_through_the_registry(cifar_root):
    from nlbench.api import build_dataset

    data = build_dataset("cifar10", cifar_root)
    assert data.train.x.shape == (50000, 3, 32, 32) and data.test.x.shape == (10000, 3, 32, 32)
    assert np.bincount(data.train.y.numpy()).tolist() == [5000] * 10
    mean = data.train.x[:5000].double().mean((0, 2, 3)) / 255
    assert np.allclose(mean.numpy(), [0.4913, 0.4821, 0.4465], atol=0.01)


def test_cifar_n_worse_realizes_40_2_percent(cifar_root):
    from click.testing import CliRunner

    from nlbench.cli import cli

    result = CliRunner().invoke(
        cli,
        [
            "noise",
            "--dataset",
            "cifar10",
            "--noise",
            "cifar_n:worse",
            "--data-root",
            str(cifar_root),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output[result.output.index("{") :])
    assert report["num_samples"] == 50000
    assert abs(report["realized_rate"] - 0.4021) < 0.0005


@pytest.mark.slow
def test_erm_small_cnn_on_10k_subset_beats_50_percent(cifar_root, tmp_path):
    from nlbench.api import run

    record = run(
        method="erm",
        dataset="cifar10",
        profile="cpu",
        epochs=6,
        train_subset=10000,
        data_root=str(cifar_root),
        out=str(tmp_path),
        device="cpu",
    )
    assert record["status"] == "done"
    assert record["summary"]["last_acc"] > 0.5, record["summary"]
