"""RQ4: what do multiple tangents cost? The scorecard's claims, read from the stored benchmark.

The measurements are made by :mod:`fg_analysis.bench` (``python -m fg_analysis.bench --quick|--full
--publish``: step times of BP and FG(k) with vmapped or looped JVPs, peak memory against depth, the cost model
fitted on small k and checked on the held-out large k) and stored with their device, versions and commit under
``results/published/BenchConfig`` (Flügel et al., arXiv 2410.17764, RQ4; Baydin et al., arXiv 2202.08587).
:func:`scorecard_rows` reads the stored record and never runs a benchmark, so the scorecard page stays instant:

* vmapped JVPs make a k = 16 FG step faster than the reference code's per-tangent loop (target ≥ 1.2×);
* the projection costs about what the mean costs for k ≤ 16 (target ≤ 1.2×);
* FG with one tangent against BP, per step (Baydin et al.: FG up to 2× faster than BP; target here ≤ 2×);
* BP's peak memory grows linearly with depth, forward mode's stays flat (≤ 1.2× from the shallowest to the
  deepest net);
* the cost model ``T(k) = a + b k + c n k²`` predicts the held-out k (within 20%).

Every row's ``setup`` names the record's device, preset, torch version and commit.

>>> rows = scorecard_rows("quick")
>>> set(rows["question"]) <= {"RQ4"}
True
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from fg_analysis import bench
from fg_analysis.cache import PUBLISHED, ResultsCache
from fg_analysis.experiments import SCORECARD_COLUMNS, claim

__all__ = ["HELD_OUT_TOLERANCE", "scorecard", "scorecard_rows", "stored_benchmark"]

#: the largest relative error of the cost model at held-out k for which the scorecard says "holds"
HELD_OUT_TOLERANCE = 0.2

_PRESETS = {"quick": "quick", "paper": "paper", "full": "paper", "live": "live"}


def stored_benchmark(preset: str = "quick", *, device: str = "cpu",
                     cache: ResultsCache | None = None) -> pd.DataFrame | None:
    """The stored benchmark frame that best matches ``preset`` and ``device``, or ``None`` if there is none.

    Looks in the cache's writable root and in its published folder (default: ``results/cache`` and
    ``results/published``) and ranks the records by: same preset, not the notebook's small ``live`` run,
    same device type (``"auto"`` counts as either), newest. Nothing is measured.
    """
    cache = cache or ResultsCache()
    roots = [root for root in (cache.root, cache.published or PUBLISHED) if root is not None]
    frames = [frame for root in dict.fromkeys(Path(r) for r in roots) for frame in bench.published_records(root)]
    if not frames:
        return None
    wanted = _PRESETS.get(preset, preset)

    def rank(frame: pd.DataFrame) -> tuple:
        record = frame.attrs["record"]
        stored_preset = record["config"].get("preset")
        stored_device = record.get("environment", {}).get("device", record["config"].get("device"))
        return (stored_preset == wanted, stored_preset != "live", device in ("auto", stored_device),
                record.get("saved", ""))

    return max(frames, key=rank)


def scorecard(frame: pd.DataFrame) -> pd.DataFrame:
    """The RQ4 claims checked on one stored benchmark frame (with its record in ``frame.attrs["record"]``)."""
    record = frame.attrs.get("record", {})
    config = record.get("config", {})
    environment = record.get("environment", {})
    reference = config.get("reference_model", "fc-1024")
    fit_ks = tuple(config.get("fit_ks", (1, 2, 4, 8)))
    result = bench.summary(frame, reference_model=reference, fit_ks=fit_ks)
    device = environment.get("device_name") or config.get("machine") or environment.get("device", "unknown")
    setup = (f"{device}: stored {config.get('preset', '?')} benchmark (torch "
             f"{environment.get('versions', {}).get('torch', '?')}, commit {environment.get('commit')}, saved "
             f"{record.get('saved', '?')}); weight perturbation on {reference} at batch "
             f"{_batch(frame, reference)} (paper: GPU)")
    rows = []

    def add(text: str, paper: str, key: str, ours: str, holds) -> None:
        if isinstance(result.get(key), (int, float)) and math.isfinite(result[key]):
            rows.append(claim("RQ4", text, paper, ours, bool(holds), setup))

    vmap, jvp_only = result.get("vmap_over_loop_k16"), result.get("vmap_over_loop_jvp_only_k16")
    add("vmapped JVPs make an FG step (k = 16) faster than the per-tangent loop", "qualitative (target ≥ 1.2×)",
        "vmap_over_loop_k16", f"{vmap:.2f}× faster (JVPs alone {jvp_only:.2f}×)", vmap >= 1.2)
    ratio = result.get("projection_over_mean_max")
    add("the projection costs about as much as the mean for k ≤ 16", "≈ the same (target ≤ 1.2×)",
        "projection_over_mean_max", f"at most {ratio:.2f}× the mean's step", ratio <= 1.2)
    fg1 = result.get("fg1_over_bp")
    add("FG (k = 1) is faster per step than BP (Baydin et al.)", "up to 2× faster (T_FG/T_BP ≈ 0.5)",
        "fg1_over_bp", f"T_FG/T_BP = {fg1:.2f} ({'faster' if fg1 < 1 else 'slower'}; "
        f"target ≤ 2: {'met' if fg1 <= 2 else 'missed'})", fg1 < 1)
    memory = frame[frame["section"] == "memory"] if "section" in frame else frame.iloc[:0]
    depths = sorted(int(d) for d in memory["depth"].dropna().unique()) if "depth" in memory else []
    span = f"{depths[0]} to {depths[-1]} hidden layers" if depths else "the depths measured"
    growth, r2 = result.get("bp_memory_growth"), result.get("bp_memory_linearity_r2")
    add("BP's peak memory grows linearly with depth", "qualitative (stored activations)",
        "bp_memory_linearity_r2", f"×{growth:.1f} from {span}, R² of a line {r2:.3f}", r2 >= 0.95)
    flat = result.get("fg_memory_growth")
    add("forward mode's peak memory stays flat in depth", "qualitative (no stored activations; target ≤ 1.2×)",
        "fg_memory_growth", f"×{flat:.2f} from {span}", flat <= 1.2)
    error = result.get("cost_model_held_out_error")
    held_out = bench.cost_models(frame, fit_ks, reference).get("projection", {}).get("held_out_ks", [])
    add("step time follows T(k) = a + b·k + c·n·k² (fitted on small k)", "qualitative (linear in k)",
        "cost_model_held_out_error", f"max |error| {100 * error:.0f}% at held-out k {held_out} "
        f"(tolerance {100 * HELD_OUT_TOLERANCE:.0f}%)", error <= HELD_OUT_TOLERANCE)
    return pd.DataFrame(rows, columns=list(SCORECARD_COLUMNS))


def _batch(frame: pd.DataFrame, model: str) -> str:
    if "batch" not in frame or "model" not in frame:
        return "?"
    batches = frame.loc[frame["model"] == model, "batch"].dropna()
    return str(int(batches.iloc[0])) if len(batches) else "?"


def scorecard_rows(preset: str = "quick", *, device: str = "cpu", cache: ResultsCache | None = None,
                   seed: int = 0) -> pd.DataFrame:
    """The RQ4 rows of the scorecard from the stored benchmark that best matches ``preset`` and ``device``
    (:func:`stored_benchmark`); an empty frame when none is stored. ``seed`` is accepted for the scorecard's
    common signature; the stored record carries its own."""
    frame = stored_benchmark(preset, device=device, cache=cache)
    if frame is None:
        return pd.DataFrame(columns=list(SCORECARD_COLUMNS))
    return scorecard(frame)
