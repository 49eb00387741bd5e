"""Aggregators against independent references: ``torch.linalg.lstsq`` for the projection, exact subspaces built
by hand for ill-conditioned tangents, and Monte-Carlo convergence (error shrinking like 1/sqrt(samples)) for
unbiasedness, in the style of curvlinops' ``check_estimator_convergence``."""

import math
import re

import pytest
import torch

from fg_analysis import theory
from fg_analysis.aggregate import AGGREGATORS, coefficients, get_aggregator, mean, projection, total
from fg_analysis.tangents import Normal, Orthonormal, Rademacher
from utils import DT, check_estimator_convergence, lstsq_projection, randn


# ---------------------------------------------------------------- projection: reference and properties


@pytest.mark.parametrize("k,n", [(1, 5), (3, 8), (7, 20), (16, 64)])
def test_projection_matches_lstsq(k, n):
    V, g = randn(k, n, seed=k), randn(n, seed=100 + n)
    torch.testing.assert_close(projection(V, V @ g), lstsq_projection(V, g), rtol=0, atol=1e-10)


def test_projection_docstring_example():
    V = torch.eye(3)[:2]
    assert torch.equal(projection(V, V @ torch.tensor([1.0, 2.0, 3.0])), torch.tensor([1.0, 2.0, 0.0]))


def test_projection_properties():
    k, n = 4, 10
    V, g = randn(k, n, seed=1), randn(n, seed=2)
    estimate = projection(V, V @ g)
    # idempotent: projecting the estimate onto the same span gives it back
    torch.testing.assert_close(projection(V, V @ estimate), estimate, rtol=0, atol=1e-12)
    # lies in span(V): the residual of a least-squares fit is zero
    coefficients = torch.linalg.lstsq(V.T, estimate.unsqueeze(-1)).solution
    torch.testing.assert_close((V.T @ coefficients).squeeze(-1), estimate, rtol=0, atol=1e-12)
    # the residual g - P g is orthogonal to every tangent, and the projection never overshoots
    torch.testing.assert_close(V @ (g - estimate), torch.zeros(k, dtype=DT), rtol=0, atol=1e-12)
    assert float(estimate.norm()) <= float(g.norm())
    # closest point of the span: any other combination is farther from g
    for seed in range(5):
        other = estimate + V.T @ randn(k, seed=seed) * 0.1
        assert float((g - other).norm()) > float((g - estimate).norm())


@pytest.mark.parametrize("n", [1, 3, 12])
def test_projection_exact_at_full_rank(n):
    V, g = randn(n, n, seed=n), randn(n, seed=7)
    torch.testing.assert_close(projection(V, V @ g), g, rtol=0, atol=1e-10)


def test_projection_invariances():
    k, n = 5, 9
    V, g = randn(k, n, seed=3), randn(n, seed=4)
    base = projection(V, V @ g)
    scales = torch.tensor([1e-3, 2.0, 7.0, 0.5, 1e3], dtype=DT)
    scaled = V * scales.unsqueeze(-1)
    torch.testing.assert_close(projection(scaled, scaled @ g), base, rtol=0, atol=1e-10)
    order = torch.tensor([3, 0, 4, 1, 2])
    torch.testing.assert_close(projection(V[order], (V @ g)[order]), base, rtol=0, atol=1e-12)
    A = randn(k, k, seed=5) + 3 * torch.eye(k, dtype=DT)  # invertible change of basis
    assert float(torch.linalg.svdvals(A).min()) > 0.1
    mixed = A @ V
    torch.testing.assert_close(projection(mixed, mixed @ g), base, rtol=0, atol=1e-10)


def test_projection_batched_equals_loop():
    V, g = randn(3, 4, 5, 11, seed=6), randn(3, 4, 11, seed=8)
    d = torch.einsum("abkn,abn->abk", V, g)
    batched = projection(V, d)
    assert batched.shape == (3, 4, 11)
    for a in range(3):
        for b in range(4):
            torch.testing.assert_close(batched[a, b], lstsq_projection(V[a, b], g[a, b]), rtol=0, atol=1e-10)


def test_float32_in_float32_out():
    k, n = 16, 64
    V, g = randn(k, n, seed=9, dtype=torch.float32), randn(n, seed=10, dtype=torch.float32)
    d = V @ g
    for aggregate in (projection, mean, total):
        estimate = aggregate(V, d)
        assert estimate.dtype == torch.float32
        reference = aggregate(V.double(), d.double())
        error = float((estimate.double() - reference).norm() / reference.norm())
        assert error < 1e-6, (aggregate, error)
    # the projection itself, against lstsq in float64 on the same (float32-rounded) tangents and derivatives
    reference = lstsq_projection(V.double(), torch.linalg.lstsq(V.double(), d.double().unsqueeze(-1)).solution
                                 .squeeze(-1))
    assert float((projection(V, d).double() - reference).norm() / reference.norm()) < 1e-6


@pytest.mark.parametrize("angle", [1e-1, 1e-3, 1e-4, 3e-5, 1e-5, 1e-6, 1e-7, 1e-8])
def test_ill_conditioned_tangents(angle):
    """Two unit tangents at ``angle`` radians span exactly span(e_1, e_2) (rotated by a known R): the
    projection must recover that, whether the Cholesky path or the QR fallback handles it."""
    n = 6
    R, _ = torch.linalg.qr(randn(n, n, seed=11))
    V = torch.zeros(3, n, dtype=DT)
    V[0, 0] = 1.0
    V[1, 0], V[1, 1] = math.cos(angle), math.sin(angle)
    V[2, 2] = 1.0
    g = randn(n, seed=12)
    exact = torch.cat([g[:3], torch.zeros(n - 3, dtype=DT)])
    assert float((projection(V, V @ g) - exact).norm() / g.norm()) < 1e-6
    rotated = V @ R.T
    basis = R[:, :3]
    assert float((projection(rotated, rotated @ g) - basis @ (basis.T @ g)).norm() / g.norm()) < 1e-6


def test_batch_mixing_well_and_ill_conditioned_samples_matches_each_alone():
    """Only the ill-conditioned samples of a batch take the fallback; every sample equals its own projection."""
    n = 6
    V = randn(4, 3, n, seed=14)
    V[2, 1] = V[2, 0] + 1e-7 * randn(n, seed=15)  # nearly collinear: cond(V Vᵀ) ~ 1e14
    g = randn(4, n, seed=16)
    d = torch.einsum("bkn,bn->bk", V, g)
    batched = projection(V, d)
    for b in range(4):
        assert torch.allclose(batched[b], lstsq_projection(V[b], g[b]), rtol=0, atol=1e-8)


@pytest.mark.parametrize("make", ["duplicate", "zero", "combination"])
def test_dependent_tangents_raise(make):
    V = randn(3, 6, seed=13)
    if make == "duplicate":
        V[2] = V[0]
    elif make == "zero":
        V[1] = 0.0
    else:
        V[2] = 2 * V[0] - 0.5 * V[1]
    with pytest.raises(ValueError, match="linearly independent"):
        projection(V, V @ randn(6, seed=14))


def test_too_many_tangents_raise():
    V = randn(7, 5, seed=15)
    with pytest.raises(ValueError, match="k=7 for n=5"):
        projection(V, V @ randn(5))


@pytest.mark.parametrize("aggregate", [total, mean, projection], ids=["sum", "mean", "projection"])
@pytest.mark.parametrize("where", ["V", "d"])
@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_inputs_raise(aggregate, where, bad):
    V, d = randn(2, 4), randn(2, seed=1)
    if where == "V":
        V[0, 1] = bad
    else:
        d[1] = bad
    with pytest.raises(ValueError, match="NaN or inf"):
        aggregate(V, d)


@pytest.mark.parametrize("aggregate", [total, mean, projection], ids=["sum", "mean", "projection"])
@pytest.mark.parametrize("V_shape,d_shape", [((3, 5), (5,)), ((3, 5), (2,)), ((3, 5), (1, 3)), ((5,), ()),
                                            ((2, 3, 5), (3,))])
def test_shape_mismatch_raises(aggregate, V_shape, d_shape):
    with pytest.raises(ValueError, match="shape"):
        aggregate(torch.ones(V_shape, dtype=DT), torch.ones(d_shape, dtype=DT))


def test_device_mismatch_raises():
    with pytest.raises(ValueError, match="device"):
        mean(torch.ones(2, 3), torch.ones(2, device="meta"))


def test_scale_correction():
    k, n = 4, 30
    V, g = randn(k, n, seed=16), randn(n, seed=17)
    ratio = float(theory.expected_chi(n) / theory.expected_chi(k))
    torch.testing.assert_close(projection(V, V @ g, scale_correction=True), ratio * projection(V, V @ g))


def test_scale_correction_matches_norm_on_average():
    """With the correction, E|ĝ| = |g| for Gaussian tangents (Monte Carlo, 5 standard errors)."""
    k, n, samples = 4, 30, 4000
    g = randn(n, seed=18)
    V = Normal().sample(k, n, batch_shape=(samples,), generator=torch.Generator().manual_seed(19), dtype=DT)
    ratios = torch.linalg.vector_norm(projection(V, V @ g, scale_correction=True), dim=-1) / g.norm()
    assert abs(float(ratios.mean()) - 1) < 5 * float(ratios.std()) / math.sqrt(samples)


# ---------------------------------------------------------------- sum and mean


def test_sum_and_mean_definitions():
    k, n = 3, 7
    V, g = randn(k, n, seed=20), randn(n, seed=21)
    d = V @ g
    explicit = sum(float(d[i]) * V[i] for i in range(k))
    torch.testing.assert_close(total(V, d), explicit, rtol=0, atol=1e-12)
    torch.testing.assert_close(total(V, d), V.T @ V @ g, rtol=0, atol=1e-12)
    torch.testing.assert_close(mean(V, d), explicit / k, rtol=0, atol=1e-12)
    batch_V, batch_g = randn(5, k, n, seed=22), randn(5, n, seed=23)
    batch_d = torch.einsum("bkn,bn->bk", batch_V, batch_g)
    torch.testing.assert_close(total(batch_V, batch_d), k * mean(batch_V, batch_d), rtol=1e-14, atol=1e-14)
    for b in range(5):
        torch.testing.assert_close(mean(batch_V, batch_d)[b], mean(batch_V[b], batch_d[b]), rtol=0, atol=1e-15)


def test_single_tangent_is_descent_direction():
    V = randn(1000, 1, 9, seed=24)
    g = randn(9, seed=25)
    for aggregate in (total, mean, projection):
        estimate = aggregate(V, V @ g)
        assert bool(((estimate @ g) >= 0).all())


LAWS = {"normal": Normal(), "rademacher": Rademacher(), "normal-normalized": Normal(normalize=True),
        "orthonormal": Orthonormal()}


@pytest.mark.parametrize("law_name", list(LAWS))
def test_mean_is_unbiased_convergence(law_name):
    """E[mean] = g for E[v vᵀ] = I (and E[n·mean] = g for unit tangents): the Monte-Carlo error must shrink like
    1/sqrt(samples) and get under 2%."""
    law = LAWS[law_name]
    k, n = 2, 8
    g = randn(n, seed=26)
    factor = 1.0 if law_name in ("normal", "rademacher") else float(n)
    generator = torch.Generator().manual_seed(27)

    def draw(count):
        V = law.sample(k, n, batch_shape=(count,), generator=generator, dtype=DT)
        return factor * mean(V, V @ g)

    # E|estimate - g|² / |g|²: Gaussian (n + 1)/k exactly; Rademacher ≤ (n + 1)/k; unit rows (n - 1)/k;
    # orthonormal rows n/k - 1. So sqrt((n + 2)/k) bounds the per-sample rms error of every law here.
    errors = check_estimator_convergence(draw, g, expected_rms=math.sqrt((n + 2) / k))
    assert errors[-1] < errors[0]


def test_sum_is_k_times_unbiased_convergence():
    k, n = 3, 6
    g = randn(n, seed=28)
    generator = torch.Generator().manual_seed(29)

    def draw(count):
        V = Normal().sample(k, n, batch_shape=(count,), generator=generator, dtype=DT)
        return total(V, V @ g)

    check_estimator_convergence(draw, k * g, expected_rms=math.sqrt((n + 1) / k))


def test_convergence_check_catches_a_bias():
    """The convergence helper itself must fail for a biased estimator (a 5% bias never shrinks)."""
    k, n = 2, 8
    g = randn(n, seed=26)
    generator = torch.Generator().manual_seed(27)

    def draw(count):
        V = Normal().sample(k, n, batch_shape=(count,), generator=generator, dtype=DT)
        return 1.05 * mean(V, V @ g)

    with pytest.raises(AssertionError):
        check_estimator_convergence(draw, g, expected_rms=math.sqrt((n + 1) / k), tolerance=0.01)


# ---------------------------------------------------------------- registry


def test_registry():
    assert set(AGGREGATORS) == {"sum", "mean", "projection"}
    assert get_aggregator("sum") is total and get_aggregator("mean") is mean
    assert get_aggregator("projection") is projection

    def custom(V, d):
        return d

    assert get_aggregator(custom) is custom


@pytest.mark.parametrize("name", ["average", "Mean", "frog", "", None])
def test_unknown_aggregator(name):
    with pytest.raises(ValueError, match="unknown aggregator"):
        get_aggregator(name)


# ---------------------------------------------------------------- coefficients: ĝ = Vᵀ c


@pytest.mark.parametrize("name", ["sum", "mean", "projection"])
@pytest.mark.parametrize("shape", [(1, 9), (4, 9), (3, 4, 9)])
def test_coefficients_rebuild_the_estimate(name, shape):
    V, g = randn(*shape, seed=30), randn(shape[-1], seed=31)
    d = V @ g
    c = coefficients(V, d, name)
    assert c.shape == d.shape
    torch.testing.assert_close((c.unsqueeze(-2) @ V).squeeze(-2), AGGREGATORS[name](V, d), rtol=0, atol=1e-10)


def test_projection_coefficients_solve_the_gram_system():
    V, g = randn(5, 12, seed=32), randn(12, seed=33)
    expected = torch.linalg.solve(V @ V.T, V @ g)
    torch.testing.assert_close(coefficients(V, V @ g, "projection"), expected, rtol=0, atol=1e-10)


def test_coefficients_float32_via_float64_retry():
    """Moderately ill-conditioned float32 tangents (cond(V Vᵀ) ~ 1e4) are solved with a float64 Gram matrix."""
    V = randn(3, 50, seed=34, dtype=torch.float32)
    V[1] = V[0] + 1e-2 * V[1]
    g = randn(50, seed=35, dtype=torch.float32)
    c = coefficients(V, V @ g, "projection")
    assert c.dtype == torch.float32
    reference = lstsq_projection(V.double(), g.double())
    assert float(((c.double() @ V.double()) - reference).norm() / reference.norm()) < 1e-3


@pytest.mark.parametrize("make, match", [("dependent", "ill-conditioned"), ("too many", "k=7 for n=5"),
                                         ("nan V", "NaN or inf"), ("inf d", "NaN or inf"), ("shape", "shape"),
                                         ("device", "device"), ("unknown", "built-in")])
def test_coefficients_errors(make, match):
    V, d, name = randn(3, 5, seed=36), randn(3, seed=37), "projection"
    if make == "dependent":
        V[2] = V[0]
    elif make == "too many":
        V, d = randn(7, 5, seed=38), randn(7, seed=39)
    elif make == "nan V":
        V[1, 2] = float("nan")
    elif make == "inf d":
        d[0] = float("inf")
    elif make == "shape":
        d = randn(4)
    elif make == "device":
        d = d.to("meta")
    else:
        name = "median"
    with pytest.raises(ValueError, match=match):
        coefficients(V, d, name)


def test_projection_and_coefficients_across_gram_blocks():
    """n larger than one Gram block (the Gram matrix is summed over column blocks): still the lstsq projection."""
    from fg_analysis.aggregate import _GRAM_BLOCK
    n = _GRAM_BLOCK + 7
    V, g = randn(2, 3, n, seed=40), randn(n, seed=41)
    d = V @ g
    for b in range(2):
        reference = lstsq_projection(V[b], g)
        torch.testing.assert_close(projection(V, d)[b], reference, rtol=0, atol=1e-10)
        torch.testing.assert_close(coefficients(V, d, "projection")[b] @ V[b], reference, rtol=0, atol=1e-10)


# ---------------------------------------------------------------- non-floating inputs, empty tangent sets


@pytest.mark.parametrize("name", ["sum", "mean", "projection"])
@pytest.mark.parametrize("dtype", [torch.bool, torch.uint8, torch.int64, torch.complex128], ids=str)
def test_non_floating_tangents_or_derivatives_are_refused(name, dtype):
    """Bool and integer V or d were once promoted to floats, so a mask passed as tangents gave an estimate (the
    projection of bool tangents returned a number); every aggregator and :func:`coefficients` now name the dtype."""
    V = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]], dtype=DT)
    d = torch.tensor([1.0, 3.0], dtype=DT)
    for bad_V, bad_d, which in ((V.to(dtype), d, "tangents V"), (V, d.to(dtype), "directional derivatives d")):
        message = rf"^{which} must be a real floating-point tensor; got dtype {re.escape(str(dtype))}: \S"
        for compute in (lambda: AGGREGATORS[name](bad_V, bad_d), lambda: coefficients(bad_V, bad_d, name)):
            with pytest.raises(ValueError, match=message) as info:
                compute()
            assert "\n" not in str(info.value)


@pytest.mark.parametrize("aggregate", [total, mean], ids=["sum", "mean"])
def test_sum_and_mean_accept_derivatives_of_another_float_dtype(aggregate):
    V, d = randn(3, 6), randn(3, seed=1)
    torch.testing.assert_close(aggregate(V.float(), d), aggregate(V, d).float())


@pytest.mark.parametrize("name", ["sum", "mean", "projection"])
@pytest.mark.parametrize("shape", [(0, 5), (4, 0, 5), (2, 0)])
def test_empty_tangent_set_raises(name, shape):
    V = torch.zeros(shape, dtype=DT)
    d = torch.zeros(shape[:-1], dtype=DT)
    with pytest.raises(ValueError, match=r"hold no tangent \(k = 0\) or have dimension n = 0"):
        AGGREGATORS[name](V, d)
    with pytest.raises(ValueError, match=r"hold no tangent \(k = 0\)"):
        coefficients(V, d, name)


@pytest.mark.parametrize("V, d, message", [
    ([[1.0, 0.0]], torch.ones(1), "tangents V must be a torch.Tensor; got list"),
    (torch.eye(2), [1.0, 2.0], "directional derivatives d must be a torch.Tensor; got list"),
])
def test_non_tensor_inputs_raise(V, d, message):
    for aggregate in (total, mean, projection):
        with pytest.raises(ValueError, match=message):
            aggregate(V, d)
