"""Aggregators: how the k directional derivatives ``d = V g`` become one gradient estimate.

All share one signature ``(V, d) -> estimate`` with ``V`` of shape ``(..., k, n)`` (rows are tangents) and
``d`` of shape ``(..., k)``, batched over any leading dimensions (Flügel et al., arXiv 2410.17764, Sec. III):

* ``sum``:        ``Σ_i d_i v_i = Vᵀ V g``
* ``mean``:       ``(1/k) Σ_i d_i v_i``
* ``projection``: ``Vᵀ (V Vᵀ)⁻¹ d = P_U g``, the orthogonal projection of ``g`` onto ``U = span(v_1..v_k)``,
  the point of ``U`` closest to ``g``; equal to ``g`` when the tangents span ``R^n``.

Inputs are checked, never silently misread: shapes, devices and finiteness must agree, an empty tangent set
(k = 0) is refused, and so is a ``V`` or ``d`` that is not real floating point (bool, integer or complex: a mask
or an index tensor passed by mistake would otherwise give a number). ``V`` and ``d`` may differ in floating-point
dtype (derivatives of a loss computed in float64 for float32 tangents); estimates have the dtype of ``V``.

>>> import torch
>>> V = torch.eye(3)[:2]                       # e_1, e_2
>>> projection(V, V @ torch.tensor([1., 2., 3.]))
tensor([1., 2., 0.])
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from fg_analysis import theory
from fg_analysis.checks import all_finite, check_real

# Above this estimate of cond(V Vᵀ) a float64 Cholesky solve loses more than ~6 of its 16 digits, and the
# projection falls back to an SVD-checked QR solve that works on V itself (cond(V) = sqrt(cond(V Vᵀ))).
_MAX_GRAM_CONDITION = 1e10
# A Gram matrix formed in float32 (or lower) is trusted up to this condition estimate (error ≲ 1e-4).
_MAX_LOW_PRECISION_GRAM_CONDITION = 1e2


def _check(V: torch.Tensor, d: torch.Tensor) -> None:
    """:func:`_check_derivatives`, and ``V`` finite."""
    _check_derivatives(V, d)
    if not all_finite(V):
        raise ValueError("tangents V contain NaN or inf")


def _check_derivatives(V: torch.Tensor, d: torch.Tensor) -> None:
    """``V`` and ``d`` must be real floating-point tensors (:func:`~fg_analysis.checks.check_real`) of shapes
    ``(..., k, n)`` with ``k, n >= 1`` and ``(..., k)`` on one device, and ``d`` finite: everything but a pass over
    ``V``."""
    check_real(V, "tangents V")
    check_real(d, "directional derivatives d")
    if V.ndim < 2:
        raise ValueError(f"tangents V must have shape (..., k, n); got shape {tuple(V.shape)}")
    if V.shape[-2] == 0 or V.shape[-1] == 0:
        raise ValueError(f"tangents V of shape {tuple(V.shape)} hold no tangent (k = 0) or have dimension n = 0: "
                         "an estimate needs k >= 1 tangents in R^n with n >= 1")
    if d.shape != V.shape[:-1]:
        raise ValueError(f"directional derivatives d must have shape V.shape[:-1] = {tuple(V.shape[:-1])} "
                         f"(one per tangent); got {tuple(d.shape)}")
    if V.device != d.device:
        raise ValueError(f"V is on {V.device} but d is on {d.device}; put both on the same device")
    if not all_finite(d):
        raise ValueError("directional derivatives d contain NaN or inf (did the function overflow?)")


def total(V: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
    """Sum of the single-tangent forward gradients, ``Σ_i (g·v_i) v_i = Vᵀ d``.

    Unbiased for ``E[v vᵀ] = I`` only at k = 1; its expected squared norm is
    ``k (n + k + 1) |g|²`` for Gaussian tangents (see :mod:`fg_analysis.theory`).
    """
    _check(V, d)
    return torch.einsum("...k,...kn->...n", d.to(V.dtype), V)


def mean(V: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
    """Mean of the single-tangent forward gradients, ``(1/k) Σ_i (g·v_i) v_i = Vᵀ (d / k)``.

    Unbiased when ``E[v vᵀ] = I`` (Baydin et al., arXiv 2202.08587); it points where the sum points.
    The 1/k scales the k derivatives, not the n-vector: one pass over ``V`` and no second n-sized result.
    """
    _check(V, d)
    return torch.einsum("...k,...kn->...n", d.to(V.dtype) / V.shape[-2], V)


def projection(V: torch.Tensor, d: torch.Tensor, *, scale_correction: bool = False) -> torch.Tensor:
    """Orthogonal projection of the gradient onto the span of the tangents, from their JVPs alone.

    ``P_U g = Vᵀ c`` with ``G c = d``, ``G = V Vᵀ`` (k×k), since ``d = V g``. One GEMM forms ``G`` in the
    tangents' dtype, a float64 Cholesky factorization solves for ``c``, and one GEMV forms ``Vᵀ c``: no copy
    and no QR of the n×k matrix on the hot path. The error is about ``cond(G)`` times the rounding error of
    ``G`` (≈ 1e-6 relative for float32 Gaussian tangents with n = 2·10⁶, where ``cond(G) ≈ 1``). Samples
    whose estimated ``cond(G)`` exceeds 1e2 (low precision) are redone with ``G`` formed in float64, and
    those above 1e10 by a QR solve on ``V`` itself, ``Vᵀ = QR``, ``P_U g = Q R⁻ᵀ d``, after an SVD rank check.

    Args:
        V: tangents, shape ``(..., k, n)``, with ``k <= n`` linearly independent rows.
        d: directional derivatives ``V g``, shape ``(..., k)``.
        scale_correction: multiply by ``E[χ_n] / E[χ_k]`` (≈ sqrt(n/k)), which makes the expected norm of the
            estimate match ``|g|`` for Gaussian tangents. Off in all of the paper's runs.

    Raises:
        ValueError: if ``k > n`` or the tangents are linearly dependent (numerically rank-deficient).
    """
    _check(V, d)
    k, n = V.shape[-2], V.shape[-1]
    if k > n:
        raise ValueError(f"projection needs k <= n linearly independent tangents; got k={k} for n={n} "
                         "(with k >= n independent tangents the projection is g itself)")
    d64 = d.to(torch.float64)
    c, retried, solved = _gram_solve(V, d64)
    estimate = (c.to(V.dtype).transpose(-1, -2) @ V).squeeze(-2)
    if retried is not None:  # the ill-conditioned samples alone take the slower paths
        # their coefficients are float64 from a float64 Gram matrix: so is their estimate
        estimate[retried] = (c[retried].transpose(-1, -2) @ V[retried].double()).squeeze(-2).to(V.dtype)
        unsolved = ~solved
        if bool(unsolved.any()):  # too ill-conditioned even in float64: a QR solve on V itself
            estimate[unsolved] = _projection_qr(V[unsolved].double(), d64[unsolved]).to(V.dtype)
    if scale_correction:
        estimate = estimate * float(theory.expected_chi(n) / theory.expected_chi(k))
    return estimate


# Columns per block of the Gram matrix: MKL multiplies a (k × n)(n × k) product with 6 <= k <= 10 and n in the
# millions up to 2.3x slower than the sum of the same product over column blocks of this size (one CPU thread,
# n = 1.86M: k = 8 takes 20 ms at once, 14 ms by blocks, k = 10 42 and 19 ms; k >= 12 within 2% either way,
# k = 1 0.2 and 0.3 ms).
_GRAM_BLOCK = 2 ** 18


def _gram(V: torch.Tensor) -> torch.Tensor:
    """``V Vᵀ`` (shape ``(..., k, k)``), summed over column blocks of :data:`_GRAM_BLOCK` when n is larger."""
    n = V.shape[-1]
    if n <= _GRAM_BLOCK:
        return V @ V.transpose(-1, -2)
    blocks = V.split(_GRAM_BLOCK, dim=-1)
    gram = blocks[0] @ blocks[0].transpose(-1, -2)
    for block in blocks[1:]:
        gram += block @ block.transpose(-1, -2)
    return gram


def _gram_solve(V: torch.Tensor, d64: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
    """``(c, retried, solved)``: ``c = (V Vᵀ)⁻¹ d`` in float64 (shape (..., k, 1)) by Cholesky, from the Gram
    matrix formed in the tangents' dtype. ``retried`` marks the samples whose estimated condition number was too
    large for that dtype (1e2 below float64, 1e10 in float64), ``None`` when there were none (one host sync on
    the common path); low-precision ones are solved again from a float64 Gram matrix. ``solved`` marks the
    samples whose ``c`` is accurate (estimated condition below 1e10); the others need a solve on ``V`` itself."""
    low_precision = V.dtype != torch.float64
    limit = _MAX_LOW_PRECISION_GRAM_CONDITION if low_precision else _MAX_GRAM_CONDITION
    c, solved = _cholesky_solve(_gram(V).to(torch.float64), d64, limit)
    if bool(solved.all()):
        return c, None, solved
    retried = ~solved
    if low_precision:
        c[retried], solved[retried] = _cholesky_solve(_gram(V[retried].double()), d64[retried],
                                                      _MAX_GRAM_CONDITION)
    return c, retried, solved


def _cholesky_solve(gram: torch.Tensor, d64: torch.Tensor, limit: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``(c, solved)``: ``c = G⁻¹ d`` of shape (..., k, 1) by Cholesky, and a mask of the samples whose
    factorization succeeded with an estimated ``cond(G) = (max diag L / min diag L)² < limit``."""
    factor, info = torch.linalg.cholesky_ex(gram)
    diag = torch.diagonal(factor, dim1=-2, dim2=-1)
    solved = (info == 0) & ((diag.amax(-1) / diag.amin(-1)) ** 2 < limit)
    return torch.cholesky_solve(d64.unsqueeze(-1), factor), solved


def _projection_qr(V64: torch.Tensor, d64: torch.Tensor) -> torch.Tensor:
    """``Q R⁻ᵀ d`` with ``Vᵀ = Q R``; raises on numerically dependent tangents (rank test as matrix_rank)."""
    k, n = V64.shape[-2], V64.shape[-1]
    singular = torch.linalg.svdvals(V64)
    tolerance = max(k, n) * torch.finfo(torch.float64).eps * singular[..., :1]
    rank = (singular > tolerance).sum(-1)
    if bool((rank < k).any()):
        raise ValueError(f"projection needs linearly independent tangents; got rank {int(rank.min())} < k={k} "
                         "(duplicate, zero or collinear tangents): sample new ones or use mean")
    Q, R = torch.linalg.qr(V64.transpose(-1, -2))
    coordinates = torch.linalg.solve_triangular(R.transpose(-1, -2), d64.unsqueeze(-1), upper=False)
    return (Q @ coordinates).squeeze(-1)


def coefficients(V: torch.Tensor, d: torch.Tensor, aggregator: str) -> torch.Tensor:
    """The weights ``c`` (shape ``(..., k)``) of the tangents in a built-in aggregator's estimate, ``ĝ = Vᵀ c``.

    All three estimates lie in ``span(v_1..v_k)``: ``c = d`` (sum), ``c = d / k`` (mean) and ``c = (V Vᵀ)⁻¹ d``
    (projection, by the same Cholesky solve as :func:`projection`, in float64). A training step can then apply
    ``θ ← θ − η Vᵀ c`` in one pass over ``V`` (``addmv``) without forming the n-vector ``ĝ`` and reading it back
    (:func:`fg_analysis.bench.make_fg_step`).

    Only the projection reads ``V`` here; sum and mean trust that it was checked where it was used (as
    :func:`fg_analysis.jvp.jvps` does). A projection whose Gram matrix is too ill-conditioned for a Cholesky
    solve even in float64 (estimated ``cond(V Vᵀ) > 1e10``) raises: ``Vᵀ c`` would then lose most of its digits,
    and :func:`projection` (which falls back to a QR solve on ``V``) is the accurate way.

    >>> V = torch.tensor([[2., 0., 0.], [0., 1., 0.]])
    >>> coefficients(V, V @ torch.tensor([1., 2., 3.]), "projection")
    tensor([0.5000, 2.0000])
    """
    _check_derivatives(V, d)
    if aggregator == "sum":
        return d
    if aggregator == "mean":
        return d / V.shape[-2]
    if aggregator != "projection":
        raise ValueError(f"coefficients exist for the built-in aggregators {sorted(AGGREGATORS)}; got {aggregator!r}")
    k, n = V.shape[-2], V.shape[-1]
    if k > n:
        raise ValueError(f"projection needs k <= n linearly independent tangents; got k={k} for n={n}")
    c, retried, solved = _gram_solve(V, d.to(torch.float64))
    if retried is not None and not bool(solved.all()):
        if not all_finite(V[~solved]):  # a non-finite entry makes its row's squared norm, and G, non-finite
            raise ValueError("tangents V contain NaN or inf")
        raise ValueError("the tangents' Gram matrix V Vᵀ is too ill-conditioned (or singular) for the "
                         "coefficients of a projection: use aggregate.projection, which solves by QR")
    return c.squeeze(-1).to(V.dtype)


Aggregator = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

AGGREGATORS: dict[str, Aggregator] = {"sum": total, "mean": mean, "projection": projection}


def get_aggregator(name: str | Aggregator) -> Aggregator:
    """Look up an aggregator by name (``"sum"``, ``"mean"``, ``"projection"``) or pass a callable through."""
    if callable(name):
        return name
    try:
        return AGGREGATORS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown aggregator {name!r}; choose one of {sorted(AGGREGATORS)}") from None
