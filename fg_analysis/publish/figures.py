"""The book's figures: one function per figure, taking the frames the experiments return.

Every figure is sized for the book's page: at most :data:`PAGE_WIDTH_IN` inches wide at the theme's dpi, so it
is shown at its natural size and its tick labels keep the theme's 9-10 pt (a multi-panel figure is split into
one figure per panel instead). Log axes never draw values at machine zero: those are marked at the bottom of the
axis (:func:`mark_floor`) and said so in the legend.

RQ1 and RQ2 panels are drawn by the experiment modules' panel functions on a one-panel selection of the frame;
RQ3 and RQ4 figures, the comparisons with the reference implementation's figures
(:mod:`fg_analysis.experiments.reference`)
and the intro's two illustrations are drawn here.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch

from fg_analysis import bench, theory
from fg_analysis.aggregate import mean, projection
from fg_analysis.bench import cost
from fg_analysis.experiments import approximation, guided, optimization
from fg_analysis.metrics import summarize
from fg_analysis.nets.approaches import approach_order
from fg_analysis.publish import plots
from fg_analysis.publish.plots import PALETTE, band, color_map, errorbars, log2_axis
from fg_analysis.tangents import Normal

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


def _approach_style(label: str, index: int, count: int):
    import matplotlib.pyplot as plt

    if label == "BP":
        return {"color": plots.PALETTE["bp"], "linestyle": "-"}
    return {"color": plt.cm.viridis(index / max(1, count - 1)),
            "linestyle": "--" if label.startswith("mean") else "-"}


# ------------------------------------------------------------------------------------------------ RQ1


def rq1_versus(frame: pd.DataFrame, metric: str, *, x: str = "k", aggregator: str, hue_values=None,
               log_y: bool | None = None):
    """One aggregator's measured ``metric`` against ``x`` with the closed form (RQ1); ``log_y`` as in
    :func:`_rq1_versus`."""
    return _fit(_rq1_versus(frame, metric, x=x, hue_values=hue_values, aggregators=(aggregator,),
                                          log_y=log_y), 4.6)


def rq1_normalization(frame: pd.DataFrame, *, aggregator: str, n_values=(16, 256)):
    """Raw against unit-normalized tangents for one aggregator: cosine and norm ratio against k (RQ1)."""
    return _fit(_rq1_normalization(frame, n_values=n_values, aggregators=(aggregator,)))


def rq1_fixed_angle(frame: pd.DataFrame, *, k: int):
    """Fixed-angle tangents at one k: cosine against the angle, mean and projection (RQ1)."""
    return _fit(_rq1_fixed_angle(frame[frame["k"] == k]), 4.6)


def rq1_laws(frame: pd.DataFrame, *, aggregators=("mean", "projection")):
    """Rademacher against normal tangents (RQ1, beyond the paper): the measured mean cosine over the Gaussian
    closed form (:func:`fg_analysis.experiments.approximation.law_table`; 1, dotted, is the closed form) at each
    k, one row per aggregator and one column per true gradient; side by side at each k one point per n (colours)
    and law (circles normal, squares Rademacher), each with its 95% CI; stars: the Rademacher closed form at
    k = 1 (:func:`fg_analysis.theory.rademacher_single_cosine`). The legend is the figure's, below the panels."""
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    plots.theme()
    table = approximation.law_table(frame)
    gradients = [g for g in approximation.GRADIENTS if g in set(table["gradient"])]
    aggregators = [a for a in aggregators if a in set(table["aggregator"])]
    ns, ks = sorted(table["n"].unique()), sorted(table["k"].unique())
    colors = color_map(ns)
    laws = {"normal": {"marker": "o", "markerfacecolor": "none"}, "rademacher": {"marker": "s"}}
    width = 0.8 / (len(ns) * len(laws))  # the slot of one (n, law) within a k's unit of the x axis

    def position(k, n, law):
        slot = ns.index(n) * len(laws) + list(laws).index(law)
        return ks.index(k) - 0.4 + width * (slot + 0.5)

    fig, axes = plt.subplots(len(aggregators), len(gradients), figsize=(PAGE_WIDTH_IN, 1.2 + 2.2 * len(aggregators)),
                             sharex=True, squeeze=False)
    for row, aggregator in enumerate(aggregators):
        for column, gradient in enumerate(gradients):
            ax = axes[row][column]
            ax.axhline(1.0, color="0.3", linestyle=":", linewidth=1)
            panel = table[(table["aggregator"] == aggregator) & (table["gradient"] == gradient)]
            for _, cell in panel.iterrows():
                errorbars(ax, [position(cell["k"], cell["n"], cell["law"])], [cell["ratio"]], [cell["ratio_ci"]],
                          color=colors[cell["n"]], **laws[cell["law"]])
            exact = panel.dropna(subset=["exact"])
            ax.plot([position(k, n, "rademacher") for k, n in zip(exact["k"], exact["n"], strict=True)],
                    exact["exact"] / exact["gaussian"], linestyle="none", marker="*", markersize=7, color="black")
            ax.set_xticks(range(len(ks)), [str(k) for k in ks])
            ax.grid(False, axis="x")
            if row == 0:
                ax.set_title(_LAW_GRADIENTS[gradient], fontsize="small")
            if row == len(aggregators) - 1:
                ax.set_xlabel("k")
        axes[row][0].set_ylabel(f"{aggregator}:\ncos / Gaussian E[cos]")
    handles = [Line2D([], [], color=colors[n], marker="s", linestyle="none", label=f"n = {n}") for n in ns]
    handles += [Line2D([], [], color="0.3", linestyle="none", label=law, **style) for law, style in laws.items()]
    handles.append(Line2D([], [], color="black", marker="*", markersize=7, linestyle="none",
                          label="Rademacher, closed form"))
    fig.legend(handles=handles, loc="lower center", ncol=4, fontsize="small")
    fig.tight_layout(rect=(0, 0.11, 1, 1))
    return fig


#: the law comparison's true gradients (:data:`fg_analysis.experiments.approximation.GRADIENTS`) as panel titles
_LAW_GRADIENTS = {"ones": "g = all-ones (paper)", "generic": "g generic (Gaussian draw)", "axis": "g = e₁ (an axis)"}


# ------------------------------------------------------------------------------------------------ RQ2


def rq2_convergence(traces: pd.DataFrame, *, problem: str, n: int):
    """f − f* against the step for one function at dimension n (RQ2)."""
    fig = _rq2_convergence(traces, n, problems=(problem,))
    fig.set_size_inches(PAGE_WIDTH_IN, 3.4)
    fig.tight_layout()
    return fig


def rq2_final(finals: pd.DataFrame, *, problem: str, value: str = "best_gap"):
    """Best f − f* against n per approach for one function: the mean over seeds, with bars spanning the seeds'
    range (a t-interval that reaches below 0 cannot be drawn on a log axis); runs that reach the minimum to
    rounding (≤ :data:`FLOOR`) are marked ▽ at the bottom, not drawn down to zero (RQ2)."""
    rows = finals[(finals["tangents"] == "normal") & (finals["problem"] == problem)]
    labels = approach_order(rows["approach"])
    fig, ax = _figure(PAGE_WIDTH_IN, 3.6)
    stats = rows.groupby(["approach", "n"])[value].agg(["mean", "min", "max"]).reset_index()
    marked = False
    for index, label in enumerate(labels):
        cell = stats[stats["approach"] == label].sort_values("n")
        if cell.empty:
            continue
        style = _approach_style(label, index, len(labels))
        shift = 2 ** (0.05 * (index - len(labels) / 2))
        part = cell[cell["mean"] > FLOOR]
        low = np.clip(part["min"], FLOOR, None)
        ax.errorbar(part["n"] * shift, part["mean"], yerr=[part["mean"] - low, part["max"] - part["mean"]],
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
    rows = finals[(finals["tangents"] != "fixed-angle") | (finals["k"] == k)]
    return _fit(_rq2_fixed_angle(rows), 4.6)


# ------------------------------------------------------------------------------------------------ RQ3


#: RQ3's approaches in reading order, each with its own colour index of the colorblind palette (BP is black)
RQ3_COLOURS = {"FG": 1, "mean k=2": 5, "mean k=4": 3, "mean k=16": 4, "projection k=2": 9, "projection k=4": 2,
               "projection k=16": 0}
#: the marker of each number of tangents k on RQ3's figures
RQ3_MARKERS = {1: "o", 2: "^", 4: "s", 16: "D"}
#: the lowest validation error drawn on RQ3's log axis (a band's lower edge below it is cut there)
ERROR_FLOOR = 1e-3


def _rq3_style(label: str) -> dict:
    """One look per approach on every RQ3 figure, told apart three ways: its own colour (:data:`RQ3_COLOURS`;
    grey for others), the line style of its aggregator (BP and the projection solid, the mean dashed, FG
    dotted) and the marker of its k (:data:`RQ3_MARKERS`; BP none)."""
    import seaborn as sns

    if label == "BP":
        return {"color": plots.PALETTE["bp"], "linestyle": "-", "marker": None}
    aggregator, _, k = label.partition(" k=")
    palette = sns.color_palette("colorblind", 10)
    return {"color": palette[RQ3_COLOURS.get(label, 7)],
            "linestyle": {"FG": ":", "mean": "--"}.get(aggregator, "-"),
            "marker": RQ3_MARKERS.get(int(k) if k.isdigit() else 1, "v")}


def _markevery(points: int, index: int) -> tuple[int, int] | int:
    """About eight markers per line, staggered by the line's ``index`` so that lines' markers do not stack."""
    step = max(1, points // 8)
    return (index % step, step) if step > 1 else 1


def rq3_learning_curves(curves: pd.DataFrame, *, network: str, dataset: str, band: bool = True):
    """Validation error (1 − accuracy, log scale, so that 2% and 3% stay apart) per epoch of one network and data
    set (RQ3), from :func:`fg_analysis.experiments.rq3.learning_curves`: the mean over seeds with a 95% CI band
    while every run of the approach goes on, then, thin and without a band, the mean of the runs still going (no
    stopped run's value is carried forward). An approach whose runs the epoch budget ended is marked
    "budget-limited" in the legend."""
    from matplotlib.lines import Line2D
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    group = curves[(curves["network"] == network) & (curves["dataset"] == dataset)]
    labels = approach_order(group["approach"])
    fig, ax = _figure(PAGE_WIDTH_IN, 3.8)
    thinned = False
    for index, label in enumerate(labels):
        part = group[group["approach"] == label].sort_values("epoch")
        style = _rq3_style(label)
        every = part[part["count"] == part["runs"]]
        limited, runs = int(part["budget_limited"].iloc[0]), int(part["runs"].iloc[0])
        name = label + ("" if not limited else " (budget-limited)" if limited == runs
                        else f" ({limited} of {runs} budget-limited)")
        ax.plot(every["epoch"], 1 - every["mean"], label=name, markersize=4,
                markevery=_markevery(len(every), index), **style)
        rest = part[part["epoch"] >= every["epoch"].max()]
        if len(rest) > 1:
            thinned = True
            ax.plot(rest["epoch"], 1 - rest["mean"], color=style["color"], linestyle=style["linestyle"],
                    linewidth=0.8, alpha=0.7)
        if band and every["ci"].notna().any():
            plots.band(ax, every["epoch"], (1 - every["ci_high"]).clip(lower=ERROR_FLOOR),
                       (1 - every["ci_low"]).clip(upper=1.0), color=style["color"])
    if thinned:
        ax.add_line(Line2D([], [], color="0.5", linewidth=0.8, label="thin: runs still going, after one stopped"))
    lowest = float((1 - group["mean"]).min())
    ax.set(title=f"{network} on {dataset}", xlabel="epoch", ylabel="validation error (1 − accuracy)", yscale="log",
           ylim=(max(ERROR_FLOOR, lowest / 1.5), 1.0))
    ax.yaxis.set_major_locator(LogLocator(subs=(1, 2, 5)))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    ax.yaxis.set_minor_formatter(NullFormatter())
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
    labels = [label for label in approach_order(cosines["approach"]) if label != "BP"]
    fig, ax = _figure(5.6, 3.4)
    for index, label in enumerate(labels):
        part = cosines[cosines["approach"] == label].groupby("epoch")["cosine"].mean()
        part = part[part > 0]
        ax.plot(part.index, part.values, label=label, markersize=4, markevery=_markevery(len(part), index),
                **_rq3_style(label))
    ax.set(yscale="log", xlabel="epoch", ylabel="cos(estimate, BP gradient)")
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1))
    fig.tight_layout()
    return fig


def _width_axis(ax, widths) -> None:
    """A base-2 log axis of the FC widths, ticked at each, with room for the dodged points (:func:`_dodge`)."""
    ax.set_xscale("log", base=2)
    ax.set_xticks(list(widths), [f"FC-{int(width)}" for width in widths])
    ax.set_xlim(min(widths) / 1.5, max(widths) * 1.5)
    ax.minorticks_off()


def _dodge(widths, index: int, count: int) -> np.ndarray:
    """The widths shifted a little, the ``index``-th of ``count`` lines apart from the others (on a log axis),
    so that approaches with about the same value stay visible side by side."""
    return np.asarray(widths, dtype=float) * 2 ** (0.06 * (index - (count - 1) / 2))


def rq3_width_gap(differences: pd.DataFrame):
    """Each forward gradient's gap to BP (test accuracy, paired by seed: mean and 95% t interval) against the FC
    width (RQ3), from :func:`fg_analysis.experiments.rq3.width_differences`; a width with no pair of runs yet has
    no point, and an approach with runs at one width only is left out."""
    gaps = differences[(differences["a"] == "BP") & (differences["seeds"] > 0)]
    fig, ax = _figure(PAGE_WIDTH_IN, 3.6)
    labels = [label for label in approach_order(gaps["b"]) if (gaps["b"] == label).sum() > 1]
    for index, label in enumerate(labels):
        part = gaps[gaps["b"] == label].sort_values("width")
        errorbars(ax, _dodge(part["width"], index, len(labels)), part["difference"], part["ci"], label=label,
                  **_rq3_style(label))
    _width_axis(ax, sorted(differences["width"].unique()))
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set(xlabel="width w (784 → w → w → 10)", ylabel="BP accuracy − approach's (paired)")
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1))
    fig.tight_layout()
    return fig


def rq3_width_cosine(cosines: pd.DataFrame):
    """The measured cosine to the BP gradient (mean over the epochs of a run, then mean and 95% t interval over
    the seeds; points) and the activity-space closed form E[cos] for A = 2w + 10 (hollow markers, thin lines)
    against the FC width, log-log (RQ3), from :func:`fg_analysis.experiments.rq3.width_cosines`."""
    fig, ax = _figure(PAGE_WIDTH_IN, 3.8)
    labels = approach_order(cosines["approach"])
    for index, label in enumerate(labels):
        part = cosines[cosines["approach"] == label].sort_values("width")
        style = _rq3_style(label)
        ax.plot(part["width"], part["theory"], color=style["color"], linestyle=style["linestyle"], linewidth=0.8,
                marker=style["marker"], markerfacecolor="none", markersize=5)
        measured = part[part["seeds"] > 0]
        if len(measured):
            errorbars(ax, _dodge(measured["width"], index, len(labels)), measured["cosine"], measured["ci"],
                      label=label, color=style["color"], marker=style["marker"])
    ax.plot([], [], color="0.4", linewidth=0.8, marker="o", markerfacecolor="none", label="closed form, A = 2w + 10")
    _width_axis(ax, sorted(cosines["width"].unique()))
    ax.set(yscale="log", xlabel="width w (784 → w → w → 10)", ylabel="cos(estimate, BP gradient)")
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1))
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------------------------------------ RQ4


def rq4_time_against_k(frame: pd.DataFrame, *, model: str, fit_ks: Sequence[int]):
    """Step time against k: measured medians (points), the fitted cost model T(k) (lines), BP (dashed) (RQ4)."""
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


def rq4_frontier(points: pd.DataFrame, *, clock: str = "wall_time_s"):
    """Validation accuracy against time of the stored MNIST runs, one line per approach (mean over the stored
    seeds, one point per epoch), the points on the accuracy-against-time frontier circled (RQ4).
    ``points`` is :func:`fg_analysis.experiments.rq4.frontier`."""
    fig, ax = _figure(PAGE_WIDTH_IN, 3.8)
    labels = approach_order(points["approach"])
    for index, label in enumerate(labels):
        group = points[points["approach"] == label].sort_values(clock)
        ax.plot(group[clock], group["val_accuracy"], label=label, linewidth=1.2,
                **_approach_style(label, index, len(labels)))
    best = points[points["on_frontier"]]
    ax.plot(best[clock], best["val_accuracy"], linestyle="none", marker="o", markersize=5, markerfacecolor="none",
            color="black", label="frontier")
    ax.set(xscale="log", xlabel="time since the run started (s)" if clock == "wall_time_s" else "time in steps (s)",
           ylabel="validation accuracy")
    ax.legend(fontsize="x-small", ncol=2, loc="lower right")
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------------------------------------ reference


def _reference_scatter(ax, x, y, low, high, *, color, label, floor: float | None = None, marker: str = "o"):
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    low, high = np.asarray(low, dtype=float), np.asarray(high, dtype=float)
    if floor is not None:
        x, y, low, high = (np.maximum(v, floor) for v in (x, y, low, high))
    ax.errorbar(x, y, yerr=[y - low, high - y], linestyle="none", marker=marker, markersize=4, capsize=2,
                elinewidth=0.8, color=color, label=label)


def _diagonal(ax, values):
    values = np.asarray([v for v in values if np.isfinite(v) and v > 0])
    if values.size:
        lo, hi = values.min() / 2, values.max() * 2
        ax.plot([lo, hi], [lo, hi], color="0.4", linewidth=0.8, linestyle="--", label="ours = reference")


def rq2_reference(comparison: pd.DataFrame, *, tangents: str = "normal"):
    """Our best f − f* (mean over seeds; bars: the range over seeds) against the reference implementation's
    one-seed value, per cell, log-log with the diagonal; values at the minimum (≤ :data:`FLOOR`) sit on the
    floor lines (RQ2). ``comparison`` is :func:`fg_analysis.experiments.reference.rq2_table`."""
    rows = comparison[(comparison["status"] == "both") & (comparison["tangents"] == tangents)]
    fig, ax = _figure(PAGE_WIDTH_IN, 4.2)
    for problem, part in rows.groupby("problem", sort=True):
        _reference_scatter(ax, part["reference_gap"], part["ours_gap"], part["ours_gap_low"], part["ours_gap_high"],
                           color=plots.PALETTE.get(problem), label=problem, floor=FLOOR)
    _diagonal(ax, np.maximum(np.r_[rows["reference_gap"], rows["ours_gap"]], FLOOR))
    ax.axhline(FLOOR, color="0.8", linewidth=0.8)
    ax.axvline(FLOOR, color="0.8", linewidth=0.8)
    ax.set(xscale="log", yscale="log", xlabel="reference: best f − f* (one run, seed 0)",
           ylabel="ours: best f − f* (mean, seeds' range)",
           title="fixed-angle tangents" if tangents != "normal" else "every (function, n, approach)")
    ax.plot([], [], color="0.8", label=f"at the minimum (≤ {FLOOR:g})")
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1))
    fig.tight_layout()
    return fig


def rq3_reference(comparison: pd.DataFrame):
    """Our validation cross-entropy at the best epoch (mean over the seeds stored; bars: their range) against
    the reference implementation's one-seed value, per (network, approach), log-log with the diagonal (RQ3).
    ``comparison`` is :func:`fg_analysis.experiments.reference.rq3_table`."""
    rows = comparison[comparison["status"] == "both"]
    labels = approach_order(rows["approach"])
    fig, ax = _figure(5.8, 4.0)
    for label in labels:
        part = rows[rows["approach"] == label]
        style = _rq3_style(label)
        _reference_scatter(ax, part["reference_loss"], part["ours"], part["ours_low"], part["ours_high"],
                           color=style["color"], marker=style["marker"] or "o",
                           label=f"{label}" + (f" ({', '.join(part['network'])})" if part["network"].nunique() > 1
                                               else ""))
    _diagonal(ax, np.r_[rows["reference_loss"], rows["ours"]])
    networks = ", ".join(dict.fromkeys(rows["network"]))
    ax.set(xscale="log", yscale="log", xlabel="reference: validation cross-entropy (one run, seed 0)",
           ylabel="ours: validation cross-entropy", title=f"{networks} on MNIST")
    from matplotlib.ticker import NullFormatter

    for axis in (ax.xaxis, ax.yaxis):  # a span under a decade labels its minor ticks, which then overlap
        axis.set_minor_formatter(NullFormatter())
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1))
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------------------------------------ intro

#: the intro's two-dimensional example: f(x) = x₁² + 4x₂² at x = (1.5, 0.6)
INTRO_POINT = (1.5, 0.6)
#: the intro's three-dimensional example: a gradient and two tangents spanning a plane
INTRO_GRADIENT_3D = (0.6, 0.5, 1.0)
INTRO_TANGENTS_3D = ((1.0, 0.2, 0.1), (0.3, 1.0, -0.2))


def intro_forward_gradients(*, seed: int = 0, count: int = 6):
    """``count`` single-tangent forward gradients ``(g·v) v`` of ``f(x) = x₁² + 4x₂²`` at :data:`INTRO_POINT`,
    their mean and the true gradient, as arrows over the contour lines (intro)."""
    fig, ax = _figure(5.6, 4.2)
    x0 = torch.tensor(INTRO_POINT, dtype=torch.float64)
    g = torch.tensor([2 * x0[0], 8 * x0[1]])                                   # ∇f(x0)
    V = Normal().sample(count, 2, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    single = (V @ g)[:, None] * V                                              # (g·v_i) v_i, one per row
    grid = np.linspace(-1, 4.5, 200), np.linspace(-1, 2.4, 200)
    X1, X2 = np.meshgrid(*grid)
    ax.contour(X1, X2, X1 ** 2 + 4 * X2 ** 2, levels=12, colors="0.85", linewidths=0.8)
    for v, estimate in zip(V, single, strict=True):
        ax.plot(*np.array([x0 - 3 * v, x0 + 3 * v]).T, ":", color="0.7", linewidth=0.8)
        ax.annotate("", xy=(x0 + 0.35 * estimate).numpy(), xytext=x0.numpy(),
                    arrowprops=dict(arrowstyle="->", color="0.45"))
    for vector, color in ((single.mean(0), plots.PALETTE["mean"]), (g, plots.PALETTE["bp"])):
        ax.annotate("", xy=(x0 + 0.35 * vector).numpy(), xytext=x0.numpy(),
                    arrowprops=dict(arrowstyle="->", color=color, linewidth=2))
    ax.plot([], [], color="0.45", label="forward gradients (g·v)v")
    ax.plot([], [], color=plots.PALETTE["mean"], linewidth=2, label=f"their mean (k = {count})")
    ax.plot([], [], color=plots.PALETTE["bp"], linewidth=2, label="true gradient g")
    ax.set(xlim=grid[0][[0, -1]], ylim=grid[1][[0, -1]], aspect="equal", xlabel="$x_1$", ylabel="$x_2$",
           title="arrows scaled by 0.35")
    ax.legend(loc="lower right", fontsize="small")
    fig.tight_layout()
    return fig


def intro_projection_vectors():
    """``(g, V, P_U g, mean)`` of the intro's 3-D example (:data:`INTRO_GRADIENT_3D`, :data:`INTRO_TANGENTS_3D`),
    the projection and the mean computed by :mod:`fg_analysis.aggregate` from the two JVPs alone."""
    g = torch.tensor(INTRO_GRADIENT_3D, dtype=torch.float64)
    V = torch.tensor(INTRO_TANGENTS_3D, dtype=torch.float64)
    d = V @ g
    return g, V, projection(V, d), mean(V, d)


def intro_projection():
    """The plane spanned by two tangents in R³, the gradient, its projection onto the plane and the mean of the
    two forward gradients (intro)."""
    import matplotlib.pyplot as plt

    plots.theme()
    g, V, p, m = intro_projection_vectors()
    fig = plt.figure(figsize=(5.8, 4.6))
    ax = fig.add_subplot(projection="3d")
    s, t = np.meshgrid(np.linspace(-0.4, 1.2, 2), np.linspace(-0.4, 1.2, 2))
    plane = s[..., None] * V[0].numpy() + t[..., None] * V[1].numpy()
    ax.plot_surface(plane[..., 0], plane[..., 1], plane[..., 2], alpha=0.15, color="0.5")
    arrows = ((V[0], "0.4", "$v_1$"), (V[1], "0.4", "$v_2$"), (g, plots.PALETTE["bp"], "$g$"),
              (p, plots.PALETTE["projection"], "$P_U g$"), (m, plots.PALETTE["mean"], "mean"))
    for vector, color, label in arrows:
        ax.quiver(0, 0, 0, *vector.numpy(), color=color, arrow_length_ratio=0.08, lw=2)
        ax.text(*(1.08 * vector).numpy(), label, color=color)
    ax.plot(*np.array([p.numpy(), g.numpy()]).T, ":", color="0.3")
    ax.set(xlim=(0, 1.2), ylim=(0, 1.2), zlim=(0, 1.1), xlabel="$x_1$", ylabel="$x_2$", zlabel="$x_3$")
    ax.view_init(elev=32, azim=-60)
    return fig


# ------------------------------------------------------------------------------------------------ panels


_TITLES = {"cosine": "cos(ĝ, g)", "norm_ratio": "|ĝ| / |g|", "error": "|g − ĝ|", "dot": "ĝ · g"}


def _rq1_versus(frame: pd.DataFrame, metric: str = "cosine", *, x: str = "k", hue_values=None,
                aggregators=("projection", "mean", "sum"), normalize: bool = False, log_y: bool | None = None):
    """One panel per aggregator: measured ``metric`` (mean ± 95% CI, points) against ``x`` (``"k"`` or ``"n"``)
    for several values of the other variable, with the closed form (lines) and the 95% band of the MEAN over
    the cell's samples around it (``± t_{0.975, samples-1} std/sqrt(samples)``, shaded; raw tangents only).
    ``log_y``: a log y axis (default: for every metric but the cosine; on a log-log plot the cosine's
    ``sqrt(k/n)`` law is a straight line)."""
    import matplotlib.pyplot as plt

    hue = "n" if x == "k" else "k"
    rows = frame[(frame["law"] == "normal") & (frame["normalize"] == normalize) & (frame["metric"] == metric)]
    values = sorted(rows[hue].unique()) if hue_values is None else [v for v in hue_values if v in set(rows[hue])]
    colors = color_map(values)
    aggregators = [a for a in aggregators if a in set(rows["aggregator"])]
    fig, axes = plt.subplots(1, len(aggregators), figsize=(4.2 * len(aggregators), 3.6), squeeze=False,
                             sharey=metric == "cosine")
    for ax, aggregator in zip(axes[0], aggregators, strict=True):
        for value in values:
            cell = rows[(rows["aggregator"] == aggregator) & (rows[hue] == value)].sort_values(x)
            if cell.empty:
                continue
            errorbars(ax, cell[x], cell["mean"], cell["ci"], color=colors[value], label=f"{hue} = {value}")
            if not normalize and metric in ("cosine", "norm_ratio"):
                grid = np.unique(np.geomspace(cell[x].min(), cell[x].max(), 60).round())
                if aggregator == "projection" and x == "k":
                    grid = grid[grid <= value]
                k, n = (grid, value) if x == "k" else (value, grid)
                samples = float(cell["count"].iloc[0])
                mean, half = approximation.theory_columns(aggregator, metric, k, n, samples)
                ax.plot(grid, mean, color=colors[value], linewidth=1)
                band(ax, grid, mean - half, mean + half, color=colors[value], alpha=0.3)
        log2_axis(ax, "x")
        if (metric != "cosine") if log_y is None else log_y:
            ax.set_yscale("log")
        ax.set_xlabel(x)
        ax.set_title(f"{aggregator}{' (unit tangents)' if normalize else ''}")
    axes[0][0].set_ylabel(_TITLES.get(metric, metric))
    axes[0][-1].legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize="small")  # beside the curves
    fig.tight_layout()
    return fig


def _rq1_normalization(frame: pd.DataFrame, *, n_values=(16, 256), aggregators=("mean", "sum")):
    """Raw (solid) against unit-normalized (dashed) tangents for mean and sum: cosine and norm ratio vs k."""
    import matplotlib.pyplot as plt

    rows = frame[(frame["law"] == "normal") & frame["aggregator"].isin(aggregators)]
    n_values = [n for n in n_values if n in set(rows["n"])]
    colors = color_map(n_values)
    fig, axes = plt.subplots(1, 2 * len(aggregators), figsize=(3.6 * 2 * len(aggregators), 3.4), squeeze=False)
    for column, (aggregator, metric) in enumerate((a, m) for a in aggregators for m in ("cosine", "norm_ratio")):
        ax = axes[0][column]
        for n in n_values:
            for normalize, style in ((False, "-"), (True, "--")):
                cell = rows[(rows["aggregator"] == aggregator) & (rows["n"] == n) & (rows["metric"] == metric)
                            & (rows["normalize"] == normalize)].sort_values("k")
                errorbars(ax, cell["k"], cell["mean"], cell["ci"], color=colors[n], linestyle=style,
                          marker="o" if not normalize else "s",
                          label=f"n = {n}, {'unit' if normalize else 'raw'}")
        log2_axis(ax, "x")
        if metric == "norm_ratio":
            ax.set_yscale("log")
        ax.set_xlabel("k")
        ax.set_title(f"{aggregator}: {_TITLES[metric]}")
    axes[0][0].legend(loc="upper left", bbox_to_anchor=(0, -0.3), ncol=2, fontsize="x-small")  # below the curves
    fig.tight_layout()
    return fig


def _rq1_fixed_angle(frame: pd.DataFrame):
    """Fixed-angle tangents (n = 64): cosine against θ per k, mean and projection, with the normal-tangent
    closed form of each as a dotted line."""
    import matplotlib.pyplot as plt

    rows = frame[(frame["law"] == "fixed-angle") & (frame["metric"] == "cosine")]
    ks = sorted(rows["k"].unique())
    fig, axes = plt.subplots(1, len(ks), figsize=(3.8 * len(ks), 3.4), squeeze=False, sharey=True)
    for ax, k in zip(axes[0], ks, strict=True):
        for aggregator in ("mean", "projection"):
            cell = rows[(rows["k"] == k) & (rows["aggregator"] == aggregator)].sort_values("theta")
            if cell.empty:
                continue
            n = int(cell["n"].iloc[0])
            errorbars(ax, cell["theta"], cell["mean"], cell["ci"], color=PALETTE[aggregator], linestyle="-",
                      label=aggregator)
            ax.axhline(float(theory.expected_cosine(aggregator, k, n)), color=PALETTE[aggregator], linestyle=":",
                       linewidth=1)
        ax.set_title(f"n = {n}, k = {k}")
        ax.set_xlabel("angle θ to the first tangent (°)")
        ax.set_xticks(sorted(rows["theta"].unique()))
    axes[0][0].set_ylabel("cos(ĝ, g)")
    axes[0][0].legend(loc="upper left", bbox_to_anchor=(0, -0.3), ncol=2, fontsize="small")  # below the curves
    fig.tight_layout()
    return fig


def _rq2_colors(labels) -> dict:
    """The colours of :func:`fg_analysis.publish.figures.rq2_final` for the same labels (one palette on the page)."""
    labels = list(labels)
    return {label: _approach_style(label, index, len(labels))["color"] for index, label in enumerate(labels)}


def _rq2_convergence(traces: pd.DataFrame, n: int, *, problems=optimization.PROBLEMS):
    """One panel per problem at dimension ``n``: ``f − f*`` against the step (log scale), mean over seeds
    (line) with the range over seeds (shaded). A run that stopped early is drawn up to its last step."""
    import matplotlib.pyplot as plt

    rows = traces[(traces["tangents"] == "normal") & (traces["n"] == n)]
    problems = [p for p in problems if p in set(rows["problem"])]
    labels = approach_order(rows["approach"])
    colors = _rq2_colors(labels)
    fig, axes = plt.subplots(1, len(problems), figsize=(4.4 * len(problems), 3.6), squeeze=False)
    for ax, problem in zip(axes[0], problems, strict=True):
        top = 1e-16
        for label in labels:
            run_rows = rows[(rows["problem"] == problem) & (rows["approach"] == label)]
            if run_rows.empty:
                continue
            gap = run_rows.pivot_table(index="step", columns="seed", values="gap").ffill()
            gap = gap.where(gap > 0)  # exact zeros (sphere) cannot be drawn on a log scale
            style = "--" if label.startswith("mean") else "-"
            ax.plot(gap.index, gap.mean(axis=1), color=colors[label], linestyle=style, linewidth=1.2, label=label)
            ax.fill_between(gap.index, gap.min(axis=1), gap.max(axis=1), color=colors[label], alpha=0.15,
                            linewidth=0)
            top = max(top, float(gap.max().max()))
        ax.set_yscale("log")
        ax.set_ylim(max(ax.get_ylim()[0], 1e-16), 3 * top)  # below 1e-16 of f's scale is rounding
        ax.set_xlabel("step")
        ax.set_title(f"{problem}, n = {n}")
    axes[0][0].set_ylabel("f − f*")
    axes[0][-1].legend(fontsize="x-small", loc="upper left", bbox_to_anchor=(1.02, 1))
    fig.tight_layout()
    return fig


def _rq2_fixed_angle(finals: pd.DataFrame):
    """Fixed-angle tangents: best ``f − f*`` against θ per k, mean and projection (mean ± 95% CI over seeds)."""
    import matplotlib.pyplot as plt

    rows = finals[finals["tangents"] == "fixed-angle"].copy()
    rows["best_gap"] = rows["best_gap"].clip(lower=1e-12)
    ks = sorted(rows["k"].unique())
    fig, axes = plt.subplots(1, len(ks), figsize=(4.0 * len(ks), 3.4), squeeze=False, sharey=True)
    for ax, k in zip(axes[0], ks, strict=True):
        stats = summarize(rows[rows["k"] == k], "best_gap", ["aggregator", "theta"])
        for aggregator in ("mean", "projection"):
            cell = stats[stats["aggregator"] == aggregator]
            lower = np.minimum(cell["ci"].fillna(0), cell["mean"] - 1e-12)
            ax.errorbar(cell["theta"], cell["mean"], yerr=[lower, cell["ci"].fillna(0)], color=PALETTE[aggregator],
                        marker="o", markersize=4, capsize=2, elinewidth=1, label=aggregator)
        ax.set_yscale("log")
        ax.set_title(f"{rows['problem'].iloc[0]}, n = {int(rows['n'].iloc[0])}, k = {k}")
        ax.set_xlabel("angle θ to the first tangent (°)")
        ax.set_xticks(sorted(rows["theta"].unique()))
    axes[0][0].set_ylabel("best f − f*")
    axes[0][0].legend(fontsize="small")
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------------------------------------ guided tangents


_GUIDED_COLORS = {"random": "#d62728", "guided": "#1f77b4", "output": "#2ca02c"}
_GUIDED_NAMES = {"random": "random k", "guided": "guesses (heads + output) + k random",
                 "output": "output guess + k random"}


def _guided_axes(width: float = 6.4, height: float = 3.6):
    import matplotlib.pyplot as plt

    plots.theme()
    return plt.subplots(figsize=(width, height))


def _symlog_jvps(ax) -> None:
    ax.set_xscale("symlog", base=2, linthresh=1)
    ticks = [t for t in (0, 1, 4, 16, 64, 256) if t <= ax.get_xlim()[1]]
    ax.set_xticks(ticks, [str(t) for t in ticks])


def guided_theory(frame: pd.DataFrame, *, n: int, metric: str = "cos2"):
    """Measured ``E[cos²]`` (``metric="cos2"``) or ``cos(E ĝ, g)`` (``"mean_cosine"``) against the JVPs, one
    color per guess angle θ (points ± 95% CI), the closed form as lines; random tangents alone dashed."""
    rows = frame[frame["n"] == n]
    thetas = sorted(rows["theta"].unique())
    colors = plots.color_map(thetas, "viridis")
    fig, ax = _guided_axes()
    measured, expected = ("cos2_mean", "theory_cos2") if metric == "cos2" else ("mean_cosine", "theory_mean_cosine")
    for theta in thetas:
        part = rows[(rows["theta"] == theta) & (rows["approach"] == "guess + k random")].sort_values("jvps")
        ci = part["cos2_ci"] if metric == "cos2" else 1.96 * part["mean_cosine_se"]
        plots.errorbars(ax, part["jvps"], part[measured], ci, color=colors[theta], label=f"guess at θ = {theta:g}°")
        ax.plot(part["jvps"], part[expected], color=colors[theta], linewidth=1)
    random = rows[rows["approach"] == "random"].groupby("jvps", as_index=False)[[measured, expected]].mean()
    ax.plot(random["jvps"], random[expected], color="0.3", linestyle="--", linewidth=1, label="random tangents only")
    ax.plot(random["jvps"], random[measured], "x", color="0.3", markersize=4)
    plots.log2_axis(ax, "x")
    ax.set(xlabel="JVPs (1 guess + k random, or k + 1 random)",
           ylabel="E[cos²(ĝ, g)]" if metric == "cos2" else "cos(E[ĝ], g)", title=f"n = {n}")
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1))
    fig.tight_layout()
    return fig


def guided_network(frame: pd.DataFrame, *, network: str, checkpoint: int, metric: str = "cos2"):
    """Per-sample activity ``E[cos²]`` (``"cos2"``, with the closed form at each sample's guess cosine as lines)
    or the weight cosine (``"weight"``, with the direction of the expected estimate dotted) against the JVPs."""
    rows = frame[(frame["network"] == network) & (frame["checkpoint"] == checkpoint) & (frame["approach"] != "stage")]
    rows = rows.groupby(["approach", "k", "jvps"], as_index=False).mean(numeric_only=True)
    fig, ax = _guided_axes()
    for approach in ("random", "output", "guided"):
        part = rows[rows["approach"] == approach].sort_values("jvps")
        if part.empty:
            continue
        color = _GUIDED_COLORS[approach]
        if metric == "cos2":
            plots.errorbars(ax, part["jvps"], part["cos2_mean"], part["cos2_ci"], color=color,
                            label=_GUIDED_NAMES[approach])
            ax.plot(part["jvps"], part["theory_cos2"], color=color, linewidth=1)
        else:
            plots.errorbars(ax, part["jvps"], part["weight_cos_mean"], part["weight_cos_ci"], color=color,
                            label=_GUIDED_NAMES[approach])
            ax.plot(part["jvps"], part["weight_mean_cosine"], color=color, linewidth=1, linestyle=":")
    bp_line = "lines: closed form at each sample's ρ" if metric == "cos2" else "dotted: cos(E[ĝ], BP gradient)"
    ax.plot([], [], color="0.4", linestyle="-" if metric == "cos2" else ":", label=bp_line)
    _symlog_jvps(ax)
    ax.set(xlabel="JVPs per step", ylim=(0, 1.02), title=f"{network} after {checkpoint} BP epoch(s)",
           ylabel="E[cos²] per sample (activities)" if metric == "cos2" else "cos(ĝ, BP gradient) (weights)")
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1))
    fig.tight_layout()
    return fig


def guided_training(frame: pd.DataFrame, *, network: str = "FC-256", metric: str = "val_accuracy",
                    x: str = "epoch"):
    """``metric`` of one network per approach against epochs or training seconds (``x="train_time_s"``): the
    mean over seeds, with the 95% t interval as a band when there are several."""
    import matplotlib.pyplot as plt

    curves = guided.learning_curves(frame[frame["network"] == network], metric)
    fig, ax = _guided_axes()
    palette = plt.cm.tab10
    for index, label in enumerate(guided._label_order(curves["label"])):
        part = curves[curves["label"] == label].sort_values("epoch")
        color = plots.PALETTE["bp"] if label == "BP" else palette(index % 10)
        jvps = int(part["jvps"].iloc[0])
        where = part["train_time_s"] if x == "train_time_s" else part["epoch"]
        ax.plot(where, part["mean"], marker="o", markersize=3, color=color,
                linestyle="--" if label.startswith("random") else "-",
                label=label if label == "BP" else f"{label} ({jvps} JVPs)")
        if part["ci"].notna().any():
            low, high = (part["ci_low"], part["ci_high"]) if "accuracy" not in metric else (
                part["ci_low"].clip(0, 1), part["ci_high"].clip(0, 1))  # an accuracy's interval within [0, 1]
            ax.fill_between(where, low, high, color=color, alpha=0.15, linewidth=0)
    ax.set(xlabel="training seconds (steps only)" if x == "train_time_s" else "epoch",
           ylabel=metric.replace("_", " "), title=network)
    if metric == "val_loss":
        ax.set_yscale("log")
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1))
    fig.tight_layout()
    return fig
