"""The closed-form problems (Styblinski–Tang, Rosenbrock, sphere): minima, values, start points, lookup.

References: the known minima, a NumPy root of Styblinski–Tang's derivative and autograd gradients.
"""


import numpy as np
import pytest
import torch

from fg_analysis.problems import PROBLEMS, get_problem, rosenbrock, sphere, styblinski_tang
from utils import autograd_gradient



def test_styblinski_tang_minimum_from_numpy_roots():
    """The 1-D minimizer is the smallest real root of f'(x) = ½(4x³ - 32x + 5)."""
    roots = np.roots([4.0, 0.0, -32.0, 5.0]).real
    x = roots.min()
    per_dim = 0.5 * (x ** 4 - 16 * x ** 2 + 5 * x)
    problem = PROBLEMS["styblinski-tang"]
    assert problem.argmin == pytest.approx(x, abs=1e-12)
    assert problem.argmin == pytest.approx(-2.903534, abs=1e-6)
    assert problem.minimum(1) == pytest.approx(per_dim, abs=1e-10)
    for n in (1, 2, 64, 1024):
        assert problem.minimum(n) == pytest.approx(-39.16617 * n, abs=1e-5 * n)
        x_star = problem.minimizer(n)
        assert float(problem.f(x_star)) == pytest.approx(problem.minimum(n), rel=1e-12)
        assert float(autograd_gradient(problem.f, x_star).abs().max()) < 1e-9
    assert float(styblinski_tang(PROBLEMS["styblinski-tang"].minimizer(64))) == pytest.approx(-2506.6, abs=0.1)


@pytest.mark.parametrize("n", [1, 2, 5, 64])
def test_rosenbrock_and_sphere_minima(n):
    ones, zeros = torch.ones(n, dtype=torch.float64), torch.zeros(n, dtype=torch.float64)
    assert float(rosenbrock(ones)) == 0.0 and float(autograd_gradient(rosenbrock, ones).abs().max()) == 0.0
    assert float(sphere(zeros)) == 0.0 and float(autograd_gradient(sphere, zeros).abs().max()) == 0.0
    for name, x_star in (("rosenbrock", ones), ("sphere", zeros)):
        problem = PROBLEMS[name]
        assert problem.minimum(n) == 0.0
        torch.testing.assert_close(problem.minimizer(n), x_star)
        assert float(problem.f(problem.minimizer(n))) == 0.0


def test_problem_values():
    x = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64)
    assert float(sphere(x)) == pytest.approx(5.25)
    expected = sum(100 * (x[i + 1] - x[i] ** 2) ** 2 + (1 - x[i]) ** 2 for i in range(2))
    assert float(rosenbrock(x)) == pytest.approx(float(expected))
    assert float(styblinski_tang(x)) == pytest.approx(0.5 * sum(float(v) ** 4 - 16 * float(v) ** 2 + 5 * float(v)
                                                               for v in x))
    batch = torch.randn(4, 3, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    for f in (sphere, rosenbrock, styblinski_tang):
        values = f(batch)
        assert values.shape == (4, 3)
        assert float(values[2, 1]) == pytest.approx(float(f(batch[2, 1])))


def test_start_points_and_limits():
    n = 5
    assert PROBLEMS["sphere"].start(n).tolist() == [-1.0] * n
    assert PROBLEMS["rosenbrock"].start(n).tolist() == [-1.0, 0.0, 0.0, 0.0, 0.0]
    assert PROBLEMS["styblinski-tang"].start(n).tolist() == [0.0] * n
    assert PROBLEMS["rosenbrock"].start(1).tolist() == [-1.0]
    assert {name: p.max_steps for name, p in PROBLEMS.items()} == \
        {"sphere": 1000, "rosenbrock": 25000, "styblinski-tang": 1000}
    assert PROBLEMS["sphere"].start(3, dtype=torch.float32).dtype == torch.float32
    with pytest.raises(ValueError, match="n must be >= 1"):
        PROBLEMS["sphere"].start(0)


def test_get_problem():
    assert get_problem("sphere") is PROBLEMS["sphere"]
    assert get_problem(PROBLEMS["rosenbrock"]) is PROBLEMS["rosenbrock"]
    for bad in ("ackley", "Sphere", None):
        with pytest.raises(ValueError, match="unknown problem"):
            get_problem(bad)
