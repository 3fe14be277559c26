"""Dataset loaders on tiny files in the official on-disk formats, and the download policy."""

from __future__ import annotations

import functools
import gzip
import http.server
import logging
import pickle
import tarfile
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from nlbench.core.config import RunConfig
from nlbench.core.errors import DataMissingError
from nlbench.core.hparams import resolve_hparams
from nlbench.core.seeding import numpy_rng, torch_generator
from nlbench.host.plugins import get_host
from nlbench.training.data import DatasetData, LoadRequest

DATASETS = ["cifar10", "cifar100", "fashionmnist", "clothing1m", "imagefolder"]


def load(name: str, root: Path) -> DatasetData:
    return get_host().get("datasets", name).load(LoadRequest(root=root, download=False))


# -- writers of the official formats --------------------------------------------------------
def write_cifar10(root: Path, per_batch: int = 12) -> np.ndarray:
    """data_batch_1..5, test_batch, batches.meta as pickled dicts; returns the train labels."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = numpy_rng("cifar10-files")
    labels: list[np.ndarray] = []
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        y = rng.integers(0, 10, per_batch)
        data = rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8)
        data[:, 0] = np.arange(per_batch) + 20 * len(labels)  # first red pixel = position
        batch = {
            "batch_label": name,
            "labels": y.tolist(),
            "data": data,
            "filenames": [f"{i}.png" for i in range(per_batch)],
        }
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
        labels.append(y)
    classes = [
        "airplane",
        "automobile",
        "bird",
        "cat",
        "deer",
        "dog",
        "frog",
        "horse",
        "ship",
        "truck",
    ]
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": classes}))
    return np.concatenate(labels[:5])


def write_cifar100(root: Path, n: int = 30) -> np.ndarray:
    from nlbench_plugins.datasets_cifar import CIFAR100_CLASSES, cifar100_coarse

    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    rng = numpy_rng("cifar100-files")
    fine = {}
    for name in ("train", "test"):
        fine[name] = rng.integers(0, 100, n)
        batch = {
            "data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
            "fine_labels": fine[name].tolist(),
            "coarse_labels": cifar100_coarse()[fine[name]].tolist(),
        }
        (folder / name).write_bytes(pickle.dumps(batch, protocol=4))
    (folder / "meta").write_bytes(pickle.dumps({"fine_label_names": CIFAR100_CLASSES}))
    return fine["train"]


def write_idx(path: Path, arr: np.ndarray, gz: bool = True) -> None:
    magic = (2051 if arr.ndim == 3 else 2049).to_bytes(4, "big")
    header = magic + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    payload = header + arr.astype(np.uint8).tobytes()
    if gz:
        path.write_bytes(gzip.compress(payload))
    else:
        path.write_bytes(payload)


def write_fashionmnist(root: Path, gz: bool = True) -> tuple[np.ndarray, np.ndarray]:
    folder = root / "FashionMNIST" / "raw"
    folder.mkdir(parents=True)
    rng = numpy_rng("fmnist-files")
    x, y = rng.integers(0, 256, (40, 28, 28)), rng.integers(0, 10, 40)
    suffix = ".gz" if gz else ""
    write_idx(folder / f"train-images-idx3-ubyte{suffix}", x[:30], gz)
    write_idx(folder / f"train-labels-idx1-ubyte{suffix}", y[:30], gz)
    write_idx(folder / f"t10k-images-idx3-ubyte{suffix}", x[30:], gz)
    write_idx(folder / f"t10k-labels-idx1-ubyte{suffix}", y[30:], gz)
    return x, y


def write_image(path: Path, value: int, size: tuple[int, int]) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (value, value, value)).save(path)


def write_clothing1m(root: Path) -> dict[str, dict[str, list[Any]]]:
    """The release layout: images/…jpg and the label/key text files; image grey level = 10·i."""
    folder = root / "clothing1m"
    keys = {
        split: [f"images/{k % 2}/{split}_{k}.jpg" for k in range(n)]
        for split, n in (("train", 12), ("val", 5), ("test", 4))
    }
    labels = {split: [(3 * k) % 14 for k in range(len(v))] for split, v in keys.items()}
    for split in keys:
        for k, key in enumerate(keys[split]):
            write_image(folder / key, 10 * k, (40 + k, 30))
    (folder / "noisy_label_kv.txt").write_text(
        "".join(f"{k} {y}\n" for k, y in zip(keys["train"], labels["train"], strict=True))
    )
    clean = [(k, y) for s in ("val", "test") for k, y in zip(keys[s], labels[s], strict=True)]
    (folder / "clean_label_kv.txt").write_text("".join(f"{k} {y}\n" for k, y in clean))
    for split, name in (("train", "noisy_train"), ("val", "clean_val"), ("test", "clean_test")):
        (folder / f"{name}_key_list.txt").write_text("\n".join(keys[split]) + "\n")
    return {"keys": keys, "labels": labels}


def write_imagefolder(root: Path) -> None:
    for split, n in (("train", 3), ("test", 2)):
        for cls in ["cat", "dog", "emu"] if split == "train" else ["dog", "emu"]:
            for i in range(n):
                write_image(root / split / cls / f"{i}.png", 40 * i + len(cls), (8 + i, 8))


# -- CIFAR ----------------------------------------------------------------------------------
def test_cifar10_reads_official_python_batches(tmp_path, caplog):
    labels = write_cifar10(tmp_path)
    with caplog.at_level(logging.WARNING, logger="nlbench.core.download"):
        data = load("cifar10", tmp_path)
        load("cifar10", tmp_path)
    assert data.train.x.shape == (60, 3, 32, 32) and data.train.x.dtype == torch.uint8
    assert data.test.x.shape == (12, 3, 32, 32)
    assert np.array_equal(data.train.y.numpy(), labels)
    assert data.train.x[:, 0, 0, 0].tolist() == [p + 20 * b for b in range(5) for p in range(12)]
    assert data.classes[9] == "truck" and data.augment == "crop_flip"
    warned = [r for r in caplog.records if "differ from the official checksums" in r.message]
    assert len(warned) == 1  # once per folder and process


def test_cifar100_fine_labels_and_classes(tmp_path):
    fine = write_cifar100(tmp_path)
    data = load("cifar100", tmp_path)
    assert data.num_classes == 100 and data.classes[0] == "apple" and data.classes[-1] == "worm"
    assert np.array_equal(data.train.y.numpy(), fine)
    assert data.train.x.shape == (30, 3, 32, 32)


def test_cifar_refuses_arbitrary_pickles(tmp_path):
    write_cifar10(tmp_path)
    path = tmp_path / "cifar-10-batches-py" / "data_batch_3"
    path.write_bytes(pickle.dumps({"data": Path("/etc/passwd")}))
    with pytest.raises(DataMissingError, match="refusing to load global"):
        load("cifar10", tmp_path)


@pytest.mark.parametrize(
    "name, expected, url",
    [
        ("cifar10", "cifar-10-batches-py", "cifar-10-python.tar.gz"),
        ("cifar100", "cifar-100-python", "cifar-100-python.tar.gz"),
        ("fashionmnist", "train-images-idx3-ubyte.gz", "fashion-mnist"),
        ("clothing1m", "noisy_label_kv.txt", "Cysu/noisy_label"),
        ("imagefolder", "imagefolder/train/<class>", "NLBENCH_IMAGEFOLDER"),
    ],
)
def test_missing_files_offline_is_one_clear_error(tmp_path, monkeypatch, name, expected, url):
    monkeypatch.setenv("NLBENCH_OFFLINE", "1")
    monkeypatch.delenv("NLBENCH_IMAGEFOLDER", raising=False)
    spec = get_host().get("datasets", name)
    with pytest.raises(DataMissingError) as info:
        spec.load(LoadRequest(root=tmp_path, download=True))
    message = str(info.value)
    assert expected in message and url in message and "\n" not in message


@pytest.fixture
def http_root(tmp_path):
    """A local HTTP server over tmp_path/www (downloads without the internet)."""
    www = tmp_path / "www"
    www.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(www))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield www, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    thread.join()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


def test_downloads_are_checksummed(tmp_path, http_root, monkeypatch):
    from torchvision.datasets.utils import calculate_md5

    from nlbench.core.download import Archive, Expected, require_files

    monkeypatch.delenv("NLBENCH_OFFLINE", raising=False)
    www, base = http_root
    (tmp_path / "src" / "pkg").mkdir(parents=True)
    (tmp_path / "src" / "pkg" / "a.txt").write_text("payload")
    with tarfile.open(www / "pkg.tar.gz", "w:gz") as tf:
        tf.add(tmp_path / "src" / "pkg", arcname="pkg")
    folder = tmp_path / "data" / "pkg"
    wrong = Archive(f"{base}/pkg.tar.gz", "pkg.tar.gz", "0" * 32)
    with pytest.raises(DataMissingError, match="download failed"):
        require_files(folder, [Expected("a.txt")], name="pkg", archives=[wrong])
    assert not folder.exists()
    right = Archive(f"{base}/pkg.tar.gz", "pkg.tar.gz", calculate_md5(str(www / "pkg.tar.gz")))
    assert require_files(folder, [Expected("a.txt")], name="pkg", archives=[right]) == folder
    assert (folder / "a.txt").read_text() == "payload"


# -- Fashion-MNIST ---------------------------------------------------------------------------
@pytest.mark.parametrize("gz", [True, False])
def test_fashionmnist_idx(tmp_path, gz):
    x, y = write_fashionmnist(tmp_path, gz)
    data = load("fashionmnist", tmp_path)
    assert data.train.x.shape == (30, 1, 28, 28) and data.test.x.shape == (10, 1, 28, 28)
    assert np.array_equal(data.train.x[:, 0].numpy(), x[:30])
    assert np.array_equal(data.test.y.numpy(), y[30:])
    assert data.classes[0] == "T-shirt/top" and data.augment == "crop"


# -- imagefolder -----------------------------------------------------------------------------
def test_imagefolder_tree(tmp_path, monkeypatch):
    from nlbench_plugins.datasets_imagefolder import load_imagefolder

    write_imagefolder(tmp_path / "tree")
    monkeypatch.setenv("NLBENCH_IMAGEFOLDER", str(tmp_path / "tree"))
    data = load_imagefolder(LoadRequest(root=tmp_path / "unused"), size=8)
    assert data.classes == ["cat", "dog", "emu"] and data.num_classes == 3
    assert data.train.x.shape == (9, 3, 8, 8) and data.train.x.dtype == torch.uint8
    assert data.train.y.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert data.test.y.tolist() == [1, 1, 2, 2]  # test classes mapped by name onto train's
    assert data.train.x[0].float().mean() == 3  # 8x8 kept as is: grey level 40*0 + len("cat")
    assert data.train.x[1].float().mean() == 43  # 9x8 resized: a flat image stays flat
    assert len(data.mean) == 3 and all(s > 0 for s in data.std)
    spec = get_host().get("datasets", "imagefolder")
    monkeypatch.setenv("NLBENCH_IMAGEFOLDER", str(tmp_path / "tree"))
    assert spec.load(LoadRequest(root=tmp_path)).train.x.shape[-1] == spec.image_size


# -- Clothing1M -------------------------------------------------------------------------------
def test_clothing1m_layout_and_stream(tmp_path):
    written = write_clothing1m(tmp_path)
    data = load("clothing1m", tmp_path)
    assert data.train.y.tolist() == written["labels"]["train"]
    assert data.val is not None and len(data.val) == 5
    assert len(data.test) == 4 and data.num_classes == 14
    data.train = data.train.take(np.array([1, 4, 7, 10]))  # what --train-subset does
    gen = torch_generator(0)
    hp = {"num_workers": 0, "batches_per_epoch": 3}
    train = data.stream.train_set(data.train.y, torch.device("cpu"), 2, gen, hp)
    assert len(train) == 4 and train.num_batches() == 3
    grey = train.plain(torch.arange(4)).mean((1, 2, 3))
    expected = [(10 * k / 255 - np.mean(data.mean)) / np.mean(data.std) for k in (1, 4, 7, 10)]
    assert np.allclose(grey.numpy(), expected, atol=0.1)  # the right files after take()
    batches = list(train.batches())
    assert len(batches) == 3 and batches[0].x.shape == (2, 3, 224, 224)
    for b in batches:
        assert torch.equal(b.y, train.labels[b.index])
    evals = data.stream.eval_sets(torch.device("cpu"))
    assert set(evals) == {"test", "val"} and len(evals["val"]) == 5
    xs, ys = zip(*evals["test"].batches(3), strict=True)
    assert [x.shape[0] for x in xs] == [3, 1]
    assert torch.cat(ys).tolist() == written["labels"]["test"]


def test_clothing1m_class_balanced_epoch(tmp_path):
    write_clothing1m(tmp_path)
    data = load("clothing1m", tmp_path)
    hp = {"num_workers": 0, "batches_per_epoch": 7}
    train = data.stream.train_set(data.train.y, torch.device("cpu"), 2, torch_generator(1), hp)
    order = train._order(torch.arange(len(train)), 2)
    counts = torch.bincount(train.labels[order], minlength=14)
    present = counts[counts > 0]
    assert len(order) == 14 and present.max() - present.min() <= 1
    assert len(present) == len(torch.unique(train.labels))


def test_clothing1m_end_to_end_run(tmp_path):
    from nlbench.api import run

    write_clothing1m(tmp_path / "data")
    record = run(
        method="erm",
        dataset="clothing1m",
        profile="paper",
        model="tiny_cnn",
        epochs=1,
        data_root=str(tmp_path / "data"),
        out=str(tmp_path / "runs"),
        device="cpu",
        set={"batches_per_epoch": 2, "batch_size": 4, "num_workers": 0, "eval_batch_size": 8},
    )
    assert record["status"] == "done" and record["noise"]["type"] == "none"
    epoch = record["epochs"][0]
    assert 0 <= epoch["test_acc"] <= 1 and 0 <= epoch["val_acc"] <= 1


@pytest.mark.parametrize("method", ["mwnet", "l2r"])
def test_clothing1m_clean_meta_set_is_a_usage_error_and_pseudo_runs(tmp_path, method):
    """Clothing1M streams its train set from disk, so there is no in-memory clean hold-out: a
    ``clean:N`` meta set is refused in one line naming what is accepted (it used to crash);
    ``pseudo`` runs."""
    from nlbench.api import run
    from nlbench.core.errors import UsageError

    write_clothing1m(tmp_path / "data")
    settings = {"batches_per_epoch": 2, "batch_size": 4, "num_workers": 0, "eval_batch_size": 8}
    kw = {
        "method": method,
        "dataset": "clothing1m",
        "profile": "paper",
        "model": "tiny_cnn",
        "epochs": 1,
        "data_root": str(tmp_path / "data"),
        "out": str(tmp_path / "runs"),
        "device": "cpu",
    }
    with pytest.raises(UsageError, match="streams its train set.*accepted here: pseudo"):
        run(**kw, set={**settings, "meta_set": "clean:4"})
    assert not any((tmp_path / "runs").glob("*/run.json"))
    record = run(**kw, set={**settings, "meta_set": "pseudo"})
    assert record["status"] == "done"


# -- registry-wide ---------------------------------------------------------------------------
@pytest.mark.parametrize("name", DATASETS)
def test_profiles_resolve_with_known_models(name):
    host = get_host()
    dspec = host.get("datasets", name)
    models = set(host.registry("models").names())
    assert "paper" in dspec.profiles
    for profile in dspec.profiles:
        hp = resolve_hparams(
            host.get("methods", "erm"), dspec, RunConfig(dataset=name, profile=profile), host
        )
        assert hp["model"] in models, (profile, hp["model"])


def test_cifar_specs_name_their_label_order():
    host = get_host()
    assert host.get("datasets", "cifar10").label_order == "cifar10"
    assert host.get("datasets", "cifar100").label_order == "cifar100"
    assert host.get("datasets", "fashionmnist").label_order is None
    assert "cpu" in host.get("datasets", "cifar10").profiles


def test_train_subset_run_on_cifar10_files(tmp_path):
    """--train-subset and cifar_n-style sample ids through a real run on written files."""
    from nlbench.api import run

    labels = write_cifar10(tmp_path / "data")
    np.save(tmp_path / "noisy.npy", (labels + 1) % 10)  # full-length file, indexed by sample ids
    record = run(
        method="erm",
        dataset="cifar10",
        model="tiny_cnn",
        epochs=1,
        train_subset=20,
        noise=f"file:{tmp_path / 'noisy.npy'}",
        data_root=str(tmp_path / "data"),
        out=str(tmp_path / "runs"),
        device="cpu",
    )
    assert record["noise"]["num_samples"] == 20 and record["noise"]["realized_rate"] == 1.0
    matrix = np.array(record["noise"]["transition_matrix"])
    assert all(matrix[c, (c + 1) % 10] == matrix[c].sum() for c in range(10))
