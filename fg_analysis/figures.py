"""The book's figures: one function per figure, taking the frames the experiments return.

Every figure is sized for the book's page: at most :data:`PAGE_WIDTH_IN` inches wide at the theme's dpi, so it
is shown at its natural size and its tick labels keep the theme's 9-10 pt (a multi-panel figure is split into
one figure per panel instead). Log axes never draw values at machine zero: those are marked at the bottom of the
axis (:func:`mark_floor`) and said so in the legend.

RQ1 and RQ2 panels are drawn by the experiment modules' panel functions on a one-panel selection of the frame;
RQ3 and RQ4 figures are drawn here.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from fg_analysis import plots

#: widest figure, inches; at the theme's 110 dpi that is 704 px, inside the book's text column
PAGE_WIDTH_IN = 6.4
#: a value at or below this counts as exactly at the minimum on a log axis (f − f* of a converged run)
FLOOR = 1e-12


def _figure(width: float = PAGE_WIDTH_IN, height: float = 3.6):
    import matplotlib.pyplot as plt

    plots.theme()
    return plt.subplots(figsize=(min(width, PAGE_WIDTH_IN), height))


def _fit(fig, width: float = PAGE_WIDTH_IN):
    """Shrink a figure made elsewhere to the page width (keeping its aspect) and lay it out."""
    w, h = fig.get_size_inches()
    if w > width:
        fig.set_size_inches(width, h * width / w)
    fig.tight_layout()
    return fig


def mark_floor(ax, x, y, *, floor: float = FLOOR, color=None, label: str | None = None):
    """Draw the points with ``y <= floor`` as open triangles at the bottom of a log axis (not as lines to 0)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    at_floor = np.isfinite(y) & (y <= floor)
    if at_floor.any():
        ax.plot(x[at_floor], np.full(at_floor.sum(), floor), linestyle="none", marker="v", markersize=6,
                markerfacecolor="none", color=color, label=label)
    return at_floor


def order(labels) -> list[str]:
    """Approach labels in reading order: BP, FG, then each aggregator by k (``"mean k=4"``)."""
    def key(label: str):
        if label == "BP":
            return (0, "", 0)
        if label == "FG":
            return (1, "", 1)
        aggregator, _, k = label.partition(" k=")
        return (2, aggregator, int(k) if k.isdigit() else 0)

    return sorted(set(labels), key=key)


def _approach_style(label: str, index: int, count: int):
    import matplotlib.pyplot as plt

    if label == "BP":
        return {"color": plots.PALETTE["bp"], "linestyle": "-"}
    return {"color": plt.cm.viridis(index / max(1, count - 1)),
            "linestyle": "--" if label.startswith("mean") else "-"}


# ------------------------------------------------------------------------------------------------ RQ1


def rq1_versus(frame: pd.DataFrame, metric: str, *, x: str = "k", aggregator: str, hue_values=None):
    """One aggregator's measured ``metric`` against ``x`` with the closed form (RQ1)."""
    from fg_analysis.experiments import approximation

    return _fit(approximation.plot_versus(frame, metric, x=x, hue_values=hue_values, aggregators=(aggregator,)),
                4.6)


def rq1_normalization(frame: pd.DataFrame, *, aggregator: str, n_values=(16, 256)):
    """Raw against unit-normalized tangents for one aggregator: cosine and norm ratio against k (RQ1)."""
    from fg_analysis.experiments import approximation

    return _fit(approximation.plot_normalization(frame, n_values=n_values, aggregators=(aggregator,)))


def rq1_fixed_angle(frame: pd.DataFrame, *, k: int):
    """Fixed-angle tangents at one k: cosine against the angle, mean and projection (RQ1)."""
    from fg_analysis.experiments import approximation

    return _fit(approximation.plot_fixed_angle(frame[frame["k"] == k]), 4.6)


# ------------------------------------------------------------------------------------------------ RQ2


def rq2_convergence(traces: pd.DataFrame, *, problem: str, n: int):
    """f − f* against the step for one function at dimension n (RQ2)."""
    from fg_analysis.experiments import optimization

    fig = optimization.plot_convergence(traces, n, problems=(problem,))
    fig.set_size_inches(PAGE_WIDTH_IN, 3.4)
    fig.tight_layout()
    return fig


def rq2_final(finals: pd.DataFrame, *, problem: str, value: str = "best_gap"):
    """Best f − f* against n per approach for one function, mean ± 95% CI over seeds; runs that reach the
    minimum to rounding (≤ :data:`FLOOR`) are marked ▽ at the bottom, not drawn down to zero (RQ2)."""
    from fg_analysis.experiments import optimization
    from fg_analysis.metrics import summarize

    rows = finals[(finals["tangents"] == "normal") & (finals["problem"] == problem)]
    labels = optimization._label_order(rows) if hasattr(optimization, "_label_order") else order(rows["approach"])
    fig, ax = _figure(PAGE_WIDTH_IN, 3.6)
    stats = summarize(rows, value, ["approach", "n"])
    marked = False
    for index, label in enumerate(labels):
        cell = stats[stats["approach"] == label].sort_values("n")
        if cell.empty:
            continue
        style = _approach_style(label, index, len(labels))
        shift = 2 ** (0.05 * (index - len(labels) / 2))
        above = cell["mean"] > FLOOR
        low = np.clip(cell["mean"] - cell["ci"].fillna(0), FLOOR, None)
        high = cell["mean"] + cell["ci"].fillna(0)
        part = cell[above]
        ax.errorbar(part["n"] * shift, part["mean"], yerr=[part["mean"] - low[above], high[above] - part["mean"]],
                    marker="o", markersize=4, capsize=2, elinewidth=1, label=label, **style)
        marked |= mark_floor(ax, cell["n"] * shift, cell["mean"], color=style["color"]).any()
    if marked:
        ax.plot([], [], "v", markerfacecolor="none", color="0.3", label=f"at the minimum (≤ {FLOOR:g})")
    plots.log2_axis(ax, "x")
    ax.set(yscale="log", xlabel="n", ylabel="best f − f*", title=problem)
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1))
    fig.tight_layout()
    return fig


def rq2_fixed_angle(finals: pd.DataFrame, *, k: int):
    """Fixed-angle tangents at one k: best f − f* against θ (RQ2)."""
    from fg_analysis.experiments import optimization

    rows = finals[(finals["tangents"] != "fixed-angle") | (finals["k"] == k)]
    return _fit(optimization.plot_fixed_angle(rows), 4.6)


# ------------------------------------------------------------------------------------------------ RQ3


def rq3_learning_curves(curves: pd.DataFrame, *, network: str, dataset: str, band: bool = True):
    """Validation accuracy per epoch of one network and data set, mean over seeds with a 95% CI band (RQ3)."""
    group = curves[(curves["network"] == network) & (curves["dataset"] == dataset)]
    labels = order(group["approach"])
    fig, ax = _figure(PAGE_WIDTH_IN, 3.6)
    for index, label in enumerate(labels):
        part = group[group["approach"] == label].sort_values("epoch")
        style = _approach_style(label, index, len(labels))
        ax.plot(part["epoch"], part["mean"], label=label, marker="o" if len(part) < 8 else None, markersize=3,
                **style)
        if band and part["ci"].notna().any():
            plots.band(ax, part["epoch"], part["ci_low"], part["ci_high"], color=style["color"])
    ax.set(title=f"{network} on {dataset}", xlabel="epoch", ylabel="validation accuracy", ylim=(0, 1))
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1))
    fig.tight_layout()
    return fig


def rq3_gap(gap: pd.DataFrame):
    """BP's mean test accuracy minus each forward gradient's, against k (FG is k = 1) (RQ3)."""
    fig, ax = _figure(5.2, 3.4)
    for (network, dataset), setup in gap.groupby(["network", "dataset"], sort=False):
        for aggregator, marker in (("mean", "s"), ("projection", "o")):
            part = setup[(setup["aggregator"] == aggregator) | (setup["approach"] == "FG")].sort_values("k")
            ax.plot(part["k"], part["gap"], marker=marker, label=f"{aggregator}, {network} on {dataset}",
                    color=plots.PALETTE[aggregator], linestyle="--" if aggregator == "mean" else "-")
    plots.log2_axis(ax)
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set(xlabel="tangents k", ylabel="BP accuracy − FG accuracy")
    ax.legend(fontsize="small")
    fig.tight_layout()
    return fig


def rq3_cosine(cosines: pd.DataFrame):
    """Cosine of each estimate to the BP gradient per epoch (mean over seeds), log scale (RQ3)."""
    labels = [label for label in order(cosines["approach"]) if label != "BP"]
    fig, ax = _figure(5.6, 3.4)
    for index, label in enumerate(labels):
        part = cosines[cosines["approach"] == label].groupby("epoch")["cosine"].mean()
        part = part[part > 0]
        ax.plot(part.index, part.values, label=label, **_approach_style(label, index + 1, len(labels) + 1))
    ax.set(yscale="log", xlabel="epoch", ylabel="cos(estimate, BP gradient)")
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1))
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------------------------------------ RQ4


def rq4_time_against_k(frame: pd.DataFrame, *, model: str, fit_ks: Sequence[int]):
    """Step time against k: measured medians (points), the fitted cost model T(k) (lines), BP (dashed) (RQ4)."""
    from fg_analysis import cost

    steps = frame[(frame["section"] == "step") & (frame["phase"] == "step") & (frame["model"] == model)]
    n = int(steps["n"].iloc[0])
    grid = np.geomspace(1, steps["k"].max(), 100)
    fig, ax = _figure(PAGE_WIDTH_IN, 3.8)
    for (method, aggregator), group in steps[steps["method"] != "bp"].groupby(["method", "aggregator"]):
        group = group.groupby("k", as_index=False)["seconds"].median().sort_values("k")
        points = ax.plot(group["k"], 1000 * group["seconds"], "o", label=f"FG {method}, {aggregator}")
        fit = [k for k in fit_ks if k in set(group["k"])]
        if method == "vmap" and len(fit) >= 3:
            chosen = group[group["k"].isin(fit)]
            fitted = cost.fit_step_time(chosen["k"], chosen["seconds"], n=n, quadratic=aggregator == "projection")
            ax.plot(grid, 1000 * fitted(grid), "-", color=points[0].get_color(), alpha=0.6)
    ax.axhline(1000 * steps[steps["method"] == "bp"]["seconds"].median(), color=plots.PALETTE["bp"], ls="--",
               label="BP")
    ax.plot([], [], "-", color="0.5", label=f"T(k) fitted on k ∈ {{{', '.join(map(str, fit_ks))}}}")
    ax.set(xscale="log", yscale="log", xlabel="tangents k", ylabel="ms per training step",
           title=f"{model} (n = {n:,})")
    plots.log2_axis(ax, "x")
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1))
    fig.tight_layout()
    return fig


def rq4_breakdown(frame: pd.DataFrame, *, model: str):
    """The vmapped projection's FG step split into sampling, JVPs, aggregation and update, per k (RQ4)."""
    from fg_analysis import bench

    table = bench.phase_table(frame)
    table = table[table["model"] == model].set_index("k")
    phases = [p for p in bench.FG_PHASES if p in table.columns]
    fig, ax = _figure(5.6, 3.4)
    bottom = np.zeros(len(table))
    positions = np.arange(len(table))
    for phase in phases:
        values = 1000 * table[phase].to_numpy(dtype=float)
        ax.bar(positions, values, bottom=bottom, label=phase)
        bottom += np.nan_to_num(values)
    ax.set_xticks(positions, [str(int(k)) for k in table.index])
    ax.set(xlabel="tangents k", ylabel="ms per step", title=f"{model}: where an FG step's time goes")
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1))
    fig.tight_layout()
    return fig


def rq4_memory(frame: pd.DataFrame):
    """Peak memory of one gradient computation against depth, FG and BP (RQ4)."""
    memory = frame[(frame["section"] == "memory") & frame["mode"].isin(["bp", "fg"])]
    fig, ax = _figure(5.6, 3.4)
    for mode, group in memory.groupby("mode"):
        group = group.sort_values("depth")
        label = "BP" if mode == "bp" else f"FG (k = {int(group['k'].iloc[0])})"
        color = plots.PALETTE["bp"] if mode == "bp" else plots.PALETTE["fg"]
        ax.plot(group["depth"], group["peak_bytes"] / 2 ** 20, "o-", label=label, color=color)
    width, batch = int(memory["width"].iloc[0]), int(memory["batch"].iloc[0])
    ax.set(xlabel="hidden layers", ylabel="peak memory (MiB)", title=f"width {width}, batch {batch}")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize="small")
    fig.tight_layout()
    return fig
