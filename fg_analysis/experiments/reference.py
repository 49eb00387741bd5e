"""The reference implementation's own figures, set beside ours.

The reference implementation of Flügel et al. (arXiv 2410.17764; repository Helmholtz-AI-Energy/frog, commit
e77dae5, 2024-10-17, MIT License, Copyright (c) 2024 fluegelk) kept, next to each tuned learning rate, the
outcome of its search at that rate: the final best ``f`` of a closed-form function, or a network's validation
cross-entropy. ``fg_analysis/experiments/reference_results/`` ships those four tables with their attribution
(``SOURCE.md``). Each ``loss`` is ONE run (seed 0) at a rate tuned for it, not a mean over seeds (:data:`CAVEAT`).

* :func:`table`: one of the four tables as it is stored (:data:`TABLES`);
* :func:`closed_form`, :func:`networks`: the tables with this project's keys (``problem``, ``n``, ``approach``
  labelled by :func:`fg_analysis.nets.approaches.approach_label`, ``theta`` for the fixed-angle runs; ``network``,
  ``dataset``) and ``reference_f`` / ``reference_loss``;
* :func:`rq2_table`: every RQ2 cell (problem, n, approach; fixed angles by θ): our best ``f``, mean ± t-based 95%
  CI and range over the seeds, beside the reference's one-seed final ``f``;
* :func:`rq3_table`: every RQ3 MNIST cell (network, approach): our validation cross-entropy at each run's best
  epoch, mean ± CI and range over the seeds stored, beside the reference's.

The tables' ``gradient_approach`` maps to approaches as ``bp`` → BP, ``fg-mean`` → FG (k = 1) or ``mean k``,
``frog`` → ``projection k``.

>>> row = closed_form().query("problem == 'styblinski-tang' and n == 64 and approach == 'projection k=16'")
>>> round(float(row["reference_f"].iloc[0]), 1)
-2506.6
>>> networks().query("network == 'fc_w=256' and approach == 'BP'")["reference_loss"].round(4).tolist()
[0.0783]
"""

from __future__ import annotations

import math
from functools import cache
from importlib import resources

import numpy as np
import pandas as pd

from fg_analysis.experiments.optimization import resolution
from fg_analysis.metrics import summarize
from fg_analysis.nets.approaches import approach_label, approach_order
from fg_analysis.problems import get_problem

__all__ = ["CAVEAT", "TABLES", "approach", "caveat", "closed_form", "networks", "rq2_table", "rq3_table", "table"]

#: the reference implementation's result tables in ``fg_analysis/experiments/reference_results/``
TABLES = ("math", "math__custom_tangents", "fc_nns", "sota_nns")

#: what a reference number is, in one sentence (the pages print it next to every comparison)
CAVEAT = ("The reference implementation's number is one run (seed 0) of its learning-rate search, at the rate "
          "that search selected for it; ours are means over seeds at the paper's published rate, so a single "
          "reference value is expected to fall inside the spread of our seeds, not inside the interval of our mean.")

#: the reference ran in float32: its f is known to about this many units in the last place
FLOAT32_ULPS = 4

_KEYS_RQ2 = ["problem", "n", "tangents", "theta", "approach"]
_KEYS_RQ3 = ["network", "dataset", "approach"]


@cache
def _read(name: str) -> pd.DataFrame:
    with resources.files("fg_analysis.experiments").joinpath(f"reference_results/{name}.csv").open() as handle:
        return pd.read_csv(handle)


def table(name: str) -> pd.DataFrame:
    """One of the reference's result tables (:data:`TABLES`) as stored, a copy: the columns of ``lrs/`` plus
    ``loss``."""
    if name not in TABLES:
        raise ValueError(f"unknown reference table {name!r}; choose one of {TABLES}")
    return _read(name).copy()


def approach(gradient_approach: str, k) -> tuple[str, str, int]:
    """``(method, aggregator, k)`` of a table row: ``bp`` → BP, ``fg-mean`` → mean, ``frog`` → projection.

    >>> approach("frog", 16.0), approach("bp", float("nan"))
    (('fg', 'projection', 16), ('bp', 'mean', 1))
    """
    if gradient_approach == "bp":
        return "bp", "mean", 1
    if gradient_approach not in ("fg-mean", "frog"):
        raise ValueError(f"unknown gradient_approach {gradient_approach!r}; the tables use bp, fg-mean and frog")
    if k is None or not math.isfinite(float(k)):
        raise ValueError(f"a {gradient_approach} row needs its k; got {k!r}")
    return "fg", "mean" if gradient_approach == "fg-mean" else "projection", int(k)


def _keyed(frame: pd.DataFrame) -> pd.DataFrame:
    keys = [approach(a, k) for a, k in zip(frame["gradient_approach"], frame["k"], strict=True)]
    frame = frame.drop(columns=["k"]).assign(method=[m for m, _, _ in keys], aggregator=[a for _, a, _ in keys],
                                              k=[k for _, _, k in keys])
    frame["approach"] = [approach_label(*key) for key in keys]
    return frame


def closed_form() -> pd.DataFrame:
    """The closed-form functions' rows of ``math`` and ``math__custom_tangents``: ``problem, n, method,
    aggregator, k, approach, tangents ("normal" / "fixed-angle"), theta (degrees; NaN for normal tangents),
    reference_lr, reference_f, minimum, reference_gap = reference_f − f*``. The custom-tangents table's
    projection rows (``sampler=normal``: one run for every angle, the projection depending only on the span)
    appear once per angle of that table, as this project's fixed-angle runs use their rate at every angle."""
    normal = _keyed(table("math")).assign(theta=np.nan, tangents="normal")
    custom = _keyed(table("math__custom_tangents")).assign(tangents="fixed-angle")
    custom["theta"] = custom["optimizer"].str.extract(r"sampler=specific_angle_(\d+(?:\.\d+)?)",
                                                      expand=False).astype(float)
    # the table's projection rows have sampler=normal: one rate (and one run) for every angle, since the
    # projection depends only on the span; they stand for each angle of the table
    angles = sorted(custom["theta"].dropna().unique())
    spans = custom[custom["theta"].isna()]
    custom = pd.concat([custom[custom["theta"].notna()]] + [spans.assign(theta=theta) for theta in angles],
                       ignore_index=True)
    rows = pd.concat([normal, custom], ignore_index=True).rename(columns={"function": "problem", "lr": "reference_lr",
                                                                "loss": "reference_f"})
    rows["minimum"] = [get_problem(p).minimum(int(n)) for p, n in zip(rows["problem"], rows["n"], strict=True)]
    rows["reference_gap"] = rows["reference_f"] - rows["minimum"]
    return rows[["problem", "n", "method", "aggregator", "k", "approach", "tangents", "theta", "reference_lr",
                 "reference_f", "minimum", "reference_gap"]]


def networks() -> pd.DataFrame:
    """The network rows of ``fc_nns`` and ``sota_nns``: ``network`` (``fc_w=256``, ``resnet18``, ``vit``: the
    keys of :func:`fg_analysis.experiments.learning_rates.model_key`), ``dataset, method, aggregator, k, approach,
    reference_lr, reference_loss`` (validation cross-entropy)."""
    rows = pd.concat([_keyed(table(name)) for name in ("fc_nns", "sota_nns")], ignore_index=True)
    rows = rows.rename(columns={"model": "network", "lr": "reference_lr", "loss": "reference_loss"})
    return rows[["network", "dataset", "method", "aggregator", "k", "approach", "reference_lr", "reference_loss"]]


def _ours(runs: pd.DataFrame, keys: list[str], value: str) -> pd.DataFrame:
    """Mean, t-based CI, min and max over seeds of ``value`` per cell, with the rate (first) and seed count."""
    runs = runs.assign(**{key: runs[key].fillna(-1.0) for key in keys if key == "theta"})
    stats = summarize(runs, value, keys).rename(columns={"mean": "ours", "ci": "ours_ci", "count": "seeds"})
    extra = runs.groupby(keys, dropna=False).agg(ours_low=(value, "min"), ours_high=(value, "max"),
                                                 ours_lr=("lr", "first")).reset_index()
    return stats[keys + ["ours", "ours_ci", "seeds"]].merge(extra, on=keys)


def _joined(ours: pd.DataFrame, reference: pd.DataFrame, keys: list[str], value: str, tolerance) -> pd.DataFrame:
    out = reference.merge(ours, on=keys, how="outer", indicator=True)
    out["status"] = out.pop("_merge").map({"both": "both", "left_only": "reference only", "right_only": "ours only"})
    ref, slack = out[value].to_numpy(dtype=float), np.asarray(tolerance(out), dtype=float)
    low, high = out["ours_low"].to_numpy(dtype=float), out["ours_high"].to_numpy(dtype=float)
    with np.errstate(invalid="ignore"):  # cells without ours: NaN, sorted out by the first condition
        out["position"] = np.select([out["status"] != "both", ref < low - slack, ref > high + slack],
                                    ["—", "below our seeds", "above our seeds"], default="within our seeds")
    out["same_rate"] = np.isclose(out["ours_lr"], out["reference_lr"], rtol=1e-6)
    return out


def rq2_table(finals: pd.DataFrame) -> pd.DataFrame:
    """Every RQ2 cell of the reference, and every cell of ``finals`` (:func:`fg_analysis.experiments.
    optimization.final_values`), side by side: ``problem, n, tangents, theta, approach``; ours: ``ours`` (mean
    best ``f`` over seeds), ``ours_ci`` (t-based 95%), ``ours_low``/``ours_high`` (min / max over seeds),
    ``seeds``, ``ours_lr``; the reference's ``reference_f`` and ``reference_lr``; ``minimum`` (f*), and the
    gaps to it (``ours_gap``, ``ours_gap_low``, ``ours_gap_high``, ``reference_gap``);
    ``status`` (``both``, ``reference only``: a cell we did not run, ``ours only``); ``position`` of the
    reference's value against our seeds' range (``within our seeds``, ``below…``, ``above…``; two values within
    :func:`fg_analysis.experiments.optimization.resolution`, or within the reference's float32 precision
    (:data:`FLOAT32_ULPS` units in the last place of its f: it stored −2506.634766 for Styblinski–Tang's
    minimum −2506.634605 at n = 64), count as equal) and ``same_rate``.
    ``theta`` is -1 for normal tangents (a key, not a NaN)."""
    reference = closed_form().assign(theta=lambda r: r["theta"].fillna(-1.0))
    ours = _ours(finals, _KEYS_RQ2, "best_f")
    out = _joined(ours, reference.drop(columns=["method", "aggregator", "k"]), _KEYS_RQ2, "reference_f",
                  lambda rows: np.maximum([resolution(m) for m in rows["minimum"].fillna(0.0)],
                                          FLOAT32_ULPS * np.finfo(np.float32).eps
                                          * rows["reference_f"].abs().fillna(0)))

    missing = out["minimum"].isna()
    out.loc[missing, "minimum"] = [get_problem(p).minimum(int(n)) for p, n in
                                   zip(out.loc[missing, "problem"], out.loc[missing, "n"], strict=True)]
    out["reference_gap"] = out["reference_f"] - out["minimum"]
    for column in ("ours", "ours_low", "ours_high"):
        out[column.replace("ours", "ours_gap")] = out[column] - out["minimum"]
    order = {label: i for i, label in enumerate(_order(out["approach"]))}
    out = out.assign(_order=out["approach"].map(order)).sort_values(["tangents", "problem", "n", "theta", "_order"],
                                                                    ascending=[False, True, True, True, True])
    return out.drop(columns="_order").reset_index(drop=True)


def best_validation_loss(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per RQ3 run (``network, dataset, approach, seed``): the validation cross-entropy at the run's best
    epoch (the one whose state is tested), with the run's ``lr``."""
    keys = ["network", "dataset", "approach", "seed"]
    at_best = frame[frame["epoch"] == frame["best_epoch"]]
    return at_best.groupby(keys, as_index=False).agg(val_loss=("val_loss", "first"), lr=("lr", "first"))


def rq3_table(frame: pd.DataFrame | None, *, dataset: str = "mnist") -> pd.DataFrame:
    """Every RQ3 cell of the reference on ``dataset`` (network, approach), and every cell of ``frame`` (RQ3
    runs, :func:`fg_analysis.experiments.rq3.run` or ``stored``) on it, side by side: ours ``ours`` (validation
    cross-entropy at each run's best epoch, mean over the seeds stored), ``ours_ci``, ``ours_low``/``ours_high``,
    ``seeds``, ``ours_lr``; the reference's ``reference_loss`` and ``reference_lr``; ``status``, ``position``
    and ``same_rate`` as in :func:`rq2_table`. ``frame=None`` gives the reference's cells alone."""
    reference = networks()
    reference = reference[reference["dataset"] == dataset].drop(columns=["method", "aggregator", "k"])
    if frame is None or frame.empty:
        ours = pd.DataFrame(columns=_KEYS_RQ3 + ["ours", "ours_ci", "seeds", "ours_low", "ours_high", "ours_lr"])
    else:
        runs = best_validation_loss(frame[frame["dataset"] == dataset])
        ours = _ours(runs, _KEYS_RQ3, "val_loss")
    out = _joined(ours, reference, _KEYS_RQ3, "reference_loss", lambda rows: 0.0)
    networks_order = {name: i for i, name in enumerate(dict.fromkeys(networks()["network"]))}
    order = {label: i for i, label in enumerate(_order(out["approach"]))}
    out = out.assign(_n=out["network"].map(networks_order).fillna(99), _a=out["approach"].map(order))
    return out.sort_values(["_n", "network", "_a"]).drop(columns=["_n", "_a"]).reset_index(drop=True)


def _order(labels) -> list[str]:

    return approach_order(labels)


def caveat(kind: str = "rq2") -> str:
    """:data:`CAVEAT` with what the reference's number is for ``kind`` (``"rq2"``: the final best f; ``"rq3"``:
    the validation cross-entropy, MNIST 50k/10k, up to 200 epochs for the FC nets and 50 for ResNet-18 / ViT,
    patience 10, whose BP rates the paper later replaced by 0.1)."""
    if kind == "rq2":
        what = "For a closed-form function it is the best f that run reached."
    elif kind == "rq3":
        what = ("For a network it is the validation cross-entropy on 10k images held out of MNIST's training set "
                "(50k/10k), after up to 200 epochs for the FC nets (50 for ResNet-18 and the ViT) with early "
                "stopping after 10; the ResNet-18 and ViT BP rows were searched at rates the paper later replaced "
                "by 0.1.")
    else:
        raise ValueError(f"kind must be 'rq2' or 'rq3'; got {kind!r}")
    return f"{CAVEAT} {what}"

