"""Closed-form test functions of the paper's optimization experiments (Flügel et al., arXiv 2410.17764,
Sec. IV-B), with its start points, step limits and known minima.

Each function accepts ``x`` of shape ``(..., n)`` and returns ``f`` of shape ``(...)``, so a batch of
independent runs (one per seed) is one call.

>>> import torch
>>> p = PROBLEMS["styblinski-tang"]
>>> round(float(p.f(p.minimizer(64))), 1), round(p.minimum(64), 1)
(-2506.6, -2506.6)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

STYBLINSKI_TANG_ARGMIN = -2.903534027771177
STYBLINSKI_TANG_MIN_PER_DIM = -39.16616570377142


def sphere(x: torch.Tensor) -> torch.Tensor:
    """``Σ_i x_i²``; minimum 0 at the origin."""
    return (x ** 2).sum(-1)


def rosenbrock(x: torch.Tensor) -> torch.Tensor:
    """``Σ_{i<n} 100 (x_{i+1} - x_i²)² + (1 - x_i)²`` (a = 1, b = 100); minimum 0 at all-ones.

    For n = 1 the sum is empty and f ≡ 0 (kept as in the paper's grid, where n = 1 is degenerate).
    """
    head, tail = x[..., :-1], x[..., 1:]
    return (100 * (tail - head ** 2) ** 2 + (1 - head) ** 2).sum(-1)


def styblinski_tang(x: torch.Tensor) -> torch.Tensor:
    """``½ Σ_i (x_i⁴ - 16 x_i² + 5 x_i)``; global minimum ``-39.16617 n`` at ``x_i = -2.903534``."""
    return 0.5 * (x ** 4 - 16 * x ** 2 + 5 * x).sum(-1)


@dataclass(frozen=True)
class Problem:
    """A test function with the paper's start point, step limit and known minimum."""

    name: str
    f: Callable[[torch.Tensor], torch.Tensor]
    start_value: Callable[[int], list[float]]
    max_steps: int
    minimum_per_dim: float
    argmin: float

    def start(self, n: int, *, dtype: torch.dtype = torch.float64, device=None) -> torch.Tensor:
        """The paper's start point in ``R^n``."""
        if n < 1:
            raise ValueError(f"dimension n must be >= 1; got {n}")
        return torch.tensor(self.start_value(n), dtype=dtype, device=device)

    def minimum(self, n: int) -> float:
        """The global minimum value in ``R^n``."""
        return 0.0 if self.name == "rosenbrock" and n == 1 else self.minimum_per_dim * n

    def minimizer(self, n: int, *, dtype: torch.dtype = torch.float64, device=None) -> torch.Tensor:
        """A global minimizer in ``R^n``."""
        return torch.full((n,), self.argmin, dtype=dtype, device=device)


PROBLEMS: dict[str, Problem] = {
    "sphere": Problem("sphere", sphere, lambda n: [-1.0] * n, 1000, 0.0, 0.0),
    "rosenbrock": Problem("rosenbrock", rosenbrock, lambda n: [-1.0] + [0.0] * (n - 1), 25000, 0.0, 1.0),
    "styblinski-tang": Problem("styblinski-tang", styblinski_tang, lambda n: [0.0] * n, 1000,
                               STYBLINSKI_TANG_MIN_PER_DIM, STYBLINSKI_TANG_ARGMIN),
}


def get_problem(problem: str | Problem) -> Problem:
    """Look a problem up by name (``"sphere"``, ``"rosenbrock"``, ``"styblinski-tang"``)."""
    if isinstance(problem, Problem):
        return problem
    try:
        return PROBLEMS[problem]
    except (KeyError, TypeError):
        raise ValueError(f"unknown problem {problem!r}; choose one of {sorted(PROBLEMS)}") from None
