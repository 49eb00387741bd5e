"""Closed-form theory against reference values, direct gamma-function formulas, and Monte Carlo run THROUGH THE
PACKAGE'S OWN tangents and aggregators (so theory and mechanics check each other).

Monte-Carlo tolerances are 5 standard errors of the sample (or 4 binomial standard errors for fractions);
the seeds are fixed. The heavier checks are marked ``slow`` and each has a light twin.
"""

import itertools
import math

import numpy as np
import pytest
import torch

from fg_analysis import theory
from fg_analysis.aggregate import mean, projection, total
from fg_analysis.tangents import Normal, Rademacher

AGGREGATE = {"projection": projection, "mean": mean, "sum": total}


def monte_carlo(aggregator, k, n, samples, seed=0):
    """Per-sample cosine, norm ratio |ĝ|/|g| and relative squared error |g - ĝ|²/|g|² (NumPy arrays)."""
    generator = torch.Generator().manual_seed(seed)
    g = torch.randn(n, generator=generator, dtype=torch.float64)  # any fixed g (rotation invariance)
    V = Normal().sample(k, n, batch_shape=(samples,), generator=generator, dtype=torch.float64)
    estimate = AGGREGATE[aggregator](V, V @ g)
    cosine = torch.nn.functional.cosine_similarity(estimate, g.expand_as(estimate), dim=-1)
    ratio = torch.linalg.vector_norm(estimate, dim=-1) / g.norm()
    error = torch.linalg.vector_norm(estimate - g, dim=-1) ** 2 / g.norm() ** 2
    return cosine.numpy(), ratio.numpy(), error.numpy()


def assert_mean_close(samples, expected, sigmas=5.0):
    standard_error = samples.std(ddof=1) / math.sqrt(len(samples))
    assert abs(samples.mean() - expected) <= sigmas * standard_error + 1e-12, \
        (samples.mean(), expected, standard_error)


def assert_fraction_close(flags, expected, sigmas=4.0):
    assert abs(flags.mean() - expected) <= sigmas * math.sqrt(expected * (1 - expected) / len(flags)), \
        (flags.mean(), expected)


def lgamma_cosine(k, n):
    """Γ((k+1)/2) Γ(n/2) / (Γ(k/2) Γ((n+1)/2)) straight from math.lgamma."""
    return math.exp(math.lgamma((k + 1) / 2) + math.lgamma(n / 2) - math.lgamma(k / 2) - math.lgamma((n + 1) / 2))


# ---------------------------------------------------------------- reference values and closed forms


@pytest.mark.parametrize("n,k,proj,avg", [(64, 16, 0.494, 0.444), (1024, 16, 0.123, 0.122), (16, 16, 1.000, 0.713),
                                         (1024, 1, 0.025, 0.025)])
def test_paper_reference_values(n, k, proj, avg):
    assert round(float(theory.expected_cosine("projection", k, n)), 3) == proj
    assert round(float(theory.expected_cosine("mean", k, n)), 3) == avg
    assert float(theory.expected_cosine("sum", k, n)) == float(theory.expected_cosine("mean", k, n))


@pytest.mark.parametrize("k,n", [(1, 1), (1, 2), (3, 10), (16, 64), (100, 4096)])
def test_projection_cosine_formula(k, n):
    assert math.isclose(float(theory.expected_cosine("projection", k, n)), lgamma_cosine(k, n), rel_tol=1e-12)
    ratio = float(theory.expected_chi(k) / theory.expected_chi(n))
    assert math.isclose(float(theory.expected_cosine("projection", k, n)), ratio, rel_tol=1e-12)
    # mean: the projection's formula with n + k - 1
    assert math.isclose(float(theory.expected_cosine("mean", k, n)), lgamma_cosine(k, n + k - 1), rel_tol=1e-12)


def test_expected_chi():
    assert math.isclose(float(theory.expected_chi(1)), math.sqrt(2 / math.pi), rel_tol=1e-14)
    assert math.isclose(float(theory.expected_chi(2)), math.sqrt(math.pi / 2), rel_tol=1e-14)
    assert math.isclose(float(theory.expected_chi(3)), 2 * math.sqrt(2 / math.pi), rel_tol=1e-14)


@pytest.mark.parametrize("n", [1, 2, 3, 10, 64, 1024])
def test_single_tangent_formula(n):
    """k = 1: E|cos| of a random direction, E[χ_1]/E[χ_n] = sqrt(2/π) / (sqrt(2) Γ((n+1)/2)/Γ(n/2))
    = Γ(n/2) / (sqrt(π) Γ((n+1)/2)) ≈ sqrt(2/(π n)); both aggregators coincide.

    (The form "sqrt(2/π) Γ(n/2)/Γ((n+1)/2)" drops the sqrt(2) of E[χ_n]: it would give sqrt(2) > 1 at n = 1.)
    """
    expected = math.exp(math.lgamma(n / 2) - math.lgamma((n + 1) / 2)) / math.sqrt(math.pi)
    for aggregator in ("projection", "mean", "sum"):
        assert math.isclose(float(theory.expected_cosine(aggregator, 1, n)), expected, rel_tol=1e-12)
    if n == 2:
        assert math.isclose(expected, 2 / math.pi, rel_tol=1e-14)  # E|cos φ| for φ uniform on the circle
    if n >= 64:
        assert math.isclose(expected, math.sqrt(2 / (math.pi * n)), rel_tol=0.01)


def test_full_rank_projection_is_exact():
    for k, n in [(16, 16), (20, 16), (1, 1), (5, 1)]:
        assert float(theory.expected_cosine("projection", k, n)) == 1.0
        assert float(theory.expected_norm_ratio("projection", k, n)) == 1.0
        assert float(theory.expected_squared_norm_ratio("projection", k, n)) == 1.0
        assert float(theory.expected_projection_error(k, n)) == 0.0
        assert float(theory.projection_error_bound(k, n, 0.05)) == 0.0
        assert float(theory.cosine_quantile("projection", k, n, 0.025)) == 1.0
        assert float(theory.cosine_std("projection", k, n)) == 0.0
    assert float(theory.expected_cosine("mean", 16, 16)) < 0.72  # the mean does not reach 1 at k = n


def test_monotone_in_k_and_n():
    ks = np.arange(1, 65)
    for aggregator in ("projection", "mean"):
        by_k = theory.expected_cosine(aggregator, ks, 64)
        assert np.all(np.diff(by_k) > 0)
        by_n = theory.expected_cosine(aggregator, 8, np.arange(8, 500))
        assert np.all(np.diff(by_n) < 0)
    # the projection is never worse than the mean
    assert np.all(theory.expected_cosine("projection", ks, 64) >= theory.expected_cosine("mean", ks, 64))


def test_vectorized():
    k, n = np.array([1, 4, 16]), np.array([16, 64, 256, 1024])
    grid = theory.expected_cosine("projection", k[:, None], n[None, :])
    assert grid.shape == (3, 4)
    for i, ki in enumerate(k):
        for j, nj in enumerate(n):
            assert grid[i, j] == pytest.approx(lgamma_cosine(int(ki), int(nj)), rel=1e-12)
    for function in (theory.expected_norm_ratio, theory.expected_squared_norm_ratio, theory.cosine_std):
        assert function("mean", k[:, None], n[None, :]).shape == (3, 4)
    assert theory.cosine_quantile("mean", k[:, None], n[None, :], 0.5).shape == (3, 4)
    assert theory.expected_projection_error(k[:, None], n[None, :]).shape == (3, 4)
    assert theory.projection_error_bound(k[:, None], n[None, :]).shape == (3, 4)
    assert np.ndim(theory.expected_cosine("mean", 2, 8)) == 0


def test_large_n_is_finite_and_asymptotic():
    for n in (1e6, 1e9):
        for aggregator in ("projection", "mean", "sum"):
            assert np.isfinite(theory.expected_cosine(aggregator, 16, n))
            assert np.isfinite(theory.expected_norm_ratio(aggregator, 16, n))
            assert np.isfinite(theory.cosine_std(aggregator, 16, n))
        assert float(theory.expected_cosine("projection", 16, n)) == pytest.approx(lgamma_cosine(16, n), rel=1e-9)
        assert float(theory.expected_cosine("projection", 16, n)) == pytest.approx(math.sqrt(16 / n), rel=0.02)
    assert float(theory.expected_norm_ratio("mean", 16, 1e6)) == pytest.approx(math.sqrt(1e6 / 16), rel=0.03)


def test_norm_formulas():
    k, n = 4, 100
    assert float(theory.expected_squared_norm_ratio("projection", k, n)) == pytest.approx(k / n)
    assert float(theory.expected_squared_norm_ratio("mean", k, n)) == pytest.approx((n + k + 1) / k)
    assert float(theory.expected_squared_norm_ratio("sum", k, n)) == pytest.approx(k * (n + k + 1))
    assert float(theory.expected_norm_ratio("sum", k, n)) == pytest.approx(k * float(
        theory.expected_norm_ratio("mean", k, n)))
    assert float(theory.expected_projection_error(k, n)) == pytest.approx((n - k) / n)
    # Jensen: E|ĝ|² >= (E|ĝ|)²
    for aggregator in ("projection", "mean", "sum"):
        assert theory.expected_squared_norm_ratio(aggregator, k, n) >= theory.expected_norm_ratio(aggregator, k, n) ** 2


def test_min_tangents_for_cosine():
    for n in (16, 64, 1024):
        for target in (0.1, 0.3, 0.5, 0.9, 0.99):
            for aggregator in ("projection", "mean"):
                k = theory.min_tangents_for_cosine(target, n, aggregator)
                assert k is not None and k >= 1
                assert theory.expected_cosine(aggregator, k, n) >= target
                if k > 1:
                    assert theory.expected_cosine(aggregator, k - 1, n) < target
    assert theory.min_tangents_for_cosine(1.0, 64) == 64
    assert theory.min_tangents_for_cosine(1e-6, 64) == 1
    assert theory.min_tangents_for_cosine(0.9, 64, "mean", k_max=10) is None
    assert theory.min_tangents_for_cosine(0.9, 64, "projection", k_max=10) is None


@pytest.mark.parametrize("call", [
    lambda: theory.expected_cosine("median", 2, 4),
    lambda: theory.expected_norm_ratio("frog", 2, 4),
    lambda: theory.expected_squared_norm_ratio("Mean", 2, 4),
    lambda: theory.cosine_quantile("x", 2, 4, 0.5),
    lambda: theory.min_tangents_for_cosine(0.5, 16, "avg"),
], ids=["cosine", "norm", "squared", "quantile", "min-k"])
def test_bad_aggregator_name(call):
    with pytest.raises(ValueError, match="unknown aggregator"):
        call()


@pytest.mark.parametrize("call, message", [
    (lambda: theory.expected_cosine("projection", 0, 4), r"^k must be a positive integer; got k=0$"),
    (lambda: theory.expected_cosine("mean", 2, 0), r"^n must be a positive integer; got n=0$"),
    (lambda: theory.expected_cosine("mean", np.array([1, 0]), 4), r"got k\[1\]=0$"),
    (lambda: theory.expected_norm_ratio("sum", -1, 4), r"got k=-1$"),
    (lambda: theory.expected_projection_error(0, 4), r"got k=0$"),
    (lambda: theory.projection_error_bound(0, 4), r"got k=0$"),
    (lambda: theory.expected_cosine("projection", float("nan"), 4), r"got k=nan$"),
    (lambda: theory.expected_cosine("mean", 2.5, 4), r"got k=2.5$"),
    (lambda: theory.expected_cosine("mean", 2, np.array([8.0, 8.5])), r"got n\[1\]=8.5$"),
    (lambda: theory.cos2_parameters("mean", True, 4), r"got k=True$"),
    (lambda: theory.expected_chi(float("inf")), r"^m must be a positive integer; got m=inf$"),
    (lambda: theory.min_tangents_for_cosine(0.5, 64.5), r"^n must be a positive integer; got n=64.5$"),
    (lambda: theory.min_tangents_for_cosine(0.5, 64, k_max=0), r"^k_max must be a positive integer; got k_max=0$"),
    (lambda: theory.min_tangents_for_cosine(0.5, True), r"^n must be a positive integer; got n=True$"),
    (lambda: theory.min_tangents_for_cosine(0.5, [8, 16]), r"^n must be one positive integer here; got an array"),
    (lambda: theory.expected_cosine("mean", [4, True], 8),
     r"^k must be an array of positive integers; got k\[1\]=True$"),
    (lambda: theory.expected_cosine("mean", 2, [[8.0, 9.0], [np.True_, 8.0]]), r"got n\[1, 0\]=np.True_$|=True$"),
    (lambda: theory.guided_expected_cos2(True, 65, 0.5), r"^k must be a non-negative integer; got k=True$"),
    (lambda: theory.guided_expected_cos2(2, 65, 0.5, m=[1, False]), r"^m must be an array of non-negative integers"),
    (lambda: theory.guided_expected_cos2(2, 65, True), r"^rho = cos\(P_U g, g\) must be a number in \[0, 1\]"),
], ids=["k0", "n0", "array", "norm", "error", "bound", "nan", "fraction", "array-fraction", "bool", "chi-inf",
        "bisection-n", "bisection-k_max", "bisection-bool", "bisection-array", "list-bool", "nested-bool",
        "guided-k-bool", "guided-m-bool", "guided-rho-bool"])
def test_bad_k_or_n(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_numpy_integers_and_integral_floats_are_counts():
    """np.int64 (what iterating a NumPy grid gives) and integral floats (1e6, rounded grids) are accepted and
    give what Python ints give; before, k=nan gave E[cos] = 1.0 and k=2.5 a number for a non-existent law."""
    for function in (theory.expected_cosine, theory.expected_norm_ratio, theory.expected_squared_norm_ratio,
                     theory.cosine_std):
        assert float(function("mean", np.int64(4), np.int32(64))) == float(function("mean", 4, 64))
        assert float(function("projection", 4.0, 1e2)) == float(function("projection", 4, 100))
    assert float(theory.expected_chi(np.uint8(3))) == float(theory.expected_chi(3))
    assert theory.min_tangents_for_cosine(0.5, np.int64(64)) == theory.min_tangents_for_cosine(0.5, 64)
    assert theory.min_tangents_for_cosine(0.5, 64.0, k_max=64.0) == theory.min_tangents_for_cosine(0.5, 64)
    assert float(theory.guided_expected_cos2(np.int64(4), 65.0, 0.5, m=1.0)) == float(
        theory.guided_expected_cos2(4, 65, 0.5))
    assert theory.cos2_distribution("mean", np.int64(2), np.int64(8)).mean() == pytest.approx(2 / 9)


def test_bad_quantile_level():
    for q in (-0.1, 1.5, float("nan"), "half"):
        with pytest.raises(ValueError, match="quantile level q must lie in"):
            theory.cosine_quantile("mean", 2, 8, q)


def test_bad_delta_and_target():
    for delta in (0.0, 1.0, -0.1, 1.5):
        with pytest.raises(ValueError, match="delta"):
            theory.projection_error_bound(2, 8, delta)
    for target in (0.0, 1.1, -0.5):
        with pytest.raises(ValueError, match="target"):
            theory.min_tangents_for_cosine(target, 8)


# ---------------------------------------------------------------- Monte Carlo through the package's mechanics


def check_against_monte_carlo(aggregator, k, n, samples, seed):
    cosine, ratio, error = monte_carlo(aggregator, k, n, samples, seed)
    # moments
    assert abs(cosine.mean() - float(theory.expected_cosine(aggregator, k, n))) < 0.01
    assert_mean_close(cosine, float(theory.expected_cosine(aggregator, k, n)))
    assert cosine.std(ddof=1) == pytest.approx(float(theory.cosine_std(aggregator, k, n)), rel=0.1, abs=1e-3)
    assert_mean_close(ratio, float(theory.expected_norm_ratio(aggregator, k, n)))
    assert_mean_close(ratio ** 2, float(theory.expected_squared_norm_ratio(aggregator, k, n)))
    if aggregator == "projection":
        assert np.allclose(ratio, cosine, atol=1e-10)  # the projection never overshoots: |P g|/|g| = cos
        assert np.allclose(error, 1 - cosine ** 2, atol=1e-10)
        assert_mean_close(error, float(theory.expected_projection_error(k, n)))
    # quantiles of single samples
    for q in (0.025, 0.5, 0.975):
        assert_fraction_close(cosine < float(theory.cosine_quantile(aggregator, k, n, q)), q)
    if aggregator == "projection":
        for delta in (0.05, 0.2):
            assert_fraction_close(error > float(theory.projection_error_bound(k, n, delta)), delta)


LIGHT = [("projection", 16, 64), ("mean", 16, 64), ("sum", 4, 32), ("projection", 1, 20), ("mean", 8, 8)]
HEAVY = [("projection", 16, 1024, 2000), ("mean", 16, 256, 2000), ("projection", 48, 64, 2000),
         ("mean", 64, 64, 3000), ("sum", 32, 128, 2000), ("projection", 2, 3, 20000), ("mean", 1, 500, 10000),
         ("projection", 16, 64, 10000), ("mean", 16, 64, 10000)]


@pytest.mark.parametrize("aggregator,k,n", LIGHT)
def test_monte_carlo(aggregator, k, n):
    check_against_monte_carlo(aggregator, k, n, 2000, seed=k + n)


@pytest.mark.slow
@pytest.mark.parametrize("aggregator,k,n,samples", HEAVY)
def test_monte_carlo_heavy(aggregator, k, n, samples):
    check_against_monte_carlo(aggregator, k, n, samples, seed=2 + k + n)


def test_monte_carlo_check_has_power():
    """The moment check rejects a wrong theory: the mean's cosine with the projection's formula at n = 64."""
    cosine, _, _ = monte_carlo("mean", 16, 64, 2000, seed=80)
    with pytest.raises(AssertionError):
        assert_mean_close(cosine, float(theory.expected_cosine("projection", 16, 64)))


def test_cos2_distribution_is_the_beta_law_of_monte_carlo_cos2():
    from scipy import stats

    cos2_distribution = theory.cos2_distribution
    n, k = 32, 4
    g = torch.ones(n, dtype=torch.float64)
    V = Normal().sample(k, n, batch_shape=(4000,), generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    estimate = projection(V, V @ g)
    cos2 = (torch.nn.functional.cosine_similarity(estimate, g.expand_as(estimate), dim=-1) ** 2).numpy()
    law = cos2_distribution("projection", k, n)
    assert stats.kstest(cos2, law.cdf).pvalue > 1e-3
    assert cos2_distribution("projection", n, n) is None


# ---------------------------------------------------------------- Rademacher tangents


def sign_vectors(n):
    """All 2^n vectors of {-1, +1}^n, one a row (exact enumeration: an independent reference)."""
    return np.array(list(itertools.product((-1.0, 1.0), repeat=n)))


@pytest.mark.parametrize("n", [1, 2, 3, 7, 10, 11])
def test_rademacher_single_cosine_by_enumeration(n):
    """E|v·g|/(sqrt(n)|g|) over every sign vector: all-ones gives the de Moivre form, an axis 1/sqrt(n); a generic g
    lies within Szarek's and Jensen's bounds, and E[cos²] = 1/n for each of them."""
    signs = sign_vectors(n)
    g_generic = np.random.default_rng(n).standard_normal(n)
    for name, g in (("ones", np.ones(n)), ("axis", np.eye(n)[0]), ("generic", g_generic)):
        cosine = np.abs(signs @ g) / (math.sqrt(n) * np.linalg.norm(g))
        assert (cosine ** 2).mean() == pytest.approx(1 / n, rel=1e-12)
        assert 1 / math.sqrt(2 * n) - 1e-12 <= cosine.mean() <= 1 / math.sqrt(n) + 1e-12
        if name in theory.RADEMACHER_GRADIENTS:
            assert float(theory.rademacher_single_cosine(n, name)) == pytest.approx(cosine.mean(), rel=1e-12)
    # n = 2, g = all-ones is e_1 + e_2 rotated: Szarek's bound is attained there
    assert float(theory.rademacher_single_cosine(2, "ones")) == pytest.approx(1 / 2, rel=1e-12)
    with pytest.raises(ValueError, match="unknown gradient"):
        theory.rademacher_single_cosine(4, "generic")


def test_rademacher_single_cosine_through_the_package():
    """One forward gradient of the package's Rademacher tangents and mean aggregator, g = all-ones at n = 1000:
    the closed form against 5 standard errors, at large n next to the Gaussian value (both ≈ sqrt(2/(π n)))."""
    n = 1000
    g = torch.ones(n, dtype=torch.float64)
    V = Rademacher().sample(1, n, batch_shape=(4000,), generator=torch.Generator().manual_seed(5),
                            dtype=torch.float64)
    estimate = mean(V, V @ g)
    cosine = torch.nan_to_num(torch.nn.functional.cosine_similarity(estimate, g.expand_as(estimate), dim=-1))
    assert_mean_close(cosine.numpy(), float(theory.rademacher_single_cosine(n, "ones")))
    assert float(theory.rademacher_single_cosine(n, "ones")) == pytest.approx(
        float(theory.expected_cosine("mean", 1, n)), rel=1 / n)
    assert float(theory.rademacher_single_cosine(4, "axis")) == 0.5


@pytest.mark.parametrize("k,n", [(2, 3), (2, 5), (3, 3), (3, 4), (4, 4)])
def test_rademacher_dependence_bound_by_enumeration(k, n):
    """The share of all 2^(kn) sign matrices of rank < k is at most (2^k − 2)/2^n, with equality at k = 2
    (v_2 = ±v_1); and so is the mean of k − rank."""
    rows = sign_vectors(n)
    matrices = np.stack(np.meshgrid(*[np.arange(len(rows))] * k, indexing="ij"), -1).reshape(-1, k)
    ranks = np.linalg.matrix_rank(rows[matrices])
    bound = float(theory.rademacher_dependence_bound(k, n))
    assert (ranks < k).mean() <= bound + 1e-12 and (k - ranks).mean() <= bound + 1e-12
    if k == 2:
        assert (ranks < k).mean() == pytest.approx(bound, rel=1e-12)
    assert float(theory.rademacher_dependence_bound(1, n)) == 0.0


@pytest.mark.parametrize("k,n", [(4, 6), (8, 32)])
def test_rademacher_projection_cos2_is_the_expected_rank_over_n(k, n):
    """E[cos²(P_U g, g)] = E[rank V]/n for any g, here a generic one; P_U g by least squares (dependent draws
    included), the tangents the package's; within its bounds, and k/n where dependence is rare."""
    generator = torch.Generator().manual_seed(k * n)
    g = torch.randn(n, generator=generator, dtype=torch.float64).numpy()
    V = Rademacher().sample(k, n, batch_shape=(4000,), generator=generator, dtype=torch.float64).numpy()
    cos2, ranks = [], []
    for tangents in V:
        coefficients = np.linalg.lstsq(tangents.T, g, rcond=None)[0]
        cos2.append(np.sum((tangents.T @ coefficients) ** 2) / (g @ g))
        ranks.append(np.linalg.matrix_rank(tangents))
    cos2 = np.array(cos2)
    assert_mean_close(cos2, np.mean(ranks) / n)
    low, high = (float(b) for b in theory.rademacher_projection_cos2_bounds(k, n))
    assert low <= high == k / n
    assert low - 5 * cos2.std() / math.sqrt(len(cos2)) <= cos2.mean() <= high + 5 * cos2.std() / math.sqrt(len(cos2))
    if n == 32:
        assert_mean_close(cos2, k / n)
    with pytest.raises(ValueError, match="k <= n"):
        theory.rademacher_projection_cos2_bounds(5, 4)


def test_rademacher_mean_norm_through_the_package():
    """E|mean|²/|g|² = (n + k − 1)/k for Rademacher tangents (a generic g, the package's tangents and mean), and
    the check has power: the Gaussian (n + k + 1)/k is rejected."""
    n, k = 8, 2
    generator = torch.Generator().manual_seed(11)
    g = torch.randn(n, generator=generator, dtype=torch.float64)
    V = Rademacher().sample(k, n, batch_shape=(20000,), generator=generator, dtype=torch.float64)
    squared = (torch.linalg.vector_norm(mean(V, V @ g), dim=-1) ** 2 / g.norm() ** 2).numpy()
    assert_mean_close(squared, float(theory.rademacher_squared_norm_ratio("mean", k, n)))
    with pytest.raises(AssertionError):
        assert_mean_close(squared, float(theory.expected_squared_norm_ratio("mean", k, n)))
    summed = (torch.linalg.vector_norm(total(V, V @ g), dim=-1) ** 2 / g.norm() ** 2).numpy()
    assert_mean_close(summed, float(theory.rademacher_squared_norm_ratio("sum", k, n)))
    with pytest.raises(ValueError, match="'mean' and 'sum'"):
        theory.rademacher_squared_norm_ratio("projection", k, n)
