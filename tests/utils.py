"""Shared test helpers: seeded draws, independent references and the Monte-Carlo convergence check.

The convergence check follows curvlinops' ``check_estimator_convergence``: average more and more samples of a
randomized estimator until its error is under a target, and require the error to shrink like 1/sqrt(samples) on
the way (a bias, which does not shrink, fails), instead of one flaky tolerance at one sample size.
"""

from __future__ import annotations

import math

import torch

DT = torch.float64


def randn(*shape, seed: int = 0, dtype: torch.dtype = DT) -> torch.Tensor:
    """A standard normal tensor from its own seeded generator (the global RNG is never used)."""
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def autograd_gradient(f, x: torch.Tensor, *args) -> torch.Tensor:
    """``∇f(x)`` by reverse mode: the independent reference for forward-mode JVPs and estimates."""
    x = x.detach().clone().requires_grad_(True)
    (g,) = torch.autograd.grad(f(x, *args), x)
    return g


def lstsq_projection(V: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """Reference for the projection: ``P_U g = Vᵀ c`` with ``c`` the least-squares solution of ``Vᵀ c ≈ g``."""
    c = torch.linalg.lstsq(V.T, g.unsqueeze(-1)).solution
    return (V.T @ c).squeeze(-1)


def check_estimator_convergence(draw, target, *, expected_rms, tolerance=0.02, max_power=9, slack=4.0):
    """Average ``draw(count) -> (count, n)`` samples over 4, 16, 64, ... 4^max_power of them.

    At every stage the relative error ``|avg - target| / |target|`` must stay below ``slack`` times the
    expected root-mean-square error ``expected_rms / sqrt(samples)`` (so a bias, which does not shrink,
    fails), and the error must get under ``tolerance`` before the sample budget runs out.
    Returns the list of errors per stage.
    """
    total = torch.zeros_like(target)
    count, errors = 0, []
    for power in range(1, max_power + 1):
        needed = 4 ** power - count
        total = total + draw(needed).sum(0)
        count += needed
        error = float(torch.linalg.vector_norm(total / count - target) / torch.linalg.vector_norm(target))
        errors.append(error)
        assert error < slack * expected_rms / math.sqrt(count), (count, errors)
        if error < tolerance:
            return errors
    raise AssertionError(f"no convergence to {tolerance}: errors {errors}")
