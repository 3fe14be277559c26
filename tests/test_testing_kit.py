"""The plugin authors' test kit (``nlbench.testing``, a pytest plugin): public API only, no torch
at load time, and shapes taken from the dataset a method is checked on."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from nlbench import testing
from nlbench.host import plugins

KIT = Path(testing.__file__)


def _imports(tree: ast.AST) -> list[tuple[str, int]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and not node.level:
            found.append((node.module or "", node.lineno))
        elif isinstance(node, ast.Import):
            found.extend((a.name, node.lineno) for a in node.names)
    return found


def test_loading_the_pytest_plugin_does_not_import_torch():
    code = "import nlbench.testing, sys; assert 'torch' not in sys.modules, 'torch imported'"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_kit_imports_only_the_public_api():
    """As a plugin would: nlbench.api (and its submodules), the standard library and pytest."""
    internal = [
        f"{name}:{line}"
        for name, line in _imports(ast.parse(KIT.read_text(encoding="utf-8")))
        if (name == "nlbench" or name.startswith("nlbench."))
        and not (name == "nlbench.api" or name.startswith("nlbench.api."))
    ]
    assert not internal, f"nlbench.testing imports internal modules: {internal}"


def test_kit_imports_torch_and_the_api_only_inside_functions():
    tree = ast.parse(KIT.read_text(encoding="utf-8"))
    top: list[ast.stmt] = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    eager = {name for name, _ in _imports(ast.Module(body=top, type_ignores=[]))}
    assert "torch" not in eager and "nlbench.api" not in eager, eager


def _tiny_rgb(request=None):
    """3×12×12 images of 4 classes: shapes unlike digits' 1×8×8 of 10."""
    import torch

    from nlbench.api import DatasetData, ImageSet

    gen = torch.Generator().manual_seed(0)
    y = torch.arange(360) % 4
    x = (torch.rand(360, 3, 12, 12, generator=gen) * 60 + y[:, None, None, None] * 60).to(
        torch.uint8
    )
    return DatasetData(
        train=ImageSet(x[:300], y[:300]),
        test=ImageSet(x[300:], y[300:]),
        num_classes=4,
        classes=["a", "b", "c", "d"],
        mean=(0.4, 0.4, 0.4),
        std=(0.25, 0.25, 0.25),
        augment="none",
    )


def _register_datasets(register) -> None:
    from nlbench.api import DatasetSpec

    quick = {"model": "tiny_cnn", "epochs": 2, "batch_size": 64, "lr": 0.05}
    register(
        DatasetSpec(
            name="tiny_rgb",
            description="test data: 3x12x12 images, 4 classes",
            load=_tiny_rgb,
            num_classes=4,
            in_chans=3,
            image_size=12,
            profiles={"quick": {**quick, "weight_decay": 5e-4, "scheduler": "multistep"}},
        )
    )


@pytest.fixture
def rgb_host():
    from nlbench.api import hookimpl

    plugin = SimpleNamespace(register_datasets=hookimpl(_register_datasets))
    plugins.reset()
    yield plugins.load_plugins(extra=[("tiny_rgb_data", plugin)])
    plugins.reset()


def test_contract_checks_the_shapes_of_the_dataset_it_runs_on(rgb_host, tmp_path):
    record = testing.check_method_contract("erm", tmp_path, dataset="tiny_rgb")
    assert record["config"]["dataset"] == "tiny_rgb"
    _, ctx = testing.build_method(testing.tiny_config("erm", tmp_path, dataset="tiny_rgb"))
    assert (ctx.num_classes, ctx.in_chans, ctx.image_size) == (4, 3, 12)


def test_contract_names_a_method_whose_predictions_have_the_wrong_shape(
    rgb_host, tmp_path, monkeypatch
):
    """A method that predicts digits' 10 classes whatever the dataset fails the check."""
    import torch

    method, ctx = testing.build_method(testing.tiny_config("erm", tmp_path, dataset="tiny_rgb"))
    monkeypatch.setattr(method, "predict", lambda x: torch.zeros(len(x), 10))
    monkeypatch.setattr(testing, "build_method", lambda cfg: (method, ctx))
    with pytest.raises(AssertionError, match=r"got \(4, 10\) for 4 classes"):
        testing.check_predict_and_state("erm", tmp_path, dataset="tiny_rgb")


def test_bad_hparams_are_checked_through_the_public_api():
    testing.check_bad_hparams("erm", {"lr": ["fast", -1.0]})
    with pytest.raises(pytest.fail.Exception, match="was accepted"):
        testing.check_bad_hparams("erm", {"lr": [0.01]})


def test_tiny_config_takes_set_as_the_run_api_does(tmp_path):
    cfg = testing.tiny_config("erm", tmp_path, set={"lr": 0.2}, dataset="tiny_rgb")
    assert (cfg.overrides, cfg.dataset, cfg.epochs, cfg.device) == (
        {"lr": 0.2},
        "tiny_rgb",
        2,
        "cpu",
    )
