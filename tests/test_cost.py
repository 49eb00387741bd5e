"""Tests of fg_analysis.bench.cost: exact recovery of known coefficients, break-even and optimal k against brute
force and closed forms, the progress measure against theory, and errors for too little data."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fg_analysis import theory
from fg_analysis.bench import cost


def test_fit_recovers_linear_coefficients_exactly():
    k = np.array([1, 2, 4, 8, 16])
    model = cost.fit_step_time(k, 0.012 + 0.0031 * k)
    assert model.fixed == pytest.approx(0.012, rel=1e-12)
    assert model.per_tangent == pytest.approx(0.0031, rel=1e-12)
    assert model.quadratic == 0.0


def test_fit_recovers_quadratic_coefficients_exactly():
    n, k = 100_000, np.array([1, 2, 4, 8, 16, 32])
    truth = cost.StepTimeModel(fixed=0.02, per_tangent=0.004, quadratic=3e-9, n=n)
    model = cost.fit_step_time(k, truth(k), n=n, quadratic=True)
    assert (model.fixed, model.per_tangent, model.quadratic) == pytest.approx(
        (truth.fixed, truth.per_tangent, truth.quadratic), rel=1e-9)
    assert model(64) == pytest.approx(truth(64), rel=1e-9)


@pytest.mark.parametrize("k, quadratic", [([4], False), ([4, 4, 4], False), ([1, 2], True), ([2, 2, 8], True)])
def test_fit_needs_enough_distinct_k(k, quadratic):
    with pytest.raises(ValueError, match="distinct values of k"):
        cost.fit_step_time(k, np.ones(len(k)), quadratic=quadratic)


def test_fit_rejects_mismatched_or_nonfinite_data():
    with pytest.raises(ValueError, match="one time per k"):
        cost.fit_step_time([1, 2, 3], [1.0, 2.0])
    with pytest.raises(ValueError, match="finite"):
        cost.fit_step_time([1, 2, 3], [1.0, np.nan, 2.0])


def test_held_out_errors_are_zero_for_model_data_and_flag_the_held_out_k():
    k = np.array([1, 2, 4, 8, 16, 32])
    check = cost.held_out_errors(k, 0.5 + 0.25 * k, fit_k=[1, 2, 4])
    assert list(check.held_out) == [False, False, False, True, True, True]
    assert np.abs(check.relative_error).max() < 1e-12


def test_held_out_errors_measure_extrapolation_error():
    k = np.array([1, 2, 4, 8])
    seconds = 1.0 + k + np.array([0, 0, 0, 3.0])  # the last point lies 3 s above the line through the others
    check = cost.held_out_errors(k, seconds, fit_k=[1, 2, 4])
    assert check.relative_error.iloc[-1] == pytest.approx(9.0 / 12.0 - 1)


def _brute_force_break_even(model, bp, k_max=200.0, step=1e-4):
    ks = np.arange(0.0, k_max, step)
    cheaper = ks[model(ks) <= bp]
    return cheaper.max() if cheaper.size else 0.0


@pytest.mark.parametrize("model, bp", [
    (cost.StepTimeModel(0.01, 0.02), 0.05),
    (cost.StepTimeModel(0.01, 0.02, quadratic=1e-6, n=1000), 0.5),
    (cost.StepTimeModel(0.03, 0.001, quadratic=2e-8, n=10_000), 0.031),
])
def test_break_even_matches_brute_force(model, bp):
    assert cost.break_even_k(model, bp) == pytest.approx(_brute_force_break_even(model, bp), abs=2e-4)
    assert model(cost.break_even_k(model, bp)) == pytest.approx(bp, rel=1e-9)


def test_break_even_edge_cases():
    assert cost.break_even_k(cost.StepTimeModel(0.2, 0.01), bp_seconds=0.1) == 0.0  # FG never cheaper
    assert cost.break_even_k(cost.StepTimeModel(0.05, 0.0), bp_seconds=0.1) == math.inf  # never reaches BP


def test_expected_progress_is_the_mean_of_cos2():
    n, k = 1024, np.array([1, 4, 16, 1024, 2048])
    assert cost.expected_progress(k, n) == pytest.approx(np.minimum(k, n) / n)
    assert cost.expected_progress(k, n, "mean") == pytest.approx(k / (n + k - 1))
    # Jensen: E[cos]^2 <= E[cos^2], close for large n
    squared = cost.expected_progress(k, n, measure="squared_mean_cos")
    assert np.all(squared <= cost.expected_progress(k, n) + 1e-12)
    assert squared[2] == pytest.approx(float(theory.expected_cosine("projection", 16, n)) ** 2)
    with pytest.raises(ValueError, match="progress measure"):
        cost.expected_progress(1, n, measure="speed")


def test_expected_progress_matches_monte_carlo():
    rng = np.random.default_rng(0)
    n, k, samples = 64, 8, 4000
    V = rng.standard_normal((samples, k, n))
    g = np.ones(n)
    coefficients = np.linalg.solve(V @ V.transpose(0, 2, 1), (V @ g)[..., None])[..., 0]
    estimate = np.einsum("sk,skn->sn", coefficients, V)
    cos2 = (estimate @ g) ** 2 / ((estimate ** 2).sum(-1) * n)
    assert cos2.mean() == pytest.approx(float(cost.expected_progress(k, n)), abs=4 * cos2.std() / math.sqrt(samples))


def test_optimal_k_matches_closed_form_and_brute_force():
    n = 50_000
    model = cost.StepTimeModel(fixed=0.04, per_tangent=0.003, quadratic=2e-9, n=n)
    continuous = math.sqrt(model.fixed / (model.quadratic * n))  # argmax of k / (a + b k + c n k^2)
    best = cost.optimal_k(model, n, k_max=1000)
    assert best in (math.floor(continuous), math.ceil(continuous))
    rates = [float(cost.progress_rate(model, k, n)) for k in range(1, 1001)]
    assert best == 1 + int(np.argmax(rates))


def test_optimal_k_without_quadratic_cost_is_the_largest_allowed():
    model = cost.StepTimeModel(fixed=0.04, per_tangent=0.003)
    assert cost.optimal_k(model, 1000, k_max=64) == 64
    assert cost.optimal_k(model, 16) == 16  # k_max defaults to n: the projection is exact there
    with pytest.raises(ValueError, match="k_max"):
        cost.optimal_k(model, 16, k_max=0)


def test_fit_linear_and_memory_models():
    depth = np.array([2, 4, 8, 16, 32])
    line = cost.fit_linear(depth, 10.0 + 3.0 * depth)
    assert (line.intercept, line.slope) == pytest.approx((10.0, 3.0))
    with pytest.raises(ValueError, match="2 distinct"):
        cost.fit_linear([3, 3], [1.0, 2.0])
    bp = cost.bp_memory(depth, parameter_bytes=100.0, activation_bytes_per_layer=50.0)
    assert bp[-1] / bp[0] == pytest.approx((200 + 50 * 32) / (200 + 50 * 2))
    fg = cost.fg_memory(16, parameter_bytes=100.0, activation_bytes=70.0)
    assert fg == pytest.approx(100 + 1600 + 70)


def test_pareto_frontier_keeps_the_undominated_runs():
    import pandas as pd
    runs = pd.DataFrame({"wall_time_s": [1.0, 2.0, 3.0, 4.0, 2.5], "test_accuracy": [0.5, 0.7, 0.6, 0.9, 0.7]})
    frontier = cost.pareto_frontier(runs)
    assert list(frontier.index) == [0, 1, 3]


def test_pareto_frontier_keeps_one_of_equal_runs_and_drops_slower_equal_accuracy():
    import pandas as pd
    runs = pd.DataFrame({"wall_time_s": [1.0, 1.0, 2.0, 3.0], "test_accuracy": [0.5, 0.5, 0.5, 0.6]})
    frontier = cost.pareto_frontier(runs)
    assert list(frontier.index) == [0, 3]  # the tie at 1 s once; 2 s buys nothing over 1 s
