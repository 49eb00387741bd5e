"""A benchmark frame read back: the tables, the cost model, the headline ratios, the targets and the report.

Targets are benchmark figures — ratios within one run, printed in the report and stored in the record (rows of
section ``"summary"``), never asserted by a test. A record is judged by the targets of the device it was measured
on (:func:`targets_for`): :data:`TARGETS` on a CPU, :data:`GPU_TARGETS` on a GPU.

References:
    Flügel et al. arXiv:2410.17764 (RQ4). Baydin et al. Gradients without Backpropagation. arXiv:2202.08587
    (forward gradients "up to twice as fast" as backpropagation).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch

from fg_analysis.bench import cost
from fg_analysis.bench.steps import FG_PHASES, FLOOR_PHASES
from fg_analysis.bench.zeros import ZERO_TANGENT_CASES

__all__ = ["FAST_PATH_TARGETS", "GPU_TARGETS", "TARGETS", "cost_models", "floor_table", "format_report",
           "phase_table", "step_ratio", "step_table", "summary", "summary_rows", "targets_for"]

#: Targets on a CPU: (summary key, comparison, bound, meaning).
TARGETS = (
    ("oneoff_over_step_max", "<=", 1.1,
     "public one-off path (forward_gradient + SGD) within 1.1x of ForwardGradient.step at k in {1, 4, 16}"),
    ("vmap_over_loop_k16", ">=", 1.5,
     "FG step (k=16) at least 1.5x faster than the reference implementation's per-tangent loop"),
    ("projection_over_mean_max", "<=", 1.2, "projection step at most 1.2x a mean step for k <= 16"),
    ("fg1_over_bp", "<=", 2.0, "FG k=1 step at most 2x a BP step"),
    ("fg_memory_growth", "<=", 1.2, "FG peak memory (net) grows at most 1.2x from 2 to 32 hidden layers"),
    ("bp_memory_linearity_r2", ">=", 0.95, "BP peak memory grows linearly with depth (R^2 of a line)"),
)

#: Targets on a GPU. FG k=1 against BP has no bound there: it is reported (Baydin et al. report FG up to 2x faster).
GPU_TARGETS = (
    ("vmap_over_loop_k16", ">=", 3.0, "vmapped FG k=16 step at least 3x faster than the per-tangent loop"),
    ("projection_over_mean_max", "<=", 1.2, "projection step at most 1.2x a mean step for k <= 16"),
    ("fg_memory_growth", "<=", 1.2, "FG peak memory (net) grows at most 1.2x from 2 to 32 hidden layers"),
    ("bp_memory_linearity_r2", ">=", 0.95, "BP peak memory grows linearly with depth (R^2 of a line)"),
    ("batched_over_loop_approximation", ">=", 5.0,
     "batched approximation sweep at least 5x faster than a per-sample loop"),
)


#: The fast path's targets on a CPU (FC-1024, batch 64, one thread; ratios within one run), judged apart from
#: :data:`TARGETS` in ``fast_path_targets_met``: the tangent laws' sampling and the public call against the
#: reference implementation's per-tangent loop and BP.
FAST_PATH_TARGETS = (
    ("vmap_over_loop_k16", ">=", 2.0, "FG step (k=16, projection, normal) at least 2x faster than the loop"),
    ("vmap_rademacher_over_loop_k16", ">=", 3.0, "FG step (k=16, projection, Rademacher) at least 3x faster "
                                                 "than the loop"),
    ("oneoff_over_loop_k16", ">=", 1.5, "public forward_gradient + SGD (k=16, normal) at least 1.5x faster "
                                        "than the loop"),
    ("fg1_over_bp", "<=", 2.0, "FG k=1 step at most 2x a BP step"),
    ("oneoff1_over_bp", "<=", 2.3, "public forward_gradient + SGD at k=1 at most 2.3x a BP step"),
    ("sampling_share_normal_k16", "<=", 0.25, "sampling at most 25% of the k=16 step (normal)"),
    ("sampling_share_rademacher_k16", "<=", 0.10, "sampling at most 10% of the k=16 step (Rademacher)"),
    ("randn_over_rademacher_k16", ">=", 5.0, "Rademacher sampling at least 5x faster than torch.randn of as "
                                             "many entries (k=16)"),
)


def targets_for(device: str) -> tuple[tuple[str, str, float, str], ...]:
    """The targets a record measured on ``device`` (``"cpu"``, ``"cuda"``, ``"cuda:0"``, ...) is judged by.

    Returns:
        :data:`GPU_TARGETS` for a CUDA device, else :data:`TARGETS`.
    """
    return GPU_TARGETS if str(device).startswith("cuda") else TARGETS


def _section(frame: pd.DataFrame, name: str) -> pd.DataFrame:
    return frame[frame["section"] == name] if "section" in frame else frame.iloc[:0]


def _rows(steps: pd.DataFrame, model: str, method: str, aggregator: str, k: int | None, phase: str = "step"):
    selected = steps[(steps.model == model) & (steps.method == method) & (steps.aggregator == aggregator)
                     & (steps.phase == phase)]
    return selected if k is None else selected[selected.k == k]


def _seconds(steps: pd.DataFrame, model: str, method: str, aggregator: str, k: int | None,
             phase: str = "step") -> float:
    selected = _rows(steps, model, method, aggregator, k, phase)
    return float(selected.seconds.median()) if len(selected) else math.nan


def _paired(steps: pd.DataFrame, model: str, method: str, aggregator: str, k: int, column: str,
            fallback: tuple[str, str]) -> float:
    """The paired ratio ``column`` (``over_bp``/``over_step``) of a whole step, or for frames without it the
    ratio of the medians to the step ``fallback = (method, aggregator)``."""
    rows = _rows(steps, model, method, aggregator, k)
    if column in rows and len(rows) and math.isfinite(rows[column].iloc[0]):
        return float(rows[column].iloc[0])
    return _seconds(steps, model, method, aggregator, k) / _seconds(steps, model, *fallback, k)


def step_ratio(frame: pd.DataFrame, model: str, method: str, aggregator: str, k: int, *, over: str = "bp") -> float:
    """``T(method, aggregator, k) / T_over`` of ``model``'s whole steps, the ratio :func:`summary` states: against
    BP's step (``over="bp"``) or the fast path's projection step (``over="step"``) at the same k, paired by round
    where the frame has the pairs (columns ``over_bp``, ``over_step``), else the ratio of the medians; NaN when
    either was not measured."""
    column, fallback = {"bp": ("over_bp", ("bp", "-")), "step": ("over_step", ("vmap", "projection"))}[over]
    return _paired(_section(frame, "step"), model, method, aggregator, k, column, fallback)


def step_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Whole-step medians.

    Returns:
        One row per (model, n, k); columns ``bp`` and ``<method>-<aggregator>`` per variant (seconds).
    """
    steps = _section(frame, "step")
    steps = steps[steps.phase == "step"].copy()
    steps["variant"] = ["bp" if method == "bp" else f"{method}-{aggregator}"
                        for method, aggregator in zip(steps.method, steps.aggregator)]
    return steps.pivot_table(index=["model", "n", "k"], columns="variant", values="seconds").reset_index()


def phase_table(frame: pd.DataFrame, method: str = "vmap", aggregator: str = "projection") -> pd.DataFrame:
    """The fast-path step split into sampling, JVPs, aggregation and update (median seconds).

    Returns:
        One row per (model, k), a column per phase of :data:`fg_analysis.estimator.PHASES`.
    """
    steps = _section(frame, "step")
    steps = steps[(steps.method == method) & (steps.aggregator == aggregator) & steps.phase.isin(FG_PHASES)]
    table = steps.pivot_table(index=["model", "k"], columns="phase", values="seconds")
    return table[[p for p in FG_PHASES if p in table.columns]].reset_index()


def floor_table(frame: pd.DataFrame) -> pd.DataFrame:
    """The bare primitives against the fast path's mean step, per (model, k).

    Returns:
        Columns ``model, k, sample, jvp, update`` (the floor's phases, seconds), ``floor`` (their sum), ``step``
        (the ``vmap`` mean step), ``step_over_floor`` and ``sampling_share`` (sampling over the step).
    """
    floor = _section(frame, "floor")
    if floor.empty:
        return pd.DataFrame(columns=["model", "k", *FLOOR_PHASES, "floor", "step", "step_over_floor",
                                     "sampling_share"])
    table = floor.pivot_table(index=["model", "k"], columns="phase", values="seconds").reset_index()
    steps = _section(frame, "step")
    table["floor"] = table[list(FLOOR_PHASES)].sum(axis=1)
    table["step"] = [_seconds(steps, model, "vmap", "mean", k) for model, k in zip(table.model, table.k)]
    table["step_over_floor"] = table["step"] / table["floor"]
    table["sampling_share"] = table["sample"] / table["step"]
    return table[["model", "k", *FLOOR_PHASES, "floor", "step", "step_over_floor", "sampling_share"]]


def cost_models(frame: pd.DataFrame, config_fit_ks: Sequence[int], model: str) -> dict:
    """Fit :class:`fg_analysis.bench.cost.StepTimeModel` to the fast path's steps of ``model`` on ``config_fit_ks``
    and check it on the other k.

    Returns:
        ``{"model", "n", "bp_seconds", "projection": {...}, "mean": {...}}`` with per aggregator the
        coefficients, the held-out k and the largest relative error there, the break-even k against BP and the
        k of most descent per second (or ``{"error": ...}`` when there are too few k); ``{}`` without steps.
    """
    steps = _section(frame, "step")
    steps = steps[(steps.phase == "step") & (steps.model == model)]
    if steps.empty:
        return {}
    n = int(steps.n.iloc[0])
    bp = float(steps[steps.method == "bp"].seconds.median())
    result = {"model": model, "n": n, "bp_seconds": bp}
    for aggregator, quadratic in (("projection", True), ("mean", False)):
        fg = steps[(steps.method == "vmap") & (steps.aggregator == aggregator)].sort_values("k")
        fit_ks = [k for k in config_fit_ks if k in set(fg.k)]
        try:
            check = cost.held_out_errors(fg.k, fg.seconds, fit_ks, n=n, quadratic=quadratic)
        except ValueError as error:
            result[aggregator] = {"error": str(error)}
            continue
        fitted = cost.fit_step_time(fg.k[fg.k.isin(fit_ks)], fg.seconds[fg.k.isin(fit_ks)], n=n, quadratic=quadratic)
        held = check[check.held_out]
        result[aggregator] = {
            "fixed_s": fitted.fixed, "per_tangent_s": fitted.per_tangent, "quadratic_s": fitted.quadratic,
            "fit_ks": fit_ks, "held_out_ks": [int(k) for k in held.k],
            "held_out_max_abs_error": float(held.relative_error.abs().max()) if len(held) else math.nan,
            "break_even_k": cost.break_even_k(fitted, bp),
            "optimal_k": cost.optimal_k(fitted, n, aggregator, k_max=min(n, 4096)),
        }
    return result


def _compare(value, op: str, bound: float) -> bool:
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        return False
    return value >= bound if op == ">=" else value <= bound


def summary(frame: pd.DataFrame, *, reference_model: str = "fc-1024", fit_ks: Sequence[int] = (1, 2, 4, 8),
            device: str | None = None) -> dict:
    """The headline numbers of a benchmark frame (what the JSON line prints and the record stores).

    Ratios are ``slower / faster`` as named, paired by round where the frame has the pairs:
    ``vmap_over_loop_k16 = T_loop / T_vmap`` (> 1: the fast path is faster), ``fg1_over_bp = T_FG(1) / T_BP``,
    ``oneoff_over_step_k<k> = T_oneoff / T_step``; against the loop ``<variant>_over_loop_k16 = T_loop /
    T_variant`` (each paired with the fast path's step, then divided); ``sampling_share_<law>_k16`` is the step's
    own sampling phase over the step, ``randn_over_<law>_k16`` the floor's ``torch.randn`` into the same buffer
    over that phase. On a CPU, :data:`FAST_PATH_TARGETS` are judged in ``fast_path_targets_met``.

    Args:
        frame: a benchmark frame (its record in ``frame.attrs["record"]`` when read from the cache).
        reference_model, fit_ks: the network the headline numbers are of, and the k the cost model is fitted on.
        device: the device the targets are chosen for (default: the record's).

    Returns:
        A flat dict of numbers (rounded to 4 digits), the environment, and ``targets_met``.
    """
    steps = _section(frame, "step")
    ref = reference_model
    vmap = ("vmap", "projection")
    ks = sorted(int(k) for k in steps[(steps.model == ref) & (steps.method == "vmap")].k.unique() if k <= 16)
    projection_over_mean = {k: 1 / _paired(steps, ref, "vmap", "mean", k, "over_step", vmap) for k in ks}
    oneoff = {int(k): _paired(steps, ref, "oneoff", "projection", int(k), "over_step", vmap)
              for k in sorted(steps[(steps.model == ref) & (steps.method == "oneoff")].k.unique())}
    result = {
        "vmap_over_loop_k16": _paired(steps, ref, "loop", "projection", 16, "over_step", vmap),
        "vmap_over_loop_passes_k16": (_seconds(steps, ref, "loop", "projection", 16, "passes")
                                      / (_seconds(steps, ref, *vmap, 16, "sample")
                                         + _seconds(steps, ref, *vmap, 16, "jvp"))),
        "projection_over_mean_k16": projection_over_mean.get(16, math.nan),
        "projection_over_mean_max": max(projection_over_mean.values()) if projection_over_mean else math.nan,
        **{f"oneoff_over_step_k{k}": value for k, value in oneoff.items()},
        "oneoff_over_step_max": max(oneoff.values()) if oneoff else math.nan,
        # FG k=1 is the single-tangent forward gradient (∇f·v) v: the mean of one tangent, the paper's baseline
        "fg1_over_bp": _paired(steps, ref, "vmap", "mean", 1, "over_bp", ("bp", "-")),
        "fg16_over_bp": _paired(steps, ref, *vmap, 16, "over_bp", ("bp", "-")),
        "oneoff1_over_bp": (_paired(steps, ref, "oneoff", "projection", 1, "over_bp", ("bp", "-"))
                            if len(_rows(steps, ref, "oneoff", "projection", 1)) else math.nan),
    }
    loop = result["vmap_over_loop_k16"]
    floor_sample = _seconds(_section(frame, "floor"), ref, "floor", "mean", 16, "sample")
    for method in ("vmap-rademacher", "oneoff", "oneoff-rademacher"):
        over_step = (_paired(steps, ref, method, "projection", 16, "over_step", vmap)
                     if len(_rows(steps, ref, method, "projection", 16)) else math.nan)
        result[f"{method.replace('-', '_')}_over_loop_k16"] = loop / over_step
    for law, method in (("normal", "vmap"), ("rademacher", "vmap-rademacher")):
        sample = _seconds(steps, ref, method, "projection", 16, "sample")
        result[f"sampling_share_{law}_k16"] = sample / _seconds(steps, ref, method, "projection", 16)
        result[f"randn_over_{law}_k16"] = floor_sample / sample
    for method in ("activity-forward", "activity-oracle"):
        for k in (1, 16):
            key = f"{method.replace('-', '_')}_k{k}_over_bp"
            result[key] = (_paired(steps, ref, method, "projection", k, "over_bp", ("bp", "-"))
                           if len(_rows(steps, ref, method, "projection", k)) else math.nan)
    floors = floor_table(frame)
    for k in (1, 16):
        row = floors[(floors.model == ref) & (floors.k == k)]
        if len(row):
            result[f"sampling_floor_ms_k{k}"] = 1000 * float(row["sample"].iloc[0])
            result[f"sampling_share_k{k}"] = float(row["sampling_share"].iloc[0])
            result[f"step_over_floor_k{k}"] = float(row["step_over_floor"].iloc[0])
    memory = _section(frame, "memory")
    growth, r2 = {}, math.nan
    for mode in ("bp", "fg"):
        rows = memory[memory["mode"] == mode].sort_values("depth")
        if len(rows) >= 2:
            growth[mode] = float(rows.net_bytes.iloc[-1] / rows.net_bytes.iloc[0])
            if mode == "bp":
                line = cost.fit_linear(rows.depth, rows.net_bytes)
                residual = rows.net_bytes - line(rows.depth)
                r2 = float(1 - (residual ** 2).sum() / ((rows.net_bytes - rows.net_bytes.mean()) ** 2).sum())
    probe = memory[memory["mode"] == "probe"] if "mode" in memory else memory
    approximation = _section(frame, "approximation")
    if "stage" not in approximation:
        approximation = approximation.assign(stage="with sampling")

    def approximation_ratio(stage: str) -> float:
        rows = approximation[approximation["stage"] == stage].set_index("method")
        if not {"loop", "batched"} <= set(rows.index):
            return math.nan
        return float(rows.loc["loop", "seconds"] / rows.loc["batched", "seconds"])

    result.update({
        "fg_memory_growth": growth.get("fg", math.nan),
        "bp_memory_growth": growth.get("bp", math.nan),
        "bp_memory_linearity_r2": r2,
        "memory_probe_error": (float(probe.net_bytes.iloc[0] / probe.expected_bytes.iloc[0] - 1)
                               if len(probe) else math.nan),
        "batched_over_loop_approximation": approximation_ratio("aggregation"),
        "batched_over_loop_approximation_with_sampling": approximation_ratio("with sampling"),
    })
    zeros = _section(frame, "zero_tangents")
    for perturbation, k in ZERO_TANGENT_CASES if len(zeros) else ():
        rows = zeros[(zeros.perturbation == perturbation) & (zeros.k == k)].set_index("method").seconds
        result[f"zero_tangent_speedup_{perturbation}_k{k}"] = float(rows["materialized"] / rows["skipped"])
    models = cost_models(frame, fit_ks, ref)
    if "break_even_k" in models.get("projection", {}):
        result["break_even_k_projection"] = models["projection"]["break_even_k"]
        result["optimal_k_projection"] = models["projection"]["optimal_k"]
        result["cost_model_held_out_error"] = models["projection"]["held_out_max_abs_error"]
    environment = frame.attrs.get("record", {}).get("environment", {})
    result["device"] = device or environment.get("device", "cpu")
    result["device_name"] = environment.get("device_name", "unknown")
    result["torch"] = environment.get("versions", {}).get("torch", torch.__version__)
    result["targets_met"] = {key: _compare(result.get(key, math.nan), op, bound)
                             for key, op, bound, _ in targets_for(result["device"])}
    if targets_for(result["device"]) is TARGETS:
        result["fast_path_targets_met"] = {key: _compare(result.get(key, math.nan), op, bound)
                                           for key, op, bound, _ in FAST_PATH_TARGETS}
    return {key: (round(value, 4) if isinstance(value, float) and math.isfinite(value) else value)
            for key, value in result.items()}


def summary_rows(result: dict) -> pd.DataFrame:
    """The numbers of :func:`summary` as rows of section ``"summary"`` (``key, value``; the targets with their
    ``op, bound, met``; on a CPU also one row ``fast_path:<key>`` per :data:`FAST_PATH_TARGETS`), stored with
    the measurements so a record carries its own verdicts.

    Returns:
        The rows.
    """
    targets = {key: (op, bound) for key, op, bound, _ in targets_for(result["device"])}
    rows = []
    for key, value in result.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            op, bound = targets.get(key, ("", np.nan))
            rows.append(dict(section="summary", key=key, value=float(value), op=op, bound=bound,
                             met=result["targets_met"].get(key, np.nan) if op else np.nan))
    for key, op, bound, _ in FAST_PATH_TARGETS if "fast_path_targets_met" in result else ():
        value = result.get(key, math.nan)
        rows.append(dict(section="summary", key=f"fast_path:{key}", value=float(value), op=op, bound=bound,
                         met=result["fast_path_targets_met"][key]))
    return pd.DataFrame(rows)


def _ms(table: pd.DataFrame, keep: Sequence[str] = ("model", "n", "k")) -> pd.DataFrame:
    table = table.copy()
    for column in table.columns:
        if column not in keep and pd.api.types.is_numeric_dtype(table[column]):
            table[column] = 1000 * table[column]
    return table


def format_report(frame: pd.DataFrame, result: dict) -> str:
    """The readable report: step times, the fast path's phases, the floor, activity perturbation, memory,
    approximation throughput, zero tangents and the targets.

    Returns:
        The text.
    """
    lines = []
    record = frame.attrs.get("record", {})
    environment = record.get("environment", {})
    lines.append(f"device: {environment.get('device_name', '?')}  versions: "
                 + ", ".join(f"{k} {v}" for k, v in environment.get("versions", {}).items()
                             if k in ("python", "torch", "numpy")))
    lines.append(f"commit: {environment.get('commit')}  saved: {record.get('saved')}  "
                 f"wall time: {record.get('wall_time_s', float('nan')) or float('nan'):.1f} s")
    with pd.option_context("display.width", 250, "display.max_columns", 30, "display.float_format",
                           lambda x: f"{x:.4g}"):
        lines += ["", "Training step, median milliseconds (gradient + SGD update; vmap = ForwardGradient.step, "
                      "oneoff = forward_gradient + SGD, loop = the reference implementation's per-tangent loop, "
                      "activity-* = GradientSource(perturbation='activity')):",
                  _ms(step_table(frame)).to_string(index=False)]
        lines += ["", "ForwardGradient.step (vmap, projection) by phase, median milliseconds:",
                  _ms(phase_table(frame), keep=("model", "k")).to_string(index=False)]
        floors = floor_table(frame)
        if len(floors):
            shown = _ms(floors, keep=("model", "k", "step_over_floor", "sampling_share"))
            lines += ["", "The floor: torch.randn of k*P normals (sample), one bare vmapped jvp, one addmv (ms), "
                          "against the vmap mean step:", shown.to_string(index=False)]
            ref = floors[floors.model == record.get("config", {}).get("reference_model", "fc-1024")]
            if len(ref):
                last = ref.sort_values("k").iloc[-1]
                lines.append(f"  sampling floor at k = {int(last.k)}: {1000 * last['sample']:.2f} ms, "
                             f"{100 * last.sampling_share:.0f}% of the step; the step takes "
                             f"{last.step_over_floor:.2f}x sampling + JVP + update done bare")
        memory = _section(frame, "memory").copy()
        if len(memory):
            for column in ("peak_bytes", "net_bytes", "parameter_bytes", "tangent_bytes", "expected_bytes"):
                memory[column] = memory[column] / 2 ** 20
            lines += ["", f"Peak memory of one gradient computation, MiB ({memory.memory_method.iloc[0]}; "
                          "net = above parameters, inputs, tangents and the gradient):",
                      memory[["mode", "depth", "width", "batch", "k", "peak_bytes", "net_bytes", "parameter_bytes",
                              "tangent_bytes", "expected_bytes"]].rename(
                          columns=lambda c: c.replace("_bytes", "_MiB")).to_string(index=False)]
        approximation = _section(frame, "approximation")
        if len(approximation):
            lines += ["", "Approximation-quality throughput (projection cosines):",
                      approximation[[c for c in ("method", "stage", "n", "k", "samples", "seconds",
                                                 "samples_per_second", "mean_cosine")
                                     if c in approximation]].to_string(index=False)]
        zeros = _section(frame, "zero_tangents")
        if len(zeros):
            table = zeros.pivot_table(index=["perturbation", "k"], columns="method", values="seconds") * 1000
            lines += ["", "Forward mode with PyTorch's zero tangents materialized or skipped "
                          "(fg_analysis.zero_tangents), median milliseconds:",
                          table.reset_index().to_string(index=False)]
        guided = _section(frame, "guided")
        if len(guided):
            lines += ["", "Guided tangents: FLOPs per sample of the forward pass, the JVPs' tangent passes and the "
                          "auxiliary heads (forward + backward), and forward-mode step milliseconds "
                          "(fg_analysis.bench.guided):",
                      guided[["model", "approach", "jvps", "forward_flops", "jvp_flops", "head_flops", "step_ms",
                              "heads_ms"]].to_string(index=False)]
    gpu = targets_for(result["device"]) is GPU_TARGETS
    model = record.get("config", {}).get("reference_model", "the reference model")
    lines += ["", f"Targets for {'a GPU' if gpu else 'the CPU'}, set for the FC-1024 (measured on {model}; "
                  "benchmark figures, not asserted):"]
    for key, op, bound, meaning in targets_for(result["device"]):
        met = result["targets_met"].get(key)
        lines.append(f"  [{'met' if met else 'MISSED'}] {key} = {result.get(key)} {op} {bound}: {meaning}")
    if "fast_path_targets_met" in result:
        lines += ["", "The fast path's targets (tangent sampling, the public call; benchmark figures, not asserted):"]
        for key, op, bound, meaning in FAST_PATH_TARGETS:
            met = result["fast_path_targets_met"][key]
            lines.append(f"  [{'met' if met else 'MISSED'}] {key} = {result.get(key)} {op} {bound}: {meaning}")
    return "\n".join(lines)
