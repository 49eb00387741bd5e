"""Learning rates, every lookup in one place: the paper's tuned tables and the rates searched here.

The tables ``fg_analysis/experiments/lrs/{math, math__custom_tangents, fc_nns, sota_nns}.csv`` come from the reference
implementation of Flügel et al. (arXiv 2410.17764), repository Helmholtz-AI-Energy/frog, folder ``lrs/``, MIT
License, Copyright (c) 2024 fluegelk: see ``lrs/SOURCE.md``. They were found by an evolutionary search over
``log10(lr)`` in [-6, 0]. Their ``gradient_approach`` column reads ``bp``, ``fg-mean`` (mean aggregation; with
k = 1 the single-tangent baseline) and ``frog`` (the orthogonal projection). ``lrs/searched.csv`` holds the
rates searched by this project for settings the paper did not tune (``lrs/SEARCHED.md``), the guided
tangents of the chapter beyond the paper among them (``gradient_approach`` ``guided``: the auxiliary heads'
local-loss guesses plus k random tangents; ``guided-output``: the output-layer guess plus k random; ``guess``: the
guesses alone; every one combined by the projection onto their joint span).

* :func:`paper_lr`: one row of a paper table;
* :func:`closed_form_rate`: the rate of a closed-form problem (RQ2), fixed-angle tangents included;
* :func:`network_rate`: the rate of a network run (RQ3) and where it came from (``"paper"``, ``"searched"`` or
  ``"paper-mnist"``, the paper's MNIST rate of the same network for an offline data set not searched here).

>>> round(paper_lr("math", function="styblinski-tang", n=64, method="fg", aggregator="projection", k=16), 9)
0.004202621
>>> rate, source = network_rate("fc", 256, "mnist", method="fg", aggregator="projection", k=16)
>>> round(rate, 9), source
(0.042321121, 'paper')
"""

from __future__ import annotations

from functools import cache
from importlib import resources

import numpy as np
import pandas as pd

from fg_analysis.problems import get_problem
from fg_analysis.tangents import FixedAngle, tangent_law

__all__ = ["GUIDED_APPROACHES", "PAPER_DATASETS", "TABLES", "approach", "closed_form_rate", "model_key",
           "head_rate", "network_rate", "paper_lr", "read_table", "searched_rate", "searched_row", "searched_table",
           "table"]

TABLES = ("math", "math__custom_tangents", "fc_nns", "sota_nns")

#: data sets with tuned rates in the paper's network tables
PAPER_DATASETS = ("mnist", "cifar10")

#: the FC widths of the paper's table
PAPER_WIDTHS = (256, 1024, 4096)

#: the guided methods (:mod:`fg_analysis.nets.guides`) and their ``gradient_approach`` in ``lrs/searched.csv``
GUIDED_APPROACHES = {"guided": "guided", "output": "guided-output", "guess": "guess"}


#: columns of a learning-rate table that are text even when a value looks like a number (a short commit hash)
TEXT_COLUMNS = {"commit": str, "study": str}


def read_table(source) -> pd.DataFrame:
    """A learning-rate table from a path or an open file, its :data:`TEXT_COLUMNS` read as text."""
    return pd.read_csv(source, dtype=TEXT_COLUMNS)


@cache
def _read(name: str) -> pd.DataFrame:
    with resources.files("fg_analysis.experiments").joinpath(f"lrs/{name}.csv").open() as handle:
        return read_table(handle)


def table(name: str) -> pd.DataFrame:
    """One of the paper's learning-rate tables (:data:`TABLES`) as a DataFrame (a copy)."""
    if name not in TABLES:
        raise ValueError(f"unknown learning-rate table {name!r}; choose one of {TABLES}")
    return _read(name).copy()


def searched_table() -> pd.DataFrame:
    """Our searched rates (``lrs/searched.csv``) as a DataFrame (a copy)."""
    return _read("searched").copy()


def approach(method: str, aggregator: str = "mean", k: int = 1) -> str:
    """The tables' ``gradient_approach`` for a method: ``"bp"``, ``"fg-mean"`` or ``"frog"``, or for a guided
    method (:data:`GUIDED_APPROACHES`, always the projection) ``"guided"``, ``"guided-output"`` or ``"guess"``."""
    if method == "bp":
        return "bp"
    if method in GUIDED_APPROACHES:
        if aggregator != "projection":
            raise ValueError(f"guided tangents are combined by the projection; got aggregator={aggregator!r}")
        return GUIDED_APPROACHES[method]
    if method != "fg":
        raise ValueError(f"unknown method {method!r}; choose 'bp', 'fg' or one of {', '.join(GUIDED_APPROACHES)}")
    if aggregator == "mean":
        return "fg-mean"
    if aggregator == "projection":
        return "frog"
    raise ValueError(f"the paper tuned learning rates for mean and projection only; got aggregator={aggregator!r}")


def model_key(model: str, width: int | None = None) -> str:
    """The tables' model names: ``"fc_w=256"`` for the FC net, ``"resnet18"``, ``"vit"`` otherwise."""
    if model == "fc":
        return f"fc_w={256 if width is None else width}"
    return model


def _row(rows: pd.DataFrame, where: str, *, method: str, aggregator: str, k: int, **keys) -> pd.Series:
    gradient_approach = approach(method, aggregator, k)
    mask = rows["gradient_approach"] == gradient_approach
    if gradient_approach != "bp":
        mask &= rows["k"] == float(k)
    for column, value in keys.items():
        if column not in rows.columns:
            raise ValueError(f"{where} has no column {column!r}; columns: {list(rows.columns)}")
        mask &= rows[column] == value
    found = rows[mask]
    if len(found) != 1:
        candidates = rows[rows["gradient_approach"] == gradient_approach].drop(columns="lr")
        raise ValueError(f"no unique learning rate for {gradient_approach} k={k} {keys} in {where} "
                         f"({len(found)} rows match); settings it has:\n"
                         f"{candidates.drop_duplicates().head(20).to_string(index=False)}")
    return found.iloc[0]


def paper_lr(table_name: str, *, method: str, aggregator: str = "mean", k: int = 1, **keys) -> float:
    """The paper's tuned rate of one setting, e.g. ``paper_lr("fc_nns", model="fc_w=256", dataset="mnist",
    method="fg", aggregator="projection", k=16)``.

    Raises ``ValueError`` naming the available values when the paper has no rate for the setting (for example
    the projection with k = 1, which the paper did not run: its single-tangent baseline is ``fg-mean``).
    """
    return float(_row(table(table_name), f"table {table_name!r}", method=method, aggregator=aggregator, k=k,
                      **keys)["lr"])


def searched_row(*, model: str, dataset: str, method: str, aggregator: str = "mean", k: int = 1) -> pd.Series:
    """Our searched rate for one setting with its provenance: the row of ``lrs/searched.csv`` (``lr``, the
    search's budget, epochs, training samples, date, commit, ...); ``model`` as in the tables (``"fc_w=256"``).
    Raises ``ValueError`` naming what the table has when no row matches."""
    return _row(searched_table(), "lrs/searched.csv (promote a search's result into it to add one)",
                method=method, aggregator=aggregator, k=k, model=model, dataset=dataset)


def searched_rate(*, model: str, dataset: str, method: str, aggregator: str = "mean", k: int = 1) -> float:
    """Our searched rate for one setting (:func:`searched_row`'s ``lr``)."""
    return float(searched_row(model=model, dataset=dataset, method=method, aggregator=aggregator, k=k)["lr"])


def closed_form_rate(problem: str, n: int, *, method: str, k: int = 1, aggregator: str = "mean",
                     tangents="normal") -> float:
    """The paper's tuned rate for gradient descent on a closed-form problem (``lrs/math.csv``); for fixed-angle
    tangents the rates of ``lrs/math__custom_tangents.csv`` (the projection there with its normal-sampler row,
    as the paper did)."""
    name = get_problem(problem).name
    law = tangent_law(tangents)
    if method == "fg" and isinstance(law, FixedAngle) and aggregator in ("mean", "projection"):
        sampler = (f"FG(k={k},agg=mean,normalize=False,sampler=specific_angle_{law.theta:g})" if aggregator == "mean"
                   else f"FG(k={k},agg=orthogonal_projection,normalize=False,sampler=normal)")
        return paper_lr("math__custom_tangents", function=name, n=n, method=method, aggregator=aggregator, k=k,
                        optimizer=sampler)
    return paper_lr("math", function=name, n=n, method=method, aggregator=aggregator, k=k)


def network_rate(model: str, width: int | None, dataset: str, *, method: str, aggregator: str = "mean",
                 k: int = 1) -> tuple[float, str]:
    """``(lr, source)`` for a network run: the paper's rate on MNIST / CIFAR-10 (``"paper"``), our searched one
    (``"searched"``), or, for an offline data set without a searched rate, the paper's MNIST rate of the same
    network, for an FC net of the paper's nearest width in log scale (``"paper-mnist"``)."""
    network_table = "fc_nns" if model == "fc" else "sota_nns"
    if dataset in PAPER_DATASETS:
        return paper_lr(network_table, model=model_key(model, width), dataset=dataset, method=method,
                        aggregator=aggregator, k=k), "paper"
    try:
        return searched_rate(model=model_key(model, width), dataset=dataset, method=method, aggregator=aggregator,
                             k=k), "searched"
    except ValueError:
        if model == "fc":
            width = min(PAPER_WIDTHS, key=lambda w: abs(np.log(w / (width or 256))))
        return paper_lr(network_table, model=model_key(model, width), dataset="mnist", method=method,
                        aggregator=aggregator, k=k), "paper-mnist"


def head_rate() -> float:
    """The heads' local-loss SGD rate: the paper's BP rate of FC-256 on MNIST (for every network here)."""
    return network_rate("fc", 256, "mnist", method="bp", aggregator="mean", k=1)[0]
