"""Figures as SVG with deterministic bytes, each carrying the hash of the data it draws.

matplotlib is an optional extra (``pip install nlbench[report]``). Determinism: the ``Figure``
API without pyplot (no global backend), a fixed ``svg.hashsalt`` (clip-path and glyph ids),
``svg.fonttype = 'none'`` (text stays text, no font outlines that vary by installed fonts), and
no ``Date`` metadata. The bytes still change with the matplotlib version, so every SVG starts
with a comment naming the SHA-256 of what it draws (the data and this module's source):
``--check`` compares that, not the bytes (:func:`same_figure`), and a new matplotlib release
neither fails the check nor rewrites a committed figure whose data did not change.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import re
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from nlbench.core.config import canonical_json

HASHSALT = "nlbench-boards"
DATA_RE = re.compile(rb"<!-- nlbench-figure-data sha256:([0-9a-f]{64}) -->")
Curves = Sequence[Sequence[float]]  # one curve per seed
Panel = tuple[str, list[tuple[str, Curves]]]  # y label, (series label, curves)


def available() -> bool:
    """Whether matplotlib can be imported (looked up at call time, so tests can hide it)."""
    try:
        return importlib.util.find_spec("matplotlib") is not None
    except (ImportError, ValueError):
        return False


def version() -> str:
    import matplotlib  # lazy: optional dependency, imported only when used

    return matplotlib.__version__


def made_by_other_version(svg: bytes) -> str | None:
    """The matplotlib version an SVG without a data hash names, when it differs from the
    installed one (such a legacy figure's bytes cannot be compared; one with a hash can)."""
    if DATA_RE.search(svg[:4000]):
        return None
    m = re.search(rb"Matplotlib v([0-9][0-9A-Za-z.+-]*)", svg[:4000])
    theirs = m.group(1).decode() if m else None  # none named: compare the bytes
    return None if theirs in (None, version()) else theirs


def data_hash(kind: str, data: Any) -> str:
    """SHA-256 of what a figure shows: its kind, its data and the code that draws it."""
    code = Path(__file__).read_bytes().replace(b"\r\n", b"\n")
    payload = canonical_json({"kind": kind, "data": data}).encode() + code
    return hashlib.sha256(payload).hexdigest()


def _stamped(svg: str, digest: str) -> str:
    """``svg`` with the data-hash comment after its XML declaration."""
    head, _, rest = svg.partition("\n")
    return f"{head}\n<!-- nlbench-figure-data sha256:{digest} -->\n{rest}"


def same_figure(committed: bytes, built: str) -> bool:
    """Whether a committed SVG shows what ``built`` shows: the same data hash when both carry
    one (whatever matplotlib drew them), else the same bytes."""
    old, new = DATA_RE.search(committed[:4000]), DATA_RE.search(built[:4000].encode())
    if old and new:
        return old.group(1) == new.group(1)
    return committed == built.encode("utf-8")


def spread(curves: Curves) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-epoch mean, min and max over seeds (shorter runs leave later epochs to the others)."""
    length = max((len(c) for c in curves), default=0)
    grid = np.full((len(curves), length), np.nan)
    for i, c in enumerate(curves):
        grid[i, : len(c)] = c
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an epoch no seed reached: NaN
        return np.nanmean(grid, 0), np.nanmin(grid, 0), np.nanmax(grid, 0)


def _escape(text: str) -> str:
    return text.replace("$", r"\$")


@contextmanager
def _style() -> Iterator[None]:
    import matplotlib  # lazy: optional dependency, imported only when used

    # lazy: optional dependency, imported only when used
    from matplotlib.colors import ListedColormap
    from matplotlib.rcsetup import cycler  # lazy: optional dependency, imported only when used

    tab10 = matplotlib.colormaps["tab10"]
    assert isinstance(tab10, ListedColormap)  # a fixed list of colours, not a gradient
    with matplotlib.rc_context(
        {
            "svg.hashsalt": HASHSALT,
            "svg.fonttype": "none",
            "font.size": 8,
            "axes.prop_cycle": cycler(color=tab10.colors),
        }
    ):
        yield


def _svg(fig: Any, digest: str, tight: bool = False) -> str:
    """The SVG text, stamped; ``tight`` grows the canvas to every label drawn past the axes."""
    buf = io.StringIO()
    extra = {"bbox_inches": "tight", "pad_inches": 0.1} if tight else {}
    fig.savefig(buf, format="svg", metadata={"Date": None}, **extra)
    return _stamped(buf.getvalue(), digest)


def figure_svg(title: str, panels: list[Panel], xlabel: str = "epoch") -> str:
    """One row of panels; per series the mean over seeds as a line, min–max as a band."""
    from matplotlib.figure import Figure  # lazy: optional dependency, imported only when used

    digest = data_hash("curves", [title, panels, xlabel])
    with _style():
        fig = Figure(figsize=(4.2 * len(panels), 3.2), layout="constrained")
        axes = fig.subplots(1, len(panels), squeeze=False)[0]
        for ax, (ylabel, series) in zip(axes, panels):
            for label, curves in series:
                mean, lo, hi = spread(curves)
                x = np.arange(1, len(mean) + 1)
                (line,) = ax.plot(x, mean, label=_escape(label), linewidth=1.2)
                if len(curves) > 1:
                    ax.fill_between(x, lo, hi, color=line.get_color(), alpha=0.2, linewidth=0)
            ax.set_xlabel(xlabel)
            ax.set_ylabel(_escape(ylabel))
            ax.grid(True, linewidth=0.3)
        axes[-1].legend(loc="center left", bbox_to_anchor=(1.02, 0.5), fontsize=7, frameon=False)
        fig.suptitle(_escape(title))
        return _svg(fig, digest)


def rank_svg(
    title: str,
    labels: Sequence[str],
    ranks: Sequence[float],
    cd: float,
    bars: list[tuple[int, int]],
) -> str:
    """A critical-difference diagram (Demšar 2006, Fig. 1): average ranks on an axis from 1
    (best, left) to k, the better half labelled on the left, the rest on the right, the CD as a
    scale bar above, and a thick bar under each run of methods less than CD apart."""
    from matplotlib.figure import Figure  # lazy: optional dependency, imported only when used

    k, half = len(labels), (len(labels) + 1) // 2
    digest = data_hash("ranks", [title, list(labels), list(ranks), cd, bars])
    first = 0.5 + 0.25 * len(bars)  # y of the first label row (y grows downwards)
    bottom = first + 0.4 * max(half, k - half)
    with _style():
        fig = Figure(figsize=(6.0, 0.3 + 0.3 * (bottom + 1.5)))
        ax = fig.add_axes((0.0, 0.0, 1.0, 1.0))
        ax.set_axis_off()
        ax.set_xlim(1 - 0.02 * k, k + 0.02 * k)
        ax.set_ylim(bottom, -1.5)
        ax.plot([1, k], [0, 0], color="black", linewidth=0.8)
        for tick in range(1, k + 1):
            ax.plot([tick, tick], [0, -0.12], color="black", linewidth=0.8)
            ax.text(tick, -0.18, str(tick), ha="center", va="bottom")
        shown = min(cd, k - 1)  # a CD longer than the axis: every method within it
        ax.plot([1, 1 + shown], [-0.9, -0.9], color="black", linewidth=1.5)
        ax.text(1 + shown / 2, -1.0, f"CD = {cd:.2f}", ha="center", va="bottom")
        for j, (a, b) in enumerate(bars):
            y = 0.25 + 0.25 * j
            ax.plot([ranks[a] - 0.05, ranks[b] + 0.05], [y, y], color="black", linewidth=2.5)
        for i, (label, r) in enumerate(zip(labels, ranks)):
            left = i < half
            y = first + 0.4 * (i if left else k - 1 - i)
            edge = 1 - 0.04 * k if left else k + 0.04 * k
            ax.plot([r, r, edge], [0, y, y], color="0.3", linewidth=0.7, clip_on=False)
            ax.text(
                edge,
                y,
                f" {_escape(label)} ({r:.2f}) ",
                ha="right" if left else "left",
                va="center",
                clip_on=False,
            )
        ax.text((1 + k) / 2, -1.45, _escape(title), ha="center", va="bottom", fontsize=9)
        return _svg(fig, digest, tight=True)
