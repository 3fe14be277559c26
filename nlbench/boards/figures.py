"""Per-epoch curves as SVG with deterministic bytes, so that ``--check`` covers them.

matplotlib is an optional extra (``pip install nlbench[report]``). Determinism: the ``Figure``
API without pyplot (no global backend), a fixed ``svg.hashsalt`` (clip-path and glyph ids),
``svg.fonttype = 'none'`` (text stays text, no font outlines that vary by installed fonts), and
no ``Date`` metadata. The bytes can still change with the matplotlib version, which the SVG
names (``Creator``): ``--check`` compares a figure only when it was made by the installed version
(:func:`made_by_other_version`) and says which ones it could not compare.
"""

from __future__ import annotations

import importlib.util
import io
import re
import warnings
from collections.abc import Sequence

import numpy as np

HASHSALT = "nlbench-boards"
Curves = Sequence[Sequence[float]]  # one curve per seed
Panel = tuple[str, list[tuple[str, Curves]]]  # y label, (series label, curves)


def available() -> bool:
    """Whether matplotlib can be imported (looked up at call time, so tests can hide it)."""
    try:
        return importlib.util.find_spec("matplotlib") is not None
    except (ImportError, ValueError):
        return False


def version() -> str:
    import matplotlib

    return matplotlib.__version__


def made_by_other_version(svg: bytes) -> str | None:
    """The matplotlib version an SVG names, when it differs from the installed one."""
    m = re.search(rb"Matplotlib v([0-9][0-9A-Za-z.+-]*)", svg[:4000])
    theirs = m.group(1).decode() if m else None  # none named: compare the bytes
    return None if theirs in (None, version()) else theirs


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


def figure_svg(title: str, panels: list[Panel], xlabel: str = "epoch") -> str:
    """One row of panels; per series the mean over seeds as a line, min–max as a band."""
    import matplotlib
    from matplotlib.colors import ListedColormap
    from matplotlib.figure import Figure
    from matplotlib.rcsetup import cycler

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
        buf = io.StringIO()
        fig.savefig(buf, format="svg", metadata={"Date": None})
    return buf.getvalue()
