"""RQ2: gradient descent on closed-form functions with backprop and multi-tangent forward gradients.

The paper's closed-form experiment (Flügel et al., arXiv 2410.17764, Sec. IV-B,
"Closed-form functions"): plain gradient descent ``x ← x − lr · ĝ`` on sphere, Rosenbrock and
Styblinski–Tang in ``R^n``, ``n ∈ {1, 2, 4, …, 1024}``, with ``ĝ`` the true gradient (BP), the single-tangent
forward gradient (FG, k = 1) or the mean / orthogonal projection of ``k ∈ {2, 4, 16}`` forward gradients;
five seeds (seeding only the tangents), the paper's tuned learning rates (``lrs/math.csv``), positions in float32
(the reference's dtype), stopping after 50 consecutive steps whose ``f`` does not decrease against the previous
step (the reference's rule, ``"no-decrease"`` in :mod:`fg_analysis.optimize`), on NaN, or at the step limit. The "custom
tangents" runs repeat
Styblinski–Tang at n = 64 with :class:`~fg_analysis.tangents.FixedAngle` tangents, k ∈ {16, 64}.

One unit of the sweep (:class:`OptimizationRun`) is one (problem, n, approach) with all its seeds, run as one
batch by :func:`fg_analysis.optimize.descend` and cached on its own. :func:`run` returns the traces (one row per
seed and recorded step); :func:`final_values` reduces them to best and last ``f`` per seed, and
:func:`value_table` to ``mean ± 95% CI`` over seeds.

>>> config = OptimizationConfig(problems=("sphere",), dims=(4,), approaches=(("bp", "mean", 1),), seeds=(0,),
...                             angles=())
>>> traces = run(config, cache=ResultsCache(__import__("tempfile").mkdtemp()), progress=False)
>>> row = final_values(traces).iloc[0]
>>> row["approach"], float(row["best_f"])
('BP', 0.0)
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import partial

import numpy as np
import pandas as pd
import torch

from fg_analysis import theory
from fg_analysis.experiments import SCORECARD_COLUMNS, agrees, claim, combine, record_text, tally
from fg_analysis.experiments import learning_rates as lrs
from fg_analysis.experiments.learning_rates import closed_form_rate as paper_learning_rate
from fg_analysis.metrics import FAILS, HOLDS, INCONCLUSIVE, add_ci, ci_halfwidth, compare, format_ci, mean_ci, summarize
from fg_analysis.nets.approaches import PAPER_APPROACHES, approach_label, approach_order
from fg_analysis.optimize import descend
from fg_analysis.problems import get_problem
from fg_analysis.runs.cache import ResultsCache
from fg_analysis.runs.cli import experiment_parser, resolve_common, run_sweep
from fg_analysis.runs.env import resolve_device
from fg_analysis.runs.sweep import sweep
from fg_analysis.tangents import FixedAngle

PROBLEMS = ("sphere", "rosenbrock", "styblinski-tang")


@dataclass(frozen=True)
class OptimizationRun:
    """One unit of the sweep: gradient descent on ``problem`` in ``R^n`` for every seed of ``seeds``.

    ``theta`` (degrees) selects fixed-angle tangents, otherwise they are normal. ``lr=None`` is the paper's
    rate. ``max_steps=None`` is the paper's limit for the problem. ``stopping`` is a rule of
    :data:`fg_analysis.optimize.STOPPING_RULES` and ``dtype`` the positions' dtype by name; both are part of the
    cache key.
    """

    problem: str
    n: int
    method: str
    aggregator: str = "mean"
    k: int = 1
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    max_steps: int | None = None
    patience: int = 50
    stopping: str = "no-decrease"
    dtype: str = "float32"
    mode: str = "oracle"
    record_every: int = 1
    theta: float | None = None
    lr: float | None = None


@dataclass(frozen=True)
class OptimizationConfig:
    """The RQ2 sweep: ``problems × dims × approaches`` plus the fixed-angle runs on ``angle_problem``.

    ``max_steps`` overrides the paper's step limit per problem (pairs ``(problem, steps)``); traces keep about
    ``record_points`` rows per seed (every ``max(1, steps // record_points)``-th step and the last one).
    ``mode`` is ``"forward"`` (real forward-mode AD) or ``"oracle"`` (the same JVPs as ``V ∇f``, faster).
    ``stopping`` and ``dtype`` default to the reference implementation's rule and float32.
    """

    problems: tuple[str, ...] = PROBLEMS
    dims: tuple[int, ...] = tuple(2 ** i for i in range(11))
    approaches: tuple[tuple[str, str, int], ...] = PAPER_APPROACHES
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    max_steps: tuple[tuple[str, int], ...] = ()
    patience: int = 50
    stopping: str = "no-decrease"
    dtype: str = "float32"
    mode: str = "forward"
    record_points: int = 1000
    angle_problem: str = "styblinski-tang"
    angle_dim: int = 64
    angle_tangent_counts: tuple[int, ...] = (16, 64)
    angles: tuple[float, ...] = (15.0, 30.0, 45.0, 60.0, 75.0, 90.0)
    angle_aggregators: tuple[str, ...] = ("mean", "projection")

    @classmethod
    def preset(cls, name: str, *, seed: int = 0) -> "OptimizationConfig":
        """``"paper"``: the paper's grid (n = 2^0..2^10, 5 seeds, full step limits: Rosenbrock up to 25000 steps,
        patience 50) with oracle JVPs (the same numbers as forward mode, which the tests check; a CPU does the
        grid in about an hour this way) and about 100 recorded points per seed and run (the stored traces stay
        small). Its runs are stored in ``results/published`` (``python -m fg_analysis rq2 --preset paper
        --publish``); ``--mode forward`` runs real forward mode.

        ``"quick"``: n ∈ {4, 16, 64}; all eight approaches on sphere and Styblinski–Tang; Rosenbrock with BP, FG,
        mean and projection at k = 16 only and 1000 instead of 25000 steps; fixed angles θ ∈ {15, 45, 90}°; 3
        seeds; oracle JVPs (the same numbers as forward mode, cheaper). ``seed`` shifts the seeds.
        """
        if name == "paper":
            return cls(seeds=tuple(range(seed, seed + 5)), mode="oracle", record_points=100)
        if name == "quick":
            return cls(dims=(4, 16, 64), seeds=tuple(range(seed, seed + 3)), max_steps=(("rosenbrock", 1000),),
                       mode="oracle", angles=(15.0, 45.0, 90.0))
        raise ValueError(f"unknown preset {name!r}; choose 'quick' or 'paper'")

    def steps(self, problem: str) -> int:
        """The step limit of ``problem`` in this config."""
        return dict(self.max_steps).get(problem, get_problem(problem).max_steps)

    def _unit(self, problem, n, method, aggregator, k, theta=None, lr=None) -> OptimizationRun:
        steps = self.steps(problem)
        return OptimizationRun(problem=problem, n=n, method=method, aggregator=aggregator, k=k, seeds=self.seeds,
                               max_steps=steps, patience=self.patience, stopping=self.stopping,
                               dtype=self.dtype, mode=self.mode,
                               record_every=max(1, steps // self.record_points), theta=theta, lr=lr)

    def runs(self) -> list[OptimizationRun]:
        """Every unit: the normal-tangent grid, then the fixed-angle runs.

        The projection with ``k > n`` is left out: the foundation's projection needs ``k <= n`` independent
        tangents, and with ``k >= n`` of them it is the true gradient (BP's direction) anyway.
        """
        units = [self._unit(problem, n, method, aggregator, k)
                 for problem in self.problems for n in self.dims
                 for method, aggregator, k in self._approaches(problem)
                 if not (aggregator == "projection" and k > n)]
        units += [self._unit(self.angle_problem, self.angle_dim, "fg", aggregator, k, theta=float(theta),
                             lr=paper_learning_rate(self.angle_problem, self.angle_dim, method="fg", k=k,
                                                    aggregator=aggregator, tangents=FixedAngle(theta=theta)))
                  for k in self.angle_tangent_counts for aggregator in self.angle_aggregators for theta in self.angles]
        return units

    def _approaches(self, problem: str):
        if problem == "rosenbrock" and self.steps(problem) < get_problem(problem).max_steps:
            # a shortened Rosenbrock run: keep one k per aggregator to stay cheap (see the quick preset)
            return [a for a in self.approaches if a[0] == "bp" or a[2] in (1, 16)]
        return list(self.approaches)


def run_unit(unit: OptimizationRun, *, device: str = "cpu") -> pd.DataFrame:
    """Gradient descent for one unit (all seeds in one batch); the traces of :func:`fg_analysis.optimize.descend`
    with ``lr``, ``gap = f − f*`` and the device."""
    tangents = FixedAngle(theta=unit.theta) if unit.theta is not None else "normal"
    lr = unit.lr if unit.lr is not None else paper_learning_rate(unit.problem, unit.n, method=unit.method, k=unit.k,
                                                                 aggregator=unit.aggregator, tangents=tangents)
    trace = descend(unit.problem, unit.n, method=unit.method, k=unit.k, aggregator=unit.aggregator,
                    tangents=tangents, lr=lr, seeds=unit.seeds, max_steps=unit.max_steps, patience=unit.patience,
                    stopping=unit.stopping, mode=unit.mode, record_every=unit.record_every,
                    dtype=getattr(torch, unit.dtype), device=device)
    trace["lr"] = lr
    trace["gap"] = trace["f"] - get_problem(unit.problem).minimum(unit.n)
    trace["device"] = str(device)
    return trace


def run(config: OptimizationConfig, *, device: str = "cpu", cache: ResultsCache | None = None,
        progress: bool = True, executor=None) -> pd.DataFrame:
    """Every unit of ``config`` through the cache (on ``executor`` when given, see :mod:`fg_analysis.runs.sweep`);
    the concatenated traces with the unit's fields as columns and ``approach`` (a label) and ``tangents``
    (``"normal"`` or ``"fixed-angle"``)."""
    resolved = resolve_device(device)
    cache = cache or ResultsCache()
    frame = sweep(cache, config.runs(), partial(run_unit, device=str(resolved)), device=device,
                        description="RQ2 optimization", progress=progress, executor=executor)
    return _labelled(frame)


def stored(config: OptimizationConfig | None = None, *, cache: ResultsCache | None = None) -> pd.DataFrame | None:
    """The runs of ``config`` (default: the ``paper`` preset) that are stored, as :func:`run` returns them, read
    from the cache only (writable root, then ``results/published``); ``None`` when none is. Nothing is run.

    A sweep still being produced gives the units stored so far: ``frame.attrs`` has ``"stored"`` and ``"units"``
    (how many of the config's units were found, of how many) and ``"records"`` (the record of each stored unit:
    config, environment with device and commit, date saved).
    """
    config = config or OptimizationConfig.preset("paper")
    return (cache or ResultsCache()).stored(config.runs(), prepare=_labelled)


def _labelled(frame: pd.DataFrame) -> pd.DataFrame:
    frame["approach"] = [approach_label(m, a, k) for m, a, k in zip(frame["method"], frame["aggregator"],
                                                                    frame["k"], strict=True)]
    frame["tangents"] = np.where(frame["theta"].isna(), "normal", "fixed-angle")
    frame["stopped"] = frame["stopped"].fillna("")
    return frame


def stored_counts(frame: pd.DataFrame | None, config: OptimizationConfig | None = None) -> pd.DataFrame:
    """Per function (and the fixed-angle runs): how many of the config's units are stored, of how many."""
    config = config or OptimizationConfig.preset("paper")
    have = set() if frame is None else set(
        zip(frame["problem"], frame["n"], frame["approach"], frame["theta"].fillna(-1.0)))
    rows = {}
    for unit in config.runs():
        part = unit.problem if unit.theta is None else f"{unit.problem} (fixed angles)"
        key = (unit.problem, unit.n, approach_label(unit.method, unit.aggregator, unit.k),
               -1.0 if unit.theta is None else unit.theta)
        stored_, total = rows.get(part, (0, 0))
        rows[part] = (stored_ + (key in have), total + 1)
    return pd.DataFrame([{"runs": part, "stored": s, "of": t} for part, (s, t) in rows.items()])


# ------------------------------------------------------------------------------------------------------------
# Reductions


def final_values(traces: pd.DataFrame) -> pd.DataFrame:
    """One row per run and seed: ``best_f`` (lowest f seen), ``last_f`` (f at the last step, NaN if it
    diverged), ``start_f`` (f at x₀), ``left_start`` (whether the run ever went below ``start_f``: a run that
    never did says nothing about its method), ``steps``, ``stopped``, ``minimum`` (f*), ``best_gap = best_f − f*``,
    and the mean ``norm_ratio`` and ``cosine`` of the directions used."""
    keys = ["problem", "n", "method", "aggregator", "k", "approach", "tangents", "theta", "seed"]
    keys = [key for key in keys if key in traces.columns]
    ordered = traces.sort_values("step").copy()
    # |ĝ|/|g| and cos are undefined once the gradient is exactly 0 (sphere at its minimum): average finite ones
    for column in ("norm_ratio", "cosine"):
        ordered[column] = ordered[column].where(np.isfinite(ordered[column]))
    grouped = ordered.groupby(keys, dropna=False, sort=False)
    out = grouped.agg(best_f=("best_f", "last"), last_f=("f", "last"), start_f=("f", "first"), steps=("step", "last"),
                      stopped=("stopped", "last"), lr=("lr", "first"), norm_ratio=("norm_ratio", "mean"),
                      cosine=("cosine", "mean")).reset_index()
    out["left_start"] = out["best_f"] < out["start_f"]
    out["minimum"] = [get_problem(p).minimum(n) for p, n in zip(out["problem"], out["n"], strict=True)]
    out["best_gap"] = out["best_f"] - out["minimum"]
    return out.sort_values(keys).reset_index(drop=True)


def value_table(finals: pd.DataFrame, value: str = "best_f", *, problem: str | None = None,
                tangents: str = "normal") -> pd.DataFrame:
    """``mean ± 95% CI`` over seeds of ``value`` as text: rows (problem, n), columns the approaches; a cell with a
    seed that never left its start point says so."""
    rows = finals[finals["tangents"] == tangents]
    if problem is not None:
        rows = rows[rows["problem"] == problem]
    stats = add_ci(rows.groupby(["problem", "n", "approach"])[value].agg(["mean", "std", "count"]).reset_index())
    stuck = rows.groupby(["problem", "n", "approach"])["left_start"].all().rename("left").reset_index()
    stats = stats.merge(stuck, on=["problem", "n", "approach"])
    stats["text"] = [(format_ci(m, c, 2) if np.isfinite(m) else "diverged") + ("" if left else " (never left x₀)")
                     for m, c, left in zip(stats["mean"], stats["ci"], stats["left"], strict=True)]
    table = stats.pivot(index=["problem", "n"], columns="approach", values="text").fillna("—")
    order = [label for label in approach_order(finals["approach"]) if label in table.columns]
    return table[order]


def lr_ratio_table(finals: pd.DataFrame | None = None, *, problems=PROBLEMS, ks=(2, 4, 16),
                   dims=(4, 16, 64, 256, 1024)) -> pd.DataFrame:
    """Why the tuned rates of mean and projection differ: per (problem, n, k) the paper's ``lr_projection /
    lr_mean`` next to the closed-form norm ratio ``E|mean| / E|P_U g|`` (≈ n/k: the mean overshoots |g| by
    ≈ sqrt(n/k), the projection undershoots by ≈ sqrt(k/n)) and, if ``finals`` is given, the measured mean
    ``|ĝ|/|g|`` of each aggregator along our runs (``norm_ratio`` column of the traces)."""
    rows = []
    for problem in problems:
        for n in dims:
            for k in ks:
                try:
                    lr_mean = lrs.paper_lr("math", function=problem, n=n, method="fg", aggregator="mean", k=k)
                    lr_proj = lrs.paper_lr("math", function=problem, n=n, method="fg", aggregator="projection", k=k)
                except ValueError:
                    continue
                row = {"problem": problem, "n": n, "k": k, "lr mean": lr_mean, "lr projection": lr_proj,
                       "lr ratio (proj/mean)": lr_proj / lr_mean,
                       "E|mean|/E|proj| (theory)": float(theory.expected_norm_ratio("mean", k, n)
                                                         / theory.expected_norm_ratio("projection", k, n))}
                if finals is not None:
                    for aggregator in ("mean", "projection"):
                        found = finals[(finals["problem"] == problem) & (finals["n"] == n) & (finals["k"] == k)
                                       & (finals["aggregator"] == aggregator) & (finals["method"] == "fg")
                                       & (finals["tangents"] == "normal")]
                        row[f"measured |ĝ|/|g| {aggregator}"] = found["norm_ratio"].mean() if len(found) else np.nan
                rows.append(row)
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------------------------------------
# Claims


#: the page anchors of the RQ2 page (``notebooks/rq2_optimization.ipynb``) the scorecard rows link to
SECTIONS = {"best": "rq2_optimization#rq2-best", "tables": "rq2_optimization#rq2-tables",
            "angle": "rq2_optimization#rq2-angle", "rates": "rq2_optimization#rq2-rates",
            "paper": "rq2_optimization#rq2-paper"}


def resolution(minimum: float, dtype: str = "float32") -> float:
    """Differences in f below this are rounding, not results: ``16 · eps(dtype) · max(1, |f*|)`` (float32, the
    reference's dtype, resolves f ≈ −2507 of Styblinski–Tang at n = 64 only to about 2.4e-4; a sphere run at an
    exact 0 and one at an underflowed 1e-30 are the same result).

    >>> f"{resolution(-2506.6):.1e}", f"{resolution(0.0, 'float64'):.1e}"
    ('4.8e-03', '3.6e-15')
    """
    return 16 * float(torch.finfo(getattr(torch, dtype)).eps) * max(1.0, abs(float(minimum)))


def paired_cells(finals: pd.DataFrame, value: str, a: dict, b: dict, *, by: list[str],
                 direction: str = "less") -> pd.DataFrame:
    """Per cell of ``by``, the claim "run ``a`` ends at ``value`` below (``direction="less"``) or above run ``b``"
    tested on the per-seed difference ``a_s − b_s`` (the runs of a cell share seeds, start point and tangent
    streams, so they are paired): its mean and t-interval (:func:`fg_analysis.metrics.mean_ci`) against 0 give
    the verdict (:func:`fg_analysis.metrics.compare`).

    ``a`` and ``b`` select rows by column values (e.g. ``{"aggregator": "projection"}``). A cell is left out of the
    verdict (``verdict`` missing) and says why in ``note``: ``"floor"`` when every seed's ``a`` and ``b`` lie within
    :func:`resolution` of each other (both at the minimum: no evidence either way), ``"stuck"`` when a seed of
    either run never left its start point.
    """

    def select(spec):
        rows = finals
        for column, wanted in spec.items():
            rows = rows[rows[column] == wanted]
        return rows.set_index([*by, "seed"])

    left, right = select(a), select(b)
    joined = left[[value, "left_start", "minimum"]].join(right[[value, "left_start"]].add_suffix("_b"), how="inner")
    joined = joined.dropna(subset=[value, f"{value}_b"])
    rows = []
    for cell, part in joined.groupby(level=by):
        difference = (part[value] - part[f"{value}_b"]).to_numpy(dtype=float)
        mean, ci = mean_ci(difference)
        floor = resolution(float(part["minimum"].iloc[0]))
        note, verdict = "", None
        if not (part["left_start"].all() and part["left_start_b"].all()):
            note = "stuck"
        elif bool((np.abs(difference) <= floor).all()):
            note = "floor"
        else:  # the difference's interval against 0 (an exact number): the scorecard's one comparison rule
            verdict = compare(mean, ci, 0.0, 0.0, direction=direction, resolution=floor)
        cell = cell if isinstance(cell, tuple) else (cell,)
        rows.append({**dict(zip(by, cell, strict=True)), "mean": mean, "ci": ci, "count": len(difference),
                     "verdict": verdict, "note": note})
    return pd.DataFrame(rows, columns=[*by, "mean", "ci", "count", "verdict", "note"])


def paired_tally(cells: pd.DataFrame, per: str | None = None) -> str:
    """How the cells of :func:`paired_cells` split: ``"12 for, 3 ties, 0 against; 5 at the floor, 1 stuck at the
    start (left out)"``, per value of ``per`` when given."""

    def text(part):
        counted = tally(part["verdict"].dropna())
        left_out = [f"{int((part['note'] == note).sum())} {name}" for note, name in
                    (("floor", "at the floor"), ("stuck", "stuck at the start")) if (part["note"] == note).any()]
        return counted + (f"; {', '.join(left_out)} (left out)" if left_out else "")

    if per is None:
        return text(cells)
    return "; ".join(f"{key}: {text(part)}" for key, part in cells.groupby(per, sort=False))


def _cell_stats(finals: pd.DataFrame, value: str = "best_gap") -> pd.DataFrame:
    """Mean and t-based CI over seeds of ``value`` per (problem, n, method, aggregator, k, approach)."""
    keys = ["problem", "n", "method", "aggregator", "k", "approach"]
    stats = summarize(finals, value, keys)
    stats["minimum"] = [get_problem(p).minimum(n) for p, n in zip(stats["problem"], stats["n"], strict=True)]
    return stats


def scorecard(traces: pd.DataFrame, config: OptimizationConfig | None = None, *, record: str = "",
              setup: str | None = None) -> pd.DataFrame:
    """The paper's RQ2 claims checked on ``traces`` (from :func:`run` or :func:`stored`): columns
    :data:`fg_analysis.experiments.SCORECARD_COLUMNS`. Claims whose runs are missing are left out.

    Comparisons of two approaches rest on the per-seed differences of best ``f − f*`` (:func:`paired_cells`: the
    runs share seeds), cells at the floor (:func:`resolution`) or with a run that never left its start left out,
    combined over cells by :func:`fg_analysis.experiments.combine`. ``record`` names the stored records
    the rows rest on ("" for a live run); ``setup`` replaces the computed setup note.
    """
    finals = final_values(traces)
    setup = _setup_note(traces, config) if setup is None else setup
    rows = []
    def add(*args, section, **kwargs):
        rows.append(claim("RQ2", *args, setup, section=SECTIONS[section], record=record, **kwargs))

    normal = finals[finals["tangents"] == "normal"]
    stats = _cell_stats(normal) if len(normal) else pd.DataFrame(columns=["problem", "n", "approach"])
    st = stats[(stats["problem"] == "styblinski-tang") & (stats["n"] == 64)].set_index("approach")
    if "projection k=16" in st.index:
        proj = st.loc["projection k=16"]
        best = normal[(normal["problem"] == "styblinski-tang") & (normal["n"] == 64)
                      & (normal["approach"] == "projection k=16")]["best_f"]
        minimum = float(proj["minimum"])
        near = max(1e-3, resolution(minimum))  # float32 resolves f ≈ −2507 only to a few 1e-4
        add("Styblinski–Tang n=64: projection k=16 reaches the global minimum", f"{minimum:.1f}",
            f"best f {format_ci(best.mean(), float(ci_halfwidth(best.std(), len(best))), 1)} "
            f"({int((best - minimum <= near).sum())}/{len(best)} seeds within {near:.0e} of the minimum)",
            agrees(proj["mean"], proj["ci"], 0.0, resolution=near), section="tables")
        if "FG" in st.index:
            fg = st.loc["FG"]
            bp = f", BP {st.loc['BP', 'mean'] + minimum:.1f}" if "BP" in st.index else ""
            st64 = normal[(normal["problem"] == "styblinski-tang") & (normal["n"] == 64)]
            pair = paired_cells(st64, "best_gap", {"approach": "FG"}, {"approach": "projection k=16"},
                                by=["problem", "n"], direction="greater").iloc[0]
            add("Styblinski–Tang n=64: the single-tangent FG stops far above the minimum, the projection does not",
                "qualitative", f"best f: FG {format_ci(fg['mean'] + minimum, fg['ci'], 1)}, projection k=16 "
                f"{format_ci(proj['mean'] + minimum, proj['ci'], 1)}{bp}; paired by seed, FG − projection "
                f"{format_ci(pair['mean'], pair['ci'], 1)}",
                INCONCLUSIVE if pd.isna(pair["verdict"]) else pair["verdict"], section="tables")

    # the projection ends at least as close to f* as the mean with the same k, per (problem, n, k), paired by seed
    fg_normal = normal[(normal["method"] == "fg") & (normal["k"] > 1)]
    cells = paired_cells(fg_normal, "best_gap", {"aggregator": "projection"}, {"aggregator": "mean"},
                         by=["problem", "n", "k"])
    if len(cells):
        add("With the same k, the projection ends at least as close to f* as the mean (best f − f*)",
            "projection ≥ mean (qualitative)",
            "(n, k) cells, paired by seed, projection closer / tie / mean closer — " + paired_tally(cells, "problem"),
            combine(cells["verdict"].dropna()), section="best")

    # more tangents help the projection (k=16 vs k=2), per problem and n, paired by seed
    projections = fg_normal[fg_normal["aggregator"] == "projection"]
    cells = paired_cells(projections, "best_gap", {"k": 16}, {"k": 2}, by=["problem", "n"])
    if len(cells):
        add("More tangents help: the projection with k=16 ends at least as close to f* as with k=2",
            "qualitative", f"(problem, n) cells, paired by seed, k=16 closer / tie / k=2 closer: "
            f"{paired_tally(cells)}", combine(cells["verdict"].dropna()), section="best")

    # learning rates: the mean's are ~n/k times smaller, as the norm ratio predicts (two exact numbers)
    ratios = lr_ratio_table(problems=("sphere",), ks=(2,), dims=(1024,))
    if not ratios.empty:
        row = ratios.iloc[0]
        quotient = row["lr ratio (proj/mean)"] / row["E|mean|/E|proj| (theory)"]
        largest = lr_ratio_table()["lr ratio (proj/mean)"].max()
        add(f"Tuned learning rates of the projection exceed the mean's by up to {largest:.0f}× because the mean "
            "overshoots |g| by ≈ sqrt(n/k) and the projection undershoots by ≈ sqrt(k/n)",
            f"lr ratio {row['lr ratio (proj/mean)']:.0f} (sphere n=1024, k=2)",
            f"closed-form norm ratio E|mean|/E|proj| = {row['E|mean|/E|proj| (theory)']:.0f} "
            f"({quotient:.2f}× the tuned ratio; holds within a factor 2)",
            HOLDS if 0.5 < quotient < 2 else FAILS, section="rates")

    angle = finals[finals["tangents"] == "fixed-angle"]
    full = angle[(angle["aggregator"] == "projection") & (angle["k"] == angle["n"])]
    if not full.empty:

        gaps = summarize(full, "best_gap", "theta")
        cells = [agrees(m, c, 0.0, resolution=1e-3) for m, c in zip(gaps["mean"], gaps["ci"], strict=True)]
        add("Fixed-angle tangents, Styblinski–Tang n=64: the projection with k = n reaches the minimum at every "
            "angle (it is the true gradient)", f"{full['minimum'].iloc[0]:.1f}",
            "best f − f*: " + ", ".join(f"{max(g, 0.0):.1g} at {t:g}°" for t, g in zip(gaps["theta"], gaps["mean"]))
            + " (the minimum: within 1e-3)", combine(cells), section="angle")
    return pd.DataFrame(rows, columns=list(SCORECARD_COLUMNS))


def setup_markdown(config: OptimizationConfig) -> str:
    """How this run's config differs from the paper's, and which JVPs it uses, as a paragraph."""
    mode = ("real forward-mode JVPs (`torch.func.jvp`)" if config.mode == "forward" else
            "oracle JVPs $d = V\\nabla f$ (the same numbers as forward mode, which the foundation's tests check, "
            "at a fraction of the cost)")
    paper = OptimizationConfig.preset("paper", seed=config.seeds[0])
    differences = []
    if config.dims != paper.dims:
        differences.append(f"dimensions n ∈ {{{', '.join(map(str, config.dims))}}} (paper: 1, 2, 4, …, 1024)")
    if len(config.seeds) != len(paper.seeds):
        differences.append(f"{len(config.seeds)} seeds (paper: 5)")
    for problem, steps in config.max_steps:
        differences.append(f"{problem}: at most {steps} steps (paper: {get_problem(problem).max_steps})"
                           + (", and only BP, FG, mean and projection with k = 16"
                              if steps < get_problem(problem).max_steps else ""))
    if config.angles != paper.angles:
        differences.append(f"fixed angles θ ∈ {{{', '.join(f'{t:g}°' for t in config.angles)}}} "
                           "(paper: 15°, 30°, …, 90°)")
    text = f"**This run** uses {mode}. "
    text += ("It follows the paper's grid." if not differences else
             "It differs from the paper in: " + "; ".join(differences) + ".")
    return text + (" The projection with $k > n$ is not run: with $k \\ge n$ independent tangents it is the true "
                   "gradient (the foundation's projection needs k ≤ n).")


def angle_rate_markdown(finals: pd.DataFrame) -> str:
    """Which rates the fixed-angle runs use and what the projection's rate does, as computed sentences.

    The reference's custom-tangent experiment reads ``lrs/math__custom_tangents.csv``: a rate per angle for the
    mean, and for the projection that table's ``sampler=normal`` row, which differs from Styblinski–Tang's
    normal-tangent rate of ``lrs/math.csv``."""
    rows = finals[(finals["tangents"] == "fixed-angle")]
    projection = rows[rows["aggregator"] == "projection"]
    if projection.empty:
        return ""
    problem, n = projection["problem"].iloc[0], int(projection["n"].iloc[0])
    parts = []
    for k, part in projection.groupby("k"):
        try:
            rate = lrs.paper_lr("math", function=get_problem(problem).name, n=n, method="fg", aggregator="projection",
                                k=int(k))
            main = f"the main table's normal-tangent rate is {rate:.4g}"
        except ValueError:  # the main table has no rate for this k (k = n = 64)
            main = "the main table has no rate for this k"
        floor = resolution(float(part["minimum"].iloc[0]))

        def outcome(gaps: pd.Series) -> str:
            if bool((gaps.abs() <= floor).all()):
                return f"at the minimum to float32's resolution (±{floor:.0e})"
            return f"at best f − f* between {max(gaps.min(), 0.0):.2g} and {gaps.max():.2g}"

        gaps = part.groupby("theta")["best_gap"].mean()
        mean_rows = rows[(rows["aggregator"] == "mean") & (rows["k"] == k)].groupby("theta")["best_gap"].mean()
        text = (f"with k = {int(k)} the projection runs at lr = {part['lr'].iloc[0]:.4g} ({main}) and ends "
                f"{outcome(gaps)} at every angle")
        if len(mean_rows):
            widest = mean_rows.index.max()
            text += f", the mean at {widest:g}° {outcome(mean_rows.loc[[widest]])}"
        parts.append(text)
    return ("The projection's rate is the `sampler=normal` row of the paper's custom-tangent table, which the "
            "reference implementation's custom-tangent experiment reads too: " + "; ".join(parts) + ".")


def lr_ratio_markdown(ratios: pd.DataFrame) -> str:
    """One sentence on :func:`lr_ratio_table`: how well the closed-form norm ratio predicts the tuned ratio."""
    tuned, predicted = np.log(ratios["lr ratio (proj/mean)"]), np.log(ratios["E|mean|/E|proj| (theory)"])
    corr = float(np.corrcoef(tuned, predicted)[0, 1])
    top = ratios.loc[ratios["lr ratio (proj/mean)"].idxmax()]
    return (f"Over all {len(ratios)} (function, n, k) settings with both rates, the log of the paper's ratio and "
            f"the log of the closed-form norm ratio correlate with r = {corr:.2f}; the largest ratio, "
            f"{top['lr ratio (proj/mean)']:.0f} ({top['problem']}, n = {top['n']}, k = {top['k']}), sits next to "
            f"a closed-form {top['E|mean|/E|proj| (theory)']:.0f}.")


def _setup_note(traces: pd.DataFrame, config: OptimizationConfig | None) -> str:
    if config is not None and config == OptimizationConfig.preset("paper", seed=config.seeds[0]):
        return "as in the paper"
    dims = sorted(traces["n"].unique().tolist())
    seeds = traces["seed"].nunique()
    note = f"n ∈ {{{', '.join(map(str, dims))}}}, {seeds} seeds (paper: n = 1..1024, 5 seeds)"
    if config is not None and config.max_steps:
        note += "; " + ", ".join(f"{p} {s} steps (paper {get_problem(p).max_steps})" for p, s in config.max_steps)
    if config is not None:
        note += f"; {config.mode} JVPs"
    return note


def scorecard_rows(preset: str = "quick", *, device: str = "cpu", cache: ResultsCache | None = None,
                   seed: int = 0) -> pd.DataFrame:
    """Run (or read from the cache) the preset's sweep, as the RQ2 notebook does, and return its claims; then,
    read-only, the claims on the stored ``paper`` runs (:func:`stored_rows`; none if none is stored)."""
    config = OptimizationConfig.preset(preset, seed=seed)
    rows = scorecard(run(config, device=device, cache=cache, progress=False), config)
    if preset == "paper":
        return rows
    return pd.concat([rows, stored_rows(cache=cache)], ignore_index=True)


def stored_setup(frame: pd.DataFrame) -> str:
    """How the stored paper-protocol runs of :func:`stored` differ from the paper, with how many are stored."""
    seeds = sorted(frame["seed"].unique().tolist())
    return (f"stored paper-protocol runs, {frame.attrs.get('stored', '?')} of {frame.attrs.get('units', '?')} "
            f"units so far: the paper's grid, step limits and rates, seeds {', '.join(map(str, seeds))}; oracle "
            "JVPs (V∇f, the same numbers as forward mode); about 100 recorded points per seed")


def stored_rows(config: OptimizationConfig | None = None, *, cache: ResultsCache | None = None) -> pd.DataFrame:
    """The RQ2 claims on the stored ``paper`` runs (:func:`stored`, read-only), with the records they rest on;
    no rows (and nothing run) when none is stored. Claims on units not stored yet are left out."""
    frame = stored(config, cache=cache)
    if frame is None:
        return pd.DataFrame(columns=list(SCORECARD_COLUMNS))
    rows = scorecard(frame, record=record_text(frame.attrs["records"]), setup=stored_setup(frame))
    rows["claim"] = rows["claim"] + " (stored paper-protocol runs)"
    return rows


# ------------------------------------------------------------------------------------------------------------
# Figures (matplotlib, imported lazily)


__all__ = ["OptimizationConfig", "OptimizationRun", "final_values", "resolution", "stored",
           "stored_counts", "stored_rows", "stored_setup",
           "angle_rate_markdown", "lr_ratio_markdown", "lr_ratio_table", "paired_cells", "paired_tally", "run",
           "run_unit", "scorecard", "scorecard_rows", "setup_markdown", "value_table"]


# ------------------------------------------------------------------------------------------------------------
# command line


def main(argv: list[str] | None = None) -> int:
    """``python -m fg_analysis rq2 --preset paper --mode oracle --publish``: run (or read) the sweep."""
    parser = experiment_parser("rq2", "RQ2: gradient descent on the closed-form functions", presets=("quick", "paper"))
    parser.add_argument("--mode", choices=("forward", "oracle"), default=None,
                        help="override the preset's JVP mode ('oracle': the same numbers as forward mode, faster)")
    parser.add_argument("--record-points", type=int, default=None,
                        help="override the rows kept per seed and run (the preset's default: 1000)")
    args = parser.parse_args(argv)
    device, cache = resolve_common(parser, args)
    config = OptimizationConfig.preset(args.preset, seed=args.seed)
    if args.mode:
        config = replace(config, mode=args.mode)
    if args.record_points:
        config = replace(config, record_points=args.record_points)
    run_sweep(run, config, args=args, device=device, cache=cache, label="RQ2", units=len(config.runs()))
    return 0
