"""The paper's tuned learning rates (``fg_analysis/lrs/*.csv``), looked up by setting.

The tables come from the reference implementation of Flügel et al. (arXiv 2410.17764), repository
Helmholtz-AI-Energy/frog, folder ``lrs/``, MIT License, Copyright (c) 2024 fluegelk: see ``lrs/SOURCE.md``.
They were found by an evolutionary search over ``log10(lr)`` in [-6, 0]. Their ``gradient_approach`` column
reads ``bp``, ``fg-mean`` (mean aggregation; with k = 1 the single-tangent baseline) and ``frog`` (the
orthogonal projection).

>>> paper_lr("math", function="styblinski-tang", n=64, method="fg", aggregator="projection", k=16)
0.004202621051012
"""

from __future__ import annotations

from functools import cache
from importlib import resources

import pandas as pd

TABLES = ("math", "math__custom_tangents", "fc_nns", "sota_nns")


@cache
def table(name: str) -> pd.DataFrame:
    """One of the paper's learning-rate tables as a DataFrame (see :data:`TABLES`)."""
    if name not in TABLES:
        raise ValueError(f"unknown learning-rate table {name!r}; choose one of {TABLES}")
    with resources.files("fg_analysis").joinpath(f"lrs/{name}.csv").open() as handle:
        return pd.read_csv(handle)


def approach(method: str, aggregator: str = "mean", k: int = 1) -> str:
    """The tables' ``gradient_approach`` for a method: ``"bp"``, ``"fg-mean"`` or ``"frog"``."""
    if method == "bp":
        return "bp"
    if method != "fg":
        raise ValueError(f"unknown method {method!r}; choose 'bp' or 'fg'")
    if aggregator == "mean":
        return "fg-mean"
    if aggregator == "projection":
        return "frog"
    raise ValueError(f"the paper tuned learning rates for mean and projection only; got aggregator={aggregator!r}")


def paper_lr(table_name: str, *, method: str, aggregator: str = "mean", k: int = 1, **keys) -> float:
    """The tuned learning rate of one setting, e.g. ``paper_lr("fc_nns", model="fc_w=256", dataset="mnist",
    method="fg", aggregator="projection", k=16)``.

    Raises ``ValueError`` naming the available values when the paper has no rate for the setting (for example
    the projection with k = 1, which the paper did not run: its single-tangent baseline is ``fg-mean``).
    """
    rows = table(table_name)
    gradient_approach = approach(method, aggregator, k)
    mask = rows["gradient_approach"] == gradient_approach
    if gradient_approach != "bp":
        mask &= rows["k"] == float(k)
    for column, value in keys.items():
        if column not in rows.columns:
            raise ValueError(f"table {table_name!r} has no column {column!r}; columns: {list(rows.columns)}")
        mask &= rows[column] == value
    found = rows[mask]
    if len(found) != 1:
        candidates = rows[rows["gradient_approach"] == gradient_approach].drop(columns="lr")
        raise ValueError(f"no unique paper learning rate for {gradient_approach} k={k} {keys} in "
                         f"{table_name!r} ({len(found)} rows match); settings it has:\n"
                         f"{candidates.drop_duplicates().head(20).to_string(index=False)}")
    return float(found["lr"].iloc[0])
