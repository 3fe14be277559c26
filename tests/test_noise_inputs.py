"""Input corruptions (Zhang et al. 2017) on held-out images, and their place in the run identity."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nlbench.core.config import RunConfig, parse_noise
from nlbench.core.identity import record_run_id, same_run
from nlbench.core.seeding import numpy_rng
from nlbench.engine.prepare import load_dataset, prepare, run_identity
from nlbench.host.plugins import get_host
from nlbench.training.noise import NoiseContext, corrupt_held_out, noise_rng

INPUT_MODELS = ["shuffled_pixels", "random_pixels", "gaussian"]


def pattern(n: int, channels: int = 3, h: int = 4, offset: int = 0) -> torch.Tensor:
    """Images whose pixels are their positions (+ offset, + 60 per channel): a permutation
    of positions can be read off any of them."""
    pos = torch.arange(h * h, dtype=torch.uint8).reshape(1, 1, h, h) + offset
    chans = torch.arange(channels, dtype=torch.uint8).reshape(1, channels, 1, 1) * 60
    return (pos + chans).repeat(n, 1, 1, 1)


def corrupt(model: str, x: torch.Tensor, arg: str | None = None, seed: int = 0):
    ctx = NoiseContext(
        clean=np.zeros(x.shape[0], dtype=np.int64),
        num_classes=10,
        rng=numpy_rng("test-inputs", seed),
        dataset="digits",
        dataset_spec=None,
        train_x=x,
    )
    return get_host().get("noise", model).apply(ctx, arg)


def positions(img: torch.Tensor, offset: int = 0) -> list[int]:
    """The source position of each pixel of a :func:`pattern` image's first channel."""
    return (img[0].flatten().long() - offset).tolist()


def test_shuffled_pixels_permutes_test_images_as_the_training_images():
    res = corrupt("shuffled_pixels", pattern(5))
    perm = positions(res.train_x[0])
    assert perm != sorted(perm)
    test, count = res.held_out(pattern(7, offset=100))
    assert count == 7
    for img in test:  # one permutation for train and test, channels moving together
        assert positions(img, offset=100) == perm
        assert torch.equal(img[1] - 60, img[0]) and torch.equal(img[2] - 120, img[0])
    val, _ = res.held_out(pattern(2, offset=50))
    assert all(positions(img, offset=50) == perm for img in val)


def test_random_pixels_permute_each_test_image_on_its_own():
    res = corrupt("random_pixels", pattern(5))
    test, count = res.held_out(pattern(8))
    perms = {tuple(positions(img)) for img in test}
    assert count == 8 and len(perms) > 1
    assert all(sorted(p) == list(range(16)) for p in perms)  # each a permutation of its pixels


def test_gaussian_test_images_take_the_training_mean_and_std():
    gen = torch.Generator().manual_seed(0)
    train = torch.randint(40, 90, (300, 3, 8, 8), dtype=torch.uint8, generator=gen)
    res = corrupt("gaussian", train)
    test = torch.full((300, 3, 8, 8), 250, dtype=torch.uint8)  # far from the train statistics
    out, count = res.held_out(test)
    assert count == 300
    t, o = train.double(), out.double()
    assert torch.allclose(o.mean((0, 2, 3)), t.mean((0, 2, 3)), atol=0.5)
    assert torch.allclose(o.std((0, 2, 3)), t.std((0, 2, 3)), rtol=0.05)


@pytest.mark.parametrize("model", INPUT_MODELS)
def test_a_fraction_corrupts_the_same_share_of_each_split(model):
    res = corrupt(model, pattern(40), "0.25")
    assert res.info["corrupted_images"] == 10
    test = pattern(20, offset=100)
    out, count = res.held_out(test)
    assert count == 5
    assert int((out != test).flatten(1).any(1).sum()) <= 5  # the rest left as they were


@pytest.mark.parametrize("model", INPUT_MODELS)
def test_training_images_unchanged_by_the_held_out_treatment(model):
    """Version 2 draws the training images first, exactly as version 1 did."""
    x = pattern(6)
    first = corrupt(model, x).train_x
    res = corrupt(model, x)
    res.held_out(pattern(3))
    assert torch.equal(res.train_x, first)


def test_label_noise_leaves_held_out_sets_alone():
    ctx = NoiseContext(np.zeros(4, dtype=np.int64), 10, numpy_rng("t"), "digits", None)
    res = get_host().get("noise", "sym").apply(ctx, "0.5")
    assert res.held_out is None
    split = type("Split", (), {"x": pattern(2), "__len__": lambda self: 2})()
    corrupt_held_out(res, {"test": split})
    assert torch.equal(split.x, pattern(2)) and "held_out_corrupted" not in res.info


def test_a_run_tests_on_images_permuted_as_its_training_images():
    """prepare(): the test split gets the training images' permutation (digits, one draw)."""
    cfg = RunConfig(noise="shuffled_pixels", epochs=1)
    host = get_host()
    raw = load_dataset(host.get("datasets", "digits"), cfg)
    prep = prepare(cfg, host)
    h, w = raw.train.x.shape[2:]
    rng = noise_rng("digits", parse_noise("shuffled_pixels"), 0, len(raw.train))
    perm = torch.as_tensor(rng.permutation(h * w))
    for before, after in ((raw.train.x, prep.data.train.x), (raw.test.x, prep.data.test.x)):
        assert torch.equal(after, before.flatten(2)[:, :, perm].reshape(before.shape))
    assert prep.noise["info"]["held_out_corrupted"] == {"test": len(raw.test)}


# -- run identity ------------------------------------------------------------------------------
@pytest.mark.parametrize("model", INPUT_MODELS)
def test_changed_input_corruptions_get_new_run_ids(model):
    """A record of version 1 (trained on corrupted images, tested on natural ones) is never
    the run a version-2 config names."""
    host = get_host()
    ident = run_identity(RunConfig(noise=model), host)
    assert ident.key["noise_version"] == 2 and ident.identity["noise_version"] == 2
    mspec = host.get("methods", "erm")
    old = {k: v for k, v in ident.identity.items() if k != "noise_version"}
    assert record_run_id(old, mspec) != ident.run_id
    assert not same_run(old, ident.key, mspec)
    assert same_run(ident.identity, ident.key, mspec)
    assert record_run_id(ident.identity, mspec) == ident.run_id


@pytest.mark.parametrize("noise", ["sym:0.4", "random_labels:0.2", "none", "asym:0.4"])
def test_other_noise_models_keep_their_keys(noise):
    """Their run_ids are pinned in test_run_identity.py; here: no version enters the key."""
    ident = run_identity(RunConfig(noise=noise), get_host())
    assert "noise_version" not in ident.key and "noise_version" not in ident.identity


def test_rerun_of_a_version_one_record_says_why_its_run_id_moved():
    from nlbench.commands.rerun import _id_line

    ident = run_identity(RunConfig(noise="shuffled_pixels"), get_host())
    new = {"run_id": ident.run_id, "config": ident.identity}
    old_config = {k: v for k, v in ident.identity.items() if k != "noise_version"}
    old = {"run_id": "erm-digits-000000000000", "config": old_config}
    assert "changed meaning: version 1 → 2" in _id_line(old, new)
