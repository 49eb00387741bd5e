"""RQ4: what do multiple tangents cost? The chapter's data, read from stored benchmarks and training runs.

Flügel et al. (arXiv 2410.17764, RQ4 "What are the trade-offs of using multiple tangents?"). The measurements
are made by :mod:`fg_analysis.bench` (``python -m fg_analysis bench --quick|--full --publish``) and stored with
their device, versions and commit under ``results/published/BenchConfig``; the training runs by
:mod:`fg_analysis.experiments.rq3` (preset ``mnist-fc``: FC-256 on MNIST). This module is what the RQ4 page and the
scorecard read:

* :func:`claims_benchmark`: the one stored record every RQ4 claim reads (the page's figures, summary and Baydin
  section, and the scorecard), with its headline numbers :func:`headline`; :func:`benchmark`: the page's live
  smoke measurement; :func:`stored_benchmark`: the best stored record of a preset;
* the tables :func:`step_table`, :func:`phase_table`, :func:`floor_table`, :func:`activity_table`, the cost model
  :func:`cost_models` and the numbers :func:`summary`;
* from the stored MNIST runs (:func:`training_runs`, partial sweeps included): the accuracy-against-wall-time
  frontier (:func:`frontier`), the time to a validation accuracy per approach (:func:`time_to_accuracy`) and
  what both say on Baydin et al.'s "up to twice as fast" (:func:`baydin_sentence`);
* :func:`scorecard_rows`: the RQ4 claims checked on the stored records; nothing is measured or trained. A row's
  ``source`` says whose claim it is: ``"paper"`` (Flügel et al.), ``"Baydin et al."``, or
  :data:`fg_analysis.experiments.PROJECT_TARGET` for this project's own benchmark targets
  (:func:`fg_analysis.bench.targets_for`).

>>> rows = scorecard_rows("quick")
>>> set(rows["question"]) <= {"RQ4"}
True

References:
    Flügel, Coquelin, Weiel, Debus, Streit, Götz. Beyond Backpropagation: Optimization with Multi-Tangent
    Forward Gradients. arXiv:2410.17764. Baydin, Pearlmutter, Syme, Wood, Torr. Gradients without
    Backpropagation. arXiv:2202.08587.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from fg_analysis.bench import BenchConfig, cost, run
from fg_analysis.bench.report import cost_models, floor_table, phase_table, step_table, summary, targets_for
from fg_analysis.experiments import PROJECT_TARGET, SCORECARD_COLUMNS, claim, record_text, rq3
from fg_analysis.experiments.learning_rates import model_key
from fg_analysis.nets.approaches import approach_label, approach_order
from fg_analysis.runs.cache import ResultsCache

__all__ = ["BAYDIN", "HELD_OUT_TOLERANCE", "TARGET_ACCURACY", "activity_table", "baydin_sentence", "benchmark",
           "claims_benchmark", "cost_models", "floor_table", "frontier", "headline", "phase_table", "record_name",
           "scorecard", "scorecard_rows", "step_table", "stored_benchmark", "summary", "time_to_accuracy",
           "training_runs"]

#: the largest relative error of the cost model at held-out k for which the scorecard says "holds"
HELD_OUT_TOLERANCE = 0.2

#: the validation accuracy of :func:`time_to_accuracy` unless another is asked for
TARGET_ACCURACY = 0.9

#: who claimed forward gradients "up to twice as fast" as backpropagation
BAYDIN = "Baydin et al. (arXiv:2202.08587)"

_PRESETS = {"quick": "quick", "paper": "paper", "full": "paper", "live": "live"}


# ------------------------------------------------------------------------------------------------ benchmark


def benchmark(preset: str = "quick", *, device: str = "cpu", seed: int = 0, refresh: bool | None = None,
              cache: ResultsCache | None = None, progress: bool = False) -> pd.DataFrame:
    """The page's live smoke measurement: the small ``live`` run for the page's ``quick`` preset (measured afresh
    unless ``refresh=False``), the ``paper`` preset read from the cache when stored (``refresh=None``: the default
    for each). It shows that this build's code paths run and what they cost now; the claims read
    :func:`claims_benchmark` instead.

    Returns:
        The benchmark frame with its record in ``frame.attrs["record"]`` and its config in
        ``frame.attrs["config"]``.
    """
    config = BenchConfig.from_preset("live" if preset == "quick" else "paper", device=device, seed=seed)
    frame = run(config, cache=cache, refresh=(preset == "quick") if refresh is None else refresh,
                progress=progress)
    frame.attrs["config"] = config
    return frame


def stored_benchmark(preset: str = "quick", *, device: str = "cpu",
                     cache: ResultsCache | None = None) -> pd.DataFrame | None:
    """The stored benchmark that best matches ``preset`` and ``device``; nothing is measured.

    Walks the verified ``BenchConfig`` entries of the cache (writable root and published folder,
    :meth:`fg_analysis.runs.cache.ResultsCache.records`) and ranks them by: same preset, not the notebook's small
    ``live`` run, same device type (``"auto"`` counts as either), newest.

    Returns:
        The frame with its record in ``frame.attrs["record"]``, or ``None`` when none is stored.
    """
    cache = cache or ResultsCache()
    entries = list(cache.records(BenchConfig))
    if not entries:
        return None
    wanted = _PRESETS.get(preset, preset)

    def rank(entry) -> tuple:
        record = entry[1]
        stored_preset = record["config"].get("preset")
        stored_device = record.get("environment", {}).get("device", record["config"].get("device"))
        return (stored_preset == wanted, stored_preset != "live", device in ("auto", stored_device),
                record.get("saved", ""))

    frame, record = max(entries, key=rank)
    frame.attrs["record"] = record
    return frame


def claims_benchmark(*, device: str = "cpu", cache: ResultsCache | None = None) -> pd.DataFrame | None:
    """The one stored benchmark every RQ4 claim reads: the page's figures, summary and Baydin section, and the
    scorecard's rows, whatever the page's preset.

    It is the full benchmark (``python -m fg_analysis bench --full --publish``, preset ``paper``): the paper's
    networks (FC-256/1024/4096, ResNet-18, the ViT), k up to 64, so that the cost model fitted on k ≤ 16 is
    checked on k = 32 and 64, and depths 2 to 32 for the memory. The quick record (k ≤ 16, tiny ResNet/ViT) is
    read only when no full one is stored (:func:`stored_benchmark` of preset ``"full"``).

    Returns:
        The frame with its record in ``frame.attrs["record"]``, or ``None`` when no benchmark is stored.
    """
    return stored_benchmark("full", device=device, cache=cache)


def record_name(frame: pd.DataFrame) -> str:
    """Which benchmark record a frame is, in words: ``"the full benchmark BenchConfig 0cc24a30a1ae5df2 (commit
    98eaebc; saved 2026-12-01)"`` (preset ``paper`` is named ``full``, as the command's flag); "" without one."""
    record = frame.attrs.get("record")
    return f"the {_preset(record)} benchmark {record_text([record])}" if record else ""


def _preset(record: dict) -> str:
    preset = record.get("config", {}).get("preset", "?")
    return "full" if preset == "paper" else preset


def headline(frame: pd.DataFrame) -> dict:
    """The numbers a benchmark frame's claims state: :func:`fg_analysis.bench.summary` for the reference network,
    fit k and device of its record (``frame.attrs["record"]``; FC-1024, k ≤ 8 and the CPU without one), with
    ``model`` and ``fit_ks`` added.

    Returns:
        The flat dict of :func:`fg_analysis.bench.summary` plus ``model`` and ``fit_ks``.
    """
    record = frame.attrs.get("record", {})
    config = record.get("config", {})
    model, fit_ks = config.get("reference_model", "fc-1024"), tuple(config.get("fit_ks", (1, 2, 4, 8)))
    device = record.get("environment", {}).get("device", config.get("device", "cpu"))
    return {**summary(frame, reference_model=model, fit_ks=fit_ks, device=device), "model": model, "fit_ks": fit_ks}


def activity_table(frame: pd.DataFrame) -> pd.DataFrame:
    """What RQ3 trains against weight perturbation and BP, per FC net and k: median step milliseconds of BP, the
    weight-perturbed fast path (projection), activity perturbation with forward-mode and with oracle JVPs
    (projection), and each over BP (paired by round).

    Returns:
        One row per (model, k) that has activity-perturbation steps.
    """
    steps = frame[(frame["section"] == "step") & (frame["phase"] == "step")] if "section" in frame else frame.iloc[:0]
    rows = []
    variants = {"weight": ("vmap", "projection"), "activity forward": ("activity-forward", "projection"),
                "activity oracle": ("activity-oracle", "projection")}
    for (model, k), group in steps.groupby(["model", "k"]):
        if not (group["method"] == "activity-forward").any():
            continue
        row = {"model": model, "k": int(k), "bp_ms": 1000 * float(group[group["method"] == "bp"]["seconds"].median())}
        for name, (method, aggregator) in variants.items():
            chosen = group[(group["method"] == method) & (group["aggregator"] == aggregator)]
            row[f"{name} (ms)"] = 1000 * float(chosen["seconds"].median()) if len(chosen) else math.nan
            row[f"{name} / BP"] = (float(chosen["over_bp"].iloc[0]) if len(chosen) and "over_bp" in chosen
                                   else row[f"{name} (ms)"] / row["bp_ms"])
        rows.append(row)
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------------------------ training runs


def training_runs(cache: ResultsCache | None = None) -> pd.DataFrame | None:
    """The stored MNIST runs of RQ3's ``mnist-fc`` preset (FC-256), as many as are stored; nothing is trained.

    The whole sweep when every unit is stored (:func:`fg_analysis.experiments.rq3.stored`); otherwise every
    verified ``TrainingRun`` record of an FC-256 on MNIST (:meth:`fg_analysis.runs.cache.ResultsCache.records`), the
    newest per (approach, seed).

    Returns:
        One row per run and epoch (``approach``, ``seed``, ``epoch``, ``val_accuracy``, ``wall_time_s``,
        ``train_time_s``, ``mode``, ...), the records in ``attrs["records"]``; ``None`` when none is stored.
    """
    cache = cache or ResultsCache()
    whole = rq3.stored(rq3.RQ3Config.preset("mnist-fc"), cache=cache)
    if whole is not None:
        return whole
    found: dict[tuple, tuple[pd.DataFrame, dict]] = {}
    for frame, record in cache.records("TrainingRun"):
        config = record.get("config", {})
        if (config.get("model"), config.get("width"), config.get("dataset"), config.get("max_train")) != (
                "fc", 256, "mnist", None):
            continue
        key = (approach_label(config["method"], config["aggregator"], int(config["k"])), config["seed"])
        if key not in found or record.get("saved", "") > found[key][1].get("saved", ""):
            found[key] = (frame, record)
    if not found:
        return None
    frames, records = [], []
    for (label, _), (frame, record) in sorted(found.items()):
        frame = frame.copy()
        for field, value in record["config"].items():
            if field != "class" and field not in frame.columns and not isinstance(value, (list, dict)):
                frame[field] = value
        frame["network"] = model_key("fc", 256)
        frame["approach"] = label
        frames.append(frame)
        records.append(record)
    runs = pd.concat(frames, ignore_index=True)
    runs.attrs["records"] = records
    return runs


def _mean_curves(runs: pd.DataFrame, clock: str) -> pd.DataFrame:
    """Mean over seeds of ``clock`` and the validation accuracy per (approach, epoch) (epochs every seed ran)."""
    counts = runs.groupby("approach")["seed"].nunique()
    curves = runs.groupby(["approach", "epoch"]).agg(**{clock: (clock, "mean"),
                                                        "val_accuracy": ("val_accuracy", "mean"),
                                                        "seeds": ("seed", "nunique")}).reset_index()
    curves = curves[curves["seeds"] == curves["approach"].map(counts)]
    return curves.drop(columns="seeds")


def frontier(runs: pd.DataFrame, *, clock: str = "wall_time_s") -> pd.DataFrame:
    """The accuracy-against-wall-time frontier of the stored runs.

    Every (approach, epoch) is a point (mean over seeds of the time since the run started and of the validation
    accuracy); a point is on the frontier when no other point is as fast with a higher accuracy
    (:func:`fg_analysis.bench.cost.pareto_frontier`).

    Args:
        runs: :func:`training_runs`.
        clock: ``"wall_time_s"`` (training and evaluation) or ``"train_time_s"`` (the steps alone).

    Returns:
        Columns ``approach, epoch, <clock>, val_accuracy, on_frontier``, by time.
    """
    points = _mean_curves(runs, clock)
    best = cost.pareto_frontier(points, cost_column=clock, value_column="val_accuracy")
    points["on_frontier"] = points.index.isin(best.index)
    return points.sort_values(clock).reset_index(drop=True)


def time_to_accuracy(runs: pd.DataFrame, target: float = TARGET_ACCURACY, *,
                     clock: str = "wall_time_s") -> pd.DataFrame:
    """How long each approach takes to reach ``target`` validation accuracy, against BP.

    Per run, the time at the first epoch whose validation accuracy is at least ``target``; per approach the
    mean over the seeds that reached it.

    Returns:
        One row per approach (reading order): ``approach, seeds, reached, epoch, seconds, over_bp, epochs_run,
        best_val_accuracy``; ``seconds`` is NaN when no seed reached the target.
    """
    rows = []
    for (approach, seed), run_frame in runs.groupby(["approach", "seed"]):
        run_frame = run_frame.sort_values("epoch")
        hit = run_frame[run_frame["val_accuracy"] >= target]
        rows.append({"approach": approach, "seed": seed, "reached": len(hit) > 0,
                     "epoch": int(hit["epoch"].iloc[0]) if len(hit) else np.nan,
                     "seconds": float(hit[clock].iloc[0]) if len(hit) else np.nan,
                     "epochs_run": int(run_frame["epoch"].max()),
                     "best_val_accuracy": float(run_frame["val_accuracy"].max())})
    per_run = pd.DataFrame(rows)
    table = per_run.groupby("approach").agg(seeds=("seed", "nunique"), reached=("reached", "sum"),
                                            epoch=("epoch", "mean"), seconds=("seconds", "mean"),
                                            epochs_run=("epochs_run", "max"),
                                            best_val_accuracy=("best_val_accuracy", "max")).reset_index()
    bp = table.loc[table["approach"] == "BP", "seconds"]
    table["over_bp"] = table["seconds"] / (float(bp.iloc[0]) if len(bp) else np.nan)
    order = {label: i for i, label in enumerate(approach_order(table["approach"]))}
    table = table.sort_values("approach", key=lambda s: s.map(order)).reset_index(drop=True)
    table["reached"] = table["reached"].astype(int)
    table.attrs["target"] = target
    return table[["approach", "seeds", "reached", "epoch", "seconds", "over_bp", "epochs_run", "best_val_accuracy"]]


def _faster(ratio: float) -> str:
    return f"{1 / ratio:.2f}× as fast as BP" if ratio < 1 else f"{ratio:.2f}× as long as BP"


def baydin_sentence(bench_frame: pd.DataFrame | None, runs: pd.DataFrame | None, *,
                    target: float = TARGET_ACCURACY) -> str:
    """What the measurements say on Baydin et al.'s claim that forward gradients are "up to twice as fast" as
    backpropagation, as sentences computed from the measured ratios.

    Args:
        bench_frame: a benchmark frame, normally :func:`claims_benchmark`: the per-step ratios of FG k = 1 to BP
            on its reference network (:func:`headline`, the numbers of the scorecard's row), its record named.
        runs: :func:`training_runs` (the time to ``target`` validation accuracy of FG against BP).
        target: the accuracy of the time-to-accuracy ratio.

    Returns:
        The sentences ("" when neither is available).
    """
    parts = []
    if bench_frame is not None and "section" in bench_frame:
        numbers = headline(bench_frame)
        weight, activity = numbers["fg1_over_bp"], numbers["activity_forward_k1_over_bp"]
        if math.isfinite(weight):
            record = bench_frame.attrs.get("record", {})
            device = record.get("environment", {}).get("device_name", "this machine")
            stored = f", in {record_name(bench_frame)}" if record else ""
            text = (f"{BAYDIN} report forward gradients up to twice as fast as backpropagation. Per training step "
                    f"of {numbers['model']} on {device}{stored}, a single-tangent forward gradient takes "
                    f"{_faster(weight)} with weight perturbation")
            if math.isfinite(activity):
                text += f" and {_faster(activity)} with activity perturbation in forward mode"
            best = min(r for r in (weight, activity) if math.isfinite(r))
            text += (". " + ("Per step, the claim holds here: at best " + f"{1 / best:.2f}× BP's speed" +
                             (" (within the claimed 2×)." if 1 / best <= 2 else ", beyond the claimed 2×.")
                             if best < 1 else
                             f"Per step, the claim does not hold here: the fastest forward gradient is still "
                             f"{best:.2f}× BP's step time."))
            parts.append(text)
    if runs is not None and len(runs):
        table = time_to_accuracy(runs, target).set_index("approach")
        modes = "/".join(sorted(set(runs.loc[runs["approach"] != "BP", "mode"].astype(str)))) if "mode" in runs else "?"
        if "BP" in table.index and "FG" in table.index:
            bp, fg = table.loc["BP"], table.loc["FG"]
            how = (", which take the directional derivatives from a BP gradient, so the wall times carry BP's cost "
                   "plus the estimator's, not forward mode's" if "oracle" in modes else "")
            if fg["reached"] and bp["reached"]:
                ratio = fg["seconds"] / bp["seconds"]
                parts.append(f"In the stored MNIST runs (FC-256, {modes} JVPs{how}), FG reached {target:.0%} "
                             f"validation accuracy after {fg['seconds']:.0f} s (epoch {fg['epoch']:.0f}), BP after "
                             f"{bp['seconds']:.0f} s (epoch {bp['epoch']:.0f}): FG took {ratio:.1f}× BP's wall "
                             "time" + (", so to a given accuracy FG is slower, whatever its cost per step."
                                       if ratio > 1 else "."))
            elif bp["reached"]:
                parts.append(f"In the stored MNIST runs (FC-256, {modes} JVPs{how}), BP reached {target:.0%} "
                             f"validation accuracy after {bp['seconds']:.0f} s; FG never did in "
                             f"{fg['epochs_run']:.0f} epochs (best {fg['best_val_accuracy']:.1%}).")
    return " ".join(parts)


# ------------------------------------------------------------------------------------------------ scorecard


def scorecard(frame: pd.DataFrame, runs: pd.DataFrame | None = None) -> pd.DataFrame:
    """The RQ4 claims checked on one stored benchmark frame (its record in ``frame.attrs["record"]``, named in
    every row) and, when given, on the stored MNIST runs.

    Three kinds of row, told apart by ``source``: the paper's claims (memory flat in depth for forward mode and
    linear for BP; step time linear in k plus the projection's n·k² term), Baydin et al.'s (FG faster than BP, per
    step and to an accuracy) and this project's own benchmark targets (``"project target"``: the bounds of
    :func:`fg_analysis.bench.targets_for` for the record's device, on the vmapped JVPs and the projection's cost).

    Returns:
        Rows with the columns :data:`fg_analysis.experiments.SCORECARD_COLUMNS`.
    """
    record = frame.attrs.get("record", {})
    config = record.get("config", {})
    environment = record.get("environment", {})
    result = headline(frame)
    reference, fit_ks = result["model"], result["fit_ks"]
    bounds = {key: bound for key, _, bound, _ in targets_for(result["device"])}
    name = environment.get("device_name") or config.get("machine") or result["device"]
    setup = (f"{name}: stored {_preset(record)} benchmark (torch {environment.get('versions', {}).get('torch', '?')}); "
             f"weight perturbation on {reference} at batch {_batch(frame, reference)} (paper: GPU)")
    source = record_text([record])
    rows = []

    def add(text: str, paper: str, key: str, ours: str, holds, *, section: str, by: str = "paper") -> None:
        if isinstance(result.get(key), (int, float)) and math.isfinite(result[key]):
            rows.append(claim("RQ4", text, paper, ours, bool(holds), setup, source=by,
                              section=f"rq4_tradeoffs#{section}", record=source))

    memory = frame[frame["section"] == "memory"] if "section" in frame else frame.iloc[:0]
    depths = sorted(int(d) for d in memory["depth"].dropna().unique()) if "depth" in memory else []
    span = f"{depths[0]} to {depths[-1]} hidden layers" if depths else "the depths measured"
    growth, r2 = result.get("bp_memory_growth"), result.get("bp_memory_linearity_r2")
    linear = bounds.get("bp_memory_linearity_r2", 0.95)
    add("BP's peak memory grows linearly with depth", "qualitative (stored activations)",
        "bp_memory_linearity_r2", f"×{growth:.1f} from {span}, R² of a line {r2:.3f} (linear: R² ≥ {linear})",
        r2 >= linear, section="rq4-memory")
    flat, flat_bound = result.get("fg_memory_growth"), bounds.get("fg_memory_growth", 1.2)
    add("forward mode's peak memory stays flat in depth", "qualitative (no stored activations)",
        "fg_memory_growth", f"×{flat:.2f} from {span} (flat: ≤ {flat_bound}×)", flat <= flat_bound,
        section="rq4-memory")
    error = result.get("cost_model_held_out_error")
    held_out = cost_models(frame, fit_ks, reference).get("projection", {}).get("held_out_ks", [])
    add("step time follows T(k) = a + b·k + c·n·k² (fitted on small k)",
        "qualitative (k JVPs; the projection adds n·k²)", "cost_model_held_out_error",
        f"max |error| {100 * error:.0f}% at held-out k {held_out} (tolerance {100 * HELD_OUT_TOLERANCE:.0f}%)",
        error <= HELD_OUT_TOLERANCE, section="rq4-time")
    loop, passes = result.get("vmap_over_loop_k16"), result.get("vmap_over_loop_passes_k16")
    bound = bounds.get("vmap_over_loop_k16", 1.5)
    add("vmapped JVPs make an FG step (k = 16) faster than the per-tangent loop", f"≥ {bound}× faster",
        "vmap_over_loop_k16", f"{loop:.2f}× faster (sampling and JVPs alone {passes:.2f}×)", loop >= bound,
        section="rq4-time", by=PROJECT_TARGET)
    ratio, bound = result.get("projection_over_mean_max"), bounds.get("projection_over_mean_max", 1.2)
    add("the projection costs about as much as the mean for k ≤ 16", f"≤ {bound}× the mean's step",
        "projection_over_mean_max", f"at most {ratio:.2f}× the mean's step", ratio <= bound, section="rq4-time",
        by=PROJECT_TARGET)
    fg1 = result.get("fg1_over_bp")
    if "fg1_over_bp" in bounds:
        add("an FG step (k = 1) takes at most twice a BP step", f"T_FG/T_BP ≤ {bounds['fg1_over_bp']}",
            "fg1_over_bp", f"T_FG/T_BP = {fg1:.2f}", fg1 <= bounds["fg1_over_bp"], section="rq4-time",
            by=PROJECT_TARGET)
    add("FG (k = 1) is faster per step than BP", "up to 2× faster (T_FG/T_BP ≈ 0.5)", "fg1_over_bp",
        f"T_FG/T_BP = {fg1:.2f} ({'faster' if fg1 < 1 else 'slower'})", fg1 < 1, section="rq4-baydin",
        by="Baydin et al.")
    if runs is not None and len(runs):
        table = time_to_accuracy(runs).set_index("approach")
        if {"BP", "FG"} <= set(table.index) and table.loc["BP", "reached"]:
            fg, bp = table.loc["FG"], table.loc["BP"]
            ours = (f"FG {fg['seconds']:.0f} s vs BP {bp['seconds']:.0f} s ({fg['over_bp']:.1f}×)" if fg["reached"]
                    else f"FG never reached it in {fg['epochs_run']:.0f} epochs; BP in {bp['seconds']:.0f} s")
            mode = "/".join(sorted(set(runs.loc[runs["approach"] == "FG", "mode"].astype(str))))
            rows.append(claim("RQ4", f"FG reaches {TARGET_ACCURACY:.0%} validation accuracy on MNIST in less wall "
                              "time than BP", "up to 2× faster", ours,
                              bool(fg["reached"]) and fg["seconds"] < bp["seconds"],
                              f"stored FC-256 MNIST runs ({mode} JVPs, "
                              f"{int(runs['seed'].nunique())} seed{'s' if runs['seed'].nunique() > 1 else ''})",
                              source="Baydin et al.", section="rq4_tradeoffs#rq4-training",
                              record=record_text(runs.attrs.get("records", []))))
    return pd.DataFrame(rows, columns=list(SCORECARD_COLUMNS))


def _batch(frame: pd.DataFrame, model: str) -> str:
    if "batch" not in frame or "model" not in frame:
        return "?"
    batches = frame.loc[frame["model"] == model, "batch"].dropna()
    return str(int(batches.iloc[0])) if len(batches) else "?"


def scorecard_rows(preset: str = "quick", *, device: str = "cpu", cache: ResultsCache | None = None,
                   seed: int = 0) -> pd.DataFrame:
    """The RQ4 rows of the scorecard from the stored benchmark every RQ4 claim reads (:func:`claims_benchmark`
    for ``device``, whatever the ``preset``) and the stored MNIST runs (:func:`training_runs`). ``preset`` and
    ``seed`` are accepted for the scorecard's common signature; the stored records carry their own.

    Returns:
        The rows; an empty frame with the scorecard's columns when no benchmark is stored.
    """
    frame = claims_benchmark(device=device, cache=cache)
    if frame is None:
        return pd.DataFrame(columns=list(SCORECARD_COLUMNS))
    return scorecard(frame, training_runs(cache))
