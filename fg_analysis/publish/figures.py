"""The book's figures: one function per figure, taking the frames the experiments return.

Every figure is sized for the book's page: at most :data:`PAGE_WIDTH_IN` inches wide at the theme's dpi, so it
is shown at its natural size and its tick labels keep the theme's 9-10 pt (a multi-panel figure is split into
one figure per panel instead). Log axes never draw values at machine zero: those are marked at the bottom of the
axis (:func:`mark_floor`) and said so in the legend.

RQ1 and RQ2 panels are drawn by the experiment modules' panel functions on a one-panel selection of the frame;
RQ3 and RQ4 figures, the comparisons with the reference implementation's figures (:mod:`fg_analysis.reference`)
and the intro's two illustrations are drawn here.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from fg_analysis import plots
from fg_analysis.labels import approach_order

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
    :func:`fg_analysis.experiments.approximation.plot_versus`."""
    from fg_analysis.experiments import approximation

    return _fit(approximation.plot_versus(frame, metric, x=x, hue_values=hue_values, aggregators=(aggregator,),
                                          log_y=log_y), 4.6)


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
    from fg_analysis.experiments import optimization

    rows = finals[(finals["tangents"] != "fixed-angle") | (finals["k"] == k)]
    return _fit(optimization.plot_fixed_angle(rows), 4.6)


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
    floor lines (RQ2). ``comparison`` is :func:`fg_analysis.reference.rq2_table`."""
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
    ``comparison`` is :func:`fg_analysis.reference.rq3_table`."""
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
    import torch

    from fg_analysis.tangents import Normal

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
    import torch

    from fg_analysis.aggregate import mean, projection

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
