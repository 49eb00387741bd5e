"""Tangent laws: shapes, dtype/device, explicit randomness, and each law's defining property.

References are independent of the sampler: Monte Carlo moments with tolerances derived from the sample size,
exact algebraic identities (orthonormality, one-hot rows, angles) and known marginals of the Haar measure.
"""

import math
import re

import numpy as np
import pytest
import torch
from scipy import stats

from fg_analysis.tangents import (TANGENT_LAWS, FixedAngle, Normal, Orthonormal, OrthogonalScaled, Rademacher,
                                  StandardBasis, TangentLaw, tangent_law)

ALL_LAWS = [Normal(), Rademacher(), Orthonormal(), StandardBasis(), FixedAngle(theta=30.0),
            OrthogonalScaled(max_length=5.0)]
LAW_IDS = [type(law).__name__ for law in ALL_LAWS]


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("law", ALL_LAWS, ids=LAW_IDS)
@pytest.mark.parametrize("batch_shape", [(), (3,), (2, 5)])
def test_shape(law, batch_shape):
    V = law.sample(4, 7, batch_shape=batch_shape, generator=gen())
    assert V.shape == (*batch_shape, 4, 7)


@pytest.mark.parametrize("law", ALL_LAWS, ids=LAW_IDS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_dtype_and_device_honored(law, dtype):
    V = law.sample(3, 6, generator=gen(), dtype=dtype, device="cpu")
    assert V.dtype == dtype and V.device.type == "cpu"
    assert bool(torch.isfinite(V).all())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("law", ALL_LAWS, ids=LAW_IDS)
def test_cuda_device_honored(law):
    V = law.sample(3, 6, generator=torch.Generator(device="cuda").manual_seed(0))
    assert V.device.type == "cuda"


def test_generator_on_other_device_is_rejected():
    with pytest.raises(ValueError, match="same device"):
        Normal().sample(2, 3, generator=gen(), device="meta")


@pytest.mark.parametrize("law", ALL_LAWS + [Normal(normalize=True)], ids=LAW_IDS + ["Normal-normalized"])
def test_reproducible_and_global_rng_untouched(law):
    state = torch.random.get_rng_state()
    first = law.sample(3, 8, batch_shape=(4,), generator=gen(123), dtype=torch.float64)
    second = law.sample(3, 8, batch_shape=(4,), generator=gen(123), dtype=torch.float64)
    other = law.sample(3, 8, batch_shape=(4,), generator=gen(124), dtype=torch.float64)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert torch.equal(first, second)
    assert not torch.equal(first, other)


@pytest.mark.parametrize("law", [Normal(), Rademacher()], ids=["Normal", "Rademacher"])
def test_second_moment_is_identity(law):
    """E[v vᵀ] = I: every entry of the Monte-Carlo average within 5 standard errors (var ≤ 2/N)."""
    n, samples = 5, 40_000
    V = law.sample(4, n, batch_shape=(samples // 4,), generator=gen(1), dtype=torch.float64).reshape(-1, n)
    second = V.T @ V / V.shape[0]
    assert torch.allclose(second, torch.eye(n, dtype=torch.float64), atol=5 * math.sqrt(2 / V.shape[0]), rtol=0)
    assert float(V.mean(0).abs().max()) < 5 / math.sqrt(V.shape[0])


def test_normal_marginal_is_standard_gaussian():
    V = Normal().sample(10, 100, generator=gen(2), dtype=torch.float64)
    assert stats.kstest(V.flatten().numpy(), "norm").pvalue > 1e-3


def test_rademacher_entries_are_signs():
    V = Rademacher().sample(6, 50, batch_shape=(3,), generator=gen(), dtype=torch.float64)
    assert bool(((V == 1) | (V == -1)).all())
    assert 0 < int((V == 1).sum()) < V.numel()


@pytest.mark.parametrize("k,n", [(1, 1), (3, 7), (7, 7)])
def test_orthonormal_rows(k, n):
    V = Orthonormal().sample(k, n, batch_shape=(5,), generator=gen(), dtype=torch.float64)
    eye = torch.eye(k, dtype=torch.float64).expand(5, k, k)
    assert torch.allclose(V @ V.transpose(-1, -2), eye, atol=1e-12)


def test_orthonormal_is_haar():
    """Under the Haar measure every entry squared is Beta(1/2, (n-1)/2) (mean 1/n) and every entry has mean 0.

    A QR without the sign fix fails this: Householder QR gives the first row a deterministic sign pattern.
    """
    n, samples = 6, 20_000
    V = Orthonormal().sample(3, n, batch_shape=(samples,), generator=gen(3), dtype=torch.float64)
    for row, column in [(0, 0), (2, n - 1), (1, 2)]:
        entry = V[:, row, column].numpy()
        assert abs(entry.mean()) < 5 * math.sqrt(1 / n / samples)
        squared = entry ** 2
        assert abs(squared.mean() - 1 / n) < 5 * squared.std() / math.sqrt(samples)
        assert stats.kstest(squared, stats.beta(0.5, (n - 1) / 2).cdf).pvalue > 1e-3


def test_standard_basis_rows_are_distinct_axes():
    k, n = 4, 9
    V = StandardBasis().sample(k, n, batch_shape=(200,), generator=gen(), dtype=torch.float64)
    assert bool(((V == 0) | (V == 1)).all())
    assert bool((V.sum(-1) == 1).all())
    axes = V.argmax(-1)
    for row in axes:
        assert len(set(row.tolist())) == k
    frequency = torch.bincount(axes.flatten(), minlength=n).double() / axes.shape[0]
    expected = k / n  # each axis is chosen with probability k/n
    assert float((frequency - expected).abs().max()) < 5 * math.sqrt(expected * (1 - expected) / axes.shape[0])


def test_standard_basis_full_is_permutation():
    V = StandardBasis().sample(5, 5, generator=gen(), dtype=torch.float64)
    assert torch.equal(V @ V.T, torch.eye(5, dtype=torch.float64))


@pytest.mark.parametrize("theta", [15.0, 30.0, 45.0, 60.0, 75.0, 90.0])
def test_fixed_angle(theta):
    k, n = 6, 10
    V = FixedAngle(theta=theta).sample(k, n, batch_shape=(20,), generator=gen(), dtype=torch.float64)
    norms = torch.linalg.vector_norm(V, dim=-1)
    assert torch.allclose(norms, torch.ones_like(norms), atol=1e-12)
    cosines = (V[..., 1:, :] * V[..., :1, :]).sum(-1)
    assert torch.allclose(cosines, torch.full_like(cosines, math.cos(math.radians(theta))), atol=1e-12)
    angles = torch.rad2deg(torch.arccos(cosines.clamp(-1, 1)))
    assert torch.allclose(angles, torch.full_like(angles, theta), atol=1e-5)
    # the others are different random directions, not copies of one another
    assert float((V[..., 1, :] - V[..., 2, :]).abs().max()) > 1e-3
    # rank k: they span a k-dimensional subspace
    assert bool((torch.linalg.matrix_rank(V) == k).all())


def test_fixed_angle_first_row_uniform():
    n, samples = 4, 20_000
    first = FixedAngle(theta=45.0).sample(2, n, batch_shape=(samples,), generator=gen(5),
                                          dtype=torch.float64)[:, 0, :]
    assert float(first.mean(0).abs().max()) < 5 * math.sqrt(1 / n / samples)
    assert stats.kstest(first[:, 0].numpy() ** 2, stats.beta(0.5, (n - 1) / 2).cdf).pvalue > 1e-3


@pytest.mark.parametrize("max_length", [1.0, 3.0, 10.0])
def test_orthogonal_scaled(max_length):
    k, n = 5, 8
    V = OrthogonalScaled(max_length=max_length).sample(k, n, batch_shape=(50,), generator=gen(), dtype=torch.float64)
    gram = V @ V.transpose(-1, -2)
    off_diagonal = gram - torch.diag_embed(torch.diagonal(gram, dim1=-2, dim2=-1))
    assert float(off_diagonal.abs().max()) < 1e-10
    norms = torch.linalg.vector_norm(V, dim=-1)
    assert float(norms.min()) >= 1 - 1e-12 and float(norms.max()) <= max_length + 1e-12
    if max_length > 1:
        assert float(norms.max() - norms.min()) > 0.1 * (max_length - 1)  # lengths actually vary


@pytest.mark.parametrize("cls", [Normal, Rademacher, Orthonormal, StandardBasis, FixedAngle, OrthogonalScaled])
def test_normalize_gives_unit_rows(cls):
    V = cls(normalize=True).sample(3, 5, batch_shape=(4,), generator=gen(), dtype=torch.float64)
    norms = torch.linalg.vector_norm(V, dim=-1)
    assert torch.allclose(norms, torch.ones_like(norms), atol=1e-12)


def test_normalize_keeps_directions():
    raw = Normal().sample(3, 5, generator=gen(7), dtype=torch.float64)
    unit = Normal(normalize=True).sample(3, 5, generator=gen(7), dtype=torch.float64)
    assert torch.allclose(unit * torch.linalg.vector_norm(raw, dim=-1, keepdim=True), raw, atol=1e-12)


@pytest.mark.parametrize("k", [0, -1, 2.0, True, "3", None])
def test_bad_k(k):
    with pytest.raises(ValueError, match="k"):
        Normal().sample(k, 4, generator=gen())


@pytest.mark.parametrize("n", [0, -2, 4.0, False])
def test_bad_n(n):
    with pytest.raises(ValueError, match="n"):
        Normal().sample(1, n, generator=gen())


@pytest.mark.parametrize("law", [Orthonormal(), StandardBasis(), OrthogonalScaled()], ids=str)
def test_too_many_tangents(law):
    with pytest.raises(ValueError, match="k=5 for n=4"):
        law.sample(5, 4, generator=gen())


def test_fixed_angle_needs_two_dimensions():
    with pytest.raises(ValueError, match="n >= 2"):
        FixedAngle().sample(2, 1, generator=gen())
    assert FixedAngle().sample(1, 1, generator=gen()).shape == (1, 1)


@pytest.mark.parametrize("theta", [0.0, -10.0, 90.5, 180.0, float("nan")])
def test_bad_theta(theta):
    with pytest.raises(ValueError, match="theta"):
        FixedAngle(theta=theta)
    with pytest.raises(ValueError, match="theta"):
        tangent_law("fixed-angle", theta=theta)


def test_bad_max_length():
    with pytest.raises(ValueError, match="max_length"):
        OrthogonalScaled(max_length=0.5)


def test_registry_lookup():
    assert set(TANGENT_LAWS) == {"normal", "rademacher", "orthonormal", "basis", "fixed-angle", "orthogonal-scaled"}
    for name, cls in TANGENT_LAWS.items():
        assert issubclass(cls, TangentLaw)
        assert type(tangent_law(name)) is cls
    assert tangent_law("fixed-angle", theta=30.0) == FixedAngle(theta=30.0)
    assert tangent_law("normal", normalize=True) == Normal(normalize=True)
    law = Rademacher()
    assert tangent_law(law) is law


@pytest.mark.parametrize("name", ["gaussian", "Normal", "", None, 3])
def test_unknown_law(name):
    with pytest.raises(ValueError, match="unknown tangent law"):
        tangent_law(name)


def test_options_with_law_object():
    with pytest.raises(ValueError, match="together with a law object"):
        tangent_law(FixedAngle(), theta=30.0)


def test_bad_option_name():
    with pytest.raises(ValueError, match="bad options"):
        tangent_law("normal", theta=30.0)


def test_laws_are_frozen():
    with pytest.raises(Exception):
        FixedAngle().theta = 10.0  # type: ignore[misc]
    assert np.isclose(FixedAngle(theta=60).theta, 60.0)


@pytest.mark.parametrize("law", ALL_LAWS + [Normal(normalize=True)], ids=LAW_IDS + ["Normal-normalized"])
def test_out_buffer_gives_the_same_draw_in_place(law):
    fresh = law.sample(3, 6, batch_shape=(2,), generator=gen(4), dtype=torch.float64)
    buffer = torch.full((2, 3, 6), float("nan"), dtype=torch.float64)
    written = law.sample(3, 6, batch_shape=(2,), generator=gen(4), out=buffer)
    assert written.data_ptr() == buffer.data_ptr()
    torch.testing.assert_close(written, fresh, rtol=0, atol=1e-15)


def test_out_buffer_of_the_wrong_shape_is_an_error():
    with pytest.raises(ValueError, match=r"out must have shape \(3, 6\)"):
        Normal().sample(3, 6, generator=gen(), out=torch.empty(6, 3))


@pytest.mark.parametrize("law", ALL_LAWS, ids=LAW_IDS)
def test_numpy_integer_counts_give_the_python_int_draw(law):
    """k and n from a NumPy grid (np.int64) are counts; the draw equals that of Python ints."""
    expected = law.sample(2, 5, batch_shape=(3,), generator=gen(2))
    got = law.sample(np.int64(2), np.int32(5), batch_shape=(np.int64(3),), generator=gen(2))
    assert got.shape == (3, 2, 5) and torch.equal(got, expected)


@pytest.mark.parametrize("k, n, message", [
    (float("nan"), 4, r"number of tangents k must be a positive integer; got k=nan$"),
    (2.5, 4, r"got k=2.5$"),
    (np.bool_(True), 4, r"got k=np.True_$|got k=True$"),
    (2, np.float64(4.0), r"the dimension n must be a positive integer; got n=np.float64\(4.0\)$|got n=4.0$"),
])
def test_bad_counts_name_the_argument(k, n, message):
    with pytest.raises(ValueError, match=message):
        Normal().sample(k, n, generator=gen())


@pytest.mark.parametrize("batch_shape", [(2.5,), (-1,), 3, (True,), "ab"])
def test_bad_batch_shape(batch_shape):
    with pytest.raises(ValueError, match="batch_shape must be a tuple of non-negative integers"):
        Normal().sample(2, 4, batch_shape=batch_shape, generator=gen())


@pytest.mark.parametrize("dtype", [torch.int64, torch.bool, torch.complex64, "float32", float])
def test_non_floating_dtype_is_refused(dtype):
    with pytest.raises(ValueError, match=rf"^dtype must be a real floating-point torch.dtype such as torch.float32; "
                                         rf"got dtype={re.escape(repr(dtype))}$"):
        Rademacher().sample(2, 4, generator=gen(), dtype=dtype)


@pytest.mark.parametrize("out, message", [
    (torch.empty(2, 4, dtype=torch.int32), r"^out must be a real floating-point tensor; got dtype torch.int32: "),
    (torch.empty(2, 4, dtype=torch.bool), r"^out must be a real floating-point tensor; got dtype torch.bool: "),
    (np.empty((2, 4)), r"^out must be a torch.Tensor; got ndarray$"),
])
def test_non_floating_out_is_refused(out, message):
    with pytest.raises(ValueError, match=message):
        Normal().sample(2, 4, generator=gen(), out=out)


@pytest.mark.parametrize("law", ALL_LAWS, ids=LAW_IDS)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=str)
def test_low_precision_dtypes_draw_in_every_law(law, dtype):
    """float16 and bfloat16 are floating dtypes, so every law draws them (the QR-based laws once failed: CPU QR
    takes no half precision); orthonormal rows stay orthonormal to the dtype's rounding."""
    V = law.sample(3, 6, generator=gen(3), dtype=dtype)
    assert V.dtype == dtype and V.shape == (3, 6) and bool(torch.isfinite(V).all())
    if isinstance(law, Orthonormal):
        torch.testing.assert_close(V.double() @ V.double().T, torch.eye(3, dtype=torch.float64), rtol=0,
                                   atol=4 * torch.finfo(dtype).eps)


def test_law_parameters_must_be_finite_numbers():
    for theta in (True, "45", float("inf")):
        with pytest.raises(ValueError, match="theta must be a finite number"):
            FixedAngle(theta=theta)
    with pytest.raises(ValueError, match="max_length must be a finite number; got max_length=inf"):
        OrthogonalScaled(max_length=float("inf"))
    assert FixedAngle(theta=np.float64(30.0)).sample(2, 4, generator=gen()).shape == (2, 4)


FLOAT_DTYPES = [torch.float16, torch.bfloat16, torch.float32, torch.float64]


def reference_signs(words: torch.Tensor, total: int, dtype: torch.dtype) -> list[float]:
    """Plain-Python Rademacher entries from int64 words: entry ``r`` of a word is lane ``r % L`` (L = 64/b lanes
    of b bits, little-endian) at shift ``s = r // L + 1``, i.e. ``-1`` when bit ``b·lane + b-1-s`` is set."""
    bits = torch.finfo(dtype).bits
    lanes = 64 // bits
    per_word = lanes * (bits - 1)
    entries = []
    for e in range(total):
        word, r = int(words[e // per_word]), e % per_word
        bit = bits * (r % lanes) + bits - 1 - (r // lanes + 1)
        entries.append(-1.0 if (word >> bit) & 1 else 1.0)
    return entries


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=str)
def test_rademacher_uses_each_random_bit_once(dtype):
    """Every entry is one distinct bit of the generator's words (bits 0..62 only: ``random_`` leaves bit 63 at 0),
    checked against a plain-Python expansion of the same words, across word boundaries and a partial last word."""
    bits = torch.finfo(dtype).bits
    lanes = 64 // bits
    used = {bits * (r % lanes) + bits - 1 - (r // lanes + 1) for r in range(lanes * (bits - 1))}
    assert len(used) == lanes * (bits - 1) and max(used) <= 62
    k, n = 3, 47  # 141 entries: two full words and a partial one for every dtype
    words = torch.empty(-(-k * n // (lanes * (bits - 1))), dtype=torch.int64).random_(generator=gen(8))
    V = Rademacher().sample(k, n, generator=gen(8), dtype=dtype)
    assert V.flatten().tolist() == reference_signs(words, k * n, dtype)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=str)
@pytest.mark.parametrize("law", [Normal(), Rademacher()], ids=["Normal", "Rademacher"])
def test_every_dtype_has_mean_zero_and_unit_variance(law, dtype):
    """Both laws in every floating dtype: mean 0 and variance 1 within 5 standard errors of 60 000 entries."""
    V = law.sample(4, 15_000, generator=gen(9), dtype=dtype).double().flatten()
    standard_error = 1 / math.sqrt(V.numel())
    assert abs(float(V.mean())) < 5 * standard_error
    assert abs(float(V.square().mean()) - 1) < 5 * math.sqrt(2) * standard_error  # var(v²) ≤ 2 for both
    if isinstance(law, Rademacher):
        assert bool(((V == 1) | (V == -1)).all())
        assert stats.binomtest(int((V == 1).sum()), V.numel()).pvalue > 1e-3


@pytest.mark.parametrize("law", [Normal(), Rademacher()], ids=["Normal", "Rademacher"])
def test_entries_and_rows_are_uncorrelated_across_word_boundaries(law):
    """E[v vᵀ] = I over 130 coordinates (more than two 62-entry words of float32) and E[v_1 v_2ᵀ] = 0 between the
    two rows of one draw; for ±1 entries uncorrelated pairs are independent pairs."""
    samples, n = 20_000, 130
    V = law.sample(2, n, batch_shape=(samples,), generator=gen(10)).double()
    tolerance = 5 * math.sqrt(2 / samples)
    for a, b, expected in ((0, 0, torch.eye(n)), (1, 1, torch.eye(n)), (0, 1, torch.zeros(n, n))):
        moment = V[:, a].T @ V[:, b] / samples
        assert float((moment - expected.double()).abs().max()) < tolerance


def test_normal_marginal_ks_in_float32():
    V = Normal().sample(16, 5_000, generator=gen(11))
    assert stats.kstest(V.double().flatten().numpy(), "norm").pvalue > 1e-3


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=str)
@pytest.mark.parametrize("law", [Normal(), Rademacher()], ids=["Normal", "Rademacher"])
@pytest.mark.parametrize("layout", ["contiguous", "transposed", "offset"])
def test_out_of_any_layout_gets_the_fresh_draw(law, dtype, layout):
    """``out=`` contiguous, non-contiguous (a transpose) or at an odd storage offset holds the draw ``sample``
    returns without it, for sizes that are no multiple of 8 or of a word's entries."""
    fresh = law.sample(5, 67, generator=gen(12), dtype=dtype)
    if layout == "transposed":
        out = torch.empty(67, 5, dtype=dtype).T
    elif layout == "offset":
        out = torch.empty(5 * 67 + 1, dtype=dtype)[1:].view(5, 67)
    else:
        out = torch.empty(5, 67, dtype=dtype)
    written = law.sample(5, 67, generator=gen(12), out=out)
    assert written.data_ptr() == out.data_ptr() and torch.equal(written, fresh)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=str)
def test_rademacher_on_cuda_is_signs_and_reproducible(dtype):
    def draw():
        return Rademacher().sample(16, 1001, generator=torch.Generator(device="cuda").manual_seed(0), dtype=dtype)

    V = draw()
    assert V.device.type == "cuda" and bool(((V == 1) | (V == -1)).all()) and torch.equal(V, draw())
    assert abs(float(V.double().mean())) < 5 / math.sqrt(V.numel())
