"""The zero-tangent kernels: the skipped products are exactly zero, so every JVP is unchanged; and they are
scoped: importing the package or calling it leaves PyTorch's dispatch tables as they were."""

import warnings

import pytest
import torch
import torch.nn.functional as F
from torch.func import jvp, vmap

import subprocess
import sys

from fg_analysis import zero_tangents

DT = torch.float64


def randn(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=DT)


def zero(*shape):
    return torch._efficientzerotensor(shape, dtype=DT)


def broadcast(t):
    """A zero the kernels made: every stride 0, no memory of its own."""
    return all(stride == 0 for stride in t.stride())


DISPATCH_CHECK = """
import torch
ops = ("aten::mm", "aten::bmm", "aten::convolution")
before = [torch._C._dispatch_dump(op) for op in ops]
import fg_analysis, fg_analysis.jvp, fg_analysis.estimator, fg_analysis.nets.gradients, fg_analysis.bench
assert before == [torch._C._dispatch_dump(op) for op in ops], "import changed the dispatch tables"
from fg_analysis import forward_gradient
from torch import nn
net = nn.Sequential(nn.Linear(5, 4), nn.Tanh(), nn.Linear(4, 3))
g = forward_gradient(net, args=(torch.randn(8, 5), torch.randint(0, 3, (8,))), loss_fn=nn.functional.cross_entropy,
                     k=4, generator=torch.Generator().manual_seed(0))
assert before == [torch._C._dispatch_dump(op) for op in ops], "a forward_gradient call left kernels installed"
print("unchanged")
"""


def test_import_and_calls_leave_pytorch_unchanged():
    """The issue's check, in a fresh interpreter: the dispatch tables of mm, bmm and convolution are the same
    after importing the package and after a forward_gradient call returns."""
    out = subprocess.run([sys.executable, "-c", DISPATCH_CHECK], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "unchanged", out.stderr


def test_users_own_jvp_keeps_pytorchs_nan_propagation():
    """d(x Wᵀ)/dW along Ẇ = x Ẇᵀ + ẋ Wᵀ with x a constant (ẋ absent). With an inf in W, PyTorch multiplies the
    absent ẋ = 0 by it and the JVP is NaN; the kernels skip that product. Outside the package's own passes a
    user's torch.func.jvp gets PyTorch's NaN."""
    x, dW = randn(1, 2), randn(3, 2, seed=1)
    W = randn(3, 2, seed=2)
    W[0, 0] = float("inf")
    assert not zero_tangents.installed()
    users = jvp(lambda W: x @ W.T, (W,), (dW,))[1]
    assert torch.isnan(users[0, 0])  # PyTorch's own propagation
    with zero_tangents.skipping():
        skipped = jvp(lambda W: x @ W.T, (W,), (dW,))[1]
    assert not zero_tangents.installed()
    torch.testing.assert_close(skipped, x @ dW.T)  # the product with the absent tangent was skipped


@pytest.mark.parametrize("op, a, b, shape", [
    (torch.mm, zero(3, 4), randn(4, 5), (3, 5)),
    (torch.mm, randn(3, 4), zero(4, 5), (3, 5)),
    (torch.bmm, zero(2, 3, 4), randn(2, 4, 5), (2, 3, 5)),
])
def test_products_with_a_zero_are_not_computed(op, a, b, shape):
    with zero_tangents.skipping():
        result = op(a, b)
        with zero_tangents.skipping():  # re-entrant: the inner block keeps the kernels
            assert broadcast(op(a, b))
        assert zero_tangents.installed()
    assert broadcast(result) and result.shape == shape and torch.equal(result, torch.zeros(shape, dtype=DT))
    materialized = op(a, b)
    assert not broadcast(materialized)  # PyTorch's own fallback: a computed, dense zero
    assert torch.equal(materialized, torch.zeros(shape, dtype=DT))


@pytest.mark.parametrize("with_bias", [False, True])
@pytest.mark.parametrize("transposed", [False, True])
def test_convolution_of_a_zero(with_bias, transposed):
    x, bias = zero(2, 3, 7, 7), randn(4, seed=1) if with_bias else None
    weight = randn(3, 4, 3, 3) if transposed else randn(4, 3, 3, 3)
    args = (bias, [2, 2], [1, 1], [1, 1], transposed, [1, 1] if transposed else [0, 0], 1)
    with zero_tangents.skipping():
        result = torch.ops.aten.convolution(x, weight, *args)
    expected = torch.ops.aten.convolution(torch.zeros(x.shape, dtype=DT), weight, *args)
    assert result.stride()[0] == 0  # broadcast, not computed
    torch.testing.assert_close(result, expected, rtol=0, atol=0)


def both(f, primals, tangents):
    """The JVP with the kernels and with PyTorch's materialized zeros."""
    with zero_tangents.skipping():
        lean = jvp(f, primals, tangents)[1]
    return lean, jvp(f, primals, tangents)[1]


def test_linear_weight_tangent_against_closed_form():
    x, W, b, dW, db = randn(6, 5), randn(4, 5, seed=1), randn(4, seed=2), randn(4, 5, seed=3), randn(4, seed=4)
    lean, reference = both(lambda W, b: F.linear(x, W, b), (W, b), (dW, db))
    torch.testing.assert_close(lean, x @ dW.T + db, rtol=0, atol=1e-12)
    torch.testing.assert_close(lean, reference, rtol=0, atol=0)


DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"))]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("tangent_of", ["input", "weight"])
def test_conv_net_jvp_unchanged(tangent_of, device):
    x, W1, b1, W2 = (t.to(device) for t in (randn(2, 3, 8, 8), randn(5, 3, 3, 3, seed=1), randn(5, seed=2),
                                            randn(4, 5, 3, 3, seed=3)))

    def net(x, W1):
        return F.conv2d(torch.tanh(F.conv2d(x, W1, b1, padding=1)), W2, stride=2).sum()

    if tangent_of == "input":  # activity perturbation: the weights carry no tangent
        f, primal, tangent = (lambda x: net(x, W1)), x, randn(*x.shape, seed=4).to(device)
    else:  # weight perturbation: the data carries none
        f, primal, tangent = (lambda W1: net(x, W1)), W1, randn(*W1.shape, seed=5).to(device)
    lean, reference = both(f, (primal,), (tangent,))
    torch.testing.assert_close(lean, reference, rtol=1e-14, atol=1e-14)
    # independent reference: reverse mode, <∇f, v>
    primal = primal.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(f(primal), primal)
    torch.testing.assert_close(lean, (g * tangent).sum(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("device", DEVICES)
def test_vmapped_jvps_unchanged(device):
    x, W, V = (t.to(device) for t in (randn(6, 5), randn(4, 5, seed=1), randn(3, 4, 5, seed=2)))

    def f(W):
        return torch.tanh(x @ W.T).square().sum()

    def along(v):
        return jvp(f, (W,), (v,))[1]

    with zero_tangents.skipping():
        lean = vmap(along)(V)
    torch.testing.assert_close(lean, vmap(along)(V), rtol=1e-14, atol=1e-14)


def test_installing_says_nothing():
    """Replacing PyTorch's kernels is intended: no override warning reaches the user."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with zero_tangents.skipping():
            assert zero_tangents.installed()
    assert not zero_tangents.installed()


def test_a_pytorch_that_refuses_the_kernels_gets_a_warning_and_plain_forward_mode(monkeypatch):
    def refuse(self, *args, **kwargs):
        raise RuntimeError("no such dispatch key")

    monkeypatch.setattr(torch.library.Library, "impl", refuse)
    with pytest.warns(RuntimeWarning, match="refused the zero-tangent kernels"):
        with zero_tangents.skipping():
            assert not zero_tangents.installed()
    monkeypatch.undo()
    assert not zero_tangents.installed()
