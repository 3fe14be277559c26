"""Typed hyper-parameters: declarations, coercion at resolution, inference, ``show`` rows."""

from __future__ import annotations

import math

import pytest
from helpers import assert_usage_error, run_cli, unbuilt
from hypothesis import given, settings
from hypothesis import strategies as st

from nlbench.core.config import RunConfig
from nlbench.core.errors import UsageError
from nlbench.core.hparam_types import (
    Bool,
    Choice,
    Float,
    FloatList,
    HParam,
    HParamError,
    Int,
    Optional,
    Str,
    defaults,
    with_defaults,
)
from nlbench.core.hparams import BASE_DECLARED, declared_hparams, describe_hparams, resolve_hparams
from nlbench.core.specs import MethodSpec, SelectorSpec
from nlbench.host.plugins import get_host


def _resolve(method: str = "erm", **overrides):
    host = get_host()
    cfg = RunConfig(method=method, dataset="digits", overrides=overrides)
    return resolve_hparams(host.get("methods", method), host.get("datasets", "digits"), cfg, host)


# -- one declaration -------------------------------------------------------------------------
@pytest.mark.parametrize(
    "value", ["abc", math.nan, math.inf, -math.inf, True, None, [0.1], 11, -0.1, 10**400, "0.1"]
)
def test_float_refuses(value):
    with pytest.raises(HParamError, match=r"^hparam lr=.*accepted a finite number in \[0, 10\]"):
        Float(0.1, low=0, high=10).coerce("lr", value)


def test_float_coerces_ints_and_keeps_bounds():
    h = Float(0.5, low=0, high=1, high_open=True)
    assert h.coerce("p", 0) == 0.0 and isinstance(h.coerce("p", 0), float)
    assert h.coerce("p", 0.999) == 0.999
    with pytest.raises(HParamError, match=r"out of range: accepted a finite number in \[0, 1\)"):
        h.coerce("p", 1)


def test_int_bool_str_choice_list():
    assert Int(3, low=1).coerce("k", 2.0) == 2 and isinstance(Int(3).coerce("k", 2.0), int)
    for bad in (2.5, True, "2", None, math.nan):
        with pytest.raises(HParamError):
            Int(3, low=1).coerce("k", bad)
    with pytest.raises(HParamError, match="accepted true or false"):
        Bool(False).coerce("b", 1)
    assert Str("clean:1", pattern=r"clean:[0-9]+").coerce("s", "clean:10") == "clean:10"
    with pytest.raises(HParamError, match="matching"):
        Str("clean:1", pattern=r"clean:[0-9]+").coerce("s", "clean:")
    c = Choice(True, (True, False, "always"))
    assert c.coerce("c", "always") == "always" and c.coerce("c", False) is False
    for bad in (1, 0, "true", None):  # 1 == True in Python: a choice compares types too
        with pytest.raises(HParamError, match="one of true, false, always"):
            c.coerce("c", bad)
    assert FloatList([0.5]).coerce("m", [150, 0.5]) == [150.0, 0.5]
    for wrong in ([0.5, "a"], "0.5", [math.nan], [-1], [True]):
        with pytest.raises(HParamError):
            FloatList([0.5], low=0).coerce("m", wrong)


def test_optional_and_inference():
    assert Optional(Int(None, low=1)).coerce("n", None) is None
    with pytest.raises(HParamError, match="or null"):
        Optional(Int(None, low=1)).coerce("n", 0)
    assert HParam(0.3).type == "float" and HParam(3).type == "int"
    assert HParam(True).type == "bool" and HParam("x").type == "str"
    assert HParam([1, 2]).type == "float_list" and HParam(None).type == "any"
    assert HParam(None).coerce("x", {"a": 1}) == {"a": 1}  # nothing to infer from


def test_aliases_are_stored_as_the_value_they_name():
    loss = Optional(Str(None, aliases=[("ce", None)]))
    assert loss.aliases == (("ce", None),)  # any pairs, kept as a hashable tuple
    assert loss.coerce("loss", "ce") is None and loss.coerce("loss", None) is None
    assert loss.coerce("loss", "gce") == "gce"
    flag = Choice("on", ("on", "off"), aliases=((True, "on"),))
    assert flag.coerce("f", True) == "on"
    with pytest.raises(HParamError):  # 1 == True, but an int is no alias of a bool
        flag.coerce("f", 1)


def test_with_defaults_keeps_the_declaration():
    table = {"a": Float(0.1, low=0, high=1), "b": 3}
    out = with_defaults(table, a=0.5, b=4)
    assert defaults(out) == {"a": 0.5, "b": 4}
    with pytest.raises(HParamError):
        out["a"].coerce("a", 2.0)
    with pytest.raises(KeyError):
        with_defaults(table, c=1)


@settings(max_examples=200, deadline=None)
@given(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(),
        st.text(max_size=10),
        st.lists(st.one_of(st.floats(), st.integers(), st.text(max_size=3)), max_size=3),
    )
)
def test_every_base_declaration_is_total(value):
    """Any JSON-like value is coerced or refused with an HParamError, never anything else."""
    for name, decl in BASE_DECLARED.items():
        try:
            out = decl.coerce(name, value)
        except HParamError as exc:
            assert str(exc).startswith(f"hparam {name}=") and "\n" not in str(exc)
            continue
        assert decl.coerce(name, out) == out  # canonical form is a fixed point


# -- built-in declarations and resolution ----------------------------------------------------
def test_every_builtin_hparam_is_declared():
    host = get_host()
    for name in host.registry("methods").names():
        mspec = host.get("methods", name)
        if mspec.factory.__module__.startswith("nlbench_plugins"):
            plain = [k for k, v in mspec.default_hparams.items() if not isinstance(v, HParam)]
            assert not plain, (name, plain)
        for key, decl in declared_hparams(mspec).items():
            assert decl.doc, (name, key)
            assert decl.coerce(key, decl.default) == decl.default, (name, key)


@pytest.mark.parametrize(
    "key, value",
    [
        ("gamma", "abc"),
        ("milestones", [0.5, "a"]),
        ("onecycle_pct", "abc"),
        ("lr", 1e308),
        ("lr", math.nan),
        ("lr", math.inf),
        ("epochs", 2.5),
        ("batch_size", 0),
        ("channels_last", "maybe"),
        ("augment", "sideways"),
        ("meta_set", "clean:"),
        ("dropout", 1.0),
        ("nesterov", "yes"),
    ],
)
def test_resolution_refuses_bad_base_values(key, value):
    with pytest.raises(UsageError, match=f"hparam {key}="):
        _resolve(**{key: value})


@pytest.mark.parametrize(
    "method, key, value",
    [
        ("famus", "famus_tau", "0.4,0.6"),
        ("famus", "famus_k", 0),
        ("mwnet", "meta_opt", "rmsprop"),
        ("dividemix", "p_threshold", 1.0),
        ("dividemix", "lambda_u", -1.0),
        ("fl_only", "fl_ratio", 0.0),
        ("fl_only", "space", "pixels"),
        ("l2r", "meta_set", "none"),
    ],
)
def test_resolution_refuses_bad_method_values(method, key, value):
    with pytest.raises(UsageError, match=f"hparam {key}="):
        _resolve(method, **{key: value})


def test_resolution_canonicalises():
    hp = _resolve(lr=1, milestones=[3, 0.5], epochs=4.0)
    assert hp["lr"] == 1.0 and isinstance(hp["lr"], float)
    assert hp["milestones"] == [3.0, 0.5] and hp["epochs"] == 4 and isinstance(hp["epochs"], int)


def test_plain_defaults_of_third_party_plugins_are_typed():
    """A plugin without declarations keeps working; its values are checked by inferred type."""
    host = get_host()
    mspec = MethodSpec(
        "third",
        "x",
        factory=unbuilt,
        default_hparams={"tau": 0.5, "k": 3, "mode": "a", "meta_set": "clean:10"},
    )
    dspec = host.get("datasets", "digits")

    def resolve(**overrides):
        return resolve_hparams(mspec, dspec, RunConfig(method="third", overrides=overrides), host)

    assert resolve(tau=0.7, k=2)["tau"] == 0.7
    for key, bad in (
        ("tau", "0.4,0.6"),
        ("tau", math.nan),
        ("k", 0.5),
        ("mode", 3),
        ("meta_set", "clean:x"),
    ):  # BASE's declaration, the plugin's default
        with pytest.raises(UsageError, match=f"hparam {key}="):
            resolve(**{key: bad})


def test_describe_hparams_rows():
    host = get_host()
    rows = {r["name"]: r for r in describe_hparams(host.get("methods", "dividemix"))}
    assert rows["lr"]["source"] == "base" and rows["lr"]["range"] == "[0, 10]"
    assert rows["p_threshold"] == {
        "name": "p_threshold",
        "type": "float | null",
        "range": "[0, 1)",
        "default": None,
        "doc": "clean-probability threshold τ; null: Table 7",
        "execution": False,
        "source": "dividemix",
    }
    assert rows["amp"]["execution"] is True
    sel = SelectorSpec("mine", "x", factory=unbuilt, hparams={"ratio": Float(0.4, low=0, high=1)})
    assert [r["name"] for r in describe_hparams(sel)] == ["ratio"]


def test_cli_bad_set_is_one_line_before_any_run(capsys, tmp_path):
    out = tmp_path / "runs"
    for item in ("gamma=abc", "lr=1e308", "lr=nan", 'milestones=[0.5,"a"]', "onecycle_pct=abc"):
        res = run_cli(
            capsys, "run", "--dataset", "digits", "--epochs", "1", "--out", str(out), "--set", item
        )
        assert_usage_error(res, f"hparam {item.partition('=')[0]}=", "accepted")
    assert not out.exists()


def test_cli_show_method_prints_types(capsys):
    res = run_cli(capsys, "show", "method", "dividemix")
    assert res.code == 0
    assert "p_threshold" in res.out and "[0, 1)" in res.out and "Table 7" in res.out


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", '"0.1"', "1e308"])
def test_sweep_file_with_a_non_finite_lr_is_refused(capsys, tmp_path, value):
    """TOML reads ``nan`` as a float: it used to 'finish' at chance accuracy with ``lr: null``."""
    path = tmp_path / "s.toml"
    out = tmp_path / "runs"
    path.write_text(f'method = "erm"\ndataset = "digits"\nout = "{out}"\n[set]\nlr = {value}\n')
    res = run_cli(capsys, "sweep", "-c", str(path), "--dry-run")
    assert_usage_error(res, "hparam lr=", "accepted a finite number")
    assert not out.exists()
