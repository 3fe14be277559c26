"""``nlbench data prepare`` offline against fixture files in the official formats, and a fetch
from a local HTTP server (checksums verified)."""

from __future__ import annotations

import json
import shutil

import pytest
from helpers import assert_usage_error, run_cli
from test_datasets import (
    http_root,  # noqa: F401 - fixture
    write_cifar10,
    write_clothing1m,
    write_fashionmnist,
)


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    monkeypatch.setenv("NLBENCH_OFFLINE", "1")


def test_cifar10_fixture_is_ready_with_checksum_report(tmp_path, capsys):
    write_cifar10(tmp_path)
    result = run_cli(capsys, "data", "prepare", "cifar10", "--root", str(tmp_path), "--json")
    assert result.code == 0, result.err
    report = json.loads(result.out)
    assert report["splits"] == {"train": 60, "test": 12}
    assert report["folder"] == str(tmp_path / "cifar-10-batches-py")
    assert set(report["files"]) >= {"data_batch_1", "test_batch", "batches.meta"}
    assert set(report["files"].values()) == {"differs"}  # fixtures are not the official bytes
    text = run_cli(capsys, "data", "prepare", "cifar10", "--root", str(tmp_path))
    assert text.code == 0 and "cifar10 ready in" in text.out and "re-encoded" in text.out


def test_clothing1m_fixture_files_and_every_image_checked(tmp_path, capsys):
    write_clothing1m(tmp_path)
    result = run_cli(capsys, "data", "prepare", "clothing1m", "--root", str(tmp_path), "--json")
    assert result.code == 0, result.err
    report = json.loads(result.out)
    assert report["splits"] == {"train": 12, "test": 4, "val": 5}
    assert report["files"]["noisy_label_kv.txt"] == "no checksum"
    assert any("every image" in note for note in report["notes"])


def test_clothing1m_missing_image_is_one_line(tmp_path, capsys):
    written = write_clothing1m(tmp_path)
    gone = written["keys"]["val"][3]
    (tmp_path / "clothing1m" / gone).unlink()
    result = run_cli(capsys, "data", "prepare", "clothing1m", "--root", str(tmp_path))
    assert_usage_error(result, "1 of 5 images", "clean_val_key_list.txt", gone)


def test_clothing1m_missing_files_say_what_goes_where(tmp_path, capsys):
    write_clothing1m(tmp_path)
    (tmp_path / "clothing1m" / "noisy_label_kv.txt").unlink()
    result = run_cli(capsys, "data", "prepare", "clothing1m", "--root", str(tmp_path))
    folder = str(tmp_path / "clothing1m")
    assert_usage_error(result, "noisy_label_kv.txt", folder, "request it from the authors")
    shutil.rmtree(tmp_path / "clothing1m")
    empty = run_cli(capsys, "data", "prepare", "clothing1m", "--root", str(tmp_path))
    assert_usage_error(empty, "noisy_label_kv.txt", "clean_test_key_list.txt", "Cysu/noisy_label")


def test_offline_missing_cifar_names_the_download(tmp_path, capsys):
    result = run_cli(capsys, "data", "prepare", "cifar100", "--root", str(tmp_path))
    assert_usage_error(result, "cifar-100-python", "cifar-100-python.tar.gz")


def test_unknown_dataset_lists_the_accepted(tmp_path, capsys):
    result = run_cli(capsys, "data", "prepare", "cifar11", "--root", str(tmp_path))
    assert_usage_error(result, "unknown dataset 'cifar11'", "Did you mean 'cifar10'", "Accepted")


def test_fetches_from_the_official_source_with_checksums(tmp_path, capsys, http_root, monkeypatch):  # noqa: F811
    from torchvision.datasets import FashionMNIST
    from torchvision.datasets.utils import calculate_md5

    www, base = http_root
    write_fashionmnist(tmp_path / "src")
    raw = tmp_path / "src" / "FashionMNIST" / "raw"
    resources = []
    for name, _md5 in FashionMNIST.resources:
        shutil.copy(raw / name, www / name)
        resources.append((name, calculate_md5(str(www / name))))
    monkeypatch.setattr(FashionMNIST, "mirrors", [f"{base}/"])
    monkeypatch.setattr(FashionMNIST, "resources", resources)
    monkeypatch.delenv("NLBENCH_OFFLINE")
    monkeypatch.setenv("NLBENCH_NO_CACHE", "1")  # the static cache knows the real mirrors
    root = tmp_path / "data"
    offline = run_cli(capsys, "data", "prepare", "fashionmnist", "--root", str(root), "--offline")
    assert_usage_error(offline, "train-images-idx3-ubyte.gz", base)
    result = run_cli(capsys, "data", "prepare", "fashionmnist", "--root", str(root), "--json")
    assert result.code == 0, result.err
    report = json.loads(result.out)
    assert report["splits"] == {"train": 30, "test": 10}
    assert set(report["files"].values()) == {"official"}  # the checksums of the source


def test_corrupt_download_is_refused_in_one_line(tmp_path, capsys, http_root, monkeypatch):  # noqa: F811
    from torchvision.datasets import FashionMNIST

    www, base = http_root
    write_fashionmnist(tmp_path / "src")
    raw = tmp_path / "src" / "FashionMNIST" / "raw"
    for name, _md5 in FashionMNIST.resources:
        shutil.copy(raw / name, www / name)
    monkeypatch.setattr(FashionMNIST, "mirrors", [f"{base}/"])  # official MD5s kept: mismatch
    monkeypatch.delenv("NLBENCH_OFFLINE")
    root = tmp_path / "d"
    result = run_cli(capsys, "data", "prepare", "fashionmnist", "--root", str(root))
    errors = [line for line in result.err.splitlines() if line.startswith("Error:")]
    assert result.code == 2 and len(errors) == 1 and "Traceback" not in result.err  # + progress
    assert "download failed" in errors[0] and "train-images-idx3-ubyte.gz" in errors[0]
    assert list((root / "FashionMNIST" / "raw").iterdir()) == []  # nothing corrupt kept
    again = run_cli(capsys, "data", "prepare", "fashionmnist", "--root", str(root), "--offline")
    assert_usage_error(again, "train-images-idx3-ubyte.gz")
