"""Cost model of multi-tangent forward gradients: step time, memory and expected descent per second (RQ4).

Flügel et al. (arXiv 2410.17764, Sec. V, RQ4): k JVPs cost about k
forward-mode passes (or one vmapped pass with k-fold work), the tangents take ``k·n`` memory, the projection adds
``O(n k²)`` for its Gram matrix ``V Vᵀ`` and ``O(k³)`` for the solve, and forward mode stores no activations.
Hence the models fitted here to the measurements of :mod:`fg_analysis.bench` (the fitted coefficients of a
machine are in its stored benchmark records, not here):

* step time ``T(k) = fixed + per_tangent·k + quadratic·n·k²`` (the last term for the projection only),
  fitted by least squares (:func:`fit_step_time`) and checked on held-out k (:func:`held_out_errors`);
* break-even against backpropagation: the largest ``k`` with ``T(k) <= T_BP`` (:func:`break_even_k`);
* memory: ``M_BP(L) = params + activations·L`` against ``M_FG(k) = params + k·params + constant``
  (:func:`bp_memory`, :func:`fg_memory`, :func:`fit_linear`);
* descent per second: with a well-tuned step the expected decrease of an L-smooth loss per step is
  ``|g|² E[cos²(ĝ, g)] / (2L)``, so progress per unit time is ``R(k) = E[cos²](k, n) / T(k)``
  (:func:`progress_rate`), maximized over integer k by :func:`optimal_k`.

>>> model = fit_step_time([1, 2, 4, 8], [0.03, 0.05, 0.09, 0.17])
>>> round(model.fixed, 3), round(model.per_tangent, 3)
(0.01, 0.02)
>>> round(break_even_k(model, bp_seconds=0.05), 6)
2.0

References:
    Flügel, Coquelin, Weiel, Debus, Streit, Götz. Beyond Backpropagation: Optimization with Multi-Tangent
    Forward Gradients. arXiv:2410.17764. Baydin, Pearlmutter, Syme, Wood, Torr. Gradients without
    Backpropagation. arXiv:2202.08587.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import optimize

from fg_analysis import theory


@dataclass(frozen=True)
class StepTimeModel:
    """``T(k) = fixed + per_tangent·k + quadratic·n·k²`` seconds per training step with k tangents.

    ``n`` is the tangent dimension (number of parameters for weight perturbation); ``quadratic`` is the
    projection's per-``n·k²`` cost (its Gram matrix), 0 for the mean.
    """

    fixed: float
    per_tangent: float
    quadratic: float = 0.0
    n: int = 1

    def __call__(self, k) -> np.ndarray:
        k = np.asarray(k, dtype=float)
        return self.fixed + self.per_tangent * k + self.quadratic * self.n * k ** 2


def _design(k: np.ndarray, n: int, quadratic: bool) -> np.ndarray:
    columns = [np.ones_like(k), k] + ([n * k ** 2] if quadratic else [])
    return np.stack(columns, axis=1)


def fit_step_time(k, seconds, *, n: int = 1, quadratic: bool = False) -> StepTimeModel:
    """Least-squares fit of :class:`StepTimeModel` to measured ``(k, seconds)`` pairs.

    Minimizes ``Σ_j (T(k_j) - t_j)²`` over ``(fixed, per_tangent[, quadratic]) >= 0`` (non-negative least
    squares: every cost is positive, and timing noise must not buy a negative fixed cost or a falling
    ``T``) with the design matrix ``[1, k, n k²]``, its columns equilibrated. Exact (up to rounding) when
    the data follow the model with non-negative coefficients.

    Returns:
        The fitted :class:`StepTimeModel` (``quadratic = 0`` unless ``quadratic=True``).

    Raises:
        ValueError: with fewer distinct k than coefficients (2, or 3 with ``quadratic``), on mismatched lengths
            or on non-finite values.

    >>> round(fit_step_time([1, 2, 3], [4., 9., 16.], quadratic=True).quadratic, 9)  # 1 + 2k + k²
    1.0
    """
    k = np.asarray(k, dtype=float).ravel()
    t = np.asarray(seconds, dtype=float).ravel()
    if k.shape != t.shape:
        raise ValueError(f"need one time per k; got {k.size} values of k and {t.size} times")
    if not (np.all(np.isfinite(k)) and np.all(np.isfinite(t))):
        raise ValueError("k and seconds must be finite")
    needed = 3 if quadratic else 2
    if np.unique(k).size < needed:
        raise ValueError(f"fitting T(k) = fixed + per_tangent·k{' + quadratic·n·k²' if quadratic else ''} needs at "
                         f"least {needed} distinct values of k; got {np.unique(k).size} ({sorted(set(k.tolist()))}): "
                         "measure more k")
    design = _design(k, n, quadratic)
    scale = np.linalg.norm(design, axis=0)  # equilibrate the columns (n·k² dwarfs 1): keeps the fit exact
    coefficients = optimize.nnls(design / scale, t)[0] / scale
    return StepTimeModel(float(coefficients[0]), float(coefficients[1]),
                         float(coefficients[2]) if quadratic else 0.0, int(n))


def held_out_errors(k, seconds, fit_k, *, n: int = 1, quadratic: bool = False) -> pd.DataFrame:
    """Fit :class:`StepTimeModel` on the measurements whose k is in ``fit_k`` and predict all of them.

    Returns:
        Columns ``k, measured, predicted, relative_error`` (``predicted/measured - 1``) and ``held_out`` (True for
        the k not used in the fit).
    """
    k = np.asarray(k, dtype=float).ravel()
    t = np.asarray(seconds, dtype=float).ravel()
    used = np.isin(k, np.asarray(fit_k, dtype=float))
    model = fit_step_time(k[used], t[used], n=n, quadratic=quadratic)
    predicted = model(k)
    return pd.DataFrame({"k": k, "measured": t, "predicted": predicted, "relative_error": predicted / t - 1,
                         "held_out": ~used})


def break_even_k(model: StepTimeModel, bp_seconds: float) -> float:
    """The largest ``k >= 0`` with ``T_FG(k) <= T_BP``: FG with fewer tangents is cheaper per step than BP.

    Solves ``quadratic·n·k² + per_tangent·k + fixed - T_BP = 0`` for its larger root.

    Returns:
        The break-even k: 0.0 when even ``T(0) = fixed`` exceeds ``T_BP`` (no k is cheaper than BP), ``inf`` when
        ``T`` never reaches ``T_BP`` (non-increasing model). A result below 1 means that no whole number of
        tangents beats BP.
    """
    a, b, c = model.quadratic * model.n, model.per_tangent, model.fixed - bp_seconds
    if c > 0:
        return 0.0
    disc = b * b - 4 * a * c
    if disc < 0:  # only for a fitted a < 0: T stays below T_BP
        return math.inf
    if b > 0:
        # the first crossing above k = 0, in the cancellation-free form 2|c| / (b + sqrt(b² - 4ac)); it is
        # the root for a >= 0 and stays finite for a fitted a that is 0 or slightly negative
        return float(-2 * c / (b + math.sqrt(disc)))
    if a > 0:
        return float((-b + math.sqrt(disc)) / (2 * a))
    return math.inf


PROGRESS_MEASURES = ("mean_cos2", "squared_mean_cos")


def expected_progress(k, n, aggregator: str = "projection", *, measure: str = "mean_cos2") -> np.ndarray:
    """Expected progress of one well-tuned step relative to a gradient step: ``E[cos²(ĝ, g)]``.

    For an L-smooth loss and the step ``x - η ĝ`` with the best ``η = g·ĝ / (L|ĝ|²)`` the decrease is
    ``|g|² cos² / (2L)``, against ``|g|² / (2L)`` for the true gradient. With Gaussian tangents
    ``cos² ~ Beta(a, b)`` (:func:`fg_analysis.theory.cos2_parameters`), so ``E[cos²] = a / (a + b)``:
    ``k/n`` for the projection (1 for ``k >= n``) and ``k/(n + k - 1)`` for the mean.
    ``measure="squared_mean_cos"`` uses ``E[cos]²`` (:func:`fg_analysis.theory.expected_cosine`) instead, which is
    slightly smaller (Jensen) and close for large n.

    Returns:
        ``E[cos²]`` (or ``E[cos]²``) for every k.

    Raises:
        ValueError: for an unknown ``measure``.

    >>> float(expected_progress(16, 1024))
    0.015625
    """
    if measure == "squared_mean_cos":
        return theory.expected_cosine(aggregator, k, n) ** 2
    if measure != "mean_cos2":
        raise ValueError(f"unknown progress measure {measure!r}; choose one of {PROGRESS_MEASURES}")
    a, b = theory.cos2_parameters(aggregator, k, n)
    return a / (a + b)


def progress_rate(model: StepTimeModel, k, n, aggregator: str = "projection", *,
                  measure: str = "mean_cos2") -> np.ndarray:
    """Expected descent per second ``R(k) = E[cos²](k, n) / T(k)`` (a gradient step has ``E[cos²] = 1``).

    Returns:
        ``R(k)`` for every k, in units of a gradient step's expected descent per second.
    """
    return expected_progress(k, n, aggregator, measure=measure) / model(k)


def optimal_k(model: StepTimeModel, n: int, aggregator: str = "projection", *, k_max: int | None = None,
              measure: str = "mean_cos2") -> int:
    """The integer ``k`` in ``[1, k_max]`` that maximizes :func:`progress_rate` (smallest on ties).

    For the projection ``R(k) = (k/n) / (fixed + per_tangent·k + quadratic·n·k²)`` peaks at
    ``k* = sqrt(fixed / (quadratic·n))``; without the quadratic term it increases towards ``1/(n·per_tangent)``,
    so the best k is the largest allowed. ``k_max`` defaults to ``n`` (the projection is exact there).

    Returns:
        The best k.

    Raises:
        ValueError: for ``k_max < 1`` or a time model that is not positive on ``[1, k_max]``.
    """
    k_max = int(n if k_max is None else k_max)
    if k_max < 1:
        raise ValueError(f"k_max must be >= 1; got {k_max}")
    ks = np.arange(1, k_max + 1)
    rate = progress_rate(model, ks, n, aggregator, measure=measure)
    if not np.all(np.isfinite(rate)):
        raise ValueError("the time model is not positive on [1, k_max]; refit it on more measurements")
    return int(ks[int(np.argmax(rate))])


@dataclass(frozen=True)
class LinearFit:
    """``y = intercept + slope·x`` (e.g. memory against depth)."""

    intercept: float
    slope: float

    def __call__(self, x) -> np.ndarray:
        return self.intercept + self.slope * np.asarray(x, dtype=float)


def fit_linear(x, y) -> LinearFit:
    """Least-squares line through ``(x, y)``.

    Returns:
        The :class:`LinearFit`.

    Raises:
        ValueError: for mismatched lengths or fewer than two distinct x.
    """
    x = np.asarray(x, dtype=float).ravel()
    y = np.asarray(y, dtype=float).ravel()
    if x.shape != y.shape:
        raise ValueError(f"need one y per x; got {x.size} and {y.size}")
    if np.unique(x).size < 2:
        raise ValueError(f"a line needs at least 2 distinct x; got {np.unique(x).size}")
    (intercept, slope), *_ = np.linalg.lstsq(np.stack([np.ones_like(x), x], axis=1), y, rcond=None)
    return LinearFit(float(intercept), float(slope))


def bp_memory(depth, *, parameter_bytes: float, activation_bytes_per_layer: float, constant: float = 0.0):
    """Peak memory of a BP step: ``params + grads + activations·depth + constant``.

    Backpropagation keeps every layer's activations until the backward pass reaches it, so its peak grows
    linearly in depth (``activation_bytes_per_layer`` ≈ batch · width · bytes per stored tensor). The gradient
    is another parameter-sized buffer.

    Returns:
        The peak bytes for every depth.
    """
    return 2 * parameter_bytes + activation_bytes_per_layer * np.asarray(depth, dtype=float) + constant


def fg_memory(k, *, parameter_bytes: float, activation_bytes: float, constant: float = 0.0):
    """Peak memory of a forward-gradient step: ``params + k·params (tangents) + activations + constant``.

    Forward mode carries each layer's primal and its k tangents only until the next layer has consumed
    them, so ``activation_bytes`` (≈ (1 + k) · batch · width · bytes for an MLP) does not grow with depth.

    Returns:
        The peak bytes for every k.
    """
    k = np.asarray(k, dtype=float)
    return parameter_bytes + k * parameter_bytes + activation_bytes + constant


def pareto_frontier(frame: pd.DataFrame, *, cost_column: str = "wall_time_s",
                    value_column: str = "test_accuracy") -> pd.DataFrame:
    """The accuracy-against-cost frontier of a set of runs (e.g. :func:`fg_analysis.experiments.rq4.frontier`).

    A row is kept when no row at most as costly has a higher value; of equal rows the first by cost is kept.

    Returns:
        The kept rows, sorted by cost.
    """
    ordered = frame.sort_values([cost_column, value_column], ascending=[True, False])
    best, keep = -np.inf, []
    for index, value in zip(ordered.index, ordered[value_column]):
        if value > best:
            keep.append(index)
            best = value
    return ordered.loc[keep]
