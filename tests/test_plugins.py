"""The plugin host: provenance, duplicate names, broken plugins, autoload switches."""

from __future__ import annotations

from typing import Any

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib
import types
from pathlib import Path

import pytest
from helpers import unbuilt

from nlbench import hookimpl
from nlbench.core.errors import PluginError, UsageError
from nlbench.core.registry import Registry
from nlbench.core.specs import MethodSpec
from nlbench.host import plugins

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def fresh_host():
    plugins.reset()
    yield
    plugins.reset()


def _method_plugin(name: str, method_name: str = "erm") -> types.SimpleNamespace:
    @hookimpl
    def register_methods(register):
        register(MethodSpec(method_name, "test method", factory=unbuilt))

    return types.SimpleNamespace(register_methods=register_methods, __name__=name)


def test_registry_duplicate_names_both_plugins():
    reg = Registry("methods")
    reg.add(MethodSpec("a", "first", unbuilt), "plugin_one")
    with pytest.raises(PluginError, match="plugin_one.*plugin_two"):
        reg.add(MethodSpec("a", "second", unbuilt), "plugin_two")


@pytest.mark.parametrize("bad", ["Erm", "1x", "a-b", "", "a b"])
def test_registry_rejects_bad_names(bad):
    with pytest.raises(PluginError, match="must match"):
        Registry("methods").add(MethodSpec(bad, "x", unbuilt), "p")


def test_unknown_name_suggests_closest():
    reg = Registry("methods")
    reg.add(MethodSpec("dividemix", "x", unbuilt), "p")
    with pytest.raises(UsageError, match="Did you mean 'dividemix'"):
        reg.get("dividemx")


def test_duplicate_across_plugins_breaks_only_the_newcomer(fresh_host):
    """A third party registering ``erm`` is listed as broken, naming both; it registers none of
    its names, and the built-in keeps working (#32)."""

    @hookimpl
    def register_methods(register):
        register(MethodSpec("other_fine", "x", factory=unbuilt))
        register(MethodSpec("erm", "x", factory=unbuilt))

    other = types.SimpleNamespace(register_methods=register_methods)
    host = plugins.load_plugins(extra=[("other", other)])
    (entry,) = [b for b in host.broken if b["plugin"] == "other"]
    assert "method_erm" in entry["error"] and "other" in entry["error"]
    assert host.registry("methods").entry("erm").plugin == "method_erm"
    assert "other_fine" not in host.registry("methods")


def test_broken_plugin_reported_and_others_load(fresh_host):
    @hookimpl
    def register_methods(register):
        raise RuntimeError("boom")

    broken = types.SimpleNamespace(register_methods=register_methods)
    host = plugins.load_plugins(extra=[("broken_one", broken)])
    assert {"plugin": "broken_one", "error": "RuntimeError: boom"} in host.broken
    assert "erm" in host.registry("methods")


def test_provenance_of_builtins(fresh_host):
    host = plugins.load_plugins()
    entry = host.registry("methods").entry("erm")
    assert entry.plugin == "method_erm" and entry.distribution == "nlbench"


def test_misspelt_hook_breaks_only_that_plugin(fresh_host):
    @hookimpl
    def register_methodz(register):  # not a hook
        pass

    host = plugins.load_plugins(
        extra=[("typo", types.SimpleNamespace(register_methodz=register_methodz))]
    )
    (entry,) = [b for b in host.broken if b["plugin"] == "typo"]
    assert "register_methodz" in entry["error"] and "erm" in host.registry("methods")


def test_entry_points_list_every_builtin_module():
    """Built-ins register through the same entry-point group a third party uses."""
    eps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"]["nlbench"]
    assert sorted(eps.values()) == plugins.builtin_modules()
    assert all(name == value.rsplit(".", 1)[1] for name, value in eps.items())


def test_autoload_uses_installed_entry_points(fresh_host, monkeypatch):
    monkeypatch.delenv("NLBENCH_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    monkeypatch.setenv("NLBENCH_LOAD_PLUGINS", "method_erm,datasets_digits")
    host = plugins.load_plugins()
    assert host.registry("methods").names() == ["erm"]
    assert host.registry("datasets").names() == ["digits"]
    assert host.registry("models").names() == []


def test_specname_hookimpl_is_registered(fresh_host):
    """Loading goes through pluggy: ``@hookimpl(specname=...)`` counts."""

    @hookimpl(specname="register_methods")
    def add_my_methods(register):
        register(MethodSpec("via_specname", "x", factory=unbuilt))

    plugin = types.SimpleNamespace(add_my_methods=add_my_methods)
    host = plugins.load_plugins(extra=[("spec_named", plugin)])
    assert host.registry("methods").entry("via_specname").plugin == "spec_named"


def test_unmarked_function_is_not_a_hook(fresh_host):
    def register_methods(register):  # no @hookimpl: pluggy ignores it
        register(MethodSpec("unmarked", "x", factory=unbuilt))

    plugin = types.SimpleNamespace(register_methods=register_methods)
    host = plugins.load_plugins(extra=[("unmarked_plugin", plugin)])
    assert "unmarked" not in host.registry("methods")


def test_failed_registration_registers_none_of_its_names(fresh_host):
    @hookimpl
    def register_losses(register):
        register(types.SimpleNamespace(name="half_loss", description="x"))

    @hookimpl
    def register_methods(register):
        raise ValueError("second hook fails")

    plugin = types.SimpleNamespace(
        register_losses=register_losses, register_methods=register_methods
    )
    host = plugins.load_plugins(extra=[("half", plugin)])
    assert "half_loss" not in host.registry("losses")
    assert host.broken[-1]["plugin"] == "half"


def test_import_failure_is_named_where_names_are_asked(fresh_host, monkeypatch, tmp_path):
    """A plugin that fails to import is named, with its exception, in 'unknown method' errors
    and in ``nlbench list``."""
    (tmp_path / "nlb_broken_pkg.py").write_text("raise ImportError('needs libfoo')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    real = plugins._candidates
    extra = ("broken_pkg", "nlb_broken_pkg", ("x", "1"))
    monkeypatch.setattr(plugins, "_candidates", lambda: [*real(), extra])
    host = plugins.load_plugins()
    message = r"plugin 'broken_pkg' failed to load \(ImportError: needs libfoo\)"
    with pytest.raises(UsageError, match=message):
        host.get("methods", "no_such_method")
    from nlbench.commands.list import listing

    broken = listing(["losses"])["broken"]
    assert {"plugin": "broken_pkg", "error": "ImportError: needs libfoo"} in broken


def test_composed_method_uses_the_injected_host(fresh_host, tmp_path):
    """A Runner given a host resolves a composed method's reweighter (and its declared hparam)
    in that host, not in the global one."""
    import torch

    from nlbench.core.config import RunConfig
    from nlbench.core.specs import ReweighterSpec
    from nlbench.engine.runner import Runner
    from nlbench.training.components import ComposedMethod, composed_hparams

    class Uniform:
        def __init__(self, hp):
            self.level = float(hp["zz_level"])

        def weigh(self, vectors, labels):
            return torch.full((len(labels),), self.level)

    @hookimpl
    def register_reweighters(register):
        register(ReweighterSpec("zz_uniform", "test", Uniform, hparams={"zz_level": 2.0}))

    @hookimpl
    def register_methods(register):
        hp = composed_hparams(reweighter="zz_uniform", schedule="fast", warmup_epochs=0)
        register(MethodSpec("zz_composed", "test", ComposedMethod, default_hparams=hp))

    plugin = types.SimpleNamespace(
        register_reweighters=register_reweighters, register_methods=register_methods
    )
    host = plugins.load_plugins(extra=[("zz_injected", plugin)])
    plugins.reset()  # the global host no longer knows zz_uniform
    tiny: dict[str, Any] = {"epochs": 1, "train_subset": 200, "out": str(tmp_path), "device": "cpu"}
    cfg = RunConfig(method="zz_composed", noise="0.4", overrides={"zz_level": 3.0}, **tiny)
    record = Runner(cfg, host=host).run()
    assert record["config"]["hparams"]["zz_level"] == 3.0
    assert record["epochs"][0]["weight_max"] == 3.0


def test_selector_and_reweighter_specs_are_one_definition():
    from nlbench import api
    from nlbench.core import specs

    assert specs.SelectorSpec is specs.ReweighterSpec is specs.ComponentSpec
    assert api.SelectorSpec is api.ReweighterSpec is api.ComponentSpec


def test_the_name_pattern_is_defined_once():
    """Registry keys, --set keys and noise types share nlbench.core.registry.NAME_RE."""
    from nlbench.core.config import parse_noise, parse_set
    from nlbench.core.registry import NAME_RE

    root = Path(__file__).resolve().parents[1]
    literal = r"^[a-z][a-z0-9_]*\Z"
    homes = [
        p.relative_to(root).as_posix()
        for p in sorted((root / "nlbench").rglob("*.py"))
        if literal in p.read_text(encoding="utf-8")
    ]
    assert homes == ["nlbench/core/registry.py"] and NAME_RE.pattern == literal
    assert not NAME_RE.match("digits\n") and NAME_RE.match("digits")  # \Z, not $
    with pytest.raises(UsageError, match="lower_snake_case"):
        parse_set(["Bad=1"])
    with pytest.raises(UsageError, match=r"\[TYPE:\]ARG"):
        parse_noise("Sym:0.2")
    assert parse_set(["ok_2=1"]) == {"ok_2": 1}


def _dataset_plugin(asym_map: str | None) -> types.SimpleNamespace:
    from nlbench.core.specs import DatasetSpec

    @hookimpl
    def register_datasets(register):
        register(
            DatasetSpec(
                "my_birds",
                "test",
                load=object,
                num_classes=4,
                in_chans=3,
                image_size=8,
                asym_map=asym_map,
            )
        )

    return types.SimpleNamespace(register_datasets=register_datasets)


def _noise_plugin(keys: tuple[str, ...]) -> types.SimpleNamespace:
    from nlbench.core.specs import NoiseModelSpec

    @hookimpl
    def register_noise_models(register):
        register(NoiseModelSpec("my_asym", "test", apply=object, asym_maps=keys))

    return types.SimpleNamespace(register_noise_models=register_noise_models)


def test_dataset_asym_map_unknown_to_every_noise_model_fails_registration(fresh_host):
    """A third-party dataset naming a class-pair map no noise model has: one line naming the
    plugin, the dataset, the bad key and the accepted keys."""
    host = plugins.load_plugins(extra=[("birds", _dataset_plugin("cifar_10"))])
    (entry,) = [b for b in host.broken if b["plugin"] == "birds"]
    assert "my_birds" not in host.registry("datasets") and "digits" in host.registry("datasets")
    message = entry["error"].removeprefix("PluginError: ")
    assert "\n" not in message
    for part in ("plugin 'birds'", "dataset 'my_birds'", "'cifar_10'", "cifar10, cifar100"):
        assert part in message, message
    assert message.endswith("Accepted: cifar10, cifar100, fashionmnist.")


def test_dataset_asym_map_known_to_a_third_party_noise_model(fresh_host):
    host = plugins.load_plugins(
        extra=[("birds", _dataset_plugin("birds")), ("bird_noise", _noise_plugin(("birds",)))]
    )
    assert host.get("datasets", "my_birds").asym_map == "birds"
    plugins.reset()
    host = plugins.load_plugins(extra=[("birds", _dataset_plugin(None))])
    assert host.get("datasets", "my_birds").asym_map is None


def test_builtin_asym_maps_are_the_keys_the_noise_plugin_has():
    from nlbench_plugins.noise_synthetic import ASYM_MAPS

    host = plugins.get_host()
    declared = {k for e in host.registry("noise").entries() for k in e.spec.asym_maps}
    assert declared == set(ASYM_MAPS)
    used = {e.spec.asym_map for e in host.registry("datasets").entries()} - {None}
    assert used and used <= declared


def test_asym_map_check_is_skipped_without_noise_models():
    """A host loaded without any noise plugin has no keys to check against."""
    from nlbench.core.registry import Registry, check_asym_maps
    from nlbench.core.specs import DatasetSpec

    datasets = Registry("datasets")
    datasets.add(DatasetSpec("d", "x", object, 2, 1, 8, asym_map="anything"), "p")
    check_asym_maps({"datasets": datasets, "noise": Registry("noise")})
