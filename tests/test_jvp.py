"""Directional derivatives against an independent reference: reverse-mode autograd ``∇f``, then ``V ∇f``."""

import pytest
import torch
from torch import nn

from fg_analysis.jvp import gradient, jvps, module_loss, oracle_jvps, per_tensor_jvps, sequential_jvps
from utils import autograd_gradient

DT = torch.float64


def nonlinear(x):
    return (torch.sin(x) * x ** 2).sum() + torch.log1p(x ** 2).prod() + torch.exp(-x).sum() ** 2


def dict_function(p, scale):
    return scale * ((p["w"] @ p["b"]).tanh().sum() + (p["w"] ** 3).sum() * p["b"].sum())


def tangents(k, n, seed=0):
    return torch.randn(k, n, generator=torch.Generator().manual_seed(seed), dtype=DT)


@pytest.fixture
def mlp():
    torch.manual_seed(0)  # test-only parameter initialization
    model = nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 4), nn.Softplus(), nn.Linear(4, 2)).to(DT)
    inputs = torch.randn(6, 3, dtype=DT)
    targets = torch.randn(6, 2, dtype=DT)
    return model, inputs, targets


def mlp_reference_gradient(model, inputs, targets):
    """Plain autograd through the module itself (no functional_call), flattened in named_parameters order."""
    model.zero_grad()
    nn.functional.mse_loss(model(inputs), targets).backward()
    return torch.cat([p.grad.reshape(-1) for _, p in model.named_parameters()])


@pytest.mark.parametrize("method", ["jvps", "sequential", "oracle"])
@pytest.mark.parametrize("k", [1, 4])
def test_function(method, k):
    x = torch.linspace(-1.2, 0.9, 7, dtype=DT)
    V = tangents(k, 7)
    expected = V @ autograd_gradient(nonlinear, x)
    if method == "jvps":
        value, d = jvps(nonlinear, x, V)
    elif method == "sequential":
        value, d = sequential_jvps(nonlinear, x, V)
    else:
        value, g = gradient(nonlinear, x)
        d = oracle_jvps(g, V)
    assert d.shape == (k,)
    torch.testing.assert_close(d, expected, rtol=0, atol=1e-10)
    torch.testing.assert_close(value, nonlinear(x), rtol=0, atol=1e-12)


@pytest.mark.parametrize("method", ["jvps", "sequential", "oracle"])
def test_dict_params_with_args(method):
    generator = torch.Generator().manual_seed(1)
    params = {"w": torch.randn(3, 4, generator=generator, dtype=DT), "b": torch.randn(4, generator=generator, dtype=DT)}
    flat = torch.cat([params["w"].reshape(-1), params["b"]])

    def on_flat(z, scale):
        return dict_function({"w": z[:12].reshape(3, 4), "b": z[12:]}, scale)

    V = tangents(5, 16, seed=2)
    expected = V @ autograd_gradient(on_flat, flat, 0.7)
    if method == "jvps":
        _, d = jvps(dict_function, params, V, 0.7)
    elif method == "sequential":
        _, d = sequential_jvps(dict_function, params, V, 0.7)
    else:
        d = oracle_jvps(gradient(dict_function, params, 0.7)[1], V)
    torch.testing.assert_close(d, expected, rtol=0, atol=1e-10)


@pytest.mark.parametrize("method", ["jvps", "sequential", "oracle"])
@pytest.mark.parametrize("k", [1, 6])  # k = 1 takes jvps' direct path (no vmap)
def test_mlp_global_tangent(mlp, method, k):
    model, inputs, targets = mlp
    f = module_loss(model, nn.functional.mse_loss)
    params = {name: p.detach() for name, p in model.named_parameters()}
    P = sum(p.numel() for p in params.values())
    V = tangents(k, P, seed=3)
    expected = V @ mlp_reference_gradient(model, inputs, targets)
    if method == "jvps":
        value, d = jvps(f, params, V, inputs, targets)
    elif method == "sequential":
        value, d = sequential_jvps(f, params, V, inputs, targets)
    else:
        value, g = gradient(f, params, inputs, targets)
        d = oracle_jvps(g, V)
    torch.testing.assert_close(d, expected, rtol=0, atol=1e-10)
    torch.testing.assert_close(value, nn.functional.mse_loss(model(inputs), targets).detach(), rtol=0, atol=1e-12)


def test_mlp_per_tensor(mlp):
    model, inputs, targets = mlp
    f = module_loss(model, nn.functional.mse_loss)
    params = {name: p.detach() for name, p in model.named_parameters()}
    generator = torch.Generator().manual_seed(4)
    k = 3
    sets = {name: torch.randn(k, *p.shape, generator=generator, dtype=DT) for name, p in params.items()}
    model.zero_grad()
    nn.functional.mse_loss(model(inputs), targets).backward()
    value, d = per_tensor_jvps(f, params, sets, inputs, targets)
    assert set(d) == set(params)
    for name, p in model.named_parameters():
        expected = sets[name].reshape(k, -1) @ p.grad.reshape(-1)
        assert d[name].shape == (k,)
        torch.testing.assert_close(d[name], expected, rtol=0, atol=1e-10)
    torch.testing.assert_close(value, nn.functional.mse_loss(model(inputs), targets).detach(), rtol=0, atol=1e-12)


def test_module_loss_uses_given_params_not_module_state(mlp):
    model, inputs, targets = mlp
    f = module_loss(model, nn.functional.mse_loss)
    zeros = {name: torch.zeros_like(p) for name, p in model.named_parameters()}
    torch.testing.assert_close(f(zeros, inputs, targets), (targets ** 2).mean())


def test_module_loss_keeps_buffers():
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 1)).to(DT).eval()
    model[1].running_mean.fill_(0.5)
    model[1].running_var.fill_(2.0)
    inputs, targets = torch.randn(5, 3, dtype=DT), torch.randn(5, 1, dtype=DT)
    f = module_loss(model, nn.functional.mse_loss)
    params = {name: p.detach() for name, p in model.named_parameters()}
    torch.testing.assert_close(f(params, inputs, targets), nn.functional.mse_loss(model(inputs), targets).detach())


@pytest.mark.parametrize("func", [jvps, sequential_jvps])
@pytest.mark.parametrize("shape", [(2, 6), (8,), (7,), (1, 2, 7)])
def test_wrong_tangent_shape(func, shape):
    with pytest.raises(ValueError, match=r"shape \(k, P\)"):
        func(nonlinear, torch.ones(7, dtype=DT), torch.ones(shape, dtype=DT))


@pytest.mark.parametrize("func", [jvps, sequential_jvps])
@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_tangents(func, bad):
    V = tangents(3, 7)
    V[1, 2] = bad
    with pytest.raises(ValueError, match="NaN or inf"):
        func(nonlinear, torch.ones(7, dtype=DT), V)


@pytest.mark.parametrize("func", [jvps, sequential_jvps])
def test_device_mismatch_meta(func):
    """Tangents on another device than the parameters are rejected (the meta device stands in for a GPU)."""
    with pytest.raises(ValueError, match="device|on meta"):
        func(nonlinear, torch.ones(7, dtype=DT), torch.ones(2, 7, dtype=DT, device="meta"))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("func", [jvps, sequential_jvps])
def test_device_mismatch_cuda(func):
    with pytest.raises(ValueError, match="cuda"):
        func(nonlinear, torch.ones(7, dtype=DT), torch.ones(2, 7, dtype=DT, device="cuda"))


def test_oracle_shape_errors():
    with pytest.raises(ValueError, match="agree in P"):
        oracle_jvps(torch.ones(5, dtype=DT), torch.ones(2, 6, dtype=DT))
    with pytest.raises(ValueError, match="agree in P"):
        oracle_jvps(torch.ones(1, 5, dtype=DT), torch.ones(2, 5, dtype=DT))


def test_oracle_batched():
    g = torch.arange(5, dtype=DT)
    V = tangents(3 * 2 * 5, 1).reshape(3, 2, 5)
    torch.testing.assert_close(oracle_jvps(g, V), torch.einsum("bkn,n->bk", V, g))


def test_per_tensor_errors(mlp):
    model, inputs, targets = mlp
    f = module_loss(model, nn.functional.mse_loss)
    params = {name: p.detach() for name, p in model.named_parameters()}
    sets = {name: torch.zeros(2, *p.shape, dtype=DT) for name, p in params.items()}
    missing = dict(sets)
    missing.pop("0.bias")
    with pytest.raises(ValueError, match="missing"):
        per_tensor_jvps(f, params, missing, inputs, targets)
    wrong = {**sets, "0.bias": torch.zeros(2, 4, dtype=DT)}
    with pytest.raises(ValueError, match="0.bias"):
        per_tensor_jvps(f, params, wrong, inputs, targets)
