"""Metrics of the book, in one home: how close an estimate is to a gradient, and how sure a mean is.

Closeness of an estimate :math:`\\hat g` to the true gradient :math:`g` (tensors batched over leading
dimensions, or dicts of tensors such as ``model.named_parameters()`` treated as one flat vector; float64
accumulation):

* :func:`cosine` :math:`\\cos(\\hat g, g) = \\hat g \\cdot g / (|\\hat g|\\,|g|)`,
* :func:`norm_ratio` :math:`|\\hat g| / |g|`,
* :func:`relative_error` :math:`|\\hat g - g| / |g|`.

Uncertainty of a mean over ``count`` runs (seeds, samples): the 95% confidence interval from the
**t distribution**, ``t_{0.975, count-1} · std / sqrt(count)`` with the sample standard deviation
(``ddof = 1``). With 3 seeds ``t_{0.975, 2} = 4.30``, more than twice the normal ``z = 1.96``, which is only
right for large counts (at the RQ1 sweep's 1000 samples per cell they differ by 0.2%, at its 100 samples by 1.2%).

:func:`compare` turns two such intervals into a verdict, ``"holds"``, ``"does not hold"`` or
``"inconclusive"`` (overlapping intervals, an undefined interval, or a difference below the numerical
resolution, such as a float underflow ``1e-175`` against an exact ``0``).

>>> round(float(ci_halfwidth(1.0, 3)), 3)          # t_{0.975,2} / sqrt(3)
2.484
>>> mean, ci = mean_ci([0.93, 0.94, 0.95])
>>> format_ci(mean, ci)
'0.940 ± 0.025'
>>> compare(0.939, 0.001, 0.938, 0.014)              # overlapping intervals: a tie
'inconclusive'
>>> compare(0.95, 0.01, 0.80, 0.02)
'holds'
>>> compare(0.0, 0.0, 1.3e-175, 0.0, direction="less", resolution=1e-12)
'inconclusive'
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from fg_analysis.checks import check_real

#: the three verdicts of a scorecard row
HOLDS, FAILS, INCONCLUSIVE = "holds", "does not hold", "inconclusive"
VERDICTS = (HOLDS, FAILS, INCONCLUSIVE)

#: confidence level of every interval in the book
LEVEL = 0.95


# -------------------------------------------------------------------------------------------------------
# closeness of an estimate to the gradient


def _float64(value, name: str):
    """``value`` (a tensor, array or list) as a float64 tensor. Integers are converted exactly; bool and complex
    are refused (:func:`fg_analysis.checks.check_real`): a mask would otherwise give a number, and a complex
    vector lose its imaginary part."""
    return check_real(torch.as_tensor(value), name, integers=True).detach().to(torch.float64)


def _dot_and_norms(a, b):
    """(a·b, |a|², |b|²) in float64; tensors reduce over their last dimension, dicts over all entries."""
    if isinstance(a, Mapping) or isinstance(b, Mapping):
        if not (isinstance(a, Mapping) and isinstance(b, Mapping)):
            raise TypeError("cosine/norm_ratio: pass two tensors or two dicts of tensors, not one of each")
        if set(a) != set(b):
            missing = sorted(set(a) ^ set(b))
            raise ValueError(f"the two dicts must have the same keys; differ in {missing[:5]}")
        dot = aa = bb = 0.0
        for key in a:
            x = _float64(a[key], f"entry {key!r} of the first argument").reshape(-1)
            y = _float64(b[key], f"entry {key!r} of the second argument").to(x.device).reshape(-1)
            if x.shape != y.shape:
                raise ValueError(f"entry {key!r}: shapes {tuple(a[key].shape)} and {tuple(b[key].shape)} differ")
            dot, aa, bb = dot + float(x @ y), aa + float(x @ x), bb + float(y @ y)
        return dot, aa, bb
    x = _float64(a, "the first argument")
    y = _float64(b, "the second argument").to(x.device)
    if x.ndim == 0 or y.ndim == 0:
        raise ValueError("cosine/norm_ratio need vectors (shape (..., n)), got a scalar")
    x, y = torch.broadcast_tensors(x, y)
    return (x * y).sum(-1), (x * x).sum(-1), (y * y).sum(-1)


def _result(value):
    return float(value) if not hasattr(value, "ndim") or value.ndim == 0 else value


def cosine(a, b):
    """:math:`\\cos(a, b) = a \\cdot b / (|a|\\,|b|)`, NaN where either is zero.

    Tensors of shape ``(..., n)`` give a tensor of shape ``(...)`` (a float for vectors); two dicts of
    tensors with the same keys are one flat vector each (the global cosine over all parameters).

    >>> import torch
    >>> round(cosine(torch.tensor([1.0, 0.0]), torch.tensor([1.0, 1.0])), 12)   # 1/sqrt(2)
    0.707106781187
    >>> cosine(torch.eye(2), torch.tensor([1.0, 0.0])).tolist()       # batched over rows
    [1.0, 0.0]
    """
    dot, aa, bb = _dot_and_norms(a, b)
    if isinstance(dot, float):
        denominator = math.sqrt(aa * bb)
        return dot / denominator if denominator > 0 else math.nan
    return _result(dot / (aa * bb).sqrt())


def norm_ratio(estimate, truth):
    """:math:`|\\hat g| / |g|` (same shapes as :func:`cosine`).

    >>> import torch
    >>> norm_ratio(torch.tensor([3.0, 4.0]), torch.tensor([0.0, 1.0]))
    5.0
    """
    _, aa, bb = _dot_and_norms(estimate, truth)
    if isinstance(aa, float):
        return math.sqrt(aa / bb) if bb > 0 else math.nan
    return _result((aa / bb).sqrt())


def relative_error(estimate, truth):
    """:math:`|\\hat g - g| / |g|` (same shapes as :func:`cosine`); 0 for an exact estimate.

    The difference is formed entry by entry, not from ``|ĝ|² − 2ĝ·g + |g|²``, whose cancellation would floor the
    error near ``sqrt(eps)`` (1e-8 in float64) for estimates that agree to rounding.

    >>> import torch
    >>> relative_error(torch.tensor([1.0, 1.0]), torch.tensor([1.0, 0.0]))
    1.0
    """
    if isinstance(estimate, Mapping) or isinstance(truth, Mapping):
        _dot_and_norms(estimate, truth)  # the same checks: two dicts, same keys, same shapes
        difference = {key: torch.as_tensor(estimate[key]).detach().double()
                      - torch.as_tensor(truth[key]).detach().to(torch.float64).to(torch.as_tensor(estimate[key]).device)
                      for key in truth}
        _, squared, bb = _dot_and_norms(difference, {key: torch.as_tensor(truth[key]) for key in truth})
        return math.sqrt(squared / bb) if bb > 0 else math.nan
    x = _float64(estimate, "the estimate")
    y = _float64(truth, "the truth").to(x.device)
    _, squared, bb = _dot_and_norms(x - y, y)
    if isinstance(squared, float):
        return math.sqrt(squared / bb) if bb > 0 else math.nan
    return _result((squared / bb).sqrt())


# -------------------------------------------------------------------------------------------------------
# confidence intervals


def t_quantile(count, level: float = LEVEL):
    """The two-sided t quantile ``t_{(1+level)/2, count-1}`` (NaN for ``count < 2``).

    >>> round(float(t_quantile(3)), 3), round(float(t_quantile(10**6)), 3)
    (4.303, 1.96)
    """
    from scipy import stats

    count = np.asarray(count, dtype=float)
    with np.errstate(invalid="ignore"):
        value = np.where(count >= 2, stats.t.ppf((1 + level) / 2, np.maximum(count - 1, 1)), np.nan)
    return value[()] if value.ndim == 0 else value


def ci_halfwidth(std, count, *, level: float = LEVEL):
    """Half-width of the confidence interval of a mean, ``t_{(1+level)/2, count-1} · std / sqrt(count)``.

    NaN for ``count < 2`` (one value has no interval).
    """
    std, count = np.asarray(std, dtype=float), np.asarray(count, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        value = t_quantile(count, level) * std / np.sqrt(np.maximum(count, 1.0))
    return value[()] if np.ndim(value) == 0 else value


def mean_ci(values: Sequence[float], *, level: float = LEVEL) -> tuple[float, float]:
    """``(mean, half-width)`` of the values, NaN values dropped (half-width NaN for fewer than two)."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return math.nan, math.nan
    std = float(values.std(ddof=1)) if values.size > 1 else math.nan
    return float(values.mean()), float(ci_halfwidth(std, values.size, level=level))


def add_ci(frame: pd.DataFrame, *, mean: str = "mean", std: str = "std", count: str = "count",
           level: float = LEVEL) -> pd.DataFrame:
    """A copy of ``frame`` (one row per group with its mean, std and count) with ``ci``, ``ci_low``, ``ci_high``."""
    out = frame.copy()
    out["ci"] = ci_halfwidth(out[std].to_numpy(dtype=float), out[count].to_numpy(dtype=float), level=level)
    out["ci_low"] = out[mean] - out["ci"]
    out["ci_high"] = out[mean] + out["ci"]
    return out


def summarize(frame: pd.DataFrame, value: str, by: str | Sequence[str], *, level: float = LEVEL) -> pd.DataFrame:
    """Mean, sample std, count and the t-based CI of ``value`` over the rows of each group of ``by``.

    >>> summarize(pd.DataFrame({"g": ["a", "a", "b"], "y": [1.0, 3.0, 5.0]}), "y", by="g")[["g", "mean", "count"]]
       g  mean  count
    0  a   2.0      2
    1  b   5.0      1
    """
    by = [by] if isinstance(by, str) else list(by)
    grouped = frame.groupby(by, sort=True, dropna=False)[value]
    table = grouped.agg(mean="mean", std="std", count="count").reset_index()
    return add_ci(table, level=level)


def format_ci(mean: float, ci: float | None = None, digits: int = 3) -> str:
    """``"0.494 ± 0.003"``; the ± part is dropped when the CI is undefined (one value); values below
    ``10^-digits`` in scientific notation (``"3.2e-05 ± 1.0e-05"``); a missing mean is ``"n/a"``."""
    if mean is None or not math.isfinite(float(mean)):
        return "n/a" if mean is None or math.isnan(float(mean)) else ("∞" if mean > 0 else "−∞")
    has_ci = ci is not None and math.isfinite(float(ci))
    if mean != 0 and abs(mean) < 10 ** -digits:  # tiny values (a converged f − f*) in scientific notation
        return f"{mean:.1e}" + (f" ± {ci:.1e}" if has_ci else "")
    if not has_ci:
        return f"{mean:.{digits}g}" if abs(mean) >= 10 ** digits else f"{mean:.{digits}f}"
    if abs(mean) >= 10 ** digits:
        return f"{mean:.1f} ± {ci:.1f}"
    return f"{mean:.{digits}f} ± {ci:.{digits}f}"


def paired_difference(a, b, *, level: float = LEVEL) -> tuple[float, float, int]:
    """``(mean, half-width, count)`` of the paired differences ``a_s − b_s`` over the keys ``s`` both have.

    ``a`` and ``b`` map a pairing key (a seed: the same data order and initial weights) to a value (Series or
    dicts); missing or NaN values drop their pair. The interval is :func:`mean_ci` of the differences, so a
    shared seed-to-seed spread cancels: ``a > b`` holds when ``compare(mean, ci, 0, 0)`` does. One pair has no
    interval (NaN half-width).

    >>> mean, ci, count = paired_difference({0: 0.95, 1: 0.85, 2: 0.90}, {0: 0.94, 1: 0.83, 2: 0.88, 3: 0.5})
    >>> round(mean, 4), round(ci, 4), count          # differences 0.01, 0.02, 0.02 over seeds 0-2
    (0.0167, 0.0143, 3)
    """
    difference = (pd.Series(a, dtype=float) - pd.Series(b, dtype=float)).dropna()
    mean, ci = mean_ci(difference.to_numpy(), level=level)
    return mean, ci, int(difference.size)


# -------------------------------------------------------------------------------------------------------
# verdicts


def verdict(value) -> str:
    """A verdict string from a verdict string or a bool (``True`` → holds, ``False`` → does not hold)."""
    if isinstance(value, str):
        if value not in VERDICTS:
            raise ValueError(f"unknown verdict {value!r}; use one of {VERDICTS}")
        return value
    if isinstance(value, (bool, np.bool_)):
        return HOLDS if value else FAILS
    raise TypeError(f"a verdict is one of {VERDICTS} (or a bool); got {type(value).__name__} {value!r}")


def compare(mean_a: float, ci_a: float, mean_b: float, ci_b: float, *, direction: str = "greater",
            resolution: float = 0.0) -> str:
    """Does ``a > b`` (``direction="greater"``) or ``a < b`` (``"less"``) hold, given their CIs?

    * ``"inconclusive"`` when either mean or CI is undefined (NaN: e.g. one seed), when
      ``|a − b| <= resolution`` (both at the numerical floor: ``0`` against an underflowed ``1e-175``), or
      when the intervals ``[mean ± ci]`` overlap (a tie at this number of runs);
    * else ``"holds"`` when ``a`` lies on the claimed side of ``b``, ``"does not hold"`` otherwise.

    Pass ``ci = 0`` for an exact number (a target such as 2.0, or a deterministic measurement).
    """
    if direction not in ("greater", "less"):
        raise ValueError(f"direction must be 'greater' or 'less'; got {direction!r}")
    values = [float(v) for v in (mean_a, ci_a, mean_b, ci_b)]
    if not all(math.isfinite(v) for v in values):
        return INCONCLUSIVE
    mean_a, ci_a, mean_b, ci_b = values
    if abs(mean_a - mean_b) <= resolution:
        return INCONCLUSIVE
    if mean_a - abs(ci_a) <= mean_b + abs(ci_b) and mean_b - abs(ci_b) <= mean_a + abs(ci_a):
        return INCONCLUSIVE
    greater = mean_a > mean_b
    return HOLDS if greater == (direction == "greater") else FAILS


def learned(mean: float, ci: float, baseline: float) -> bool:
    """Whether a run's accuracy is above ``baseline`` (chance, or the untrained net) beyond its CI.

    A run that did not learn cannot support or refute a claim: its rows are inconclusive.

    >>> learned(0.11, 0.02, 0.10), learned(0.60, 0.02, 0.10)
    (False, True)
    """
    ci = 0.0 if ci is None or not math.isfinite(float(ci)) else float(ci)
    return math.isfinite(float(mean)) and float(mean) - ci > float(baseline)
