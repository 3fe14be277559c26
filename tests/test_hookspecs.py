"""Meta-tests: every hook is documented and has a test named test_hook_<name>; hook tests."""

from __future__ import annotations

import collections.abc
import inspect
import re
import types
import typing
from pathlib import Path

import click
import pytest

from nlbench import hookimpl
from nlbench.core import hookspecs
from nlbench.core.registry import KINDS
from nlbench.host import plugins

TESTS = Path(__file__).parent
HOOKS = sorted(
    name
    for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
    if hasattr(fn, "nlbench_spec")
)


def test_every_hookspec_documented():
    assert HOOKS, "no hookspecs found"
    for name in HOOKS:
        doc = inspect.getdoc(getattr(hookspecs, name)) or ""
        assert len(doc) > 20, f"hook {name} needs a docstring"


def _hints(name: str) -> dict[str, object]:
    """A hookspec's annotations, resolved with the names hookspecs imports for type checkers."""
    from nlbench.core import specs
    from nlbench.engine.runner import RunState

    namespace = {**vars(hookspecs), **vars(specs), "RunState": RunState, "click": click}
    return typing.get_type_hints(getattr(hookspecs, name), globalns=namespace)


@pytest.mark.parametrize("name", HOOKS)
def test_hookspecs_are_typed(name):
    """The hookspecs are the public contract: every parameter and the return value carry a
    real type (no ``Any``), and the annotations resolve."""
    fn = getattr(hookspecs, name)
    sig = inspect.signature(fn)
    untyped = [p for p in sig.parameters.values() if p.annotation is inspect.Parameter.empty]
    assert not untyped and sig.return_annotation is not inspect.Signature.empty, name
    text = " ".join(str(a) for a in fn.__annotations__.values())
    assert not re.search(r"\bAny\b", text), f"{name}: {text}"
    hints = _hints(name)
    assert typing.Any not in hints.values(), hints


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_register_callbacks_take_the_spec_their_docstring_names(kind):
    """``register_X(register: Callable[[XSpec], None])``: the type names the spec class the
    docstring shows, and every built-in registration is an instance of it."""
    hook = KINDS[kind][0]
    callback = _hints(hook)["register"]
    assert typing.get_origin(callback) is collections.abc.Callable
    (spec_cls,), returns = typing.get_args(callback)
    assert returns in (None, type(None))
    from nlbench.core import specs

    names = {name for name, value in vars(specs).items() if value is spec_cls}  # aliases too
    doc = inspect.getdoc(getattr(hookspecs, hook)) or ""
    assert any(f"register({name}(" in doc for name in names), (hook, names)
    for entry in plugins.get_host().registry(kind).entries():
        assert isinstance(entry.spec, spec_cls), f"{kind} {entry.name}: {type(entry.spec)}"


def test_every_hookspec_tested():
    source = "\n".join(p.read_text() for p in TESTS.glob("test_*.py"))
    for name in HOOKS:
        assert re.search(rf"def test_hook_{name}\b", source), f"no test_hook_{name}"


def test_every_registry_kind_has_a_hook():
    assert {hook for hook, _ in KINDS.values()} <= set(HOOKS)


@pytest.fixture
def observer_host():
    seen: dict[str, list] = {"started": [], "epochs": [], "finished": []}

    @hookimpl
    def run_started(run):
        seen["started"].append(run.run_id)

    @hookimpl
    def epoch_finished(run, epoch, metrics):
        seen["epochs"].append((epoch, dict(metrics)))
        return {"observer_extra": epoch * 10}

    @hookimpl
    def run_finished(run, record):
        seen["finished"].append(record["status"])

    obs = types.SimpleNamespace(
        run_started=run_started, epoch_finished=epoch_finished, run_finished=run_finished
    )
    plugins.reset()
    plugins.load_plugins(extra=[("observer", obs)])
    yield seen
    plugins.reset()


def test_hook_run_started(observer_host, nlbench_run):
    record = nlbench_run()
    assert observer_host["started"] == [record["run_id"]]


def test_hook_epoch_finished(observer_host, nlbench_run):
    record = nlbench_run()
    assert [e for e, _ in observer_host["epochs"]] == [0, 1]
    assert [e["observer_extra"] for e in record["epochs"]] == [0, 10]


def test_hook_run_finished(observer_host, nlbench_run):
    nlbench_run()
    assert observer_host["finished"] == ["done"]


def test_hook_register_commands():
    from nlbench.cli import cli

    @hookimpl
    def register_commands(cli):
        @cli.command("hello-test")
        def hello():
            click.echo("hi")

    plugins.reset()
    try:
        host = plugins.load_plugins(
            extra=[("cmd", types.SimpleNamespace(register_commands=register_commands))]
        )
        host.pm.hook.register_commands(cli=cli)
        assert "hello-test" in cli.commands
    finally:
        cli.commands.pop("hello-test", None)
        plugins.reset()


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_registration_hooks_fill_registries(kind):
    hook = KINDS[kind][0]
    host = plugins.get_host()
    for entry in host.registry(kind).entries():
        assert entry.spec.description, f"{kind} {entry.name} needs a description"
        module = host.pm.get_plugin(entry.plugin)
        assert hasattr(module, hook)


def _registered(kind: str) -> list[str]:
    return plugins.get_host().registry(kind).names()


def test_hook_register_datasets():
    assert "digits" in _registered("datasets")


def test_hook_register_noise_models():
    assert {"none", "sym"} <= set(_registered("noise"))


def test_hook_register_models():
    assert "tiny_cnn" in _registered("models")


def test_hook_register_methods():
    assert "erm" in _registered("methods")


def test_hook_register_selectors():
    _assert_hook_delivers("register_selectors", "selectors")


def test_hook_register_reweighters():
    _assert_hook_delivers("register_reweighters", "reweighters")


def test_hook_register_executors():
    _assert_hook_delivers("register_executors", "executors")


def test_hook_register_losses():
    _assert_hook_delivers("register_losses", "losses")
    assert {"ce", "gce", "sce"} <= set(_registered("losses"))


def _assert_hook_delivers(hook: str, kind: str) -> None:
    """A plugin implementing ``hook`` lands its spec in the ``kind`` registry with provenance."""
    from nlbench.core.specs import ExecutorSpec, LossSpec, ReweighterSpec, SelectorSpec

    spec_cls = {
        "selectors": SelectorSpec,
        "reweighters": ReweighterSpec,
        "executors": ExecutorSpec,
        "losses": LossSpec,
    }[kind]

    def impl(register):
        register(spec_cls("zz_test_item", "a test item", factory=object))

    impl.__name__ = hook
    plugins.reset()
    try:
        host = plugins.load_plugins(extra=[("zz", types.SimpleNamespace(**{hook: hookimpl(impl)}))])
        assert host.registry(kind).entry("zz_test_item").plugin == "zz"
    finally:
        plugins.reset()
