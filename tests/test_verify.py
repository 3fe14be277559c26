"""``nlbench verify``: the harness and the CLI, with fake "official" repositories made here.

No official code is needed: a toy adapter (written to ``tmp_path``, registered for the test)
drives nlbench's ``erm`` step and a fake official ``train.py`` whose script body must never run,
through the same loader, shims and report as the real adapters. One fake agrees with nlbench's
SGD step, one forgets ``zero_grad`` (its second step disagrees); the usage errors are checked on
the real adapters' file expectations.
"""

from __future__ import annotations

import json
import sys
import textwrap

import pytest
from helpers import assert_usage_error, run_cli

AGREEING = """
import torch
import torch.nn.functional as F
from utils import lr_of  # a local module with a common name: never leaks out

raise SystemExit("the script body must never run")


def train(loader, model, optimizer):
    for x, y in loader:
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        for group in optimizer.param_groups:
            group["lr"] = lr_of(args)
        optimizer.step()
"""
DISAGREEING = AGREEING.replace("        optimizer.zero_grad()\n", "")

ADAPTER = """
import argparse
import torch
import torch.nn.functional as F

from nlbench.verify import official
from nlbench.verify.ours import build_method
from nlbench.verify.report import Check, compare, compare_tensors
from nlbench.verify.shims import Loader, Recorder

REPO, FILES = "example/toy", ("train.py", "utils.py")
COMPARED = "{steps} SGD step(s), batch {bs}, {dtype}"


def verify(root, steps, bs, seed):
    g = torch.Generator().manual_seed(seed)
    batches = [(torch.randn(bs, 6, generator=g), torch.randint(0, 3, (bs,), generator=g))
               for _ in range(steps)]
    torch.manual_seed(seed)
    theirs = torch.nn.Linear(6, 3)
    ours = torch.nn.Linear(6, 3)
    ours.load_state_dict(theirs.state_dict())
    hp = {"lr": 0.1, "momentum": 0.0, "weight_decay": 0.0, "batch_size": bs}
    method, _ = build_method("erm", hp, [ours], 3)
    from nlbench.training.data import Batch
    mine = [method.train_step(Batch(x, y, torch.arange(bs)))["loss"] for x, y in batches]
    ce = Recorder(F.cross_entropy)
    glob = {"args": argparse.Namespace(lr=0.1), "F": official.Proxy(F, cross_entropy=ce)}
    ns = official.load_script(root, "train.py", ["train"], glob, REPO)
    ns["train"](Loader(batches, bs), theirs, torch.optim.SGD(theirs.parameters(), lr=0.1))
    return [Check("toy step", [
        compare("loss", torch.stack([c.detach() for c in ce.calls]), torch.stack(mine)),
        compare_tensors("weights", theirs.parameters(), ours.parameters()),
    ])]
"""


@pytest.fixture
def toy(tmp_path, monkeypatch):
    """A toy adapter registered as method ``toy``; returns a function making fake checkouts."""
    from nlbench import verify

    (tmp_path / "toy_verify_adapter.py").write_text(ADAPTER)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(verify.ADAPTERS, "toy", "toy_verify_adapter")

    def checkout(name: str, script: str):
        root = tmp_path / name
        root.mkdir()
        (root / "train.py").write_text(script)
        (root / "utils.py").write_text("def lr_of(args):\n    return args.lr\n")
        return root

    yield checkout
    sys.modules.pop("toy_verify_adapter", None)


def test_agreeing_copy_exits_0_and_leaves_no_module_behind(toy, capsys):
    root = toy("agrees", AGREEING)
    before = set(sys.modules)
    res = run_cli(capsys, "verify", "toy", "--official", str(root), "--steps", "3")
    assert res.code == 0, res.err + res.out
    assert "example/toy @ unknown" in res.out  # no git repository: the commit is unknown
    assert "agree within 1e-06" in res.out
    assert "utils" not in set(sys.modules) - before  # the checkout's utils.py stayed scoped
    assert str(root) not in sys.path


def test_json_reports_every_quantity(toy, capsys):
    root = toy("agrees", AGREEING)
    res = run_cli(capsys, "verify", "toy", "--official", str(root), "--steps", "2", "--json")
    assert res.code == 0, res.err
    report = json.loads(res.out)
    assert report["ok"] is True and report["commit"] == "unknown"
    assert report["compared"] == "2 SGD step(s), batch 4, float64"
    (check,) = report["checks"]
    sizes = {q["name"]: q["size"] for q in check["quantities"]}
    assert sizes == {"loss": 2, "weights": 6 * 3 + 3}
    assert all(q["diff"] < 1e-6 for q in check["quantities"])


def test_disagreeing_copy_exits_1_naming_each_quantity(toy, capsys):
    root = toy("disagrees", DISAGREEING)  # gradients accumulate from the second step on
    res = run_cli(capsys, "verify", "toy", "--official", str(root), "--steps", "3", "--json")
    assert res.code == 1
    report = json.loads(res.out)
    assert report["ok"] is False
    diffs = {q["name"]: q["diff"] for q in report["checks"][0]["quantities"]}
    assert diffs["weights"] > 1e-3 and diffs["loss"] > 1e-6  # the third step's loss too
    res = run_cli(capsys, "verify", "toy", "--official", str(root), "--steps", "2")
    assert res.code == 1
    assert "DIFFERS" in res.out and "toy step: weights" in res.out


def test_one_step_cannot_tell_the_missing_zero_grad(toy, capsys):
    """The first step's gradient is the same with or without zero_grad: the comparison is of
    what the code computes, not of its text."""
    root = toy("disagrees", DISAGREEING)
    assert run_cli(capsys, "verify", "toy", "--official", str(root)).code == 0


def test_commit_is_read_from_git(toy, tmp_path, capsys):
    import subprocess

    root = toy("repo", AGREEING)
    git = ["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "fake official"], check=True)
    head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True)
    res = run_cli(capsys, "verify", "toy", "--official", str(root), "--json")
    assert json.loads(res.out)["commit"] == head.stdout.strip()
    (root / "train.py").write_text(AGREEING + "\n# edited\n")
    res = run_cli(capsys, "verify", "toy", "--official", str(root), "--json")
    assert json.loads(res.out)["commit"] == head.stdout.strip() + "+modified"


def test_official_code_that_breaks_is_one_line(toy, capsys):
    root = toy("broken", AGREEING.replace("lr_of(args)", "lr_of(argz)"))
    res = run_cli(capsys, "verify", "toy", "--official", str(root), "--steps", "2")
    assert res.code == 1
    lines = [ln for ln in res.err.splitlines() if ln.strip()]
    assert len(lines) == 1 and "NameError" in lines[0] and "Traceback" not in res.err


def test_script_without_the_expected_function_is_a_usage_error(toy, capsys):
    root = toy("other", "def not_train():\n    pass\n")
    res = run_cli(capsys, "verify", "toy", "--official", str(root))
    assert_usage_error(res, "train.py defines no train", "example/toy")


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["verify", "nosuch", "--official", "."], ["unknown method to verify 'nosuch'", "mwnet"]),
        (["verify", "l2r"], ["l2r: not verifiable without TensorFlow"]),
        (["verify", "fl_only", "--official", "."], ["no official step to compare"]),
        (["verify", "erm"], ["erm: no official code"]),
        (["verify", "famus"], ["--official PATH is required", "youjiangxu/FaMUS"]),
        (["verify", "mwnet"], ["--official PATH is required", "xjtushujun/meta-weight-net"]),
    ],
)
def test_usage_errors(capsys, args, fragments):
    assert_usage_error(run_cli(capsys, *args), *fragments)


def test_path_missing_or_not_the_repository(tmp_path, capsys):
    missing = tmp_path / "nowhere"
    res = run_cli(capsys, "verify", "dividemix", "--official", str(missing))
    assert_usage_error(res, "no such directory", "LiJunnan1992/DivideMix")
    (tmp_path / "Train_cifar.py").write_text("")
    res = run_cli(capsys, "verify", "dividemix", "--official", str(tmp_path))
    assert_usage_error(res, "not a checkout of LiJunnan1992/DivideMix", "PreResNet.py")
    res = run_cli(capsys, "verify", "mwnet", "--official", str(tmp_path))
    assert_usage_error(res, "xjtushujun/meta-weight-net", "expected the file MW-Net.py")
    res = run_cli(capsys, "verify", "famus", "--official", str(tmp_path))
    assert_usage_error(res, "youjiangxu/FaMUS", "FaMUS/train_famus_redminiimage.py")


@pytest.mark.parametrize("bad", [["--steps", "0"], ["--batch-size", "1"], ["--tol", "-1"]])
def test_bad_options(toy, capsys, bad):
    root = toy("agrees", AGREEING)
    assert_usage_error(run_cli(capsys, "verify", "toy", "--official", str(root), *bad), "accepted")


def test_load_script_runs_only_the_definitions(tmp_path):
    """The imports a definition uses run; the body, and imports nobody uses, do not."""
    from nlbench.verify import official

    (tmp_path / "script.py").write_text(
        textwrap.dedent(
            """
            import json
            import module_that_does_not_exist
            from os import path as dataloader

            raise SystemExit("body")


            def dumps(x, dataloader=None):
                return json.dumps(x) + SUFFIX
            """
        )
    )
    ns = official.load_script(tmp_path, "script.py", ["dumps"], {"SUFFIX": "!"}, "x/y")
    assert ns["dumps"]([1]) == "[1]!"
    assert "dataloader" not in ns  # a parameter of that name is not a use of the import


def test_every_built_in_method_has_an_answer_and_a_docs_line():
    """``nlbench verify`` answers for every built-in method, and the docs table lists each."""
    from pathlib import Path

    from nlbench import verify
    from nlbench.host.plugins import get_host

    built_in = set(get_host().registry("methods").names())  # the test env has no others
    assert {"erm", "fl_only", "dividemix", "mwnet", "l2r", "famus"} <= built_in
    answered = set(verify.ADAPTERS) | set(verify.NOT_VERIFIABLE)
    assert built_in <= answered, built_in - answered
    docs = (Path(__file__).resolve().parents[1] / "docs" / "verification.md").read_text()
    assert all(f"`{name}`" in docs for name in built_in), [
        n for n in built_in if f"`{n}`" not in docs
    ]


def test_dividemix_replays_the_draws_mixmatch_takes():
    """The adapter hands the official code the Beta draw and permutation nlbench's MixMatch
    takes next from its generator; a change in how MixMatch draws must show here first."""
    import torch

    from nlbench.algorithms.mixmatch import mixmatch
    from nlbench.verify.dividemix import HP, _draws

    gen = torch.Generator().manual_seed(3)
    lam, perm = _draws(gen, 8)
    x = torch.arange(8.0).reshape(8, 1)
    mixed, _, got = mixmatch(x, torch.eye(8), HP["alpha"], gen)
    folded = max(lam, 1 - lam)
    assert float(got) == pytest.approx(folded, abs=1e-7)
    assert torch.allclose(mixed, folded * x + (1 - folded) * x[perm])


def test_famus_replays_the_gumbel_noise_of_the_samplers():
    """The noise the FaMUS adapter reads from a copy of the generator decides the samplers'
    gates as nlbench's own draw does."""
    import torch

    from nlbench.verify.famus import _gumbel
    from nlbench_plugins.meta.sampler import hard_gumbel

    logits = torch.randn(13, 2, generator=torch.Generator().manual_seed(1))
    gen = torch.Generator().manual_seed(5)
    noise = _gumbel(gen, 13)
    gates = hard_gumbel(logits, 5.0, gen)
    expected = torch.softmax((logits + noise) / 5.0, dim=-1)
    assert torch.equal(gates.argmax(-1), expected.argmax(-1))
    assert torch.allclose(gates, torch.nn.functional.one_hot(expected.argmax(-1), 2).float())


def test_the_wheel_carries_the_adapters():
    """``[tool.setuptools] packages`` is an explicit list: ``nlbench.verify`` must be on it."""
    from pathlib import Path

    import tomllib

    pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
    packages = tomllib.loads(pyproject.read_text())["tool"]["setuptools"]["packages"]
    assert "nlbench.verify" in packages
