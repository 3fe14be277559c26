"""Typed hyper-parameter declarations: one :class:`HParam` per key, checked at resolution.

A plugin declares each hyper-parameter once, as a value of ``MethodSpec.default_hparams`` (or
``SelectorSpec.hparams`` / ``ReweighterSpec.hparams``)::

    default_hparams={"tau": Float(0.5, low=0, high=1, doc="clean-probability threshold"),
                     "k": Int(4, low=1), "opt": Choice("adam", ("adam", "sgd")),
                     "warmup": 10}  # a plain value: its type is inferred from the default

Every value a run gets (profile, ``--set``, sweep file, record) goes through
:meth:`HParam.coerce` before any data loads, so a wrong type, NaN, inf or an out-of-range value
is one usage error naming the key and what it accepts, never a traceback in training.
"""

from __future__ import annotations

import dataclasses
import math
import re
import reprlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NoReturn

from nlbench.core.errors import UsageError

KINDS = ("float", "int", "bool", "str", "float_list", "choice", "any")
_TYPE_KINDS = {float: "float", int: "int", bool: "bool", str: "str", list: "float_list"}
_NUMBER_WORDS = {"float": "a finite number", "int": "an integer"}


class HParamError(UsageError):
    """A hyper-parameter value its declaration does not accept (exit code 2)."""


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _show(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@dataclass(frozen=True)
class HParam:
    """One declared hyper-parameter.

    Attributes:
        default: the value a run gets unless a profile or ``--set`` says otherwise.
        type: ``float``, ``int``, ``bool``, ``str``, ``list`` (a list of numbers) or a kind
            name (``"float_list"``, ``"choice"``, ``"any"``); inferred from ``default`` if None.
        low, high: inclusive bounds of a number (or of every number of a list); ``low_open`` /
            ``high_open`` make them exclusive.
        choices: the accepted values (the type becomes ``choice``).
        nullable: ``None`` (JSON null) is accepted too; implied by a ``None`` default.
        pattern: a regular expression a string must match in full.
        doc: one line for ``nlbench show method``.
        execution: the value changes how a run executes, not its result (eval batching, AMP,
            memory layout, extra diagnostics): recorded, but left out of the run_id.
        aliases: ``(spelling, value)`` pairs: a spelling that means the same as ``value`` is
            stored as ``value`` (``loss="ce"`` is the default ``None``), so the two spellings
            are one run (one run_id, one board row), not two.
    """

    default: Any
    type: Any = None
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple | None = None
    nullable: bool = False
    pattern: str | None = None
    doc: str = ""
    execution: bool = False
    aliases: tuple = ()

    def __post_init__(self) -> None:
        kind = self.type
        if self.choices is not None:
            kind = "choice"
            object.__setattr__(self, "choices", tuple(self.choices))
        elif kind is None:
            kind = _infer_kind(self.default)
        kind = _TYPE_KINDS.get(kind, kind)
        if kind not in KINDS:
            raise TypeError(f"HParam type {self.type!r}: accepted {', '.join(KINDS)}")
        object.__setattr__(self, "type", kind)
        object.__setattr__(self, "aliases", tuple(tuple(pair) for pair in self.aliases))
        if self.default is None and kind != "choice":
            object.__setattr__(self, "nullable", True)

    # -- checking -------------------------------------------------------------------------
    def coerce(self, name: str, value: Any) -> Any:
        """``value`` in its canonical form (ints as floats for a float, an alias as the value
        it names, …) or HParamError."""
        value = self._unalias(value)
        if value is None and (self.nullable or self.type == "any"):
            return None
        if self.type == "choice":
            for choice in self.choices or ():
                if value == choice and isinstance(value, bool) == isinstance(choice, bool):
                    return choice
            return self._fail(name, value)
        checker = getattr(self, f"_coerce_{self.type}")
        return checker(name, value)

    def _unalias(self, value: Any) -> Any:
        for spelling, meant in self.aliases:
            if value == spelling and isinstance(value, bool) == isinstance(spelling, bool):
                return meant
        return value

    def _fail(self, name: str, value: Any, why: str = "") -> NoReturn:
        huge = isinstance(value, int) and abs(value) >= 10**40  # repr() refuses > 4300 digits
        shown = "<huge int>" if huge else reprlib.repr(value)  # bounded depth and length
        raise HParamError(f"hparam {name}={shown}{why}: accepted {self.accepted()}.")

    def _check_range(self, name: str, value: float, whole: Any) -> None:
        low_bad = self.low is not None and (
            value < self.low or (self.low_open and value == self.low)
        )
        high_bad = self.high is not None and (
            value > self.high or (self.high_open and value == self.high)
        )
        if low_bad or high_bad:
            self._fail(name, whole, " is out of range")

    def _coerce_float(self, name: str, value: Any) -> float:
        if not _is_number(value):
            return self._fail(name, value)
        try:
            out = float(value)
        except OverflowError:
            return self._fail(name, value, " overflows a float")
        if not math.isfinite(out):
            return self._fail(name, value)
        self._check_range(name, out, value)
        return out

    def _coerce_int(self, name: str, value: Any) -> int:
        if isinstance(value, float) and math.isfinite(value) and value.is_integer():
            value = int(value)
        if not isinstance(value, int) or isinstance(value, bool):
            return self._fail(name, value)
        self._check_range(name, value, value)
        return value

    def _coerce_bool(self, name: str, value: Any) -> bool:
        if not isinstance(value, bool):
            return self._fail(name, value)
        return value

    def _coerce_str(self, name: str, value: Any) -> str:
        if not isinstance(value, str):
            return self._fail(name, value)
        if self.pattern is not None and not re.fullmatch(self.pattern, value):
            return self._fail(name, value)
        return value

    def _coerce_float_list(self, name: str, value: Any) -> list[float]:
        if not isinstance(value, (list, tuple)):
            return self._fail(name, value)
        out = []
        for item in value:
            if not _is_number(item):
                return self._fail(name, value)
            out.append(self._coerce_float(name, item))
        return out

    def _coerce_any(self, name: str, value: Any) -> Any:
        return value

    # -- describing -----------------------------------------------------------------------
    def range_text(self) -> str:
        """The bounds in interval notation (``[0, 1)``, ``≥ 1``), or ``""`` when unbounded."""
        if self.low is None and self.high is None:
            return ""
        if self.high is None:
            return f"{'>' if self.low_open else '≥'} {self.low:g}"
        if self.low is None:
            return f"{'<' if self.high_open else '≤'} {self.high:g}"
        left, right = "(" if self.low_open else "[", ")" if self.high_open else "]"
        return f"{left}{self.low:g}, {self.high:g}{right}"

    def accepted(self) -> str:
        """What the declaration accepts, in words (the end of every error message)."""
        if self.type == "choice":
            return "one of " + ", ".join(_show(c) for c in self.choices or ())
        rng = self.range_text()
        if self.type in _NUMBER_WORDS:
            text = _NUMBER_WORDS[self.type] + (
                f" in {rng}" if rng.startswith(("[", "(")) else f" {rng}" if rng else ""
            )
        elif self.type == "float_list":
            text = "a list of finite numbers" + (f" (each {rng})" if rng else "") + ", e.g. [0.5]"
        elif self.type == "bool":
            text = "true or false"
        elif self.type == "str":
            text = f"a string matching {self.pattern}" if self.pattern else "a string"
        else:
            text = "any value"
        return text + (" or null" if self.nullable and self.type != "any" else "")

    def describe(self, name: str) -> dict[str, Any]:
        """One row of ``nlbench show method``: name, type, range or choices, default, doc."""
        if self.type == "choice":
            allowed = ", ".join(_show(c) for c in self.choices or ())
        else:
            allowed = self.range_text() or (self.pattern or "")
        kind = self.type + (" | null" if self.nullable and self.type != "choice" else "")
        return {
            "name": name,
            "type": kind,
            "range": allowed,
            "default": self.default,
            "doc": self.doc,
            "execution": self.execution,
        }


def _infer_kind(default: Any) -> str:
    if isinstance(default, bool):
        return "bool"
    if isinstance(default, int):
        return "int"
    if isinstance(default, float):
        return "float"
    if isinstance(default, str):
        return "str"
    if isinstance(default, (list, tuple)) and all(_is_number(v) for v in default):
        return "float_list"
    return "any"


# -- one obvious constructor per type ------------------------------------------------------
def Float(
    default: float | None, low: float | None = None, high: float | None = None, **kw: Any
) -> HParam:
    """A finite number (NaN and inf are refused), optionally bounded."""
    return HParam(default, type="float", low=low, high=high, **kw)


def Int(default: int | None, low: int | None = None, high: int | None = None, **kw: Any) -> HParam:
    """An integer (an integral float such as ``2.0`` from a TOML file is accepted as 2)."""
    return HParam(default, type="int", low=low, high=high, **kw)


def Bool(default: bool | None, **kw: Any) -> HParam:
    """``true`` or ``false`` (no 0/1, no strings)."""
    return HParam(default, type="bool", **kw)


def Str(default: str | None, pattern: str | None = None, **kw: Any) -> HParam:
    """A string, matching ``pattern`` in full when given."""
    return HParam(default, type="str", pattern=pattern, **kw)


def Choice(default: Any, choices: tuple | list, **kw: Any) -> HParam:
    """One of ``choices`` (``None`` only if listed); the default must be one of them."""
    if default not in choices:
        raise TypeError(f"Choice default {default!r} is not one of {choices!r}")
    return HParam(default, choices=tuple(choices), **kw)


def FloatList(
    default: list[float], low: float | None = None, high: float | None = None, **kw: Any
) -> HParam:
    """A list of finite numbers (stored as floats), each within the bounds."""
    return HParam(list(default), type="float_list", low=low, high=high, **kw)


def Optional(hparam: HParam) -> HParam:  # capitalised: reads as the type it declares
    """``hparam`` that also accepts ``None`` (null: "off" or "the method decides")."""
    return dataclasses.replace(hparam, nullable=True)


# -- mappings of declarations ----------------------------------------------------------------
def as_hparam(value: Any) -> HParam:
    """A declaration as it stands, or one inferred from a plain default value."""
    return value if isinstance(value, HParam) else HParam(value)


def declarations(table: Mapping[str, Any]) -> dict[str, HParam]:
    """``{key: HParam}`` for a mapping of declarations and/or plain defaults."""
    return {key: as_hparam(value) for key, value in table.items()}


def defaults(table: Mapping[str, Any]) -> dict[str, Any]:
    """``{key: default}``: the plain values of a mapping of declarations and/or defaults."""
    return {
        key: value.default if isinstance(value, HParam) else value for key, value in table.items()
    }


def with_defaults(table: Mapping[str, Any], **values: Any) -> dict[str, Any]:
    """``table`` with new defaults for some keys, each keeping its declaration (type, range)."""
    unknown = sorted(set(values) - set(table))
    if unknown:
        raise KeyError(f"with_defaults: no declaration for {', '.join(unknown)}")
    out = dict(table)
    for key, value in values.items():
        decl = table[key]
        out[key] = dataclasses.replace(decl, default=value) if isinstance(decl, HParam) else value
    return out
