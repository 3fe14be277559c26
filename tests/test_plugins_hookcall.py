"""Registration goes through pluggy's hook call: wrappers, monitoring and tracing see it, and a
plugin (or a wrapper) that raises still breaks only itself."""

from __future__ import annotations

import logging
import types

import pluggy
import pytest
from helpers import unbuilt

from nlbench import hookimpl
from nlbench.core import hookspecs
from nlbench.core.registry import KINDS, Registry
from nlbench.core.specs import MethodSpec
from nlbench.host import plugins


@pytest.fixture
def fresh_host():
    plugins.reset()
    yield
    plugins.reset()


def _plugin(**hooks: object) -> types.ModuleType:
    module = types.ModuleType("zz_plugin")  # hashable, as an installed plugin is
    vars(module).update(hooks)
    return module


def _methods(*names: str) -> types.ModuleType:
    @hookimpl
    def register_methods(register):
        for name in names:
            register(MethodSpec(name, "test method", factory=unbuilt))

    return _plugin(register_methods=register_methods)


def _raising(message: str) -> types.ModuleType:
    @hookimpl
    def register_methods(register):
        raise RuntimeError(message)

    return _plugin(register_methods=register_methods)


def _method_plugins(host: plugins.Host) -> set[str]:
    return {
        i.plugin_name
        for i in host.pm.hook.register_methods.get_hookimpls()
        if not (i.wrapper or i.hookwrapper)
    }


def test_a_wrapper_sees_every_plugins_registration_call(fresh_host):
    seen: list[str] = []

    class Spy:
        @hookimpl(wrapper=True)
        def register_methods(self, register):
            try:
                result = yield
            except RuntimeError as exc:
                seen.append(f"raised {exc}")
                raise
            seen.append("ok")
            return result

    host = plugins.load_plugins(
        extra=[("spy", Spy()), ("good", _methods("zz_good")), ("bad", _raising("boom"))]
    )
    assert seen.count("raised boom") == 1
    assert "bad" not in _method_plugins(host)  # a broken plugin is unregistered
    assert seen.count("ok") == len(_method_plugins(host)) and "good" in _method_plugins(host)
    assert "zz_good" in host.registry("methods") and "erm" in host.registry("methods")
    assert [b["plugin"] for b in host.broken] == ["bad"]


def test_hookcall_monitoring_sees_one_call_per_plugin():
    """``pm.add_hookcall_monitoring`` sees each plugin's own call; the one that raises is
    isolated and the other's names land."""
    pm = pluggy.PluginManager("nlbench")
    pm.add_hookspecs(hookspecs)
    pm.register(_methods("zz_a", "zz_b"), name="first")
    pm.register(_raising("bad hook"), name="second")
    calls: list[tuple[str, list[str], bool]] = []
    pm.add_hookcall_monitoring(
        lambda hook, impls, kwargs: None,
        lambda outcome, hook, impls, kwargs: calls.append(
            (hook, [i.plugin_name for i in impls], outcome.exception is None)
        ),
    )
    host = plugins.Host(pm=pm, registries={k: Registry(k) for k in KINDS})
    plugins._fill_registries(host)
    assert calls == [
        ("register_methods", ["first"], True),
        ("register_methods", ["second"], False),
    ]
    assert host.registry("methods").names() == ["zz_a", "zz_b"]
    assert host.broken == [{"plugin": "second", "error": "RuntimeError: bad hook"}]


def test_tracing_covers_registration(fresh_host, monkeypatch, caplog):
    monkeypatch.setenv("NLBENCH_TRACE_PLUGINS", "1")
    with caplog.at_level(logging.WARNING, logger="nlbench.host.plugins"):
        plugins.load_plugins(extra=[("traced", _methods("zz_traced"))])
    traced = [r.getMessage() for r in caplog.records if "register_methods" in r.getMessage()]
    assert traced, "no register_methods call was traced"


def test_a_raising_wrapper_breaks_only_its_own_plugin(fresh_host):
    """A buggy wrapper is blamed, unregistered, and the plugin it wrapped registers anyway."""

    class Buggy:
        @hookimpl(wrapper=True)
        def register_methods(self, register):
            yield
            raise ValueError("wrapper bug")

    host = plugins.load_plugins(extra=[("buggy", Buggy()), ("good", _methods("zz_good"))])
    assert host.broken == [{"plugin": "buggy", "error": "ValueError: wrapper bug"}]
    assert {"erm", "zz_good"} <= set(host.registry("methods").names())
    assert host.pm.get_plugin("buggy") is None


def test_an_unhashable_extra_plugin_still_registers(fresh_host):
    """``load_plugins(extra=...)`` takes a ``SimpleNamespace`` as before (pluggy's per-plugin
    hook call keeps plugins in a set)."""

    @hookimpl
    def register_methods(register):
        register(MethodSpec("zz_ns", "x", factory=unbuilt))

    host = plugins.load_plugins(
        extra=[("ns", types.SimpleNamespace(register_methods=register_methods))]
    )
    assert host.registry("methods").entry("zz_ns").plugin == "ns" and not host.broken


def test_observer_calls_go_through_pluggy():
    """Each observer is its own pluggy hook call: a wrapper sees it, and gets its result."""
    import pluggy

    from nlbench.core import hookspecs
    from nlbench.engine import observers

    pm = pluggy.PluginManager("nlbench")
    pm.add_hookspecs(hookspecs)
    seen: list[str] = []

    class Observer:
        @hookimpl
        def epoch_finished(self, epoch, metrics):
            metrics["test_acc"] = -1.0  # its own copy: the runner's metrics are untouched
            return {"extra": epoch}

    class Wrapper:
        @hookimpl(wrapper=True)
        def epoch_finished(self, epoch):
            result = yield
            seen.append(f"epoch {epoch}: {result}")
            return result

    pm.register(Observer(), name="observer")
    pm.register(Wrapper(), name="wrapper")
    metrics = {"test_acc": 0.5}
    assert observers.epoch_extras(pm, run=None, epoch=3, metrics=metrics) == {"extra": 3}
    assert metrics == {"test_acc": 0.5}
    assert seen == ["epoch 3: [{'extra': 3}]"]
