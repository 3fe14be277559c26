"""Method flags are one ``str``-valued enum; plain strings from older plugins still work."""

from __future__ import annotations

import json
import types
from typing import Any

import pytest
from helpers import unbuilt

from nlbench import hookimpl
from nlbench.api import MethodFlag, MethodSpec, NoiseSetting
from nlbench.core.errors import UsageError
from nlbench.core.run_facts import run_flags
from nlbench.host import plugins

DATASET: Any = types.SimpleNamespace(name="d", num_classes=10)  # a DatasetSpec stand-in
NOISE = NoiseSetting("sym", 0.4, "sym:0.4")


def test_a_flag_is_its_string():
    flag = MethodFlag.TWO_NET
    assert flag == "two_net" and "two_net" in {flag} and flag in frozenset({"two_net"})
    assert str(flag) == f"{flag}" == "two_net" and json.dumps([flag]) == '["two_net"]'
    assert flag.label == "two-net ensemble"
    assert {f.value for f in MethodFlag} == {"clean_meta", "two_net", "noise_tuned", "oracle_noise"}


def test_plain_strings_are_converted():
    spec = MethodSpec("m", "x", factory=unbuilt, flags=frozenset({"clean_meta", "two_net"}))  # type: ignore[arg-type]
    assert spec.flags == {MethodFlag.CLEAN_META, MethodFlag.TWO_NET}
    assert all(type(f) is MethodFlag for f in spec.flags)
    assert MethodSpec("m", "x", unbuilt, flags="two_net").flags == {MethodFlag.TWO_NET}  # type: ignore[arg-type]


def test_an_unknown_flag_is_one_usage_error_naming_the_accepted_ones():
    with pytest.raises(UsageError) as info:
        MethodSpec("m", "x", factory=unbuilt, flags=frozenset({"two_nets"}))  # type: ignore[arg-type]
    message = str(info.value)
    assert "\n" not in message and "'two_nets'" in message
    assert "clean_meta, two_net, noise_tuned, oracle_noise" in message


def test_per_run_flags_accept_strings_and_record_strings():
    def flags_for(hp, noise, dataset):
        return {"noise_tuned"} if hp["tuned"] else {MethodFlag.ORACLE_NOISE}

    spec = MethodSpec("m", "x", unbuilt, flags=frozenset({MethodFlag.TWO_NET}), flags_for=flags_for)
    tuned = run_flags(spec, {"tuned": True}, NOISE, DATASET)
    assert tuned == ["noise_tuned", "two_net"] and all(type(f) is str for f in tuned)
    assert run_flags(spec, {"tuned": False}, NOISE, DATASET) == ["oracle_noise", "two_net"]
    bad = MethodSpec("m", "x", unbuilt, flags_for=lambda hp, noise, dataset: {"tuned"})
    with pytest.raises(UsageError, match="unknown method flag 'tuned'; accepted: clean_meta"):
        run_flags(bad, {}, NOISE, DATASET)


def test_a_plugin_with_an_unknown_flag_breaks_only_itself():
    @hookimpl
    def register_methods(register):
        register(MethodSpec("zz_flagged", "x", factory=unbuilt, flags=frozenset({"gpu"})))  # type: ignore[arg-type]

    plugins.reset()
    try:
        host = plugins.load_plugins(
            extra=[("zz_flags", types.SimpleNamespace(register_methods=register_methods))]
        )
        (entry,) = [b for b in host.broken if b["plugin"] == "zz_flags"]
        assert entry["error"].startswith("UsageError: unknown method flag 'gpu'; accepted: ")
        assert "zz_flagged" not in host.registry("methods") and "erm" in host.registry("methods")
    finally:
        plugins.reset()


def test_builtin_methods_carry_enum_flags():
    host = plugins.get_host()
    flagged = {e.name: e.spec.flags for e in host.registry("methods").entries() if e.spec.flags}
    assert flagged["dividemix"] == {MethodFlag.TWO_NET}
    assert flagged["mwnet"] == {MethodFlag.CLEAN_META}
    assert all(type(f) is MethodFlag for flags in flagged.values() for f in flags)
