"""Shared plotting helpers for the book: one theme, one palette, a few seaborn-style panels.

Every error bar and band of measured values is a 95% confidence interval of a mean from
:mod:`fg_analysis.metrics` (t distribution); the figures of the pages are in :mod:`fg_analysis.publish.figures`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

#: colors of the approaches, the same on every page
PALETTE = {"bp": "#222222", "projection": "#1f77b4", "mean": "#d62728", "sum": "#2ca02c", "fg": "#ff7f0e"}


def theme() -> None:
    """The book's seaborn theme: white grid, paper context, colorblind palette, compact figures."""
    import matplotlib as mpl
    import seaborn as sns

    sns.set_theme(context="paper", style="whitegrid", palette="colorblind", font_scale=1.1)
    mpl.rcParams.update({"figure.dpi": 110, "savefig.dpi": 110, "figure.figsize": (6.4, 3.6),
                         "axes.titlesize": "medium", "legend.frameon": False})


def errorbars(ax, x, mean, ci, *, label: str | None = None, color=None, marker: str = "o", linestyle: str = "none",
              **kwargs):
    """Measured means with 95% CI error bars."""
    return ax.errorbar(np.asarray(x, dtype=float), np.asarray(mean, dtype=float),
                       yerr=np.nan_to_num(np.asarray(ci, dtype=float)), label=label, color=color, marker=marker,
                       linestyle=linestyle, markersize=4, capsize=2, elinewidth=1, **kwargs)


def band(ax, x, low, high, *, color=None, alpha: float = 0.2, **kwargs):
    """A shaded band between ``low`` and ``high`` (a theory band or a CI over seeds)."""
    return ax.fill_between(np.asarray(x, dtype=float), np.asarray(low, dtype=float),
                           np.asarray(high, dtype=float), color=color, alpha=alpha, linewidth=0, **kwargs)


def log2_axis(ax, axis: str = "x") -> None:
    """Base-2 log scale with plain-number tick labels (1, 4, 16, ...)."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    scale = ax.set_xscale if axis == "x" else ax.set_yscale
    scale("log", base=2)
    target = ax.xaxis if axis == "x" else ax.yaxis
    target.set_major_locator(LogLocator(base=4))
    target.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    target.set_minor_formatter(NullFormatter())


def color_map(values: Sequence, palette: str = "viridis") -> dict:
    """One color per value of an ordered set (e.g. each n), from a sequential seaborn palette."""
    import seaborn as sns

    values = list(values)
    return dict(zip(values, sns.color_palette(palette, len(values)), strict=True))


def markdown_table(frame: pd.DataFrame, *, index: bool = False) -> str:
    """A GitHub-flavoured Markdown table of ``frame`` (cells as ``str``), for ``IPython.display.Markdown``.

    >>> print(markdown_table(pd.DataFrame({"a": [1], "b": ["x"]})))
    | a | b |
    | --- | --- |
    | 1 | x |
    """
    if index:
        frame = frame.reset_index()
    def cell(value) -> str:
        return str(value).replace("|", "\\|").replace("\n", " ")
    lines = ["| " + " | ".join(cell(c) for c in frame.columns) + " |",
             "| " + " | ".join("---" for _ in frame.columns) + " |"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)
