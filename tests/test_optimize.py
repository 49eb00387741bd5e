"""Plain gradient descent on the closed-form problems (:mod:`fg_analysis.optimize`): BP and forward gradients, the
stopping rules, float32 positions, divergence.

References: the known minima, autograd gradients, and runs constructed so the stopping rules must fire at a known
step. The problems are tested in ``test_problems.py``, the learning-rate tables in ``test_learning_rates.py``.
"""

import math

import numpy as np
import pandas as pd
import pytest
import torch

from fg_analysis import theory
from fg_analysis.experiments.learning_rates import closed_form_rate as paper_learning_rate
from fg_analysis.optimize import descend, minimize
from fg_analysis.problems import PROBLEMS

COLUMNS = {"step", "f", "cosine", "norm_ratio"}


# ---------------------------------------------------------------- gradient descent


def test_bp_reaches_styblinski_tang_minimum():
    trace = minimize("styblinski-tang", 64, method="bp", lr=paper_learning_rate("styblinski-tang", 64, method="bp"))
    assert COLUMNS <= set(trace.columns)
    assert float(trace["f"].min()) == pytest.approx(-2506.6, abs=0.1)
    assert float(trace["best_f"].iloc[-1]) == pytest.approx(PROBLEMS["styblinski-tang"].minimum(64), abs=1e-6)
    defined = trace[trace["cosine"].notna()]  # cos and |ĝ|/|g| are undefined where the gradient is exactly 0
    assert len(defined) > 0.5 * len(trace)
    np.testing.assert_allclose(defined["cosine"], 1.0, atol=1e-12)
    np.testing.assert_allclose(defined["norm_ratio"], 1.0, atol=1e-12)
    assert trace["step"].tolist() == list(range(len(trace)))
    assert trace["best_f"].is_monotonic_decreasing


@pytest.mark.slow
def test_fg_projection_reaches_styblinski_tang_minimum():
    """The paper's setting: projection, k = 16, n = 64, its tuned rate, seed 0 (oracle JVPs for speed)."""
    rate = paper_learning_rate("styblinski-tang", 64, method="fg", k=16, aggregator="projection")
    trace = minimize("styblinski-tang", 64, method="fg", k=16, aggregator="projection", lr=rate, seed=0, mode="oracle")
    assert float(trace["best_f"].iloc[-1]) == pytest.approx(-2506.6, abs=0.1)
    assert bool((trace["cosine"] > 0).all()) and bool((trace["norm_ratio"] <= trace["cosine"] + 1e-12).all())


def test_fg_projection_on_sphere():
    """Light twin: the projection with the paper's sphere rate drives f to ~0; the cosine stays ≈ E[cos]."""
    rate = paper_learning_rate("sphere", 16, method="fg", k=4, aggregator="projection")
    trace = minimize("sphere", 16, method="fg", k=4, aggregator="projection", lr=rate, seed=0, mode="oracle",
                     max_steps=100)
    assert float(trace["best_f"].iloc[-1]) < 1e-10 * float(trace["f"].iloc[0])
    assert float(trace["cosine"].mean()) == pytest.approx(
        float(theory.expected_cosine("projection", 4, 16)), abs=0.05)
    np.testing.assert_allclose(trace["norm_ratio"], trace["cosine"], atol=1e-10)  # projection: |ĝ|/|g| = cos


def test_jvp_and_oracle_traces_identical():
    options = dict(method="fg", k=3, aggregator="mean", lr=0.002, seed=4, max_steps=60)
    jvp = minimize("styblinski-tang", 8, mode="forward", **options)
    oracle = minimize("styblinski-tang", 8, mode="oracle", **options)
    assert list(jvp.columns) == list(oracle.columns) and len(jvp) == len(oracle)
    pd.testing.assert_frame_equal(jvp, oracle, check_exact=False, rtol=1e-10, atol=1e-10)


def test_descend_equals_single_seed_runs():
    options = dict(method="fg", k=2, aggregator="projection", lr=1e-3, max_steps=40, mode="forward")
    together = descend("rosenbrock", 6, seeds=(0, 1, 2), **options)
    assert sorted(together["seed"].unique()) == [0, 1, 2]
    for seed in (0, 1, 2):
        alone = minimize("rosenbrock", 6, seed=seed, **options)
        part = together[together["seed"] == seed].reset_index(drop=True)
        pd.testing.assert_frame_equal(part, alone, check_exact=False, rtol=1e-10, atol=1e-12)


def test_seeds_give_different_runs():
    trace = descend("sphere", 8, method="fg", k=2, aggregator="mean", lr=1e-3, seeds=(0, 1), max_steps=5)
    f0 = trace[trace["seed"] == 0]["f"].to_numpy()
    f1 = trace[trace["seed"] == 1]["f"].to_numpy()
    assert f0[0] == f1[0] and not np.array_equal(f0, f1)


@pytest.mark.parametrize("patience", [50, 3])
def test_patience_stops_exactly(patience):
    """Sphere with lr = 1: x ← x − 2x = −x, so f never improves after step 0 and the run must stop at step
    ``patience`` (the ``patience``-th consecutive non-improving step)."""
    trace = minimize("sphere", 4, method="bp", lr=1.0, patience=patience)
    assert trace["step"].iloc[-1] == patience
    assert len(trace) == patience + 1
    assert trace["stopped"].iloc[-1] == "patience"
    assert (trace["stopped"].iloc[:-1] == "").all()
    np.testing.assert_allclose(trace["f"], 4.0)


def test_patience_counts_only_consecutive_stalls():
    """One improvement resets the count: Styblinski–Tang with bp keeps improving, so a patience of 1 does not
    stop it before the minimum is (numerically) reached."""
    trace = minimize("styblinski-tang", 4, method="bp", lr=0.05, patience=1, max_steps=2000)
    assert trace["stopped"].iloc[-1] == "patience"
    assert float(trace["best_f"].iloc[-1]) == pytest.approx(PROBLEMS["styblinski-tang"].minimum(4), abs=1e-6)
    improving = np.diff(trace["f"].to_numpy())[:-1]
    assert bool((improving < 0).all())


def _reference_stop(values, patience, rule):
    """The step at which a run with the value sequence ``values`` stops, by the rules written out in plain Python
    (the reference's ``check_stop_criteria``: a count of steps with ``f_t >= f_{t-1}``, reset by any decrease; or
    steps without a new best value)."""
    count, best = 0, values[0]
    for step in range(1, len(values)):
        if rule == "no-decrease":
            count = count + 1 if values[step] >= values[step - 1] else 0
        else:
            count = 0 if values[step] < best else count + 1
            best = min(best, values[step])
        if count >= patience:
            return step
    return None


@pytest.mark.parametrize("rule", ["no-decrease", "no-new-best"])
def test_stopping_rules_match_plain_python(rule):
    """A noisy FG run on Rosenbrock stops exactly where the rule, applied to its unstopped value sequence, says."""
    options = dict(method="fg", k=1, aggregator="mean", lr=1e-3, seed=3, mode="oracle", max_steps=3000)
    free = minimize("rosenbrock", 4, patience=10 ** 6, stopping=rule, **options)["f"].to_numpy()
    expected = _reference_stop(free, 5, rule)
    assert expected is not None and expected < 3000
    trace = minimize("rosenbrock", 4, patience=5, stopping=rule, **options)
    assert trace["step"].iloc[-1] == expected and trace["stopped"].iloc[-1] == "patience"
    np.testing.assert_array_equal(trace["f"].to_numpy(), free[:expected + 1])


def test_reference_rule_runs_longer_than_new_best_rule():
    """The reference's rule lets a noisy forward-gradient run go on where "no new best" stops it."""
    options = dict(method="fg", k=1, aggregator="mean", lr=1e-3, seed=3, mode="oracle", max_steps=3000,
                   patience=5)
    steps = {rule: minimize("rosenbrock", 4, stopping=rule, **options)["step"].iloc[-1]
             for rule in ("no-decrease", "no-new-best")}
    assert steps["no-decrease"] > steps["no-new-best"]


def test_float32_positions():
    """The reference's dtype: every value is a float32 number, and BP still reaches the minimum to float32's
    resolution."""
    trace = minimize("styblinski-tang", 8, method="bp", lr=paper_learning_rate("styblinski-tang", 8, method="bp"),
                     dtype=torch.float32)
    values = trace["f"].to_numpy()
    np.testing.assert_array_equal(values.astype(np.float32).astype(np.float64), values)
    minimum = PROBLEMS["styblinski-tang"].minimum(8)
    assert abs(float(trace["best_f"].iloc[-1]) - minimum) < 1e-5 * abs(minimum)


def test_max_steps_stop():
    trace = minimize("sphere", 4, method="bp", lr=0.01, max_steps=7)
    assert trace["step"].tolist() == list(range(8))
    assert trace["stopped"].iloc[-1] == "max_steps"


def test_non_finite_stops():
    trace = minimize("styblinski-tang", 4, method="bp", lr=1e100)
    assert trace["stopped"].iloc[-1] == "non-finite"
    assert not math.isfinite(trace["f"].iloc[-1])
    assert len(trace) <= 5


def test_record_every():
    trace = descend("sphere", 4, method="bp", lr=0.1, max_steps=20, record_every=5)
    assert trace["step"].tolist() == [0, 5, 10, 15, 20]


def test_errors():
    with pytest.raises(ValueError, match="unknown problem"):
        minimize("ackley", 4, method="bp", lr=0.1)
    with pytest.raises(ValueError, match="unknown method"):
        minimize("sphere", 4, method="zo", lr=0.1)
    for k in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="k"):
            minimize("sphere", 4, method="fg", k=k, lr=0.1)
    for lr in (0.0, -0.1, float("nan")):
        with pytest.raises(ValueError, match="learning rate"):
            minimize("sphere", 4, method="bp", lr=lr)
    with pytest.raises(ValueError, match="unknown JVP mode"):
        minimize("sphere", 4, method="fg", lr=0.1, mode="sideways")
    with pytest.raises(ValueError, match="patience"):
        minimize("sphere", 4, method="bp", lr=0.1, patience=0)
    with pytest.raises(ValueError, match="stopping rule"):
        minimize("sphere", 4, method="bp", lr=0.1, stopping="best")
    with pytest.raises(ValueError, match="unknown aggregator"):
        minimize("sphere", 4, method="fg", lr=0.1, aggregator="median")


@pytest.mark.parametrize("mode", ["forward", "oracle"])
def test_diverging_fg_run_is_recorded_not_raised(mode):
    """A rate far too large: the trace ends with the step and reason it stopped, like BP's."""
    trace = minimize("styblinski-tang", 8, method="fg", k=2, aggregator="mean", lr=10.0, max_steps=500, mode=mode)
    assert trace["stopped"].iloc[-1] == "non-finite"
    assert int(trace["step"].iloc[-1]) < 500 and not np.isfinite(trace["f"].iloc[-1])
    bp = minimize("styblinski-tang", 8, method="bp", lr=10.0, max_steps=500)
    assert bp["stopped"].iloc[-1] == "non-finite"


def test_one_diverging_seed_leaves_the_others_running():
    trace = descend("rosenbrock", 4, method="fg", k=2, aggregator="mean", lr=2e-3, seeds=list(range(6)), max_steps=300,
                    mode="forward")
    last = trace.groupby("seed").tail(1)
    assert len(last) == 6
    assert set(last["stopped"]) <= {"non-finite", "patience", "max_steps"}


def test_minimize_needs_a_rate():
    with pytest.raises(TypeError, match="lr"):
        minimize("sphere", 3, method="bp")  # the step size is the caller's: no table is read here
