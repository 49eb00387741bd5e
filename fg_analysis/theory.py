"""Closed-form theory of multi-tangent forward gradients with Gaussian tangents ``v_i ~ N(0, I_n)``.

By rotation invariance the true gradient ``g`` can be taken as ``|g| e_1``. With ``A = |V e_1|² ~ χ²_k`` and
independent ``B ~ χ²_{n-1}`` (sum/mean) or the Beta law of a random k-dimensional subspace (projection):

* projection: ``cos²(P_U g, g) ~ Beta(k/2, (n-k)/2)`` and ``|P_U g| / |g| = cos`` (it never overshoots);
* mean and sum: ``cos² = A / (A + B) ~ Beta(k/2, (n-1)/2)``, independent of ``A + B ~ χ²_{n+k-1}``, and
  ``|mean| / |g| = sqrt(A (A + B)) / k = cos · (A + B) / k``.

Hence (Flügel et al., arXiv 2410.17764, Sec. III)::

    E[cos_proj](k, n) = Γ((k+1)/2) Γ(n/2) / (Γ(k/2) Γ((n+1)/2))  = E[χ_k] / E[χ_n]   (1 for k >= n)
    E[cos_mean](k, n) = E[cos_proj](k, n + k - 1)
    E|mean|² / |g|²   = (n + k + 1) / k,         E|mean| / |g| = E[cos_mean] (n + k - 1) / k
    E|P_U g|² / |g|²  = k / n,                   E|g - P_U g|² / |g|² = (n - k) / n

All functions take numbers or NumPy arrays for ``k`` and ``n`` (broadcast together; one ``n`` for
:func:`min_tangents_for_cosine`), use ``lgamma``-based expressions (stable for n up to 10⁹) and return NumPy
arrays (0-d for scalar input). ``k`` and ``n`` must be positive integers (Python or NumPy integers, or integral
floats such as ``1e6``); anything else (2.5, NaN, 0, a bool, also inside a list such as ``[4, True]``) is a
ValueError naming the argument.

Rademacher tangents (entries ±1) are not rotation invariant, so their cosine depends on the direction of ``g``;
the closed forms that hold for them (``rademacher_*``: the single-tangent cosine for ``g`` all-ones or an axis,
``E[cos²]`` of the projection and ``E|ĝ|²`` of the mean for every ``g``) follow the Gaussian ones below.

>>> round(float(expected_cosine("projection", 16, 64)), 3), round(float(expected_cosine("mean", 16, 64)), 3)
(0.494, 0.444)
"""

from __future__ import annotations

import numbers

import numpy as np
from scipy import special, stats

AGGREGATOR_NAMES = ("projection", "mean", "sum")


def _not_numbers(value, array: np.ndarray) -> np.ndarray:
    """The mask of entries of ``value`` (read as ``array = np.asarray(value)``) that are not real numbers: all of
    a bool, complex, string or object array, and the bools of a list such as ``[4, True]``, which NumPy reads as
    the number 1."""
    if array.dtype.kind not in "iuf":
        return np.ones(array.shape, dtype=bool)
    if array.ndim == 0 or isinstance(value, np.ndarray):
        return np.zeros(array.shape, dtype=bool)
    return np.vectorize(lambda entry: isinstance(entry, (bool, np.bool_)), otypes=[bool])(
        np.asarray(value, dtype=object))


def _counts(value, name: str, minimum: int = 1) -> np.ndarray:
    """``value`` (a number or array of them) as a float array of integers ``>= minimum``, or a one-line ValueError
    naming the argument and its first bad entry. Python and NumPy integers pass, and so do integral floats such
    as ``1e6`` or a rounded grid; bool (also inside a list), non-integral floats, NaN, inf, values below
    ``minimum`` and non-numbers do not."""
    array = np.asarray(value)
    bad = _not_numbers(value, array)
    if not bad.any():
        with np.errstate(invalid="ignore"):
            bad = ~np.isfinite(array) | (array < minimum) | (array != np.floor(array))
    if np.any(bad):
        kind = "positive" if minimum == 1 else "non-negative"
        if array.ndim == 0:
            raise ValueError(f"{name} must be a {kind} integer; got {name}={value!r}")
        index = tuple(int(i) for i in np.argwhere(bad)[0])
        entry = array[index].item() if isinstance(value, np.ndarray) else np.asarray(value, dtype=object)[index]
        raise ValueError(f"{name} must be an array of {kind} integers; got {name}{list(index)}={entry!r}")
    return array.astype(float)


def _count(value, name: str) -> int:
    """One count by the rule of :func:`_counts`, for an argument that cannot be an array, as a Python int."""
    if np.ndim(value) != 0:
        raise ValueError(f"{name} must be one positive integer here; got an array of shape {np.shape(value)}")
    return int(_counts(value, name))


def _arrays(k, n):
    return np.broadcast_arrays(_counts(k, "k"), _counts(n, "n"))


def _check_name(aggregator: str) -> str:
    if aggregator not in AGGREGATOR_NAMES:
        raise ValueError(f"unknown aggregator {aggregator!r}; theory covers {AGGREGATOR_NAMES}")
    return aggregator


def expected_chi(m) -> np.ndarray:
    """``E[χ_m] = sqrt(2) Γ((m+1)/2) / Γ(m/2)``, the mean norm of an m-dimensional standard Gaussian."""
    m = _counts(m, "m")
    return np.sqrt(2.0) * np.exp(special.gammaln((m + 1) / 2) - special.gammaln(m / 2))


def _sqrt_beta_mean(a, b) -> np.ndarray:
    """``E[sqrt(X)]`` for ``X ~ Beta(a, b)``: ``Γ(a+½) Γ(a+b) / (Γ(a) Γ(a+b+½))``; 1 where ``b = 0``."""
    b_safe = np.where(b > 0, b, 1.0)
    value = np.exp(special.gammaln(a + 0.5) + special.gammaln(a + b_safe)
                   - special.gammaln(a) - special.gammaln(a + b_safe + 0.5))
    return np.where(b > 0, value, 1.0)


def cos2_parameters(aggregator: str, k, n) -> tuple[np.ndarray, np.ndarray]:
    """Beta parameters ``(a, b)`` of ``cos²(ĝ, g)``; ``b = 0`` means ``cos = 1`` surely.

    projection: ``(k/2, (n-k)/2)`` clipped at ``b = 0`` for ``k >= n``; mean and sum: ``(k/2, (n-1)/2)``.
    """
    _check_name(aggregator)
    k, n = _arrays(k, n)
    if aggregator == "projection":
        return k / 2, np.maximum(n - k, 0.0) / 2
    return k / 2, (n - 1) / 2


def cos2_distribution(aggregator: str, k: int, n: int):
    """The law of ``cos²(ĝ, g)`` as a frozen ``scipy.stats.beta`` (``None`` where ``cos = 1`` surely, i.e.
    the projection with ``k >= n``): its ``ppf``, ``cdf``, ``mean`` and ``rvs`` give bands and samples."""
    a, b = (float(value) for value in cos2_parameters(aggregator, k, n))
    return stats.beta(a, b) if b > 0 else None


def expected_cosine(aggregator: str, k, n) -> np.ndarray:
    """``E[cos(ĝ, g)]`` for Gaussian tangents: ``E[sqrt(X)]`` with ``X ~ Beta`` of :func:`cos2_parameters`.

    Equals ``E[χ_k]/E[χ_n] ≈ sqrt(k/n)`` for the projection; for k = 1 both aggregators give
    ``E[χ_1]/E[χ_n] = Γ(n/2) / (sqrt(π) Γ((n+1)/2)) ≈ sqrt(2/(π n))``.
    """
    return _sqrt_beta_mean(*cos2_parameters(aggregator, k, n))


def cosine_quantile(aggregator: str, k, n, q) -> np.ndarray:
    """The ``q``-quantile of ``cos(ĝ, g)`` (of a single estimate, not of a mean over samples).

    ``cos = sqrt(X)`` is monotone in ``X``, so it is ``sqrt(Beta.ppf(q, a, b))``; 1 where ``b = 0``.
    Use ``q = 0.025, 0.975`` for the central 95% band of individual samples.
    """
    a, b = cos2_parameters(aggregator, k, n)
    q_array = np.asarray(q)
    if q_array.dtype.kind not in "iuf" or not np.all((q_array >= 0) & (q_array <= 1)):
        raise ValueError(f"the quantile level q must lie in [0, 1]; got q={q!r}")
    b_safe = np.where(b > 0, b, 1.0)
    return np.where(b > 0, np.sqrt(stats.beta.ppf(q, a, b_safe)), 1.0)


def cosine_std(aggregator: str, k, n) -> np.ndarray:
    """Standard deviation of ``cos(ĝ, g)``: ``sqrt(E[X] - E[sqrt X]²)`` with ``E[X] = a / (a + b)``."""
    a, b = cos2_parameters(aggregator, k, n)
    second_moment = a / (a + b)
    return np.sqrt(np.maximum(second_moment - expected_cosine(aggregator, k, n) ** 2, 0.0))


def expected_squared_norm_ratio(aggregator: str, k, n) -> np.ndarray:
    """``E|ĝ|² / |g|²``: projection ``min(k, n)/n``; mean ``(n+k+1)/k``; sum ``k (n+k+1)``."""
    _check_name(aggregator)
    k, n = _arrays(k, n)
    if aggregator == "projection":
        return np.minimum(k, n) / n
    mean_ratio = (n + k + 1) / k
    return mean_ratio if aggregator == "mean" else k ** 2 * mean_ratio


def expected_norm_ratio(aggregator: str, k, n) -> np.ndarray:
    """``E|ĝ| / |g|``: projection ``E[cos]``; mean ``E[cos_mean] (n+k-1)/k``; sum ``k`` times the mean's.

    For the mean, ``|ĝ|/|g| = cos · S / k`` with ``S ~ χ²_{n+k-1}`` independent of ``cos``, so the mean
    overshoots ``|g|`` by about ``sqrt(n/k)``: the reason tuned learning rates of mean aggregation are
    orders of magnitude smaller than those of the projection in the paper's tables (about ``n/k`` times).
    """
    _check_name(aggregator)
    k, n = _arrays(k, n)
    cosine = expected_cosine(aggregator, k, n)
    if aggregator == "projection":
        return cosine
    mean_ratio = cosine * (n + k - 1) / k
    return mean_ratio if aggregator == "mean" else k * mean_ratio


def expected_projection_error(k, n) -> np.ndarray:
    """``E|g - P_U g|² / |g|² = 1 - E[cos²] = max(n - k, 0) / n``."""
    k, n = _arrays(k, n)
    return np.maximum(n - k, 0.0) / n


def projection_error_bound(k, n, delta: float = 0.05) -> np.ndarray:
    """Relative squared error ``|g - P_U g|² / |g|²`` that is exceeded with probability at most ``delta``.

    Exact, not a concentration inequality: the error is ``1 - X`` with ``X ~ Beta(k/2, (n-k)/2)``, so the
    bound is ``1 - Beta.ppf(delta, k/2, (n-k)/2)`` (0 for ``k >= n``).
    """
    if isinstance(delta, bool) or not isinstance(delta, numbers.Real) or not 0.0 < delta < 1.0:
        raise ValueError(f"delta must lie in (0, 1); got {delta!r}")
    k, n = _arrays(k, n)
    b = np.maximum(n - k, 0.0) / 2
    return np.where(b > 0, 1.0 - stats.beta.ppf(delta, k / 2, np.where(b > 0, b, 1.0)), 0.0)


def min_tangents_for_cosine(target: float, n: int, aggregator: str = "projection",
                            k_max: int | None = None) -> int | None:
    """The smallest ``k`` with ``E[cos](k, n) >= target``, or ``None`` if no ``k <= k_max`` reaches it.

    ``E[cos]`` increases with k, so this is a bisection. ``k_max`` defaults to ``n`` for the projection (where
    it reaches 1) and to ``1000 n`` for mean and sum (which approach 1 only as ``k → ∞``).
    """
    _check_name(aggregator)
    if isinstance(target, bool) or not isinstance(target, numbers.Real) or not 0.0 < target <= 1.0:
        raise ValueError(f"target cosine must lie in (0, 1]; got {target!r}")
    n = _count(n, "n")
    k_max = _count(k_max, "k_max") if k_max is not None else (n if aggregator == "projection" else 1000 * n)
    if expected_cosine(aggregator, k_max, n) < target:
        return None
    low, high = 1, k_max
    while low < high:
        middle = (low + high) // 2
        if expected_cosine(aggregator, middle, n) >= target:
            high = middle
        else:
            low = middle + 1
    return low


# ------------------------------------------------------------------------------------------------------------
# Rademacher tangents: entries i.i.d. ±1 (not rotation invariant, so the cosine depends on g's direction)


#: the directions of ``g`` with an exact single-tangent cosine under Rademacher tangents
RADEMACHER_GRADIENTS = ("ones", "axis")


def rademacher_single_cosine(n, gradient: str = "ones") -> np.ndarray:
    """``E[cos(ĝ, g)]`` of one forward gradient ``ĝ = (v·g) v`` along a Rademacher tangent ``v ∈ {±1}^n``.

    ``|v|² = n`` on every draw, so ``cos = |v·g| / (sqrt(n) |g|)`` and ``E[cos²] = E[(v·g)²] / (n |g|²) = 1/n``
    for every ``g``, as for Gaussian tangents; the mean ``E[cos] = E|v·g| / (sqrt(n) |g|)`` depends on ``g``:

    * ``"axis"`` (``g = e_j``): ``|v·g| = 1``, so ``cos = n^{-1/2}`` on every draw, Jensen's upper bound;
    * ``"ones"`` (``g = 1``, the paper's): ``v·g = S_n``, a sum of n signs, with de Moivre's mean absolute
      deviation ``E|S_n| = 2m C(n, m) / 2^n``, ``m = ⌊n/2⌋ + 1``, so ``E[cos] = E|S_n| / n`` (``C(n, n/2) / 2^n``
      for even n). A draw with ``S_n = 0`` (probability ``C(n, n/2)/2^n`` for even n) gives ``ĝ = 0``, counted
      as cosine 0.

    Every ``g`` lies between: ``1/sqrt(2n) ≤ E[cos] ≤ 1/sqrt(n)`` (Szarek's sharp Khintchine constant
    ``E|v·g| ≥ |g|/sqrt(2)``, attained at ``g = e_1 + e_2``; Jensen), around the Gaussian ``≈ sqrt(2/(π n))``
    (:func:`expected_cosine` with k = 1).

    >>> [round(float(rademacher_single_cosine(16, g)), 4) for g in RADEMACHER_GRADIENTS]
    [0.1964, 0.25]
    >>> round(float(expected_cosine("mean", 1, 16)), 4)     # Gaussian
    0.2026
    """
    if gradient not in RADEMACHER_GRADIENTS:
        raise ValueError(f"unknown gradient {gradient!r}; the exact single-tangent cosines are for "
                         f"{RADEMACHER_GRADIENTS}")
    n = _counts(n, "n")
    if gradient == "axis":
        return 1 / np.sqrt(n)
    m = np.floor(n / 2) + 1
    log_mean_absolute = (np.log(2 * m) + special.gammaln(n + 1) - special.gammaln(m + 1)
                         - special.gammaln(n - m + 1) - n * np.log(2.0))
    return np.exp(log_mean_absolute) / n


def rademacher_dependence_bound(k, n) -> np.ndarray:
    """An upper bound on the chance that ``k`` Rademacher tangents in ``R^n`` are linearly dependent:
    ``(2^k − 2) / 2^n``.

    A j-dimensional subspace holds at most ``2^j`` of the ``2^n`` sign vectors (Odlyzko's lemma), so
    ``P(v_j ∈ span(v_1..v_{j−1})) ≤ 2^{j−1−n}``, and the union over ``j = 2..k`` sums to the bound (0 for k = 1:
    a sign vector is never 0). It also bounds ``E[k − rank V]``, the expected number of such ``j``.
    Then :func:`fg_analysis.aggregate.projection` refuses the draw; Gaussian tangents are independent surely.

    >>> float(rademacher_dependence_bound(16, 64)) < 1e-14, float(rademacher_dependence_bound(2, 16))
    (True, 3.0517578125e-05)
    """
    k, n = _arrays(k, n)
    return np.exp2(-n) * (np.exp2(k) - 2)


def rademacher_projection_cos2_bounds(k, n) -> tuple[np.ndarray, np.ndarray]:
    """Bounds ``(low, high)`` on ``E[cos²(P_U g, g)] = E|P_U g|² / |g|²`` for k Rademacher tangents, any ``g``.

    Flipping the sign of a coordinate or permuting coordinates leaves the law of ``V`` unchanged and maps
    ``P_U`` to ``D P_U D`` (``D`` the signed permutation), so ``E[P_U]`` commutes with every signed permutation:
    ``E[P_U] = c I``, and ``tr P_U = rank V`` gives ``c = E[rank V] / n``. Hence
    ``E[cos²] = E[rank V] / n`` for every direction of ``g``, between ``k/n − (2^k − 2)/(n 2^n)``
    (:func:`rademacher_dependence_bound`) and ``k/n``, the Gaussian value (``k <= n``). Only the second moment is
    law-free: ``E[cos]`` itself depends on ``g``.
    """
    k, n = _arrays(k, n)
    if np.any(k > n):
        raise ValueError(f"the projection needs k <= n; got k={k!r}, n={n!r}")
    high = k / n
    return high - rademacher_dependence_bound(k, n) / n, high


def rademacher_squared_norm_ratio(aggregator: str, k, n) -> np.ndarray:
    """``E|ĝ|² / |g|²`` of the mean (``(n + k − 1)/k``) and the sum (``k (n + k − 1)``) of k Rademacher forward
    gradients, for every ``g``.

    ``|v|² = n`` surely gives ``E|(v·g) v|² = n E(v·g)² = n |g|²`` (Gaussian: ``(n + 2)|g|²``), and distinct
    tangents contribute ``E[(v_i·g)(v_j·g)(v_i·v_j)] = |g|²``, so ``E|Σ d_i v_i|² = (k n + k(k − 1)) |g|²``:
    shorter than the Gaussian ``(n + k + 1)/k`` (:func:`expected_squared_norm_ratio`) by ``2/k``.

    >>> float(rademacher_squared_norm_ratio("mean", 16, 64)), float(expected_squared_norm_ratio("mean", 16, 64))
    (4.9375, 5.0625)
    """
    if aggregator not in ("mean", "sum"):
        raise ValueError(f"the Rademacher norm closed form covers 'mean' and 'sum'; got {aggregator!r} "
                         "(the projection: rademacher_projection_cos2_bounds)")
    k, n = _arrays(k, n)
    mean_ratio = (n + k - 1) / k
    return mean_ratio if aggregator == "mean" else k ** 2 * mean_ratio


# ------------------------------------------------------------------------------------------------------------
# Guided tangents: m fixed guesses plus k Gaussian tangents (the "Beyond the paper" chapter)


def _guided_arrays(k, n, rho, m):
    """``(k, n, ρ, m)`` broadcast as float arrays: ``k >= 0`` and ``m >= 0`` integers, ``n > m``, ``ρ`` in [0, 1]
    (taken as 0 where ``m = 0``: without guesses ``P_U g = 0``)."""
    k_array, m_array, n_array = _counts(k, "k", minimum=0), _counts(m, "m", minimum=0), _counts(n, "n")
    if np.any(n_array <= m_array):
        raise ValueError(f"the dimension n must exceed the number of guesses m; got n={n!r}, m={m!r}")
    rho_array = np.asarray(rho)
    if np.any(_not_numbers(rho, rho_array)) or np.any(~np.isfinite(rho_array)) or np.any(rho_array < 0) \
            or np.any(rho_array > 1 + 1e-12):
        raise ValueError(f"rho = cos(P_U g, g) must be a number in [0, 1]; got rho={rho!r}")
    rho_array = np.clip(rho_array.astype(float), 0.0, 1.0)
    k_array, n_array, rho_array, m_array = np.broadcast_arrays(k_array, n_array, rho_array, m_array)
    return k_array, n_array, np.where(m_array == 0, 0.0, rho_array), m_array  # no guess: P_U g = 0


def guided_cos2_parameters(k, n, m=1) -> tuple[np.ndarray, np.ndarray]:
    """Beta parameters ``(a, b)`` of ``X = |P g⊥|² / |g⊥|²`` for the projection onto ``span{u_1..u_m, v_1..v_k}``.

    ``X ~ Beta(k/2, (n-m-k)/2)``: the k Gaussian tangents' components orthogonal to the m guesses span a uniformly
    random k-dimensional subspace of that (n-m)-dimensional complement; ``b = 0`` (``X = 1``) once ``k >= n - m``.
    """
    k, n, _, m = _guided_arrays(k, n, 0.0, m)
    return k / 2, np.maximum(n - m - k, 0.0) / 2


def guided_expected_cos2(k, n, rho, m=1) -> np.ndarray:
    """``E[cos²(ĝ, g)]`` of the projection onto m guesses and k Gaussian tangents in ``R^n``.

    With ``U = span{u_1..u_m}`` and ``ρ = cos(P_U g, g)`` (``|cos θ|`` for one guess at angle θ),
    ``span{U, V} = U ⊕ span(Q V)`` with ``Q`` the projection onto ``U⊥``, so ``P g = P_U g + P_{QV} g⊥`` and
    ``cos² = |P g|²/|g|² = ρ² + (1 - ρ²) X`` with ``X ~ Beta(k/2, (n-m-k)/2)`` (:func:`guided_cos2_parameters`).
    Hence::

        E[cos²] = ρ² + min(k, n - m) / (n - m) · (1 - ρ²)        (m = 1: cos²θ + k/(n-1) · sin²θ)

    ``m = 0`` gives the paper's ``k / n``. Exact for any ``g`` and guesses independent of the tangents.

    >>> float(guided_expected_cos2(4, 65, 0.5))      # 0.25 + 4/64 · 0.75
    0.296875
    """
    k, n, rho, m = _guided_arrays(k, n, rho, m)
    return rho ** 2 + np.minimum(k, n - m) / (n - m) * (1 - rho ** 2)


def guided_expected_cosine(k, n, rho, m=1) -> np.ndarray:
    """``E[cos(ĝ, g)] = E[sqrt(ρ² + (1 - ρ²) X)]``, ``X ~ Beta(k/2, (n-m-k)/2)``, by adaptive quadrature.

    ``ρ`` where ``k = 0`` (the guesses alone), 1 where ``k >= n - m``. See :func:`guided_expected_cos2`.
    """
    from scipy import integrate

    k, n, rho, m = _guided_arrays(k, n, rho, m)
    a, b = k / 2, np.maximum(n - m - k, 0.0) / 2
    out = np.empty(k.shape)
    for index in np.ndindex(k.shape):
        if a[index] == 0:
            out[index] = rho[index]
        elif b[index] == 0:
            out[index] = 1.0
        else:
            r2 = rho[index] ** 2
            law = stats.beta(a[index], b[index])
            low, high = law.ppf(1e-12), law.isf(1e-12)
            out[index] = integrate.quad(lambda x: np.sqrt(r2 + (1 - r2) * x) * law.pdf(x), low, high,
                                        limit=200, points=[law.mean()])[0]
    return out


def guided_mean_cosine(k, n, rho, m=1) -> np.ndarray:
    """``cos(E[ĝ], g)``: the direction of the *expected* guided estimate against ``g`` (its bias).

    ``E[P_{QV}] = c · I`` on ``U⊥`` with ``c = min(k, n - m)/(n - m)``, so ``E[ĝ] = P_U g + c g⊥``: the part of
    ``g`` outside the guesses is shrunk by ``c`` while the guessed part is kept, and no step size undoes that::

        cos(E[ĝ], g) = (ρ² + c (1 - ρ²)) / sqrt(ρ² + c² (1 - ρ²))

    It is 1 only for ``ρ = 1`` (a guess in the gradient's direction), ``ρ = 0`` with k ≥ 1 (the guess orthogonal,
    then ``E[ĝ] = c g``) or ``k >= n - m``. Random tangents alone (``m = 0``) are unbiased in direction.
    """
    k, n, rho, m = _guided_arrays(k, n, rho, m)
    c = np.minimum(k, n - m) / (n - m)
    r2 = rho ** 2
    with np.errstate(invalid="ignore", divide="ignore"):
        value = (r2 + c * (1 - r2)) / np.sqrt(r2 + c ** 2 * (1 - r2))
    return np.where((r2 == 0) & (c == 0), np.nan, value)
