"""Noise models: exact counts, maps, statistics, determinism, label files and ``nlbench noise``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from nlbench.core.config import parse_noise
from nlbench.core.errors import DataMissingError, UsageError
from nlbench.core.seeding import numpy_rng
from nlbench.host.plugins import get_host
from nlbench.training.noise import NoiseContext, labels_sha256, noise_report, transition_counts
from nlbench_plugins.noise_mwnet import flip_matrix, flip_targets
from nlbench_plugins.noise_synthetic import (
    CIFAR10_ASYM,
    block5_next,
    cifar100_superclass_next,
    truncated_normal,
)

LABEL_MODELS = [
    "sym",
    "sym_incl",
    "asym",
    "asym_block5",
    "pairflip",
    "instance",
    "random_labels",
    "flip",
    "flip2",
]
INPUT_MODELS = ["shuffled_pixels", "random_pixels", "gaussian"]


def balanced(num_classes: int, per_class: int) -> np.ndarray:
    return np.repeat(np.arange(num_classes), per_class).astype(np.int64)


def images_for(clean: np.ndarray, seed: int = 0, size: int = 8) -> torch.Tensor:
    """Random uint8 images whose mean brightness depends on the class (features carry signal)."""
    rng = numpy_rng("test-images", seed)
    base = rng.integers(0, 200, size=(len(clean), 3, size, size))
    return torch.from_numpy((base + 5 * (clean % 10)[:, None, None, None]).astype(np.uint8))


def make_ctx(clean, num_classes, dataset="cifar10", seed=0, x=None, sample_ids=None, root=None):
    spec = get_host().get("datasets", dataset) if dataset else None
    return NoiseContext(
        clean=np.asarray(clean, dtype=np.int64).copy(),
        num_classes=num_classes,
        rng=numpy_rng("test-noise", seed),
        dataset=dataset or "none",
        dataset_spec=spec,
        train_x=x,
        data_root=root,
        sample_ids=sample_ids,
    )


def apply(name: str, ctx: NoiseContext, arg: str | None):
    return get_host().get("noise", name).apply(ctx, arg)


def ctx_for(model: str, seed: int = 0) -> NoiseContext:
    """A context every model accepts: CIFAR-100 shaped labels with images."""
    clean = balanced(100, 20)
    return make_ctx(clean, 100, "cifar100", seed, x=images_for(clean, seed))


def test_sym_flips_exactly_round_rn_to_other_classes():
    clean = balanced(10, 101)
    noisy = apply("sym", make_ctx(clean, 10), "0.37").labels
    assert int((noisy != clean).sum()) == round(0.37 * len(clean))


def test_asym_cifar10_exact_pairs_and_per_class_rates():
    clean = balanced(10, 200)
    noisy = apply("asym", make_ctx(clean, 10, "cifar10"), "0.4").labels
    counts = transition_counts(clean, noisy, 10)
    for c in range(10):
        if c in CIFAR10_ASYM:
            assert counts[c, CIFAR10_ASYM[c]] == 80 and counts[c, c] == 120
        else:
            assert counts[c, c] == 200
    assert counts.sum() - np.trace(counts) == 5 * 80  # no other pair is ever produced


def test_asym_uses_frozen_clean_labels():
    """cat↔dog at rate 1: every cat becomes dog and every dog cat (no double flips)."""
    clean = balanced(10, 30)
    noisy = apply("asym", make_ctx(clean, 10, "cifar10"), "1.0").labels
    assert np.all(noisy[clean == 3] == 5) and np.all(noisy[clean == 5] == 3)


def test_asym_cifar100_stays_within_real_superclass():
    from nlbench_plugins.datasets_cifar import CIFAR100_CLASSES, cifar100_coarse

    mapping = cifar100_superclass_next()
    coarse = cifar100_coarse()
    assert sorted(mapping) == list(range(100)) and len(set(mapping.values())) == 100
    assert all(coarse[s] == coarse[d] and s != d for s, d in mapping.items())
    assert CIFAR100_CLASSES[mapping[CIFAR100_CLASSES.index("beaver")]] == "dolphin"
    assert CIFAR100_CLASSES[mapping[CIFAR100_CLASSES.index("whale")]] == "beaver"
    clean = balanced(100, 10)
    noisy = apply("asym", make_ctx(clean, 100, "cifar100"), "0.3").labels
    counts = transition_counts(clean, noisy, 100)
    assert all(counts[s, d] == 3 and counts[s, s] == 7 for s, d in mapping.items())


def test_asym_block5_is_a_separate_variant():
    assert block5_next(10) == {0: 1, 1: 2, 2: 3, 3: 4, 4: 0, 5: 6, 6: 7, 7: 8, 8: 9, 9: 5}
    clean = balanced(100, 10)
    noisy = apply("asym_block5", make_ctx(clean, 100, "cifar100"), "0.5").labels
    counts = transition_counts(clean, noisy, 100)
    assert counts[4, 0] == 5 and counts[99, 95] == 5 and counts[0, 1] == 5
    with pytest.raises(UsageError, match="cifar100"):
        apply("asym_block5", make_ctx(balanced(10, 5), 10, "cifar10"), "0.5")


def test_asym_fashionmnist_map_and_no_map_error():
    clean = balanced(10, 50)
    noisy = apply("asym", make_ctx(clean, 10, "fashionmnist"), "0.2").labels
    counts = transition_counts(clean, noisy, 10)
    assert counts[0, 6] == counts[6, 0] == counts[2, 4] == counts[5, 7] == counts[9, 7] == 10
    with pytest.raises(UsageError, match="no asymmetric map.*pairflip"):
        apply("asym", make_ctx(clean, 10, "digits"), "0.2")


def test_pairflip_per_class():
    clean = balanced(7, 20)
    counts = transition_counts(clean, apply("pairflip", make_ctx(clean, 7), "0.45").labels, 7)
    for c in range(7):
        assert counts[c, (c + 1) % 7] == 9 and counts[c, c] == 11


def test_sym_incl_statistics():
    """round(r·N) relabelled uniformly over all C: realized ≈ r(1−1/C), noisy labels uniform."""
    clean = balanced(10, 2000)
    rates = [
        np.mean(apply("sym_incl", make_ctx(clean, 10, seed=s), "0.5").labels != clean)
        for s in range(3)
    ]
    expected, sd = 0.5 * 0.9, np.sqrt(10000 * 0.1 * 0.9) / 20000  # binomial over resampled ones
    assert all(abs(r - expected) < 4 * sd for r in rates), rates
    noisy = apply("sym_incl", make_ctx(clean, 10), "1.0").labels
    hist = np.bincount(noisy, minlength=10) / len(noisy)
    assert np.all(np.abs(hist - 0.1) < 0.01)


@pytest.mark.parametrize("rate", [0.2, 0.4])
def test_instance_rates_around_r(rate):
    clean = balanced(10, 300)
    res = apply("instance", make_ctx(clean, 10, x=images_for(clean)), str(rate))
    realized = np.mean(res.labels != clean)
    assert abs(realized - rate) < 0.03
    assert abs(res.info["mean_flip_prob"] - rate) < 0.01


def test_instance_flip_directions_depend_on_the_image():
    """Near-identical images flip to the same class; different images to different ones."""
    clean = balanced(10, 300)
    rng = numpy_rng("proto")
    protos = rng.integers(0, 255, size=(10, 3, 8, 8))
    jitter = rng.integers(0, 4, size=(len(clean), 3, 8, 8))
    x = torch.from_numpy(np.clip(protos[clean] + jitter, 0, 255).astype(np.uint8))
    noisy = apply("instance", make_ctx(clean, 10, x=x), "0.5").labels
    counts = transition_counts(clean, noisy, 10).astype(float)
    np.fill_diagonal(counts, 0)
    share = counts.max(1) / counts.sum(1)
    assert np.median(share) > 0.9 and share.min() > 0.3  # uniform flips would give 0.11
    assert len(set(counts.argmax(1).tolist())) > 3
    assert apply("instance", make_ctx(clean, 10, x=x), "0").labels.tolist() == clean.tolist()


def test_truncated_normal_stays_in_unit_interval():
    q = truncated_normal(numpy_rng("tn"), 0.95, 0.1, 5000)
    assert q.min() >= 0 and q.max() <= 1 and 0.85 < q.mean() < 0.95


def test_random_labels_all_and_partial():
    clean = balanced(10, 1000)
    assert (
        abs(np.mean(apply("random_labels", make_ctx(clean, 10), None).labels != clean) - 0.9) < 0.02
    )
    assert (
        abs(np.mean(apply("random_labels", make_ctx(clean, 10), "0.5").labels != clean) - 0.45)
        < 0.02
    )


def test_shuffled_pixels_one_permutation_for_all():
    n, h = 6, 4
    x = torch.arange(h * h, dtype=torch.uint8).repeat(n, 3, 1).reshape(n, 3, h, h)
    x[:, 1] += 100
    res = apply("shuffled_pixels", make_ctx(np.zeros(n, dtype=np.int64), 10, x=x), None)
    out = res.train_x
    assert np.array_equal(res.labels, np.zeros(n))
    assert torch.equal(out, out[:1].expand_as(out))  # same permutation everywhere
    assert not torch.equal(out, x)
    assert torch.equal(out[:, 1] - 100, out[:, 0])  # channels move together
    assert sorted(out[0, 0].flatten().tolist()) == list(range(h * h))


def test_random_pixels_differ_per_image_and_keep_pixels():
    n, h = 8, 4
    x = torch.arange(h * h, dtype=torch.uint8).repeat(n, 1, 1).reshape(n, 1, h, h)
    out = apply("random_pixels", make_ctx(np.zeros(n, dtype=np.int64), 10, x=x), None).train_x
    assert len({tuple(img.flatten().tolist()) for img in out}) > 1
    assert all(sorted(img.flatten().tolist()) == list(range(h * h)) for img in out)


def test_gaussian_matches_channel_mean_and_std():
    clean = balanced(10, 40)
    x = images_for(clean, size=16)
    res = apply("gaussian", make_ctx(clean, 10, x=x), "0.5")
    assert res.info["corrupted_images"] == 200
    changed = (res.train_x != x).flatten(1).any(1)
    assert int(changed.sum()) == 200
    xf, of = x.double(), res.train_x[changed].double()
    assert torch.allclose(of.mean((0, 2, 3)), xf.mean((0, 2, 3)), atol=1.5)
    assert torch.allclose(of.std((0, 2, 3)), xf.std((0, 2, 3)), rtol=0.05)


def legacy_targets(num_classes: int, count: int) -> list[list[int]]:
    """MW-Net's draws spelt out: RandomState.choice(a) is a[randint(0, len(a))], and
    choice(a, k, replace=False) is a[permutation(len(a))[:k]] (numpy's legacy algorithms)."""
    rs = np.random.RandomState(1)
    out = []
    for i in range(num_classes):
        others = np.delete(np.arange(num_classes), i)
        picks = [rs.randint(0, num_classes - 1)] if count == 1 else rs.permutation(num_classes - 1)
        out.append(others[np.asarray(picks)[:count]].tolist())
    return out


@pytest.mark.parametrize("num_classes", [10, 100])
@pytest.mark.parametrize("count", [1, 2])
def test_mwnet_flip_matrices_exact(num_classes, count):
    rate = 0.4
    expected = np.eye(num_classes) * (1 - rate)
    for i, targets in enumerate(legacy_targets(num_classes, count)):
        assert i not in targets and len(set(targets)) == count
        expected[i, targets] = rate / count
    matrix = flip_matrix(num_classes, rate, count)
    assert np.array_equal(matrix, expected)
    assert np.allclose(matrix.sum(1), 1.0)


def test_mwnet_flip_targets_on_cifar10():
    # what the official flip_labels_C(r, 10) / flip_labels_C_two(r, 10) print
    assert [t[0] for t in flip_targets(10, 1)] == [6, 9, 6, 0, 0, 1, 8, 6, 2, 4]
    assert flip_targets(10, 2)[:3] == [[9, 3], [4, 8], [1, 8]]


@pytest.mark.parametrize("model,count", [("flip", 1), ("flip2", 2)])
def test_mwnet_flip_draws_each_label_from_its_row(model, count):
    clean = balanced(10, 3000)
    result = apply(model, make_ctx(clean, 10), "0.4")
    counts = transition_counts(clean, result.labels, 10)
    matrix = flip_matrix(10, 0.4, count)
    assert np.all(counts[matrix == 0] == 0)  # only the diagonal and the fixed targets
    assert np.allclose(counts / 3000, matrix, atol=0.04)  # per-sample draws: ~4.5 sigma
    assert result.info["targets"] == flip_targets(10, count)
    again = apply(model, make_ctx(clean, 10, seed=1), "0.4").labels
    assert not np.array_equal(again, result.labels)  # the noise seed moves the draws only
    assert np.all(transition_counts(clean, again, 10)[matrix == 0] == 0)


def test_mwnet_flip2_needs_three_classes():
    with pytest.raises(UsageError, match="Accepted: ≥ 3 classes"):
        apply("flip2", make_ctx(balanced(2, 10), 2, dataset=None), "0.4")


@pytest.mark.parametrize("model", [m for m in LABEL_MODELS if m != "random_labels"])
@pytest.mark.parametrize("rate", ["-0.1", "1.5", "abc"])
def test_rates_outside_unit_interval_are_usage_errors(model, rate):
    with pytest.raises(UsageError, match="rate must be a number in"):
        apply(model, ctx_for(model), rate)


@pytest.mark.parametrize("model", INPUT_MODELS + ["instance"])
def test_input_models_need_images(model):
    ctx = ctx_for(model)
    ctx.train_x = torch.empty((len(ctx.clean), 0, 0, 0), dtype=torch.uint8)
    with pytest.raises(UsageError, match="in memory"):
        apply(model, ctx, "0.4")


@pytest.mark.parametrize("model", LABEL_MODELS + INPUT_MODELS)
def test_transition_matrix_rows_sum_to_class_counts(model):
    ctx = ctx_for(model)
    clean = ctx.clean.copy()
    arg = None if model in INPUT_MODELS else "0.4"
    result = apply(model, ctx, arg)
    assert np.array_equal(ctx.clean, clean)  # clean labels never modified in place
    report = noise_report(parse_noise(f"{model}:0.4"), clean, result, 100, "")
    matrix = np.array(report["transition_matrix"])
    assert np.array_equal(matrix.sum(1), np.bincount(clean, minlength=100))
    assert matrix.sum() == report["num_samples"] == len(clean)


SUBPROCESS = """
import sys, numpy as np
sys.path.insert(0, {tests!r})
from test_noise import ctx_for, apply, LABEL_MODELS
from nlbench.training.noise import labels_sha256
for m in LABEL_MODELS:
    print(m, labels_sha256(apply(m, ctx_for(m, seed=7), "0.4").labels))
"""


def test_same_seed_same_labels_across_processes():
    code = SUBPROCESS.format(tests=str(Path(__file__).parent))
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"NLBENCH_DISABLE_PLUGIN_AUTOLOAD": "1", "OMP_NUM_THREADS": "1", "PATH": ""},
    ).stdout
    theirs = dict(line.split() for line in out.splitlines())
    ours = {m: labels_sha256(apply(m, ctx_for(m, seed=7), "0.4").labels) for m in LABEL_MODELS}
    assert theirs == ours
    other = {m: labels_sha256(apply(m, ctx_for(m, seed=8), "0.4").labels) for m in LABEL_MODELS}
    assert all(other[m] != ours[m] for m in LABEL_MODELS)


# -- CIFAR-N ---------------------------------------------------------------------------------
def write_cifar_n(root: Path, n: int = 300, seed: int = 0) -> dict[str, np.ndarray]:
    rng = numpy_rng("fake-cifar-n", seed)
    clean = rng.integers(0, 10, n)
    table = {
        "clean_label": clean,
        "worse_label": (clean + (rng.random(n) < 0.4)) % 10,
        "aggre_label": clean.copy(),
        "random_label1": clean.copy(),
        "random_label2": clean.copy(),
        "random_label3": clean.copy(),
    }
    (root / "cifar-n").mkdir(parents=True, exist_ok=True)
    torch.save(table, root / "cifar-n" / "CIFAR-10_human.pt")
    return table


def test_cifar_n_indexes_official_order_by_sample_ids(tmp_path):
    table = write_cifar_n(tmp_path)
    ids = np.array([5, 17, 99, 200, 3])
    ctx = make_ctx(table["clean_label"][ids], 10, "cifar10", sample_ids=ids, root=tmp_path)
    res = apply("cifar_n", ctx, "worse")
    assert np.array_equal(res.labels, table["worse_label"][ids])


def test_cifar_n_refusals(tmp_path, monkeypatch):
    table = write_cifar_n(tmp_path)
    clean = table["clean_label"]
    with pytest.raises(UsageError, match="official.*Accepted for: cifar10, cifar100"):
        apply("cifar_n", make_ctx(clean, 10, "digits", root=tmp_path), "worse")
    with pytest.raises(UsageError, match="cifar_n:aggre"):
        apply("cifar_n", make_ctx(clean, 10, "cifar10", root=tmp_path), "noisy")
    shuffled = make_ctx(clean[::-1].copy(), 10, "cifar10", root=tmp_path)
    with pytest.raises(UsageError, match="not in official order"):
        apply("cifar_n", shuffled, "worse")
    monkeypatch.setenv("NLBENCH_OFFLINE", "1")
    with pytest.raises(DataMissingError, match=r"CIFAR-100_human\.pt.*raw\.githubusercontent"):
        apply("cifar_n", make_ctx(balanced(100, 1), 100, "cifar100", root=tmp_path), "noisy")


def test_cifar_n_rejects_arbitrary_pickles(tmp_path):
    (tmp_path / "cifar-n").mkdir()
    torch.save({"worse_label": Path("x")}, tmp_path / "cifar-n" / "CIFAR-10_human.pt")
    with pytest.raises(UsageError, match="not a readable CIFAR-N label file"):
        apply("cifar_n", make_ctx(balanced(10, 1), 10, "cifar10", root=tmp_path), "worse")


# -- file:PATH -------------------------------------------------------------------------------
def test_file_npy_and_csv(tmp_path):
    labels = np.array([3, 1, 4, 1, 5, 9, 2, 6], dtype=np.int64)
    np.save(tmp_path / "l.npy", labels)
    rows = ["index,label"] + [f"{i},{y}" for i, y in reversed(list(enumerate(labels)))]
    (tmp_path / "l.csv").write_text("\n".join(rows) + "\n")
    clean = np.zeros(8, dtype=np.int64)
    for name in ("l.npy", "l.csv"):
        res = apply("file", make_ctx(clean, 10, None), str(tmp_path / name))
        assert np.array_equal(res.labels, labels)
    ids = np.array([7, 0, 2])  # a file covering the full train set, picked by sample ids
    res = apply("file", make_ctx(clean[:3], 10, None, sample_ids=ids), str(tmp_path / "l.npy"))
    assert np.array_equal(res.labels, labels[ids])


@pytest.mark.parametrize(
    "content, match",
    [
        (np.array([0, 1, 2]), "3 labels for a train set of 5"),
        (np.array([0, 1, 2, 3, 10]), r"labels must lie in 0\.\.9"),
        (np.array([0.5, 1, 2, 3, 4]), "must be integers"),
        ("0,1\n0,2\n", "exactly once"),
        ("0,a\n", "expected index,label"),
    ],
)
def test_file_validation(tmp_path, content, match):
    if isinstance(content, str):
        path = tmp_path / "bad.csv"
        path.write_text(content)
    else:
        path = tmp_path / "bad.npy"
        np.save(path, content)
    with pytest.raises(UsageError, match=match):
        apply("file", make_ctx(np.zeros(5, dtype=np.int64), 10, None), str(path))
    with pytest.raises(UsageError, match="no such file"):
        apply("file", make_ctx(np.zeros(5, dtype=np.int64), 10, None), str(tmp_path / "x.npy"))


# -- nlbench noise ---------------------------------------------------------------------------
def test_cli_noise_json():
    from click.testing import CliRunner

    from nlbench.cli import cli

    result = CliRunner().invoke(
        cli, ["noise", "--dataset", "digits", "--noise", "sym:0.4", "--noise-seed", "3", "--json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    for key in (
        "type",
        "arg",
        "num_samples",
        "realized_rate",
        "transition_matrix",
        "labels_sha256",
    ):
        assert key in report
    assert report["type"] == "sym" and report["arg"] == "0.4" and report["num_samples"] == 1297
    assert report["realized_rate"] == round(0.4 * 1297) / 1297
    assert np.array(report["transition_matrix"]).sum() == 1297
    again = CliRunner().invoke(
        cli, ["noise", "-d", "digits", "-n", "0.4", "--noise-seed", "3", "--json"]
    )
    assert json.loads(again.output)["labels_sha256"] == report["labels_sha256"]


def test_cli_noise_table_and_usage_error(capsys):
    from helpers import assert_usage_error, run_cli

    result = run_cli(capsys, "noise", "--dataset", "digits", "--noise", "pairflip:0.2")
    assert result.code == 0 and "realized rate" in result.out and "0.2" in result.out
    assert_usage_error(
        run_cli(capsys, "noise", "-d", "digits", "-n", "asym:0.4"), "no asymmetric map"
    )
