"""Shared plotting helpers for the book: one theme, one confidence interval, a few seaborn-style panels.

Every error bar and band of measured values in the book is the paper's 95% confidence interval of a mean
(Flügel et al., arXiv 2410.17764, Sec. IV), ``mean ± 1.96 · std / sqrt(count)``, computed by :func:`ci_halfwidth`
from a sample standard deviation (``ddof = 1``).

>>> round(float(ci_halfwidth(0.2, 100)), 4)
0.0392
>>> summarize(pd.DataFrame({"g": ["a", "a", "b"], "y": [1.0, 3.0, 5.0]}), "y", by="g")[["g", "mean", "count"]]
   g  mean  count
0  a   2.0      2
1  b   5.0      1
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

Z_95 = 1.96

#: colors of the approaches, the same on every page
PALETTE = {"bp": "#222222", "projection": "#1f77b4", "mean": "#d62728", "sum": "#2ca02c", "fg": "#ff7f0e"}


def theme() -> None:
    """The book's seaborn theme: white grid, paper context, colorblind palette, compact figures."""
    import matplotlib as mpl
    import seaborn as sns

    sns.set_theme(context="paper", style="whitegrid", palette="colorblind", font_scale=1.1)
    mpl.rcParams.update({"figure.dpi": 110, "savefig.dpi": 110, "figure.figsize": (6.4, 3.6),
                         "axes.titlesize": "medium", "legend.frameon": False})


def ci_halfwidth(std, count, z: float = Z_95):
    """Half-width of the confidence interval of a mean: ``z · std / sqrt(count)`` (NaN for ``count < 2``)."""
    std, count = np.asarray(std, dtype=float), np.asarray(count, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(count >= 2, z * std / np.sqrt(np.maximum(count, 1.0)), np.nan)


def add_ci(frame: pd.DataFrame, *, mean: str = "mean", std: str = "std", count: str = "count",
           z: float = Z_95) -> pd.DataFrame:
    """A copy of ``frame`` (one row per group with its mean, std and count) with ``ci``, ``ci_low``, ``ci_high``."""
    out = frame.copy()
    out["ci"] = ci_halfwidth(out[std], out[count], z)
    out["ci_low"] = out[mean] - out["ci"]
    out["ci_high"] = out[mean] + out["ci"]
    return out


def summarize(frame: pd.DataFrame, value: str, by: str | Sequence[str], *, z: float = Z_95) -> pd.DataFrame:
    """Mean, sample std, count and the 95% CI of ``value`` over the rows of each group of ``by``."""
    by = [by] if isinstance(by, str) else list(by)
    grouped = frame.groupby(by, sort=True, dropna=False)[value]
    table = grouped.agg(mean="mean", std="std", count="count").reset_index()
    return add_ci(table, z=z)


def format_ci(mean: float, ci: float, digits: int = 3) -> str:
    """``"0.494 ± 0.003"``; the ± part is dropped when the CI is undefined (one value); values below
    ``10^-digits`` in scientific notation (``"3.2e-05 ± 1.0e-05"``)."""
    if mean != 0 and abs(mean) < 10 ** -digits:  # tiny values (a converged f − f*) in scientific notation
        return f"{mean:.1e}" + (f" ± {ci:.1e}" if ci is not None and math.isfinite(float(ci)) else "")
    if ci is None or not math.isfinite(float(ci)):
        return f"{mean:.{digits}g}" if abs(mean) >= 10 ** digits else f"{mean:.{digits}f}"
    if abs(mean) >= 10 ** digits:
        return f"{mean:.1f} ± {ci:.1f}"
    return f"{mean:.{digits}f} ± {ci:.{digits}f}"


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
