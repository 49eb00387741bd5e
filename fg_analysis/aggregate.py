"""Aggregators: how the k directional derivatives ``d = V g`` become one gradient estimate.

All share one signature ``(V, d) -> estimate`` with ``V`` of shape ``(..., k, n)`` (rows are tangents) and
``d`` of shape ``(..., k)``, batched over any leading dimensions (Flügel et al., arXiv 2410.17764, Sec. III):

* ``sum``:        ``Σ_i d_i v_i = Vᵀ V g``
* ``mean``:       ``(1/k) Σ_i d_i v_i``
* ``projection``: ``Vᵀ (V Vᵀ)⁻¹ d = P_U g``, the orthogonal projection of ``g`` onto ``U = span(v_1..v_k)``,
  the point of ``U`` closest to ``g``; equal to ``g`` when the tangents span ``R^n``.

>>> import torch
>>> V = torch.eye(3)[:2]                       # e_1, e_2
>>> projection(V, V @ torch.tensor([1., 2., 3.]))
tensor([1., 2., 0.])
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from fg_analysis import theory

# Above this estimate of cond(V Vᵀ) the Cholesky solve loses more than ~6 of float64's 16 digits, and the
# projection falls back to an SVD-checked QR solve that works on V itself (cond(V) = sqrt(cond(V Vᵀ))).
_MAX_GRAM_CONDITION = 1e10


def _check(V: torch.Tensor, d: torch.Tensor) -> None:
    if V.ndim < 2:
        raise ValueError(f"tangents V must have shape (..., k, n); got shape {tuple(V.shape)}")
    if d.shape != V.shape[:-1]:
        raise ValueError(f"directional derivatives d must have shape V.shape[:-1] = {tuple(V.shape[:-1])} "
                         f"(one per tangent); got {tuple(d.shape)}")
    if V.device != d.device:
        raise ValueError(f"V is on {V.device} but d is on {d.device}; put both on the same device")
    if not bool(torch.isfinite(V).all()):
        raise ValueError("tangents V contain NaN or inf")
    if not bool(torch.isfinite(d).all()):
        raise ValueError("directional derivatives d contain NaN or inf (did the function overflow?)")


def sum_(V: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
    """Sum of the single-tangent forward gradients, ``Σ_i (g·v_i) v_i = Vᵀ d``.

    Unbiased for ``E[v vᵀ] = I`` only at k = 1; its expected squared norm is
    ``k (n + k + 1) |g|²`` for Gaussian tangents (see :mod:`fg_analysis.theory`).
    """
    _check(V, d)
    return torch.einsum("...k,...kn->...n", d, V)


def mean(V: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
    """Mean of the single-tangent forward gradients, ``(1/k) Σ_i (g·v_i) v_i``.

    Unbiased when ``E[v vᵀ] = I`` (Baydin et al., arXiv 2202.08587); it points where the sum points.
    """
    return sum_(V, d) / V.shape[-2]


def projection(V: torch.Tensor, d: torch.Tensor, *, scale_correction: bool = False) -> torch.Tensor:
    """Orthogonal projection of the gradient onto the span of the tangents, from their JVPs alone.

    ``P_U g = Vᵀ c`` with ``G c = d``, ``G = V Vᵀ`` (k×k), since ``d = V g``. Computed in float64 by a
    Cholesky solve of ``G`` (one n×k² GEMM plus a k×k factorization, no QR of the n×k matrix on the hot
    path); when ``G`` is ill-conditioned (estimated ``cond(G) > 1e10``) it falls back to a QR solve on ``V``
    itself, ``Vᵀ = QR``, ``P_U g = Q R⁻ᵀ d``, after an SVD rank check.

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
    V64, d64 = V.to(torch.float64), d.to(torch.float64)
    gram = V64 @ V64.transpose(-1, -2)
    factor, info = torch.linalg.cholesky_ex(gram)
    diag = torch.diagonal(factor, dim1=-2, dim2=-1)
    ill_posed = (info != 0) | ~((diag.amax(-1) / diag.amin(-1)) ** 2 < _MAX_GRAM_CONDITION)
    coefficients = torch.cholesky_solve(d64.unsqueeze(-1), factor)
    estimate = (coefficients.transpose(-1, -2) @ V64).squeeze(-2)
    if bool(ill_posed.any()):  # only the ill-conditioned samples take the slower QR path
        estimate[ill_posed] = _projection_qr(V64[ill_posed], d64[ill_posed])
    if scale_correction:
        estimate = estimate * float(theory.expected_chi(n) / theory.expected_chi(k))
    return estimate.to(V.dtype)


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


Aggregator = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

AGGREGATORS: dict[str, Aggregator] = {"sum": sum_, "mean": mean, "projection": projection}


def get_aggregator(name: str | Aggregator) -> Aggregator:
    """Look up an aggregator by name (``"sum"``, ``"mean"``, ``"projection"``) or pass a callable through."""
    if callable(name):
        return name
    try:
        return AGGREGATORS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown aggregator {name!r}; choose one of {sorted(AGGREGATORS)}") from None
